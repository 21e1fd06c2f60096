"""Tar, compressed streams (gzip, bzip2, xz, lzma, zstd) and 7z: members reached, oddities found."""

from __future__ import annotations

import bz2
import gzip
import importlib.util
import io
import lzma
import tarfile
from typing import BinaryIO

import pytest
from tests.supplychain._helpers import Capture, finding_ids, one_finding
from tests.supplychain.corpus.archives import (
    README,
    seven_zip_bytes,
    seven_zip_with_name,
    tar_bytes,
    tar_link,
)

from warden.assess.finding import Severity
from warden.supplychain.formats import compressed as compressed_mod
from warden.supplychain.formats.tar import TarScanner, header_checksum_ok
from warden.supplychain.scanner import (
    scan_bytes,
)

py7zr = pytest.importorskip("py7zr")


# --- tar ----------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", [tarfile.USTAR_FORMAT, tarfile.GNU_FORMAT, tarfile.PAX_FORMAT])
def test_tar_members_are_scanned_in_place(capture: Capture, fmt: int) -> None:
    data = tar_bytes([("a/w.bin", b"CAPTURE one"), ("b.txt", README), ("c", b"CAPTURE two")], fmt)
    result = scan_bytes(data, "m.tar")
    assert result.findings == ()
    assert capture.seen == {"m.tar!a/w.bin": b"CAPTURE one", "m.tar!c": b"CAPTURE two"}


def test_v7_tar_is_recognised_by_its_header_checksum(capture: Capture) -> None:
    block = bytearray(tar_bytes([("w.bin", b"CAPTURE v7")], tarfile.USTAR_FORMAT))
    block[257:265] = bytes(8)  # no ustar magic: an old v7 header
    block[148:156] = b" " * 8
    block[148:156] = f"{sum(block[:512]):06o}\x00 ".encode()
    head = bytes(block[:512])
    assert header_checksum_ok(head)
    assert TarScanner().sniff(bytes(block[:4096]))
    result = scan_bytes(bytes(block), "old.tar")
    assert ("old.tar", "tar") in result.formats
    assert capture.seen == {"old.tar!w.bin": b"CAPTURE v7"}
    assert not header_checksum_ok(b"\x01" + head[1:])


def test_tar_links_devices_and_escaping_targets() -> None:
    data = tar_bytes(
        [
            tar_link("s", tarfile.SYMTYPE, "../../etc/shadow"),
            tar_link("h", tarfile.LNKTYPE, "s"),
            tar_link("dev", tarfile.CHRTYPE),
            tar_link("pipe", tarfile.FIFOTYPE),
        ]
    )
    result = scan_bytes(data)
    assert one_finding(result, "scan.tar.symlink").evidence["target"] == "../../etc/shadow"
    assert one_finding(result, "scan.tar.hardlink").evidence["target"] == "s"
    assert one_finding(result, "scan.tar.path-traversal").evidence["member"] == "s"
    special = [f for f in result.findings if f.id == "scan.tar.special-file"]
    assert len(special) == 2
    assert all(f.severity == Severity.MEDIUM for f in special)


def test_tar_traversal_name_is_high_and_the_member_still_scanned(capture: Capture) -> None:
    result = scan_bytes(tar_bytes([("/abs/w.bin", b"CAPTURE abs")]), "m.tar")
    assert one_finding(result, "scan.tar.path-traversal").severity == Severity.HIGH
    assert capture.seen == {"m.tar!/abs/w.bin": b"CAPTURE abs"}


def test_tar_duplicates_are_flagged_and_every_copy_scanned(capture: Capture) -> None:
    result = scan_bytes(tar_bytes([("w", b"CAPTURE 1"), ("w", b"CAPTURE 2")]), "m.tar")
    assert "scan.tar.duplicate-name" in finding_ids(result)
    assert capture.seen == {"m.tar!w": b"CAPTURE 1", "m.tar!w#2": b"CAPTURE 2"}


def test_sparse_tar_member_is_malformed_and_not_expanded() -> None:
    info = tarfile.TarInfo("sparse.bin")
    info.type = tarfile.GNUTYPE_SPARSE
    result = scan_bytes(tar_bytes([info], tarfile.GNU_FORMAT))
    assert "sparse" in one_finding(result, "scan.tar.malformed").title


def test_truncated_tar_member_is_malformed_and_its_start_scanned(capture: Capture) -> None:
    data = tar_bytes([("w.bin", b"CAPTURE" + b"x" * 2000)])
    result = scan_bytes(data[:1024], "m.tar")
    assert "truncated" in one_finding(result, "scan.tar.malformed").title
    assert capture.seen["m.tar!w.bin"] == (b"CAPTURE" + b"x" * 2000)[:512]


def test_bad_header_after_a_good_member_is_malformed() -> None:
    good = tar_bytes([("a.txt", README)])[:1024]
    result = scan_bytes(good + b"\xab" * 512 + tar_bytes([("b.txt", README)]), "m.tar")
    assert one_finding(result, "scan.tar.malformed").evidence["offset"] == 1024


def test_garbage_with_a_tar_magic_is_malformed_not_an_error() -> None:
    head = bytearray(b"\x01" * 1024)
    head[257:263] = b"ustar\x00"
    result = scan_bytes(bytes(head))
    assert "scan.tar.malformed" in finding_ids(result)
    assert "scan.error" not in finding_ids(result)


# --- compressed streams -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("compress", "suffix"),
    [
        (lambda b: gzip.compress(b, mtime=0), ".gz"),
        (bz2.compress, ".bz2"),
        (lzma.compress, ".xz"),
        (lambda b: lzma.compress(b, format=lzma.FORMAT_ALONE), ".lzma"),
    ],
)
def test_compressed_content_is_scanned_under_the_outer_name(
    capture: Capture, compress: object, suffix: str
) -> None:
    assert callable(compress)
    content = b"CAPTURE " + README * 50
    result = scan_bytes(compress(content), f"weights.bin{suffix}")
    assert result.findings == ()
    assert capture.seen == {f"weights.bin{suffix}!weights.bin": content}


def test_lzma_header_asking_for_a_huge_dictionary_is_refused_not_allocated() -> None:
    data = bytearray(lzma.compress(README, format=lzma.FORMAT_ALONE))
    data[1:5] = (1 << 31).to_bytes(4, "little")  # a 2 GiB dictionary
    result = scan_bytes(bytes(data), "x.lzma")
    assert "memory" in one_finding(result, "scan.compressed.malformed").title.lower()


def test_gzip_stored_file_name_names_the_member(capture: Capture) -> None:
    buf = io.BytesIO()
    with gzip.GzipFile("orig.bin", "wb", fileobj=buf, mtime=0) as gz:
        gz.write(b"CAPTURE named")
    scan_bytes(buf.getvalue(), "x.gz")
    assert capture.seen == {"x.gz!orig.bin": b"CAPTURE named"}


@pytest.mark.parametrize(
    "make",
    [
        lambda: gzip.compress(b"CAPTURE a", mtime=0) + gzip.compress(b"-b", mtime=0),
        lambda: bz2.compress(b"CAPTURE a") + bz2.compress(b"-b"),
        lambda: lzma.compress(b"CAPTURE a") + b"\x00" * 4 + lzma.compress(b"-b"),
    ],
)
def test_concatenated_streams_are_one_content(capture: Capture, make: object) -> None:
    assert callable(make)
    result = scan_bytes(make(), "x")
    assert result.findings == ()
    assert list(capture.seen.values()) == [b"CAPTURE a-b"]


def test_trailing_data_after_a_gzip_stream_is_reported_and_scanned(capture: Capture) -> None:
    data = gzip.compress(README, mtime=0) + b"CAPTURE tail"
    result = scan_bytes(data, "x.gz")
    f = one_finding(result, "scan.compressed.trailing-data")
    assert f.evidence["length"] == len(b"CAPTURE tail")
    assert capture.seen == {"x.gz!<trailing data>": b"CAPTURE tail"}


def test_zero_padding_after_gzip_is_not_trailing_data() -> None:
    result = scan_bytes(gzip.compress(README, mtime=0) + b"\x00" * 300)
    assert result.findings == ()


def test_truncated_stream_is_malformed_and_the_start_scanned(capture: Capture) -> None:
    content = b"CAPTURE " + bytes(range(256)) * 400
    data = gzip.compress(content, compresslevel=1, mtime=0)
    result = scan_bytes(data[: len(data) // 2], "x.gz")
    assert "scan.compressed.malformed" in finding_ids(result)
    seen = capture.seen["x.gz!x"]
    assert content.startswith(seen) and 0 < len(seen) < len(content)


def test_corrupt_stream_is_malformed_not_an_error() -> None:
    data = bytearray(bz2.compress(README * 100))
    data[20:40] = b"\x00" * 20
    result = scan_bytes(bytes(data))
    assert "scan.compressed.malformed" in finding_ids(result)
    assert "scan.error" not in finding_ids(result)


def test_tar_gz_reaches_tar_members(capture: Capture) -> None:
    data = gzip.compress(tar_bytes([("m/w.bin", b"CAPTURE deep")]), mtime=0)
    result = scan_bytes(data, "model.tgz")
    assert result.findings == ()
    assert capture.seen == {"model.tgz!model.tar!m/w.bin": b"CAPTURE deep"}


@pytest.mark.skipif(
    importlib.util.find_spec("zstandard") is not None, reason="zstandard is installed"
)
def test_zstd_without_the_module_is_an_unanalysed_finding() -> None:
    result = scan_bytes(b"\x28\xb5\x2f\xfd" + b"\x00" * 32, "x.zst")
    assert one_finding(result, "scan.compressed.unsupported").severity == Severity.MEDIUM


class _FakeZstd:
    """Stands in for the ``zstandard`` module: the "frame" after the magic is the content."""

    class ZstdError(Exception):
        pass

    class ZstdDecompressor:
        def stream_reader(
            self, source: BinaryIO, read_across_frames: bool = False, closefd: bool = True
        ) -> io.BytesIO:
            assert read_across_frames and not closefd
            raw = source.read()
            if raw[4:9] == b"BROKE":
                raise _FakeZstd.ZstdError("corrupt frame")
            return io.BytesIO(raw[4:])


def test_zstd_with_the_module_is_decompressed_and_scanned(
    capture: Capture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(compressed_mod, "_zstd_module", lambda: _FakeZstd)
    result = scan_bytes(b"\x28\xb5\x2f\xfdCAPTURE z", "w.bin.zst")
    assert result.findings == ()
    assert capture.seen == {"w.bin.zst!w.bin": b"CAPTURE z"}
    broken = scan_bytes(b"\x28\xb5\x2f\xfdBROKE", "x.zst")
    assert "scan.compressed.malformed" in finding_ids(broken)


# --- 7z -----------------------------------------------------------------------------------


def test_seven_zip_members_are_scanned(capture: Capture) -> None:
    data = seven_zip_bytes({"a/w.bin": b"CAPTURE one", "r.txt": README, "b": b"CAPTURE two"})
    result = scan_bytes(data, "m.7z")
    assert result.findings == ()
    assert capture.seen == {"m.7z!a/w.bin": b"CAPTURE one", "m.7z!b": b"CAPTURE two"}


def test_seven_zip_unsafe_name_is_high_and_safe_members_still_scanned(capture: Capture) -> None:
    data = seven_zip_with_name({"xx/a.bin": b"CAPTURE no", "ok.bin": b"CAPTURE ok"}, "xx/", "../")
    result = scan_bytes(data, "m.7z")
    f = one_finding(result, "scan.sevenzip.path-traversal")
    assert f.evidence["member"] == "../a.bin"
    assert capture.seen == {"m.7z!ok.bin": b"CAPTURE ok"}


@pytest.mark.parametrize("header_encryption", [False, True])
def test_encrypted_seven_zip_is_high(header_encryption: bool) -> None:
    data = seven_zip_bytes(
        {"w.bin": README}, password="secret", header_encryption=header_encryption
    )
    result = scan_bytes(data)
    assert one_finding(result, "scan.sevenzip.encrypted").severity == Severity.HIGH


def test_damaged_seven_zip_is_malformed_not_an_error() -> None:
    data = bytearray(seven_zip_bytes({"w.bin": README * 20}))
    data[40:60] = b"\xff" * 20
    result = scan_bytes(bytes(data))
    assert result.findings
    assert {f.id for f in result.findings} <= {
        "scan.sevenzip.malformed",
        "scan.sevenzip.bad-crc",
    }


def test_seven_zip_bomb_is_stopped() -> None:
    data = seven_zip_bytes({"zeros.bin": bytes(16 << 20)})
    assert len(data) < 100_000
    result = scan_bytes(data)
    assert one_finding(result, "scan.archive.bomb").severity == Severity.HIGH
