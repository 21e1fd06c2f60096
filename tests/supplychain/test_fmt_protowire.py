"""protowire: the minimal protobuf wire reader, checked against the reference encoder."""

from __future__ import annotations

import io

import pytest
from tests.supplychain.corpus.models import pb_bytes, pb_int, pb_msg, varint

from warden.supplychain.protowire import I32, I64, LEN, VARINT, ProtoError, WireReader, read_varint


@pytest.mark.parametrize("value", [0, 1, 127, 128, 300, 2**32, 2**63, 2**64 - 1])
def test_varint_round_trip(value: int) -> None:
    raw = varint(value)
    assert read_varint(raw, 0, len(raw)) == (value, len(raw))


@pytest.mark.parametrize(
    ("raw", "match"),
    [
        (b"\x80\x80", "truncated"),
        (b"\xff" * 11, "longer than 10"),
        (b"\xff" * 9 + b"\x7f", "overflows"),
    ],
)
def test_bad_varints(raw: bytes, match: str) -> None:
    with pytest.raises(ProtoError, match=match):
        read_varint(raw, 0, len(raw))


def test_fields_match_the_protobuf_library() -> None:
    from onnx import TensorProto, helper

    tensor = helper.make_tensor("w", TensorProto.DOUBLE, [2], [1.5, -2.0])
    tensor.doc_string = "doc"
    data = tensor.SerializeToString()
    for source in (data, io.BytesIO(data)):
        reader = WireReader(source)
        fields = list(reader.fields())
        dims = [f.value for f in fields if f.number == 1]
        assert dims == [2]
        name = next(f for f in fields if f.number == 8)
        assert reader.string(name) == "w"
        doubles = next(f for f in fields if f.number == 10)
        assert doubles.wire == LEN and doubles.value == 16


def test_fixed_width_fields() -> None:
    data = b"\x0d" + (7).to_bytes(4, "little") + b"\x11" + (9).to_bytes(8, "little")
    fields = list(WireReader(data).fields())
    assert [(f.number, f.wire, f.value) for f in fields] == [(1, I32, 7), (2, I64, 9)]


def test_nested_message_ranges() -> None:
    data = pb_int(1, 5) + pb_msg(2, pb_bytes(1, "inner"), pb_int(2, 3))
    reader = WireReader(data)
    outer = list(reader.fields())
    assert [(f.number, f.wire) for f in outer] == [(1, VARINT), (2, LEN)]
    inner = list(reader.fields(outer[1].offset, outer[1].end))
    assert reader.string(inner[0]) == "inner"
    assert inner[1].value == 3


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (b"\x0b", "groups"),  # field 1, start group
        (b"\x0c", "groups"),  # field 1, end group
        (b"\x0e", "wire type"),  # wire type 6
        (b"\x00\x01", "field number 0"),
        (b"\x0a\x05abc", "past the message end"),
        (b"\x0d\x01\x02", "truncated"),
        (b"\x08", "truncated"),
    ],
)
def test_malformed_data_is_a_proto_error(data: bytes, match: str) -> None:
    with pytest.raises(ProtoError, match=match):
        list(WireReader(data).fields())


def test_partial_prefix_marks_the_cut_field() -> None:
    data = pb_int(1, 7) + pb_bytes(2, "x" * 100)
    fields = list(WireReader(data[:20]).fields(partial=True))
    assert fields[0].value == 7
    assert fields[1].truncated and fields[1].value == 100
    # a cut inside a tag or varint just ends the iteration
    assert [f.number for f in WireReader(pb_int(1, 7) + b"\x10\xff").fields(partial=True)] == [1]


def test_payload_bounds() -> None:
    data = pb_bytes(1, "x" * 50)
    reader = WireReader(data)
    field = next(reader.fields())
    with pytest.raises(ProtoError, match="exceeds"):
        reader.payload(field, 10)
    with pytest.raises(ProtoError, match="not valid UTF-8"):
        WireReader(pb_bytes(1, b"\xff")).string(next(WireReader(pb_bytes(1, b"\xff")).fields()))
    with pytest.raises(ProtoError, match="outside the data"):
        list(reader.fields(0, 1000))


def test_stream_reader_skips_payloads_without_reading_them() -> None:
    big = pb_bytes(9, bytes(1 << 20))
    data = pb_bytes(1, "name") + big + pb_int(2, 1)

    class Counting(io.BytesIO):
        bytes_read = 0

        def read(self, n: int | None = -1) -> bytes:
            out = super().read(n)
            Counting.bytes_read += len(out)
            return out

    reader = WireReader(Counting(data))
    assert [f.number for f in reader.fields()] == [1, 9, 2]
    assert Counting.bytes_read < 200_000
