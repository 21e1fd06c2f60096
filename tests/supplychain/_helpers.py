"""Helpers shared by the scanner tests: a capturing format scanner and finding look-ups."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import BinaryIO, TypeVar

from warden.assess.finding import Finding
from warden.supplychain.scanner import (
    FileScan,
    FormatScanner,
    ScanContext,
    format_names,
    register_format,
    unregister_format,
)

__all__ = ["Capture", "finding_ids", "one_finding", "registered"]

_S = TypeVar("_S", bound=FormatScanner)


class Capture:
    """Records the content of every stream that starts with ``CAPTURE``."""

    name = "test-capture"

    def __init__(self) -> None:
        self.seen: dict[str, bytes] = {}

    def sniff(self, head: bytes) -> bool:
        return head.startswith(b"CAPTURE")

    def scan(self, stream: BinaryIO, ctx: ScanContext) -> Iterator[Finding]:
        self.seen[ctx.path] = stream.read()
        yield from ()


@contextmanager
def registered(scanner: _S) -> Iterator[_S]:
    """``scanner`` registered (after the built-ins) for the duration of the block."""
    format_names()
    register_format(scanner)
    try:
        yield scanner
    finally:
        unregister_format(scanner.name)


def finding_ids(result: FileScan) -> set[str]:
    """The distinct finding ids of a scan."""
    return {f.id for f in result.findings}


def one_finding(result: FileScan, rule: str) -> Finding:
    """The only finding with id ``rule`` (fails when there is none or more than one)."""
    found = [f for f in result.findings if f.id == rule]
    assert len(found) == 1, [f.id for f in result.findings]
    return found[0]
