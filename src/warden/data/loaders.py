"""``load_dataset``: one entry point that finds the right loader for a name or a path."""

from __future__ import annotations

import logging
from pathlib import Path

from warden.data.bundled import BUNDLED, load_bundled
from warden.data.dataset import Dataset
from warden.data.files import ZIP_MAGIC, load_csv, load_image_folder, load_npz
from warden.errors import DataError

__all__ = ["load_dataset"]

logger = logging.getLogger(__name__)

_NPY_MAGIC = b"\x93NUMPY"
_EMPTY_ZIP_MAGIC = b"PK\x05\x06"


def load_dataset(name_or_path: str | Path, *, label_column: str = "label") -> Dataset:
    """Load a bundled dataset by name, or a dataset from a path.

    An existing path wins over a bundled name. A folder is read as an image folder (one
    sub-folder of PNGs per class); a file is recognised by its content, not its extension: a
    zip archive is read as ``.npz``, anything else as a UTF-8 CSV whose label column is
    ``label_column``.
    """
    path = Path(name_or_path)
    if not path.exists():
        return load_bundled(str(name_or_path))  # raises the "unknown dataset" error
    if isinstance(name_or_path, str) and name_or_path in BUNDLED:
        logger.info("%s: loading the path, not the bundled dataset of that name", path)
    if path.is_dir():
        return load_image_folder(path)
    if not path.is_file():
        raise DataError(f"{path}: not a regular file or folder; expected .npz, .csv or a folder")
    try:
        with path.open("rb") as fh:
            head = fh.read(len(_NPY_MAGIC))
    except OSError as exc:
        raise DataError(f"{path}: cannot read the file: {exc}") from exc
    if head.startswith((ZIP_MAGIC, _EMPTY_ZIP_MAGIC)):
        return load_npz(path)
    if head.startswith(_NPY_MAGIC):
        raise DataError(
            f"{path}: a .npy file holds one array, but a dataset needs inputs and labels; "
            "save both with numpy.savez(path, x=inputs, y=labels)"
        )
    return load_csv(path, label_column=label_column)
