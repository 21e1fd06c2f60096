"""``load_dataset`` dispatch: bundled names, folders, and files recognised by content."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from warden.data import load_dataset
from warden.errors import DataError


def test_bundled_name() -> None:
    ds = load_dataset("wine")
    assert ds.name == "wine"
    assert ds.x.shape == (178, 13)


def test_folder_is_an_image_folder(gray_folder: Path) -> None:
    ds = load_dataset(gray_folder)
    assert ds.metadata["kind"] == "image"
    assert ds.x.shape == (3, 1, 4, 3)


def test_zip_content_is_npz_whatever_the_extension(tmp_path: Path) -> None:
    path = tmp_path / "data.bin"
    with path.open("wb") as fh:
        np.savez(fh, x=np.ones((2, 3)), y=np.asarray([0, 1]))
    ds = load_dataset(str(path))
    assert ds.x.shape == (2, 3)
    assert ds.name == str(path)


def test_text_is_csv(tmp_path: Path) -> None:
    path = tmp_path / "table.txt"
    path.write_text("f,cls\n1,b\n2,a\n")
    ds = load_dataset(path, label_column="cls")
    assert ds.class_names == ("a", "b")
    assert ds.y.tolist() == [1, 0]


def test_binary_non_zip_is_refused_as_csv(tmp_path: Path) -> None:
    path = tmp_path / "image.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\xff\xff")
    with pytest.raises(DataError, match=re.escape(f"{path}, line 1: not UTF-8 text")):
        load_dataset(path)


def test_npy_gets_a_hint(tmp_path: Path) -> None:
    path = tmp_path / "x.npy"
    np.save(path, np.zeros(3))
    with pytest.raises(DataError, match=r"numpy\.savez"):
        load_dataset(path)


def test_existing_path_wins_over_bundled_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "wine").write_text("a,label\n1,0\n")
    monkeypatch.chdir(tmp_path)
    ds = load_dataset("wine")
    assert ds.x.shape == (1, 1)


def test_unknown_name() -> None:
    expected = (
        "unknown dataset 'no-such-set': expected one of breast-cancer, digits, wine "
        "or a path to a .npz, .csv or image folder"
    )
    with pytest.raises(DataError, match=re.escape(expected)):
        load_dataset("no-such-set")
