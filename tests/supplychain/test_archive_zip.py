"""Zip scanning at the raw level: lying headers, hidden members, polyglots, cost per member."""

from __future__ import annotations

import io
import random
import zipfile
import zlib
from collections.abc import Iterator
from typing import Any, BinaryIO

import pytest
from tests.supplychain._helpers import Capture, finding_ids, one_finding
from tests.supplychain.corpus.archives import README, Member, evil_pickle, raw_zip, zip_bytes

from warden.assess.finding import Finding, Severity
from warden.supplychain.formats import pickle as pickle_mod
from warden.supplychain.formats.compressed import unsafe_name
from warden.supplychain.formats.zip import ZipScanner, ZipTailScanner, find_end
from warden.supplychain.scanner import (
    ScanContext,
    ScanLimits,
    scan_bytes,
)

EVIL = evil_pickle("/nonexistent/warden-canary")


class _CountingIO(io.BytesIO):
    """A BytesIO that counts the bytes read from it."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.bytes_read = 0

    def read(self, size: int | None = -1) -> bytes:
        data = super().read(size)
        self.bytes_read += len(data)
        return data


# --- members reach the dispatcher, whatever the method or name ----------------------------


@pytest.mark.parametrize(
    "method", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA]
)
def test_every_supported_method_is_decompressed_exactly(capture: Capture, method: int) -> None:
    content = b"CAPTURE" + bytes(range(256)) * 40
    result = scan_bytes(zip_bytes({"weights.txt": content}, method), "m.zip")
    assert result.findings == ()
    assert capture.seen == {"m.zip!weights.txt": content}


def test_lzma_member_declaring_a_huge_dictionary_still_decodes(capture: Capture) -> None:
    data = bytearray(zip_bytes({"w.bin": b"CAPTURE lzma"}, zipfile.ZIP_LZMA))
    props = 30 + len("w.bin") + 4  # local header, name, lzma version + properties size
    data[props + 1 : props + 5] = b"\xff\xff\xff\xff"
    result = scan_bytes(bytes(data), "m.zip")
    assert result.findings == ()
    assert capture.seen == {"m.zip!w.bin": b"CAPTURE lzma"}


def test_members_are_dispatched_by_content_not_name() -> None:
    result = scan_bytes(zip_bytes({"data.txt": EVIL}), "a.zip")
    assert ("a.zip", "zip") in result.formats
    assert any(path == "a.zip!data.txt" for path, _ in result.formats)


def test_nested_zip_members_get_nested_paths(capture: Capture) -> None:
    inner = zip_bytes({"deep/w.bin": b"CAPTURE inner"})
    outer = zip_bytes({"inner.zip": inner}, zipfile.ZIP_STORED)
    result = scan_bytes(outer, "outer.zip")
    assert result.findings == ()
    assert capture.seen == {"outer.zip!inner.zip!deep/w.bin": b"CAPTURE inner"}


def test_benign_torch_checkpoint_and_npz_produce_no_archive_findings() -> None:
    np = pytest.importorskip("numpy")
    torch = pytest.importorskip("torch")
    pt = io.BytesIO()
    torch.save({"w": torch.ones(2, 2)}, pt)
    npz = io.BytesIO()
    np.savez_compressed(npz, a=np.arange(6))
    for data in (pt.getvalue(), npz.getvalue()):
        result = scan_bytes(data, "model")
        assert not [f for f in result.findings if f.id.startswith(("scan.zip.", "scan.archive."))]
        assert ("model", "zip") in result.formats


# --- lying headers ------------------------------------------------------------------------


def test_name_mismatch_names_both_names_and_scans_the_content(capture: Capture) -> None:
    data = raw_zip([Member("weights.bin", b"CAPTURE x", local_name="data.pkl")])
    result = scan_bytes(data, "m.zip")
    f = one_finding(result, "scan.zip.name-mismatch")
    assert f.severity == Severity.HIGH
    assert f.evidence["central_name"] == "weights.bin"
    assert f.evidence["local_name"] == "data.pkl"
    assert capture.seen == {"m.zip!weights.bin": b"CAPTURE x"}


@pytest.mark.parametrize("method", [0, 8])
def test_encryption_bit_on_plain_data_is_reported_and_read_anyway(
    capture: Capture, method: int
) -> None:
    data = raw_zip([Member("data.pkl", b"CAPTURE plain", method, flags=0x0001)])
    result = scan_bytes(data, "m.zip")
    assert one_finding(result, "scan.zip.encrypted").severity == Severity.HIGH
    assert capture.seen == {"m.zip!data.pkl": b"CAPTURE plain"}


def test_really_encrypted_member_is_one_high_finding() -> None:
    # ZipCrypto ciphertext does not inflate; the member stays unanalysed, flagged once
    data = raw_zip([Member("data.pkl", random.Random(0).randbytes(64), 8, flags=0x0001)])
    result = scan_bytes(data, "m.zip")
    assert "scan.zip.encrypted" in finding_ids(result)
    assert "scan.error" not in finding_ids(result)


@pytest.mark.parametrize(
    ("flags", "local_flags", "bits"),
    [(0x2000, None, [13]), (0x0040, None, [6]), (0x0010, None, [4]), (0x0800, 0x0000, [])],
)
def test_odd_or_inconsistent_flags(flags: int, local_flags: int | None, bits: list[int]) -> None:
    data = raw_zip([Member("a.txt", README, flags=flags, local_flags=local_flags)])
    f = one_finding(scan_bytes(data), "scan.zip.odd-flags")
    assert f.severity == Severity.MEDIUM
    assert f.evidence["odd_bits"] == bits


@pytest.mark.parametrize("method", [0, 8])
def test_bad_crc_is_reported_and_the_member_still_scanned(capture: Capture, method: int) -> None:
    content = b"CAPTURE crc"
    data = raw_zip([Member("data.pkl", content, method, crc=0xDEADBEEF)])
    result = scan_bytes(data, "m.zip")
    f = one_finding(result, "scan.zip.bad-crc")
    assert f.evidence["computed"] == zlib.crc32(content)
    assert f.evidence["central_crc"] == 0xDEADBEEF
    assert capture.seen == {"m.zip!data.pkl": content}


def test_declared_size_that_lies_is_a_header_mismatch(capture: Capture) -> None:
    data = raw_zip([Member("data.pkl", b"CAPTURE all of it", 8, central_size=3)])
    result = scan_bytes(data, "m.zip")
    assert "scan.zip.header-mismatch" in finding_ids(result)
    assert capture.seen == {"m.zip!data.pkl": b"CAPTURE all of it"}  # not truncated to 3


def test_duplicate_names_scan_every_copy(capture: Capture) -> None:
    data = raw_zip([Member("w.bin", b"CAPTURE one"), Member("w.bin", b"CAPTURE two")])
    result = scan_bytes(data, "m.zip")
    f = one_finding(result, "scan.zip.duplicate-name")
    assert f.evidence["count"] == 2
    assert capture.seen == {"m.zip!w.bin": b"CAPTURE one", "m.zip!w.bin#2": b"CAPTURE two"}


def test_records_sharing_a_local_header_are_an_overlap_scanned_once(capture: Capture) -> None:
    data = raw_zip([Member("a.bin", b"CAPTURE a", 8), Member("b.bin", b"", 8, alias_of=0)])
    result = scan_bytes(data, "m.zip")
    f = one_finding(result, "scan.zip.overlap")
    assert f.evidence["pairs"] == [["a.bin", "b.bin"]]
    assert capture.seen == {"m.zip!a.bin": b"CAPTURE a"}


def test_unlisted_member_between_listed_ones_is_found_and_scanned(capture: Capture) -> None:
    data = raw_zip(
        [
            Member("a.txt", README),
            Member("hidden.bin", b"CAPTURE hidden", 8, listed=False),
            Member("b.txt", README),
        ]
    )
    result = scan_bytes(data, "m.zip")
    f = one_finding(result, "scan.zip.unlisted-member")
    assert f.evidence["member"] == "hidden.bin"
    assert capture.seen == {"m.zip!hidden.bin": b"CAPTURE hidden"}


@pytest.mark.parametrize(
    ("name", "unsafe"),
    [
        ("model/data.pkl", False),
        ("a..b/c", False),
        ("../x", True),
        ("a/../../x", True),
        ("/etc/passwd", True),
        ("C:evil", True),
        ("dir\\..\\x", True),
        ("\\\\server\\share", True),
        ("nul\x00byte", True),
    ],
)
def test_unsafe_names(name: str, unsafe: bool) -> None:
    assert bool(unsafe_name(name)) is unsafe


def test_traversal_and_symlink_members() -> None:
    data = raw_zip(
        [
            Member("../../x.pkl", README),
            Member("link", b"/etc/passwd", made_by=(3 << 8) | 20, external_attr=0o120777 << 16),
        ]
    )
    result = scan_bytes(data)
    assert one_finding(result, "scan.zip.path-traversal").severity == Severity.HIGH
    link = one_finding(result, "scan.zip.symlink")
    assert link.evidence["target"] == "/etc/passwd"


def test_unsupported_method_is_reported() -> None:
    result = scan_bytes(raw_zip([Member("a.bin", b"x" * 40, 9)]))
    assert one_finding(result, "scan.zip.unsupported-method").evidence["method"] == 9


# --- damaged structure --------------------------------------------------------------------


def test_truncated_zip_is_malformed_and_members_are_found_by_walking(capture: Capture) -> None:
    whole = raw_zip([Member("a.bin", b"CAPTURE a", 8), Member("b.bin", b"CAPTURE b")])
    cut = whole[: whole.index(b"PK\x01\x02") + 10]
    result = scan_bytes(cut, "m.zip")
    assert "scan.zip.malformed" in finding_ids(result)
    assert capture.seen == {"m.zip!a.bin": b"CAPTURE a", "m.zip!b.bin": b"CAPTURE b"}


def test_corrupt_directory_falls_back_to_local_headers(capture: Capture) -> None:
    whole = bytearray(raw_zip([Member("a.bin", b"CAPTURE a")]))
    at = whole.index(b"PK\x01\x02")
    whole[at : at + 4] = b"XXXX"
    result = scan_bytes(bytes(whole), "m.zip")
    assert "scan.zip.malformed" in finding_ids(result)
    assert capture.seen == {"m.zip!a.bin": b"CAPTURE a"}


def test_deflate_data_cut_short_is_malformed_and_the_good_part_scanned(capture: Capture) -> None:
    content = b"CAPTURE " + random.Random(0).randbytes(3000).hex().encode()
    whole = bytearray(raw_zip([Member("a.bin", content, 8)]))
    csize = int.from_bytes(whole[18:22], "little")
    at = whole.index(b"PK\x01\x02")
    for pos in (18, at + 20):  # compressed size in the local header and the directory
        whole[pos : pos + 4] = (csize // 2).to_bytes(4, "little")
    result = scan_bytes(bytes(whole), "m.zip")
    assert "scan.zip.malformed" in finding_ids(result)
    seen = capture.seen["m.zip!a.bin"]
    assert content.startswith(seen)
    assert 0 < len(seen) < len(content)


def test_data_after_the_end_record_is_malformed() -> None:
    result = scan_bytes(zip_bytes({"a.txt": README}) + b"trailing")
    assert one_finding(result, "scan.zip.malformed").evidence["trailing_bytes"] == 8


def test_zip64_end_records_are_followed(capture: Capture) -> None:
    data = raw_zip([Member("a.bin", b"CAPTURE 64", 8)], zip64=True)
    end = find_end(io.BytesIO(data), len(data), strict=True)
    assert end is not None and end.zip64 and end.entries == 1
    result = scan_bytes(data, "m.zip")
    assert result.findings == ()
    assert capture.seen == {"m.zip!a.bin": b"CAPTURE 64"}


def test_empty_zip_is_clean() -> None:
    result = scan_bytes(zip_bytes({}), "e.zip")
    assert result.findings == ()
    assert result.formats == (("e.zip", "zip"),)


# --- polyglots ----------------------------------------------------------------------------


def test_pickle_prefixed_zip_is_a_polyglot_and_both_views_are_scanned(capture: Capture) -> None:
    data = EVIL + zip_bytes({"w.bin": b"CAPTURE member"})
    result = scan_bytes(data, "p.pkl")
    f = one_finding(result, "scan.zip.polyglot")
    assert f.evidence["prefix_bytes"] == len(EVIL)
    assert f.evidence["prefix_kind"] == "a pickle (protocol 2)"
    assert ("p.pkl", "zip-tail") in result.formats
    assert capture.seen == {"p.pkl!w.bin": b"CAPTURE member"}


def test_tail_scanner_ignores_a_stray_end_signature() -> None:
    noise = bytearray(random.Random(0).randbytes(100_000))
    noise[-500:-496] = b"PK\x05\x06"
    noise[0] = 0x00
    result = scan_bytes(bytes(noise))
    assert not [f for f in result.findings if f.id.startswith("scan.zip.")]


def test_tail_scanner_reads_only_the_tail_of_a_big_file() -> None:
    stream = _CountingIO(b"\x00" * (16 << 20))
    ctx = ScanContext("big.bin", ScanLimits())
    assert list(ZipTailScanner().scan(stream, ctx)) == []
    assert stream.bytes_read < 80_000


def test_unclaimed_content_still_gets_the_pickle_probe(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []

    def fake_probe(stream: BinaryIO, ctx: ScanContext) -> Iterator[Finding]:
        calls.append(ctx.path)
        yield ctx.finding("test.probed", Severity.LOW, "probed")

    monkeypatch.setattr(pickle_mod, "probe_pickle", fake_probe)
    result = scan_bytes(b"(lp0\nI1\na.", "proto0.pkl")
    assert calls == ["proto0.pkl"]
    assert "scan.test.probed" in finding_ids(result)
    calls.clear()
    scan_bytes(b"\x1f\x8b\x08\x00" + b"\x00" * 20, "x.gz")  # claimed by gzip: no probe
    assert "x.gz" not in calls


# --- cost ---------------------------------------------------------------------------------


def test_big_stored_member_no_scanner_wants_is_not_read_whole() -> None:
    tensor = bytes(range(256)) * (128 << 10)  # 32 MiB of "tensor data"
    data = zip_bytes({"archive/data.pkl": b"\x80\x02K\x01.", "archive/data/0": tensor}, 0)
    stream = _CountingIO(data)
    ctx = ScanContext("ckpt.pt", ScanLimits())
    findings = list(ZipScanner().scan(stream, ctx))
    assert not [f for f in findings if f.id.startswith("scan.zip.")]
    assert stream.bytes_read < 1 << 20
    assert ctx.budget is not None
    assert ("ckpt.pt!archive/data/0", "unknown") in ctx.budget.formats


def test_stored_member_read_by_a_scanner_gets_its_crc_checked(capture: Capture) -> None:
    big = b"CAPTURE" + bytes(range(256)) * (20 << 10)  # 5 MiB, above the always-check size
    data = raw_zip([Member("w.bin", big, crc=1)])
    result = scan_bytes(data, "m.zip")
    assert "scan.zip.bad-crc" in finding_ids(result)


def _evidence_paths(findings: Any) -> set[str]:
    return {str(f.evidence["path"]) for f in findings}


def test_findings_name_the_member_path() -> None:
    result = scan_bytes(raw_zip([Member("../x", README)]), "m.zip")
    assert _evidence_paths(result.findings) == {"m.zip"}
    assert one_finding(result, "scan.zip.path-traversal").evidence["member"] == "../x"
