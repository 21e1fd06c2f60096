"""DeepFool: the closest decision boundary of the linearised classifier, step after step.

Moosavi-Dezfooli, Fawzi, Frossard. "DeepFool: a simple and accurate method to fool deep
neural networks", CVPR 2016. https://arxiv.org/abs/1511.04599

At the current point the classifier is linearised around the ``candidates`` classes that scored
highest on the clean input: for each other candidate ``k``, ``f_k = Z_k - Z_y`` and
``w_k = ∇Z_k - ∇Z_y``. The step goes to the closest linearised boundary, at distance
``|f_k| / ‖w_k‖_q`` where ``q`` is the dual of the attack's norm (Algorithm 2 for L2, Section 3.3
for general ℓp). Steps add up; the iterate is ``x0 + (1 + overshoot) · Σ steps``, clipped into
the model's bounds. For an affine classifier one step lands exactly on the closest boundary
(times ``1 + overshoot``), the analytically minimal perturbation.

The jacobian rows are taken with one backward pass per candidate rank over the whole batch;
a step is counted as ``candidates`` queries per row (one forward and backward pass per rank).
Immutable features are masked out of the gradients. DeepFool is untargeted; for targets use
``cw-l2`` or FAB.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import numpy as np
from numpy.typing import NDArray

from warden.errors import AttackError
from warden.evasion.base import NORMS, validate_eps
from warden.evasion.whitebox import WhiteBoxAttack

if TYPE_CHECKING:
    import torch

    from warden.models.torch import TorchModel

__all__ = ["DeepFool"]

_SLACK = 1e-4
"""Added to ``|f_k|`` so that a step crosses the linearised boundary instead of landing on it
(the reference implementation's constant)."""


class _L2Step:
    """ℓ2: distance ``|f| / ‖w‖₂``, step ``(|f| / ‖w‖₂²) · w``."""

    @staticmethod
    def dual_norm(w: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = w.norm(p=2, dim=-1)
        return out

    @staticmethod
    def step(w: torch.Tensor, gap: torch.Tensor) -> torch.Tensor:
        return (gap / w.square().sum(dim=-1).clamp_min(1e-24)).unsqueeze(-1) * w


class _LinfStep:
    """ℓ∞: distance ``|f| / ‖w‖₁``, step ``(|f| / ‖w‖₁) · sign(w)``."""

    @staticmethod
    def dual_norm(w: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = w.abs().sum(dim=-1)
        return out

    @staticmethod
    def step(w: torch.Tensor, gap: torch.Tensor) -> torch.Tensor:
        return (gap / w.abs().sum(dim=-1).clamp_min(1e-12)).unsqueeze(-1) * w.sign()


@dataclass(frozen=True, kw_only=True)
class DeepFool(WhiteBoxAttack):
    """DeepFool (Moosavi-Dezfooli et al. 2016), L2 or L∞, minimal perturbation."""

    targets_hint = "DeepFool is untargeted; use cw-l2 or fab-t-linf for targets"

    norm: str = "l2"
    """``l2`` (registered as ``deepfool``) or ``linf`` (``deepfool-linf``, the ℓp dual step)."""
    steps: int = 50
    """Most linearisation steps per input."""
    candidates: int = 10
    """Classes considered, the highest-scoring on the clean input (the true class among them)."""
    overshoot: float = 0.02
    """The summed perturbation is scaled by ``1 + overshoot`` to cross the boundary."""
    eps: float | None = None
    """Optional budget: a result farther than ``eps`` counts as a failure."""

    _geometry: ClassVar[dict[str, type[_L2Step] | type[_LinfStep]]] = {
        "l2": _L2Step,
        "linf": _LinfStep,
    }

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.norm not in NORMS:
            raise AttackError(f"norm must be one of {', '.join(NORMS)}, got {self.norm!r}")
        if self.steps < 1:
            raise AttackError(f"steps must be at least 1, got {self.steps}")
        if self.candidates < 2:
            raise AttackError(f"candidates must be at least 2, got {self.candidates}")
        if not (self.overshoot >= 0 and math.isfinite(self.overshoot)):
            raise AttackError(f"overshoot must be a number >= 0, got {self.overshoot}")
        validate_eps(self.eps)

    @property
    def name(self) -> str:
        """``deepfool`` (L2) or ``deepfool-linf``."""
        return "deepfool" if self.norm == "l2" else "deepfool-linf"

    def _attack_batch(
        self,
        model: TorchModel,
        x_np: NDArray[np.float32],
        y_np: NDArray[np.int64],
        t_np: NDArray[np.int64] | None,
        offset: int,
        mutable_np: NDArray[np.float32],
    ) -> tuple[NDArray[np.float32], int]:
        import torch

        geo = self._geometry[self.norm]
        x0 = model.to_tensor(x_np)
        y = torch.from_numpy(y_np).to(model.device)
        lo, hi = model.bounds_tensors()
        mutable = torch.from_numpy(mutable_np).to(model.device).flatten()
        with torch.no_grad():
            clean = model.logits(x0)
        queries = len(x0)
        k = min(self.candidates, clean.shape[1])
        # Rank 0 is the true class on every row still in play (the others are already wrong).
        cand = clean.argsort(dim=1, descending=True)[:, :k]
        best = x0.clone()
        active = torch.nonzero(clean.argmax(dim=1) == y).flatten()
        xa, ca = x0[active], cand[active]
        total = torch.zeros_like(xa.flatten(1))
        for step in range(self.steps + 1):
            leaf = xa.detach().requires_grad_(step < self.steps)
            with torch.enable_grad():
                logits = model.logits(leaf)
            queries += len(leaf) * (k if step < self.steps else 1)
            keep = logits.detach().argmax(dim=1) == ca[:, 0]
            best[active[~keep]] = leaf.detach()[~keep]
            if step == self.steps or not keep.any():
                best[active[keep]] = leaf.detach()[keep]  # last iterate of the failures
                break
            picked = logits.gather(1, ca)  # (n, k): the candidates' logits
            grads = [
                torch.autograd.grad(picked[:, j].sum(), leaf, retain_graph=j < k - 1)[0]
                for j in range(k)
            ]
            with torch.no_grad():
                jac = torch.stack(grads, dim=1).flatten(2) * mutable  # (n, k, d)
                w = (jac[:, 1:] - jac[:, :1])[keep]
                f = (picked[:, 1:] - picked[:, :1]).detach()[keep]  # < 0 while not fooled
                dist = f.abs() / geo.dual_norm(w).clamp_min(1e-12)
                near = dist.argmin(dim=1)
                rows = torch.arange(len(near), device=near.device)
                r = geo.step(w[rows, near], f[rows, near].abs() + _SLACK)
                active, ca, x0a = active[keep], ca[keep], x0[active[keep]]
                total = total[keep] + r
                moved = x0a + (1.0 + self.overshoot) * total.view_as(x0a)
                xa = torch.max(torch.min(moved, hi), lo)
        return best.cpu().numpy(), queries
