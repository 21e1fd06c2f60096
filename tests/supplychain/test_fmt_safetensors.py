"""safetensors scanner: benign files pass, every header rule fires, tensor bytes are never read."""

from __future__ import annotations

import io
import json
import struct
from typing import Any

import numpy as np
import pytest
from tests.supplychain.corpus import models

from warden.assess.finding import Severity
from warden.supplychain.formats.safetensors import (
    DTYPE_BITS,
    SafetensorsScanner,
    check_header,
)
from warden.supplychain.scanner import ScanContext, ScanLimits, scan_bytes


def _ids(data: bytes) -> set[str]:
    return {f.id for f in scan_bytes(data).findings}


def _st(dtype: str, shape: list[Any], begin: Any, end: Any) -> dict[str, Any]:
    return {"dtype": dtype, "shape": shape, "data_offsets": [begin, end]}


def test_numpy_and_torch_files_give_no_findings() -> None:
    from safetensors.numpy import save

    arrays = {
        "f32": np.ones((3, 4), np.float32),
        "f16": np.zeros(5, np.float16),
        "i64": np.arange(7, dtype=np.int64),
        "u8": np.zeros((2, 2, 2), np.uint8),
        "bool": np.ones(3, np.bool_),
        "empty": np.zeros((0, 4), np.float32),
        "scalar": np.array(1.5, np.float64),
    }
    data = save(arrays, metadata={"format": "np", "note": "ok"})
    result = scan_bytes(data)
    assert ("<bytes>", "safetensors") in result.formats
    assert result.findings == ()


def test_torch_file_with_newer_dtypes_gives_no_findings() -> None:
    torch = pytest.importorskip("torch", reason="torch is an optional extra")
    from safetensors.torch import save

    tensors = {
        "bf16": torch.zeros(3, 4, dtype=torch.bfloat16),
        "f8": torch.zeros(5, dtype=torch.float8_e4m3fn),
        "f8b": torch.zeros(2, dtype=torch.float8_e5m2),
        "u16": torch.zeros(3, dtype=torch.uint16),
        "c64": torch.zeros(2, dtype=torch.complex64),
    }
    assert _ids(save(tensors)) == set()


def test_dtype_table_matches_the_installed_safetensors() -> None:
    """Every dtype we accept round-trips through the installed library's deserializer."""
    from safetensors import deserialize

    for dtype, bits in DTYPE_BITS.items():
        n = 8  # 8 elements: a whole number of bytes for 4- and 6-bit types
        size = n * bits // 8
        data = models.safetensors_raw({"t": _st(dtype, [n], 0, size)}, bytes(size))
        assert deserialize(data)[0][0] == "t", dtype
        assert _ids(data) == set(), dtype


@pytest.mark.parametrize(
    ("header", "data", "rule"),
    [
        ({"a": _st("F32", [2], 0, 8), "b": _st("F32", [2], 4, 12)}, 12, "overlap"),
        ({"a": _st("F32", [2], 8, 0)}, 8, "overlap"),
        ({"a": _st("F32", [2], 4, 12)}, 12, "gap"),
        ({"a": _st("F32", [1], 0, 4), "b": _st("F32", [1], 8, 12)}, 12, "gap"),
        ({"a": _st("F32", [4], 0, 16)}, 20, "trailing-bytes"),
        ({"a": _st("F32", [4], 0, 16)}, 8, "truncated"),
        ({"a": _st("F32", [1 << 62, 8], 0, 16)}, 16, "shape-overflow"),
        ({"a": _st("F32", [1 << 40, 1 << 40, 0], 0, 0)}, 0, "shape-overflow"),
        ({"a": _st("F32", [3], 0, 16)}, 16, "size-mismatch"),
        ({"a": _st("F4", [3], 0, 2)}, 2, "size-mismatch"),
        ({"a": _st("F128", [1], 0, 16)}, 16, "dtype"),
        ({"a": _st("f32", [4], 0, 16)}, 16, "dtype"),
        ({"a": {"dtype": "F32", "shape": [4]}}, 16, "tensor-entry"),
        ({"a": {**_st("F32", [4], 0, 16), "extra": 1}}, 16, "tensor-entry"),
        ({"a": _st("F32", [-4], 0, 16)}, 16, "tensor-entry"),
        ({"a": _st("F32", [4.0], 0, 16)}, 16, "tensor-entry"),
        ({"a": _st("F32", [True], 0, 4)}, 4, "tensor-entry"),
        ({"a": _st(7, [4], 0, 16)}, 16, "tensor-entry"),
        ({"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 8, 16]}}, 16, "tensor-entry"),
        ({"a": []}, 0, "tensor-entry"),
        ({"__metadata__": {"k": 1}}, 0, "metadata"),
        ({"__metadata__": ["x"]}, 0, "metadata"),
    ],
)
def test_header_rule_fires(header: dict[str, Any], data: int, rule: str) -> None:
    findings = scan_bytes(models.safetensors_raw(header, bytes(data))).findings
    assert f"scan.safetensors.{rule}" in {f.id for f in findings}
    assert all(f.severity >= Severity.LOW for f in findings)


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        (
            '{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"I32",'
            '"shape":[1],"data_offsets":[0,4]}}',
            "duplicate-key",
        ),
        ('{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}\n\n', "header-padding"),
        ('{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}\x00\x00', "invalid-header"),
        ('{"a":{"dtype":"F32","shape":[NaN],"data_offsets":[0,4]}}', "invalid-header"),
        ('{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}', "invalid-header"),
        ('{"\\ud800":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}', "invalid-header"),
    ],
)
def test_text_level_rules(text: str, rule: str) -> None:
    assert f"scan.safetensors.{rule}" in _ids(models.safetensors_raw(text, bytes(4)))


def test_invalid_utf8_header() -> None:
    raw = b'{"\xff":{}}'
    data = struct.pack("<Q", len(raw)) + raw
    assert "scan.safetensors.invalid-header" in _ids(data)


def test_severities() -> None:
    overlap = scan_bytes(
        models.safetensors_raw({"a": _st("F32", [2], 0, 8), "b": _st("F32", [2], 4, 12)}, bytes(12))
    ).findings
    assert [f.severity for f in overlap] == [Severity.HIGH]
    padding = scan_bytes(
        models.safetensors_raw('{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}\t', b"\0")
    ).findings
    assert [f.severity for f in padding] == [Severity.LOW]


def test_spaces_padding_and_unsorted_entries_are_fine() -> None:
    header = json.dumps({"b": _st("U8", [2], 2, 4), "a": _st("U8", [2], 0, 2)}) + "      "
    assert check_header(header.encode(), 4) == {}


def test_one_finding_per_rule_with_examples() -> None:
    header = {f"t{i}": _st("F128", [1], 4 * i, 4 * i + 4) for i in range(50)}
    findings = scan_bytes(models.safetensors_raw(header, bytes(200))).findings
    assert [f.id for f in findings] == ["scan.safetensors.dtype"]
    assert findings[0].evidence["count"] == 50
    assert len(findings[0].evidence["examples"]) == 10


class _Recording(io.BytesIO):
    """A stream that remembers the furthest byte read."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.furthest = 0

    def read(self, n: int | None = -1) -> bytes:
        out = super().read(n)
        self.furthest = max(self.furthest, self.tell())
        return out


def test_tensor_bytes_are_never_read() -> None:
    header = {"big": _st("U8", [1 << 20], 0, 1 << 20)}
    data = models.safetensors_raw(header, bytes(1 << 20))
    n = struct.unpack("<Q", data[:8])[0]
    stream = _Recording(data)
    scanner = SafetensorsScanner()
    findings = list(scanner.scan(stream, ScanContext("x", ScanLimits())))
    assert findings == []
    assert stream.furthest == 8 + n


def test_corpus_samples_fire_their_rules(tmp_path: Any) -> None:
    samples = models.malicious(str(tmp_path / "marker"))
    expected = {
        "safetensors-overlap.safetensors": "overlap",
        "safetensors-trailing.safetensors": "trailing-bytes",
        "safetensors-dupkey.safetensors": "duplicate-key",
        "safetensors-overflow.safetensors": "shape-overflow",
        "safetensors-baddtype.safetensors": "dtype",
    }
    for key, rule in expected.items():
        assert f"scan.safetensors.{rule}" in _ids(samples[key]), key


@pytest.mark.parametrize(
    "head",
    [
        struct.pack("<Q", 1) + b"{",  # N too small
        struct.pack("<Q", 200_000_000) + b'{"a"',  # N above the reference bound
        struct.pack("<Q", 20) + b"[1,2]",  # not an object
        struct.pack("<Q", 20) + b"{x",  # not JSON after the brace
        b"\x80\x04\x95" + bytes(20),  # a pickle
    ],
)
def test_sniff_rejects(head: bytes) -> None:
    assert not SafetensorsScanner().sniff(head)
