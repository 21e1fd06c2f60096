"""ONNX scanner: structural sniff, custom/code operators, external-data paths, deep nesting."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from tests.supplychain.corpus import models
from tests.supplychain.corpus.models import pb_bytes, pb_int, pb_msg

from warden.assess.finding import Severity
from warden.supplychain.formats.onnx import OnnxScanner, external_path_problem
from warden.supplychain.scanner import scan_bytes, scan_file


@pytest.fixture(scope="module")
def torch_onnx() -> bytes:
    pytest.importorskip("torch", reason="torch is an optional extra")
    return models.onnx_torch()


def _ids(data: bytes) -> set[str]:
    return {f.id for f in scan_bytes(data).findings}


def test_torch_export_is_recognised_and_clean(torch_onnx: bytes) -> None:
    result = scan_bytes(torch_onnx)
    assert ("<bytes>", "onnx") in result.formats
    assert result.findings == ()


def test_helper_model_with_subgraphs_is_clean() -> None:
    assert scan_bytes(models.onnx_helper_model()).findings == ()


def test_large_model_head_is_sniffed_and_scanned(tmp_path: Path) -> None:
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    weight = numpy_helper.from_array(np.zeros((512, 512), np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])],
        "big",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 512])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 512])],
        initializer=[weight],
    )
    data = helper.make_model(graph).SerializeToString()
    assert len(data) > 1 << 20
    assert OnnxScanner().sniff(data[:4096])
    path = tmp_path / "big.onnx"
    path.write_bytes(data)
    assert scan_file(path).findings == ()


def test_custom_domain_is_medium_and_lists_ops() -> None:
    findings = scan_bytes(models.onnx_helper_model(domain="com.example", op_type="Magic")).findings
    assert [(f.id, f.severity) for f in findings] == [
        ("scan.onnx.custom-op-domain", Severity.MEDIUM)
    ]
    assert findings[0].evidence["ops"] == {"Magic": 1}
    assert "then_branch" in findings[0].evidence["nodes"][0]


@pytest.mark.parametrize("domain", ["", "ai.onnx", "ai.onnx.ml", "com.microsoft"])
def test_standard_domains_are_not_flagged(domain: str) -> None:
    assert _ids(models.onnx_helper_model(domain=domain, op_type="Relu")) == set()


@pytest.mark.parametrize(
    ("domain", "op"), [("com.microsoft", "PythonOp"), ("ai.onnx.contrib", "PyOp")]
)
def test_python_calling_ops_are_high(domain: str, op: str) -> None:
    findings = scan_bytes(models.onnx_helper_model(domain=domain, op_type=op)).findings
    assert ("scan.onnx.code-op", Severity.HIGH) in [(f.id, f.severity) for f in findings]


def test_model_local_functions_are_not_custom_ops() -> None:
    from onnx import TensorProto, helper

    fn = helper.make_function(
        "local.fns",
        "Twice",
        ["a"],
        ["b"],
        [helper.make_node("Add", ["a", "a"], ["b"])],
        [helper.make_opsetid("", 17)],
    )
    evil = helper.make_function(
        "local.fns",
        "Hidden",
        ["a"],
        ["b"],
        [helper.make_node("Backdoor", ["a"], ["b"], domain="com.evil")],
        [helper.make_opsetid("com.evil", 1)],
    )
    graph = helper.make_graph(
        [helper.make_node("Twice", ["x"], ["y"], domain="local.fns")],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
    )
    model = helper.make_model(
        graph,
        functions=[fn, evil],
        opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("local.fns", 1)],
    )
    findings = scan_bytes(model.SerializeToString()).findings
    assert [f.evidence["domain"] for f in findings] == ["com.evil"]


@pytest.mark.parametrize(
    ("location", "severity"),
    [
        ("../../etc/passwd", Severity.HIGH),
        ("..", Severity.HIGH),
        ("a/../../b", Severity.HIGH),
        ("/etc/passwd", Severity.HIGH),
        ("C:\\Windows\\win.ini", Severity.HIGH),
        ("..\\..\\secret", Severity.HIGH),
        ("file:///etc/passwd", Severity.HIGH),
        ("weights\x00.bin", Severity.HIGH),
        ("", Severity.LOW),
        ("weights.bin", None),
        ("sub/dir/../weights.bin", None),
    ],
)
def test_external_paths_judged_lexically(location: str, severity: Severity | None) -> None:
    problem = external_path_problem(location, None)
    assert (problem[1] if problem else None) == severity


def test_external_paths_in_a_directory(tmp_path: Path) -> None:
    (tmp_path / "w.bin").write_bytes(bytes(8))
    os.symlink("/etc/passwd", tmp_path / "link.bin")
    os.symlink("w.bin", tmp_path / "inner-link.bin")
    assert external_path_problem("w.bin", tmp_path) is None
    assert external_path_problem("inner-link.bin", tmp_path) is None
    assert external_path_problem("missing.bin", tmp_path) == (
        "external data file is missing",
        Severity.LOW,
    )
    reason, severity = external_path_problem("link.bin", tmp_path) or ("", Severity.INFO)
    assert severity is Severity.HIGH and "symlink" in reason


@pytest.mark.parametrize("key", ["onnx-external/model.onnx", "onnx-external-abs/model.onnx"])
def test_corpus_escapes_are_high(tmp_path: Path, key: str) -> None:
    data = models.malicious(str(tmp_path / "marker"))[key]
    path = tmp_path / key
    path.parent.mkdir(parents=True)
    path.write_bytes(data)
    for findings in (scan_file(path).findings, scan_bytes(data).findings):
        assert [(f.id, f.severity) for f in findings] == [
            ("scan.onnx.external-data-escape", Severity.HIGH)
        ]
        assert findings[0].evidence["tensors"][0]["tensor"] == "w"


def test_missing_external_file_is_low_and_present_is_clean(tmp_path: Path) -> None:
    path = tmp_path / "model.onnx"
    path.write_bytes(models.onnx_helper_model(location="weights.bin"))
    assert [(f.id, f.severity) for f in scan_file(path).findings] == [
        ("scan.onnx.external-data-missing", Severity.LOW)
    ]
    (tmp_path / "weights.bin").write_bytes(bytes(8))
    assert scan_file(path).findings == ()


def _nested_model(depth: int) -> bytes:
    graph = pb_msg(1, pb_bytes(4, "Relu"))
    for _ in range(depth):
        attr = pb_msg(5, pb_bytes(1, "then_branch"), pb_int(20, 5), pb_msg(6, graph))
        graph = pb_msg(1, pb_bytes(4, "If"), attr)
    return pb_int(1, 8) + pb_bytes(2, "t") + pb_bytes(7, graph) + pb_msg(8, pb_int(2, 17))


def test_deep_nesting_is_bounded_not_a_crash() -> None:
    assert scan_bytes(_nested_model(20)).findings == ()
    findings = scan_bytes(_nested_model(500)).findings
    assert [(f.id, f.severity) for f in findings] == [("scan.onnx.malformed", Severity.MEDIUM)]
    assert "deeper" in findings[0].title


def test_truncations_and_corruptions_are_findings_not_crashes(torch_onnx: bytes) -> None:
    data = models.onnx_helper_model(location="../x", domain="com.x", op_type="X")
    for cut in range(8, len(data), 5):
        assert "scan.error" not in _ids(data[:cut]), cut
    flipped = bytearray(torch_onnx)
    for pos in range(0, len(flipped), 97):
        corrupt = bytes(flipped[:pos]) + bytes([flipped[pos] ^ 0xFF]) + bytes(flipped[pos + 1 :])
        assert "scan.error" not in _ids(corrupt), pos


def test_sniff_requires_a_graph_and_ir_version(torch_onnx: bytes) -> None:
    sniff = OnnxScanner().sniff
    assert sniff(torch_onnx[:4096])
    assert not sniff(pb_int(1, 8) + pb_bytes(2, "pytorch"))  # no graph
    assert not sniff(pb_int(1, 0) + pb_bytes(7, b""))  # ir_version 0
    assert not sniff(pb_int(1, 1000) + pb_bytes(7, b""))  # implausible ir_version
    assert not sniff(pb_int(1, 8) + pb_bytes(2, b"\xff\xfe") + pb_bytes(7, b""))  # bad UTF-8
    assert not sniff(pb_int(1, 8) + pb_bytes(7, pb_int(1, 3)))  # graph.node not a message
    assert not sniff(pb_int(1, 8) + pb_int(9, 1) + pb_bytes(7, b""))  # unknown field
