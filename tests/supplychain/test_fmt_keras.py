"""Keras scanners: JSON configs, legacy HDF5 ``.h5`` and ``.keras`` archives."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any

import pytest
from tests.supplychain.corpus import models
from tests.supplychain.corpus.models import (
    _k2_dense,
    _k2_lambda,
    _k3,
    _k3_dense,
    _k3_lambda,
    keras2_config,
    keras3_config,
    keras_h5,
    keras_zip,
)

from warden.assess.finding import Severity
from warden.supplychain.formats.hdf5 import HDF5Scanner
from warden.supplychain.formats.keras import KerasConfigScanner, inspect_config
from warden.supplychain.scanner import format_names, scan_bytes


def _found(data: bytes) -> list[tuple[str, Severity]]:
    return [(f.id, f.severity) for f in scan_bytes(data).findings]


def _json(obj: Any) -> bytes:
    return json.dumps(obj).encode()


def _rules(obj: Any) -> set[tuple[str, Severity]]:
    return {(i.rule, i.severity) for i in inspect_config([obj])}


# --- JSON configs -------------------------------------------------------------------------


def test_benign_configs_are_clean() -> None:
    assert scan_bytes(_json(keras3_config([_k3_dense("d", 3)]))).findings == ()
    assert scan_bytes(_json(keras2_config([_k2_dense("d", 3)]))).findings == ()
    assert ("<bytes>", "keras") in scan_bytes(_json(keras3_config([_k3_dense("d", 3)]))).formats


def test_keras3_lambda_is_critical(tmp_path: Path) -> None:
    findings = scan_bytes(_json(keras3_config([_k3_lambda(str(tmp_path / "m"))]))).findings
    assert [(f.id, f.severity) for f in findings] == [
        ("scan.keras.lambda-layer", Severity.CRITICAL)
    ]
    evidence = findings[0].evidence
    assert evidence["layer"] == "lambda"
    assert {"os", "system"} <= set(evidence["dangerous_references"])


def test_keras2_lambda_bytecode_is_critical(tmp_path: Path) -> None:
    assert _rules(keras2_config([_k2_lambda(str(tmp_path / "m"))])) == {
        ("keras.lambda-layer", Severity.CRITICAL)
    }


def test_lambda_by_name_severity() -> None:
    by_keras_fn = {
        "class_name": "Lambda",
        "config": {
            "name": "l",
            "function": "relu",
            "function_type": "function",
            "module": "keras.activations",
        },
    }
    by_os = {
        "class_name": "Lambda",
        "config": {"name": "l", "function": "system", "function_type": "function", "module": "os"},
    }
    assert _rules(keras2_config([by_keras_fn])) == {("keras.lambda-layer", Severity.HIGH)}
    assert _rules(keras2_config([by_os])) == {("keras.lambda-layer", Severity.CRITICAL)}


def test_nested_models_and_wrappers_are_walked(tmp_path: Path) -> None:
    lam = _k2_lambda(str(tmp_path / "m"))
    wrapped = {"class_name": "TimeDistributed", "config": {"name": "td", "layer": lam}}
    bidi = {
        "class_name": "Bidirectional",
        "config": {
            "layer": {
                "class_name": "Functional",
                "config": {
                    "layers": [{"class_name": "Sequential", "config": {"layers": [wrapped]}}]
                },
            }
        },
    }
    issues = inspect_config([keras2_config([bidi])])
    assert [i.rule for i in issues] == ["keras.lambda-layer"]
    assert "layer" in issues[0].path


def test_custom_objects_are_medium() -> None:
    custom_module = _k3("my_pkg.layers", "Fancy", {"name": "f"})
    registered = {"class_name": "MyPkg>Fancy", "config": {}}
    keras3_registered = _k3("keras.layers", "Fancy", {}, registered_name="Custom>Fancy")
    for obj in (custom_module, registered, keras3_registered):
        assert _rules(keras3_config([obj])) == {("keras.custom-object", Severity.MEDIUM)}, obj


@pytest.mark.parametrize(
    ("obj", "severity"),
    [
        (_k3("os", "function", "system", registered_name="function"), Severity.CRITICAL),
        (_k3("subprocess", "function", "check_output"), Severity.CRITICAL),
        (_k3("builtins", "function", "exec"), Severity.CRITICAL),
        (_k3("keras.utils", "function", "get_file"), Severity.HIGH),
        (_k3("keras.src.saving", "function", "enable_unsafe_deserialization"), Severity.HIGH),
    ],
)
def test_dangerous_callables(obj: dict[str, Any], severity: Severity) -> None:
    assert _rules(keras3_config([_k3_dense("d", 3, activation=obj)])) == {
        ("keras.dangerous-callable", severity)
    }


def test_builtins_other_than_code_runners_are_custom_objects() -> None:
    obj = _k3("builtins", "function", "max")
    assert _rules(keras3_config([_k3_dense("d", 3, activation=obj)])) == {
        ("keras.custom-object", Severity.MEDIUM)
    }


def test_tfsm_layer_is_high() -> None:
    layer = _k3("keras.layers", "TFSMLayer", {"filepath": "/tmp/other_model"})
    assert _rules(keras3_config([layer])) == {("keras.unsafe-layer", Severity.HIGH)}


def test_shadowed_duplicate_keys_are_inspected(tmp_path: Path) -> None:
    lam = json.dumps(_k3_lambda(str(tmp_path / "m")))
    dense = json.dumps(_k3_dense("d", 3))
    text = (
        f'{{"class_name": "Sequential", "config": {{"layers": [{lam}]}}, '
        f'"config": {{"layers": [{dense}]}}}}'
    )
    assert ("scan.keras.lambda-layer", Severity.CRITICAL) in _found(text.encode())


def test_tfjs_model_json_is_scanned(tmp_path: Path) -> None:
    doc = {
        "format": "layers-model",
        "generatedBy": "keras v2.12.0",
        "convertedBy": "tfjs",
        "modelTopology": {
            "class_name": "Sequential",
            "config": keras2_config([_k2_lambda(str(tmp_path / "m"))])["config"],
        },
    }
    assert _found(_json(doc)) == [("scan.keras.lambda-layer", Severity.CRITICAL)]


def test_malformed_config_is_medium() -> None:
    assert _found(b'{"class_name": "Sequential", "config": {') == [
        ("scan.keras.malformed", Severity.MEDIUM)
    ]
    deep = b'{"class_name": "X", "config": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    assert _found(deep) == [("scan.keras.malformed", Severity.MEDIUM)]


@pytest.mark.parametrize(
    "doc",
    [
        {"architectures": ["BertModel"], "model_type": "bert", "hidden_size": 768},
        {"_class_name": "UNet2DConditionModel", "_diffusers_version": "0.20.0"},
        {"name": "pkg", "version": "1.0.0", "dependencies": {}},
        {"keras_version": "3.5.0", "date_saved": "2024-01-01"},
        {"class_name": "only-this-key"},
        [{"class_name": "Dense", "config": {}}],
    ],
)
def test_other_json_is_not_claimed(doc: Any) -> None:
    assert not KerasConfigScanner().sniff(_json(doc))


# --- HDF5 ---------------------------------------------------------------------------------


def test_h5_lambda_is_critical(tmp_path: Path) -> None:
    data = models.malicious(str(tmp_path / "m"))["keras-lambda.h5"]
    result = scan_bytes(data)
    assert ("<bytes>", "hdf5") in result.formats
    assert [(f.id, f.severity) for f in result.findings] == [
        ("scan.keras.lambda-layer", Severity.CRITICAL)
    ]
    assert result.findings[0].evidence["source"] == "HDF5 attribute model_config"


def test_h5_dense_and_plain_weights_are_clean() -> None:
    assert scan_bytes(keras_h5(keras2_config([_k2_dense("d", 3)]))).findings == ()
    assert scan_bytes(keras_h5(None)).findings == ()


def test_h5_with_user_block_is_sniffed() -> None:
    import h5py

    buf = io.BytesIO()
    with h5py.File(buf, "w", userblock_size=512) as f:
        f.attrs["model_config"] = json.dumps(keras2_config([_k2_dense("d", 3)]))
    data = buf.getvalue()
    assert data[:8] != b"\x89HDF\r\n\x1a\n" and HDF5Scanner().sniff(data[:4096])
    assert scan_bytes(data).findings == ()


def test_h5_external_link_and_storage(tmp_path: Path) -> None:
    import h5py
    import numpy as np

    buf = io.BytesIO()
    with h5py.File(buf, "w") as f:
        f["escape"] = h5py.ExternalLink("/etc/passwd", "/data")
        f.create_dataset("ext", shape=(4,), dtype=np.uint8, external=[("/etc/hostname", 0, 4)])
    found = _found(buf.getvalue())
    assert ("scan.hdf5.external-link", Severity.MEDIUM) in found
    assert ("scan.hdf5.external-storage", Severity.MEDIUM) in found


def test_h5_broken_file_is_medium() -> None:
    data = keras_h5(keras2_config([_k2_dense("d", 3)]))
    assert _found(data[:600]) == [("scan.hdf5.malformed", Severity.MEDIUM)]
    assert _found(b"\x89HDF\r\n\x1a\n" + bytes(100)) == [("scan.hdf5.malformed", Severity.MEDIUM)]


def test_h5_non_json_config_is_medium() -> None:
    import h5py

    buf = io.BytesIO()
    with h5py.File(buf, "w") as f:
        f.attrs["model_config"] = "{not json"
        f.attrs["training_config"] = 7
    found = _found(buf.getvalue())
    assert found == [("scan.hdf5.malformed", Severity.MEDIUM)] * 2


# --- .keras archives ----------------------------------------------------------------------


def _member(archive: bytes, name: str) -> bytes:
    with zipfile.ZipFile(io.BytesIO(archive)) as z:
        return z.read(name)


def test_keras_archive_members(tmp_path: Path) -> None:
    bad = models.malicious(str(tmp_path / "m"))["keras-lambda.keras"]
    good = models.benign()["keras-dense.keras"]
    assert _found(_member(bad, "config.json")) == [("scan.keras.lambda-layer", Severity.CRITICAL)]
    for name in ("config.json", "metadata.json", "model.weights.h5"):
        assert scan_bytes(_member(good, name)).findings == (), name


@pytest.mark.skipif("zip" not in format_names(), reason="the zip scanner is not registered")
def test_keras_archive_end_to_end(tmp_path: Path) -> None:
    bad = keras_zip(keras3_config([_k3_lambda(str(tmp_path / "m"))]))
    good = keras_zip(keras3_config([_k3_dense("d", 3)]))
    assert ("scan.keras.lambda-layer", Severity.CRITICAL) in _found(bad)
    assert not [f for f in scan_bytes(good).findings if f.id.startswith("scan.keras")]


def test_corpus_keras_samples(tmp_path: Path) -> None:
    samples = models.malicious(str(tmp_path / "m"))
    assert _found(samples["keras-custom-module.json"]) == [
        ("scan.keras.custom-object", Severity.MEDIUM)
    ]
    assert _found(samples["keras-os-system.json"]) == [
        ("scan.keras.dangerous-callable", Severity.CRITICAL)
    ]
