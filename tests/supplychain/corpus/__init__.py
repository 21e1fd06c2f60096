"""Generated scanner corpus: malicious and benign artifacts, written as bytes, never loaded.

Each part module exposes ``malicious(marker: str) -> dict[str, bytes]`` and
``benign() -> dict[str, bytes]``. Keys are relative paths; the first path component names one
sample (a file, or a directory when the key contains ``/``). Every malicious payload, if it
were ever executed, would create the file ``marker`` — the canary test asserts it never appears.
"""

from __future__ import annotations

import importlib
from pathlib import Path

__all__ = ["PARTS", "benign", "malicious", "samples", "write"]

PARTS = ("pickles", "archives", "models")


def _merge(kind: str, *args: str) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    for part in PARTS:
        module = importlib.import_module(f"{__name__}.{part}")
        for key, data in getattr(module, kind)(*args).items():
            if key in out:
                raise ValueError(f"corpus key {key!r} defined twice")
            out[key] = data
    return out


def malicious(marker: str) -> dict[str, bytes]:
    """Every malicious sample of every part."""
    return _merge("malicious", marker)


def benign() -> dict[str, bytes]:
    """Every benign sample of every part."""
    return _merge("benign")


def write(files: dict[str, bytes], root: Path) -> None:
    """Write ``files`` under ``root`` (creating directories)."""
    for key, data in files.items():
        path = root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def samples(files: dict[str, bytes], root: Path) -> list[Path]:
    """The top-level sample paths (files or directories) under ``root`` for ``files``."""
    return sorted({root / key.split("/", 1)[0] for key in files})
