"""FAB-T: the targeted Fast Adaptive Boundary attack, as run inside AutoAttack (L∞ and L2).

Croce, Hein. "Minimally distorted Adversarial Examples with a Fast Adaptive Boundary Attack",
ICML 2020. https://arxiv.org/abs/1907.02044

For each of the ``n_target_classes`` runner-up classes ``t`` of the clean input (AutoAttack's
FAB-T), the decision boundary between ``t`` and the true class ``y`` is linearised at the
iterate ``x``: ``f = Z_t - Z_y``, ``w = ∇f``. Both ``x`` and the original point ``x0`` are
projected onto that hyperplane intersected with the box of valid inputs (``d1``, ``d2``); the
next iterate is the biased step ``(1-α)(x + η d1) + α (x0 + η d2)`` with
``α = min(‖d1‖ / (‖d1‖ + ‖d2‖), α_max)``, clipped to the box. Whenever an iterate fools the
model it is kept if it is the closest so far, and the search steps back toward ``x0``:
``x ← x0 + β (x - x0)``. Restarts after the first begin at a random point at half the
distance of the best adversarial found (or of ``eps``; from ``x0`` when neither exists).
With explicit ``targets`` one run goes toward each row's target, against the strongest other
class.

The box-constrained hyperplane projection (:func:`project_hyperplane_box`) is solved exactly by
sorting: the minimiser is ``d_i = u_i · min(r·a_i, room_i)`` (``a_i = 1`` for L∞, ``|w_i|`` for
L2), and the progress ``w·d`` is piecewise linear and increasing in ``r``, so its breakpoints
are sorted and the segment holding the required progress is solved in closed form. Each
iteration costs one gradient pass and one forward pass per row.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from warden.errors import AttackError
from warden.evasion.base import NORMS, validate_eps
from warden.evasion.whitebox import WhiteBoxAttack

if TYPE_CHECKING:
    import torch

    from warden.models.torch import TorchModel

__all__ = ["FAB", "project_hyperplane_box"]


def project_hyperplane_box(
    x: torch.Tensor,
    w: torch.Tensor,
    c: torch.Tensor,
    lo: torch.Tensor,
    hi: torch.Tensor,
    norm: str,
) -> torch.Tensor:
    """Smallest ``d`` (in ``norm``) with ``w·d = c`` and ``lo <= x + d <= hi``, per row.

    ``x``, ``w``: ``(n, m)``; ``c``: ``(n,)``; ``lo``, ``hi`` broadcast to ``(n, m)``, with
    ``x`` inside them. When no point of the box reaches the hyperplane, the box corner that
    gets closest to it is returned (every free coordinate at its bound).
    """
    import torch

    need = c.abs()
    u = torch.sign(w) * torch.sign(c)[:, None]  # direction each coordinate moves in
    room = torch.where(u > 0, hi - x, x - lo).clamp_min(0) * (u != 0)
    aw = w.abs()
    a = torch.ones_like(aw) if norm == "linf" else aw
    a = a * (u != 0)
    brk = torch.where(a > 0, room / a.clamp_min(1e-30), torch.zeros_like(room))
    brk, order = brk.sort(dim=1)
    gain = (aw * room).gather(1, order).cumsum(dim=1)  # progress of the saturated coordinates
    slope = (aw * a).gather(1, order).cumsum(dim=1)
    total = slope[:, -1:]
    progress = gain + brk * (total - slope)  # w·d at each breakpoint, nondecreasing
    k = (progress < need[:, None]).sum(dim=1, keepdim=True)  # segment holding the solution
    zero = torch.zeros_like(need[:, None])
    gain_k = torch.where(k > 0, gain.gather(1, (k - 1).clamp_min(0)), zero)
    slope_k = torch.where(k > 0, slope.gather(1, (k - 1).clamp_min(0)), zero)
    r = ((need[:, None] - gain_k) / (total - slope_k).clamp_min(1e-30)).clamp_min(0)
    reachable = k < x.shape[1]
    step = torch.where(reachable, torch.minimum(r * a, room), room)
    return u * step


def _measure(d: torch.Tensor, norm: str) -> torch.Tensor:
    out: torch.Tensor = d.flatten(1).norm(p=math.inf if norm == "linf" else 2.0, dim=1)
    return out


@dataclass(frozen=True, kw_only=True)
class FAB(WhiteBoxAttack):
    """FAB-T (Croce & Hein 2020), the targeted Fast Adaptive Boundary attack; minimal norm."""

    norm: str = "linf"
    """``linf`` (registered as ``fab-t-linf``) or ``l2`` (``fab-t-l2``)."""
    n_target_classes: int = 9
    """Runner-up classes attacked in turn (at most the number of classes less one)."""
    steps: int = 100
    """Iterations per target class and restart."""
    restarts: int = 1
    """Runs per target class; runs after the first start at a random point."""
    alpha_max: float = 0.1
    """Largest weight of the step from the original point."""
    eta: float = 1.05
    """Overshoot of each projection."""
    beta: float = 0.9
    """Step back toward the original point after each success."""
    eps: float | None = None
    """Optional budget: a result farther than ``eps`` counts as a failure."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.norm not in NORMS:
            raise AttackError(f"norm must be one of {', '.join(NORMS)}, got {self.norm!r}")
        if self.n_target_classes < 1 or self.steps < 1 or self.restarts < 1:
            raise AttackError("n_target_classes, steps and restarts must be at least 1")
        if not (0 <= self.alpha_max <= 1):
            raise AttackError(f"alpha_max must lie in [0, 1], got {self.alpha_max}")
        if not (1 <= self.eta < math.inf):
            raise AttackError(f"eta must be a number >= 1, got {self.eta}")
        if not (0 < self.beta < 1):
            raise AttackError(f"beta must lie in (0, 1), got {self.beta}")
        validate_eps(self.eps)

    @property
    def name(self) -> str:
        """``fab-t-linf`` or ``fab-t-l2``."""
        return f"fab-t-{self.norm}"

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

        x_all = model.to_tensor(x_np)
        y_all = torch.from_numpy(y_np).to(model.device)
        with torch.no_grad():
            clean = model.logits(x_all)
        queries = len(x_all)
        best = x_all.clone()
        if t_np is None:
            todo = torch.nonzero(clean.argmax(dim=1) == y_all).flatten()
            ranked = clean.argsort(dim=1, descending=True)[todo]
            n_runs = min(self.n_target_classes, clean.shape[1] - 1)
            runs = [ranked[:, j] for j in range(1, n_runs + 1)]  # runner-ups, true class first
        else:
            t_all = torch.from_numpy(t_np).to(model.device)
            todo = torch.nonzero(clean.argmax(dim=1) != t_all).flatten()
            runs = [t_all[todo]]
        if len(todo) == 0:
            return best.cpu().numpy(), queries
        x0, y = x_all[todo], y_all[todo]
        lo, hi = model.bounds_tensors()
        mutable = torch.from_numpy(mutable_np).to(model.device)
        gen = torch.Generator().manual_seed(self.seed * 1_000_003 + offset)
        best_adv = x0.clone()
        best_norm = torch.full((len(x0),), math.inf, dtype=x0.dtype, device=x0.device)
        for target in runs:
            for restart in range(self.restarts):
                start = x0
                if restart > 0:
                    start = self._random_start(x0, best_norm, gen, mutable, lo, hi)
                queries += self._run(
                    model, x0, y, target, t_np is not None, start, mutable, best_adv, best_norm
                )
        best[todo] = best_adv
        return best.cpu().numpy(), queries

    def _run(
        self,
        model: TorchModel,
        x0: torch.Tensor,
        y: torch.Tensor,
        target: torch.Tensor,
        targeted: bool,
        start: torch.Tensor,
        mutable: torch.Tensor,
        best_adv: torch.Tensor,
        best_norm: torch.Tensor,
    ) -> int:
        """One FAB run toward ``target``; updates ``best_adv``/``best_norm`` in place."""
        import torch

        lo, hi = model.bounds_tensors()
        n, shape = len(x0), x0.shape
        flat0 = x0.flatten(1)
        lo_f, hi_f = lo.flatten()[None], hi.flatten()[None]
        rows = torch.arange(n, device=x0.device)
        x = start.clone()
        for _ in range(self.steps):
            leaf = x.detach().requires_grad_(True)
            with torch.enable_grad():
                logits = model.logits(leaf)
                # Untargeted FAB-T: boundary t vs. y. Targeted: t vs. the strongest other class.
                source = y
                if targeted:
                    source = logits.detach().scatter(1, target[:, None], -math.inf).argmax(1)
                f = logits[rows, target] - logits[rows, source]
                (grad,) = torch.autograd.grad(f.sum(), leaf)
            with torch.no_grad():
                w = (grad * mutable).flatten(1)
                flat = x.flatten(1)
                f = f.detach()
                both = project_hyperplane_box(
                    torch.cat((flat, flat0)),
                    torch.cat((w, w)),
                    torch.cat((-f, (w * (flat - flat0)).sum(1) - f)),
                    lo_f,
                    hi_f,
                    self.norm,
                )
                d1, d2 = both[:n], both[n:]
                a1 = _measure(d1, self.norm).clamp_min(1e-8)
                a2 = _measure(d2, self.norm).clamp_min(1e-8)
                alpha = (a1 / (a1 + a2)).clamp(0.0, self.alpha_max)[:, None]
                moved = (1 - alpha) * (flat + self.eta * d1) + alpha * (flat0 + self.eta * d2)
                x = torch.max(torch.min(moved.view(shape), hi), lo)
                pred = model.logits(x).argmax(dim=1)
                fooled = pred == target if targeted else pred != y
                dist = _measure(x - x0, self.norm)
                better = fooled & (dist < best_norm)
                best_adv[better] = x[better]
                best_norm[better] = dist[better]
                x = torch.where(
                    fooled.view(-1, *([1] * (x.ndim - 1))), x0 + self.beta * (x - x0), x
                )
        return 2 * n * self.steps

    def _random_start(
        self,
        x0: torch.Tensor,
        best_norm: torch.Tensor,
        gen: torch.Generator,
        mutable: torch.Tensor,
        lo: torch.Tensor,
        hi: torch.Tensor,
    ) -> torch.Tensor:
        """A point at half the best distance so far (or of ``eps``) in a random direction."""
        import torch

        radius = best_norm.clamp_max(math.inf if self.eps is None else self.eps)
        radius = torch.where(torch.isfinite(radius), radius, torch.zeros_like(radius)) / 2
        if self.norm == "linf":
            t = torch.rand(x0.shape, generator=gen, dtype=x0.dtype).to(x0.device) * 2 - 1
        else:
            t = torch.randn(x0.shape, generator=gen, dtype=x0.dtype).to(x0.device)
        t = t * mutable
        t = t / _measure(t, self.norm).clamp_min(1e-12).view(-1, *([1] * (x0.ndim - 1)))
        moved = x0 + t * radius.view(-1, *([1] * (x0.ndim - 1)))
        return torch.max(torch.min(moved, hi), lo)
