"""Loaders for user data files: ``.npz`` archives, CSV tables and folders of PNG images.

Each loader returns a validated :class:`~warden.data.dataset.Dataset` named by the path it
read, and turns every problem with the file into a :class:`~warden.errors.DataError` that names
the file (and, for CSV, the 1-based line). Nothing here executes code from the file: ``.npz``
archives are read with ``allow_pickle=False`` and images are decoded as PNG only.
"""

from __future__ import annotations

import csv
import io
import logging
import math
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from warden.data.dataset import Dataset
from warden.errors import DataError, InputShapeError
from warden.models.base import Bounds

__all__ = ["PNG_MAGIC", "ZIP_MAGIC", "load_csv", "load_image_folder", "load_npz"]

logger = logging.getLogger(__name__)

ZIP_MAGIC = b"PK\x03\x04"
"""First bytes of a zip archive (and so of an ``.npz``) that holds at least one member."""
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
"""The eight-byte PNG signature."""

_NPZ_X_KEYS = ("x", "X")
_NPZ_KNOWN_KEYS = frozenset({"x", "X", "y", "lower", "upper", "feature_names", "class_names"})


def _read_head(path: Path, n: int) -> bytes:
    try:
        with path.open("rb") as fh:
            return fh.read(n)
    except OSError as exc:
        raise DataError(f"{path}: cannot read the file: {exc}") from exc


# --------------------------------------------------------------------------------------- npz


def _npy_dtype(archive: zipfile.ZipFile | None, key: str) -> np.dtype[Any] | None:
    """The dtype in the header of member ``key``, read without loading the array."""
    if archive is None:
        return None
    try:
        with archive.open(f"{key}.npy") as fh:
            version = np.lib.format.read_magic(fh)
            if version == (1, 0):
                return np.lib.format.read_array_header_1_0(fh)[2]
            if version == (2, 0):
                return np.lib.format.read_array_header_2_0(fh)[2]
    except (KeyError, OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error):
        return None  # np.load will report the problem
    return None


def _npz_array(path: Path, npz: np.lib.npyio.NpzFile, key: str) -> NDArray[Any]:
    dtype = _npy_dtype(npz.zip, key)
    if dtype is not None and dtype.hasobject:
        raise DataError(
            f"{path}: array {key!r} has dtype object; object arrays are refused because they "
            "carry pickles, which run code when loaded. Save plain numeric or string arrays."
        )
    try:
        arr: NDArray[Any] = npz[key]
    except ValueError as exc:
        if "pickle" in str(exc):
            raise DataError(
                f"{path}: array {key!r} is an object array; object arrays are refused because "
                "they carry pickles, which run code when loaded"
            ) from exc
        raise DataError(f"{path}: array {key!r} cannot be read: {exc}") from exc
    except (OSError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        raise DataError(f"{path}: array {key!r} cannot be read: {exc}") from exc
    if not isinstance(arr, np.ndarray):
        raise DataError(f"{path}: member {key!r} is not a .npy array; write it with numpy.savez")
    return arr


def _names(path: Path, key: str, arr: NDArray[Any]) -> tuple[str, ...]:
    if arr.ndim != 1 or arr.dtype.kind not in "US":
        raise DataError(
            f"{path}: {key!r} must be a 1-D array of strings, got dtype {arr.dtype} "
            f"and shape {arr.shape}"
        )
    return tuple(v.decode() if isinstance(v, bytes) else str(v) for v in arr.tolist())


def load_npz(path: str | Path) -> Dataset:
    """Read a dataset from an ``.npz`` archive (as written by ``numpy.savez``).

    Keys: ``x`` (or ``X``) and ``y`` are required; ``lower`` and ``upper`` (per-feature bounds,
    both or neither), ``feature_names`` and ``class_names`` (1-D string arrays) are optional.
    Arrays are loaded with ``allow_pickle=False``: object arrays are refused.
    """
    path = Path(path)
    head = _read_head(path, 4)
    if head not in (ZIP_MAGIC, b"PK\x05\x06"):
        raise DataError(
            f"{path}: not an .npz archive (expected a zip file starting with {ZIP_MAGIC!r}, "
            f"found {head!r}); write one with numpy.savez(path, x=..., y=...)"
        )
    # Open the file here: np.load leaks its own handle when the zip is unreadable.
    with path.open("rb") as fh:
        try:
            npz = np.load(fh, allow_pickle=False)
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
            raise DataError(f"{path}: not a readable .npz archive: {exc}") from exc
        if not isinstance(npz, np.lib.npyio.NpzFile):
            raise DataError(f"{path}: not an .npz archive; write one with numpy.savez")
        with npz:
            return _npz_dataset(path, npz)


def _npz_dataset(path: Path, npz: np.lib.npyio.NpzFile) -> Dataset:
    keys = list(npz.files)
    x_keys = [k for k in _NPZ_X_KEYS if k in keys]
    if len(x_keys) != 1 or "y" not in keys:
        what = "both 'x' and 'X'" if len(x_keys) == 2 else "keys 'x' (or 'X') and 'y'"
        raise DataError(
            f"{path}: expected {what}; found keys {sorted(keys)}. "
            "Write the file with numpy.savez(path, x=inputs, y=labels)."
        )
    unknown = sorted(set(keys) - _NPZ_KNOWN_KEYS)
    if unknown:
        logger.warning("%s: ignoring unknown keys %s", path, unknown)
    x = _npz_array(path, npz, x_keys[0])
    if x.dtype.kind not in "biuf":
        raise DataError(f"{path}: inputs must be numeric, got dtype {x.dtype}")
    y = _npz_array(path, npz, "y")
    if ("lower" in keys) != ("upper" in keys):
        raise DataError(f"{path}: bounds need both 'lower' and 'upper'; found keys {keys}")
    bounds: Bounds | None = None
    if "lower" in keys:
        lower = _npz_array(path, npz, "lower")
        upper = _npz_array(path, npz, "upper")
        try:
            bounds = Bounds(np.asarray(lower, np.float32), np.asarray(upper, np.float32))
        except (InputShapeError, TypeError, ValueError) as exc:
            raise DataError(f"{path}: invalid bounds: {exc}") from exc
    names = {
        key: _names(path, key, _npz_array(path, npz, key)) if key in keys else None
        for key in ("feature_names", "class_names")
    }
    return Dataset(
        x=x,
        y=y,
        name=str(path),
        bounds=bounds,
        feature_names=names["feature_names"],
        class_names=names["class_names"],
        metadata={"kind": "tabular" if x.ndim == 2 else "array", "source": str(path)},
    )


# --------------------------------------------------------------------------------------- csv


def _csv_rows(path: Path) -> Iterator[tuple[int, list[str]]]:
    """Yield ``(line_number, row)`` for the non-blank rows of a UTF-8 CSV file."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DataError(f"{path}: cannot read the file: {exc}") from exc
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise DataError(
            f"{path}, line {line}: not UTF-8 text "
            f"({exc.reason} at byte {exc.start}); expected a UTF-8 CSV file, "
            "an .npz archive or an image folder"
        ) from exc
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    while True:
        start = reader.line_num + 1  # a quoted cell may span lines: report where the row starts
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise DataError(f"{path}, line {start}: malformed CSV: {exc}") from exc
        if any(cell.strip() for cell in row):
            yield start, row


def _parse_float(path: Path, lineno: int, column: str, cell: str) -> float:
    text = cell.strip()
    if not text:
        raise DataError(
            f"{path}, line {lineno}: column {column!r} is empty; every cell needs a number"
        )
    try:
        value = float(text)
    except ValueError:
        raise DataError(
            f"{path}, line {lineno}: column {column!r} has non-numeric value {cell!r}; "
            "feature columns must hold numbers"
        ) from None
    if not math.isfinite(value):
        raise DataError(
            f"{path}, line {lineno}: column {column!r} has value {cell!r}; "
            "NaN and infinity are not allowed"
        )
    return value


def _label_ints(labels: list[str]) -> list[int] | None:
    out = []
    for text in labels:
        try:
            out.append(int(text))
        except ValueError:
            return None
    return out


def load_csv(path: str | Path, *, label_column: str = "label") -> Dataset:
    """Read a tabular dataset from a UTF-8 CSV file with a header row.

    The column named ``label_column`` holds the class of each row: integer labels are kept as
    they are; any other labels are mapped to the indices of their sorted distinct values, which
    become ``class_names``. Every other column is a numeric feature (``feature_names`` = the
    header without the label). Empty cells, text, NaN and infinity are refused with the line.
    """
    path = Path(path)
    rows = _csv_rows(path)
    first = next(rows, None)
    if first is None:
        raise DataError(f"{path}: the file is empty; expected a header row naming the columns")
    header = [name.strip() for name in first[1]]
    duplicates = sorted({n for n in header if header.count(n) > 1})
    if duplicates:
        raise DataError(f"{path}, line {first[0]}: duplicate column names {duplicates}")
    unnamed = [i + 1 for i, n in enumerate(header) if not n]
    if unnamed:
        raise DataError(f"{path}, line {first[0]}: header column {unnamed[0]} has no name")
    if label_column not in header:
        raise DataError(
            f"{path}, line {first[0]}: no label column {label_column!r}; the header has "
            f"columns {header}. "
            "Name the label column with label_column=..."
        )
    label_at = header.index(label_column)
    feature_names = tuple(n for i, n in enumerate(header) if i != label_at)
    if not feature_names:
        raise DataError(f"{path}: no feature columns besides the label {label_column!r}")
    features: list[list[float]] = []
    labels: list[str] = []
    label_lines: list[int] = []
    for lineno, row in rows:
        if len(row) != len(header):
            raise DataError(
                f"{path}, line {lineno}: expected {len(header)} fields (one per header "
                f"column), found {len(row)}"
            )
        label = row[label_at].strip()
        if not label:
            raise DataError(
                f"{path}, line {lineno}: the label (column {label_column!r}) is missing"
            )
        try:
            as_float = float(label)
        except ValueError:
            as_float = 0.0
        if not math.isfinite(as_float):
            raise DataError(
                f"{path}, line {lineno}: label {label!r} in column {label_column!r} is not a "
                "class; NaN and infinity are not allowed"
            )
        features.append(
            [
                _parse_float(path, lineno, name, cell)
                for i, (name, cell) in enumerate(zip(header, row, strict=True))
                if i != label_at
            ]
        )
        labels.append(label)
        label_lines.append(lineno)
    if not features:
        raise DataError(f"{path}: no data rows after the header")
    ints = _label_ints(labels)
    class_names: tuple[str, ...] | None = None
    if ints is not None:
        too_big = next((i for i, v in enumerate(ints) if v >= 2**31), None)
        if too_big is not None:
            raise DataError(
                f"{path}, line {label_lines[too_big]}: label {ints[too_big]} is too large; "
                "integer labels must be 0, 1, 2, ..."
            )
        negative = next((i for i, v in enumerate(ints) if v < 0), None)
        if negative is not None:
            raise DataError(
                f"{path}, line {label_lines[negative]}: label {ints[negative]} is negative; "
                "integer labels must be 0, 1, 2, ..."
            )
        y = np.asarray(ints, dtype=np.int64)
    else:
        class_names = tuple(sorted(set(labels)))
        index = {name: i for i, name in enumerate(class_names)}
        y = np.asarray([index[v] for v in labels], dtype=np.int64)
    return Dataset(
        x=np.asarray(features, dtype=np.float32),
        y=y,
        name=str(path),
        feature_names=feature_names,
        class_names=class_names,
        metadata={"kind": "tabular", "source": str(path), "label_column": label_column},
    )


# ------------------------------------------------------------------------------ image folder


@dataclass(frozen=True)
class _ImageFile:
    path: Path
    label: int
    size: tuple[int, int]
    mode: str


_GRAYSCALE_MODES = frozenset({"1", "L", "LA", "I", "I;16", "I;16L", "I;16B", "I;16N", "F"})


def _is_hidden(p: Path) -> bool:
    return p.name.startswith(".")


def _visible_entries(folder: Path) -> list[Path]:
    try:
        return sorted(p for p in folder.iterdir() if not _is_hidden(p))
    except OSError as exc:
        raise DataError(f"{folder}: cannot list the folder: {exc}") from exc


def _open_png(path: Path) -> Any:
    from PIL import Image

    try:
        return Image.open(path, formats=["PNG"])
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise DataError(f"{path}: not a readable PNG image: {exc}") from exc


def _scan_folder(root: Path) -> tuple[tuple[str, ...], list[_ImageFile]]:
    if not root.is_dir():
        raise DataError(f"{root}: not a folder; expected one sub-folder of PNG images per class")
    class_dirs: list[Path] = []
    for entry in _visible_entries(root):
        if not entry.is_dir():
            raise DataError(
                f"{entry}: expected only class folders in {root}, found a file; "
                "put each image in the folder of its class"
            )
        class_dirs.append(entry)
    if not class_dirs:
        raise DataError(
            f"{root}: no class folders; expected one sub-folder of PNG images per class"
        )
    files: list[_ImageFile] = []
    for label, class_dir in enumerate(class_dirs):
        n_before = len(files)
        for entry in _visible_entries(class_dir):
            if not entry.is_file():
                raise DataError(f"{entry}: expected PNG files in class folder {class_dir}")
            head = _read_head(entry, len(PNG_MAGIC))
            if head != PNG_MAGIC:
                raise DataError(
                    f"{entry}: not a PNG file (its first bytes are {head!r}); "
                    "only PNG images are read"
                )
            with _open_png(entry) as img:
                files.append(_ImageFile(entry, label, tuple(img.size), str(img.mode)))
        if len(files) == n_before:
            raise DataError(f"{class_dir}: the class folder holds no PNG images")
    return tuple(d.name for d in class_dirs), files


def _pixels(item: _ImageFile, grayscale: bool) -> NDArray[np.float32]:
    from PIL import Image

    with _open_png(item.path) as img:
        try:
            if grayscale and item.mode.startswith("I"):  # 16-bit: PIL's "L" would clip
                arr = np.asarray(img, dtype=np.float64) / 65535.0
            else:
                arr = np.asarray(img.convert("L" if grayscale else "RGB"), dtype=np.float64) / 255.0
        except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
            raise DataError(f"{item.path}: corrupt PNG image: {exc}") from exc
    out: NDArray[np.float32] = np.clip(arr, 0.0, 1.0).astype(np.float32)
    return out[None, :, :] if grayscale else np.ascontiguousarray(out.transpose(2, 0, 1))


def load_image_folder(path: str | Path) -> Dataset:
    """Read PNG images from one sub-folder per class (sorted folder names are the classes).

    Files are recognised by the PNG signature, not their extension; hidden files are skipped.
    Images are read as grayscale when all of them are grayscale, else as RGB, and scaled to
    [0, 1]: ``x`` has shape ``(n, channels, height, width)``. All images must have one size.
    """
    root = Path(path)
    class_names, files = _scan_folder(root)
    first = files[0]
    for item in files[1:]:
        if item.size != first.size:
            raise DataError(
                f"{item.path}: image is {item.size[0]}x{item.size[1]} (width x height) but "
                f"{first.path} is {first.size[0]}x{first.size[1]}; all images must have the "
                "same size"
            )
    grayscale = all(item.mode in _GRAYSCALE_MODES for item in files)
    x = np.stack([_pixels(item, grayscale) for item in files])
    logger.debug("%s: read %d images of shape %s", root, len(files), x.shape[1:])
    return Dataset(
        x=x,
        y=np.asarray([item.label for item in files], dtype=np.int64),
        name=str(path),
        bounds=Bounds.uniform(0.0, 1.0, x.shape[1:]),
        class_names=class_names,
        metadata={"kind": "image", "source": str(path)},
    )
