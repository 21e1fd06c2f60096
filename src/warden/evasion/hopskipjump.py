"""HopSkipJump: decision-based (labels only) minimal-perturbation attack, in L2 and L∞.

Chen, Jordan, Wainwright. "HopSkipJumpAttack: A Query-Efficient Decision-Based Attack",
IEEE S&P 2020. https://arxiv.org/abs/1904.02144

Uses only the model's predicted label (``model(x).argmax``). Starting from an adversarial
point, each iteration (1) estimates the direction of the boundary's normal by Monte-Carlo
sampling ``num_evals = init_evals·√t`` (at most ``max_evals``) points on a sphere of radius
``δ_t`` around the current boundary point (baseline-corrected, Eq. 16 of the paper), (2) steps
along it (its sign for L∞) by a geometric search starting at ``‖x_t − x*‖/√t``, and (3) goes back
to the boundary by binary search toward the input, to threshold ``θ = γ/d^{3/2}`` (L2) or
``γ/d²`` (L∞). ``δ_1`` is a tenth of the mean feature range, then ``δ_t = √d·θ·dist`` (L2) or
``d·θ·dist`` (L∞), with ``d`` the number of mutable features, as in the authors' code.

Starting point (untargeted and targeted alike): first the nearest other input of the same call
that the model already labels as wanted (any wrong class, or the target), with this input's
immutable features, like the reference's ``target_image``, so no query is spent looking for it;
then uniform noise inside the bounds, ``init_attempts`` draws at most. The best (closest)
adversarial point found is returned; ``eps``, when given, only caps the result.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from numpy.typing import NDArray

from warden.errors import AttackError
from warden.evasion._blackbox import query_clean, run_blackbox
from warden.evasion.base import (
    AttackResult,
    AttackSettings,
    measure_norms,
    prepare_inputs,
    validate_eps,
)
from warden.evasion.budget import QueryCounter
from warden.models.base import Model

__all__ = ["HopSkipJump"]

F32 = NDArray[np.float32]
F64 = NDArray[np.float64]
I64 = NDArray[np.int64]
Valid = Callable[[F64, NDArray[np.intp]], F32]
"""Clips points into the bounds and restores the immutable features of the given samples."""


class _L2:
    """L2 geometry: blend toward the input, Gaussian probes, move along the estimate."""

    @staticmethod
    def theta(gamma: float, d: int) -> float:
        return gamma / (d * math.sqrt(d))

    @staticmethod
    def delta(theta: float, d: int, dist: F64) -> F64:
        return np.asarray(math.sqrt(d) * theta * dist)

    @staticmethod
    def search_range(dist: F64, theta: float) -> tuple[F64, F64]:
        return np.ones_like(dist), np.full_like(dist, theta)

    @staticmethod
    def project(x: F32, a: F32, alpha: F64) -> F64:
        al = alpha.reshape(-1, *[1] * (x.ndim - 1))
        return np.asarray((1.0 - al) * x + al * a)

    @staticmethod
    def noise(rng: np.random.Generator, shape: tuple[int, ...]) -> F64:
        return rng.standard_normal(shape)

    @staticmethod
    def direction(grad: F64) -> F64:
        return grad


class _Linf:
    """L∞ geometry: clip into a shrinking box, uniform probes, move along the estimate's sign."""

    @staticmethod
    def theta(gamma: float, d: int) -> float:
        return gamma / (d * d)

    @staticmethod
    def delta(theta: float, d: int, dist: F64) -> F64:
        return np.asarray(d * theta * dist)

    @staticmethod
    def search_range(dist: F64, theta: float) -> tuple[F64, F64]:
        return dist.copy(), np.minimum(dist * theta, theta)

    @staticmethod
    def project(x: F32, a: F32, alpha: F64) -> F64:
        al = alpha.reshape(-1, *[1] * (x.ndim - 1))
        return np.asarray(np.clip(a, x - al, x + al))

    @staticmethod
    def noise(rng: np.random.Generator, shape: tuple[int, ...]) -> F64:
        return rng.uniform(-1.0, 1.0, shape)

    @staticmethod
    def direction(grad: F64) -> F64:
        return np.sign(grad)


_GEOMETRY: dict[str, type[_L2] | type[_Linf]] = {"l2": _L2, "linf": _Linf}


@dataclass
class _Chunk:
    """One batch of samples under attack: inputs, labels wanted, per-sample query accounts."""

    counter: QueryCounter
    x: F32
    y: I64
    t: I64 | None
    used: I64
    max_queries: int
    starved: NDArray[np.bool_]

    def ask(self, pts: F32, owners: NDArray[np.intp]) -> tuple[I64, NDArray[np.bool_]]:
        """Labels of ``pts`` (row ``i`` charged to sample ``owners[i]``) and which are wanted."""
        lab = self.counter.labels(pts)
        np.add.at(self.used, owners, 1)
        adv = lab != self.y[owners] if self.t is None else lab == self.t[owners]
        return lab, np.asarray(adv)

    def affordable(self, idx: NDArray[np.intp], n: int = 1) -> NDArray[np.bool_]:
        """Which of ``idx`` can pay ``n`` more queries; the others are marked starved."""
        ok = self.max_queries - self.used[idx] >= n
        self.starved[idx[~ok]] = True
        return np.asarray(ok)


@dataclass(frozen=True, kw_only=True)
class HopSkipJump(AttackSettings):
    """HopSkipJump (Chen et al. 2020), labels only; L2 (``hsj-l2``) or L∞ (``hsj-linf``)."""

    norm: str = "l2"
    """``l2`` or ``linf``."""
    eps: float | None = None
    """Optional cap: results farther than ``eps`` from the input count as failures."""
    steps: int = 40
    """Iterations (gradient estimate, geometric step, binary search)."""
    max_queries: int = 25_000
    """Model evaluations per sample, the clean one included."""
    init_evals: int = 100
    """Monte-Carlo probes at the first iteration; iteration ``t`` uses ``init_evals·√t``."""
    max_evals: int = 10_000
    """Most Monte-Carlo probes in one iteration."""
    gamma: float = 1.0
    """Binary-search threshold scale: ``θ = γ/d^{3/2}`` (L2) or ``γ/d²`` (L∞)."""
    init_attempts: int = 100
    """Uniform-noise draws per sample when looking for a starting point."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.norm not in _GEOMETRY:
            raise AttackError(f"norm must be 'l2' or 'linf', got {self.norm!r}")
        validate_eps(self.eps)
        if min(self.steps, self.max_queries, self.init_evals, self.init_attempts) < 1:
            raise AttackError("steps, max_queries, init_evals and init_attempts must be >= 1")
        if self.max_evals < self.init_evals:
            raise AttackError(f"max_evals ({self.max_evals}) is below init_evals")
        if not (self.gamma > 0 and math.isfinite(self.gamma)):
            raise AttackError(f"gamma must be a positive number, got {self.gamma}")

    @property
    def name(self) -> str:
        """``hsj-l2`` or ``hsj-linf``."""
        return f"hsj-{self.norm}"

    def attack(
        self,
        model: Model,
        x: NDArray[Any],
        y: NDArray[Any],
        *,
        targets: NDArray[Any] | None = None,
    ) -> AttackResult:
        """Attack ``model`` through its labels only; targeted when ``targets`` are given."""
        xs, ys, ts = prepare_inputs(model, x, y, targets)
        xs = model.bounds.clip(xs)  # inputs within prepare_inputs' tolerance, made exact
        mutable = self.mutable_mask(model.input_shape)
        starved = False

        def run(counter: QueryCounter, adv: F32, labels: I64) -> None:
            nonlocal starved
            query_clean(counter, xs, labels, self.batch_size)
            clean = labels.copy()
            todo = np.flatnonzero(labels == ys if ts is None else labels != ts)
            rng = np.random.default_rng(self.seed)
            for s in range(0, len(todo) if mutable.any() else 0, self.batch_size):
                rows = todo[s : s + self.batch_size]
                chunk = _Chunk(
                    counter=counter,
                    x=xs[rows],
                    y=ys[rows],
                    t=None if ts is None else ts[rows],
                    used=np.ones(len(rows), np.int64),
                    max_queries=self.max_queries,
                    starved=np.zeros(len(rows), bool),
                )
                self._attack_chunk(chunk, model, rows, xs, clean, adv, labels, mutable, rng)
                starved = starved or bool(chunk.starved.any())

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
        return replace(result, budget_exhausted=True) if starved else result

    def _attack_chunk(
        self,
        ch: _Chunk,
        model: Model,
        rows: NDArray[np.intp],
        xs: F32,
        clean: I64,
        adv: F32,
        labels: I64,
        mutable: F32,
        rng: np.random.Generator,
    ) -> None:
        """Run HopSkipJump on ``rows``; ``adv``/``labels`` always hold the best point so far."""
        h = _GEOMETRY[self.norm]
        d = int(mutable.sum())
        theta = h.theta(self.gamma, d)
        lower, upper = model.bounds.lower, model.bounds.upper

        def valid(pts: F64, idx: NDArray[np.intp]) -> F32:
            inside = np.clip(pts, lower, upper).astype(np.float32)
            return np.where(mutable > 0, inside, ch.x[idx]).astype(np.float32)

        def dist(pts: F32, idx: NDArray[np.intp]) -> F64:
            return measure_norms(pts - ch.x[idx], self.norm).astype(np.float64)

        best_dist = np.full(len(rows), np.inf)

        def keep(pts: F32, lab: I64, idx: NDArray[np.intp]) -> None:
            dd = dist(pts, idx)
            better = dd < best_dist[idx]
            best_dist[idx[better]] = dd[better]
            adv[rows[idx[better]]], labels[rows[idx[better]]] = pts[better], lab[better]

        def binary_search(a: F32, a_lab: I64, idx: NDArray[np.intp]) -> tuple[F32, I64, F64]:
            dist_a = dist(a, idx)
            high, thr = h.search_range(dist_a, theta)
            thr = np.maximum(thr, 1e-12)
            low = np.zeros_like(high)
            out, out_lab = a.copy(), a_lab.copy()
            while True:
                n = np.flatnonzero((high - low) / thr > 1)
                n = n[ch.affordable(idx[n])]
                if not len(n):
                    break
                mid = (high[n] + low[n]) / 2.0
                pts = valid(h.project(ch.x[idx[n]], a[n], mid), idx[n])
                lab, ok = ch.ask(pts, idx[n])
                high[n[ok]], out[n[ok]], out_lab[n[ok]] = mid[ok], pts[ok], lab[ok]
                low[n[~ok]] = mid[~ok]
            keep(out, out_lab, idx)
            return out, out_lab, dist_a

        start, start_lab, found = self._initialise(ch, xs, clean, mutable, valid, rng)
        xt, xt_lab, dist_post = binary_search(start[found], start_lab[found], found)
        alive = found
        mean_range = float(((upper - lower) * mutable).sum() / d)
        for step in range(1, self.steps + 1):
            num_evals = min(int(self.init_evals * math.sqrt(step)), self.max_evals)
            ok = ch.affordable(alive, 2)
            alive, xt, xt_lab, dist_post = alive[ok], xt[ok], xt_lab[ok], dist_post[ok]
            if not len(alive):
                break
            first = np.full(len(alive), 0.1 * mean_range)
            delta = first if step == 1 else h.delta(theta, d, dist_post)
            n_evals = np.minimum(num_evals, ch.max_queries - ch.used[alive] - 1)
            grad = self._gradient(ch, h, xt, alive, delta, n_evals, mutable, valid, rng)
            update = h.direction(grad)
            # Geometric progression: halve the step until the point is adversarial again.
            size = dist(xt, alive) / math.sqrt(step)
            moved, moved_lab = xt.copy(), xt_lab.copy()
            pending = np.ones(len(alive), bool)
            for _ in range(64):
                n = np.flatnonzero(pending)
                n = n[ch.affordable(alive[n])]
                if not len(n):
                    break
                sz = size[n].reshape(-1, *[1] * (xt.ndim - 1))
                pts = valid(xt[n] + sz * update[n], alive[n])
                lab, ok = ch.ask(pts, alive[n])
                moved[n[ok]], moved_lab[n[ok]] = pts[ok], lab[ok]
                pending[n[ok]] = False
                size[n[~ok]] /= 2.0
            go = np.flatnonzero(~pending)
            alive = alive[go]
            xt, xt_lab, dist_post = binary_search(moved[go], moved_lab[go], alive)

    def _initialise(
        self,
        ch: _Chunk,
        xs: F32,
        clean: I64,
        mutable: F32,
        valid: Valid,
        rng: np.random.Generator,
    ) -> tuple[F32, I64, NDArray[np.intp]]:
        """An adversarial starting point per sample: nearest fitting input, else uniform noise."""
        m = len(ch.x)
        start, start_lab = ch.x.copy(), np.full(m, -1, np.int64)
        pool = np.flatnonzero(clean >= 0)
        donors: list[int] = []
        for i in range(m):
            fits = clean[pool] != ch.y[i] if ch.t is None else clean[pool] == ch.t[i]
            cand = pool[fits]
            if len(cand):
                gaps = measure_norms((xs[cand] - ch.x[i]) * mutable, self.norm)
                cand, gaps = cand[gaps > 0], gaps[gaps > 0]
            donors.append(int(cand[np.argmin(gaps)]) if len(cand) else -1)
        has = np.flatnonzero(np.asarray(donors) >= 0)
        has = has[ch.affordable(has)]
        pending = np.ones(m, bool)
        if len(has):
            pts = valid(xs[np.asarray(donors)[has]].astype(np.float64), has)
            lab, ok = ch.ask(pts, has)
            start[has[ok]], start_lab[has[ok]] = pts[ok], lab[ok]
            pending[has[ok]] = False
        lower, upper = ch.counter.bounds.lower, ch.counter.bounds.upper
        for _ in range(self.init_attempts):
            n = np.flatnonzero(pending)
            n = n[ch.affordable(n)]
            if not len(n):
                break
            pts = valid(rng.uniform(lower, upper, size=(len(n), *lower.shape)), n)
            lab, ok = ch.ask(pts, n)
            start[n[ok]], start_lab[n[ok]] = pts[ok], lab[ok]
            pending[n[ok]] = False
        return start, start_lab, np.flatnonzero(~pending)

    def _gradient(
        self,
        ch: _Chunk,
        h: type[_L2] | type[_Linf],
        xt: F32,
        idx: NDArray[np.intp],
        delta: F64,
        n_evals: I64,
        mutable: F32,
        valid: Valid,
        rng: np.random.Generator,
    ) -> F64:
        """Monte-Carlo estimate of the boundary normal at each ``xt`` (Eq. 16, baseline)."""
        grads = np.zeros(xt.shape)
        group_rows = max(int(n_evals.max(initial=1)), 4096)
        start = 0
        while start < len(idx):
            stop, total = start, 0
            while stop < len(idx) and (stop == start or total + n_evals[stop] <= group_rows):
                total += int(n_evals[stop])
                stop += 1
            probes, pts = [], []
            for i in range(start, stop):
                rv = h.noise(rng, (int(n_evals[i]), *xt.shape[1:])) * mutable
                size = np.sqrt((rv**2).reshape(len(rv), -1).sum(axis=1))
                rv /= np.maximum(size, 1e-12).reshape(-1, *[1] * (rv.ndim - 1))
                p = valid(xt[i] + delta[i] * rv, np.full(len(rv), idx[i]))
                probes.append((p - xt[i]) / delta[i])
                pts.append(p)
            owners = np.repeat(idx[start:stop], n_evals[start:stop])
            _, ok = ch.ask(np.concatenate(pts), owners)
            bounds = np.cumsum(n_evals[start:stop])[:-1]
            for i, rv, dec in zip(range(start, stop), probes, np.split(ok, bounds), strict=True):
                f = 2.0 * dec - 1.0
                if abs(f.mean()) < 1.0:
                    f = f - f.mean()
                g = (f.reshape(-1, *[1] * (rv.ndim - 1)) * rv).mean(axis=0)
                grads[i] = g / max(float(np.linalg.norm(g)), 1e-12)
            start = stop
        return grads
