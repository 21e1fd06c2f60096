"""``QueryCounter``: counts the rows a black-box attack sends to a model and enforces a budget."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from warden.errors import QueryBudgetExceeded
from warden.models.base import Bounds, Model

__all__ = ["QueryCounter"]


class QueryCounter:
    """Wrap a model; count every input row evaluated; refuse to exceed ``max_queries`` rows.

    A model's own budget (``HttpModel(max_queries=...)``) raises the same
    :class:`~warden.errors.QueryBudgetExceeded`; attacks catch it, stop, and return their best
    result so far with ``budget_exhausted=True``.
    """

    def __init__(self, model: Model, max_queries: int | None = None) -> None:
        self.model = model
        self.max_queries = max_queries
        self.used = 0

    @property
    def n_classes(self) -> int:
        return self.model.n_classes

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.model.input_shape)

    @property
    def bounds(self) -> Bounds:
        return self.model.bounds

    @property
    def remaining(self) -> int | None:
        """Rows left, or ``None`` without a budget."""
        return None if self.max_queries is None else max(self.max_queries - self.used, 0)

    def __call__(self, x: NDArray[Any]) -> NDArray[Any]:
        n = len(x)
        if self.max_queries is not None and self.used + n > self.max_queries:
            raise QueryBudgetExceeded(
                f"attack query budget spent: {self.used} of {self.max_queries} rows used, "
                f"{n} more requested"
            )
        scores = np.asarray(self.model(x))
        self.used += n
        return scores

    def labels(self, x: NDArray[Any]) -> NDArray[np.int64]:
        """Predicted labels (argmax), counted like any call."""
        return np.asarray(self(x).argmax(axis=1), np.int64)
