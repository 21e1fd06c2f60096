"""File output shared by the reporters: plain JSON data and atomic, error-translated writes."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from warden._jsondata import plain as _plain
from warden.errors import ReportError

__all__ = ["dumps", "plain", "write_text"]


def plain(value: Any, where: str) -> Any:
    """``value`` as plain JSON data; anything else is a :class:`ReportError` naming ``where``."""
    return _plain(value, where, ReportError)


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
