"""Carlini & Wagner L2: the smallest L2 perturbation found by optimisation.

Carlini, Wagner. "Towards Evaluating the Robustness of Neural Networks", IEEE S&P 2017.
https://arxiv.org/abs/1608.04644

The box constraint goes away with the change of variables ``x = lo + (hi - lo)·(tanh(w) + 1)/2``
(per-feature bounds ``[lo, hi]``). Adam minimises ``‖x - x0‖₂² + c · f6(x)`` over ``w``, with the
paper's objective ``f6 = max(max_{i≠t} Z_i - Z_t, -κ)`` toward a target ``t`` and
``max(Z_y - max_{i≠y} Z_i, -κ)`` away from the true class ``y`` (``Z`` the logits, ``κ`` the
confidence). Each sample has its own ``c``, found by binary search: times 10 while no
adversarial was found and no upper bound is known, otherwise bisected. The optimisation of one
``c`` stops early when the loss no longer decreases; the smallest-L2 adversarial seen over all
iterations and all ``c`` is kept. Immutable features are held at their clean values, so their
gradient is zero. Each iteration is one forward and backward pass per row.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from warden.errors import AttackError
from warden.evasion.base import validate_eps
from warden.evasion.whitebox import WhiteBoxAttack

if TYPE_CHECKING:
    import torch

    from warden.models.torch import TorchModel

__all__ = ["CarliniWagnerL2"]

_NO_BOUND = 1e10


def f6_margin(
    logits: torch.Tensor, labels: torch.Tensor, *, targeted: bool, confidence: float
) -> torch.Tensor:
    """The paper's ``f6`` per row: below 0 once the (target/other) class wins by ``κ``."""
    import torch

    own = logits.gather(1, labels[:, None]).squeeze(1)
    others = logits.masked_fill(
        torch.nn.functional.one_hot(labels, logits.shape[1]).bool(), -math.inf
    ).amax(dim=1)
    margin = others - own if targeted else own - others
    return margin.clamp_min(-confidence)


@dataclass(frozen=True, kw_only=True)
class CarliniWagnerL2(WhiteBoxAttack):
    """Carlini & Wagner L2 attack (2017) with per-sample binary search over ``c``."""

    binary_search_steps: int = 9
    """Rounds of the search over the constant ``c``."""
    max_iterations: int = 1000
    """Adam steps per round."""
    learning_rate: float = 0.01
    """Adam's step size on the tanh variables."""
    initial_const: float = 1e-3
    """``c`` of the first round, for every sample."""
    confidence: float = 0.0
    """``κ``: how far the winning logit must lead for a point to count as adversarial."""
    abort_early: bool = True
    """Stop a round when the loss has not decreased over a tenth of ``max_iterations``."""
    warm_start: bool = True
    """Start each binary-search round from the best adversarial found so far (or, for a sample
    without one, from where the previous round ended). The paper restarts every round from the
    input, which needs its 10,000 iterations per round; with CPU-sized rounds, warm starts find
    smaller perturbations (benchmarks/results/evasion.md). ``False`` is the paper's schedule."""
    eps: float | None = None
    """Optional budget: a result farther than ``eps`` counts as a failure."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.binary_search_steps < 1 or self.max_iterations < 1:
            raise AttackError("binary_search_steps and max_iterations must be at least 1")
        for field in ("learning_rate", "initial_const"):
            value = getattr(self, field)
            if not (value > 0 and math.isfinite(value)):
                raise AttackError(f"{field} must be a positive number, got {value}")
        if not (self.confidence >= 0 and math.isfinite(self.confidence)):
            raise AttackError(f"confidence must be a number >= 0, got {self.confidence}")
        validate_eps(self.eps)

    @property
    def name(self) -> str:
        """``cw-l2``."""
        return "cw-l2"

    @property
    def norm(self) -> str:
        """``l2``."""
        return "l2"

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

        targeted = t_np is not None
        labels_np = t_np if t_np is not None else y_np

        x_all = model.to_tensor(x_np)
        lab_all = torch.from_numpy(labels_np).to(model.device)
        with torch.no_grad():
            pred = model.logits(x_all).argmax(dim=1)
        queries = len(x_all)
        best = x_all.clone()
        todo = torch.nonzero(pred != lab_all if targeted else pred == lab_all).flatten()
        if len(todo) == 0:
            return best.cpu().numpy(), queries
        x0, lab = x_all[todo], lab_all[todo]
        lo, hi = model.bounds_tensors()
        span = hi - lo
        mutable = torch.from_numpy(mutable_np).to(model.device).bool()
        unit = torch.where(span > 0, (x0 - lo) / span.clamp_min(1e-12), 0.5)
        w0 = torch.atanh((unit * 2 - 1).clamp(-1 + 1e-6, 1 - 1e-6))

        n = len(x0)
        const = torch.full((n,), self.initial_const, dtype=x0.dtype, device=x0.device)
        lower = torch.zeros_like(const)
        upper = torch.full_like(const, _NO_BOUND)
        best_l2 = torch.full_like(const, math.inf)
        best_adv = x0.clone()
        check = max(self.max_iterations // 10, 1)
        start = w0
        for _ in range(self.binary_search_steps):
            w = start.clone().requires_grad_(True)
            opt = torch.optim.Adam([w], lr=self.learning_rate)
            found = torch.zeros(n, dtype=torch.bool, device=x0.device)
            prev = math.inf
            for it in range(self.max_iterations):
                with torch.enable_grad():
                    xa = torch.where(mutable, lo + span * (torch.tanh(w) + 1) / 2, x0)
                    logits = model.logits(xa)
                    l2sq = (xa - x0).flatten(1).square().sum(dim=1)
                    margin = f6_margin(logits, lab, targeted=targeted, confidence=self.confidence)
                    loss = (l2sq + const * margin).sum()
                    (w.grad,) = torch.autograd.grad(loss, w)
                queries += n
                with torch.no_grad():
                    # margin <= -κ exactly when the winning class leads by κ (f6 is clamped).
                    hit = margin.detach() <= -self.confidence
                    if self.confidence == 0:
                        won = logits.argmax(dim=1) == lab
                        hit = won if targeted else ~won
                    better = hit & (l2sq < best_l2)
                    best_l2 = torch.where(better, l2sq, best_l2)
                    best_adv[better] = xa.detach()[better]
                    found |= hit
                if self.abort_early and it % check == 0:
                    if loss.item() > prev * 0.9999:
                        break
                    prev = loss.item()
                opt.step()
            with torch.no_grad():
                upper = torch.where(found, torch.minimum(upper, const), upper)
                lower = torch.where(found, lower, torch.maximum(lower, const))
                bounded = upper < _NO_BOUND
                const = torch.where(bounded, (lower + upper) / 2, const * 10)
                if self.warm_start:
                    best_unit = torch.where(span > 0, (best_adv - lo) / span.clamp_min(1e-12), 0.5)
                    best_w = torch.atanh((best_unit * 2 - 1).clamp(-1 + 1e-6, 1 - 1e-6))
                    have = torch.isfinite(best_l2).view(-1, *([1] * (w.ndim - 1)))
                    start = torch.where(have, best_w, w.detach())
        best[todo] = best_adv
        return best.cpu().numpy(), queries
