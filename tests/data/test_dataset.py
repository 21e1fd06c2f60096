"""``Dataset`` validation, fingerprint and deterministic split/sample."""

from __future__ import annotations

import hashlib
import struct

import numpy as np
import pytest

from warden.data import Dataset, fingerprint_arrays
from warden.errors import DataError
from warden.models.base import Bounds


def _reference_fingerprint(x: list[list[float]], y: list[int]) -> str:
    """The documented encoding, written out by hand with ``struct`` (independent of numpy)."""
    flat = [v for row in x for v in row]
    payload = (
        b"warden-dataset-v1\n"
        + f"<f4|{len(x)},{len(x[0])}\n".encode()
        + struct.pack(f"<{len(flat)}f", *flat)
        + f"<i8|{len(y)}\n".encode()
        + struct.pack(f"<{len(y)}q", *y)
    )
    return "sha256:" + hashlib.sha256(payload).hexdigest()


X = [[0.0, 1.5, -2.0], [3.25, 4.0, 0.5]]
Y = [1, 0]


def test_fingerprint_matches_the_documented_encoding() -> None:
    x = np.asarray(X, np.float32)
    y = np.asarray(Y, np.int64)
    assert fingerprint_arrays(x, y) == _reference_fingerprint(X, Y)
    assert Dataset(x, y, "t").fingerprint == _reference_fingerprint(X, Y)


def test_fingerprint_ignores_layout_and_byte_order() -> None:
    x = np.asarray(X, np.float32)
    y = np.asarray(Y, np.int64)
    expected = _reference_fingerprint(X, Y)
    swapped_x = x.astype(x.dtype.newbyteorder(">"))
    swapped_y = y.astype(y.dtype.newbyteorder(">"))
    assert swapped_x.tobytes() != x.tobytes()  # the copy really is stored differently
    fortran_x = np.asfortranarray(x)
    assert not fortran_x.flags.c_contiguous
    assert fingerprint_arrays(x.copy(), y.copy()) == expected
    assert fingerprint_arrays(swapped_x, swapped_y) == expected
    assert fingerprint_arrays(fortran_x, y) == expected
    assert fingerprint_arrays(np.asarray(X, np.float32).T.copy().T, y) == expected
    assert Dataset(swapped_x, swapped_y, "t").fingerprint == expected
    assert Dataset(fortran_x, y, "t").fingerprint == expected


def test_fingerprint_changes_with_any_value() -> None:
    x = np.asarray(X, np.float32)
    y = np.asarray(Y, np.int64)
    base = fingerprint_arrays(x, y)
    x2 = x.copy()
    x2[1, 2] = np.nextafter(x2[1, 2], np.float32(1.0))
    assert fingerprint_arrays(x2, y) != base
    assert fingerprint_arrays(x, np.asarray([0, 0], np.int64)) != base
    assert fingerprint_arrays(x.reshape(3, 2), y) != base  # same bytes, other shape


def test_nan_row_is_named() -> None:
    x = np.zeros((4, 2), np.float32)
    x[2, 1] = np.nan
    with pytest.raises(DataError, match=r"demo: row 2 contains NaN"):
        Dataset(x, np.zeros(4, np.int64), "demo")


def test_infinity_row_is_named() -> None:
    x = np.zeros((3, 2), np.float32)
    x[1, 0] = np.inf
    with pytest.raises(DataError, match=r"row 1 contains NaN or infinity"):
        Dataset(x, np.zeros(3, np.int64), "demo")


def test_label_length_mismatch() -> None:
    with pytest.raises(DataError, match=r"labels have shape \(2,\); expected \(3,\)"):
        Dataset(np.zeros((3, 2), np.float32), np.zeros(2, np.int64), "demo")


def test_negative_label_is_named() -> None:
    with pytest.raises(DataError, match=r"row 1 has a negative label"):
        Dataset(np.zeros((3, 2), np.float32), np.asarray([0, -1, 1]), "demo")


def test_non_integer_labels_refused() -> None:
    with pytest.raises(DataError, match=r"labels must be integers"):
        Dataset(np.zeros((2, 2), np.float32), np.asarray([0.5, 1.0]), "demo")


def test_integral_float_labels_accepted() -> None:
    ds = Dataset(np.zeros((2, 2), np.float32), np.asarray([0.0, 2.0]), "demo")
    assert ds.y.dtype == np.int64
    assert ds.y.tolist() == [0, 2]
    assert ds.n_classes == 3


def test_empty_and_flat_inputs_refused() -> None:
    with pytest.raises(DataError, match=r"empty"):
        Dataset(np.zeros((0, 2), np.float32), np.zeros(0, np.int64), "demo")
    with pytest.raises(DataError, match=r"inputs need shape \(n, \.\.\.\)"):
        Dataset(np.zeros(3, np.float32), np.zeros(3, np.int64), "demo")


def test_bounds_default_to_observed_range_and_shape_is_checked() -> None:
    x = np.asarray([[0.0, 5.0], [2.0, -1.0]], np.float32)
    ds = Dataset(x, np.asarray([0, 1]), "demo")
    np.testing.assert_array_equal(ds.valid_bounds.lower, [0.0, -1.0])
    np.testing.assert_array_equal(ds.valid_bounds.upper, [2.0, 5.0])
    with pytest.raises(DataError, match=r"bounds shape \(3,\) differs from input shape \(2,\)"):
        Dataset(x, np.asarray([0, 1]), "demo", bounds=Bounds.uniform(0, 1, (3,)))


def test_feature_name_count_checked() -> None:
    with pytest.raises(DataError, match=r"1 feature names for 2 features"):
        Dataset(np.zeros((2, 2), np.float32), np.zeros(2, np.int64), "d", feature_names=("a",))


def test_arrays_are_read_only() -> None:
    ds = Dataset(np.zeros((2, 2), np.float64), np.zeros(2, np.int64), "demo")
    assert ds.x.dtype == np.float32
    with pytest.raises(ValueError, match="read-only"):
        ds.x[0, 0] = 1.0


def _numbered(n: int) -> Dataset:
    return Dataset(np.arange(n, dtype=np.float32)[:, None], np.arange(n) % 3, "numbers")


def test_split_is_deterministic_and_partitions() -> None:
    ds = _numbered(40)
    train, test = ds.split(0.25, seed=7)
    train2, test2 = ds.split(0.25, seed=7)
    np.testing.assert_array_equal(train.x, train2.x)
    np.testing.assert_array_equal(test.x, test2.x)
    assert len(test) == 10
    assert len(train) == 30
    ids = sorted(train.x[:, 0].tolist() + test.x[:, 0].tolist())
    assert ids == list(range(40))
    assert test.name == "numbers[test]"
    assert train.name == "numbers[train]"
    _, other = ds.split(0.25, seed=8)
    assert other.x[:, 0].tolist() != test.x[:, 0].tolist()


def test_split_fraction_validated() -> None:
    with pytest.raises(DataError, match=r"test_fraction must be in \(0, 1\)"):
        _numbered(10).split(1.0)


def test_sample_is_deterministic() -> None:
    ds = _numbered(50)
    a = ds.sample(10, seed=3)
    b = ds.sample(10, seed=3)
    assert len(a) == 10
    np.testing.assert_array_equal(a.x, b.x)
    np.testing.assert_array_equal(a.y, b.y)
    assert len(set(a.x[:, 0].tolist())) == 10  # without replacement
    assert ds.sample(10, seed=4).x[:, 0].tolist() != a.x[:, 0].tolist()
    assert ds.sample(100) is ds


def test_take_keeps_names_and_bounds() -> None:
    ds = Dataset(
        np.asarray([[0.0], [1.0], [2.0]], np.float32),
        np.asarray([0, 1, 0]),
        "d",
        feature_names=("f",),
        class_names=("a", "b"),
    )
    sub = ds.take([2, 0])
    assert sub.x[:, 0].tolist() == [2.0, 0.0]
    assert sub.feature_names == ("f",)
    assert sub.class_names == ("a", "b")
    assert sub.valid_bounds is ds.valid_bounds
