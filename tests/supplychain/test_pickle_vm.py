"""The symbolic pickle machine against CPython's own unpickler, on benign pickles only.

References: the ``find_class`` calls a real ``pickle.Unpickler`` makes (every global it would
import, in order), ``pickletools.genops`` opcode counts, and the objects ``pickle.loads``
returns. Only benign data built here is ever loaded.
"""

from __future__ import annotations

import collections
import io
import pickle
import pickletools
import struct
from typing import Any

import pytest
from tests.supplychain.corpus.pickles import A

from warden.supplychain.pickles.rules import resolve
from warden.supplychain.pickles.vm import (
    KEEP_BYTES,
    Blob,
    Call,
    Global,
    PersistentRef,
    PickleMachine,
    PickleTrace,
    describe,
)


class _Recorder(pickle.Unpickler):
    """A real unpickler that records every global it looks up (benign inputs only)."""

    def __init__(self, data: bytes) -> None:
        super().__init__(io.BytesIO(data))
        self.found: list[tuple[str, str]] = []

    def find_class(self, module: str, name: str) -> Any:
        self.found.append((module, name))
        return super().find_class(module, name)

    def persistent_load(self, pid: Any) -> Any:
        return ("persistent", pid)


def run(data: bytes, **kwargs: Any) -> PickleTrace:
    return PickleMachine(io.BytesIO(data), size=len(data), **kwargs).run()


_SETS = {frozenset({1, 2}), frozenset()}


class Point:
    """A benign module-level class for the reference pickles."""

    def __init__(self, x: int, y: int) -> None:
        self.x, self.y = x, y

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Point) and (self.x, self.y) == (other.x, other.y)


BENIGN: dict[str, Any] = {
    "scalars": [0, 1, -1, 255, 256, 65535, 65536, -(2**31), 2**31, 2**64, -(2**100), 1.5, -0.0],
    "text": ["", "a", "héllo ✓", "x" * 300, "quote'\"\\\n"],
    "bytes": [b"", b"\x00\xff", b"y" * 300, bytearray(b"ba")],
    "containers": {"t": (), "t1": (1,), "t2": (1, 2), "t3": (1, 2, 3), "t4": (1, 2, 3, 4)},
    "nested": {"a": [{"b": ({"c": [1, [2, [3]]]},)}]},
    "sets": [{1, 2, 3}, frozenset({"a"}), set()],
    "bools": [True, False, None],
    "ordered": collections.OrderedDict([("z", 1), ("a", 2)]),
    "defaultdict": collections.defaultdict(list, {"k": [1]}),
    "counter": collections.Counter("abracadabra"),
    "deque": collections.deque([1, 2, 3]),
    "complex": [complex(1, -2), slice(1, 9, 2), range(3, 10)],
    "instances": [Point(1, 2), Point(3, 4)],
    "big_list": list(range(2500)),
    "big_dict": {str(i): i for i in range(1200)},
}


def _shared() -> Any:
    inner = [1, 2]
    tup = ("s", inner)
    return {"a": inner, "b": inner, "t": tup, "u": tup, "self": [inner, tup, inner]}


BENIGN["shared"] = _shared()

CASES = [
    pytest.param(name, proto, opt, id=f"{name}-p{proto}{'-opt' if opt else ''}")
    for name in BENIGN
    for proto in range(6)
    for opt in (False, True)
]


@pytest.mark.parametrize(("name", "proto", "optimize"), CASES)
def test_globals_match_find_class(name: str, proto: int, optimize: bool) -> None:
    data = pickle.dumps(BENIGN[name], protocol=proto)
    if optimize:
        data = pickletools.optimize(data)
    trace = run(data)
    assert trace.stopped and trace.error is None
    assert trace.end == len(data)
    rec = _Recorder(data)
    rec.load()
    assert [(g.module, g.name) for g in trace.globals] == rec.found
    ops = collections.Counter(op.name for op, _, _ in pickletools.genops(data))
    calls = collections.Counter(c.opcode for c in trace.calls)
    for opcode in ("REDUCE", "BUILD", "NEWOBJ", "NEWOBJ_EX", "INST", "OBJ"):
        assert calls[opcode] == ops[opcode], opcode
    assert trace.ops == sum(ops.values())


def _materialize(trace: PickleTrace) -> Any:
    """Rebuild real objects from a trace of a benign pickle (a few safe constructors)."""
    import builtins
    import codecs

    known = {
        "builtins.set": set,
        "builtins.frozenset": frozenset,
        "builtins.complex": complex,
        "builtins.bytearray": bytearray,
        "builtins.bytes": bytes,
        "builtins.slice": slice,
        "builtins.range": range,
        "builtins.list": list,
        "builtins.int": int,
        "builtins.object": builtins.object,
        "_codecs.encode": codecs.encode,
        "collections.OrderedDict": collections.OrderedDict,
        "collections.defaultdict": collections.defaultdict,
        "collections.Counter": collections.Counter,
        "collections.deque": collections.deque,
        "copyreg._reconstructor": None,
        "copyreg.__newobj__": None,
    }
    made: dict[int, Any] = {}

    def value(v: Any) -> Any:
        if isinstance(v, Global):
            if v.path.endswith(".Point"):
                return Point
            return known[resolve(v.module, v.name)]
        if isinstance(v, Call):
            return made[id(v)]
        if type(v) is tuple:
            return tuple(value(x) for x in v)
        if type(v) is list:
            return [value(x) for x in v]
        if type(v) is dict:
            return {value(k): value(x) for k, x in v.items()}
        if type(v) is set:
            return {value(x) for x in v}
        if type(v) is frozenset:
            return frozenset(value(x) for x in v)
        return v

    for c in trace.calls:
        if c.opcode in ("REDUCE", "NEWOBJ", "OBJ", "INST"):
            func = value(c.func)
            args = value(c.args)
            if func is None:  # copyreg._reconstructor(cls, object, None) / __newobj__
                made[id(c)] = object.__new__(args[0])
            elif c.opcode == "NEWOBJ":
                made[id(c)] = func.__new__(func, *args)
            else:
                made[id(c)] = func(*args)
        elif c.opcode == "BUILD":
            state = value(c.args[0])
            target = made[id(c.func)] if isinstance(c.func, Call) else None
            if isinstance(target, Point):
                target.__dict__.update(state)
            elif target is not None and state:
                target.__setstate__(state)
        elif c.opcode in ("SETITEMS", "SETITEM"):
            target = made[id(c.func)]
            items = value(c.args)
            for i in range(0, len(items), 2):
                target[items[i]] = items[i + 1]
        elif c.opcode in ("APPENDS", "APPEND"):
            made[id(c.func)].extend(value(c.args))
    result = value(trace.result)
    return result


@pytest.mark.parametrize(("name", "proto", "optimize"), CASES)
def test_result_matches_loads(name: str, proto: int, optimize: bool) -> None:
    data = pickle.dumps(BENIGN[name], protocol=proto)
    if optimize:
        data = pickletools.optimize(data)
    assert _materialize(run(data)) == pickle.loads(data)


def test_shared_references_keep_identity() -> None:
    trace = run(pickle.dumps(_shared(), protocol=4))
    result = trace.result
    assert result["a"] is result["b"]
    assert result["t"] is result["u"]
    assert result["self"][0] is result["a"]


@pytest.mark.parametrize(
    "stream",
    [
        b"K\x05p5\n\x94K\x06g1\n\x86.",  # PUT 5 then MEMOIZE stores at len(memo) == 1
        b"K\x01q\x00K\x02q\x00h\x00.",  # BINPUT overwrites
        b"(K\x010K\x02.",  # POP with a mark on top pops the mark
        b"K\x09(K\x01K\x021.",  # POP_MARK drops back to the mark
        b"\x80\x02K\x01\x80\x04K\x02\x86.",  # PROTO again mid-stream
        b"I010\nI0x1f\nI00\nI01\nL12L\n\x87\x86.",  # C's strtol: octal, hex, bools
        b"\x95\x05\x00\x00\x00\x00\x00\x00\x00K\x01K\x02\x86.",  # FRAME spans opcodes
        b"]K\x01K\x02\x86a.",  # APPEND a tuple
        b"}(K\x01K\x02K\x03K\x04u.",  # SETITEMS
        b"\x8f(K\x01K\x02\x90.",  # ADDITEMS
        b"(K\x01K\x02\x91.",  # FROZENSET
        b"(K\x01K\x02l(K\x03K\x04d\x86.",  # LIST, DICT from marks
        b"S'a\\x41\\n'\nS\"q'\"\n\x86.",  # STRING escapes and quotes
        b"Vcaf\\u00e9\n.",  # UNICODE raw-unicode-escape
        b"\x8a\x02\xff\x7f\x8b\x01\x00\x00\x00\x80\x86.",  # LONG1, LONG4
        b"F1.5\nG?\xf8\x00\x00\x00\x00\x00\x00\x86.",  # FLOAT, BINFLOAT
        b"C\x03abc\x96\x02\x00\x00\x00\x00\x00\x00\x00xy\x86.",  # SHORT_BINBYTES, BYTEARRAY8
        b"N\x88\x89\x87.",  # NONE, NEWTRUE, NEWFALSE
    ],
)
def test_data_streams_match_loads(stream: bytes) -> None:
    trace = run(stream)
    assert trace.stopped, trace.error
    assert trace.result == pickle.loads(stream)


@pytest.mark.parametrize(
    ("stream", "kind"),
    [
        (b"(0.", "stack"),  # POP removes the mark; STOP then underflows
        (b"K\x01(a.", "stack"),  # APPEND may not reach below the mark
        (b"K\x01(K\x02b.", "stack"),  # BUILD needs two items above the fence
        (b"K\x01(\x85.", "stack"),  # TUPLE1 below the fence
        (b"t.", "stack"),  # no MARK
        (b"h\x03.", "memo"),  # memo key missing
        (b"}K\x01u.", "stack"),  # SETITEMS without a mark
        (b"(K\x01K\x02K\x03d.", "error"),  # odd number of items for DICT
        (b"\x80\x06.", "error"),  # unsupported protocol
        (b"K", "truncated"),
        (b"K\x01", "truncated"),  # no STOP
        (b"\xff.", "opcode"),
        (b"S'unquoted\n.", "error"),
        (b"S'bad\\'\n.", "error"),  # escape at the end
        (b"X\x02\x00\x00\x00\xff\xfe.", "error"),  # invalid UTF-8
        (b"}]K\x01s.", "error"),  # unhashable key
        (b"\x8b\xff\xff\xff\xff.", "error"),  # negative LONG4 length
        (b"\x82\x00.", "error"),  # EXT code 0
    ],
)
def test_errors_where_cpython_errors(stream: bytes, kind: str) -> None:
    trace = run(stream)
    assert not trace.stopped
    assert trace.error is not None and trace.error.kind == kind, trace.error
    with pytest.raises(Exception):  # noqa: B017 - any unpickling error
        pickle.loads(stream)


@pytest.mark.parametrize(
    "strings",
    [
        A.u("collections") + A.u("OrderedDict"),
        A.u8("collections") + A.u8("OrderedDict"),
        A.s("collections") + A.s("OrderedDict"),
        A.binstring("collections") + A.short_binstring("OrderedDict"),
        b"Vcollections\nVOrderedDict\n",
        b"X\x0b\x00\x00\x00collections\x94" + A.u("OrderedDict") + b"\x94" + b"0h\x00h\x01",
    ],
)
def test_stack_global_from_any_string_opcode(strings: bytes) -> None:
    data = A.proto(4) + strings + b"\x93)R."
    trace = run(data)
    assert trace.stopped, trace.error
    assert [g.path for g in trace.globals] == ["collections.OrderedDict"]
    assert trace.globals[0].opcode == "STACK_GLOBAL"
    rec = _Recorder(data)
    rec.load()
    assert rec.found == [("collections", "OrderedDict")]


def test_stack_global_requires_str() -> None:
    trace = run(A.proto(4) + A.binbytes(b"os") + A.u("system") + b"\x93.")
    assert trace.error is not None and "requires str" in trace.error.message
    assert trace.globals == ()


def test_globals_record_offsets_and_call_forms() -> None:
    data = (
        b"(" + A.glob("m", "f") + b"K\x01o"  # OBJ
        b"(K\x02i"
        + b"m2\ng\n"  # INST
        + A.sglob("m3", "C")
        + b")}\x92"  # NEWOBJ_EX
        + A.sglob("m4", "D")
        + b")\x81"  # NEWOBJ
        + b"\x87."
    )
    trace = run(data)
    assert trace.stopped, trace.error
    assert [(g.path, g.opcode) for g in trace.globals] == [
        ("m.f", "GLOBAL"),
        ("m2.g", "INST"),
        ("m3.C", "STACK_GLOBAL"),
        ("m4.D", "STACK_GLOBAL"),
    ]
    assert [c.opcode for c in trace.calls] == ["OBJ", "INST", "NEWOBJ_EX", "NEWOBJ"]
    assert trace.globals[0].offset == 1
    assert data[trace.calls[0].offset : trace.calls[0].offset + 1] == b"o"
    assert trace.calls[1].args == (2,)
    assert trace.calls[2].kwargs == {}


def test_extension_codes_and_persistent_ids() -> None:
    trace = run(b"\x82\x05\x83\x00\x01\x84\x00\x00\x01\x00Pabc\n" + A.u("x") + b"Q(ttttt.")
    assert trace.error is not None  # the stack is short of items for the last TUPLEs
    assert [g.opcode for g in trace.globals] == ["EXT1", "EXT2", "EXT4"]
    assert [g.name for g in trace.globals] == ["5", "256", "65536"]
    pids = [c for c in trace.calls if c.func is None]
    assert [(c.opcode, c.args) for c in pids] == [("PERSID", ("abc",)), ("BINPERSID", ("x",))]


def test_torch_persistent_ids() -> None:
    pid = A.tup(A.u("storage"), A.sglob("torch", "FloatStorage"), A.u("0"), A.u("cpu"), b"K\x06")
    data = A.proto(2) + pid + b"Q."
    trace = run(data)
    assert trace.stopped
    assert isinstance(trace.result, PersistentRef)
    assert trace.result.pid[0] == "storage"
    assert describe(trace.calls[0]).startswith("persistent_load(")


def test_appends_and_setitems_on_objects_are_calls() -> None:
    od = A.call(A.glob("collections", "OrderedDict"))
    data = A.proto(2) + od + b"(K\x01K\x02u" + b"(K\x03e" + b"\x90."
    trace = run(data + b"")
    ops = [c.opcode for c in trace.calls]
    assert ops[:3] == ["REDUCE", "SETITEMS", "APPENDS"]
    assert trace.calls[1].func is trace.calls[0]
    assert trace.calls[1].args == (1, 2)


def test_build_records_state_on_the_instance() -> None:
    data = A.proto(2) + A.call(A.glob("m", "C")) + b"}" + A.u("k") + b"K\x01sb."
    trace = run(data)
    build = trace.calls[-1]
    assert build.opcode == "BUILD" and build.func is trace.result
    assert isinstance(trace.result, Call) and trace.result.state == {"k": 1}


def test_long_values_are_skipped_in_chunks() -> None:
    big = b"\x00" * (3 * KEEP_BYTES)

    sizes: list[int] = []

    class Probe(io.BytesIO):
        def read(self, n: int | None = -1) -> bytes:
            assert n is not None and n >= 0, "never read the whole stream"
            sizes.append(n)
            return super().read(n)

    data = A.proto(4) + A.binbytes(big) + A.u("tail") + b"\x86."
    stream = Probe(data)
    trace = PickleMachine(stream).run()
    assert trace.stopped
    value = trace.result[0]
    assert isinstance(value, Blob) and value.length == len(big) and value.head == big[:64]
    assert max(sizes) <= 1 << 20


def test_nested_hook_sees_embedded_pickles() -> None:
    inner = pickle.dumps({"x": 1}, protocol=4)
    seen: list[tuple[int, bytes, str]] = []

    def hook(offset: int, data: bytes, kind: str) -> bool:
        seen.append((offset, data, kind))
        return True

    data = A.proto(4) + A.binbytes(inner) + b"."
    trace = PickleMachine(io.BytesIO(data), nested_hook=hook).run()
    assert trace.stopped
    assert seen == [(2, inner, "pickle")]


def test_limits_stop_the_run() -> None:
    data = pickle.dumps(list(range(20000)), protocol=0)
    trace = run(data, max_ops=5000)
    assert trace.error is not None and trace.error.kind == "limit"
    data = pickle.dumps([[i] for i in range(10000)], protocol=4)
    trace = run(data, max_memo=2000)
    assert trace.error is not None and trace.error.kind == "limit"


def test_time_check_interrupts_and_is_kept() -> None:
    class Stop(Exception):
        pass

    def check() -> None:
        raise Stop("time")

    trace = run(pickle.dumps(list(range(10000)), protocol=4), check_time=check)
    assert trace.error is not None and trace.error.kind == "limit"
    assert isinstance(trace.interrupted, Stop)


def test_partial_last_line_is_read_like_pickle_py() -> None:
    # pickle.py reads a last line without newline and INST then calls: record the call
    trace = run(b"(S'x'\nios\nsystemX")
    assert [g.path for g in trace.globals] == ["os.system"]
    assert [c.opcode for c in trace.calls] == ["INST"]
    assert trace.error is not None and trace.error.kind == "truncated"


def test_frames_are_prefetch_hints_with_anomalies() -> None:
    frame = b"\x95" + struct.pack("<Q", 4)
    nested = A.proto(4) + frame + b"K\x01" + frame + b"K\x02\x86."
    trace = run(nested)
    assert trace.stopped and trace.result == (1, 2)
    assert [a.kind for a in trace.anomalies] == ["frame"]
    beyond = A.proto(4) + b"\x95" + struct.pack("<Q", 1000) + b"N."
    trace = run(beyond)
    assert trace.stopped  # C would refuse the short frame, pickle.py reads on: be lenient
    assert [a.kind for a in trace.anomalies] == ["frame", "frame"]


def test_consecutive_pickles_share_one_machine() -> None:
    data = pickle.dumps(1, protocol=2) + pickle.dumps("two", protocol=4) + b"garbage"
    machine = PickleMachine(io.BytesIO(data), size=len(data))
    first, second, third = machine.run(0), machine.run(1), machine.run(2)
    assert (first.result, second.result) == (1, "two")
    assert second.start == first.end and second.index == 1
    assert third.error is not None and not third.code_reached
    assert machine.at_end()


def test_joblib_array_data_is_skipped() -> None:
    joblib = pytest.importorskip("joblib", reason="joblib builds the reference dumps")
    np = pytest.importorskip("numpy", reason="numpy builds the reference arrays")
    obj = {
        "a": np.arange(7, dtype="i2"),
        "b": np.zeros((3, 5), dtype=[("x", "<f4"), ("y", "u1", (3,))]),
        "c": np.array(["u", "vw"]),
        "o": np.array([1, "x", None], dtype=object),
        "tail": "after the arrays",
    }
    buf = io.BytesIO()
    joblib.dump(obj, buf)
    data = buf.getvalue()
    trace = run(data)
    assert trace.stopped, trace.error
    assert trace.end == len(data)
    assert trace.result["tail"] == "after the arrays"
    wrappers = [g for g in trace.globals if g.name == "NumpyArrayWrapper"]
    assert len(wrappers) >= 1


def test_describe_is_short() -> None:
    value = (Global("os", "system", "GLOBAL", 0, 2, 0), "x" * 500, [1] * 50, {"k": b"v"})
    text = describe(value)
    assert text.startswith("(os.system, ") and len(text) < 400


@pytest.mark.parametrize(
    "stream",
    [
        b"(]ibuiltins\nlist\n.",  # INST: cls(*args)
        b"(cbuiltins\nlist\n]o.",  # OBJ
        b"(cbuiltins\nobject\no.",  # OBJ without args: cls.__new__(cls)
        b"\x80\x04cbuiltins\nlist\n)}\x92.",  # NEWOBJ_EX
        b"\x80\x02ccollections\nOrderedDict\n)\x81}b.",  # NEWOBJ + BUILD with empty state
        b"\x80\x02c__builtin__\nset\n]\x85R.",  # fix_imports spelling under protocol 2
        b"\x80\x04\x8c\x0bcollections\x8c\x0bOrderedDict\x93)R(K\x01K\x02u.",  # SETITEMS
    ],
)
def test_call_forms_match_cpython(stream: bytes) -> None:
    trace = run(stream)
    assert trace.stopped, trace.error
    rec = _Recorder(stream)
    rec.load()  # benign builtins and collections only
    assert [(g.module, g.name) for g in trace.globals] == rec.found
