"""Regression tests for the scanner's fast paths: each shortcut must give the verdict the slow
path gives (declared-size bombs, small files read whole, small stored members read whole,
one-pass sniffing, low-level HDF5 walk)."""

from __future__ import annotations

import io
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import pytest
from tests.supplychain._helpers import registered
from tests.supplychain.corpus.archives import Member, evil_pickle, raw_zip, zip_bytes

from warden.assess.finding import Finding, Severity
from warden.supplychain.formats.compressed import RATIO_FLOOR
from warden.supplychain.scanner import SMALL_FILE, ScanContext, scan_bytes, scan_file

EVIL = evil_pickle("/nonexistent/warden-canary")
ZEROS = bytes(16 << 20)


def _ids(findings: tuple[Finding, ...]) -> set[str]:
    return {f.id for f in findings}


# --- zip bombs: declared sizes only ever add a finding ------------------------------------


def test_bomb_declared_by_honest_headers_is_reported_without_decompressing() -> None:
    result = scan_bytes(zip_bytes({"zeros.bin": ZEROS}), "bomb.zip")
    bombs = [f for f in result.findings if f.id == "scan.archive.bomb"]
    assert len(bombs) == 1
    assert bombs[0].severity == Severity.HIGH
    assert "declares" in bombs[0].title
    assert bombs[0].evidence["decompressed"] == len(ZEROS)


def test_bomb_whose_directory_understates_its_size_is_still_caught_while_streaming() -> None:
    data = raw_zip([Member("zeros.bin", ZEROS, 8, central_size=100)])
    result = scan_bytes(data, "liar.zip")
    bombs = [f for f in result.findings if f.id == "scan.archive.bomb"]
    assert len(bombs) == 1
    assert "declares" not in bombs[0].title  # found by the streaming ratio check
    assert bombs[0].evidence["decompressed"] > RATIO_FLOOR


def test_directory_that_overstates_a_small_member_does_not_hide_its_content() -> None:
    # the local header tells the truth, so the declared ratio is not trusted: the member is
    # decompressed and its pickle found
    data = raw_zip([Member("data.pkl", EVIL, 8, central_size=64 << 20)])
    ids = _ids(scan_bytes(data, "m.zip").findings)
    assert "scan.archive.bomb" not in ids
    assert "scan.zip.header-mismatch" in ids
    assert "scan.pickle.dangerous-global" in ids


# --- small stored members are read whole: CRC and content still checked ------------------


def test_small_stored_member_with_bad_crc_is_reported_and_scanned() -> None:
    data = raw_zip([Member("data.pkl", EVIL, 0, crc=0x12345678)])
    result = scan_bytes(data, "m.zip")
    ids = _ids(result.findings)
    assert "scan.zip.bad-crc" in ids
    assert "scan.pickle.dangerous-global" in ids
    crc = next(f for f in result.findings if f.id == "scan.zip.bad-crc")
    assert crc.evidence["computed"] == zlib.crc32(EVIL)


# --- small files are read whole: same findings as a stream --------------------------------


@pytest.mark.parametrize("size", [SMALL_FILE - 1, SMALL_FILE + 1])
def test_files_on_both_sides_of_the_small_file_size_scan_alike(tmp_path: Path, size: int) -> None:
    data = EVIL + b"\0" * (size - len(EVIL))
    path = tmp_path / "model.bin"
    path.write_bytes(data)
    on_disk = scan_file(path)
    in_memory = scan_bytes(data, str(path))
    assert on_disk.size == size
    assert [(f.id, f.severity) for f in on_disk.findings] == [
        (f.id, f.severity) for f in in_memory.findings
    ]
    assert "scan.pickle.dangerous-global" in _ids(on_disk.findings)
    assert "scan.pickle.trailing-bytes" in _ids(on_disk.findings)


# --- one-pass sniffing: a broken sniffer is still a finding and others still run ----------


class _BrokenSniffer:
    name = "test-broken-sniffer"

    def sniff(self, head: bytes) -> bool:
        raise RuntimeError("sniffer exploded")

    def scan(self, stream: BinaryIO, ctx: ScanContext) -> Iterator[Finding]:
        yield from ()


def test_a_failing_sniffer_is_reported_and_the_pickle_still_found() -> None:
    with registered(_BrokenSniffer()):
        result = scan_bytes(EVIL, "evil.pkl")
    ids = _ids(result.findings)
    assert "scan.error" in ids
    assert "scan.pickle.dangerous-global" in ids
    error = next(f for f in result.findings if f.id == "scan.error")
    assert "test-broken-sniffer" in error.title


# --- HDF5: the low-level walk reports what the high-level one did -------------------------


def test_hdf5_virtual_dataset_and_external_link_are_reported(tmp_path: Path) -> None:
    h5py = pytest.importorskip("h5py")
    np = pytest.importorskip("numpy")
    buf = io.BytesIO()
    with h5py.File(buf, "w") as f:
        f["plain"] = np.zeros(4, dtype=np.float32)
        layout = h5py.VirtualLayout(shape=(4,), dtype=np.float32)
        layout[:] = h5py.VirtualSource("/elsewhere/source.h5", "data", shape=(4,))
        f.create_virtual_dataset("virtual", layout)
        f["linked"] = h5py.ExternalLink("/etc/passwd", "/data")
    result = scan_bytes(buf.getvalue(), "v.h5")
    by_id = {f.id: f for f in result.findings}
    storage = by_id["scan.hdf5.external-storage"]
    assert storage.evidence["datasets"] == [
        {"name": "virtual", "kind": "virtual dataset", "files": ["/elsewhere/source.h5"]}
    ]
    link = by_id["scan.hdf5.external-link"]
    assert link.evidence["links"] == [{"name": "linked", "file": "/etc/passwd", "target": "/data"}]
    assert "scan.hdf5.malformed" not in by_id
