"""Datasets: the ``Dataset`` type, bundled scikit-learn sets, and loaders for user files."""

from __future__ import annotations

from warden.data.bundled import BUNDLED, load_breast_cancer, load_digits, load_wine
from warden.data.dataset import Dataset, fingerprint_arrays
from warden.data.files import load_csv, load_image_folder, load_npz
from warden.data.loaders import load_dataset

__all__ = [
    "BUNDLED",
    "Dataset",
    "fingerprint_arrays",
    "load_breast_cancer",
    "load_csv",
    "load_dataset",
    "load_digits",
    "load_image_folder",
    "load_npz",
    "load_wine",
]
