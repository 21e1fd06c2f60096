"""``Dataset``: inputs, labels, and what is known about them, with a content fingerprint."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from warden.errors import DataError
from warden.models.base import Bounds

__all__ = ["Dataset", "fingerprint_arrays"]


def fingerprint_arrays(x: NDArray[Any], y: NDArray[Any]) -> str:
    """SHA-256 over a canonical encoding of ``(x, y)``.

    The encoding is: a header line ``warden-dataset-v1`` then, for each array, its dtype as
    little-endian numpy type string, its shape, and its bytes in C order, little-endian.
    The same numbers always give the same digest, whatever the memory layout or byte order.
    """
    h = hashlib.sha256(b"warden-dataset-v1\n")
    for arr in (x, y):
        a = np.ascontiguousarray(arr)
        a = a.astype(a.dtype.newbyteorder("<"), copy=False)
        h.update(f"{a.dtype.str}|{','.join(map(str, a.shape))}\n".encode())
        h.update(a.tobytes(order="C"))
    return "sha256:" + h.hexdigest()


@dataclass(frozen=True, eq=False)
class Dataset:
    """A labelled set of inputs. Arrays are validated once and made read-only."""

    x: NDArray[np.float32]
    """Inputs, shape ``(n, *input_shape)``, float32, finite."""
    y: NDArray[np.int64]
    """Integer class labels, shape ``(n,)``, in ``[0, n_classes)``."""
    name: str
    """Where the data came from (bundled name or file path)."""
    bounds: Bounds | None = None
    """Valid range of each feature; defaults to the observed per-feature min/max."""
    feature_names: tuple[str, ...] | None = None
    """Names of the features of a tabular set (one per column), if known."""
    class_names: tuple[str, ...] | None = None
    """Name of each class, index = label, if known."""
    metadata: dict[str, Any] = field(default_factory=dict)
    """Free-form facts about the source (licence, standardisation, path, ...)."""

    def __post_init__(self) -> None:
        try:
            x = np.array(self.x, dtype=np.float32, copy=True)
        except (TypeError, ValueError) as exc:
            raise DataError(f"{self.name}: inputs are not numeric: {exc}") from exc
        y_raw = np.asarray(self.y)
        if x.ndim < 2:
            raise DataError(f"{self.name}: inputs need shape (n, ...), got {x.shape}")
        if y_raw.ndim != 1 or len(y_raw) != len(x):
            raise DataError(
                f"{self.name}: labels have shape {y_raw.shape}; expected ({len(x)},), one per input"
            )
        if len(x) == 0:
            raise DataError(f"{self.name}: the dataset is empty")
        bad_rows = ~np.isfinite(x.reshape(len(x), -1)).all(axis=1)
        if bad_rows.any():
            raise DataError(
                f"{self.name}: row {int(np.flatnonzero(bad_rows)[0])} contains NaN or infinity"
            )
        if not np.issubdtype(y_raw.dtype, np.integer):
            if (
                np.issubdtype(y_raw.dtype, np.floating)
                and np.all(np.isfinite(y_raw))
                and np.all(y_raw == np.round(y_raw))
            ):
                y_raw = y_raw.astype(np.int64)
            else:
                raise DataError(f"{self.name}: labels must be integers, got dtype {y_raw.dtype}")
        y = y_raw.astype(np.int64)
        if np.any(y < 0):
            raise DataError(
                f"{self.name}: row {int(np.flatnonzero(y < 0)[0])} has a negative label"
            )
        bounds = self.bounds if self.bounds is not None else Bounds.from_data(x)
        if bounds.shape != x.shape[1:]:
            raise DataError(
                f"{self.name}: bounds shape {bounds.shape} differs from input shape {x.shape[1:]}"
            )
        if self.feature_names is not None and len(self.feature_names) != int(np.prod(x.shape[1:])):
            raise DataError(
                f"{self.name}: {len(self.feature_names)} feature names for "
                f"{int(np.prod(x.shape[1:]))} features"
            )
        x.setflags(write=False)
        y.setflags(write=False)
        object.__setattr__(self, "x", x)
        object.__setattr__(self, "y", y)
        object.__setattr__(self, "bounds", bounds)

    def __len__(self) -> int:
        return len(self.x)

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one input."""
        return tuple(self.x.shape[1:])

    @property
    def n_classes(self) -> int:
        """Number of classes: from ``class_names`` if given, else ``max(y) + 1``."""
        if self.class_names is not None:
            return len(self.class_names)
        return int(self.y.max()) + 1

    @property
    def valid_bounds(self) -> Bounds:
        """The bounds (always set after construction)."""
        assert self.bounds is not None
        return self.bounds

    @cached_property
    def fingerprint(self) -> str:
        """Content fingerprint: ``sha256:`` + hex digest of the canonical encoding of x and y."""
        return fingerprint_arrays(self.x, self.y)

    def take(
        self, indices: Sequence[int] | NDArray[np.integer[Any]], name: str | None = None
    ) -> Dataset:
        """A new dataset of the rows at ``indices`` (same bounds and names)."""
        idx = np.asarray(indices, dtype=np.int64)
        return Dataset(
            x=self.x[idx],
            y=self.y[idx],
            name=name or self.name,
            bounds=self.bounds,
            feature_names=self.feature_names,
            class_names=self.class_names,
            metadata=dict(self.metadata),
        )

    def split(self, test_fraction: float = 0.25, seed: int = 0) -> tuple[Dataset, Dataset]:
        """A seeded random split into (train, test), both non-empty."""
        if not 0.0 < test_fraction < 1.0:
            raise DataError(f"test_fraction must be in (0, 1), got {test_fraction}")
        if len(self) < 2:
            raise DataError(f"{self.name}: need at least 2 samples to split, got {len(self)}")
        rng = np.random.default_rng(seed)
        order = rng.permutation(len(self))
        n_test = min(len(self) - 1, max(1, round(len(self) * test_fraction)))
        return (
            self.take(np.sort(order[n_test:]), f"{self.name}[train]"),
            self.take(np.sort(order[:n_test]), f"{self.name}[test]"),
        )

    def sample(self, n: int, seed: int = 0) -> Dataset:
        """Up to ``n`` rows drawn without replacement (seeded); the whole set if ``n >= len``."""
        if n >= len(self):
            return self
        rng = np.random.default_rng(seed)
        return self.take(np.sort(rng.choice(len(self), size=n, replace=False)))

    def describe(self) -> dict[str, Any]:
        """JSON-friendly summary for reports."""
        return {
            "name": self.name,
            "n_samples": len(self),
            "input_shape": list(self.input_shape),
            "n_classes": self.n_classes,
            "fingerprint": self.fingerprint,
            "class_names": list(self.class_names) if self.class_names else None,
        }


def as_dataset(x: ArrayLike, y: ArrayLike, name: str = "arrays", **kwargs: Any) -> Dataset:
    """Convenience constructor from any array-likes."""
    return Dataset(np.asarray(x), np.asarray(y), name, **kwargs)
