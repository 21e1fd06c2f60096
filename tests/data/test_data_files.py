"""Loaders for user files: .npz, CSV and PNG image folders (all written into ``tmp_path``)."""

from __future__ import annotations

import re
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from warden.data import load_csv, load_image_folder, load_npz
from warden.errors import DataError

WritePng = Callable[..., Path]
WriteText = Callable[[str, str], Path]

# ------------------------------------------------------------------------------------ npz


def test_npz_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "d.npz"
    x = np.random.default_rng(0).random((5, 3)).astype(np.float32)
    y = np.asarray([0, 1, 2, 1, 0])
    np.savez(
        path,
        x=x,
        y=y,
        lower=np.zeros(3),
        upper=np.ones(3),
        feature_names=np.asarray(["a", "b", "c"]),
        class_names=np.asarray(["p", "q", "r"]),
    )
    ds = load_npz(path)
    np.testing.assert_array_equal(ds.x, x)
    np.testing.assert_array_equal(ds.y, y)
    assert ds.name == str(path)
    assert ds.feature_names == ("a", "b", "c")
    assert ds.class_names == ("p", "q", "r")
    np.testing.assert_array_equal(ds.valid_bounds.lower, np.zeros(3))
    np.testing.assert_array_equal(ds.valid_bounds.upper, np.ones(3))
    assert ds.metadata["source"] == str(path)


def test_npz_accepts_capital_x_and_default_bounds(tmp_path: Path) -> None:
    path = tmp_path / "d.npz"
    np.savez_compressed(path, X=np.asarray([[1.0, 2.0], [3.0, -4.0]]), y=np.asarray([1, 0]))
    ds = load_npz(str(path))
    assert ds.x.shape == (2, 2)
    np.testing.assert_array_equal(ds.valid_bounds.lower, [1.0, -4.0])
    assert ds.class_names is None


def test_npz_object_array_refused(tmp_path: Path) -> None:
    path = tmp_path / "evil.npz"
    np.savez(path, x=np.asarray([[1.0], [2.0]]), y=np.asarray([0, {"a": 1}], dtype=object))
    with pytest.raises(
        DataError, match=r"'y'.*object arrays are refused because they carry pickles"
    ):
        load_npz(path)


def test_npz_missing_key_names_file_and_keys(tmp_path: Path) -> None:
    path = tmp_path / "d.npz"
    np.savez(path, inputs=np.zeros((2, 2)), y=np.zeros(2, np.int64))
    with pytest.raises(
        DataError,
        match=re.escape(f"{path}: expected keys 'x' (or 'X') and 'y'; found keys ['inputs', 'y']"),
    ):
        load_npz(path)


def test_npz_half_bounds_refused(tmp_path: Path) -> None:
    path = tmp_path / "d.npz"
    np.savez(path, x=np.zeros((2, 2)), y=np.zeros(2, np.int64), lower=np.zeros(2))
    with pytest.raises(DataError, match=r"both 'lower' and 'upper'"):
        load_npz(path)


def test_npz_inverted_bounds_translated(tmp_path: Path) -> None:
    path = tmp_path / "d.npz"
    np.savez(path, x=np.zeros((2, 2)), y=np.zeros(2, np.int64), lower=np.ones(2), upper=np.zeros(2))
    with pytest.raises(DataError, match=r"invalid bounds"):
        load_npz(path)


def test_npz_non_zip_refused(tmp_path: Path) -> None:
    path = tmp_path / "d.npz"
    path.write_text("x,y\n1,0\n")
    with pytest.raises(DataError, match=re.escape(f"{path}: not an .npz archive")):
        load_npz(path)


def test_npz_corrupt_zip_refused(tmp_path: Path) -> None:
    path = tmp_path / "d.npz"
    np.savez(path, x=np.zeros((2, 2)), y=np.zeros(2, np.int64))
    path.write_bytes(path.read_bytes()[:60])
    with pytest.raises(DataError, match=re.escape(str(path))):
        load_npz(path)


def test_npz_raw_member_refused(tmp_path: Path) -> None:
    path = tmp_path / "d.npz"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("x", b"not an array")
        zf.writestr("y.npy", b"also not")
    with pytest.raises(DataError, match=re.escape(str(path))):
        load_npz(path)


# ------------------------------------------------------------------------------------ csv


def test_csv_string_labels(write_text: WriteText) -> None:
    path = write_text("d.csv", "a,label,b\n1,dog,2\n3.5,cat,-4\n\n0,dog,1e3\n")
    ds = load_csv(path)
    assert ds.feature_names == ("a", "b")
    assert ds.class_names == ("cat", "dog")
    assert ds.y.tolist() == [1, 0, 1]
    np.testing.assert_array_equal(ds.x, [[1, 2], [3.5, -4], [0, 1000]])
    assert ds.name == str(path)


def test_csv_integer_labels_and_custom_column(write_text: WriteText) -> None:
    path = write_text("d.csv", "\ufefftarget,x1\n2,0.5\n0,1.5\n")
    ds = load_csv(path, label_column="target")
    assert ds.y.tolist() == [2, 0]
    assert ds.class_names is None
    assert ds.n_classes == 3
    assert ds.feature_names == ("x1",)


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        ("a,label\n1,0\nx7,1\n", r"line 3: column 'a' has non-numeric value 'x7'"),
        ("a,label\n1,0\n2,\n", r"line 3: the label \(column 'label'\) is missing"),
        ("a,b,label\n1,,0\n", r"line 2: column 'b' is empty"),
        ("a,label\n1,0\n2,1\nnan,0\n", r"line 4: column 'a' has value 'nan'; NaN and infinity"),
        ("a,label\n1,0\n-inf,1\n", r"line 3: column 'a' has value '-inf'"),
        ("a,label\n1,0\n2,nan\n", r"line 3: label 'nan'"),
        ("a,label\n1,0\n2,1,3\n", r"line 3: expected 2 fields \(one per header column\), found 3"),
        ("a,label\n1\n", r"line 2: expected 2 fields"),
        ("a,b\n1,0\n", r"line 1: no label column 'label'; the header has columns \['a', 'b'\]"),
        ("a,label\n1,-1\n", r"line 2: label -1 is negative"),
        ('a,label\n"1,0\n', r"line 2: malformed CSV"),
        ('a,label\n1,0\n"2\n\n3",1\n', r"line 3: column 'a' has non-numeric value '2\\n\\n3'"),
        ("a,a,label\n1,2,0\n", r"line 1: duplicate column names \['a'\]"),
    ],
)
def test_csv_errors_name_file_and_line(write_text: WriteText, text: str, pattern: str) -> None:
    path = write_text("bad.csv", text)
    with pytest.raises(DataError, match=re.escape(f"{path}, ") + pattern):
        load_csv(path)


def test_csv_empty_and_header_only(write_text: WriteText) -> None:
    with pytest.raises(DataError, match=r"the file is empty"):
        load_csv(write_text("e.csv", "\n\n"))
    with pytest.raises(DataError, match=r"no data rows"):
        load_csv(write_text("h.csv", "a,label\n"))
    with pytest.raises(DataError, match=r"no feature columns"):
        load_csv(write_text("l.csv", "label\n1\n"))


def test_csv_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "bin.csv"
    path.write_bytes(b"a,label\n1,0\n\xff\xfe,1\n")
    with pytest.raises(DataError, match=re.escape(f"{path}, line 3: not UTF-8 text")):
        load_csv(path)


# ---------------------------------------------------------------------------- image folder


def test_image_folder_grayscale(gray_folder: Path) -> None:
    ds = load_image_folder(gray_folder)
    assert ds.class_names == ("cat", "dog")
    assert ds.y.tolist() == [0, 0, 1]  # cat/a.png, cat/b.png, dog/a.png
    assert ds.x.shape == (3, 1, 4, 3)
    assert ds.x.dtype == np.float32
    np.testing.assert_allclose(ds.x[0, 0], np.arange(12).reshape(4, 3) * 20 / 255.0, rtol=1e-6)
    assert float(ds.x[1].max()) == 0.0
    assert float(ds.x[2].min()) == 1.0
    np.testing.assert_array_equal(ds.valid_bounds.lower, np.zeros((1, 4, 3)))
    np.testing.assert_array_equal(ds.valid_bounds.upper, np.ones((1, 4, 3)))
    assert ds.metadata == {"kind": "image", "source": str(gray_folder)}
    assert ds.name == str(gray_folder)


def test_image_folder_rgb_when_any_image_is_colour(gray_folder: Path, write_png: WritePng) -> None:
    rgb = np.zeros((4, 3, 3), np.uint8)
    rgb[..., 0] = 255  # pure red
    write_png(gray_folder / "dog" / "red.png", rgb)
    (gray_folder / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    (gray_folder / "cat" / ".hidden").write_bytes(b"junk")
    ds = load_image_folder(gray_folder)
    assert ds.x.shape == (4, 3, 4, 3)
    red = ds.x[3]
    np.testing.assert_array_equal(red[0], np.ones((4, 3)))
    np.testing.assert_array_equal(red[1:], np.zeros((2, 4, 3)))
    np.testing.assert_array_equal(ds.x[2], np.ones((3, 4, 3)))  # white grey image in RGB


def test_image_folder_sixteen_bit_is_scaled_not_clipped(
    tmp_path: Path, write_png: WritePng
) -> None:
    root = tmp_path / "deep"
    write_png(root / "only" / "a.png", np.asarray([[0, 32768, 65535]], np.uint16))
    ds = load_image_folder(root)
    np.testing.assert_allclose(ds.x[0, 0, 0], [0.0, 32768 / 65535, 1.0], rtol=1e-6)


def test_image_folder_mixed_sizes(gray_folder: Path, write_png: WritePng) -> None:
    odd = write_png(gray_folder / "dog" / "z.png", np.zeros((5, 3), np.uint8))
    first = gray_folder / "cat" / "a.png"
    with pytest.raises(
        DataError, match=re.escape(f"{odd}: image is 3x5 (width x height) but {first} is 3x4")
    ):
        load_image_folder(gray_folder)


def test_image_folder_non_png_named(gray_folder: Path, write_png: WritePng) -> None:
    fake = gray_folder / "cat" / "c.png"
    fake.write_bytes(b"GIF89a not really")
    with pytest.raises(DataError, match=re.escape(f"{fake}: not a PNG file")):
        load_image_folder(gray_folder)


def test_image_folder_decides_by_content_not_extension(
    gray_folder: Path, write_png: WritePng
) -> None:
    write_png(gray_folder / "dog" / "no_extension", np.zeros((4, 3), np.uint8))
    assert len(load_image_folder(gray_folder)) == 4


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda b: b[:-30], id="truncated"),
        pytest.param(lambda b: b[:-20] + bytes([b[-20] ^ 0xFF]) + b[-19:], id="flipped-idat-byte"),
    ],
)
def test_image_folder_corrupt_png_named(
    gray_folder: Path, damage: Callable[[bytes], bytes]
) -> None:
    good = (gray_folder / "dog" / "a.png").read_bytes()
    broken = gray_folder / "dog" / "b.png"
    broken.write_bytes(damage(good))
    with pytest.raises(DataError, match=re.escape(f"{broken}: ") + r".*PNG image"):
        load_image_folder(gray_folder)


def test_image_folder_empty_class(gray_folder: Path) -> None:
    (gray_folder / "emu").mkdir()
    with pytest.raises(
        DataError, match=re.escape(f"{gray_folder / 'emu'}: the class folder holds no PNG images")
    ):
        load_image_folder(gray_folder)


def test_image_folder_without_classes(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"no class folders"):
        load_image_folder(tmp_path)
    with pytest.raises(DataError, match=r"not a folder"):
        load_image_folder(tmp_path / "missing")


def test_image_folder_stray_file_at_top(gray_folder: Path) -> None:
    stray = gray_folder / "README.txt"
    stray.write_text("hello")
    with pytest.raises(DataError, match=re.escape(f"{stray}: expected only class folders")):
        load_image_folder(gray_folder)
