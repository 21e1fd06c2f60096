"""Fuzzing the container scanners: mutated and truncated archives never crash them.

Every mutation of a valid zip, tar, gzip/bzip2/xz stream or 7z archive must scan without
raising, without a ``scan.error`` from a container scanner (damage is a precise finding), and
without spending more than the limits allow.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import struct
import tarfile
import zipfile
import zlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.supplychain.corpus.archives import README, Member, evil_pickle, raw_zip

from warden.supplychain.formats.compressed import OUT_CHUNK
from warden.supplychain.scanner import ScanContext, ScanLimits

py7zr = pytest.importorskip("py7zr")

LIMITS = ScanLimits(
    max_seconds=10.0,
    max_members=40,
    max_member_bytes=1 << 20,
    max_total_bytes=4 << 20,
)
CONTAINERS = {"zip", "zip-tail", "tar", "7z", "gzip", "bzip2", "xz", "lzma", "zstd"}
PAYLOAD = evil_pickle("/nonexistent-warden-canary/fuzz")


def _zip(method: int) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", method) as zf:
        zf.writestr("readme.txt", README)
        zf.writestr("data.pkl", PAYLOAD)
        zf.writestr("inner.zip", raw_zip([Member("w.pkl", PAYLOAD, 8)]))
    return buf.getvalue()


def _tar() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for name, data in (("readme.txt", README), ("model/data.pkl", PAYLOAD)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _seven_zip(*, encoded_header: bool = True) -> bytes:
    buf = io.BytesIO()
    sz = py7zr.SevenZipFile(buf, "w")
    sz.encoded_header_mode = encoded_header
    sz.writestr(README, "readme.txt")
    sz.writestr(PAYLOAD, "data.pkl")
    sz.close()
    return buf.getvalue()


SEEDS: dict[str, bytes] = {
    "zip-deflate": _zip(zipfile.ZIP_DEFLATED),
    "zip-stored": _zip(zipfile.ZIP_STORED),
    "zip-raw": raw_zip([Member("a.txt", README, 8), Member("b.pkl", PAYLOAD)], zip64=True),
    "tar": _tar(),
    "tar.gz": gzip.compress(_tar(), mtime=0),
    "bz2": bz2.compress(PAYLOAD + README),
    "xz": lzma.compress(README + PAYLOAD),
    "7z": _seven_zip(),
    "7z-plain-header": _seven_zip(encoded_header=False),
}


@st.composite
def mutated(draw: st.DrawFn, seeds: tuple[str, ...]) -> bytes:
    """A seed archive with byte edits, an insertion, a deletion and/or a truncation."""
    data = bytearray(SEEDS[draw(st.sampled_from(seeds))])
    for _ in range(draw(st.integers(0, 6))):
        pos = draw(st.integers(0, len(data) - 1))
        data[pos] = draw(st.integers(0, 255))
    if draw(st.booleans()):
        pos = draw(st.integers(0, len(data)))
        data[pos:pos] = draw(st.binary(min_size=1, max_size=32))
    if draw(st.booleans()):
        start = draw(st.integers(0, len(data) - 1))
        del data[start : start + draw(st.integers(1, 64))]
    if draw(st.integers(0, 3)) == 0:
        data = data[: draw(st.integers(0, len(data)))]
    return bytes(data)


def _check(data: bytes) -> None:
    ctx = ScanContext("fuzz", LIMITS)
    findings = list(ctx.scan_member("sample", io.BytesIO(data)))
    errors = [
        (f.title, f.evidence.get("format"))
        for f in findings
        if f.id == "scan.error" and f.evidence.get("format") in CONTAINERS
    ]
    assert errors == []
    assert ctx.budget is not None
    assert ctx.budget.members <= LIMITS.max_members + 1
    assert ctx.budget.total_bytes <= LIMITS.max_total_bytes + 2 * OUT_CHUNK


FUZZ = settings(
    max_examples=900,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@FUZZ
@given(mutated(("zip-deflate", "zip-stored", "zip-raw")))
def test_mutated_zips_never_crash(data: bytes) -> None:
    _check(data)


@FUZZ
@given(mutated(("tar", "tar.gz")))
def test_mutated_tars_never_crash(data: bytes) -> None:
    _check(data)


@FUZZ
@given(mutated(("bz2", "xz", "tar.gz")))
def test_mutated_compressed_streams_never_crash(data: bytes) -> None:
    _check(data)


@settings(FUZZ, max_examples=500)
@given(mutated(("7z", "7z-plain-header")))
def test_mutated_seven_zips_never_crash(data: bytes) -> None:
    _check(data)


def _repair_seven_zip_crcs(data: bytearray) -> bytes:
    """Recompute the start-header and next-header CRCs so py7zr parses the edited header."""
    if len(data) >= 32:
        offset, size = struct.unpack_from("<QQ", data, 12)
        if 32 + offset + size <= len(data):
            struct.pack_into("<I", data, 28, zlib.crc32(data[32 + offset : 32 + offset + size]))
        struct.pack_into("<I", data, 8, zlib.crc32(data[12:32]))
    return bytes(data)


@settings(FUZZ, max_examples=600)
@given(
    st.sampled_from(("7z", "7z-plain-header")),
    st.lists(st.tuples(st.integers(0, 1 << 16), st.integers(0, 255)), min_size=1, max_size=4),
)
def test_seven_zip_headers_edited_behind_valid_crcs_never_crash(
    seed: str, edits: list[tuple[int, int]]
) -> None:
    data = bytearray(SEEDS[seed])
    offset, size = struct.unpack_from("<QQ", data, 12)
    for pos, value in edits:
        data[32 + offset + pos % size] = value
    _check(_repair_seven_zip_crcs(data))
