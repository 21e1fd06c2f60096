"""Built-in format scanners, in dispatch order (containers first, pickle last).

Each module exposes ``SCANNERS``: the :class:`~warden.supplychain.scanner.FormatScanner`
objects it provides. A stream that no scanner's ``sniff`` accepts is probed as a pickle
(protocols 0 and 1 have no magic bytes).
"""

from __future__ import annotations

import importlib

from warden.supplychain.scanner import FormatScanner

__all__ = ["BUILTIN_FORMATS"]

_MODULES = (
    "compressed",
    "zip",
    "tar",
    "sevenzip",
    "numpy",
    "hdf5",
    "keras",
    "safetensors",
    "gguf",
    "onnx",
    "savedmodel",
    "pickle",
)


def _load() -> tuple[FormatScanner, ...]:
    out: list[FormatScanner] = []
    for name in _MODULES:
        module = importlib.import_module(f"{__name__}.{name}")
        out.extend(module.SCANNERS)
    return tuple(out)


BUILTIN_FORMATS: tuple[FormatScanner, ...] = _load()
