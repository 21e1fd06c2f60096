"""Fixtures for the data tests: small files written into ``tmp_path``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

WritePng = Callable[..., Path]


@pytest.fixture
def write_png() -> WritePng:
    """Write ``pixels`` (uint8 ``(H, W)`` or ``(H, W, 3)``) as a PNG at ``path``."""

    def write(path: Path, pixels: np.ndarray, mode: str | None = None) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        image = Image.fromarray(pixels) if mode is None else Image.fromarray(pixels).convert(mode)
        image.save(path, format="PNG")
        return path

    return write


@pytest.fixture
def gray_folder(tmp_path: Path, write_png: WritePng) -> Path:
    """Two classes (``cat``: 2 images, ``dog``: 1 image) of 3x4 (W x H) grayscale PNGs."""
    root = tmp_path / "images"
    write_png(root / "dog" / "a.png", np.full((4, 3), 255, np.uint8))
    write_png(root / "cat" / "b.png", np.zeros((4, 3), np.uint8))
    write_png(root / "cat" / "a.png", np.arange(12, dtype=np.uint8).reshape(4, 3) * 20)
    return root


@pytest.fixture
def write_text(tmp_path: Path) -> Callable[[str, str], Path]:
    """Write ``text`` to ``tmp_path / name`` (UTF-8) and return the path."""

    def write(name: str, text: str) -> Path:
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return path

    return write
