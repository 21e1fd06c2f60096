"""A minimal, strict reader of the protobuf wire format (no schema, no code generation).

Model formats built on protobuf (ONNX, TensorFlow SavedModel, Keras metadata) are parsed here
field by field, without the ``onnx`` or ``tensorflow`` packages and without ever materialising
a message: :class:`WireReader` yields :class:`Field` records (number, wire type, value or
payload range) for one message range at a time, and callers walk nested messages with their
own explicit stacks, so attacker-controlled nesting cannot exhaust the Python stack.

Strictness is deliberate: field number 0, wire types 6 and 7, groups (deprecated, and never
used by the formats we read), varints longer than 10 bytes or above 2**64, and payloads that
run past their enclosing message are all :class:`ProtoError`. A reader over a stream reads
only the bytes it is asked about (tags, lengths, the strings a caller decodes), so skipping a
gigabyte ``raw_data`` payload costs nothing.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

__all__ = [
    "I32",
    "I64",
    "LEN",
    "MAX_DEPTH",
    "VARINT",
    "Field",
    "ProtoError",
    "WireReader",
    "read_varint",
]

VARINT = 0
"""Wire type of int32/int64/uint/bool/enum fields."""
I64 = 1
"""Wire type of fixed64/sfixed64/double fields."""
LEN = 2
"""Wire type of strings, bytes, sub-messages and packed repeated scalars."""
_SGROUP = 3
_EGROUP = 4
I32 = 5
"""Wire type of fixed32/sfixed32/float fields."""

MAX_DEPTH = 64
"""Default bound on message nesting for walkers built on this module."""

_MAX_FIELD = (1 << 29) - 1
_WINDOW = 1 << 16


class ProtoError(ValueError):
    """The bytes are not well-formed protobuf wire data (or break one of our bounds)."""


class _Truncated(ProtoError):
    """The data ends inside a tag or value (a prefix of a longer message)."""


def read_varint(buf: bytes | memoryview, pos: int, end: int) -> tuple[int, int]:
    """Decode the varint at ``buf[pos:end]``; return ``(value, next position)``.

    At most 10 bytes and values below 2**64 are accepted, as in the reference decoder.
    """
    value = 0
    shift = 0
    limit = min(end, pos + 10)
    while pos < limit:
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            if value >> 64:
                raise ProtoError("varint overflows 64 bits")
            return value, pos
        shift += 7
    if pos >= end:
        raise _Truncated("truncated varint")
    raise ProtoError("varint longer than 10 bytes")


@dataclass(frozen=True, slots=True)
class Field:
    """One field occurrence of a message.

    For ``VARINT``, ``I32`` and ``I64`` fields ``value`` is the (unsigned) value; for ``LEN``
    fields it is the payload length and the payload is ``[offset, offset + value)``.
    """

    number: int
    """The field number (1 ≤ n < 2**29)."""
    wire: int
    """The wire type (``VARINT``, ``I64``, ``LEN`` or ``I32``)."""
    value: int
    """The scalar value, or the payload length for ``LEN``."""
    offset: int
    """Absolute position of the value (scalars) or of the payload (``LEN``)."""
    size: int = 0
    """Encoded size of a scalar value in bytes (0 for ``LEN``: see ``value``)."""
    truncated: bool = False
    """Only with ``partial=True``: the payload runs past the end of the data read."""

    @property
    def end(self) -> int:
        """Absolute position just after the field."""
        return self.offset + (self.value if self.wire == LEN else self.size)


class WireReader:
    """Random-access reader over bytes or a seekable binary stream.

    ``fields(start, end)`` iterates the fields of the message occupying ``[start, end)``.
    Only the bytes holding tags, varints and explicitly requested payloads are read; a stream
    is read through a small sliding window.
    """

    def __init__(self, source: bytes | bytearray | memoryview | BinaryIO) -> None:
        if isinstance(source, bytes | bytearray | memoryview):
            self._stream: BinaryIO | None = None
            self._win = bytes(source)
            self._win_start = 0
            self.size = len(self._win)
        else:
            self._stream = source
            source.seek(0, io.SEEK_END)
            self.size = source.tell()
            source.seek(0)
            self._win = b""
            self._win_start = 0
            if self.size <= _WINDOW:  # small: one read, then plain slicing
                self._win = source.read(self.size + 1)
                source.seek(0)
                if len(self._win) == self.size:
                    self._stream = None

    def _window(self, pos: int, need: int) -> tuple[bytes, int]:
        """Bytes covering ``[pos, pos + need)`` (or up to EOF) and the offset of ``pos`` in them."""
        rel = pos - self._win_start
        if self._stream is None or (rel >= 0 and rel + need <= len(self._win)):
            return self._win, rel
        if rel >= 0 and self._win_start + len(self._win) >= self.size:
            return self._win, rel  # the window already reaches EOF
        self._stream.seek(pos)
        self._win = self._stream.read(max(need, _WINDOW))
        self._win_start = pos
        return self._win, 0

    def read(self, start: int, length: int) -> bytes:
        """``length`` bytes at ``start``; :class:`ProtoError` when they are not all there."""
        if start < 0 or length < 0 or start + length > self.size:
            raise ProtoError(f"read of {length} bytes at {start} runs past the end ({self.size})")
        if self._stream is None:
            return self._win[start : start + length]
        if length > _WINDOW:
            self._stream.seek(start)
            data = self._stream.read(length)
        else:
            win, rel = self._window(start, length)
            data = win[rel : rel + length]
        if len(data) != length:
            raise ProtoError(f"short read at {start}")
        return data

    def payload(self, field: Field, max_len: int) -> bytes:
        """The payload of a ``LEN`` field, refused when longer than ``max_len``."""
        if field.wire != LEN:
            raise ProtoError(f"field {field.number} is not length-delimited")
        if field.value > max_len:
            raise ProtoError(f"field {field.number}: {field.value} bytes exceeds {max_len}")
        return self.read(field.offset, field.value)

    def string(self, field: Field, max_len: int = 1 << 20) -> str:
        """The payload of a ``LEN`` field as strict UTF-8."""
        try:
            return self.payload(field, max_len).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ProtoError(f"field {field.number} is not valid UTF-8") from exc

    def fields(
        self, start: int = 0, end: int | None = None, *, partial: bool = False
    ) -> Iterator[Field]:
        """Fields of the message in ``[start, end)`` (default: the whole source).

        Raises :class:`ProtoError` on malformed data. With ``partial=True`` the message is
        taken to be a prefix of a longer one (a file head): a tag or scalar cut by ``end`` ends
        the iteration quietly, and a ``LEN`` field whose payload runs past ``end`` is yielded
        with ``truncated=True`` as the last field.
        """
        end = self.size if end is None else end
        if start < 0 or end > self.size or start > end:
            raise ProtoError(f"message range [{start}, {end}) outside the data ({self.size})")
        pos = start
        while pos < end:
            try:
                field = self._field(pos, end, partial)
            except _Truncated:
                if partial:
                    return
                raise
            yield field
            if field.truncated:
                return
            pos = field.end

    def _field(self, pos: int, end: int, partial: bool) -> Field:
        win, rel = self._window(pos, min(end - pos, 32))
        base = pos - rel
        limit = min(len(win), end - base)
        # one-byte varints (tags of fields 1-15, short lengths) are decoded inline
        if rel < limit and win[rel] < 0x80:
            tag, p = win[rel], rel + 1
        else:
            tag, p = read_varint(win, rel, limit)
        number, wire = tag >> 3, tag & 7
        if number == 0 or number > _MAX_FIELD:
            raise ProtoError(f"invalid field number {number} at {pos}")
        if wire == VARINT:
            if p < limit and win[p] < 0x80:
                return Field(number, wire, win[p], base + p, 1)
            value, q = read_varint(win, p, limit)
            return Field(number, wire, value, base + p, size=q - p)
        if wire == LEN:
            if p < limit and win[p] < 0x80:
                length, q = win[p], p + 1
            else:
                length, q = read_varint(win, p, limit)
            payload = base + q
            if payload + length > end:
                if partial:
                    return Field(number, wire, length, payload, truncated=True)
                raise ProtoError(
                    f"field {number} at {pos}: {length} bytes run past the message end"
                )
            return Field(number, wire, length, payload)
        if wire in (I64, I32):
            size = 8 if wire == I64 else 4
            if base + p + size > end:
                raise _Truncated(f"field {number} at {pos}: truncated fixed value")
            raw = self.read(base + p, size) if p + size > len(win) else win[p : p + size]
            return Field(number, wire, int.from_bytes(raw, "little"), base + p, size=size)
        if wire in (_SGROUP, _EGROUP):
            raise ProtoError(f"field {number} at {pos}: groups are not supported")
        raise ProtoError(f"field {number} at {pos}: invalid wire type {wire}")
