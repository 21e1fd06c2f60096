"""Property tests: the header parsers never raise on arbitrary or mutated input.

Each parser either returns its result or raises its own documented error (protowire); the
scanners turn every malformed input into a precise finding, never a generic ``scan.error``.
"""

from __future__ import annotations

import io
import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.supplychain.corpus import models

from warden.supplychain.formats.gguf import parse_gguf
from warden.supplychain.formats.safetensors import DTYPE_BITS, check_header
from warden.supplychain.protowire import ProtoError, WireReader
from warden.supplychain.scanner import scan_bytes

FUZZ = settings(
    max_examples=400,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)

GGUF = models.gguf_model(models.CHATML)
SAFETENSORS = models.safetensors_raw(
    {
        "a": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]},
        "b": {"dtype": "U8", "shape": [4], "data_offsets": [16, 20]},
    },
    bytes(20),
)
SAVEDMODEL = models.savedmodel_standard()
ONNX = models.onnx_helper_model(location="w.bin", domain="com.x", op_type="X")


def _mutate(data: bytes, edits: list[tuple[int, int]], cut: int) -> bytes:
    out = bytearray(data)
    for pos, value in edits:
        out[pos % len(out)] = value
    return bytes(out[: max(8, cut % (len(out) + 1))])


EDITS = st.lists(st.tuples(st.integers(0, 1 << 16), st.integers(0, 255)), max_size=6)


def _no_generic_errors(data: bytes) -> None:
    ids = {f.id for f in scan_bytes(data).findings}
    assert "scan.error" not in ids, ids


@FUZZ
@given(st.binary(max_size=300), st.booleans())
def test_protowire_raises_only_proto_errors(data: bytes, partial: bool) -> None:
    reader = WireReader(data)
    try:
        for field in reader.fields(partial=partial):
            if field.wire == 2 and not field.truncated:
                list(reader.fields(field.offset, field.end, partial=partial))
    except ProtoError:
        pass


@FUZZ
@given(st.binary(max_size=200), st.integers(0, 1 << 20))
def test_safetensors_header_bytes_never_raise(header: bytes, data_len: int) -> None:
    assert isinstance(check_header(header, data_len), dict)


@st.composite
def _headers(draw: Any) -> tuple[bytes, int, bool]:
    """Valid layouts, then a random defect (or none)."""
    n = draw(st.integers(0, 5))
    header: dict[str, Any] = {}
    pos = 0
    for i in range(n):
        dtype = draw(st.sampled_from(sorted(DTYPE_BITS)))
        count = draw(st.integers(0, 4)) * 8
        size = count * DTYPE_BITS[dtype] // 8
        header[f"t{i}"] = {"dtype": dtype, "shape": [count], "data_offsets": [pos, pos + size]}
        pos += size
    valid = not draw(st.booleans())
    if not valid and header:
        entry = header[f"t{draw(st.integers(0, n - 1))}"]
        key = draw(st.sampled_from(["dtype", "shape", "data_offsets"]))
        entry[key] = draw(
            st.one_of(
                st.none(),
                st.integers(-5, 5),
                st.text(max_size=3),
                st.lists(st.integers(-3, 1 << 65), max_size=3),
            )
        )
    data_len = pos if valid else draw(st.integers(0, pos + 8))
    return json.dumps(header).encode(), data_len, valid


@FUZZ
@given(_headers())
def test_safetensors_structured_headers(case: tuple[bytes, int, bool]) -> None:
    header, data_len, valid = case
    issues = check_header(header, data_len)
    data = models.safetensors_raw(header.decode(), bytes(data_len))
    if valid:
        assert issues == {}
        assert scan_bytes(data).findings == ()
    else:
        _no_generic_errors(data)


@FUZZ
@given(EDITS, st.integers(0, 1 << 16))
def test_gguf_mutations_never_raise(edits: list[tuple[int, int]], cut: int) -> None:
    data = _mutate(GGUF, edits, cut)
    parse_gguf(io.BytesIO(data))
    _no_generic_errors(data)


@FUZZ
@given(EDITS, st.integers(0, 1 << 16))
def test_safetensors_mutations_never_raise(edits: list[tuple[int, int]], cut: int) -> None:
    _no_generic_errors(_mutate(SAFETENSORS, edits, cut))


@settings(FUZZ, max_examples=250)
@given(EDITS, st.integers(0, 1 << 16))
def test_protobuf_model_mutations_never_raise(edits: list[tuple[int, int]], cut: int) -> None:
    _no_generic_errors(_mutate(SAVEDMODEL, edits, cut))
    _no_generic_errors(_mutate(ONNX, edits, cut))
