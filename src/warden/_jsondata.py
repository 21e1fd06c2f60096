"""Plain JSON data: the one converter findings and reports share."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from typing import Any

from warden.errors import WardenError

__all__ = ["plain"]


class _NotPlain(Exception):
    """A value deep inside is not JSON data; ``path`` collects where, innermost first."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
        self.path: list[str] = []


def plain(value: Any, where: str, error: type[WardenError] = WardenError) -> Any:
    """``value`` as plain JSON data (dicts, lists, str, finite numbers, bool, None).

    Tuples become lists, paths become strings and numpy scalars or arrays become their Python
    values. Anything else, and any non-finite float, raises ``error`` naming ``where`` (and the
    key path inside it, e.g. ``metrics.curve.y[3]``).
    """
    try:
        return _plain(value)
    except _NotPlain as bad:
        raise error(f"{where}{''.join(reversed(bad.path))}: {bad.message}") from None


def _plain(value: Any) -> Any:
    kind = type(value)
    if value is None or kind is str or kind is bool:
        return value
    if kind is int:
        return value
    if kind is float:
        if not math.isfinite(value):
            raise _NotPlain(f"{value} is not a finite number; JSON reports need one")
        return value
    if kind is dict or isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for k, v in value.items():
            try:
                out[str(k)] = _plain(v)
            except _NotPlain as bad:
                bad.path.append(f".{k}")
                raise
        return out
    if kind is list or kind is tuple or isinstance(value, (list, tuple)):
        items: list[Any] = []
        for i, v in enumerate(value):
            try:
                items.append(_plain(v))
            except _NotPlain as bad:
                bad.path.append(f"[{i}]")
                raise
        return items
    if isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return _plain(float(value))
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    tolist = getattr(value, "tolist", None)  # numpy scalars and arrays
    if callable(tolist):
        return _plain(tolist())
    raise _NotPlain(f"a {kind.__name__} is not JSON data; pass plain values")
