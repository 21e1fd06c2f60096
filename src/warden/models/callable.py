"""``CallableModel``: any numpy function ``f(x) -> scores`` as a Warden model.

Also home of the two checks every adapter shares: :func:`resolve_bounds` (what ``bounds=None``
means) and :func:`check_scores` (a score matrix has the promised shape and is finite).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from warden.errors import InputShapeError, ModelError
from warden.models.base import AdapterBase, Bounds, check_batch

__all__ = ["CallableModel", "check_scores", "resolve_bounds"]

logger = logging.getLogger(__name__)


def resolve_bounds(bounds: Bounds | None, input_shape: tuple[int, ...], owner: str) -> Bounds:
    """``bounds`` checked against ``input_shape``; ``None`` (unknown) becomes ``[0, 1]``.

    ``[0, 1]`` per feature is the convention for images scaled to unit range. Tabular models
    should pass their real range (for example ``Bounds.from_data(x_train)``): attacks clip
    into the bounds, so a wrong range silently weakens them.
    """
    if bounds is None:
        logger.debug("%s: no bounds given; assuming [0, 1] for every feature", owner)
        return Bounds.uniform(0.0, 1.0, input_shape)
    if bounds.shape != input_shape:
        raise InputShapeError(
            f"{owner}: bounds have shape {bounds.shape} but input_shape is {input_shape}"
        )
    return bounds


def check_scores(scores: Any, n_rows: int, n_classes: int, what: str) -> NDArray[np.float32]:
    """``scores`` as a finite float32 ``(n_rows, n_classes)`` matrix, else :class:`ModelError`."""
    try:
        arr = np.asarray(scores, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ModelError(f"{what} returned scores that are not a numeric array: {exc}") from exc
    if arr.shape != (n_rows, n_classes):
        raise ModelError(
            f"{what} returned scores of shape {arr.shape}; expected ({n_rows}, {n_classes}), "
            "one row per input and one column per class"
        )
    finite = np.isfinite(arr).all(axis=1)
    if not finite.all():
        bad = int(np.flatnonzero(~finite)[0])
        raise ModelError(f"{what} returned NaN or infinity in the scores of row {bad}")
    return arr.astype(np.float32)


def _shape(input_shape: Sequence[int], owner: str) -> tuple[int, ...]:
    shape = tuple(int(s) for s in input_shape)
    if not shape or any(s < 1 for s in shape):
        raise InputShapeError(f"{owner}: input_shape must be positive sizes, got {shape}")
    return shape


class CallableModel(AdapterBase):
    """Wrap ``fn(x) -> scores``: ``x`` is a validated float32 batch ``(n, *input_shape)``.

    ``fn`` must return ``(n, n_classes)`` finite scores (logits or probabilities); anything
    else raises :class:`~warden.errors.ModelError`. ``bounds=None`` means unknown and is taken
    as ``[0, 1]`` per feature (see :func:`resolve_bounds`).
    """

    def __init__(
        self,
        fn: Callable[[NDArray[np.float32]], Any],
        *,
        n_classes: int,
        input_shape: Sequence[int],
        bounds: Bounds | None = None,
    ) -> None:
        if not callable(fn):
            raise ModelError(f"CallableModel needs a callable, got {type(fn).__name__}")
        if n_classes < 2:
            raise ModelError(f"n_classes must be at least 2, got {n_classes}")
        self.fn = fn
        self._n_classes = int(n_classes)
        self._input_shape = _shape(input_shape, "CallableModel")
        self._bounds = resolve_bounds(bounds, self._input_shape, "CallableModel")

    def __call__(self, x: NDArray[Any]) -> NDArray[np.float32]:
        arr = check_batch(x, self._input_shape)
        name = getattr(self.fn, "__name__", type(self.fn).__name__)
        return check_scores(self.fn(arr), len(arr), self._n_classes, f"model function {name!r}")

    def __repr__(self) -> str:
        name = getattr(self.fn, "__name__", type(self.fn).__name__)
        return (
            f"CallableModel({name}, input_shape={self._input_shape}, n_classes={self._n_classes})"
        )
