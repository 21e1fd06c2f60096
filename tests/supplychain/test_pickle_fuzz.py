"""Property tests: random and mutated pickles never crash the machine or the scanner.

Random opcode streams and mutations of real pickles are only ever analysed, never loaded. The
one exception is the differential test, which feeds CPython streams built from data-only
opcodes (no GLOBAL, REDUCE, BUILD, INST, OBJ, NEWOBJ, EXT or PERSID: nothing that can import
or call) with small, consistent lengths: whenever CPython loads one, the machine must load it
too and build the same value.
"""

from __future__ import annotations

import io
import pickle
import struct
from functools import lru_cache

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from warden.assess.finding import Finding
from warden.supplychain.pickles.vm import OPCODE_NAMES, Blob, PickleMachine, PickleTrace
from warden.supplychain.scanner import ScanLimits, scan_bytes

LIMITS = ScanLimits(max_pickle_ops=20_000, max_pickle_memo=5_000, max_seconds=30)


def _fast(n: int) -> settings:
    return settings(
        max_examples=n, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None
    )


def _machine(data: bytes, **kwargs: int) -> PickleTrace:
    return PickleMachine(io.BytesIO(data), size=len(data), **kwargs).run()


_MINE = {"pickle", "pickle-probe", "joblib-zlib", "numpy"}


def _crashes(findings: tuple[Finding, ...]) -> list[str]:
    """Internal errors of this package's scanners (the dispatcher's ``scan.error``)."""
    return [f.title for f in findings if f.id == "scan.error" and f.evidence.get("format") in _MINE]


def _counted(op: bytes, fmt: str, payload: bytes) -> bytes:
    return op + struct.pack(fmt, len(payload)) + payload


_text = st.text(alphabet="abcxyz_.os\n'\"\\", max_size=12)
_small = st.binary(max_size=24)

# (opcode bytes) strategies that keep every length consistent and small
DATA_OPS = st.one_of(
    st.sampled_from(
        [
            b"(",
            b"0",
            b"1",
            b"2",
            b"N",
            b"\x88",
            b"\x89",
            b")",
            b"]",
            b"}",
            b"\x8f",
            b"a",
            b"e",
            b"s",
            b"u",
            b"t",
            b"l",
            b"d",
            b"\x85",
            b"\x86",
            b"\x87",
            b"\x90",
            b"\x91",
            b"\x94",
            b".",
            b"\x98",
        ]
    ),
    st.integers(0, 255).map(lambda n: b"K" + bytes([n])),
    st.integers(0, 65535).map(lambda n: b"M" + struct.pack("<H", n)),
    st.integers(-(2**31), 2**31 - 1).map(lambda n: b"J" + struct.pack("<i", n)),
    st.integers(0, 6).map(lambda n: b"q" + bytes([n])),
    st.integers(0, 6).map(lambda n: b"h" + bytes([n])),
    st.integers(0, 6).map(lambda n: b"g" + str(n).encode() + b"\n"),
    st.integers(0, 6).map(lambda n: b"p" + str(n).encode() + b"\n"),
    st.integers(0, 5).map(lambda n: b"\x80" + bytes([n])),
    st.integers(-(10**30), 10**30).map(lambda n: b"I" + str(n).encode() + b"\n"),
    st.integers(-(10**30), 10**30).map(lambda n: b"L" + str(n).encode() + b"L\n"),
    st.floats(allow_nan=False).map(lambda f: b"G" + struct.pack(">d", f)),
    st.floats(allow_nan=False, allow_infinity=False).map(lambda f: b"F" + repr(f).encode() + b"\n"),
    st.binary(max_size=9).map(lambda b: b"\x8a" + bytes([len(b)]) + b),
    _small.map(lambda b: _counted(b"C", "<B", b)),
    _small.map(lambda b: _counted(b"B", "<I", b)),
    _small.map(lambda b: _counted(b"\x8e", "<Q", b)),
    _small.map(lambda b: _counted(b"\x96", "<Q", b)),
    _text.map(lambda s: _counted(b"\x8c", "<B", s.encode())),
    _text.map(lambda s: _counted(b"X", "<I", s.encode())),
    _text.map(lambda s: _counted(b"\x8d", "<Q", s.encode())),
    _text.map(lambda s: _counted(b"U", "<B", s.encode())),
    _text.map(lambda s: _counted(b"T", "<I", s.encode())),
    _text.filter(lambda s: "\n" not in s).map(lambda s: b"S" + repr(s).encode() + b"\n"),
    st.integers(0, 40).map(lambda n: b"\x95" + struct.pack("<Q", n)),
)


def _cpython_loads(data: bytes) -> tuple[bool, object]:
    """CPython's verdict on a data-only stream (nothing to import or call): (loaded, value)."""
    try:
        return True, pickle.loads(data)
    except Exception as exc:  # any unpickling error means "CPython refuses this stream"
        return False, exc


@_fast(1200)
@given(st.lists(DATA_OPS, max_size=30))
def test_data_only_streams_agree_with_cpython(ops: list[bytes]) -> None:
    data = b"".join(ops) + b"."
    trace = _machine(data)
    loaded, expected = _cpython_loads(data)
    assume(loaded)  # only streams CPython accepts have a reference result to compare
    assert trace.error is None, (data, trace.error)
    assert trace.stopped
    assert repr(trace.result) == repr(expected), data


ANY_OP = st.one_of(
    DATA_OPS,
    st.sampled_from(
        [
            b"R",
            b"b",
            b"o",
            b"\x81",
            b"\x92",
            b"\x93",
            b"Q",
            b"\x97",
            b"cos\nsystem\n",
            b"c\n\n",
            b"ibuiltins\nlist\n",
            b"Ppid\n",
            b"\x82\x01",
            b"\x83\x00\x01",
            b"\x84\xff\xff\xff\xff",
            b"\xff",
            b"\x00",
            b"j\x00\x00\x00\x00",
            b"r\x01\x00\x00\x00",
            b"\x8b\x05\x00\x00\x00",
            b"X\xff\xff\xff\x7f",
            b"\x95\xff\xff\xff\xff\xff\xff\xff\x7f",
        ]
    ),
    st.binary(min_size=1, max_size=6),
)


@_fast(1200)
@given(st.lists(ANY_OP, max_size=40))
def test_random_streams_never_raise(ops: list[bytes]) -> None:
    data = b"".join(ops)
    trace = _machine(data, max_ops=LIMITS.max_pickle_ops, max_memo=LIMITS.max_pickle_memo)
    assert trace.stopped or trace.error is not None
    assert trace.ops <= LIMITS.max_pickle_ops + 4096
    assert trace.end <= len(data)
    scan = scan_bytes(data, "fuzz.pkl", LIMITS)
    assert all(f.id.startswith("scan.") for f in scan.findings)
    assert _crashes(scan.findings) == []


@lru_cache(maxsize=1)
def _seeds() -> tuple[bytes, ...]:
    import collections

    import numpy as np

    objs: list[object] = [
        {"w": [1.5, 2.5], "name": "layer", "b": b"\x00\x01", "t": (1, (2, 3))},
        collections.OrderedDict(a=np.arange(6, dtype=np.float32), b=np.float64(2.0)),
        [set(range(5)), frozenset("ab"), complex(1, 2), bytearray(b"xy"), 2**70],
    ]
    out = [pickle.dumps(o, protocol=p) for o in objs for p in (0, 2, 4, 5)]
    return tuple(out)


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(_seeds())))
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "cut", "splice", "insert", "dup"]))
        pos = draw(st.integers(0, max(len(data) - 1, 0)))
        if kind == "flip" and data:
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif kind == "cut":
            del data[pos:]
        elif kind == "splice":
            other = draw(st.sampled_from(_seeds()))
            start = draw(st.integers(0, len(other)))
            data[pos:pos] = other[start : start + draw(st.integers(0, 40))]
        elif kind == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=8))
        else:
            data[pos:pos] = data[pos : pos + draw(st.integers(1, 16))]
    return bytes(data)


@_fast(1000)
@given(mutated())
def test_mutated_pickles_never_raise(data: bytes) -> None:
    trace = _machine(data, max_ops=LIMITS.max_pickle_ops, max_memo=LIMITS.max_pickle_memo)
    assert trace.stopped or trace.error is not None
    scan = scan_bytes(data, "mutated.pkl", LIMITS)
    assert _crashes(scan.findings) == []
    for finding in scan.findings:
        assert finding.id.startswith("scan.")
        assert finding.evidence["path"].startswith("mutated.pkl")


@_fast(200)
@given(st.integers(0, 3), st.integers(1, 2000))
def test_long_values_stay_bounded(extra: int, n: int) -> None:
    size = (64 << 10) + n
    data = b"\x80\x04" + _counted(b"B", "<I", b"\x00" * size) * (extra + 1) + b"."
    trace = _machine(data)
    assert trace.stopped
    assert all(isinstance(v, Blob) for v in [trace.result])


def test_every_opcode_has_a_handler() -> None:
    machine = PickleMachine(io.BytesIO(b""))
    for code in OPCODE_NAMES:
        assert getattr(machine, "_op_" + OPCODE_NAMES[code].lower())
