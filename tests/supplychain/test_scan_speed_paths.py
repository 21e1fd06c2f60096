"""Regression tests for the second round of scanner speed-ups: each shortcut must give what the
plain path gives (first-byte sniff hints, the inline opcode loop, the probe's early reject,
findings and traces built without the dataclass ``__init__``, HDF5 file images, reading small
files by descriptor, display paths without ``pathlib``)."""

from __future__ import annotations

import dataclasses
import functools
import io
import lzma
import os
import pickle
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import pytest
from tests.supplychain._helpers import registered
from tests.supplychain.corpus import benign, malicious
from tests.supplychain.corpus.archives import zip_bytes

from warden.assess.finding import Finding, Severity
from warden.errors import ConfigError
from warden.supplychain.formats import BUILTIN_FORMATS
from warden.supplychain.pickles.vm import PickleMachine, PickleTrace
from warden.supplychain.scan import scan_paths
from warden.supplychain.scanner import HEAD_BYTES, ScanContext, scan_bytes, scan_file

# --- first-byte hints ---------------------------------------------------------------------


@functools.cache
def _heads() -> list[bytes]:
    samples = [*malicious("/nonexistent/warden-canary").values(), *benign().values()]
    text = b"plain text " * 64
    samples += [
        lzma.compress(text, format=lzma.FORMAT_ALONE),
        b"\x28\xb5\x2f\xfd" + bytes(64),  # a zstd frame header
        zlib.compress(pickle.dumps({"a": 1}, protocol=4)),
    ]
    return sorted({data[:HEAD_BYTES] for data in samples if data})


@pytest.mark.parametrize(
    "scanner",
    [s for s in BUILTIN_FORMATS if getattr(s, "first_bytes", None) is not None],
    ids=lambda s: s.name,
)
def test_first_bytes_hint_never_hides_a_head_the_sniffer_accepts(scanner: object) -> None:
    hint = getattr(scanner, "first_bytes")  # noqa: B009 - checked by the parametrisation
    sniff = getattr(scanner, "sniff")  # noqa: B009
    accepted = 0
    for head in _heads():
        for b in range(256):
            moved = bytes([b]) + head[1:]
            if sniff(moved):
                accepted += 1
                assert b in hint, (scanner, moved[:16])
    assert accepted > 0  # the corpus holds at least one head of this format


class _Hinted:
    """Accepts every head, but declares that its format starts with ``H``."""

    name = "test-hinted"
    first_bytes = b"H"

    def __init__(self) -> None:
        self.asked: list[bytes] = []

    def sniff(self, head: bytes) -> bool:
        self.asked.append(head[:1])
        return True

    def scan(self, stream: BinaryIO, ctx: ScanContext) -> Iterator[Finding]:
        yield ctx.finding("test.hinted", Severity.INFO, "seen")


def test_user_scanner_with_first_bytes_is_only_sniffed_on_matching_heads() -> None:
    with registered(_Hinted()) as hinted:
        assert "scan.test.hinted" in {f.id for f in scan_bytes(b"Hello there").findings}
        assert "scan.test.hinted" not in {f.id for f in scan_bytes(b"Goodbye now").findings}
        assert hinted.asked == [b"H"]
        # an empty head is sniffed by everyone: nothing to judge the hint by
        scan_bytes(b"")
        assert hinted.asked == [b"H", b""]


# --- the inline opcode loop ---------------------------------------------------------------


def test_limit_reports_the_last_opcode_run_even_when_it_ran_inline() -> None:
    # PROTO at 0, then MARK (run inline) at offsets 2, 3, ...: opcode k sits at offset k. The
    # limits are checked before opcode 4096 runs; the last one run is opcode 4095.
    data = b"\x80\x04" + b"(" * 5000 + b"."
    trace = PickleMachine(io.BytesIO(data), size=len(data), max_ops=10).run()
    assert trace.error is not None
    assert trace.error.kind == "limit"
    assert trace.error.offset == 4095
    assert trace.end == 4096  # nothing after opcode 4095 was read


def test_inline_opcodes_fall_back_to_the_handlers_for_errors() -> None:
    cases = {
        b"\x80\x04q\x00.": ("stack", 2),  # BINPUT on an empty stack
        b"\x80\x04h\x05.": ("memo", 2),  # BINGET of a missing memo entry
        b"\x80\x04\x8c\x02\xff\xfe.": ("error", 2),  # SHORT_BINUNICODE that is not UTF-8
        b"\x80\x04X\x01\x00\x00\x00\xff.": ("error", 2),  # BINUNICODE that is not UTF-8
        b"\x80\x04t.": ("stack", 2),  # TUPLE without a MARK
        b"\x80\x04(\x85.": ("stack", 3),  # TUPLE1 across a MARK
        b"\x80\x04N(\x86.": ("stack", 4),  # TUPLE2 across a MARK
        b"\x80\x04NR.": ("stack", 3),  # REDUCE with one item
        b"\x80\x04K": ("truncated", 2),  # BININT1 without its byte
    }
    for data, (kind, offset) in cases.items():
        trace = PickleMachine(io.BytesIO(data), size=len(data)).run()
        assert trace.error is not None, data
        assert (trace.error.kind, trace.error.offset) == (kind, offset), data


def test_trace_carries_every_field() -> None:
    data = b"\x80\x04N."
    trace = PickleMachine(io.BytesIO(data), size=len(data)).run()
    assert set(vars(trace)) == {f.name for f in dataclasses.fields(PickleTrace)}
    assert trace.stopped
    assert trace.ops == 3
    with pytest.raises(dataclasses.FrozenInstanceError):
        trace.ops = 4  # type: ignore[misc]


# --- the probe's early reject ---------------------------------------------------------------


def test_probe_still_accepts_a_whole_pickle_and_rejects_garbage_members() -> None:
    data = zip_bytes({"whole.pkl": b"N.", "garbage.bin": b"K\x01\x01\x01\x01\x01"})
    result = scan_bytes(data, "m.zip")
    formats = dict(result.formats)
    assert formats["m.zip!whole.pkl"] == "pickle"
    assert formats["m.zip!garbage.bin"] == "unknown"
    assert not [f for f in result.findings if f.severity >= Severity.LOW]


# --- findings -------------------------------------------------------------------------------


def _fields(**changes: object) -> dict[str, object]:
    base: dict[str, object] = {
        "id": "scan.test.fast",
        "check": "scan",
        "title": "t",
        "severity": Severity.HIGH,
        "summary": "s",
        "metrics": {"n": 1},
        "owasp": ("ML06",),
        "atlas": ("AML.T0010",),
        "evidence": {"path": "p", "nested": {"k": (1, 2)}, "offset": 3},
        "remediation": "r",
    }
    return {**base, **changes}


def test_fast_finding_equals_the_constructed_one() -> None:
    fast = Finding.fast(**_fields())  # type: ignore[arg-type]
    slow = Finding(**_fields())  # type: ignore[arg-type]
    assert fast == slow
    assert fast.evidence == {"path": "p", "nested": {"k": [1, 2]}, "offset": 3}
    with pytest.raises(dataclasses.FrozenInstanceError):
        fast.title = "changed"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"id": "Scan.Upper"}, "lower-case dotted"),
        ({"owasp": ("ML99",)}, "OWASP"),
        ({"atlas": ("T0010",)}, "ATLAS"),
        ({"evidence": {"x": float("nan")}}, "finite"),
        ({"metrics": {"x": object()}}, "not JSON data"),
    ],
)
def test_checks_still_run_after_valid_values_were_memoised(
    changes: dict[str, object], message: str
) -> None:
    Finding(**_fields())  # type: ignore[arg-type]
    Finding.fast(**_fields())  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=message):
        Finding(**_fields(**changes))  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=message):
        Finding.fast(**_fields(**changes))  # type: ignore[arg-type]


def test_plain_conversion_still_applies_to_flat_looking_values() -> None:
    f = Finding(**_fields(evidence={"sev": Severity.HIGH, "t": (1,), 3: "x"}))  # type: ignore[arg-type]
    assert f.evidence == {"sev": 3, "t": [1], "3": "x"}
    assert type(f.evidence["sev"]) is int


# --- HDF5 from memory -----------------------------------------------------------------------


def test_in_memory_hdf5_is_read_as_a_file_image() -> None:
    pytest.importorskip("h5py")
    from warden.supplychain.formats.hdf5 import _open

    data = benign()["keras-dense.h5"]
    with _open(io.BytesIO(data)) as handle:
        assert handle.driver == "core"
        assert "model_config" in handle.attrs
    assert not os.path.exists(os.path.join(os.devnull, "warden-hdf5-image"))
    assert ("<bytes>", "hdf5") in scan_bytes(data).formats


# --- files and paths --------------------------------------------------------------------------


def test_a_directory_given_as_a_file_is_an_unreadable_file(tmp_path: Path) -> None:
    result = scan_file(tmp_path)
    assert [f.id for f in result.findings] == ["scan.error"]
    assert "could not open" in result.findings[0].title
    assert result.size == 0


@pytest.mark.parametrize(
    "spelling", ["./{name}", "{dir}//{name}", "{dir}/./{name}", "{dir}/{name}", "{dir}/../{name}"]
)
def test_display_paths_are_normalised_as_pathlib_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, spelling: str
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "d").mkdir()
    for folder in (tmp_path, tmp_path / "d"):
        (folder / "x.pkl").write_bytes(b"\x80\x04N.")
    raw = spelling.format(dir="d", name="x.pkl")
    report = scan_paths([raw], workers=1)
    assert [fs.path for fs in report.files] == [str(Path(raw))]
    assert report.files[0].size == 4
