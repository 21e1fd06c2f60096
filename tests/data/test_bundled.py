"""Datasets bundled with scikit-learn, in Warden's shapes."""

from __future__ import annotations

import numpy as np

from warden.data import BUNDLED, load_breast_cancer, load_digits, load_wine


def test_digits_are_images_in_unit_range() -> None:
    ds = load_digits()
    assert ds.x.shape == (1797, 1, 8, 8)
    assert ds.x.dtype == np.float32
    assert float(ds.x.min()) == 0.0
    assert float(ds.x.max()) == 1.0
    assert ds.n_classes == 10
    assert sorted(set(ds.y.tolist())) == list(range(10))
    assert ds.input_shape == (1, 8, 8)
    np.testing.assert_array_equal(ds.valid_bounds.lower, np.zeros((1, 8, 8)))
    np.testing.assert_array_equal(ds.valid_bounds.upper, np.ones((1, 8, 8)))
    assert ds.metadata["kind"] == "image"


def test_breast_cancer_is_tabular_with_bounds_and_names() -> None:
    ds = load_breast_cancer()
    assert ds.x.shape == (569, 30)
    assert ds.n_classes == 2
    assert ds.class_names == ("malignant", "benign")
    assert ds.feature_names is not None
    assert len(ds.feature_names) == 30
    assert ds.feature_names[0] == "mean radius"
    np.testing.assert_array_equal(ds.valid_bounds.lower, ds.x.min(axis=0))
    np.testing.assert_array_equal(ds.valid_bounds.upper, ds.x.max(axis=0))
    np.testing.assert_allclose(ds.x.mean(axis=0), 0.0, atol=1e-5)
    assert len(ds.metadata["standardisation"]["mean"]) == 30


def test_wine_shape() -> None:
    ds = load_wine()
    assert ds.x.shape == (178, 13)
    assert ds.n_classes == 3


def test_bundled_loaders_are_stable() -> None:
    assert sorted(BUNDLED) == ["breast-cancer", "digits", "wine"]
    assert load_digits().fingerprint == load_digits().fingerprint
    assert load_digits().fingerprint != load_wine().fingerprint
