"""``import warden.models`` is cheap and exports a sorted, complete ``__all__``."""

from __future__ import annotations

import subprocess
import sys

import warden.models

HEAVY = {"torch", "onnx", "onnxruntime", "sklearn", "httpx", "safetensors"}


def test_import_loads_no_heavy_dependency() -> None:
    code = (
        "import sys, warden.models; "
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {sorted(HEAVY)!r}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "[]"


def test_all_is_sorted_and_resolves() -> None:
    names = warden.models.__all__
    assert names == sorted(names)
    for name in names:
        assert getattr(warden.models, name) is not None
    assert {"HttpModel", "OnnxModel", "SklearnModel", "CallableModel", "export_onnx"} <= set(names)
