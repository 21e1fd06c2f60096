"""Tar archives (ustar, GNU, pax and old v7 headers), scanned member by member, never extracted.

:mod:`tarfile` parses the headers (it only reads header blocks while iterating, so a large tar
costs a few reads per member); each regular member's bytes are then scanned in place through a
window on the archive (:class:`~warden.supplychain.formats.compressed.StreamView`), so nothing
is copied and a member no scanner wants costs one head read. Compressed tars arrive here already
decompressed by :mod:`warden.supplychain.formats.compressed`.

Names that escape the extraction directory, links, device nodes, sparse members, damaged or
truncated headers and duplicate names are findings.
"""

from __future__ import annotations

import logging
import tarfile
from collections.abc import Iterator
from typing import Any, BinaryIO

from warden.assess.finding import Finding, Severity
from warden.supplychain.formats.compressed import (
    StreamView,
    buffered,
    stream_size,
    unsafe_name,
)
from warden.supplychain.scanner import FormatScanner, ScanContext

__all__ = ["SCANNERS", "TarScanner", "header_checksum_ok"]

log = logging.getLogger(__name__)

BLOCK = 512
_SPECIAL = {
    tarfile.CHRTYPE: "character device",
    tarfile.BLKTYPE: "block device",
    tarfile.FIFOTYPE: "named pipe",
}


def _octal(field: bytes) -> int | None:
    """A tar numeric field (octal digits padded with NUL or space), or ``None``."""
    text = field.replace(b"\x00", b" ").strip()
    if not text or any(c not in b"01234567" for c in text):
        return None
    return int(text, 8)


_LOW_BYTES = bytes(range(128))


def header_checksum_ok(block: bytes) -> bool:
    """Whether ``block`` is a tar header with a valid checksum (how v7 tars are recognised)."""
    if len(block) < BLOCK or block[0] == 0:
        return False
    declared = _octal(block[148:156])
    if declared is None:
        return False
    hdr = block[:148] + b" " * 8 + block[156:BLOCK]
    unsigned = sum(hdr)
    signed = unsigned - 256 * len(hdr.translate(None, _LOW_BYTES))  # bytes > 127 as negative
    return declared in (unsigned, signed)


class TarScanner:
    """Tar by magic (``ustar`` at offset 257) or, for v7 tars, by header checksum."""

    name = "tar"

    def sniff(self, head: bytes) -> bool:
        if len(head) < BLOCK:
            return False
        if head[257:262] == b"ustar":
            return True
        return header_checksum_ok(head)

    def scan(self, stream: BinaryIO, ctx: ScanContext) -> Iterator[Finding]:
        size = stream_size(stream)
        try:
            tf = tarfile.open(fileobj=stream, mode="r:")  # noqa: SIM115 - closed below
        except Exception as exc:  # noqa: BLE001 - tarfile raises many types on bad input
            yield _malformed(ctx, f"not a readable tar ({type(exc).__name__}: {exc})")
            return
        try:
            yield from _scan_members(tf, stream, ctx, size)
        finally:
            tf.close()


def _finding(
    ctx: ScanContext, rule: str, severity: Severity, title: str, summary: str, **ev: Any
) -> Finding:
    return ctx.finding(
        rule, severity, title[:300], summary=summary, evidence={"format": "tar", **ev}
    )


def _malformed(ctx: ScanContext, why: str, **ev: Any) -> Finding:
    return _finding(
        ctx,
        "tar.malformed",
        Severity.MEDIUM,
        f"tar structure is damaged or unusual: {why}",
        "Tools disagree on damaged or sparse tar members (some stop, some skip, some "
        "reconstruct), so a loader may see content a scanner does not.",
        **ev,
    )


def _scan_members(
    tf: tarfile.TarFile, stream: BinaryIO, ctx: ScanContext, size: int
) -> Iterator[Finding]:
    seen: dict[str, int] = {}
    while True:
        ctx.check_time()
        try:
            m = tf.next()
        except Exception as exc:  # noqa: BLE001 - tarfile raises many types on bad input
            yield _malformed(
                ctx,
                f"header at offset {tf.offset} cannot be read ({type(exc).__name__}: {exc}); "
                "later members were not analysed",
                offset=tf.offset,
            )
            return
        if m is None:
            break
        ctx.count_member()
        seen[m.name] = seen.get(m.name, 0) + 1
        display = m.name if seen[m.name] == 1 else f"{m.name}#{seen[m.name]}"
        yield from _member(m, stream, ctx, size, display, seen[m.name])
        if tf.offset > size:
            return  # this member ran past the end of the file (reported as truncated)
    yield from _check_end(stream, ctx, tf.offset, size)


def _member(
    m: tarfile.TarInfo,
    stream: BinaryIO,
    ctx: ScanContext,
    size: int,
    display: str,
    copy: int,
) -> Iterator[Finding]:
    ev: dict[str, Any] = {"member": m.name, "offset": m.offset}
    why = unsafe_name(m.name)
    if why:
        yield _finding(
            ctx,
            "tar.path-traversal",
            Severity.HIGH,
            f"member name {m.name!r} escapes the extraction directory ({why})",
            "Extracting this archive with a naive tool writes outside the target directory, "
            "for example over a Python file that is later imported.",
            reason=why,
            **ev,
        )
    if copy == 2:
        yield _finding(
            ctx,
            "tar.duplicate-name",
            Severity.MEDIUM,
            f"more than one member is named {m.name!r}",
            "Extraction keeps the last copy while a reader that stops at the first sees "
            "another; every copy is scanned.",
            **ev,
        )
    if m.issym() or m.islnk():
        kind = "symlink" if m.issym() else "hardlink"
        target_why = unsafe_name(m.linkname)
        yield _finding(
            ctx,
            f"tar.{kind}",
            Severity.MEDIUM,
            f"member {m.name!r} is a {kind} to {m.linkname!r}",
            "Links in a model archive let extraction or a loader reach files outside the "
            "archive (or overwrite them through a later member of the same name).",
            target=m.linkname,
            **ev,
        )
        if target_why:
            yield _finding(
                ctx,
                "tar.path-traversal",
                Severity.HIGH,
                f"{kind} {m.name!r} points outside the extraction directory ({target_why})",
                "A link to an absolute or parent path lets extraction write or read outside "
                "the target directory.",
                target=m.linkname,
                reason=target_why,
                **ev,
            )
        return
    if m.type in _SPECIAL:
        yield _finding(
            ctx,
            "tar.special-file",
            Severity.MEDIUM,
            f"member {m.name!r} is a {_SPECIAL[m.type]}",
            "Device nodes and pipes have no place in a model archive; extracting them as root "
            "creates them on the host.",
            **ev,
        )
        return
    if m.issparse():
        yield _malformed(
            ctx,
            f"member {m.name!r} is sparse (its holes are synthesised on extraction); its "
            "content was not analysed",
            **ev,
        )
        return
    if m.isdir() or m.size <= 0:
        return
    if m.type not in tarfile.REGULAR_TYPES and m.type in tarfile.SUPPORTED_TYPES:
        return
    start = m.offset_data
    avail = max(0, min(m.size, size - start))
    if avail < m.size:
        yield _malformed(
            ctx, f"member {m.name!r} is truncated ({avail} of {m.size} bytes present)", **ev
        )
    if avail:
        yield from ctx.scan_member(display, buffered(StreamView(stream, start, avail)))


def _check_end(stream: BinaryIO, ctx: ScanContext, offset: int, size: int) -> Iterator[Finding]:
    """Iteration stops quietly at a bad header; a non-zero block there hides later members."""
    if offset >= size:
        return
    stream.seek(offset)
    block = stream.read(BLOCK)
    if len(block) == BLOCK and block.strip(b"\x00"):
        yield _malformed(
            ctx,
            f"invalid header at offset {offset}; the {size - offset} bytes from there on were "
            "not analysed",
            offset=offset,
        )


SCANNERS: list[FormatScanner] = [TarScanner()]
