"""TF SavedModel and keras_metadata.pb scanners, on protos built with the test wire writer."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.supplychain.corpus import models
from tests.supplychain.corpus.models import (
    attr_s,
    function_def,
    keras2_config,
    keras_metadata,
    node_def,
    pb_bytes,
    pb_int,
    pb_msg,
    saved_model,
    savedmodel_standard,
)

from warden.assess.finding import Severity
from warden.supplychain.formats.savedmodel import KerasMetadataScanner, SavedModelScanner
from warden.supplychain.scanner import scan_bytes


def _found(data: bytes) -> list[tuple[str, Severity]]:
    return [(f.id, f.severity) for f in scan_bytes(data).findings]


def test_standard_model_with_savers_is_clean() -> None:
    result = scan_bytes(savedmodel_standard())
    assert ("<bytes>", "savedmodel") in result.formats
    assert result.findings == ()


def test_file_ops_are_high(tmp_path: Path) -> None:
    data = models.malicious(str(tmp_path / "m"))["savedmodel-readfile/saved_model.pb"]
    findings = {f.id: f for f in scan_bytes(data).findings}
    assert findings["scan.savedmodel.file-read"].severity is Severity.HIGH
    write = findings["scan.savedmodel.file-write"]
    assert write.severity is Severity.HIGH
    assert write.evidence["nodes"] == ["function __inference_exfiltrate_7: WriteFile"]


def test_pyfunc_is_critical_and_stray_saver_op_medium(tmp_path: Path) -> None:
    data = models.malicious(str(tmp_path / "m"))["savedmodel-pyfunc/saved_model.pb"]
    found = _found(data)
    assert ("scan.savedmodel.pyfunc", Severity.CRITICAL) in found
    assert ("scan.savedmodel.saver-op", Severity.MEDIUM) in found
    pyfunc = next(f for f in scan_bytes(data).findings if f.id == "scan.savedmodel.pyfunc")
    assert "pyfunc_0" in pyfunc.evidence["nodes"][0]


@pytest.mark.parametrize(
    ("op", "rule", "severity"),
    [
        ("EagerPyFunc", "pyfunc", Severity.CRITICAL),
        ("PyFuncStateless", "pyfunc", Severity.CRITICAL),
        ("ImmutableConst", "file-read", Severity.HIGH),
        ("MatchingFiles", "file-read", Severity.MEDIUM),
        ("InitializeTableFromTextFileV2", "file-read", Severity.LOW),
        ("SaveDatasetV2", "file-write", Severity.HIGH),
        ("DebugIdentityV2", "file-write", Severity.MEDIUM),
        ("RpcCall", "network-op", Severity.HIGH),
    ],
)
def test_op_table(op: str, rule: str, severity: Severity) -> None:
    data = saved_model([node_def(1, "n", op)])
    assert _found(data) == [(f"scan.savedmodel.{rule}", severity)]


def test_print_to_file_only() -> None:
    to_file = saved_model(
        [node_def(1, "p", "PrintV2", ("x",), attr_s("output_stream", "file:///tmp/x"))]
    )
    to_stderr = saved_model(
        [node_def(1, "p", "PrintV2", ("x",), attr_s("output_stream", "stderr"))]
    )
    assert _found(to_file) == [("scan.savedmodel.file-write", Severity.HIGH)]
    assert _found(to_stderr) == []


def test_saver_ops_outside_the_saver() -> None:
    in_function = saved_model(
        [], [function_def("__inference_helper_3", node_def(3, "s", "SaveV2"))]
    )
    wrong_scope = saved_model(
        [node_def(1, "sneaky/MergeV2Checkpoints", "MergeV2Checkpoints")],
        (),
        pb_msg(3, pb_bytes(3, "save/restore_all")),
    )
    assert _found(in_function) == [("scan.savedmodel.saver-op", Severity.MEDIUM)]
    assert _found(wrong_scope) == [("scan.savedmodel.saver-op", Severity.MEDIUM)]


def test_keras_lambda_in_object_graph(tmp_path: Path) -> None:
    import json

    lam = models._k2_lambda(str(tmp_path / "m"))
    user_object = pb_msg(4, pb_bytes(1, "_tf_keras_layer"), pb_bytes(3, json.dumps(lam)))
    object_graph = pb_msg(7, pb_msg(1, user_object))
    data = saved_model(models._standard_nodes(), (), b"", object_graph)
    assert _found(data) == [("scan.keras.lambda-layer", Severity.CRITICAL)]


def test_keras_metadata_file(tmp_path: Path) -> None:
    data = models.malicious(str(tmp_path / "m"))["savedmodel-keras-lambda/keras_metadata.pb"]
    result = scan_bytes(data)
    assert ("<bytes>", "keras-metadata") in result.formats
    # the same Lambda layer appears in the model node and its own node: one finding
    assert [(f.id, f.severity) for f in result.findings] == [
        ("scan.keras.lambda-layer", Severity.CRITICAL)
    ]
    assert result.findings[0].evidence["count"] == 2


def test_benign_keras_metadata_is_clean() -> None:
    config = keras2_config([models._k2_dense("dense", 3)])
    data = keras_metadata([("root", "_tf_keras_sequential", config)])
    assert scan_bytes(data).findings == ()


def test_malformed_saved_model() -> None:
    data = savedmodel_standard()
    found = _found(data[: len(data) // 2])
    assert found == [("scan.savedmodel.malformed", Severity.MEDIUM)]
    for cut in range(8, len(data), 11):
        assert "scan.error" not in {f.id for f in scan_bytes(data[:cut]).findings}, cut


def test_sniffs_are_structural() -> None:
    sm, km = SavedModelScanner().sniff, KerasMetadataScanner().sniff
    standard = savedmodel_standard()
    meta = keras_metadata([("root", "_tf_keras_model", {"class_name": "Functional"})])
    assert sm(standard[:4096]) and not km(standard[:4096])
    assert km(meta[:4096]) and not sm(meta[:4096])
    assert not sm(pb_int(1, 1) + pb_bytes(2, "serve"))  # meta graph is not a message
    assert not sm(pb_int(1, 2) + pb_msg(2, pb_msg(1, pb_bytes(4, "serve"))))  # schema 2
    assert not sm(pb_int(1, 1) + pb_msg(2, pb_msg(1, pb_bytes(4, "x"))) + pb_int(3, 1))
    assert not km(pb_msg(1, pb_bytes(3, "root"), pb_bytes(4, "my_object")))
    assert not sm(models.onnx_helper_model()) and not km(models.onnx_helper_model())
