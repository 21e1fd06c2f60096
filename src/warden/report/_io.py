"""File output shared by the reporters: plain JSON data and atomic, error-translated writes."""

from __future__ import annotations

import contextlib
import json
import math
import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from warden.errors import ReportError

__all__ = ["dumps", "plain", "write_text"]


def plain(value: Any, where: str) -> Any:
    """``value`` as plain JSON data (dicts, lists, str, finite numbers, bool, None).

    Tuples become lists, paths become strings and numpy scalars or arrays become their Python
    values. Anything else, and any non-finite float, is a :class:`ReportError` naming ``where``.
    """
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ReportError(f"{where}: {value} is not a finite number; JSON reports need one")
        return float(value)
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, Mapping):
        return {str(k): plain(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v, f"{where}[{i}]") for i, v in enumerate(value)]
    tolist = getattr(value, "tolist", None)  # numpy scalars and arrays
    if callable(tolist):
        return plain(tolist(), where)
    raise ReportError(f"{where}: a {type(value).__name__} is not JSON data; pass plain values")


def dumps(document: Mapping[str, Any]) -> str:
    """Serialise a JSON document the same way for every reporter (UTF-8, indented)."""
    return json.dumps(document, indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` to ``path`` atomically (temp file, then rename); return the path.

    Raises :class:`ReportError` when the file or its folder cannot be written.
    """
    target = Path(path)
    tmp = target.with_name(f".{target.name}.{secrets.token_hex(6)}.tmp")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with tmp.open("x", encoding="utf-8", newline="\n") as fh:  # "x" honours the umask
            fh.write(text)
        os.replace(tmp, target)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise ReportError(
            f"cannot write report {target}: {exc.strerror or exc}; "
            "check that the folder exists and is writable"
        ) from exc
    return target
