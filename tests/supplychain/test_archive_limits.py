"""Limits inside containers: depth, member count, ratio, total bytes, member size, time."""

from __future__ import annotations

import bz2
import gzip
import lzma
import random
from collections.abc import Callable, Iterator
from typing import BinaryIO

import pytest
from tests.supplychain._helpers import registered
from tests.supplychain.corpus.archives import (
    README,
    Member,
    raw_zip,
    seven_zip_bytes,
    tar_bytes,
    zip_bytes,
)

from warden.assess.finding import Finding, Severity
from warden.supplychain.scanner import (
    FileScan,
    ScanContext,
    ScanLimits,
    scan_bytes,
)

py7zr = pytest.importorskip("py7zr")


def _ids(result: FileScan) -> list[str]:
    return [f.id for f in result.findings]


ZEROS = bytes(16 << 20)
"""Compresses a thousandfold and more: past the ratio floor and any sane max_ratio."""

BOMBS: dict[str, Callable[[], bytes]] = {
    "zip": lambda: zip_bytes({"zeros.bin": ZEROS}),
    "gzip": lambda: gzip.compress(ZEROS, mtime=0),
    "bzip2": lambda: bz2.compress(ZEROS),
    "xz": lambda: lzma.compress(ZEROS),
    "7z": lambda: seven_zip_bytes({"zeros.bin": ZEROS}),
}


@pytest.mark.parametrize("kind", sorted(BOMBS))
def test_decompression_bombs_are_high_findings(kind: str) -> None:
    data = BOMBS[kind]()
    assert len(data) < 100_000
    result = scan_bytes(data, f"bomb.{kind}")
    bombs = [f for f in result.findings if f.id == "scan.archive.bomb"]
    assert len(bombs) == 1, _ids(result)
    assert bombs[0].severity == Severity.HIGH


def test_ratio_limit_applies_to_ordinary_data_too() -> None:
    hexed = random.Random(0).randbytes(5 << 20).hex().encode()  # 10 MiB that deflates about 2:1
    data = zip_bytes({"w.txt": hexed})
    assert "scan.archive.bomb" not in _ids(scan_bytes(data))
    result = scan_bytes(data, limits=ScanLimits(max_ratio=1.5))
    assert "scan.archive.bomb" in _ids(result)


def test_overlapping_members_cannot_multiply_output() -> None:
    # one 2 MiB-of-zeros local header referenced by 200 directory records
    members = [Member("z0", bytes(2 << 20), 8)]
    members += [Member(f"z{i}", b"", 8, alias_of=0) for i in range(1, 200)]
    result = scan_bytes(raw_zip(members))
    assert "scan.zip.overlap" in _ids(result)
    assert "scan.archive.bomb" not in _ids(result)  # each copy is not decompressed again


def test_total_decompressed_bytes_are_bounded() -> None:
    data = gzip.compress(README * 1000, mtime=0)
    result = scan_bytes(data, limits=ScanLimits(max_total_bytes=10_000))
    bomb = [f for f in result.findings if f.id == "scan.archive.bomb"]
    assert bomb and "max_total_bytes" in bomb[0].title


@pytest.mark.parametrize(
    "make",
    [
        lambda b: zip_bytes({"w.bin": b}),
        lambda b: gzip.compress(b, mtime=0),
        lambda b: seven_zip_bytes({"w.bin": b}),
    ],
)
def test_member_bigger_than_max_member_bytes_is_not_analysed(
    make: Callable[[bytes], bytes],
) -> None:
    result = scan_bytes(make(README * 100), limits=ScanLimits(max_member_bytes=1000))
    too = [f for f in result.findings if f.id == "scan.archive.member-too-large"]
    assert len(too) == 1, _ids(result)
    assert too[0].severity == Severity.MEDIUM


@pytest.mark.parametrize(
    "make",
    [
        lambda files: zip_bytes(files),
        lambda files: tar_bytes(files.items()),
        lambda files: seven_zip_bytes(files),
    ],
)
def test_member_count_is_bounded(make: Callable[[dict[str, bytes]], bytes]) -> None:
    data = make({f"m{i}.txt": README for i in range(20)})
    result = scan_bytes(data, limits=ScanLimits(max_members=5))
    assert "scan.archive.too-many-members" in _ids(result)


def test_nesting_beyond_max_depth_is_a_finding() -> None:
    data = README
    for level in range(8):
        data = zip_bytes({f"level{level}.zip": data}) if level % 2 else gzip.compress(data, mtime=0)
    result = scan_bytes(data, "deep", limits=ScanLimits(max_depth=3))
    depth = [f for f in result.findings if f.id == "scan.limit.depth"]
    assert len(depth) == 1
    assert str(depth[0].evidence["path"]).count("!") == 4


def test_tiny_time_budget_is_a_finding() -> None:
    result = scan_bytes(zip_bytes({"a.txt": README}), limits=ScanLimits(max_seconds=1e-9))
    assert _ids(result) == ["scan.limit.time"]


class _Cancel:
    """Spends the scan's time budget when it sees a member starting with ``CANCEL``."""

    name = "test-limits-cancel"

    def __init__(self) -> None:
        self.seen: list[str] = []

    def sniff(self, head: bytes) -> bool:
        return head.startswith(b"CANCEL")

    def scan(self, stream: BinaryIO, ctx: ScanContext) -> Iterator[Finding]:
        self.seen.append(ctx.path)
        assert ctx.budget is not None
        ctx.budget.deadline = 0.0  # the time budget is spent from here on
        yield from ()


@pytest.fixture
def cancel() -> Iterator[_Cancel]:
    with registered(_Cancel()) as c:
        yield c


@pytest.mark.parametrize(
    "make",
    [
        lambda files: zip_bytes(files),
        lambda files: tar_bytes(files.items()),
        lambda files: seven_zip_bytes(files),
    ],
)
def test_time_budget_stops_the_member_loop(
    cancel: _Cancel, make: Callable[[dict[str, bytes]], bytes]
) -> None:
    data = make({f"m{i}": b"CANCEL" for i in range(10)})
    result = scan_bytes(data, "a")
    assert "scan.limit.time" in _ids(result)
    assert len(cancel.seen) == 1
