"""Plumbing shared by the black-box attacks (Square, HopSkipJump): not an attack itself.

Every black-box attack queries the clean inputs once, keeps the model's label for every row it
will return, and stops when a query budget (its own :class:`QueryCounter` or the model's, e.g.
``HttpModel(max_queries=...)``) raises :class:`~warden.errors.QueryBudgetExceeded`. The result
is then built from those known labels, so no query is spent after the budget is gone.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np
from numpy.typing import NDArray

from warden.errors import QueryBudgetExceeded
from warden.evasion.base import AttackResult, finalize
from warden.evasion.budget import QueryCounter
from warden.models.base import Model

__all__ = [
    "f32_rounding_slack",
    "inward_box",
    "looks_like_probabilities",
    "query_clean",
    "run_blackbox",
]

Run = Callable[[QueryCounter, NDArray[np.float32], NDArray[np.int64]], None]
"""The algorithm: ``run(counter, adv, labels)`` improves ``adv`` in place and records in
``labels`` the model's label of every row of ``adv`` it queried (``-1``: never queried)."""


def looks_like_probabilities(scores: NDArray[Any]) -> bool:
    """Scores are probabilities when every row is non-negative and sums to 1 (± 1e-3)."""
    s = np.asarray(scores, np.float64)
    return bool(len(s)) and bool(np.all(s >= 0)) and bool(np.allclose(s.sum(1), 1.0, atol=1e-3))


def inward_box(
    lo: NDArray[np.float64], hi: NDArray[np.float64]
) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """``[lo, hi]`` in float32, rounded inwards so the float32 box lies inside the exact one."""
    lo32, hi32 = lo.astype(np.float32), hi.astype(np.float32)
    lo32 = np.where(lo32 < lo, np.nextafter(lo32, np.float32(np.inf)), lo32)
    hi32 = np.where(hi32 > hi, np.nextafter(hi32, np.float32(-np.inf)), hi32)
    return lo32, np.maximum(hi32, lo32)


def run_blackbox(
    model: Model,
    xs: NDArray[np.float32],
    ys: NDArray[np.int64],
    ts: NDArray[np.int64] | None,
    run: Run,
    *,
    norm: str,
    eps: float | None,
    max_queries: int,
    mutable: NDArray[np.float32],
) -> tuple[AttackResult, bool]:
    """Run ``run`` under a counter of ``max_queries`` rows per sample and build the result.

    Returns the result and whether ``run`` was stopped by a query budget. Rows whose label was
    never learned (the budget ran out first) are returned unchanged and counted as failures.
    """
    counter = QueryCounter(model, max_queries * len(xs))
    adv = xs.copy()
    labels = np.full(len(xs), -1, np.int64)
    stopped = False
    try:
        run(counter, adv, labels)
    except QueryBudgetExceeded:
        stopped = True
    known = labels >= 0
    adv[~known] = xs[~known]
    result = finalize(
        model,
        xs,
        adv,
        ys,
        ts,
        norm=norm,
        eps=eps,
        queries=counter.used,
        mutable=mutable,
        budget_exhausted=stopped,
        pred=np.where(known, labels, ys),
    )
    if not known.all():
        result = replace(result, success=result.success & known)
    return result, stopped


def query_clean(
    counter: QueryCounter, xs: NDArray[np.float32], labels: NDArray[np.int64], batch_size: int
) -> bool:
    """Label the clean inputs into ``labels`` (in place), ``batch_size`` rows per call.

    Returns whether the model answers with probabilities (else its scores are logits).
    """
    probs = True
    for start in range(0, len(xs), batch_size):
        scores = counter(xs[start : start + batch_size])
        labels[start : start + batch_size] = scores.argmax(axis=1)
        probs = probs and looks_like_probabilities(scores)
    return probs


def f32_rounding_slack(model: Model) -> float:
    """Upper bound on the L2 error float32 rounding adds to a perturbation inside the bounds."""
    b = model.bounds
    top = float(max(np.abs(b.lower).max(initial=0.0), np.abs(b.upper).max(initial=0.0)))
    return math.sqrt(b.lower.size) * max(top, 1.0) * 2.0**-23
