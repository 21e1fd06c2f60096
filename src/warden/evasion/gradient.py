"""One projected-gradient loop for L∞ and L2, with the three norm hooks of Foolbox 3.

The loop (Madry et al. 2018, "Towards Deep Learning Models Resistant to Adversarial Attacks",
https://arxiv.org/abs/1706.06083) repeats: take the gradient of the loss, move ``step_size``
along the norm's steepest-ascent direction (``normalize``), project the perturbation back into
the ε-ball (``project``) and the input into the model's per-feature bounds. Random starts are
drawn uniformly from the ε-ball (``random_start``). FGSM is the same loop with one step of
size ε from the clean input.

Every iterate that fools the model is kept, so more steps or restarts never make a result
worse; samples that are already adversarial drop out of the loop (early exit).
"""

from __future__ import annotations

import math
from abc import abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import numpy as np
from numpy.typing import NDArray

from warden.errors import AttackError
from warden.evasion.whitebox import WhiteBoxAttack

if TYPE_CHECKING:
    import torch

    from warden.models.torch import TorchModel

__all__ = ["GradientAttack", "L2Hooks", "LinfHooks"]


def _flat_norm(t: torch.Tensor, p: float) -> torch.Tensor:
    out: torch.Tensor = t.flatten(1).norm(p=p, dim=1)
    return out


class LinfHooks:
    """L∞ geometry: sign of the gradient, clamp to the cube, uniform start in the cube."""

    norm: ClassVar[str] = "linf"

    @staticmethod
    def normalize(grad: torch.Tensor) -> torch.Tensor:
        return grad.sign()

    @staticmethod
    def project(delta: torch.Tensor, eps: float) -> torch.Tensor:
        return delta.clamp(-eps, eps)

    @staticmethod
    def random_start(like: torch.Tensor, eps: float, gen: torch.Generator) -> torch.Tensor:
        import torch

        u = torch.rand(like.shape, generator=gen, dtype=like.dtype, device=like.device)
        return (2.0 * u - 1.0) * eps

    @staticmethod
    def measure(delta: torch.Tensor) -> torch.Tensor:
        return _flat_norm(delta, math.inf)


class L2Hooks:
    """L2 geometry: unit gradient, shrink onto the ball, uniform start inside the ball."""

    norm: ClassVar[str] = "l2"

    @staticmethod
    def normalize(grad: torch.Tensor) -> torch.Tensor:
        n = _flat_norm(grad, 2.0).clamp_min(1e-12)
        return grad / n.view(-1, *([1] * (grad.ndim - 1)))

    @staticmethod
    def project(delta: torch.Tensor, eps: float) -> torch.Tensor:
        n = _flat_norm(delta, 2.0)
        factor = (eps / n.clamp_min(1e-12)).clamp(max=1.0)
        return delta * factor.view(-1, *([1] * (delta.ndim - 1)))

    @staticmethod
    def random_start(like: torch.Tensor, eps: float, gen: torch.Generator) -> torch.Tensor:
        import torch

        g = torch.randn(like.shape, generator=gen, dtype=like.dtype, device=like.device)
        direction = g / _flat_norm(g, 2.0).clamp_min(1e-12).view(-1, *([1] * (g.ndim - 1)))
        d = like[0].numel()
        radius = torch.rand(len(like), generator=gen, dtype=like.dtype) ** (1.0 / d) * eps
        return direction * radius.view(-1, *([1] * (g.ndim - 1))).to(like.device)

    @staticmethod
    def measure(delta: torch.Tensor) -> torch.Tensor:
        return _flat_norm(delta, 2.0)


@dataclass(frozen=True, kw_only=True)
class GradientAttack(WhiteBoxAttack):
    """Template of the projected-gradient loop; subclasses pick the norm hooks and defaults."""

    eps: float
    """Perturbation budget in the attack's norm, in input units."""
    steps: int = 40
    """Gradient steps per restart."""
    step_size: float | None = None
    """Absolute step size; default ``2.5 * eps / steps`` (Madry et al.)."""
    random_start: bool = True
    """Start from a uniform random point of the ε-ball instead of the clean input."""
    restarts: int = 1
    """Independent runs; a sample counts as fooled if any run fools the model."""

    hooks: ClassVar[type[LinfHooks] | type[L2Hooks]]

    def __post_init__(self) -> None:
        super().__post_init__()
        if not (math.isfinite(self.eps) and self.eps >= 0):
            raise AttackError(f"eps must be a finite number >= 0, got {self.eps}")
        if self.steps < 1 or self.restarts < 1:
            raise AttackError("steps and restarts must be at least 1")
        if self.step_size is not None and not (
            self.step_size > 0 and math.isfinite(self.step_size)
        ):
            raise AttackError(f"step_size must be a positive number, got {self.step_size}")

    @property
    @abstractmethod
    def name(self) -> str:
        """Short name for reports, e.g. ``pgd-linf``."""

    @property
    def norm(self) -> str:
        """``linf`` or ``l2``."""
        return self.hooks.norm

    def _step(self) -> float:
        return self.step_size if self.step_size is not None else 2.5 * self.eps / self.steps

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
        import torch.nn.functional as F

        h = self.hooks
        x0 = model.to_tensor(x_np)
        labels = torch.from_numpy(t_np if t_np is not None else y_np).to(model.device)
        targeted = t_np is not None
        lo, hi = model.bounds_tensors()
        mutable = torch.from_numpy(mutable_np).to(model.device)
        sign = -1.0 if targeted else 1.0

        def fooled(logits: torch.Tensor, lab: torch.Tensor) -> torch.Tensor:
            pred = logits.argmax(dim=1)
            return pred == lab if targeted else pred != lab

        queries = len(x0)
        with torch.no_grad():
            success = fooled(model.logits(x0), labels)
        best = x0.clone()
        gen = torch.Generator().manual_seed(self.seed * 1_000_003 + offset)
        step = self._step()
        for _ in range(self.restarts):
            active = torch.nonzero(~success).flatten()
            if len(active) == 0 or self.eps == 0:
                break
            xa, la = x0[active], labels[active]
            delta = h.random_start(xa, self.eps, gen) if self.random_start else torch.zeros_like(xa)
            delta = delta * mutable
            xk = torch.clamp(xa + delta, lo, hi)
            for k in range(self.steps + 1):
                leaf = xk.detach().requires_grad_(k < self.steps)
                with torch.enable_grad():
                    logits = model.logits(leaf)
                queries += len(leaf)
                hit = fooled(logits.detach(), la)
                if hit.any():
                    won = active[hit]
                    best[won] = leaf.detach()[hit]
                    success[won] = True
                keep = ~hit
                if k == self.steps or not keep.any():
                    active, xk = active[keep], leaf.detach()[keep]
                    break
                loss = sign * F.cross_entropy(logits[keep], la[keep], reduction="sum")
                (grad,) = torch.autograd.grad(loss, leaf)
                active, xa, la = active[keep], xa[keep], la[keep]
                with torch.no_grad():
                    moved = leaf.detach()[keep] + step * h.normalize(grad[keep] * mutable)
                    xk = torch.clamp(xa + h.project(moved - xa, self.eps), lo, hi)
            if len(active):
                best[active] = xk.detach()  # last iterate of the unsuccessful samples
        return best.cpu().numpy(), queries
