"""Out-of-distribution input guard: how far each input lies from the training data.

:class:`OODDetector` (scikit-learn rules: ``fit`` returns self, fitted attributes end in ``_``,
:class:`~warden.errors.NotFittedError` before ``fit``) standardises each feature with the
training mean and standard deviation, then scores an input by

* ``"mahalanobis"`` — the Mahalanobis distance under the training covariance of the
  standardised features, shrunk towards the identity (``shrinkage``) so it is always invertible;
* ``"zscore"`` — the largest absolute per-feature z-score.

The threshold is the ``quantile`` of the training scores: about ``1 - quantile`` of
in-distribution inputs land above it. Features that are (nearly) constant in training get the
scale ``min_scale`` (default: a tenth of the median positive standard deviation), so a
never-seen value there counts as far without dividing by zero.

:class:`OODGuard` wraps a fitted detector as an input guard. Its verdict score is the batch's
largest score divided by the threshold (1.0 = at the threshold), so policy thresholds
(``flag_at=1.0, block_at=2.0``) read the same for every model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from warden.errors import ConfigError, InputShapeError, NotFittedError
from warden.gateway.guards.base import Action, GuardContext, Verdict

__all__ = ["OODDetector", "OODGuard"]

Method = Literal["mahalanobis", "zscore"]


class OODDetector:
    """Scores inputs by their distance from the training data (see the module docstring)."""

    def __init__(
        self,
        method: Method = "mahalanobis",
        *,
        quantile: float = 0.99,
        shrinkage: float = 0.1,
        min_scale: float | None = None,
    ) -> None:
        self.method = method
        self.quantile = quantile
        self.shrinkage = shrinkage
        self.min_scale = min_scale

    def _check_params(self) -> None:
        if self.method not in ("mahalanobis", "zscore"):
            raise ConfigError(
                f"OODDetector: method must be 'mahalanobis' or 'zscore', found {self.method!r}"
            )
        if not 0.0 < self.quantile < 1.0:
            raise ConfigError(f"OODDetector: quantile must be in (0, 1), found {self.quantile!r}")
        if not 0.0 < self.shrinkage <= 1.0:
            raise ConfigError(f"OODDetector: shrinkage must be in (0, 1], found {self.shrinkage!r}")
        if self.min_scale is not None and not self.min_scale > 0:
            raise ConfigError(f"OODDetector: min_scale must be > 0, found {self.min_scale!r}")

    def fit(self, x: ArrayLike) -> OODDetector:
        """Learn the mean, scales, covariance and threshold from training inputs ``x``."""
        self._check_params()
        data = _flat(x)
        if data.shape[0] < 2:
            raise InputShapeError(
                f"OODDetector.fit: need at least 2 training inputs, found {data.shape[0]}"
            )
        if not np.all(np.isfinite(data)):
            raise InputShapeError("OODDetector.fit: training inputs must be finite")
        self.mean_ = data.mean(axis=0)
        std = data.std(axis=0)
        positive = std[std > 1e-12]
        floor = self.min_scale
        if floor is None:
            floor = 0.1 * float(np.median(positive)) if positive.size else 1.0
        self.scale_ = np.maximum(std, floor)
        self.n_features_in_ = data.shape[1]
        if self.method == "mahalanobis":
            z = (data - self.mean_) / self.scale_
            cov = np.atleast_2d(np.cov(z, rowvar=False))
            eye = np.eye(cov.shape[0])
            inv = np.linalg.inv((1.0 - self.shrinkage) * cov + self.shrinkage * eye)
            self.precision_: NDArray[np.float64] | None = inv.astype(np.float64)
        else:
            self.precision_ = None
        self.threshold_ = float(np.quantile(self._score(data), self.quantile))
        return self

    def _fitted(self) -> None:
        if not hasattr(self, "threshold_"):
            raise NotFittedError("OODDetector is not fitted; call fit(training_inputs) first")

    def _score(self, data: NDArray[np.float64]) -> NDArray[np.float64]:
        z: NDArray[np.float64] = (data - self.mean_) / self.scale_
        if self.precision_ is None:
            out: NDArray[np.float64] = np.abs(z).max(axis=1)
        else:
            out = np.sqrt(np.maximum(((z @ self.precision_) * z).sum(axis=1), 0.0))
        return out

    def score(self, x: ArrayLike) -> NDArray[np.float64]:
        """One score per input; higher is further from the training data."""
        self._fitted()
        data = _flat(x)
        if data.shape[1] != self.n_features_in_:
            raise InputShapeError(
                f"OODDetector: expected inputs with {self.n_features_in_} features, "
                f"found {data.shape[1]}"
            )
        return self._score(data)

    def flag(self, x: ArrayLike) -> NDArray[np.bool_]:
        """True for inputs scoring above the fitted threshold."""
        return self.score(x) > self.threshold_


def _flat(x: ArrayLike) -> NDArray[np.float64]:
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim < 1 or arr.shape[0] == 0:
        raise InputShapeError(f"OODDetector: expected a non-empty batch, found shape {arr.shape}")
    return arr.reshape(arr.shape[0], -1)


@dataclass(frozen=True)
class OODGuard:
    """Input guard over a fitted :class:`OODDetector`.

    Any input beyond the detector's threshold makes the verdict ``action`` (``flag`` by
    default); the score is the batch maximum over the threshold.
    """

    detector: OODDetector
    """A fitted detector."""
    action: Action = "flag"
    """Verdict when some input is beyond the threshold: ``flag`` or ``block``."""
    name: str = "ood"
    """Guard name (in verdicts, metrics and policies)."""

    def __post_init__(self) -> None:
        if self.action not in ("flag", "block"):
            raise ConfigError(f"OODGuard: action must be 'flag' or 'block', found {self.action!r}")
        self.detector._fitted()

    def inspect(self, batch: NDArray[Any], ctx: GuardContext) -> Verdict:
        scores = self.detector.score(batch)
        threshold = self.detector.threshold_
        relative = float(scores.max()) / max(threshold, 1e-12)
        beyond = int(np.count_nonzero(scores > threshold))
        if beyond == 0:
            return Verdict("allow", self.name, "", relative)
        return Verdict(
            self.action,
            self.name,
            f"{beyond} of {scores.size} input(s) beyond the OOD threshold {threshold:.4g} "
            f"(largest score {float(scores.max()):.4g})",
            relative,
        )
