"""Projected Gradient Descent (PGD) in L∞ and L2.

Madry, Makelov, Schmidt, Tsipras, Vladu. "Towards Deep Learning Models Resistant to
Adversarial Attacks", ICLR 2018. https://arxiv.org/abs/1706.06083

Defaults follow the paper's evaluation recipe: random start in the ε-ball, step size
``2.5 · ε / steps``, cross-entropy loss; targeted when ``targets`` are passed to ``attack``.
"""

from __future__ import annotations

from dataclasses import dataclass

from warden.evasion.gradient import GradientAttack, L2Hooks, LinfHooks

__all__ = ["PGD", "L2PGD"]


@dataclass(frozen=True, kw_only=True)
class PGD(GradientAttack):
    """L∞ PGD with random start (Madry et al. 2018)."""

    hooks = LinfHooks

    @property
    def name(self) -> str:
        return "pgd-linf"


@dataclass(frozen=True, kw_only=True)
class L2PGD(GradientAttack):
    """L2 PGD with a random start uniform in the L2 ball (Madry et al. 2018)."""

    hooks = L2Hooks

    @property
    def name(self) -> str:
        return "pgd-l2"
