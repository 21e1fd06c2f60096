"""Fast Gradient Sign Method (FGSM).

Goodfellow, Shlens, Szegedy. "Explaining and Harnessing Adversarial Examples", ICLR 2015.
https://arxiv.org/abs/1412.6572

One step of size ε along the sign of the loss gradient from the clean input: the projected
gradient loop with ``steps=1``, ``step_size=eps`` and no random start.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from warden.errors import AttackError
from warden.evasion.gradient import GradientAttack, LinfHooks

__all__ = ["FGSM"]


@dataclass(frozen=True, kw_only=True)
class FGSM(GradientAttack):
    """FGSM (Goodfellow et al. 2015): a single L∞ step of size ε."""

    steps: int = field(default=1, init=False)
    random_start: bool = field(default=False, init=False)
    restarts: int = field(default=1, init=False)
    step_size: float | None = field(default=None, init=False)

    hooks = LinfHooks

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.steps != 1:
            raise AttackError("FGSM takes exactly one step")

    def _step(self) -> float:
        return self.eps

    @property
    def name(self) -> str:
        return "fgsm"
