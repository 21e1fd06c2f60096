"""Shapes shared by every evasion attack.

* :class:`Attack` — the protocol: a frozen settings object with one verb,
  ``attack(model, x, y, *, targets=None) -> AttackResult``; the model is passed at call time.
* :class:`AttackSettings` — settings every attack has (seed, batch size, immutable features).
* :class:`AttackResult` — what every attack returns.
* :func:`finalize` — the last step of every attack: clip into the model's bounds, restore
  immutable features, re-measure success with one forward pass and measure the norms, so the
  invariants hold whatever the algorithm did.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

from warden.errors import AttackError, InputShapeError
from warden.models.base import Model, check_batch, predict_labels

__all__ = [
    "Attack",
    "AttackResult",
    "AttackSettings",
    "finalize",
    "measure_norms",
    "prepare_inputs",
    "validate_eps",
]

NORMS = ("linf", "l2")


@dataclass(frozen=True, eq=False)
class AttackResult:
    """What an evasion attack returns, always."""

    x_adv: NDArray[np.float32]
    """Adversarial inputs, same shape as the inputs; inside the model's bounds, immutable
    features unchanged."""
    success: NDArray[np.bool_]
    """Per sample: the model's answer on ``x_adv`` is wrong (untargeted) or the target (targeted),
    and the perturbation is within ``eps``. Inputs the model already got wrong count as
    successes with no perturbation."""
    norms: NDArray[np.float32]
    """Per-sample size of ``x_adv - x`` in the attack's norm."""
    queries: int
    """Model evaluations spent, counted per sample (a forward or gradient pass on n inputs = n)."""
    norm: str
    """Name of the norm: ``linf`` or ``l2``."""
    eps: float
    """Perturbation budget the attack ran with (``inf`` for unbounded minimal-norm attacks)."""
    budget_exhausted: bool = False
    """A query budget (the attack's or the model's) ran out before the attack finished."""

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

    @property
    def name(self) -> str:
        """Registered name, e.g. ``pgd-linf``."""
        ...

    @property
    def norm(self) -> str:
        """``linf`` or ``l2``."""
        ...

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


@dataclass(frozen=True, kw_only=True)
class AttackSettings:
    """Settings every attack shares."""

    seed: int = 0
    """Seed of every random choice; same seed, same result."""
    batch_size: int = 256
    """Inputs attacked at once."""
    immutable: tuple[int, ...] = ()
    """Flat indices of input features the attack must never change (categorical or integer
    columns of a tabular model, for example)."""

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise AttackError(f"batch_size must be at least 1, got {self.batch_size}")
        if any(not isinstance(i, int) or i < 0 for i in self.immutable):
            raise AttackError("immutable must hold feature indices (integers >= 0)")
        object.__setattr__(self, "immutable", tuple(sorted(set(self.immutable))))

    def mutable_mask(self, input_shape: Sequence[int]) -> NDArray[np.float32]:
        """1.0 where a feature may change, 0.0 where it is immutable; shape ``input_shape``."""
        size = int(np.prod(input_shape))
        if self.immutable and self.immutable[-1] >= size:
            raise AttackError(
                f"immutable feature {self.immutable[-1]} does not exist: inputs have {size}"
            )
        mask = np.ones(size, np.float32)
        mask[list(self.immutable)] = 0.0
        return mask.reshape(tuple(input_shape))


def validate_eps(eps: float | None) -> None:
    """Refuse a budget that is not ``None`` (unbounded) or a number >= 0."""
    if eps is not None and not (eps >= 0 and not math.isnan(eps)):
        raise AttackError(f"eps must be a number >= 0 or None, got {eps}")


def measure_norms(delta: NDArray[Any], norm: str) -> NDArray[np.float32]:
    """Per-sample L∞ or L2 norm of ``delta`` (computed in float64)."""
    arr = np.asarray(delta, np.float64)
    flat = arr.reshape(len(arr), int(np.prod(arr.shape[1:])))
    if norm == "linf":
        out = np.abs(flat).max(axis=1) if flat.shape[1] else np.zeros(len(flat))
    elif norm == "l2":
        out = np.linalg.norm(flat, axis=1)
    else:
        raise AttackError(f"unknown norm {norm!r}; expected one of {', '.join(NORMS)}")
    return out.astype(np.float32)


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


def finalize(
    model: Model,
    x: NDArray[np.float32],
    x_adv: NDArray[Any],
    y: NDArray[np.int64],
    targets: NDArray[np.int64] | None,
    *,
    norm: str,
    eps: float | None,
    queries: int,
    mutable: NDArray[np.float32] | None = None,
    budget_exhausted: bool = False,
    pred: NDArray[np.int64] | None = None,
) -> AttackResult:
    """Enforce the invariants and build the result.

    Clips ``x_adv`` into the model's bounds, restores immutable features (``mutable == 0``),
    puts back the clean input wherever the attack failed to stay within ``eps``, then
    re-evaluates success with one forward pass (counted in ``queries``).

    A black-box attack that already knows the model's label for each row of ``x_adv`` passes
    it as ``pred``: then only rows the invariants changed are evaluated again, so no query is
    spent on verification (the model's budget may be gone).
    """
    validate_eps(eps)
    budget = math.inf if eps is None else float(eps)
    adv = model.bounds.clip(np.asarray(x_adv, np.float32))
    if mutable is not None:
        adv = np.where(mutable > 0, adv, x).astype(np.float32)
    norms = measure_norms(adv - x, norm)
    over = norms > budget + 1e-6
    if over.any():  # an over-budget point is not an adversarial example at this budget
        adv[over] = x[over]
        norms[over] = 0.0
    # Rows put back to the clean input are failures: an input the model already got wrong
    # never needs a perturbation, so it cannot be over budget.
    given = np.asarray(x_adv, np.float32)
    if pred is None:
        stale = ~over
        labels = np.zeros(len(adv), np.int64)
    else:
        labels = np.asarray(pred, np.int64).copy()
        changed = ~np.all((adv == given).reshape(len(adv), -1), axis=1)
        stale = changed & ~over
    if stale.any():
        labels[stale] = predict_labels(model, adv[stale])
        queries += int(stale.sum())
    success = (labels == targets) if targets is not None else (labels != y)
    success &= ~over
    return AttackResult(
        x_adv=adv,
        success=np.asarray(success, bool),
        norms=norms,
        queries=int(queries),
        norm=norm,
        eps=budget,
        budget_exhausted=budget_exhausted,
    )
