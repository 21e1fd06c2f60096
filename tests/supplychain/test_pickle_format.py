"""The pickle format scanner: sniffing, probing, multi-pickle files, joblib, nesting, limits."""

from __future__ import annotations

import io
import os
import pickle
import random
import zlib
from typing import Any

import pytest
from tests.supplychain.corpus.pickles import A

from warden.assess.finding import Finding, Severity
from warden.supplychain.formats.pickle import (
    JoblibZlibFormat,
    PickleFormat,
    probe_pickle,
    scan_pickle_stream,
)
from warden.supplychain.scanner import ScanContext, ScanLimitExceeded, ScanLimits, scan_bytes

CMD = "echo x > /nonexistent/never"
PAYLOAD = A.proto(2) + A.call(A.glob("os", "system"), A.u(CMD)) + b"."


class Evil:
    """Pickles as os.system(CMD) (dumped only, never loaded)."""

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, (CMD,))


def ids(findings: tuple[Finding, ...] | list[Finding]) -> list[str]:
    return [f.id for f in findings]


def pickle_ids(findings: tuple[Finding, ...] | list[Finding]) -> list[str]:
    return [f.id for f in findings if f.id.startswith("scan.pickle.")]


def probe(data: bytes, limits: ScanLimits | None = None) -> tuple[list[Finding], ScanContext]:
    ctx = ScanContext(path="probe", limits=limits or ScanLimits())
    return list(probe_pickle(io.BytesIO(data), ctx)), ctx


def by_id(findings: tuple[Finding, ...] | list[Finding], rule: str) -> Finding:
    matches = [f for f in findings if f.id == f"scan.{rule}"]
    assert len(matches) == 1, ids(findings)
    return matches[0]


# --- sniffing and probing -----------------------------------------------------------------


@pytest.mark.parametrize("proto", [2, 3, 4, 5])
def test_sniffs_binary_protocols(proto: int) -> None:
    assert PickleFormat().sniff(pickle.dumps({"a": 1}, protocol=proto))


@pytest.mark.parametrize(
    "head",
    [pickle.dumps(1, protocol=0), pickle.dumps(1, protocol=1), b"\x80\x02\xff", b"PK\x03\x04"],
)
def test_does_not_sniff_the_rest(head: bytes) -> None:
    assert not PickleFormat().sniff(head)


TEXTS = {
    "config.json": b'{"hidden_size": 768, "layers": [1, 2], "name": "bert"}\n',
    "README.md": b"# Model card\n\nThis model (c) 2024 does things.\n",
    "vocab.txt": b"[PAD]\n[UNK]\ncat\ndog\n.\nthe\n" * 200,
    "vocab2.txt": b"cat\ndog\nfish\n.\n" * 50,
    "config.yaml": b"model:\n  name: resnet\n  layers: 50\n",
    "data.csv": b"a,b,c\n1,2,3\n4,5,6\n",
    "LICENSE": b"Permission is hereby granted, free of charge\n.\n",
    "gitignore": b"Pipfile\n.env\n",
    "merges.txt": b"#version: 0.2\n\xc4\xa0 t\n",
    "empty": b"",
    "one": b"N",
    "spaces": b"   \n\t\n",
}


@pytest.mark.parametrize("name", sorted(TEXTS))
def test_probe_ignores_text(name: str) -> None:
    findings, ctx = probe(TEXTS[name])
    assert findings == []
    assert ctx.budget is not None and ctx.budget.formats == []


def test_probe_ignores_random_binaries() -> None:
    rng = random.Random(1234)
    for i in range(300):
        data = bytes(rng.getrandbits(8) for _ in range(rng.randrange(1, 400)))
        findings, _ = probe(data)
        assert findings == [], (i, data[:20])


def test_probe_is_fast_on_big_non_pickles() -> None:
    data = b"The quick brown fox jumps over the lazy dog.\n" * 400_000  # 18 MB of text
    findings, _ = probe(data)
    assert findings == []


@pytest.mark.parametrize("proto", [0, 1])
def test_probe_finds_low_protocol_pickles(proto: int) -> None:
    data = pickle.dumps(Evil(), protocol=proto)
    findings, ctx = probe(data)
    assert "scan.pickle.dangerous-global" in ids(findings)
    assert ctx.budget is not None and ctx.budget.formats == [("probe", "pickle")]


def test_probe_records_clean_low_protocol_pickles() -> None:
    findings, ctx = probe(pickle.dumps({"a": [1, 2]}, protocol=0))
    assert findings == []
    assert ctx.budget is not None and ctx.budget.formats == [("probe", "pickle")]


def test_scan_bytes_dispatches_protocol_0_text() -> None:
    scan = scan_bytes(pickle.dumps(Evil(), protocol=0), "notes.txt")
    assert scan.worst == Severity.CRITICAL
    assert ("notes.txt", "pickle") in scan.formats


# --- evidence and aggregation -------------------------------------------------------------


def test_finding_evidence() -> None:
    scan = scan_bytes(PAYLOAD, "m.pkl")
    f = by_id(scan.findings, "pickle.dangerous-global")
    assert f.severity == Severity.CRITICAL
    ev = f.evidence
    assert ev["global"] == "os.system" and ev["opcode"] == "REDUCE"
    assert PAYLOAD[ev["offset"] : ev["offset"] + 1] == b"R"
    assert ev["pickle_index"] == 0 and ev["count"] == 1 and ev["path"] == "m.pkl"
    assert CMD in ev["detail"]


def test_findings_are_aggregated() -> None:
    data = pickle.dumps([Evil() for _ in range(200)], protocol=4)
    findings = scan_bytes(data).findings
    f = by_id(findings, "pickle.dangerous-global")
    assert f.evidence["count"] == 1  # one global, memoised and reused
    data = pickle.dumps([Evil() for _ in range(50)], protocol=4)
    data = pickletools_unmemo(data)
    f = by_id(scan_bytes(data).findings, "pickle.dangerous-global")
    assert f.evidence["count"] == 50


def pickletools_unmemo(data: bytes) -> bytes:
    """The same pickle with every global spelled out again (no memo reuse)."""
    body = A.call(A.glob("posix", "system"), A.u(CMD))
    return A.proto(2) + b"(" + body * 50 + b"l."


# --- malformed streams --------------------------------------------------------------------


def test_broken_payload_still_critical() -> None:
    data = PAYLOAD[:-1] + b"\xff rest"
    findings = scan_bytes(data).findings
    assert by_id(findings, "pickle.dangerous-global").severity == Severity.CRITICAL
    assert by_id(findings, "pickle.malformed").severity == Severity.MEDIUM


@pytest.mark.parametrize(
    "data",
    [
        pickle.dumps({"a": [1, 2, 3]}, protocol=4)[:-5],
        b"\x80\x04\x95",
        b"\x80\x04K\x01K\x02\xff",
    ],
)
def test_inert_breakage_is_low(data: bytes) -> None:
    findings = scan_bytes(data).findings
    assert "scan.pickle.malformed-inert" in pickle_ids(findings)
    assert set(pickle_ids(findings)) <= {"scan.pickle.malformed-inert", "scan.pickle.frame-anomaly"}
    assert all(f.severity == Severity.LOW for f in findings)


# --- consecutive pickles ------------------------------------------------------------------


def test_trailing_garbage() -> None:
    base = pickle.dumps({"a": 1}, protocol=4)
    findings = scan_bytes(base + b"\x00\x01garbage").findings
    f = by_id(findings, "pickle.trailing-bytes")
    assert f.severity == Severity.MEDIUM and f.evidence["offset"] == len(base)


def test_second_pickle_is_scanned() -> None:
    first = pickle.dumps([1, 2], protocol=4)
    findings = scan_bytes(first + PAYLOAD).findings
    assert by_id(findings, "pickle.dangerous-global").evidence["pickle_index"] == 1
    assert by_id(findings, "pickle.multiple-streams").severity == Severity.MEDIUM
    benign = scan_bytes(first + pickle.dumps("two", protocol=2)).findings
    assert pickle_ids(benign) == ["scan.pickle.multiple-streams"]
    assert benign[0].severity == Severity.LOW


def _legacy(pickles: list[bytes], tail: bytes) -> bytes:
    return pickle.dumps(0x1950A86A20F9469CFC6C, protocol=2) + b"".join(pickles) + tail


def test_legacy_torch_layout() -> None:
    rest = [
        pickle.dumps(1001, protocol=2),
        pickle.dumps({"little_endian": True}, protocol=2),
        pickle.dumps({"w": 1}, protocol=2),
        pickle.dumps(["0"], protocol=2),
    ]
    storage = b"\x80\x02cos\nsystem\n" + os.urandom(4096)  # raw bytes, never parsed
    assert scan_bytes(_legacy(rest, storage)).findings == ()
    bad = [*rest[:2], PAYLOAD, *rest[3:]]
    findings = scan_bytes(_legacy(bad, storage)).findings
    assert by_id(findings, "pickle.dangerous-global").evidence["pickle_index"] == 3
    short = scan_bytes(_legacy(rest[:2], b"")).findings
    assert "scan.pickle.malformed" in ids(short)


def test_real_legacy_torch_file() -> None:
    torch = pytest.importorskip("torch", reason="torch writes the legacy format")
    buf = io.BytesIO()
    torch.save({"w": torch.ones(300, 300)}, buf, _use_new_zipfile_serialization=False)
    assert scan_bytes(buf.getvalue()).findings == ()


# --- joblib -------------------------------------------------------------------------------


def test_joblib_arrays_are_skipped_and_payload_after_them_found() -> None:
    joblib = pytest.importorskip("joblib", reason="joblib writes the reference dumps")
    np = pytest.importorskip("numpy", reason="numpy arrays")
    arrays = {
        "opcodes": np.frombuffer(b"cos\nsystem\n" * 100, dtype="u1"),  # looks like pickle
        "f": np.ones((50, 7)),
        "s": np.zeros(3, dtype=[("a", "<i4"), ("b", "S3")]),
    }
    buf = io.BytesIO()
    joblib.dump(arrays, buf)
    assert scan_bytes(buf.getvalue()).findings == ()
    buf = io.BytesIO()
    joblib.dump({**arrays, "evil": Evil()}, buf)
    data = buf.getvalue()
    f = by_id(scan_bytes(data).findings, "pickle.dangerous-global")
    assert f.evidence["offset"] > data.index(b"system\n" * 1) + 1000


def test_joblib_object_array_payload() -> None:
    joblib = pytest.importorskip("joblib", reason="joblib writes the reference dumps")
    np = pytest.importorskip("numpy", reason="numpy arrays")
    arr = np.empty(2, dtype=object)
    arr[0], arr[1] = "x", Evil()
    buf = io.BytesIO()
    joblib.dump({"a": arr, "tail": 1}, buf)
    findings = scan_bytes(buf.getvalue()).findings
    assert pickle_ids(findings) == ["scan.pickle.dangerous-global"]


def test_joblib_wrapper_without_shape_stops_with_high() -> None:
    wrapper = A.sglob("joblib.numpy_pickle", "NumpyArrayWrapper") + b")\x81}b"
    findings = scan_bytes(A.proto(4) + wrapper + b"cos\nsystem\n.").findings
    assert by_id(findings, "pickle.joblib-layout").severity == Severity.HIGH


def test_joblib_zlib() -> None:
    joblib = pytest.importorskip("joblib", reason="joblib writes the reference dumps")
    np = pytest.importorskip("numpy", reason="numpy arrays")
    buf = io.BytesIO()
    joblib.dump({"w": np.arange(1000)}, buf, compress=3)
    data = buf.getvalue()
    assert JoblibZlibFormat().sniff(data[:4096])
    scan = scan_bytes(data, "m.joblib")
    assert scan.findings == ()
    assert ("m.joblib", "joblib-zlib") in scan.formats
    buf = io.BytesIO()
    joblib.dump({"w": np.arange(1000), "e": Evil()}, buf, compress=3)
    findings = scan_bytes(buf.getvalue(), "m.joblib").findings
    f = by_id(findings, "pickle.dangerous-global")
    assert f.evidence["path"] == "m.joblib!<zlib>"


def test_old_joblib_zfile() -> None:
    body = zlib.compress(PAYLOAD)
    data = b"ZF" + hex(len(PAYLOAD)).encode().ljust(19) + body
    assert scan_bytes(data).worst == Severity.CRITICAL


def test_zlib_of_non_pickle_is_not_claimed() -> None:
    assert not JoblibZlibFormat().sniff(zlib.compress(b"hello world" * 10))
    assert not JoblibZlibFormat().sniff(b"x\x9cgarbage")


def test_zlib_bomb_is_a_finding() -> None:
    data = zlib.compress(pickle.dumps(b"\x00" * (4 << 20), protocol=4), 9)
    scan = scan_bytes(data, limits=ScanLimits(max_ratio=50))
    assert "scan.archive.bomb" in ids(scan.findings)


# --- nesting ------------------------------------------------------------------------------


def test_nested_pickle_in_bytes() -> None:
    outer = pickle.dumps({"blob": PAYLOAD, "x": 1}, protocol=4)
    findings = scan_bytes(outer, "o.pkl").findings
    nested = by_id(findings, "pickle.nested")
    inner = by_id(findings, "pickle.dangerous-global")
    assert inner.evidence["path"] == nested.evidence["nested_path"]
    assert inner.evidence["path"].startswith("o.pkl!<pickle@")


def test_nested_data_pickle_is_quiet() -> None:
    outer = pickle.dumps({"blob": pickle.dumps([1, 2, 3], protocol=4)}, protocol=4)
    assert scan_bytes(outer).findings == ()


def test_nesting_is_depth_limited() -> None:
    data = PAYLOAD
    for _ in range(10):
        data = pickle.dumps({"n": data}, protocol=4)
    findings = scan_bytes(data, limits=ScanLimits(max_depth=3)).findings
    assert "scan.limit.depth" in ids(findings)


def test_unverified_loader_argument() -> None:
    call = A.call(A.sglob("torch.storage", "_load_from_bytes"), A.binbytes(b"not a zip at all"))
    findings = scan_bytes(A.proto(4) + call + b".").findings
    assert by_id(findings, "pickle.unverified-load").severity == Severity.HIGH


def test_pickled_tensor_is_clean() -> None:
    torch = pytest.importorskip("torch", reason="torch pickles tensors via _load_from_bytes")
    for proto in (2, 4):
        data = pickle.dumps(torch.arange(5.0), protocol=proto)
        assert pickle_ids(scan_bytes(data).findings) == [], proto


# --- limits -------------------------------------------------------------------------------


def test_op_limit_keeps_what_was_found() -> None:
    data = A.proto(4) + A.call(A.sglob("os", "system"), A.u(CMD)) + b"0" + b"N0" * 5000 + b"N."
    findings = scan_bytes(data, limits=ScanLimits(max_pickle_ops=1000)).findings
    assert by_id(findings, "pickle.limit").severity == Severity.MEDIUM
    assert by_id(findings, "pickle.dangerous-global").severity == Severity.CRITICAL


def test_time_limit_is_raised_after_partial_findings() -> None:
    data = A.proto(4) + A.call(A.sglob("os", "system"), A.u(CMD)) + b"0" + b"N0" * 50000 + b"N."
    ctx = ScanContext(path="t", limits=ScanLimits())
    calls = []

    def check_time() -> None:
        calls.append(1)
        if len(calls) > 2:
            raise ScanLimitExceeded("limit.time", "out of time")

    ctx.check_time = check_time  # type: ignore[method-assign]
    seen: list[Finding] = []
    with pytest.raises(ScanLimitExceeded, match="out of time"):
        for finding in PickleFormat().scan(io.BytesIO(data), ctx):
            seen.append(finding)
    assert "scan.pickle.dangerous-global" in ids(seen)
    assert "scan.pickle.limit" in ids(seen)


def test_scan_pickle_stream_starts_where_the_stream_is() -> None:
    data = b"HEADER" + PAYLOAD
    stream = io.BytesIO(data)
    stream.seek(6)
    ctx = ScanContext(path="x", limits=ScanLimits())
    findings = list(scan_pickle_stream(stream, ctx, label="embedded"))
    f = by_id(findings, "pickle.dangerous-global")
    assert f.evidence["format"] == "embedded"


def test_scan_never_raises_on_odd_streams() -> None:
    for data in (b"\x80\x05" + b"(" * 100_000 + b".", b"\x80\x04" + b"]" * 300_000 + b"."):
        scan = scan_bytes(data, limits=ScanLimits(max_pickle_memo=10_000))
        assert scan.findings
