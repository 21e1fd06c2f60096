"""The .npy scanner: header validation by literal parsing, data size, object arrays."""

from __future__ import annotations

import io
import os
import struct

import numpy as np
import pytest
from tests.supplychain.corpus.pickles import A

from warden.assess.finding import Finding, Severity
from warden.supplychain.formats.numpy import HeaderError, NumpyFormat, parse_header
from warden.supplychain.scanner import scan_bytes

PAYLOAD = A.proto(2) + A.call(A.glob("os", "system"), A.u("echo x > /nonexistent")) + b"."


def npy(header: str | bytes, data: bytes = b"", version: tuple[int, int] = (1, 0)) -> bytes:
    raw = header.encode("latin1") if isinstance(header, str) else header
    fmt = "<H" if version == (1, 0) else "<I"
    return b"\x93NUMPY" + bytes(version) + struct.pack(fmt, len(raw)) + raw + data


def saved(arr: np.ndarray, **kwargs: object) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr, **kwargs)  # type: ignore[arg-type]
    return buf.getvalue()


def ids(findings: tuple[Finding, ...]) -> list[str]:
    return [f.id for f in findings]


@pytest.mark.parametrize(
    "arr",
    [
        np.arange(10),
        np.zeros((3, 4), np.float32),
        np.ones((2, 3), order="F"),
        np.zeros(3, dtype=[("a", "<i4"), ("b", "<f8", (2,))]),
        np.zeros(
            2, dtype=np.dtype({"names": ["x"], "formats": ["<u2"], "offsets": [4], "itemsize": 8})
        ),
        np.array(["ab", "c"]),
        np.array(b"xyz"),
        np.array(3.5),
        np.zeros((0, 5)),
        np.arange(6, dtype=">i2"),
        np.array(["2020-01-01"], dtype="M8[D]"),
    ],
    ids=lambda a: f"{a.dtype}{a.shape}",
)
def test_numeric_arrays_are_clean(arr: np.ndarray) -> None:
    data = saved(arr)
    assert NumpyFormat().sniff(data)
    scan = scan_bytes(data, "a.npy")
    assert scan.findings == ()
    assert ("a.npy", "numpy") in scan.formats


@pytest.mark.parametrize("version", [(2, 0), (3, 0)])
def test_newer_versions(version: tuple[int, int]) -> None:
    header = "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }\n"
    assert scan_bytes(npy(header, b"\x00" * 8, version)).findings == ()


def test_truncated_and_trailing() -> None:
    data = saved(np.arange(10))
    short = scan_bytes(data[:-1]).findings
    assert ids(short) == ["scan.numpy.truncated"] and short[0].severity == Severity.MEDIUM
    long = scan_bytes(data + b"\x80\x04junk").findings
    assert ids(long) == ["scan.numpy.trailing-bytes"]
    assert long[0].evidence["offset"] == len(data)
    cut = scan_bytes(data[:20]).findings
    assert ids(cut) == ["scan.numpy.truncated"]


@pytest.mark.parametrize(
    "header",
    [
        "{'descr': __import__('os').system('x'), 'fortran_order': False, 'shape': ()}",
        "[1, 2, 3]",
        "{'descr': '<f8', 'shape': ()}",
        "{'descr': '<f8', 'fortran_order': False, 'shape': (), 'extra': 1}",
        "{'descr': '<f8', 'fortran_order': 0, 'shape': ()}",
        "{'descr': '<f8', 'fortran_order': False, 'shape': (-1,)}",
        "{'descr': '<f8', 'fortran_order': False, 'shape': (1.5,)}",
        "{'descr': 'not-a-dtype', 'fortran_order': False, 'shape': ()}",
        "{'descr': '<f8', 'fortran_order': False, 'shape': ()" + "(" * 500,
    ],
)
def test_invalid_headers(header: str) -> None:
    findings = scan_bytes(npy(header, b"\x00" * 8)).findings
    assert ids(findings) == ["scan.numpy.header-invalid"]


def test_unsupported_version() -> None:
    findings = scan_bytes(npy("{}", version=(9, 9))).findings
    assert ids(findings) == ["scan.numpy.header-invalid"]


def test_python2_long_suffix_is_accepted_in_old_versions() -> None:
    header = "{'descr': '<i8', 'fortran_order': False, 'shape': (2L,), }\n"
    assert parse_header(header, (1, 0)) == ("<i8", False, (2,))
    with pytest.raises(HeaderError, match="cannot parse"):
        parse_header(header, (3, 0))


def test_oversized_header_is_low() -> None:
    header = "{'descr': '<f8', 'fortran_order': False, 'shape': (1,), }" + " " * 12000 + "\n"
    findings = scan_bytes(npy(header, b"\x00" * 8, (2, 0))).findings
    assert ids(findings) == ["scan.numpy.header-oversized"]
    assert findings[0].severity == Severity.LOW


def test_object_array_payload() -> None:
    header = "{'descr': '|O', 'fortran_order': False, 'shape': (1,), }\n"
    findings = scan_bytes(npy(header, PAYLOAD), "x.npy").findings
    assert "scan.numpy.object-array" in ids(findings)
    evil = [f for f in findings if f.id == "scan.pickle.dangerous-global"]
    assert evil and evil[0].severity == Severity.CRITICAL
    assert evil[0].evidence["format"] == "numpy-object-array"


def test_structured_object_field_is_an_object_array() -> None:
    arr = np.zeros(2, dtype=[("a", "O"), ("b", "<i4")])
    findings = scan_bytes(saved(arr, allow_pickle=True)).findings
    assert ids(findings) == ["scan.numpy.object-array"]


def test_benign_object_array_only_notes_the_pickle() -> None:
    findings = scan_bytes(saved(np.array([1, "x", None], dtype=object), allow_pickle=True))
    assert ids(findings.findings) == ["scan.numpy.object-array"]
    assert findings.findings[0].severity == Severity.MEDIUM


def test_header_from_a_real_file_stream(tmp_path: os.PathLike[str]) -> None:
    from warden.supplychain.scanner import scan_file

    path = os.path.join(tmp_path, "w.npy")
    np.save(path, np.arange(100, dtype=np.int16))
    assert scan_file(path).findings == ()
