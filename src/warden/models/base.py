"""The ``Model`` protocol and the per-feature ``Bounds`` every adapter carries.

A model is anything callable on a batch ``x`` of shape ``(n, *input_shape)`` that returns one
row of scores (logits or probabilities) per input, and that says how many classes it has and
what the valid range of each input feature is. Black-box methods use only ``__call__``;
gradient methods need a :class:`~warden.models.torch.TorchModel`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np
from numpy.typing import ArrayLike, NDArray

from warden.errors import InputShapeError

__all__ = ["AdapterBase", "Bounds", "Model", "check_batch", "predict_labels"]

FloatArray = NDArray[np.float32]


@dataclass(frozen=True, eq=False)
class Bounds:
    """Per-feature valid range of a model's input (inclusive)."""

    lower: FloatArray
    """Lowest valid value of each feature; shape is the model's ``input_shape``."""
    upper: FloatArray
    """Highest valid value of each feature; same shape as ``lower``."""

    def __post_init__(self) -> None:
        lower = np.asarray(self.lower, dtype=np.float32)
        upper = np.asarray(self.upper, dtype=np.float32)
        if lower.shape != upper.shape:
            raise InputShapeError(
                f"bounds: lower has shape {lower.shape} but upper has shape {upper.shape}"
            )
        if not (np.all(np.isfinite(lower)) and np.all(np.isfinite(upper))):
            raise InputShapeError("bounds must be finite numbers")
        if np.any(lower > upper):
            raise InputShapeError("bounds: some lower bound is above its upper bound")
        lower.setflags(write=False)
        upper.setflags(write=False)
        object.__setattr__(self, "lower", lower)
        object.__setattr__(self, "upper", upper)

    @classmethod
    def uniform(cls, low: float, high: float, shape: Sequence[int]) -> Bounds:
        """The same range ``[low, high]`` for every feature of ``shape``."""
        shape = tuple(int(s) for s in shape)
        return cls(np.full(shape, low, np.float32), np.full(shape, high, np.float32))

    @classmethod
    def from_data(cls, x: ArrayLike) -> Bounds:
        """The per-feature min and max observed over the first axis of ``x``."""
        arr = np.asarray(x, dtype=np.float32)
        if arr.ndim < 2 or arr.shape[0] == 0:
            raise InputShapeError(f"need a non-empty batch to derive bounds, got shape {arr.shape}")
        return cls(arr.min(axis=0), arr.max(axis=0))

    @classmethod
    def from_dict(cls, data: dict[str, Any], shape: Sequence[int]) -> Bounds:
        """Read ``{"lower": scalar|list, "upper": scalar|list}``, broadcasting scalars."""
        shape = tuple(int(s) for s in shape)
        try:
            lower = np.broadcast_to(np.asarray(data["lower"], np.float32), shape)
            upper = np.broadcast_to(np.asarray(data["upper"], np.float32), shape)
        except (KeyError, ValueError, TypeError) as exc:
            raise InputShapeError(
                f"bounds must be {{'lower': ..., 'upper': ...}} broadcastable to {shape}: {exc}"
            ) from exc
        return cls(np.array(lower), np.array(upper))

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of one input."""
        return tuple(self.lower.shape)

    def clip(self, x: NDArray[Any]) -> FloatArray:
        """``x`` clipped into the bounds, feature by feature."""
        return np.asarray(np.clip(x, self.lower, self.upper), dtype=np.float32)

    def contains(self, x: NDArray[Any], atol: float = 1e-6) -> NDArray[np.bool_]:
        """Per-sample mask: every feature of the sample lies inside the bounds (± ``atol``)."""
        inside = (x >= self.lower - atol) & (x <= self.upper + atol)
        return np.asarray(inside.reshape(len(x), -1).all(axis=1))

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form; a scalar when every feature shares one value."""

        def compact(a: FloatArray) -> float | list[Any]:
            flat = a.ravel()
            if flat.size and np.all(flat == flat[0]):
                return float(flat[0])
            return [float(v) for v in flat]

        return {"lower": compact(self.lower), "upper": compact(self.upper)}


@runtime_checkable
class Model(Protocol):
    """What Warden protects: a batch classifier with known input range.

    ``__call__`` takes ``x`` of shape ``(n, *input_shape)`` (float32) and returns scores of
    shape ``(n, n_classes)``: logits or probabilities, argmax is the predicted class.
    """

    @property
    def n_classes(self) -> int:
        """Number of classes (columns of the score matrix)."""
        ...

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one input, without the batch axis."""
        ...

    @property
    def bounds(self) -> Bounds:
        """Per-feature valid range of the input."""
        ...

    def __call__(self, x: NDArray[Any]) -> NDArray[Any]:
        """Scores for a batch, one row per input."""
        ...


class AdapterBase:
    """The read-only ``n_classes``/``input_shape``/``bounds`` of Warden's own adapters.

    Subclasses set ``_n_classes``, ``_input_shape`` and ``_bounds`` in ``__init__``. Users'
    models need not inherit from it: the :class:`Model` protocol is structural.
    """

    _n_classes: int
    _input_shape: tuple[int, ...]
    _bounds: Bounds

    @property
    def n_classes(self) -> int:
        """Number of classes (columns of the score matrix)."""
        return self._n_classes

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one input, without the batch axis."""
        return self._input_shape

    @property
    def bounds(self) -> Bounds:
        """Per-feature valid range of the input."""
        return self._bounds


def check_batch(x: ArrayLike, input_shape: Sequence[int], *, what: str = "input") -> FloatArray:
    """Validate a batch against ``input_shape``: numeric, right shape, finite; return float32.

    A single sample of exactly ``input_shape`` is refused: the batch axis must be explicit.
    """
    shape = tuple(int(s) for s in input_shape)
    try:
        arr = np.asarray(x, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise InputShapeError(f"{what} is not a numeric array: {exc}") from exc
    if arr.ndim != len(shape) + 1 or tuple(arr.shape[1:]) != shape:
        raise InputShapeError(
            f"{what} has shape {arr.shape}; expected (n, {', '.join(map(str, shape))})"
        )
    if not np.all(np.isfinite(arr)):
        bad = int(np.flatnonzero(~np.isfinite(arr.reshape(len(arr), -1)).all(axis=1))[0])
        raise InputShapeError(f"{what} row {bad} contains NaN or infinity")
    return arr


def predict_labels(model: Model, x: NDArray[Any], batch_size: int = 256) -> NDArray[np.int64]:
    """Predicted class of each input (argmax of the scores), computed in batches."""
    out = np.empty(len(x), dtype=np.int64)
    for start in range(0, len(x), batch_size):
        scores = np.asarray(model(x[start : start + batch_size]))
        out[start : start + batch_size] = scores.argmax(axis=1)
    return out
