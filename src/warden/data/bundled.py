"""Datasets that ship with scikit-learn, in the shapes Warden's examples use. No network."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from warden.data.dataset import Dataset
from warden.errors import DataError
from warden.models.base import Bounds

__all__ = ["BUNDLED", "load_breast_cancer", "load_digits", "load_wine"]


def load_digits() -> Dataset:
    """8x8 handwritten digits as ``(n, 1, 8, 8)`` images scaled to [0, 1] (1797 samples)."""
    from sklearn import datasets

    raw = datasets.load_digits()
    x = (raw.images / 16.0).astype(np.float32)[:, None, :, :]
    return Dataset(
        x=x,
        y=raw.target.astype(np.int64),
        name="digits",
        bounds=Bounds.uniform(0.0, 1.0, (1, 8, 8)),
        class_names=tuple(str(c) for c in range(10)),
        metadata={"source": "scikit-learn load_digits (UCI optdigits)", "kind": "image"},
    )


def _standardised(name: str, loader: Callable[[], object], source: str) -> Dataset:
    raw = loader()
    data = np.asarray(raw.data, dtype=np.float64)  # type: ignore[attr-defined]
    mean, std = data.mean(axis=0), data.std(axis=0)
    std[std == 0] = 1.0
    x = ((data - mean) / std).astype(np.float32)
    return Dataset(
        x=x,
        y=np.asarray(raw.target, dtype=np.int64),  # type: ignore[attr-defined]
        name=name,
        bounds=Bounds(x.min(axis=0), x.max(axis=0)),
        feature_names=tuple(str(f) for f in raw.feature_names),  # type: ignore[attr-defined]
        class_names=tuple(str(c) for c in raw.target_names),  # type: ignore[attr-defined]
        metadata={
            "source": source,
            "kind": "tabular",
            "standardisation": {"mean": mean.tolist(), "std": std.tolist()},
            "bounds": "observed min/max of the standardised features",
        },
    )


def load_breast_cancer() -> Dataset:
    """Wisconsin breast cancer (569 x 30), standardised; bounds are the observed range."""
    from sklearn import datasets

    return _standardised(
        "breast-cancer", datasets.load_breast_cancer, "scikit-learn load_breast_cancer (UCI WDBC)"
    )


def load_wine() -> Dataset:
    """UCI wine (178 x 13, 3 classes), standardised; bounds are the observed range."""
    from sklearn import datasets

    return _standardised("wine", datasets.load_wine, "scikit-learn load_wine (UCI wine)")


BUNDLED: dict[str, Callable[[], Dataset]] = {
    "breast-cancer": load_breast_cancer,
    "digits": load_digits,
    "wine": load_wine,
}


def load_bundled(name: str) -> Dataset:
    """A bundled dataset by name."""
    loader = BUNDLED.get(name)
    if loader is None:
        raise DataError(
            f"unknown dataset {name!r}: expected one of {', '.join(sorted(BUNDLED))} "
            "or a path to a .npz, .csv or image folder"
        )
    return loader()
