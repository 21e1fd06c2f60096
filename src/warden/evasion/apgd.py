"""Auto-PGD (APGD) and its targeted version APGD-T, in L∞ and L2.

Croce & Hein. "Reliable evaluation of adversarial robustness with an ensemble of diverse
parameter-free attacks", ICML 2020. https://arxiv.org/abs/2003.01690 (Algorithm 1, Section 3).

APGD is PGD without a step size to tune. It starts at step η = 2ε and moves with momentum,
``z = P(x + η·normalize(∇f(x)))`` then ``x' = P(x + α(z − x) + (1 − α)(x − x_prev))`` (the
first step without momentum). At each checkpoint of :func:`checkpoint_schedule` it halves η for
a sample, and restarts it from the best point found so far, when the loss rose in fewer than
ρ of the steps since the last checkpoint (condition 1), or when η was not halved at the last
checkpoint and the best loss has not risen since (condition 2). ``P`` is the ε-ball projection
of the norm hooks in :mod:`warden.evasion.gradient` followed by the model's bounds.

:class:`APGD` ascends cross-entropy or DLR (:mod:`warden.evasion.losses`), or their targeted
forms when ``targets`` are passed. :class:`APGDT` runs once per target class (the
``n_target_classes`` classes ranked highest after the true one on the clean input) with the
targeted DLR loss and, as in AutoAttack, succeeds on any misclassification.

Every iterate that fools the model is kept; fooled samples leave the loop at once.
"""

from __future__ import annotations

import math
from abc import abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, fields
from itertools import product
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from warden.errors import AttackError
from warden.evasion.base import NORMS
from warden.evasion.gradient import L2Hooks, LinfHooks
from warden.evasion.losses import cross_entropy, dlr_loss, targeted_cross_entropy, targeted_dlr_loss
from warden.evasion.whitebox import WhiteBoxAttack

if TYPE_CHECKING:
    from torch import Tensor

    from warden.models.torch import TorchModel

__all__ = ["APGD", "APGDT", "AutoPGD", "checkpoint_schedule"]

LOSSES = ("ce", "dlr")

RowFn = Callable[["Tensor", "Tensor"], "Tensor"]
"""``(logits, batch rows) -> per-sample values``: an objective or a success test."""


def checkpoint_schedule(steps: int) -> list[int]:
    """APGD's checkpoints ``w_j = ⌈p_j · steps⌉`` (``w_0 = 0`` first, duplicates merged).

    ``p_0 = 0``, ``p_1 = 0.22`` and ``p_{j+1} = p_j + max(p_j − p_{j−1} − 0.03, 0.06)`` while
    ``p_{j+1} ≤ 1``: for 100 steps, 0, 22, 41, 57, 70, 80, 87, 93, 99.
    """
    ps = [0.0, 0.22]
    while (nxt := round(ps[-1] + max(ps[-1] - ps[-2] - 0.03, 0.06), 10)) <= 1.0:
        ps.append(nxt)
    # Round before the ceiling so that float noise (0.57 * 100 = 56.99999999999999) is ignored.
    return sorted({math.ceil(round(p * steps, 6)) for p in ps})


@dataclass
class _State:
    """Per-sample state of one run (rows of the batch, their clean inputs, iterate, step size η,
    best point); samples leave together once fooled."""

    rows: Tensor
    x0: Tensor
    x: Tensor
    x_prev: Tensor
    grad: Tensor
    eta: Tensor
    best_loss: Tensor
    x_best: Tensor
    grad_best: Tensor
    prev_loss: Tensor
    ups: Tensor
    """Steps since the last checkpoint on which the loss rose."""
    reduced: Tensor
    """η was halved at the last checkpoint."""
    check_loss: Tensor
    """Best loss at the last checkpoint."""

    @classmethod
    def start(
        cls, rows: Tensor, x0: Tensor, x: Tensor, loss: Tensor, grad: Tensor, eta: float
    ) -> _State:
        import torch

        n = len(rows)
        return cls(
            rows=rows, x0=x0, x=x, x_prev=x, grad=grad,
            eta=torch.full((n,) + (1,) * (x.ndim - 1), eta, dtype=x.dtype, device=x.device),
            best_loss=loss.clone(), x_best=x.clone(), grad_best=grad.clone(),
            prev_loss=loss.clone(), ups=torch.zeros(n, dtype=torch.long, device=x.device),
            reduced=torch.zeros(n, dtype=torch.bool, device=x.device), check_loss=loss.clone(),
        )  # fmt: skip

    def track(self, loss: Tensor, grad: Tensor) -> None:
        """Record the loss and gradient at the new iterate ``x``."""
        up = loss > self.best_loss
        self.best_loss[up], self.x_best[up], self.grad_best[up] = loss[up], self.x[up], grad[up]
        self.ups += loss > self.prev_loss
        self.prev_loss, self.grad = loss.clone(), grad

    def checkpoint(self, span: int, rho: float) -> None:
        """Halve η and go back to the best point where condition 1 or 2 holds."""
        unchanged = ~self.reduced & (self.best_loss <= self.check_loss)
        halve = (self.ups < rho * span) | unchanged
        self.eta[halve] /= 2.0
        self.x[halve], self.grad[halve] = self.x_best[halve], self.grad_best[halve]
        self.prev_loss[halve] = self.best_loss[halve]
        self.reduced, self.check_loss = halve, self.best_loss.clone()
        self.ups.zero_()

    def keep(self, mask: Tensor) -> _State:
        return _State(**{f.name: getattr(self, f.name)[mask] for f in fields(self)})


@dataclass(frozen=True, kw_only=True)
class AutoPGD(WhiteBoxAttack):
    """Settings and loop shared by :class:`APGD` and :class:`APGDT`."""

    eps: float
    """Perturbation budget in the attack's norm, in input units."""
    norm: str = "linf"
    """``linf`` or ``l2``: the ball the perturbation stays in."""
    steps: int = 100
    """Iterations per run (N_iter); each costs one gradient, plus one at the start point."""
    restarts: int = 1
    """Runs from independent random starts (per target class for APGD-T)."""
    rho: float = 0.75
    """Condition 1: halve η when the loss rose in fewer than this fraction of the steps since
    the last checkpoint."""
    alpha: float = 0.75
    """Momentum weight α; 1 turns momentum off."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if not (math.isfinite(self.eps) and self.eps >= 0):
            raise AttackError(f"eps must be a finite number >= 0, got {self.eps}")
        if self.norm not in NORMS:
            raise AttackError(f"unknown norm {self.norm!r}; expected one of {', '.join(NORMS)}")
        if self.steps < 1 or self.restarts < 1:
            raise AttackError("steps and restarts must be at least 1")
        if not (0 < self.rho <= 1 and 0 < self.alpha <= 1):
            raise AttackError(f"rho and alpha must lie in (0, 1], got {self.rho}, {self.alpha}")

    @property
    @abstractmethod
    def name(self) -> str:
        """Registered name, e.g. ``apgd-ce`` or ``apgd-t-l2``."""

    @abstractmethod
    def _min_classes(self, targeted: bool) -> int: ...

    def _check_model(self, model: TorchModel, targeted: bool) -> None:
        need = self._min_classes(targeted)
        if model.n_classes < need:
            raise AttackError(
                f"{self.name} needs at least {need} classes (its DLR loss compares the top "
                f"logits), the model has {model.n_classes}; use apgd-ce instead"
            )

    @abstractmethod
    def _objectives(self, z0: Tensor, y: Tensor, t: Tensor | None) -> list[RowFn]:
        """One loss per sequence of runs, from the clean logits ``z0``."""

    @property
    def _suffix(self) -> str:
        return "-l2" if self.norm == "l2" else ""

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

        h = LinfHooks if self.norm == "linf" else L2Hooks
        x0 = model.to_tensor(x_np)
        y = torch.from_numpy(y_np).to(model.device)
        t = None if t_np is None else torch.from_numpy(t_np).to(model.device)
        goal = y if t is None else t
        lo, hi = model.bounds_tensors()
        mutable = torch.from_numpy(mutable_np).to(model.device)
        gen = torch.Generator().manual_seed(self.seed * 1_000_003 + offset)

        def fooled(z: Tensor, rows: Tensor) -> Tensor:
            same = z.argmax(dim=1) == goal[rows]
            return same if t is not None else ~same

        def project(v: Tensor, center: Tensor) -> Tensor:
            return torch.clamp(center + h.project(v - center, self.eps), lo, hi)

        def evaluate(x: Tensor, rows: Tensor, loss_of: RowFn, grad: bool) -> tuple[Tensor, ...]:
            leaf = x.detach().requires_grad_(grad)
            with torch.set_grad_enabled(grad):
                z = model.logits(leaf)
                loss = loss_of(z, rows)
            g = torch.autograd.grad(loss.sum(), leaf)[0] if grad else torch.zeros_like(x)
            return z.detach(), loss.detach(), g

        with torch.no_grad():
            z0 = model.logits(x0)
        best, queries = x0.clone(), len(x0)
        success = fooled(z0, torch.arange(len(x0), device=model.device))
        checks = set(checkpoint_schedule(self.steps)[1:])
        for objective, _ in product(self._objectives(z0, y, t), range(self.restarts)):
            rows = torch.nonzero(~success).flatten()
            if len(rows) == 0 or self.eps == 0:
                break
            xa = x0[rows]
            x = project(xa + h.random_start(xa.cpu(), self.eps, gen).to(xa.device) * mutable, xa)
            z, loss, grad = evaluate(x, rows, objective, True)
            queries += len(rows)
            st, last = _State.start(rows, xa, x, loss, grad, 2.0 * self.eps), 0
            for k in range(self.steps + 1):
                hit = fooled(z, st.rows)  # z: logits at x^(k)
                best[st.rows[hit]] = st.x[hit]
                success[st.rows[hit]] = True
                if k > 0:
                    st.track(loss, grad)
                    if k in checks:
                        st.checkpoint(k - last, self.rho)
                        last = k
                st = st.keep(~hit)
                if k == self.steps or len(st.rows) == 0:
                    break
                a = 1.0 if k == 0 else self.alpha  # the first step has no momentum
                with torch.no_grad():
                    z_k = project(st.x + st.eta * h.normalize(st.grad * mutable), st.x0)
                    moved = st.x + a * (z_k - st.x) + (1.0 - a) * (st.x - st.x_prev)
                    st.x_prev, st.x = st.x, project(moved, st.x0)
                z, loss, grad = evaluate(st.x, st.rows, objective, k + 1 < self.steps)
                queries += len(st.rows)
            best[st.rows] = st.x_best  # highest-loss point of the samples never fooled
        return best.cpu().numpy(), queries


@dataclass(frozen=True, kw_only=True)
class APGD(AutoPGD):
    """APGD-CE / APGD-DLR (Croce & Hein 2020); targeted toward ``targets`` when given."""

    loss: str = "ce"
    """``ce`` (cross-entropy) or ``dlr`` (Difference of Logits Ratio: 3 classes at least, 4
    when targeted)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.loss not in LOSSES:
            raise AttackError(f"unknown loss {self.loss!r}; expected one of {', '.join(LOSSES)}")

    @property
    def name(self) -> str:
        return f"apgd-{self.loss}{self._suffix}"

    def _min_classes(self, targeted: bool) -> int:
        return 2 if self.loss == "ce" else 4 if targeted else 3

    def _objectives(self, z0: Tensor, y: Tensor, t: Tensor | None) -> list[RowFn]:
        if t is None:
            loss = cross_entropy if self.loss == "ce" else dlr_loss
            return [lambda z, r: loss(z, y[r])]
        if self.loss == "ce":
            return [lambda z, r: targeted_cross_entropy(z, t[r])]
        return [lambda z, r: targeted_dlr_loss(z, y[r], t[r])]


def _toward(y: Tensor, target: Tensor) -> RowFn:
    return lambda z, r: targeted_dlr_loss(z, y[r], target[r])


@dataclass(frozen=True, kw_only=True)
class APGDT(AutoPGD):
    """APGD-T (Croce & Hein 2020): targeted DLR toward each of the top classes in turn.

    Success is any misclassification, as in AutoAttack; callers cannot pass targets.
    """

    n_target_classes: int = 9
    """Target classes tried per sample: the classes ranked 2nd, 3rd, … by the model on the
    clean input; capped at ``n_classes - 1``."""

    targets_hint = (
        "APGD-T picks its own target classes and counts any misclassification; call it "
        "without targets, or use apgd-ce / apgd-dlr to aim at given targets"
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.n_target_classes < 1:
            raise AttackError(f"n_target_classes must be at least 1, got {self.n_target_classes}")

    @property
    def name(self) -> str:
        return f"apgd-t{self._suffix}"

    def _min_classes(self, targeted: bool) -> int:
        return 4

    def _objectives(self, z0: Tensor, y: Tensor, t: Tensor | None) -> list[RowFn]:
        order = z0.argsort(dim=1, descending=True)
        k = min(self.n_target_classes, z0.shape[1] - 1)
        return [_toward(y, order[:, j]) for j in range(1, k + 1)]
