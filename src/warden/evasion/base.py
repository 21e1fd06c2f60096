"""Shapes shared by every evasion attack: the ``Attack`` protocol and ``AttackResult``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

from warden.errors import InputShapeError
from warden.models.base import Model, check_batch

__all__ = ["Attack", "AttackResult", "prepare_inputs"]


@dataclass(frozen=True, eq=False)
class AttackResult:
    """What an evasion attack returns, always."""

    x_adv: NDArray[np.float32]
    """Adversarial inputs, same shape as the inputs; inside the model's bounds."""
    success: NDArray[np.bool_]
    """Per sample: the model's answer on ``x_adv`` is wrong (untargeted) or the target (targeted).
    Inputs the model already got wrong count as successes with no perturbation."""
    norms: NDArray[np.float32]
    """Per-sample size of ``x_adv - x`` in the attack's norm."""
    queries: int
    """Model evaluations spent, counted per sample (a forward or gradient pass on n inputs = n)."""
    norm: str
    """Name of the norm: ``linf`` or ``l2``."""
    eps: float
    """Perturbation budget the attack ran with."""

    @property
    def success_rate(self) -> float:
        """Fraction of samples on which the attack succeeded."""
        return float(self.success.mean()) if len(self.success) else 0.0

    @property
    def robust_accuracy(self) -> float:
        """Fraction of samples still classified correctly after the attack (untargeted)."""
        return 1.0 - self.success_rate


@runtime_checkable
class Attack(Protocol):
    """A frozen settings object with one verb. The model is passed at call time."""

    def attack(
        self,
        model: Model,
        x: NDArray[Any],
        y: NDArray[Any],
        *,
        targets: NDArray[Any] | None = None,
    ) -> AttackResult:
        """Attack ``model`` on inputs ``x`` with true labels ``y`` (or toward ``targets``)."""
        ...


def prepare_inputs(
    model: Model, x: NDArray[Any], y: NDArray[Any], targets: NDArray[Any] | None
) -> tuple[NDArray[np.float32], NDArray[np.int64], NDArray[np.int64] | None]:
    """Validate an attack's inputs against the model: shape, labels, and bounds."""
    xs = check_batch(x, model.input_shape, what="attack input")
    ys = np.asarray(y)
    if ys.shape != (len(xs),) or not np.issubdtype(ys.dtype, np.integer):
        raise InputShapeError(f"labels must be {len(xs)} integers, got shape {ys.shape}")
    if len(ys) and (ys.min() < 0 or ys.max() >= model.n_classes):
        raise InputShapeError(
            f"labels must lie in [0, {model.n_classes}), got {ys.min()}..{ys.max()}"
        )
    outside = ~model.bounds.contains(xs, atol=1e-5)
    if outside.any():
        raise InputShapeError(
            f"attack input row {int(np.flatnonzero(outside)[0])} lies outside the model's bounds; "
            "clip the data or give the model bounds that cover it"
        )
    ts = None
    if targets is not None:
        ts = np.asarray(targets)
        if ts.shape != ys.shape or not np.issubdtype(ts.dtype, np.integer):
            raise InputShapeError(f"targets must be {len(xs)} integers, got shape {ts.shape}")
        if len(ts) and (ts.min() < 0 or ts.max() >= model.n_classes):
            raise InputShapeError(f"targets must lie in [0, {model.n_classes})")
        ts = ts.astype(np.int64)
    return xs, ys.astype(np.int64), ts
