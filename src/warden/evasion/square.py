"""Square Attack: score-based black-box random search with square updates, in L∞ and L2.

Andriushchenko, Croce, Flammarion, Hein. "Square Attack: a query-efficient black-box
adversarial attack via random search", ECCV 2020. https://arxiv.org/abs/1912.00049

Uses only ``model(x)``. Each iteration proposes, for every sample not yet fooled, a change
confined to one random window covering a fraction ``p`` of the input (``p`` halves on the
reference schedule) and keeps it when the loss drops: the margin ``z_y − max_{i≠y} z_i``
(untargeted) or the cross-entropy toward the target (targeted), on the model's logits, or on
log-probabilities when its scores are probabilities. L∞ starts from vertical stripes of ±ε and
proposes ±ε per channel on the window; L2 starts from a grid of ±bumps and moves mass between
two windows, keeping ``‖δ‖₂ = ε`` (Algorithm 3 of the paper).

Inputs of shape ``(C, H, W)`` use square windows; a feature vector ``(n,)`` is treated as a
``1×1×n`` image whose windows are runs of contiguous features, ``(H, W)`` as ``1×H×W``.
Perturbations stay inside the ε-ball intersected with the model's per-feature bounds;
immutable features are never changed.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from warden.errors import AttackError
from warden.evasion._blackbox import (
    f32_rounding_slack,
    inward_box,
    query_clean,
    run_blackbox,
)
from warden.evasion.base import AttackResult, AttackSettings, prepare_inputs
from warden.evasion.budget import QueryCounter
from warden.models.base import Model

__all__ = ["SquareAttack", "p_schedule", "square_loss"]

F32 = NDArray[np.float32]
F64 = NDArray[np.float64]
_EDGES = (10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000)


def p_schedule(p_init: float, it: int, n_iters: int) -> float:
    """Window fraction at iteration ``it``: ``p_init`` halved at each of the reference's edges
    (iterations 10, 50, 200, …, 8000 of 10 000), rescaled to ``n_iters``."""
    scaled = int(it / n_iters * 10000)
    return p_init / 2.0 ** sum(scaled > e for e in _EDGES)


def square_loss(z: F64, y: NDArray[np.int64], t: NDArray[np.int64] | None) -> F64:
    """Loss to minimise: margin ``z_y − max_{i≠y} z_i``, or cross-entropy toward ``t``."""
    idx = np.arange(len(z))
    if t is None:
        other = z.copy()
        other[idx, y] = -np.inf
        return np.asarray(z[idx, y] - other.max(axis=1))
    top = z.max(axis=1)
    return np.asarray(top + np.log(np.exp(z - top[:, None]).sum(axis=1)) - z[idx, t])


def _window(p: float, h: int, w: int, least: int) -> tuple[int, int]:
    """Window covering a fraction ``p`` of the ``h×w`` plane: ``s×s``, or ``1×s`` when h = 1."""
    if h == 1:
        side, limit = round(p * w), w
    else:
        side, limit = round(math.sqrt(p * h * w)), min(h, w)
    if least == 1:  # L∞: at least one feature, never the whole plane (reference)
        side = min(max(side, 1), max(limit - 1, 1))
    else:  # L2: at least 3 and odd, so both halves of the bump pattern exist (reference)
        side = max(side, 3)
        side = min(side + 1 - side % 2, limit)
    return (1, side) if h == 1 else (side, side)


def _window_mask(rng: np.random.Generator, k: int, h: int, w: int, hs: int, ws: int) -> Any:
    """``(k, 1, h, w)`` masks of one uniformly placed ``hs×ws`` window per sample."""
    r = rng.integers(0, h - hs + 1, size=k)[:, None]
    c = rng.integers(0, w - ws + 1, size=k)[:, None]
    rows, cols = np.arange(h)[None], np.arange(w)[None]
    mh, mw = (rows >= r) & (rows < r + hs), (cols >= c) & (cols < c + ws)
    return (mh[:, :, None] & mw[:, None, :])[:, None]


def _bump(a: int, b: int) -> F64:
    """The reference's pseudo-Gaussian ``a×b`` bump: nested rectangles weighted 1/(k+1)²."""
    out = np.zeros((a, b))
    r, c = a // 2, b // 2
    for k in range(max(r, c) + 1):
        out[max(r - k, 0) : r + k + 1, max(c - k, 0) : c + k + 1] += 1.0 / (k + 1) ** 2
    return np.asarray(out / np.linalg.norm(out))


def _pattern(a: int, b: int, rng: np.random.Generator) -> F64:
    """Unit-norm update of an ``a×b`` window: a +bump and a −bump side by side along the longer
    side (a square window is split horizontally or vertically at random, as in the reference)."""
    if max(a, b) == 1:
        return np.ones((1, 1))
    if a < b:
        return _pattern(b, a, rng).T
    top = a // 2
    out = np.concatenate([_bump(top, b), -_bump(a - top, b)])
    out /= np.linalg.norm(out)
    return out.T if a == b and rng.random() < 0.5 else out


@dataclass(frozen=True)
class _Geometry:
    """Per-attack constants in the ``(k, c, h, w)`` layout."""

    c: int
    h: int
    w: int
    eps: float
    radius: float
    lower: F32
    upper: F32
    mut: F32

    def box(self, x: F32) -> tuple[F32, F32]:
        """Per-feature range of each sample: the ε-box intersected with the bounds."""
        lo = np.maximum(self.lower, x.astype(np.float64) - self.eps)
        hi = np.minimum(self.upper, x.astype(np.float64) + self.eps)
        return inward_box(lo, hi)


def _linf_init(g: _Geometry, x: F32, rng: np.random.Generator) -> F32:
    stripes = rng.choice([-g.eps, g.eps], size=(len(x), g.c, 1, g.w))
    lo, hi = g.box(x)
    return np.clip(x + stripes * g.mut, lo, hi).astype(np.float32)


def _linf_step(g: _Geometry, x: F32, best: F32, p: float, rng: np.random.Generator) -> F32:
    win = _window_mask(rng, len(x), g.h, g.w, *_window(p, g.h, g.w, least=1))
    lo, hi = g.box(x)
    new, todo = best.copy(), np.arange(len(x))
    for _ in range(10):  # redraw the signs while the proposal equals the current point
        signs = rng.choice([-g.eps, g.eps], size=(len(todo), g.c, 1, 1))
        moved = np.clip(x[todo] + signs * g.mut, lo[todo], hi[todo]).astype(np.float32)
        new[todo] = np.where(win[todo], moved, best[todo])
        same = ~(np.abs(new[todo] - best[todo]) > 1e-7).reshape(len(todo), -1).any(axis=1)
        todo = todo[same]
        if not len(todo):
            break
    return new


def _l2_tiles(n: int) -> tuple[int, range]:
    size = max(n // 5, 1)
    count = n // size
    start = (n - size * count) // 2
    return size, range(start, start + size * count, size)


def _to_radius(g: _Geometry, x: F32, delta: F64) -> F32:
    norms = np.sqrt((delta**2).sum(axis=(1, 2, 3), keepdims=True))
    delta = delta * g.radius / np.maximum(norms, 1e-12)
    return np.clip(x + delta, g.lower, g.upper).astype(np.float32)


def _l2_init(g: _Geometry, x: F32, rng: np.random.Generator) -> F32:
    delta = np.zeros(x.shape)
    (th, rows), (tw, cols) = _l2_tiles(g.h), _l2_tiles(g.w)
    for r in rows:
        for c in cols:
            signs = rng.choice([-1.0, 1.0], size=(len(x), g.c, 1, 1))
            delta[:, :, r : r + th, c : c + tw] += _pattern(th, tw, rng) * signs
    return _to_radius(g, x, delta * g.mut)


def _l2_step(g: _Geometry, x: F32, best: F32, p: float, rng: np.random.Generator) -> F32:
    k = len(x)
    hs, ws = _window(p, g.h, g.w, least=3)
    w1, w2 = (_window_mask(rng, k, g.h, g.w, hs, ws) for _ in range(2))
    delta = best.astype(np.float64) - x
    full = np.broadcast_to(w1, delta.shape)
    inside = delta[full].reshape(k, g.c, hs, ws)
    mut = np.broadcast_to(g.mut, delta.shape)[full].reshape(k, g.c, hs, ws)
    norm_w1 = np.sqrt((inside**2).sum(axis=(2, 3), keepdims=True))
    norm_img = np.sqrt((delta**2).sum(axis=(1, 2, 3), keepdims=True))
    norm_both = np.sqrt(((delta * (w1 | w2)) ** 2).sum(axis=(2, 3), keepdims=True))
    signs = rng.choice([-1.0, 1.0], size=(k, g.c, 1, 1))
    new = (_pattern(hs, ws, rng) * signs + inside / (1e-10 + norm_w1)) * mut
    budget = np.sqrt(np.maximum(g.radius**2 - norm_img**2, 0.0) / g.c + norm_both**2)
    new *= budget / np.maximum(np.sqrt((new**2).sum(axis=(2, 3), keepdims=True)), 1e-12)
    delta[np.broadcast_to(w2, delta.shape)] = 0.0
    delta[full] = new.ravel()
    return _to_radius(g, x, delta)


Init = Callable[[_Geometry, F32, np.random.Generator], F32]
Step = Callable[[_Geometry, F32, F32, float, np.random.Generator], F32]
_HOOKS: dict[str, tuple[Init, Step]] = {
    "linf": (_linf_init, _linf_step),
    "l2": (_l2_init, _l2_step),
}


def _image_shape(input_shape: tuple[int, ...]) -> tuple[int, int, int]:
    if len(input_shape) == 1:
        return 1, 1, input_shape[0]
    if len(input_shape) == 2:
        return 1, input_shape[0], input_shape[1]
    if len(input_shape) == 3:
        return input_shape[0], input_shape[1], input_shape[2]
    raise AttackError(f"square attack needs inputs (n,), (H, W) or (C, H, W); got {input_shape}")


@dataclass(frozen=True, kw_only=True)
class SquareAttack(AttackSettings):
    """Square Attack (Andriushchenko et al. 2020) in L∞ (``square-linf``) or L2 (``square-l2``)."""

    eps: float
    """Perturbation budget in the attack's norm, in input units."""
    norm: str = "linf"
    """``linf`` or ``l2``."""
    max_queries: int = 5000
    """Model evaluations per sample, the clean one included (AutoAttack's ``n_queries``)."""
    p_init: float = 0.8
    """Initial fraction of the input a window covers; halved on the paper's schedule."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.norm not in _HOOKS:
            raise AttackError(f"norm must be 'linf' or 'l2', got {self.norm!r}")
        if not (math.isfinite(self.eps) and self.eps >= 0):
            raise AttackError(f"eps must be a finite number >= 0, got {self.eps}")
        if self.max_queries < 2:
            raise AttackError(f"max_queries must be at least 2, got {self.max_queries}")
        if not 0 < self.p_init <= 1:
            raise AttackError(f"p_init must lie in (0, 1], got {self.p_init}")

    @property
    def name(self) -> str:
        """``square-linf`` or ``square-l2``."""
        return f"square-{self.norm}"

    def attack(
        self,
        model: Model,
        x: NDArray[Any],
        y: NDArray[Any],
        *,
        targets: NDArray[Any] | None = None,
    ) -> AttackResult:
        """Attack ``model`` through its scores only; targeted when ``targets`` are given."""
        xs, ys, ts = prepare_inputs(model, x, y, targets)
        xs = model.bounds.clip(xs)  # inputs within prepare_inputs' tolerance, made exact
        shape = tuple(model.input_shape)
        c, h, w = _image_shape(shape)
        mutable = self.mutable_mask(shape)
        g = _Geometry(
            c=c,
            h=h,
            w=w,
            eps=self.eps,
            radius=max(self.eps - f32_rounding_slack(model), 0.0),
            lower=model.bounds.lower.reshape(1, c, h, w),
            upper=model.bounds.upper.reshape(1, c, h, w),
            mut=mutable.reshape(1, c, h, w),
        )

        def run(counter: QueryCounter, adv: F32, labels: NDArray[np.int64]) -> None:
            probs = query_clean(counter, xs, labels, self.batch_size)
            todo = np.flatnonzero(labels == ys if ts is None else labels != ts)
            rng = np.random.default_rng(self.seed)
            for s in range(0, len(todo) if self.eps > 0 and mutable.any() else 0, self.batch_size):
                rows = todo[s : s + self.batch_size]
                self._search(g, counter, rows, xs, ys, ts, adv, labels, probs, rng)

        result, _ = run_blackbox(
            model,
            xs,
            ys,
            ts,
            run,
            norm=self.norm,
            eps=self.eps,
            max_queries=self.max_queries,
            mutable=mutable,
        )
        return result

    def _search(
        self,
        g: _Geometry,
        counter: QueryCounter,
        rows: NDArray[np.intp],
        xs: F32,
        ys: NDArray[np.int64],
        ts: NDArray[np.int64] | None,
        adv: F32,
        labels: NDArray[np.int64],
        probs: bool,
        rng: np.random.Generator,
    ) -> None:
        """Random search on ``rows``; writes each sample into ``adv``/``labels`` once fooled."""
        init, step = _HOOKS[self.norm]
        shape = xs.shape[1:]
        x, y = xs[rows].reshape(len(rows), g.c, g.h, g.w), ys[rows]
        t = None if ts is None else ts[rows]

        def evaluate(points: F32, idx: NDArray[np.intp]) -> tuple[F64, NDArray[np.bool_]]:
            s = np.asarray(counter(points.reshape(len(idx), *shape)), np.float64)
            z = np.log(np.maximum(s, 1e-30)) if probs else s
            loss = square_loss(z, y[idx], None if t is None else t[idx])
            pred = np.asarray(z.argmax(axis=1), np.int64)
            fooled = pred != y[idx] if t is None else pred == t[idx]
            adv[rows[idx[fooled]]] = points[fooled].reshape(-1, *shape)
            labels[rows[idx[fooled]]] = pred[fooled]
            return loss, fooled

        every = np.arange(len(rows))
        best = init(g, x, rng)
        loss, done = evaluate(best, every)
        for it in range(self.max_queries - 2):
            act = every[~done]
            if not len(act):
                break
            cand = step(g, x[act], best[act], p_schedule(self.p_init, it, self.max_queries), rng)
            new_loss, fooled = evaluate(cand, act)
            better = new_loss < loss[act]
            best[act[better]], loss[act[better]] = cand[better], new_loss[better]
            done[act[fooled]] = True
