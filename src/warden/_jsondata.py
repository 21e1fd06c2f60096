"""Plain JSON data: the one converter findings and reports share."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from typing import Any

from warden.errors import WardenError

__all__ = ["plain"]


def plain(value: Any, where: str, error: type[WardenError] = WardenError) -> Any:
    """``value`` as plain JSON data (dicts, lists, str, finite numbers, bool, None).

    Tuples become lists, paths become strings and numpy scalars or arrays become their Python
    values. Anything else, and any non-finite float, raises ``error`` naming ``where``.
    """
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise error(f"{where}: {value} is not a finite number; JSON reports need one")
        return float(value)
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, Mapping):
        return {str(k): plain(v, f"{where}.{k}", error) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v, f"{where}[{i}]", error) for i, v in enumerate(value)]
    tolist = getattr(value, "tolist", None)  # numpy scalars and arrays
    if callable(tolist):
        return plain(tolist(), where, error)
    raise error(f"{where}: a {type(value).__name__} is not JSON data; pass plain values")
