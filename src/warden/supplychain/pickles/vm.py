"""A symbolic pickle machine: CPython's unpickler, simulated without importing or calling.

:class:`PickleMachine` reads a pickle opcode by opcode from a binary stream (``read(n)`` only,
never the whole stream into memory) and simulates the stack, the mark stack and the memo the
way ``Modules/_pickle.c`` does, including its fence rule (nothing below the newest mark can be
popped), ``MEMOIZE`` indexing by memo length, ``PUT`` overwriting, ``POP`` removing a mark that
sits on top, ``APPENDS``/``SETITEMS``/``ADDITEMS`` on arbitrary objects, ``FRAME`` as a mere
prefetch hint and ``PROTO`` anywhere. Where the pure-Python unpickler (which joblib uses) is
more lenient than the C one, the machine follows the lenient one, so that it never stops where
a real loader would carry on and run more of the stream.

Values are symbolic. Numbers, short strings and bytes are real Python values; containers are
real lists, tuples, dicts and sets of symbolic values (kept up to :data:`CONTAINER_CAP` items);
long strings and bytes are read in chunks and kept as a :class:`Blob` (length and first bytes);
everything a real unpickler would import or call is a node: :class:`Global` for a module
attribute, :class:`Call` for a call (``REDUCE``, ``INST``, ``OBJ``, ``NEWOBJ``, ``NEWOBJ_EX``,
and the ``BUILD``, ``APPENDS``, ``SETITEMS``, ``ADDITEMS`` and persistent-id calls that a real
load makes on objects), :class:`PersistentRef` for what ``persistent_load`` would return.

The machine makes no security decision: it records every global, call and anomaly in a
:class:`PickleTrace`; :mod:`warden.supplychain.pickles.rules` judges them.
"""

from __future__ import annotations

import contextlib
import io
import logging
import re
import struct
import warnings
from _codecs import escape_decode
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, Protocol

__all__ = [
    "BLOB_HEAD",
    "CONTAINER_CAP",
    "KEEP_BYTES",
    "OPCODE_NAMES",
    "Anomaly",
    "Blob",
    "Call",
    "Global",
    "NestedHook",
    "OutOfBandBuffer",
    "PersistentRef",
    "PickleMachine",
    "PickleTrace",
    "Readable",
    "created_class",
    "describe",
    "nested_kind",
]

log = logging.getLogger(__name__)

KEEP_BYTES: Final = 64 << 10
"""``str``/``bytes`` values up to this many bytes are kept whole; longer ones become a Blob."""
BLOB_HEAD: Final = 64
"""How many leading bytes a :class:`Blob` keeps."""
CONTAINER_CAP: Final = 1 << 16
"""Items kept per list, dict or set; beyond it items are dropped (calls are recorded anyway)."""
MAX_LINE: Final = 1 << 20
"""Longest argument line of a text opcode (``GLOBAL``, ``INT``, ``GET`` …) that is parsed."""
_CHUNK: Final = 1 << 16
_SKIP_CHUNK: Final = 1 << 20
_CHECK_EVERY: Final = 0xFFF
_SSIZE_MAX: Final = (1 << 63) - 1

OPCODE_NAMES: Final[dict[int, str]] = {
    0x28: "MARK",
    0x2E: "STOP",
    0x30: "POP",
    0x31: "POP_MARK",
    0x32: "DUP",
    0x46: "FLOAT",
    0x49: "INT",
    0x4A: "BININT",
    0x4B: "BININT1",
    0x4C: "LONG",
    0x4D: "BININT2",
    0x4E: "NONE",
    0x50: "PERSID",
    0x51: "BINPERSID",
    0x52: "REDUCE",
    0x53: "STRING",
    0x54: "BINSTRING",
    0x55: "SHORT_BINSTRING",
    0x56: "UNICODE",
    0x58: "BINUNICODE",
    0x61: "APPEND",
    0x62: "BUILD",
    0x63: "GLOBAL",
    0x64: "DICT",
    0x7D: "EMPTY_DICT",
    0x65: "APPENDS",
    0x67: "GET",
    0x68: "BINGET",
    0x69: "INST",
    0x6A: "LONG_BINGET",
    0x6C: "LIST",
    0x5D: "EMPTY_LIST",
    0x6F: "OBJ",
    0x70: "PUT",
    0x71: "BINPUT",
    0x72: "LONG_BINPUT",
    0x73: "SETITEM",
    0x74: "TUPLE",
    0x29: "EMPTY_TUPLE",
    0x75: "SETITEMS",
    0x47: "BINFLOAT",
    0x80: "PROTO",
    0x81: "NEWOBJ",
    0x82: "EXT1",
    0x83: "EXT2",
    0x84: "EXT4",
    0x85: "TUPLE1",
    0x86: "TUPLE2",
    0x87: "TUPLE3",
    0x88: "NEWTRUE",
    0x89: "NEWFALSE",
    0x8A: "LONG1",
    0x8B: "LONG4",
    0x42: "BINBYTES",
    0x43: "SHORT_BINBYTES",
    0x8C: "SHORT_BINUNICODE",
    0x8D: "BINUNICODE8",
    0x8E: "BINBYTES8",
    0x8F: "EMPTY_SET",
    0x90: "ADDITEMS",
    0x91: "FROZENSET",
    0x92: "NEWOBJ_EX",
    0x93: "STACK_GLOBAL",
    0x94: "MEMOIZE",
    0x95: "FRAME",
    0x96: "BYTEARRAY8",
    0x97: "NEXT_BUFFER",
    0x98: "READONLY_BUFFER",
}
"""Every opcode CPython's unpickler knows, by byte value."""

CODE_OPCODES: Final = frozenset(
    {0x63, 0x93, 0x69, 0x6F, 0x52, 0x81, 0x92, 0x62, 0x82, 0x83, 0x84, 0x50, 0x51}
)
"""Opcodes that import, call or hand data to loader code (GLOBAL … PERSID)."""

JOBLIB_WRAPPERS: Final = frozenset(
    {
        "joblib.numpy_pickle.NumpyArrayWrapper",
        "sklearn.externals.joblib.numpy_pickle.NumpyArrayWrapper",
    }
)
"""Classes after whose ``BUILD`` joblib reads raw array bytes straight from the stream."""

_RECONSTRUCTORS: Final = frozenset(
    {
        "copyreg._reconstructor",
        "copy_reg._reconstructor",
        "copyreg.__newobj__",
        "copyreg.__newobj_ex__",
    }
)
_DTYPE_GLOBALS: Final = frozenset(
    {"numpy.dtype", "numpy.core.multiarray.dtype", "numpy._core.multiarray.dtype"}
)
_SIMPLE_DESCR = re.compile(r"[<>|=]?[A-Za-z?][A-Za-z0-9]{0,15}(\[[A-Za-z0-9]{1,8}\])?")
_SEEKABLE: Final = (io.BufferedReader, io.FileIO, io.BytesIO)
_NOT_NESTED: Final = b"\x80(cP\x93\xc2"
_U16: Final = struct.Struct("<H").unpack_from
_U32: Final = struct.Struct("<I").unpack_from
_I32: Final = struct.Struct("<i").unpack_from
_F64: Final = struct.Struct(">d").unpack_from
_OCTAL = re.compile(rb"\s*[+-]?0[0-7]+\s*")
_MISSING: Final = object()


# --- symbolic values ----------------------------------------------------------------------


class Global:
    """A module attribute the unpickler would import (``module.name``), and how it was named."""

    __slots__ = ("module", "name", "offset", "opcode", "pickle_index", "proto")

    def __init__(
        self, module: str, name: str, opcode: str, offset: int, proto: int, pickle_index: int
    ) -> None:
        self.module = module
        self.name = name
        self.opcode = opcode
        self.offset = offset
        self.proto = proto
        self.pickle_index = pickle_index

    @property
    def path(self) -> str:
        """``module.name`` as written in the stream."""
        return f"{self.module}.{self.name}"

    def __repr__(self) -> str:
        return f"Global({self.path!r}, {self.opcode}@{self.offset})"


class Call:
    """A call a real load would make: ``func(*args, **kwargs)``, or a method call on ``func``.

    ``opcode`` says which: ``REDUCE``/``INST``/``OBJ`` call ``func``; ``NEWOBJ``/``NEWOBJ_EX``
    call ``func.__new__``; ``BUILD`` calls ``func.__setstate__(args[0])`` (or updates its
    ``__dict__``); ``APPENDS``/``SETITEMS``/``ADDITEMS`` call ``extend``/``__setitem__``/``add``
    on a non-builtin ``func``; ``PERSID``/``BINPERSID`` call ``persistent_load(args[0])`` (then
    ``func`` is ``None``). The node is also the symbolic result of the call.
    """

    __slots__ = ("args", "func", "kwargs", "offset", "opcode", "pickle_index", "state")

    def __init__(
        self,
        func: Any,
        args: Any,
        kwargs: Any,
        opcode: str,
        offset: int,
        pickle_index: int,
    ) -> None:
        self.func = func
        self.args = args
        self.kwargs = kwargs
        self.opcode = opcode
        self.offset = offset
        self.pickle_index = pickle_index
        self.state: Any = None

    def __repr__(self) -> str:
        return f"Call({describe(self.func)}, {self.opcode}@{self.offset})"


class PersistentRef:
    """What ``persistent_load(pid)`` would return (torch: a storage)."""

    __slots__ = ("offset", "pid")

    def __init__(self, pid: Any, offset: int) -> None:
        self.pid = pid
        self.offset = offset

    def __repr__(self) -> str:
        return f"PersistentRef({describe(self.pid)})"


class Blob:
    """A long ``str``/``bytes``/``bytearray``/``int`` value: its length and first bytes only.

    ``scanned`` is true when the whole value was handed to the nested-content hook.
    """

    __slots__ = ("head", "kind", "length", "scanned")

    def __init__(self, kind: str, length: int, head: bytes, scanned: bool = False) -> None:
        self.kind = kind
        self.length = length
        self.head = head
        self.scanned = scanned

    def __repr__(self) -> str:
        return f"Blob({self.kind}, {self.length} bytes, {self.head[:16]!r}…)"


class OutOfBandBuffer:
    """The placeholder ``NEXT_BUFFER`` pushes (an out-of-band buffer the loader must supply)."""

    __slots__ = ("offset",)

    def __init__(self, offset: int) -> None:
        self.offset = offset

    def __repr__(self) -> str:
        return "OutOfBandBuffer()"


@dataclass(frozen=True)
class Anomaly:
    """Something odd about the stream (a parse error is one too)."""

    kind: str
    """``error``, ``truncated``, ``opcode``, ``stack``, ``memo``, ``frame``, ``buffer``,
    ``joblib`` or ``limit``."""
    message: str
    """What was expected and what was found."""
    offset: int
    """Byte offset of the opcode concerned, from the start of the stream."""


@dataclass(frozen=True)
class PickleTrace:
    """Everything one pickle (``PROTO`` … ``STOP``) would import, call and do."""

    index: int
    """Position of this pickle in the stream (0 for the first)."""
    start: int
    """Byte offset of its first opcode."""
    end: int
    """Byte offset just after its last opcode read (after ``STOP`` when it stopped)."""
    stopped: bool
    """Whether ``STOP`` was reached without error."""
    protocol: int
    """Highest ``PROTO`` seen (0 when none)."""
    ops: int
    """Opcodes executed."""
    result: Any
    """The symbolic value ``STOP`` returned (``None`` when it did not stop)."""
    globals: tuple[Global, ...]
    """Every global imported, in order."""
    calls: tuple[Call, ...]
    """Every call made, in order (``BUILD``, method and persistent-id calls included)."""
    anomalies: tuple[Anomaly, ...]
    """Non-fatal oddities (frames, out-of-band buffers, joblib layouts)."""
    error: Anomaly | None
    """Why parsing stopped before ``STOP`` (``None`` when it stopped normally)."""
    code_offset: int
    """Offset of the first code-capable opcode executed, or -1 when there was none."""
    interrupted: BaseException | None = None
    """An exception from the time check that stopped the run (re-raised by the caller)."""

    @property
    def code_reached(self) -> bool:
        """Whether any code-capable opcode (GLOBAL, REDUCE, BUILD, PERSID …) was executed."""
        return self.code_offset >= 0


class Readable(Protocol):
    """What the machine reads from: anything with ``read(n)`` (a file, a zip member …)."""

    def read(self, size: int = -1, /) -> bytes: ...


NestedHook = Callable[[int, bytes, str], bool]
"""``hook(offset, data, kind)``: scan a value that looks like embedded content; True if done."""


class PickleSyntaxError(Exception):
    """The unpickler would raise here (``UnpicklingError``, ``EOFError``, ``ValueError`` …)."""

    def __init__(self, message: str, kind: str = "error") -> None:
        super().__init__(message)
        self.kind = kind


class _Stop(Exception):
    """STOP was executed: the pickle ended cleanly."""


class _LimitReached(Exception):
    """``max_ops`` or ``max_memo`` was reached."""


class _Interrupted(Exception):
    def __init__(self, cause: BaseException) -> None:
        super().__init__(str(cause))
        self.cause = cause


# --- helpers ------------------------------------------------------------------------------


def nested_kind(head: bytes) -> str | None:
    """``"pickle"`` or ``"archive"`` when ``head`` starts like embedded loadable content."""
    if len(head) < 2:
        return None
    c0 = head[0]
    if c0 == 0x80 and head[1] <= 5:
        return "pickle"
    if c0 in (0x28, 0x63) and b"\n" in head[:BLOB_HEAD]:
        return "pickle"
    if head.startswith((b"PK\x03\x04", b"\x93NUMPY")):
        return "archive"
    return None


def _nested_candidate(data: bytes) -> str | None:
    kind = nested_kind(data[:BLOB_HEAD])
    if kind == "pickle" and data[0] != 0x80 and not data.rstrip().endswith(b"."):
        return None  # protocol 0 text must end with STOP to be a whole pickle
    return kind


def created_class(call: Call) -> Any:
    """The class a call instantiates (``NEWOBJ`` cls, ``copyreg._reconstructor`` cls …)."""
    func = call.func
    if call.opcode in ("NEWOBJ", "NEWOBJ_EX"):
        return func
    if isinstance(func, Global) and func.path in _RECONSTRUCTORS:
        args = call.args
        if isinstance(args, tuple) and args:
            return args[0]
        return None
    return func


def describe(value: Any, depth: int = 0) -> str:
    """A short human-readable form of a symbolic value, for evidence."""
    if isinstance(value, Global):
        return value.path
    if isinstance(value, Call):
        if value.opcode in ("PERSID", "BINPERSID"):
            return f"persistent_load({describe(value.args[0], depth + 1)})"
        return f"{describe(value.func, depth + 1)}(…)"
    if isinstance(value, str | bytes | bytearray):
        text = repr(value)
        return text if len(text) <= 80 else text[:77] + "…"
    if isinstance(value, Blob):
        return f"<{value.kind} of {value.length} bytes>"
    if isinstance(value, tuple | list | set | frozenset):
        if depth >= 3:
            return "(…)"
        items = [describe(v, depth + 1) for v in list(value)[:6]]
        if len(value) > 6:
            items.append("…")
        brackets = {tuple: "()", list: "[]"}.get(type(value), "{}")
        return brackets[0] + ", ".join(items) + brackets[1]
    if isinstance(value, dict):
        if depth >= 3:
            return "{…}"
        pairs = [f"{describe(k, depth + 1)}: {describe(v, depth + 1)}" for k, v in value.items()]
        if len(pairs) > 6:
            pairs = [*pairs[:6], "…"]
        return "{" + ", ".join(pairs) + "}"
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "…"


def _c_text(line: bytes) -> bytes:
    """The argument of a text opcode as C sees it: newline dropped, cut at the first NUL."""
    body = line[:-1]
    nul = body.find(b"\0")
    return body if nul < 0 else body[:nul]


def _parse_int(body: bytes, base: int) -> int:
    try:
        return int(body, base)
    except ValueError:
        if base == 0 and _OCTAL.fullmatch(body):  # C strtol reads "010" as octal
            return int(body.strip(), 8)
        raise PickleSyntaxError(f"could not convert {body[:40]!r} to int") from None


# --- handlers for fixed-width arguments ----------------------------------------------------
# Built by a factory rather than written out once per width: each handler still reads its
# argument straight from the buffer, with no call on the fast path.

_Handler = Callable[["PickleMachine"], None]
_Unpack = Callable[[bytes, int], tuple[Any, ...]]


def _push_fixed(width: int, unpack: _Unpack) -> _Handler:
    """A handler that pushes the number packed in the next ``width`` bytes (BININT …)."""

    def handler(self: PickleMachine) -> None:
        p = self._pos
        if p + width <= len(self._buf):
            self._pos = p + width
            self._stack.append(unpack(self._buf, p)[0])
        else:
            self._stack.append(unpack(self._read(width), 0)[0])

    return handler


# --- the machine --------------------------------------------------------------------------


class PickleMachine:
    """Simulate consecutive pickles from one stream; see the module docstring.

    ``stream`` is read forward with ``read(n)`` from its current position; offsets are counted
    from there. ``size`` (when known) is the number of bytes left in the stream, which lets
    absurd lengths fail at once instead of being read through. ``nested_hook`` is called for
    str/bytes values that look like an embedded pickle or archive. ``check_time`` is called
    every few thousand opcodes; whatever it raises stops the run and is kept in
    :attr:`PickleTrace.interrupted`.
    """

    __slots__ = (
        "_anomalies",
        "_base",
        "_buf",
        "_calls",
        "_check_time",
        "_code_offset",
        "_eof",
        "_fence",
        "_frame_end",
        "_globals",
        "_index",
        "_marks",
        "_max_memo",
        "_max_nested",
        "_max_ops",
        "_max_proto",
        "_memo",
        "_nested_hook",
        "_op_offset",
        "_ops_total",
        "_pos",
        "_proto",
        "_raw",
        "_result",
        "_size",
        "_stack",
    )

    def __init__(
        self,
        stream: Readable,
        *,
        size: int | None = None,
        max_ops: int = 20_000_000,
        max_memo: int = 2_000_000,
        check_time: Callable[[], None] | None = None,
        nested_hook: NestedHook | None = None,
        max_nested: int = 256 << 20,
    ) -> None:
        self._raw = stream
        self._buf = b""
        self._pos = 0
        self._base = 0
        self._eof = False
        self._size = size
        self._max_ops = max_ops
        self._max_memo = max_memo
        self._check_time = check_time
        self._nested_hook = nested_hook
        self._max_nested = max_nested
        self._ops_total = 0
        self._memo: dict[int, Any] = {}
        self._stack: list[Any] = []
        self._marks: list[int] = []
        self._fence = 0
        self._proto = 0
        self._max_proto = 0
        self._index = 0
        self._op_offset = 0
        self._frame_end = -1
        self._code_offset = -1
        self._result: Any = None
        self._globals: list[Global] = []
        self._calls: list[Call] = []
        self._anomalies: list[Anomaly] = []

    # --- stream ---------------------------------------------------------------------------

    @property
    def offset(self) -> int:
        """Bytes consumed from the stream so far."""
        return self._base + self._pos

    def _remaining(self) -> int | None:
        return None if self._size is None else self._size - self.offset

    def _fill(self, need: int) -> bool:
        """Make ``need`` bytes available at the read position; False at end of stream."""
        buf, pos = self._buf, self._pos
        have = len(buf) - pos
        if have >= need:
            return True
        if self._eof:
            return False
        parts = [buf[pos:]]
        raw = self._raw
        while have < need:
            want = max(_CHUNK, need - have)
            chunk = raw.read(want)
            if not chunk:
                self._eof = True
                break
            parts.append(chunk)
            have += len(chunk)
            if len(chunk) < want and type(raw) is io.BytesIO:
                self._eof = True  # a short read from memory is the end: no read to confirm it
                break
        self._base += pos
        self._buf = b"".join(parts)
        self._pos = 0
        return have >= need

    def _read(self, n: int) -> bytes:
        p = self._pos
        e = p + n
        if e <= len(self._buf):
            self._pos = e
            return self._buf[p:e]
        remaining = self._remaining()
        if remaining is not None and n > remaining:
            raise PickleSyntaxError(
                f"pickle data was truncated: {n} bytes wanted, {max(remaining, 0)} left",
                "truncated",
            )
        if not self._fill(n):
            raise PickleSyntaxError(f"pickle data was truncated: {n} bytes wanted", "truncated")
        p = self._pos
        self._pos = p + n
        return self._buf[p : p + n]

    def _skip(self, n: int) -> None:
        remaining = self._remaining()
        if remaining is not None and n > remaining:
            raise PickleSyntaxError(
                f"pickle data was truncated: {n} bytes wanted, {max(remaining, 0)} left",
                "truncated",
            )
        avail = len(self._buf) - self._pos
        if n <= avail:
            self._pos += n
            return
        n -= avail
        self._base += len(self._buf)
        self._buf = b""
        self._pos = 0
        if remaining is not None and isinstance(self._raw, _SEEKABLE):
            self._raw.seek(n, io.SEEK_CUR)  # a local file or buffer: no need to read through
            self._base += n
            return
        chunks = 0
        while n > 0:
            chunk = self._raw.read(min(n, _SKIP_CHUNK))
            if not chunk:
                self._eof = True
                raise PickleSyntaxError("pickle data was truncated while skipping", "truncated")
            n -= len(chunk)
            self._base += len(chunk)
            chunks += 1
            if chunks % 64 == 0:
                self._tick()

    def _pushback(self, data: bytes) -> None:
        self._buf = data + self._buf[self._pos :]
        self._base = self.offset - len(data)
        self._pos = 0

    def _readline(self) -> bytes:
        """One line with its newline; at end of stream the rest without one (as pickle.py)."""
        buf, p = self._buf, self._pos
        i = buf.find(b"\n", p)
        if 0 <= i <= p + MAX_LINE:
            self._pos = i + 1
            return buf[p : i + 1]
        searched = len(buf) - p
        while True:
            if searched > MAX_LINE:
                raise PickleSyntaxError(f"text opcode argument longer than {MAX_LINE} bytes")
            if not self._fill(searched + 1):
                line = self._buf[self._pos :]
                self._pos = len(self._buf)
                if not line:
                    raise PickleSyntaxError("pickle data was truncated", "truncated")
                return line
            i = self._buf.find(b"\n", self._pos + searched)
            if i >= 0:
                line = self._buf[self._pos : i + 1]
                if len(line) > MAX_LINE + 1:
                    raise PickleSyntaxError(f"text opcode argument longer than {MAX_LINE} bytes")
                self._pos = i + 1
                return line
            searched = len(self._buf) - self._pos

    def _readline_value(self) -> bytes | Blob:
        """A data line (STRING/UNICODE): whole up to KEEP_BYTES, else skipped to a Blob."""
        buf, p = self._buf, self._pos
        i = buf.find(b"\n", p, p + KEEP_BYTES + 1)
        if i < 0:
            self._fill(KEEP_BYTES + 1)
            buf, p = self._buf, self._pos
            i = buf.find(b"\n", p, p + KEEP_BYTES + 1)
        if i >= 0:
            self._pos = i + 1
            return buf[p : i + 1]
        if len(buf) - p <= KEEP_BYTES:  # last line, no newline before the end of the stream
            self._pos = len(buf)
            if p == len(buf):
                raise PickleSyntaxError("pickle data was truncated", "truncated")
            return buf[p:]
        head = buf[p : p + BLOB_HEAD]
        length = 0
        chunks = 0
        while True:
            buf, p = self._buf, self._pos
            i = buf.find(b"\n", p)
            if i >= 0:
                self._pos = i + 1
                return Blob("line", length + i + 1 - p, head)
            length += len(buf) - p
            self._pos = len(buf)
            if not self._fill(1):
                raise PickleSyntaxError("pickle data was truncated in a text line", "truncated")
            chunks += 1
            if chunks % 64 == 0:
                self._tick()

    def _check_nested(self, data: bytes) -> None:
        if len(data) >= 12 and data[0] in b"\x80(cP\x93" and self._nested_hook is not None:
            kind = _nested_candidate(data)
            if kind is not None:
                self._nested_hook(self._op_offset, data, kind)

    def _read_value(self, n: int, kind: str) -> bytes | Blob:
        """The ``n`` data bytes of a counted opcode: whole when short, else a Blob."""
        if n <= KEEP_BYTES:
            data = self._read(n)
            self._check_nested(data)
            return data
        remaining = self._remaining()
        if remaining is not None and n > remaining:
            raise PickleSyntaxError(
                f"pickle data was truncated: {n} bytes wanted, {max(remaining, 0)} left",
                "truncated",
            )
        head = self._read(BLOB_HEAD)
        nk = nested_kind(head)
        if nk is not None and self._nested_hook is not None and n <= self._max_nested:
            data = head + self._read(n - BLOB_HEAD)
            if nk == "pickle":
                nk = _nested_candidate(data)
            scanned = nk is not None and self._nested_hook(self._op_offset, data, nk)
            return Blob(kind, n, head, scanned)
        self._skip(n - BLOB_HEAD)
        return Blob(kind, n, head)

    # --- running --------------------------------------------------------------------------

    def at_end(self) -> bool:
        """Whether the stream has no more bytes."""
        return self._pos >= len(self._buf) and not self._fill(1)

    def run(self, index: int = 0) -> PickleTrace:
        """Simulate one pickle from the current position up to its ``STOP`` or first error.

        The memo carries over from the previous pickle of this machine (a lenient superset of
        what a fresh unpickler would accept); stack, marks and protocol start afresh, as in
        ``load()``.
        """
        self._index = index
        self._stack = []
        self._marks = []
        self._fence = 0
        self._proto = 0
        self._max_proto = 0
        self._frame_end = -1
        self._code_offset = -1
        self._result = None
        self._globals = []
        self._calls = []
        self._anomalies = []
        start = self.offset
        ops_before = self._ops_total
        error: Anomaly | None = None
        stopped = False
        interrupted: BaseException | None = None
        try:
            self._loop()
        except _Stop:
            stopped = True
        except PickleSyntaxError as exc:
            error = Anomaly(exc.kind, str(exc), self._op_offset)
        except _LimitReached as exc:
            error = Anomaly("limit", str(exc), self._op_offset)
        except _Interrupted as exc:
            error = Anomaly("limit", str(exc), self._op_offset)
            interrupted = exc.cause
        except (TypeError, ValueError, OverflowError, struct.error, RecursionError) as exc:
            # TypeError: unhashable key or set item (CPython fails the same way);
            # ValueError/OverflowError: number conversions.
            error = Anomaly("error", f"{type(exc).__name__}: {exc}"[:200], self._op_offset)
        if stopped and self._frame_end > self.offset:
            self._anomaly(
                "frame",
                f"pickle stops {self._frame_end - self.offset} bytes before the end of its "
                "frame; the C and Python unpicklers resume at different offsets",
            )
        # A frozen dataclass's __init__ sets fields one object.__setattr__ at a time; one is made
        # per pickle (and per member probed), so fill the instance dict at once. Same object.
        trace: PickleTrace = object.__new__(PickleTrace)
        trace.__dict__.update(
            index=index,
            start=start,
            end=self.offset,
            stopped=stopped,
            protocol=self._max_proto,
            ops=self._ops_total - ops_before,
            result=self._result if stopped else None,
            globals=tuple(self._globals),
            calls=tuple(self._calls),
            anomalies=tuple(self._anomalies),
            error=error,
            code_offset=self._code_offset,
            interrupted=interrupted,
        )
        return trace

    def _loop(self) -> None:
        """Execute opcodes until ``STOP`` (raises :class:`_Stop`) or an error.

        The most frequent opcodes run inline on local copies of the read position, buffer,
        stack and memo; every other opcode, and every inline case that could fail or needs more
        bytes than the buffer holds, goes through the handler table with the position written
        back first. Local state is reloaded after each handler (it may refill the buffer).
        """
        table = _HANDLERS
        not_nested = _NOT_NESTED
        keep = KEEP_BYTES
        u32 = _U32
        missing = _MISSING
        ops = self._ops_total
        check_every = _CHECK_EVERY
        stack = self._stack
        memo = self._memo
        marks = self._marks
        buf = self._buf
        n = len(buf)
        pos = self._pos
        base = self._base
        at = self._op_offset
        try:
            while True:
                ops += 1
                if not ops & check_every:
                    self._pos = pos
                    self._op_offset = at  # the limits report the opcode last executed
                    self._ops_total = ops
                    self._periodic()
                if pos >= n:
                    self._pos = pos
                    if not self._fill(1):
                        self._op_offset = self.offset
                        raise PickleSyntaxError("ran out of input before STOP", "truncated")
                    buf = self._buf
                    n = len(buf)
                    pos = self._pos
                    base = self._base
                at = base + pos
                c = buf[pos]
                pos += 1
                # Inline fast paths, most frequent first; each either finishes the opcode and
                # continues, or falls through to the handler (which also reports errors).
                if c == 0x71:  # BINPUT
                    if pos < n and len(stack) > self._fence:
                        memo[buf[pos]] = stack[-1]
                        pos += 1
                        continue
                elif c == 0x94:  # MEMOIZE
                    if len(stack) > self._fence:
                        memo[len(memo)] = stack[-1]
                        continue
                elif c == 0x4B:  # BININT1
                    if pos < n:
                        stack.append(buf[pos])
                        pos += 1
                        continue
                elif c == 0x68:  # BINGET
                    if pos < n:
                        value = memo.get(buf[pos], missing)
                        if value is not missing:
                            stack.append(value)
                            pos += 1
                            continue
                elif c == 0x8C:  # SHORT_BINUNICODE
                    if pos < n:
                        e = pos + 1 + buf[pos]
                        if e <= n and (e - pos < 13 or buf[pos + 1] not in not_nested):
                            try:
                                text = buf[pos + 1 : e].decode("utf-8", "surrogatepass")
                            except UnicodeDecodeError:
                                pass  # fall through to the general handler, which reports it
                            else:
                                stack.append(text)
                                pos = e
                                continue
                elif c == 0x28:  # MARK
                    k = len(stack)
                    marks.append(k)
                    self._fence = k
                    continue
                elif c == 0x52:  # REDUCE
                    if len(stack) - 2 >= self._fence:
                        self._op_offset = at
                        args = stack.pop()
                        stack[-1] = self._call(stack[-1], args, None, "REDUCE")
                        continue
                elif c == 0x74:  # TUPLE
                    if marks:
                        i = marks.pop()
                        self._fence = marks[-1] if marks else 0
                        items = tuple(stack[i:])
                        del stack[i:]
                        stack.append(items)
                        continue
                elif c == 0x58:  # BINUNICODE
                    if pos + 4 <= n:
                        k = u32(buf, pos)[0]
                        e = pos + 4 + k
                        if e <= n and k <= keep and (k < 12 or buf[pos + 4] not in not_nested):
                            try:
                                text = buf[pos + 4 : e].decode("utf-8", "surrogatepass")
                            except UnicodeDecodeError:
                                pass  # fall through to the general handler, which reports it
                            else:
                                stack.append(text)
                                pos = e
                                continue
                elif c == 0x85:  # TUPLE1
                    if len(stack) - 1 >= self._fence:
                        stack[-1] = (stack[-1],)
                        continue
                elif c == 0x89:  # NEWFALSE
                    stack.append(False)
                    continue
                elif c == 0x4E:  # NONE
                    stack.append(None)
                    continue
                elif c == 0x29:  # EMPTY_TUPLE
                    stack.append(())
                    continue
                elif c == 0x7D:  # EMPTY_DICT
                    stack.append({})
                    continue
                elif c == 0x86 and len(stack) - 2 >= self._fence:  # TUPLE2
                    b = stack.pop()
                    stack[-1] = (stack[-1], b)
                    continue
                self._pos = pos
                self._op_offset = at
                table[c](self)
                pos = self._pos
                base = self._base
                if self._buf is not buf:
                    buf = self._buf
                    n = len(buf)
        finally:
            self._ops_total = ops

    def _periodic(self) -> None:
        if self._ops_total > self._max_ops:
            raise _LimitReached(
                f"more than {self._max_ops} pickle opcodes (max_pickle_ops); rest not analysed"
            )
        if len(self._stack) + len(self._memo) + len(self._marks) > self._max_memo:
            raise _LimitReached(
                f"stack and memo hold more than {self._max_memo} entries (max_pickle_memo); "
                "rest not analysed"
            )
        self._tick()

    def _tick(self) -> None:
        if self._check_time is not None:
            try:
                self._check_time()
            except Exception as exc:  # handed back to the caller
                raise _Interrupted(exc) from exc

    # --- primitives -----------------------------------------------------------------------

    def _anomaly(self, kind: str, message: str) -> None:
        self._anomalies.append(Anomaly(kind, message, self._op_offset))

    def _underflow(self) -> None:
        raise PickleSyntaxError(
            "unexpected MARK found" if self._marks else "unpickling stack underflow", "stack"
        )

    def _pop(self) -> Any:
        st = self._stack
        if len(st) <= self._fence:
            self._underflow()
        return st.pop()

    def _marker(self) -> int:
        marks = self._marks
        if not marks:
            raise PickleSyntaxError("could not find MARK", "stack")
        mark = marks.pop()
        self._fence = marks[-1] if marks else 0
        return mark

    def _code(self) -> None:
        if self._code_offset < 0:
            self._code_offset = self._op_offset

    def _global(self, module: str, name: str, opcode: str) -> Global:
        self._code()
        g = Global(module, name, opcode, self._op_offset, self._proto, self._index)
        self._globals.append(g)
        return g

    def _call(self, func: Any, args: Any, kwargs: Any, opcode: str) -> Call:
        if self._code_offset < 0:
            self._code_offset = self._op_offset
        c = Call(func, args, kwargs, opcode, self._op_offset, self._index)
        self._calls.append(c)
        return c

    def _text(self, data: bytes | Blob, encoding: str) -> Any:
        if isinstance(data, Blob):
            return Blob("str", data.length, data.head, data.scanned)
        if encoding == "utf-8":
            try:
                text = data.decode("utf-8", "surrogatepass")
            except UnicodeDecodeError as exc:
                raise PickleSyntaxError(f"invalid UTF-8 in string: {exc}") from None
        else:  # Python 2 str: ASCII by default, latin-1 for loaders that ask for it
            try:
                text = data.decode("ascii")
            except UnicodeDecodeError:
                text = data.decode("latin-1")
        if len(text) >= 12 and text[0] in "\x80(cP\x93" and self._nested_hook is not None:
            try:
                raw = text.encode("latin-1")
            except UnicodeEncodeError:
                return text
            if raw != data:  # protocol 2 keeps bytes as latin-1 str: check that form too
                self._check_nested(raw)
        return text

    # --- opcodes: stack and marks ---------------------------------------------------------

    def _op_invalid(self) -> None:
        code = self._buf[self._pos - 1 : self._pos]
        raise PickleSyntaxError(f"invalid load key {code!r}", "opcode")

    def _op_mark(self) -> None:
        n = len(self._stack)
        self._marks.append(n)
        self._fence = n

    def _op_stop(self) -> None:
        self._result = self._pop()
        raise _Stop

    def _op_pop(self) -> None:
        st = self._stack
        n = len(st)
        marks = self._marks
        if marks and marks[-1] == n:
            marks.pop()
            self._fence = marks[-1] if marks else 0
        elif n <= self._fence:
            self._underflow()
        else:
            st.pop()

    def _op_pop_mark(self) -> None:
        del self._stack[self._marker() :]

    def _op_dup(self) -> None:
        st = self._stack
        if len(st) <= self._fence:
            self._underflow()
        st.append(st[-1])

    # --- opcodes: numbers -----------------------------------------------------------------

    def _op_none(self) -> None:
        self._stack.append(None)

    def _op_empty_tuple(self) -> None:
        self._stack.append(())

    def _op_newtrue(self) -> None:
        self._stack.append(True)

    def _op_newfalse(self) -> None:
        self._stack.append(False)

    def _op_int(self) -> None:
        line = self._readline()
        if len(line) < 2:
            raise PickleSyntaxError("pickle data was truncated (empty INT)", "truncated")
        value = _parse_int(_c_text(line), 0)
        self._stack.append(bool(value) if len(line) == 3 and value in (0, 1) else value)

    _op_binint = _push_fixed(4, _I32)
    _op_binint2 = _push_fixed(2, _U16)
    _op_binfloat = _push_fixed(8, _F64)

    def _op_binint1(self) -> None:
        p = self._pos
        if p < len(self._buf):
            self._pos = p + 1
            self._stack.append(self._buf[p])
        else:
            self._stack.append(self._read(1)[0])

    def _op_long(self) -> None:
        line = self._readline()
        if len(line) < 2:
            raise PickleSyntaxError("pickle data was truncated (empty LONG)", "truncated")
        body = line[:-1]
        if body.endswith(b"L"):
            body = body[:-1]
        nul = body.find(b"\0")
        self._stack.append(_parse_int(body if nul < 0 else body[:nul], 0))

    def _counted_long(self, size: int) -> None:
        n = int.from_bytes(self._read(size), "little", signed=size == 4)
        if n < 0:
            raise PickleSyntaxError("LONG pickle has negative byte count")
        if n == 0:
            self._stack.append(0)
            return
        data = self._read_value(n, "int")
        if isinstance(data, Blob):
            self._stack.append(data)
        else:
            self._stack.append(int.from_bytes(data, "little", signed=True))

    def _op_long1(self) -> None:
        self._counted_long(1)

    def _op_long4(self) -> None:
        self._counted_long(4)

    def _op_float(self) -> None:
        line = self._readline()
        if len(line) < 2:
            raise PickleSyntaxError("pickle data was truncated (empty FLOAT)", "truncated")
        try:
            self._stack.append(float(_c_text(line)))
        except ValueError:
            raise PickleSyntaxError("could not convert string to float") from None

    # --- opcodes: strings and bytes -------------------------------------------------------

    def _op_string(self) -> None:
        line = self._readline_value()
        if isinstance(line, Blob):
            self._stack.append(Blob("str", line.length, line.head))
            return
        body = line[:-1]
        if len(body) < 2 or body[0] != body[-1] or body[0] not in b"'\"":
            raise PickleSyntaxError("the STRING opcode argument must be quoted")
        body = body[1:-1]
        if b"\\" in body:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                try:
                    body = escape_decode(body)[0]
                except ValueError as exc:
                    raise PickleSyntaxError(f"bad STRING escape: {exc}") from None
        self._check_nested(body)
        self._stack.append(self._text(body, "ascii"))

    def _counted_size(self, nbytes: int) -> int:
        n = int.from_bytes(self._read(nbytes), "little")
        if n > _SSIZE_MAX:
            raise PickleSyntaxError("length exceeds the system's maximum size")
        return n

    def _op_binstring(self) -> None:
        self._stack.append(self._text(self._read_value(self._counted_size(4), "str"), "ascii"))

    def _op_short_binstring(self) -> None:
        self._stack.append(self._text(self._read_value(self._read(1)[0], "str"), "ascii"))

    def _op_unicode(self) -> None:
        line = self._readline_value()
        if isinstance(line, Blob):
            self._stack.append(Blob("str", line.length, line.head))
            return
        try:
            text = line[:-1].decode("raw_unicode_escape")
        except UnicodeDecodeError as exc:
            raise PickleSyntaxError(f"bad UNICODE escape: {exc}") from None
        self._stack.append(text)

    def _op_binunicode(self) -> None:
        buf, p = self._buf, self._pos
        if p + 4 <= len(buf):
            n = _U32(buf, p)[0]
            e = p + 4 + n
            if e <= len(buf) and n <= KEEP_BYTES and (n < 12 or buf[p + 4] not in _NOT_NESTED):
                self._pos = e
                try:
                    self._stack.append(buf[p + 4 : e].decode("utf-8", "surrogatepass"))
                except UnicodeDecodeError as exc:
                    raise PickleSyntaxError(f"invalid UTF-8 in string: {exc}") from None
                return
        self._stack.append(self._text(self._read_value(self._counted_size(4), "str"), "utf-8"))

    def _op_short_binunicode(self) -> None:
        buf, p = self._buf, self._pos
        if p < len(buf):
            e = p + 1 + buf[p]
            if e <= len(buf) and (e - p < 13 or buf[p + 1] not in _NOT_NESTED):
                self._pos = e
                try:
                    self._stack.append(buf[p + 1 : e].decode("utf-8", "surrogatepass"))
                except UnicodeDecodeError as exc:
                    raise PickleSyntaxError(f"invalid UTF-8 in string: {exc}") from None
                return
        self._stack.append(self._text(self._read_value(self._read(1)[0], "str"), "utf-8"))

    def _op_binunicode8(self) -> None:
        self._stack.append(self._text(self._read_value(self._counted_size(8), "str"), "utf-8"))

    def _op_binbytes(self) -> None:
        self._stack.append(self._read_value(self._counted_size(4), "bytes"))

    def _op_short_binbytes(self) -> None:
        buf, p = self._buf, self._pos
        if p < len(buf):
            e = p + 1 + buf[p]
            if e <= len(buf) and (e - p < 13 or buf[p + 1] not in _NOT_NESTED):
                self._pos = e
                self._stack.append(buf[p + 1 : e])
                return
        self._stack.append(self._read_value(self._read(1)[0], "bytes"))

    def _op_binbytes8(self) -> None:
        self._stack.append(self._read_value(self._counted_size(8), "bytes"))

    def _op_bytearray8(self) -> None:
        data = self._read_value(self._counted_size(8), "bytearray")
        self._stack.append(data if isinstance(data, Blob) else bytearray(data))

    def _op_next_buffer(self) -> None:
        self._anomaly(
            "buffer",
            "NEXT_BUFFER: the pickle expects out-of-band buffers from its loader",
        )
        self._stack.append(OutOfBandBuffer(self._op_offset))

    def _op_readonly_buffer(self) -> None:
        if len(self._stack) <= self._fence:
            self._underflow()

    # --- opcodes: containers --------------------------------------------------------------

    def _op_tuple1(self) -> None:
        st = self._stack
        if len(st) - 1 < self._fence:
            self._underflow()
        st.append((st.pop(),))

    def _op_tuple3(self) -> None:
        st = self._stack
        if len(st) - 3 < self._fence:
            self._underflow()
        c = st.pop()
        b = st.pop()
        st[-1] = (st[-1], b, c)

    def _op_tuple2(self) -> None:
        st = self._stack
        if len(st) - 2 < self._fence:
            self._underflow()
        b = st.pop()
        st[-1] = (st[-1], b)

    def _op_tuple(self) -> None:
        i = self._marker()
        st = self._stack
        items = tuple(st[i:])
        del st[i:]
        st.append(items)

    def _op_empty_list(self) -> None:
        self._stack.append([])

    def _op_list(self) -> None:
        i = self._marker()
        st = self._stack
        items = st[i:]
        del st[i:]
        st.append(items[:CONTAINER_CAP])

    def _op_empty_dict(self) -> None:
        self._stack.append({})

    def _op_dict(self) -> None:
        i = self._marker()
        st = self._stack
        if (len(st) - i) % 2:
            raise PickleSyntaxError("odd number of items for DICT")
        d: dict[Any, Any] = {}
        for k in range(i, len(st), 2):
            d[st[k]] = st[k + 1]
        del st[i:]
        st.append(d)

    def _op_empty_set(self) -> None:
        self._stack.append(set())

    def _op_frozenset(self) -> None:
        i = self._marker()
        st = self._stack
        items = frozenset(st[i:])
        del st[i:]
        st.append(items)

    def _op_append(self) -> None:
        if len(self._stack) - 1 <= self._fence:
            self._underflow()
        self._add_items(len(self._stack) - 1, "APPEND", list)

    def _op_appends(self) -> None:
        self._add_items(self._marker(), "APPENDS", list)

    def _op_setitem(self) -> None:
        self._add_items(len(self._stack) - 2, "SETITEM", dict)

    def _op_setitems(self) -> None:
        self._add_items(self._marker(), "SETITEMS", dict)

    def _op_additems(self) -> None:
        self._add_items(self._marker(), "ADDITEMS", set)

    def _add_items(self, x: int, opcode: str, fills: type) -> None:
        """Hand the items from stack index ``x`` up to the object below them (APPEND(S),
        SETITEM(S), ADDITEMS): if it is the builtin container ``fills`` it keeps them, up to
        :data:`CONTAINER_CAP`; on an imported or called object the method call is recorded."""
        st = self._stack
        n = len(st)
        if x > n or x <= self._fence:
            self._underflow()
        if n == x:
            return
        if fills is dict and (n - x) % 2:
            raise PickleSyntaxError("odd number of items for SETITEMS")
        target = st[x - 1]
        if type(target) is not fills:
            if isinstance(target, Global | Call | PersistentRef):
                self._call(target, tuple(st[x:]), None, opcode)
        elif type(target) is dict:
            full = len(target) >= CONTAINER_CAP
            for k in range(x, n, 2):
                key = st[k]
                if not full or (type(key) is str and key.startswith("_")) or key in target:
                    target[key] = st[k + 1]
                else:
                    hash(key)  # CPython still fails on unhashable keys
        elif type(target) is list:
            room = CONTAINER_CAP - len(target)
            if room > 0:
                target.extend(st[x : x + room])
        elif type(target) is set:
            if len(target) < CONTAINER_CAP:
                target.update(st[x:])
            else:
                for item in st[x:]:
                    hash(item)
        del st[x:]

    # --- opcodes: memo --------------------------------------------------------------------

    def _memo_get(self, idx: int) -> None:
        try:
            self._stack.append(self._memo[idx])
        except KeyError:
            raise PickleSyntaxError(f"memo value not found at index {idx}", "memo") from None

    def _op_get(self) -> None:
        line = self._readline()
        if len(line) < 2:
            raise PickleSyntaxError("pickle data was truncated (empty GET)", "truncated")
        self._memo_get(_parse_int(_c_text(line), 10))

    def _op_binget(self) -> None:
        p = self._pos
        if p < len(self._buf):
            self._pos = p + 1
            idx = self._buf[p]
        else:
            idx = self._read(1)[0]
        try:
            self._stack.append(self._memo[idx])
        except KeyError:
            raise PickleSyntaxError(f"memo value not found at index {idx}", "memo") from None

    def _op_long_binget(self) -> None:
        p = self._pos
        if p + 4 <= len(self._buf):
            self._pos = p + 4
            idx = _U32(self._buf, p)[0]
        else:
            idx = _U32(self._read(4))[0]
        self._memo_get(idx)

    def _memo_put(self, idx: int) -> None:
        st = self._stack
        if len(st) <= self._fence:
            self._underflow()
        self._memo[idx] = st[-1]

    def _op_put(self) -> None:
        line = self._readline()
        if len(line) < 2:
            raise PickleSyntaxError("pickle data was truncated (empty PUT)", "truncated")
        if len(self._stack) <= self._fence:
            self._underflow()
        idx = _parse_int(_c_text(line), 10)
        if idx < 0:
            raise PickleSyntaxError("negative PUT argument", "memo")
        self._memo_put(idx)

    def _op_binput(self) -> None:
        p = self._pos
        if p < len(self._buf):
            self._pos = p + 1
            idx = self._buf[p]
        else:
            idx = self._read(1)[0]
        st = self._stack
        if len(st) <= self._fence:
            self._underflow()
        self._memo[idx] = st[-1]

    def _op_long_binput(self) -> None:
        p = self._pos
        if p + 4 <= len(self._buf):
            self._pos = p + 4
            idx = _U32(self._buf, p)[0]
        else:
            idx = _U32(self._read(4))[0]
        st = self._stack
        if len(st) <= self._fence:
            self._underflow()
        self._memo[idx] = st[-1]

    def _op_memoize(self) -> None:
        st = self._stack
        if len(st) <= self._fence:
            self._underflow()
        memo = self._memo
        memo[len(memo)] = st[-1]

    # --- opcodes: globals and calls -------------------------------------------------------

    def _name_line(self, encoding: str) -> str:
        line = self._readline()
        if len(line) < 2:
            raise PickleSyntaxError("pickle data was truncated (empty name line)", "truncated")
        try:
            return line[:-1].decode(encoding)
        except UnicodeDecodeError:
            raise PickleSyntaxError(f"global name is not {encoding}: {line[:40]!r}") from None

    def _module_and_name(self, encoding: str, opcode: str) -> Global:
        module = self._name_line(encoding)
        try:
            name = self._name_line(encoding)
        except PickleSyntaxError:
            # pickle.py imports the module before it fails on the name: keep the import
            self._global(module, "", opcode)
            raise
        return self._global(module, name, opcode)

    def _op_global(self) -> None:
        self._stack.append(self._module_and_name("utf-8", "GLOBAL"))

    def _op_stack_global(self) -> None:
        name = self._pop()
        module = self._pop()
        if type(name) is not str or type(module) is not str:
            raise PickleSyntaxError("STACK_GLOBAL requires str")
        self._stack.append(self._global(module, name, "STACK_GLOBAL"))

    def _op_inst(self) -> None:
        marks_ok = bool(self._marks)
        cls = self._module_and_name("ascii", "INST")  # pickle.py imports before popping the mark
        if not marks_ok:
            raise PickleSyntaxError("could not find MARK", "stack")
        i = self._marker()
        st = self._stack
        args = tuple(st[i:])
        del st[i:]
        st.append(self._call(cls, args, None, "INST"))

    def _op_obj(self) -> None:
        i = self._marker()
        st = self._stack
        if len(st) - i < 1:
            self._underflow()
        args = tuple(st[i + 1 :])
        del st[i + 1 :]
        cls = self._pop()
        st.append(self._call(cls, args, None, "OBJ"))

    def _op_reduce(self) -> None:
        st = self._stack
        if len(st) - 2 < self._fence:
            self._underflow()
        args = st.pop()
        st[-1] = self._call(st[-1], args, None, "REDUCE")

    def _op_newobj(self) -> None:
        args = self._pop()
        cls = self._pop()
        self._stack.append(self._call(cls, args, None, "NEWOBJ"))

    def _op_newobj_ex(self) -> None:
        kwargs = self._pop()
        args = self._pop()
        cls = self._pop()
        self._stack.append(self._call(cls, args, kwargs, "NEWOBJ_EX"))

    def _extension(self, nbytes: int) -> None:
        code = int.from_bytes(self._read(nbytes), "little", signed=nbytes == 4)
        if code <= 0:
            raise PickleSyntaxError("EXT specifies code <= 0")
        opcode = {1: "EXT1", 2: "EXT2", 4: "EXT4"}[nbytes]
        self._stack.append(self._global("copyreg._extension_registry", str(code), opcode))

    def _op_ext1(self) -> None:
        self._extension(1)

    def _op_ext2(self) -> None:
        self._extension(2)

    def _op_ext4(self) -> None:
        self._extension(4)

    def _op_persid(self) -> None:
        line = self._readline()
        try:
            pid = line[:-1].decode("ascii")
        except UnicodeDecodeError:
            raise PickleSyntaxError("persistent IDs in protocol 0 must be ASCII strings") from None
        call = self._call(None, (pid,), None, "PERSID")
        self._stack.append(PersistentRef(pid, call.offset))

    def _op_binpersid(self) -> None:
        pid = self._pop()
        call = self._call(None, (pid,), None, "BINPERSID")
        self._stack.append(PersistentRef(pid, call.offset))

    def _op_build(self) -> None:
        st = self._stack
        if len(st) - 2 < self._fence:
            self._underflow()
        state = st.pop()
        inst = st[-1]
        self._call(inst, (state,), None, "BUILD")
        if type(inst) is Call:
            inst.state = state
            cls = created_class(inst)
            if (
                type(cls) is Global
                and cls.name == "NumpyArrayWrapper"
                and cls.path in JOBLIB_WRAPPERS
            ):
                self._joblib_array(inst, cls)

    # --- opcodes: protocol and framing ----------------------------------------------------

    def _op_proto(self) -> None:
        proto = self._read(1)[0]
        if proto > 5:
            raise PickleSyntaxError(f"unsupported pickle protocol: {proto}")
        self._proto = proto
        self._max_proto = max(self._max_proto, proto)

    def _op_frame(self) -> None:
        n = int.from_bytes(self._read(8), "little")
        if n > _SSIZE_MAX:
            raise PickleSyntaxError("FRAME length exceeds the system's maximum")
        if self._frame_end > self._op_offset:
            self._anomaly(
                "frame",
                "FRAME starts before the previous frame ends (pickle.py refuses, C accepts)",
            )
        remaining = self._remaining()
        if remaining is not None and n > remaining:
            self._anomaly("frame", f"FRAME announces {n} bytes but only {remaining} are left")
        self._frame_end = self.offset + n

    # --- joblib ---------------------------------------------------------------------------

    def _joblib_array(self, inst: Call, cls: Global) -> None:
        """Skip (or scan) the array data joblib writes right after a NumpyArrayWrapper."""
        attrs: dict[str, Any] = {}
        args = inst.args if isinstance(inst.args, tuple | list) else ()
        if inst.func is cls and (inst.opcode == "REDUCE" or args):  # __init__ runs
            names = ("subclass", "shape", "order", "dtype", "allow_mmap")
            attrs.update(zip(names, args, strict=False))
            attrs["numpy_array_alignment_bytes"] = args[5] if len(args) > 5 else 16
        state = inst.state
        slots = None
        if type(state) is tuple and len(state) == 2:
            state, slots = state
        for part in (state, slots):
            if type(part) is dict:
                attrs.update((k, v) for k, v in part.items() if type(k) is str)
        shape = attrs.get("shape")
        info = _dtype_info(attrs.get("dtype"))
        if (
            type(shape) is not tuple
            or not all(type(d) is int and d >= 0 for d in shape)
            or info is None
        ):
            raise PickleSyntaxError(
                "joblib NumpyArrayWrapper without a readable shape and dtype: the size of the "
                "raw array data that follows cannot be known, so the rest of the stream "
                "cannot be analysed",
                "joblib",
            )
        itemsize, hasobject = info
        pending = b""
        if self._frame_end > self.offset:
            pending = self._read(self._frame_end - self.offset)
            self._anomaly(
                "frame",
                "joblib array data announced inside a frame: pickle.py reads it after the "
                "frame ends, the C unpickler right here",
            )
            self._frame_end = -1
        if hasobject:
            self._inline_pickle()
        else:
            count = 1
            for d in shape:
                count *= d
            if attrs.get("numpy_array_alignment_bytes") is not None:
                pad = self._read(1)[0]
                if pad:
                    self._skip(pad)
            self._skip(count * itemsize)
        if pending:
            self._pushback(pending)

    def _inline_pickle(self) -> None:
        """Run the nested pickle joblib writes for object arrays (own stack, same stream)."""
        saved = (self._stack, self._marks, self._fence, self._proto, self._frame_end, self._memo)
        self._stack, self._marks, self._fence, self._frame_end, self._memo = [], [], 0, -1, {}
        with contextlib.suppress(_Stop):
            self._loop()
        self._stack, self._marks, self._fence, self._proto, self._frame_end, self._memo = saved


_HANDLERS: Final[list[Callable[[PickleMachine], None]]] = [PickleMachine._op_invalid] * 256
"""Opcode byte to its handler (unbound), built once for every machine."""
for _code, _name in OPCODE_NAMES.items():
    _HANDLERS[_code] = getattr(PickleMachine, "_op_" + _name.lower())


def _dtype_info(node: Any) -> tuple[int, bool] | None:
    """(itemsize, hasobject) of a symbolic ``numpy.dtype(descr, align, copy)`` + BUILD state."""
    if not isinstance(node, Call) or not isinstance(node.func, Global):
        return None
    if node.func.path not in _DTYPE_GLOBALS or node.opcode not in ("REDUCE", "OBJ", "INST"):
        return None
    args = node.args
    if not isinstance(args, tuple) or not args or type(args[0]) is not str:
        return None
    descr = args[0]
    if not _SIMPLE_DESCR.fullmatch(descr):
        return None
    import numpy as np  # lazily: np.dtype(str) is a pure constructor

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            dt = np.dtype(descr)
    except (TypeError, ValueError):
        return None
    itemsize = int(dt.itemsize)
    hasobject = bool(dt.hasobject)
    state = node.state
    if type(state) is tuple and len(state) >= 8:
        elsize, flags = state[5], state[7]
        if dt.kind in "VSU" and type(elsize) is int and elsize > 0:
            itemsize = elsize
        if type(flags) is int and flags & 1:
            hasobject = True
    if itemsize <= 0 and not hasobject:
        return None
    return itemsize, hasobject
