"""``import warden`` has no side effects, and its public API is sorted, complete and loadable."""

from __future__ import annotations

import inspect
import json
import os
import subprocess
import sys
from pathlib import Path

import warden

PROBE = """
import json, logging, os, sys
before = {name: list(logging.getLogger(name).handlers) for name in ("", "warden")}
import warden
after = {name: [repr(h) for h in logging.getLogger(name).handlers] for name in ("", "warden")}
heavy = sorted(m for m in ("torch", "onnxruntime", "matplotlib", "sklearn") if m in sys.modules)
print(json.dumps({"handlers": after, "root_level": logging.getLogger().level, "heavy": heavy}))
"""


def _tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def test_import_writes_no_files_and_configures_no_logging(tmp_path: Path) -> None:
    home, cwd = tmp_path / "home", tmp_path / "cwd"
    home.mkdir()
    cwd.mkdir()
    env = {
        **os.environ,
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_CACHE_HOME": str(home / ".cache"),
        "MPLCONFIGDIR": str(home / "mpl"),
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    proc = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=cwd, env=env, capture_output=True, text=True, check=True
    )
    report = json.loads(proc.stdout)
    assert report["handlers"] == {"": [], "warden": []}
    assert report["root_level"] == 30  # WARNING: untouched default
    assert report["heavy"] == []
    assert _tree(home) == set()
    assert _tree(cwd) == set()
    assert proc.stderr == ""


def test_all_is_sorted_complete_and_resolvable() -> None:
    assert warden.__all__ == sorted(warden.__all__)
    assert len(set(warden.__all__)) == len(warden.__all__)
    for name in warden.__all__:
        assert getattr(warden, name) is not None, name
    public = {
        n for n in dir(warden) if not n.startswith("_") and not inspect.ismodule(getattr(warden, n))
    }
    public -= {"annotations", "TYPE_CHECKING", "Any"}
    assert public - {"__version__"} <= set(warden.__all__)
    expected = {
        "Assessment", "AttackResult", "Bounds", "CallableModel", "Dataset", "FGSM", "Finding",
        "HttpModel", "L2PGD", "Model", "OnnxModel", "PGD", "Scorecard", "Severity",
        "SklearnModel", "Suite", "TorchModel", "WardenError", "load_dataset",
        "load_model", "save_torch_model", "train_model", "write_reports",
        "Registry", "Store", "Settings", "load_settings", "build_model_card",
        "compliance_report", "create_backup", "verify_backup", "restore_backup",
    }  # fmt: skip
    assert expected <= set(warden.__all__)


def test_unknown_attribute_is_an_attribute_error() -> None:
    import pytest

    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = warden.nope  # type: ignore[attr-defined]


def test_subpackages_are_reachable_as_attributes() -> None:
    assert callable(warden.assess.run)
    assert warden.evasion.PGD is warden.PGD
    assert warden.registry.Registry is warden.Registry
    assert warden.store.Store is warden.Store
