"""Zip archives (PyTorch checkpoints, Keras v3, npz, plain zips), parsed at the raw level.

Loaders disagree about zip files, and published scanner bypasses live in those disagreements:
Python's ``zipfile`` refuses a member whose encryption bit is set, whose CRC is wrong or whose
local-header name differs from its central-directory name, while PyTorch's C++ reader (miniz)
ignores all three and loads the member. So this module reads the structure itself (end record,
ZIP64 records, central directory, local headers) and decompresses members with zlib/bz2/lzma
directly from the local header's data offset, whatever the flags say. Every oddity is a finding,
and every member is still scanned by content:

- stored members are scanned in place through an O(1)-seek window (nothing copied; a member no
  scanner wants costs one 4 KiB head read), compressed members are decompressed into memory in
  bounded steps (ratio, total bytes and ``max_member_bytes`` enforced while streaming);
- a file with a zip end record behind another format's content (a pickle that is also a zip)
  is a polyglot: :class:`ZipTailScanner` finds those with one 64 KiB read at the end.
"""

from __future__ import annotations

import bz2
import logging
import lzma
import re
import stat
import struct
import zlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from warden.assess.finding import Finding, Severity
from warden.supplychain.formats.compressed import (
    RATIO_FLOOR,
    TOO_LARGE,
    BombError,
    Meter,
    StreamView,
    buffered,
    decode,
    describe_head,
    stream_size,
    unsafe_name,
)
from warden.supplychain.scanner import (
    HEAD_BYTES,
    FormatScanner,
    ScanContext,
    ScanLimitExceeded,
)

__all__ = [
    "SCANNERS",
    "EndRecord",
    "Entry",
    "LocalHeader",
    "ZipScanner",
    "ZipTailScanner",
    "find_end",
    "read_central",
    "read_local",
    "walk_local",
]

log = logging.getLogger(__name__)

_EOCD = struct.Struct("<4sHHHHIIH")
_LOC64 = struct.Struct("<4sIQI")
_EOCD64 = struct.Struct("<4sQHHIIQQQQ")
_CEN = struct.Struct("<4sHHHHHHIIIHHHHHII")
_LOC = struct.Struct("<4sHHHHHIIIHH")
_SIG_EOCD = b"PK\x05\x06"
_SIG_LOC64 = b"PK\x06\x07"
_SIG_EOCD64 = b"PK\x06\x06"
_SIG_CEN = b"PK\x01\x02"
_SIG_LOC = b"PK\x03\x04"
_ANY_SIG = re.compile(rb"PK(?:\x01\x02|\x03\x04|\x05\x06|\x06\x06|\x07\x08)")

TAIL_BYTES = _EOCD.size + 0xFFFF
"""How far from the end an end record can start (record + longest comment)."""
MAX_CENTRAL_ENTRIES = 1 << 22
"""Central-directory records parsed at most (the member limit normally stops far earlier)."""
CRC_ALWAYS = 64 << 10
"""Stored members up to this size get their CRC checked even when no scanner read them;
bigger ones (tensor data) only when a scanner read past their head, so scan time follows what
is parsed, not the tensor bytes. A CRC matters where content is interpreted: every member a
scanner consumed is checked."""
CRC_CONSUMED = 256 << 10
"""A stored member counts as read by a scanner once this much was read in order."""

MEMBER_TAIL_LIMIT = 64 << 10
"""Archive members larger than this are not checked for a zip hidden at their tail (a 64 KiB
read per tensor would make checkpoint scans grow with their tensor count × 64 KiB); top-level
files always are."""

STORED, DEFLATED, BZIP2, LZMA, AES = 0, 8, 12, 14, 99
FLAG_ENCRYPTED = 0x0001
FLAG_DESCRIPTOR = 0x0008
FLAG_UTF8 = 0x0800
FLAG_ODD = 0xF7F0
"""Flag bits a model file has no business setting: 4 (enhanced deflate), 5 (patched data),
6 (strong encryption), 7-10 and 12 (unused), 13 (masked local headers), 14-15 (reserved)."""
_UNIX = (3, 19)
"""``create_system`` values whose external attributes carry a unix mode (unix, macOS)."""


# --- structure --------------------------------------------------------------------------


@dataclass(frozen=True)
class EndRecord:
    """The end-of-central-directory record (ZIP64 resolved)."""

    offset: int
    """Absolute position of the record."""
    base: int
    """Bytes in front of the zip data proper: the directory's offsets are relative to it."""
    cd_start: int
    """Absolute position of the central directory."""
    cd_size: int
    """Declared size of the central directory."""
    entries: int
    """Declared number of central-directory records."""
    zip64: bool
    """The ZIP64 end records were used."""
    trailing: int
    """Bytes after the record and its comment."""
    multi_disk: bool
    """The record declares a split (multi-disk) archive."""


@dataclass(frozen=True)
class _MemberHeader:
    """What the central directory and a local header both record about a member."""

    raw_name: bytes
    """The name as stored (loaders that read local headers use the local one)."""
    flags: int
    """General-purpose flag bits."""
    method: int
    """Compression method (0 stored, 8 deflate, 12 bzip2, 14 lzma, 99 AES)."""
    crc: int
    """Declared CRC-32 of the content (in a local header, zero when bit 3 defers it to a data
    descriptor)."""
    compressed_size: int
    """Declared compressed size, ZIP64 resolved: what loaders read (in a local header, zero
    when deferred)."""
    uncompressed_size: int
    """Declared content size, ZIP64 resolved (in a local header, zero when deferred)."""


@dataclass(frozen=True)
class Entry(_MemberHeader):
    """One member as the central directory (or, for unlisted members, a local header) says."""

    name: str
    """Decoded name (UTF-8 when flag bit 11 is set, else cp437)."""
    header_offset: int
    """Absolute position of the member's local header."""
    external_attr: int = 0
    """External attributes (unix mode in the high 16 bits)."""
    create_system: int = 0
    """Host system that wrote the entry (3 = unix)."""
    listed: bool = True
    """Listed in the central directory (``False``: found only by walking local headers)."""

    @property
    def is_symlink(self) -> bool:
        """A unix symlink (its content is the link target)."""
        return self.create_system in _UNIX and stat.S_ISLNK(self.external_attr >> 16)


@dataclass(frozen=True)
class LocalHeader(_MemberHeader):
    """A local file header, which precedes each member's data."""

    offset: int
    """Absolute position of the header."""
    data_offset: int
    """Absolute position of the member's data."""


def _decode_name(raw: bytes, flags: int) -> str:
    return raw.decode("utf-8", "replace") if flags & FLAG_UTF8 else raw.decode("cp437")


def _zip64_extra(extra: bytes, values: list[int], widths: list[int]) -> list[int]:
    """Replace saturated ``values`` (all-ones at their ``widths`` in bytes) from the ZIP64
    extra field, in order; others are kept."""
    pos = 0
    while pos + 4 <= len(extra):
        tag, size = struct.unpack_from("<HH", extra, pos)
        body = extra[pos + 4 : pos + 4 + size]
        pos += 4 + size
        if tag != 0x0001:
            continue
        out, at = list(values), 0
        for i, (v, w) in enumerate(zip(values, widths, strict=True)):
            if v == (1 << (8 * w)) - 1:
                n = 8 if w >= 4 else 4
                if at + n > len(body):
                    break
                out[i] = int.from_bytes(body[at : at + n], "little")
                at += n
        return out
    return values


def _read_at(stream: BinaryIO, pos: int, n: int) -> bytes:
    stream.seek(pos)
    return stream.read(n)


def find_end(stream: BinaryIO, size: int, *, strict: bool) -> EndRecord | None:
    """Locate and resolve the end record in the last 64 KiB + 22 bytes, or ``None``.

    With ``strict`` (a file that does not start like a zip) a candidate only counts when the
    central directory it points to really starts with a directory record, or, for an empty
    directory, when the comment length ends exactly at the end of the file.
    """
    tail_start = max(0, size - TAIL_BYTES)
    tail = _read_at(stream, tail_start, size - tail_start)
    idx = len(tail)
    while True:
        idx = tail.rfind(_SIG_EOCD, 0, idx)
        if idx < 0:
            return None
        rec = _parse_end(stream, size, tail, idx, tail_start, strict=strict)
        if rec is not None:
            return rec


def _parse_end(
    stream: BinaryIO, size: int, tail: bytes, idx: int, tail_start: int, *, strict: bool
) -> EndRecord | None:
    if idx + _EOCD.size > len(tail):
        return None
    _, disk, cd_disk, _n_disk, entries, cd_size, cd_offset, comment_len = _EOCD.unpack_from(
        tail, idx
    )
    pos = tail_start + idx
    trailing = size - (pos + _EOCD.size + comment_len)
    if strict and trailing < 0:
        return None
    zip64 = False
    multi = disk != 0 or cd_disk != 0
    record_end = pos
    if 0xFFFF in (entries, disk, cd_disk) or 0xFFFFFFFF in (cd_size, cd_offset):
        loc = _read_at(stream, pos - _LOC64.size, _LOC64.size) if pos >= _LOC64.size else b""
        if len(loc) == _LOC64.size and loc.startswith(_SIG_LOC64):
            _, _disk64, rec_offset, disks = _LOC64.unpack(loc)
            rec_pos = pos - _LOC64.size - _EOCD64.size
            rec = _read_at(stream, rec_pos, _EOCD64.size) if rec_pos >= 0 else b""
            if not rec.startswith(_SIG_EOCD64) and 0 <= rec_offset < size:
                rec_pos = rec_offset
                rec = _read_at(stream, rec_pos, _EOCD64.size)
            if len(rec) == _EOCD64.size and rec.startswith(_SIG_EOCD64):
                fields = _EOCD64.unpack(rec)
                entries, cd_size, cd_offset = fields[7], fields[8], fields[9]
                multi = multi and (fields[4] != 0 or fields[5] != 0 or disks > 1)
                zip64 = True
                record_end = rec_pos
    if cd_size > record_end:
        return None
    bases = [record_end - cd_size - cd_offset]
    if bases[0] != 0:
        bases.append(0)
    for base in bases:
        if base < 0:
            continue
        cd_start = base + cd_offset
        if cd_start + cd_size > record_end:
            continue
        if entries == 0 and cd_size == 0:
            if strict and trailing != 0:
                return None
        elif _read_at(stream, cd_start, 4) != _SIG_CEN:
            continue
        return EndRecord(pos, base, cd_start, cd_size, entries, zip64, trailing, multi)
    if strict:
        return None
    base = max(0, bases[0])
    return EndRecord(pos, base, base + cd_offset, cd_size, entries, zip64, trailing, multi)


def read_central(
    stream: BinaryIO, end: EndRecord, size: int, ctx: ScanContext
) -> tuple[list[Entry], str]:
    """Parse the central directory; returns the entries read and an error message (or ``""``)
    describing where parsing stopped early."""
    entries: list[Entry] = []
    stop = min(end.cd_start + end.cd_size, size)
    pos = end.cd_start
    stream.seek(pos)
    cap = min(MAX_CENTRAL_ENTRIES, ctx.limits.max_members + 1)
    while pos < stop:
        if len(entries) >= cap:
            return entries, f"more than {cap} directory records"
        if len(entries) % 1024 == 1023:
            ctx.check_time()
        fixed = stream.read(_CEN.size)
        if len(fixed) < _CEN.size or not fixed.startswith(_SIG_CEN):
            if fixed.startswith((_SIG_EOCD, _SIG_EOCD64)):
                break
            return entries, f"no directory record at offset {pos}"
        (
            _,
            made_by,
            _need,
            flags,
            method,
            _time,
            _date,
            crc,
            csize,
            usize,
            n_name,
            n_extra,
            n_comment,
            _disk,
            _int_attr,
            ext_attr,
            rel_offset,
        ) = _CEN.unpack(fixed)
        var = stream.read(n_name + n_extra + n_comment)
        if len(var) < n_name + n_extra + n_comment:
            return entries, f"directory record at offset {pos} is truncated"
        raw = var[:n_name]
        usize, csize, rel_offset = _zip64_extra(
            var[n_name : n_name + n_extra], [usize, csize, rel_offset], [4, 4, 4]
        )
        entries.append(
            Entry(
                name=_decode_name(raw, flags),
                raw_name=raw,
                flags=flags,
                method=method,
                crc=crc,
                compressed_size=csize,
                uncompressed_size=usize,
                header_offset=end.base + rel_offset,
                external_attr=ext_attr,
                create_system=made_by >> 8,
            )
        )
        pos += _CEN.size + len(var)
    if len(entries) != end.entries and not (end.entries == 0xFFFF and len(entries) > 0xFFFF):
        return entries, f"end record declares {end.entries} entries, directory holds {len(entries)}"
    return entries, ""


def read_local(stream: BinaryIO, offset: int, size: int) -> LocalHeader | None:
    """The local header at ``offset``, or ``None`` when there is none."""
    if offset < 0 or offset + _LOC.size > size:
        return None
    fixed = _read_at(stream, offset, _LOC.size)
    if len(fixed) < _LOC.size or not fixed.startswith(_SIG_LOC):
        return None
    _, _need, flags, method, _time, _date, crc, csize, usize, n_name, n_extra = _LOC.unpack(fixed)
    var = stream.read(n_name + n_extra)
    if len(var) < n_name + n_extra:
        return None
    usize, csize = _zip64_extra(var[n_name:], [usize, csize], [4, 4])
    data_offset = offset + _LOC.size + n_name + n_extra
    return LocalHeader(var[:n_name], flags, method, crc, csize, usize, offset, data_offset)


def _next_signature(stream: BinaryIO, start: int, stop: int, ctx: ScanContext) -> int:
    """Position of the next zip record signature in ``[start, stop)``, else ``stop``."""
    pos = start
    while pos < stop:
        ctx.check_time()
        chunk = _read_at(stream, pos, min(1 << 20, stop - pos))
        if not chunk:
            break
        m = _ANY_SIG.search(chunk)
        if m:
            return pos + m.start()
        if len(chunk) < 4:
            break
        pos += len(chunk) - 3
    return stop


def walk_local(
    stream: BinaryIO, start: int, stop: int, size: int, ctx: ScanContext
) -> list[tuple[Entry, LocalHeader]]:
    """Members found by walking local headers from ``start`` (as a streaming reader would).

    A member whose sizes are deferred to a data descriptor (flag bit 3) is taken to run up to
    the next zip signature.
    """
    out: list[tuple[Entry, LocalHeader]] = []
    pos = start
    while pos + _LOC.size <= stop and len(out) <= ctx.limits.max_members:
        loc = read_local(stream, pos, size)
        if loc is None:
            break
        deferred = bool(loc.flags & FLAG_DESCRIPTOR) and loc.compressed_size == 0
        if deferred:
            end = _next_signature(stream, loc.data_offset, stop, ctx)
        else:
            end = min(loc.data_offset + loc.compressed_size, stop)
        entry = Entry(
            name=_decode_name(loc.raw_name, loc.flags),
            raw_name=loc.raw_name,
            flags=loc.flags,
            method=loc.method,
            crc=loc.crc,
            compressed_size=end - loc.data_offset,
            uncompressed_size=loc.uncompressed_size,
            header_offset=pos,
            listed=False,
        )
        out.append((entry, loc))
        nxt = end if end > pos else pos + _LOC.size
        if deferred or loc.flags & FLAG_DESCRIPTOR:
            probe = _read_at(stream, nxt, 32)
            found = probe.find(_SIG_LOC)
            nxt = nxt + found if found >= 0 else nxt
        pos = nxt
    return out


# --- scanning -----------------------------------------------------------------------------


def _ev(entry: Entry, **more: Any) -> dict[str, Any]:
    return {"member": entry.name, "offset": entry.header_offset, **more}


@dataclass
class _Archive:
    """State of one zip being scanned."""

    stream: BinaryIO
    """The whole file."""
    ctx: ScanContext
    """Context of the archive (findings, limits)."""
    size: int
    """Length of ``stream``."""
    produced: int = 0
    """Bytes decompressed from all members so far (the archive-level ratio check)."""
    scanned_offsets: set[int] = field(default_factory=set)
    """Local headers already scanned (several directory records may point at one)."""

    def finding(
        self, rule: str, severity: Severity, title: str, summary: str, **evidence: Any
    ) -> Finding:
        return self.ctx.finding(
            rule, severity, title, summary=summary, evidence={"format": "zip", **evidence}
        )

    def malformed(self, why: str, **evidence: Any) -> Finding:
        return self.finding(
            "zip.malformed",
            Severity.MEDIUM,
            f"zip structure is damaged: {why}"[:300],
            "Loaders recover from damaged zips in different ways, so what one of them loads may "
            "not be what another shows. Everything that could be located was still scanned.",
            **evidence,
        )


def _scan_zip(
    stream: BinaryIO, ctx: ScanContext, size: int, end: EndRecord | None, host: str | None
) -> Iterator[Finding]:
    """Scan a zip whose end record is ``end`` (``None``: walk local headers). ``host`` names
    what the file starts as when it is not a zip (a polyglot found by the tail scanner)."""
    zf = _Archive(stream, ctx, size)
    if end is None:
        yield zf.malformed(
            "no end-of-central-directory record (truncated or damaged); members were found by "
            "walking local headers"
        )
        yield from _scan_walk(zf)
        return
    if end.multi_disk:
        yield zf.malformed("declares a split (multi-disk) archive")
    if end.trailing > 0:
        yield zf.malformed(
            f"{end.trailing} bytes follow the end record", trailing_bytes=end.trailing
        )
    entries, error = read_central(stream, end, size, ctx)
    if error:
        yield zf.malformed(error, central_directory_offset=end.cd_start)
        if not entries and host is None:
            yield from _scan_walk(zf)
            return
    pairs: list[tuple[Entry, LocalHeader | None]] = []
    for entry in entries:
        loc = read_local(stream, entry.header_offset, size)
        if loc is None:
            yield zf.malformed(
                f"{entry.name}: no local header at offset {entry.header_offset}", **_ev(entry)
            )
        pairs.append((entry, loc))
    yield from _duplicates(zf, entries)
    regions = _regions(pairs)
    yield from _overlaps(zf, regions, end)
    first = regions[0][0] if regions else end.cd_start
    head = _read_at(stream, 0, min(first, HEAD_BYTES)) if first > 0 else b""
    # a prefix that is itself a local header is a hidden member (reported by the gap scan)
    if host is not None or (first > 0 and not head.startswith(_SIG_LOC)):
        kind = host or describe_head(head)
        yield zf.finding(
            "zip.polyglot",
            Severity.MEDIUM,
            f"zip archive behind {first} bytes of other data ({kind})",
            "The file is two formats at once: a loader that reads it from the front sees "
            f"{kind}, a zip reader sees the archive. Both views are scanned.",
            prefix_bytes=first,
            prefix_kind=kind,
            prefix_hex=head[:16].hex(),
        )
    names: dict[str, int] = {}
    for entry, loc in pairs:
        if loc is not None:
            yield from _scan_entry(zf, entry, loc, _display(entry.name, names))
    for start, stop in _gaps(regions, end.cd_start):
        yield from _scan_gap(zf, start, stop, names)


def _scan_walk(zf: _Archive) -> Iterator[Finding]:
    """Scan every member a walk over local headers from the start finds."""
    names: dict[str, int] = {}
    for entry, loc in walk_local(zf.stream, 0, zf.size, zf.size, zf.ctx):
        yield from _scan_entry(zf, entry, loc, _display(entry.name, names))


def _display(name: str, seen: dict[str, int]) -> str:
    """Display name of the next member called ``name`` (``name#2`` for the second one)."""
    seen[name] = seen.get(name, 0) + 1
    return name if seen[name] == 1 else f"{name}#{seen[name]}"


def _duplicates(zf: _Archive, entries: list[Entry]) -> Iterator[Finding]:
    for name, count in Counter(e.name for e in entries).items():
        if count > 1:
            yield zf.finding(
                "zip.duplicate-name",
                Severity.HIGH,
                f"{count} members are named {name!r}",
                "Loaders disagree on which copy they use (first, last, or one by offset), so a "
                "scanner and a loader can read different content under one name. Every copy "
                "is scanned.",
                member=name,
                count=count,
            )


_Region = tuple[int, int, str]


def _regions(pairs: list[tuple[Entry, LocalHeader | None]]) -> list[_Region]:
    """(header start, data end, name) of every member with a local header, by position."""
    out = [(loc.offset, loc.data_offset + e.compressed_size, e.name) for e, loc in pairs if loc]
    return sorted(out)


def _overlaps(zf: _Archive, regions: list[_Region], end: EndRecord) -> Iterator[Finding]:
    pairs: list[list[str]] = []
    reach, reach_name = -1, ""
    for start, stop, name in regions:
        if start < reach:
            pairs.append([reach_name, name])
        if stop > reach:
            reach, reach_name = stop, name
    if regions and reach > end.cd_start:
        pairs.append([reach_name, "<central directory>"])
    if pairs:
        yield zf.finding(
            "zip.overlap",
            Severity.HIGH,
            f"{len(pairs)} overlapping member(s): {pairs[0][0]!r} and {pairs[0][1]!r}",
            "Members whose data overlap each other (or the directory) are the building block "
            "of non-recursive zip bombs and make different loaders see different content.",
            pairs=pairs[:20],
            count=len(pairs),
        )


def _gaps(regions: list[_Region], cd_start: int) -> Iterator[tuple[int, int]]:
    """Byte ranges between members (and before the directory) big enough to hide a header."""
    pos = 0
    for start, stop, _name in regions:
        if start - pos >= 30:
            yield pos, start
        pos = max(pos, stop)
    if cd_start - pos >= 30:
        yield pos, cd_start


def _scan_gap(zf: _Archive, start: int, stop: int, names: dict[str, int]) -> Iterator[Finding]:
    """Local headers hidden between listed members: a streaming reader sees them."""
    window = _read_at(zf.stream, start, min(stop - start, 1 << 16))
    idx = window.find(_SIG_LOC)
    if idx < 0:
        return
    for entry, loc in walk_local(zf.stream, start + idx, stop, zf.size, zf.ctx):
        yield zf.finding(
            "zip.unlisted-member",
            Severity.HIGH,
            f"member {entry.name!r} has a local header but no central-directory record",
            "Streaming readers walk local headers and load this member; directory-based "
            "readers and scanners never see it. It is scanned here.",
            **_ev(entry),
        )
        yield from _scan_entry(zf, entry, loc, _display(entry.name, names))


def _header_findings(zf: _Archive, e: Entry, loc: LocalHeader) -> Iterator[Finding]:
    """Findings from comparing a member's directory record with its local header."""
    if loc.raw_name != e.raw_name:
        local_name = _decode_name(loc.raw_name, loc.flags)
        yield zf.finding(
            "zip.name-mismatch",
            Severity.HIGH,
            f"member named {e.name!r} in the directory but {local_name!r} in its local header",
            "Loaders differ on which name they use (a classic scanner bypass: the scanner "
            "skips a harmless-looking name while the loader loads the other). The content is "
            "scanned whatever its name.",
            **_ev(e, central_name=e.name, local_name=local_name),
        )
    flags = e.flags | loc.flags
    if flags & FLAG_ENCRYPTED:
        yield zf.finding(
            "zip.encrypted",
            Severity.HIGH,
            f"member {e.name!r} is marked encrypted",
            "Encrypted content cannot be analysed. Published bypasses set this bit on content "
            "that is not encrypted: Python's zipfile then refuses the member while PyTorch's "
            "reader ignores the bit and loads it. The data was read as plain data and scanned.",
            **_ev(e, central_flags=e.flags, local_flags=loc.flags),
        )
    odd = flags & FLAG_ODD
    if odd or e.flags != loc.flags:
        bits = [b for b in range(16) if odd >> b & 1]
        yield zf.finding(
            "zip.odd-flags",
            Severity.MEDIUM,
            f"member {e.name!r} has unusual flag bits "
            f"(directory 0x{e.flags:04x}, local header 0x{loc.flags:04x})",
            "Reserved, strong-encryption or masked-header bits, or flags that differ between "
            "the directory and the local header, make loaders disagree about the member.",
            **_ev(e, central_flags=e.flags, local_flags=loc.flags, odd_bits=bits),
        )
    diffs: dict[str, list[int]] = {}
    if loc.method != e.method:
        diffs["method"] = [e.method, loc.method]
    if not loc.flags & FLAG_DESCRIPTOR and e.listed:
        if loc.compressed_size != e.compressed_size:
            diffs["compressed_size"] = [e.compressed_size, loc.compressed_size]
        if loc.uncompressed_size != e.uncompressed_size:
            diffs["uncompressed_size"] = [e.uncompressed_size, loc.uncompressed_size]
    if e.method == STORED and e.compressed_size != e.uncompressed_size:
        diffs["stored_sizes"] = [e.compressed_size, e.uncompressed_size]
    if diffs:
        yield _mismatch(zf, e, diffs)


def _mismatch(zf: _Archive, e: Entry, diffs: dict[str, list[int]]) -> Finding:
    return zf.finding(
        "zip.header-mismatch",
        Severity.MEDIUM,
        f"member {e.name!r}: directory and local header disagree on {', '.join(diffs)}",
        "Readers that trust the local header (streaming readers) and readers that trust the "
        "directory decode different bytes. Values are [directory, other].",
        **_ev(e, **diffs),
    )


def _bad_crc(zf: _Archive, e: Entry, loc: LocalHeader, crc: int) -> Iterator[Finding]:
    expected = {e.crc} if loc.flags & FLAG_DESCRIPTOR else {e.crc, loc.crc}
    if expected != {crc}:
        yield zf.finding(
            "zip.bad-crc",
            Severity.HIGH,
            f"member {e.name!r}: CRC-32 0x{crc:08x} does not match the declared 0x{e.crc:08x}",
            "Python's zipfile refuses such a member while PyTorch ignores CRCs on some paths: a "
            "way to make a scanner skip what a loader loads. The content was still scanned.",
            **_ev(e, computed=crc, central_crc=e.crc, local_crc=loc.crc),
        )


def _scan_entry(zf: _Archive, e: Entry, loc: LocalHeader, display: str) -> Iterator[Finding]:
    """All findings for one member: names, headers, then its content by dispatch."""
    ctx = zf.ctx
    ctx.check_time()
    ctx.count_member()
    why = unsafe_name(e.name)
    if why:
        yield zf.finding(
            "zip.path-traversal",
            Severity.HIGH,
            f"member name {e.name!r} escapes the extraction directory ({why})",
            "Extracting this archive with a naive tool writes outside the target directory "
            "(zip slip), for example over a Python file that is later imported.",
            **_ev(e, reason=why),
        )
    yield from _header_findings(zf, e, loc)
    if e.is_symlink:
        target = _read_at(zf.stream, loc.data_offset, min(e.compressed_size, 1024))
        yield zf.finding(
            "zip.symlink",
            Severity.MEDIUM,
            f"member {e.name!r} is a symbolic link",
            "Extracting a symlink member lets later members (or loaders following it) reach "
            "files outside the archive.",
            **_ev(e, target=target.decode("utf-8", "replace") if e.method == STORED else ""),
        )
        return
    if e.compressed_size <= 0 or loc.data_offset >= zf.size:
        if e.compressed_size > 0 or e.uncompressed_size > 0:
            yield zf.malformed(f"{e.name}: data lies beyond the end of the file", **_ev(e))
        return
    if loc.offset in zf.scanned_offsets:
        return  # another directory record for the same data (reported as an overlap)
    zf.scanned_offsets.add(loc.offset)
    avail = min(e.compressed_size, zf.size - loc.data_offset)
    if avail < e.compressed_size:
        yield zf.malformed(
            f"{e.name}: data truncated ({avail} of {e.compressed_size} bytes present)", **_ev(e)
        )
    if e.method == STORED and avail == e.compressed_size and avail > MEMBER_TAIL_LIMIT:
        head = _read_at(zf.stream, loc.data_offset, HEAD_BYTES)
        if not ctx.claims(head):
            # Tensor data: nothing would parse it (and zip-tail skips members this big), so
            # skip building a stream for it. Same outcome as dispatching, minus the overhead.
            ctx.child(display).record_format("unknown")
            return
    if e.method == STORED and avail <= CRC_ALWAYS:
        # Its CRC is checked whatever the scanners read, so read it whole, once.
        data = _read_at(zf.stream, loc.data_offset, avail)
        yield from ctx.scan_member_bytes(display, data)
        if avail == e.compressed_size:
            yield from _bad_crc(zf, e, loc, zlib.crc32(data))
        return
    view = StreamView(zf.stream, loc.data_offset, avail)
    if e.method == STORED:
        yield from ctx.scan_member(display, buffered(view))
        wanted = view.crc_pos >= avail or avail <= CRC_ALWAYS or view.crc_pos > CRC_CONSUMED
        if wanted and avail == e.compressed_size:
            yield from _bad_crc(zf, e, loc, view.finish_crc(ctx))
        return
    if e.method not in (DEFLATED, BZIP2, LZMA):
        if e.method != AES:  # AES is already reported as encrypted
            yield zf.finding(
                "zip.unsupported-method",
                Severity.MEDIUM,
                f"member {e.name!r} uses compression method {e.method}; not analysed",
                "Only stored, deflate, bzip2 and lzma members can be decompressed here. A "
                "loader with a wider decoder may still load this member.",
                **_ev(e, method=e.method),
            )
        return
    yield from _scan_compressed(zf, e, loc, view, display)


def _decoder(method: int, view: StreamView, max_bytes: int) -> Any:
    """A decompressor for ``method``; for lzma, reads the zip-specific properties header.

    The lzma dictionary is capped at ``max_bytes`` (output beyond it is not decoded anyway, so
    no match can reach further back): liblzma allocates the declared size up front.
    """
    if method == DEFLATED:
        return zlib.decompressobj(-15)
    if method == BZIP2:
        return bz2.BZ2Decompressor()
    head = view.read(4)
    if len(head) < 4:
        raise ValueError("lzma member too short for its properties header")
    props = view.read(int.from_bytes(head[2:4], "little"))
    if len(props) < 5:
        raise ValueError("lzma member properties are truncated")
    d = props[0]
    if d >= 9 * 5 * 5:
        raise ValueError(f"invalid lzma properties byte {d}")
    filt = {
        "id": lzma.FILTER_LZMA1,
        "dict_size": max(4096, min(int.from_bytes(props[1:5], "little"), max_bytes)),
        "lc": d % 9,
        "lp": d // 9 % 5,
        "pb": d // 45,
    }
    return lzma.LZMADecompressor(lzma.FORMAT_RAW, filters=[filt])


def _declared_bomb(zf: _Archive, e: Entry, loc: LocalHeader) -> Finding | None:
    """The bomb finding for a member whose headers *declare* a ratio above ``max_ratio``.

    Decompressing would only confirm it: if the sizes are true, the streaming check stops the
    member as a bomb anyway (after :data:`RATIO_FLOOR` bytes of work); if they lie, the member
    is hostile either way. It must be declared alike by the directory and the local header
    (unless a data descriptor defers the local sizes), and within ``max_member_bytes`` (bigger
    members are "too large" rather than bombs, as when streaming).
    """
    size, packed = e.uncompressed_size, e.compressed_size
    limits = zf.ctx.limits
    if size <= RATIO_FLOOR or size > limits.max_member_bytes or size <= limits.max_ratio * packed:
        return None
    if not loc.flags & FLAG_DESCRIPTOR and (
        loc.uncompressed_size != size or loc.compressed_size != packed
    ):
        return None
    return zf.finding(
        "archive.bomb",
        Severity.HIGH,
        f"{zf.ctx.path}!{e.name}: declares {size} bytes from {packed} compressed bytes (ratio "
        f"above max_ratio {limits.max_ratio:g}); decompression bomb, not decompressed",
        "A member that expands this much is a decompression bomb; it was not analysed further.",
        **_ev(e, compressed=packed, decompressed=size),
    )


def _scan_compressed(
    zf: _Archive, e: Entry, loc: LocalHeader, view: StreamView, display: str
) -> Iterator[Finding]:
    ctx = zf.ctx
    declared = _declared_bomb(zf, e, loc)
    if declared is not None:
        yield declared
        return
    meter = Meter(ctx, f"{ctx.path}!{display}")
    try:
        dec = _decoder(e.method, view, ctx.limits.max_member_bytes)
        res = decode(view.read, dec, meter, ctx.limits.max_member_bytes)
    except BombError as exc:
        yield zf.finding(
            exc.rule,
            exc.severity,
            str(exc),
            "A member that expands this much is a decompression bomb; it was not analysed further.",
            **_ev(e, compressed=meter.consumed, decompressed=meter.produced),
        )
        return
    except (ValueError, lzma.LZMAError) as exc:
        if not (e.flags | loc.flags) & FLAG_ENCRYPTED:
            yield zf.malformed(f"{e.name}: {exc}", **_ev(e))
        return
    if res.too_large:
        yield ctx.finding(
            TOO_LARGE,
            Severity.MEDIUM,
            f"{e.name}: larger than {ctx.limits.max_member_bytes} bytes when decompressed "
            "(max_member_bytes); not analysed",
            evidence={"format": "zip", **_ev(e, limit=ctx.limits.max_member_bytes)},
            remediation="Raise max_member_bytes if the size is expected. Until then treat the "
            "archive as unverified.",
        )
        return
    zf.produced += len(res.data)
    limit = ctx.limits.max_ratio
    if zf.produced > max(limit * zf.size, RATIO_FLOOR):
        raise ScanLimitExceeded(
            "archive.bomb",
            f"zip members decompress to more than {limit:g} times the archive size "
            "(max_ratio); overlapping-member bomb, not analysed further",
            Severity.HIGH,
        )
    encrypted = bool((e.flags | loc.flags) & FLAG_ENCRYPTED)
    if res.complete:
        yield from _bad_crc(zf, e, loc, res.crc)
        if len(res.data) != e.uncompressed_size:
            yield _mismatch(zf, e, {"uncompressed_size": [e.uncompressed_size, len(res.data)]})
    elif not encrypted:
        yield zf.malformed(
            f"{e.name}: {res.error or 'compressed data ends early'}; the part before the damage "
            "was scanned",
            **_ev(e),
        )
    if res.data:
        yield from ctx.scan_member_bytes(display, res.data)


def _starts_zip(head: bytes) -> bool:
    return head.startswith((_SIG_LOC, _SIG_EOCD))


class ZipScanner:
    """Files that start like a zip (``PK\\x03\\x04`` or, for an empty zip, ``PK\\x05\\x06``)."""

    name = "zip"
    first_bytes = b"P"

    def sniff(self, head: bytes) -> bool:
        return _starts_zip(head)

    def scan(self, stream: BinaryIO, ctx: ScanContext) -> Iterator[Finding]:
        size = stream_size(stream)
        end = find_end(stream, size, strict=False)
        yield from _scan_zip(stream, ctx, size, end, None)


class ZipTailScanner:
    """Zip archives hidden behind another format's content (polyglots).

    ``sniff`` only sees the head, so it accepts every stream that does not start like a zip
    and ``scan`` reads the last 64 KiB + 22 bytes for an end record: one seek and one read,
    whatever the file's size. It is *passive*: it does not count as recognising the stream, so
    the dispatcher still probes streams no other scanner claims (protocol 0/1 pickles).
    """

    name = "zip-tail"
    passive = True

    def sniff(self, head: bytes) -> bool:
        return not _starts_zip(head)

    def scan(self, stream: BinaryIO, ctx: ScanContext) -> Iterator[Finding]:
        head = stream.read(HEAD_BYTES)
        size = stream_size(stream)
        if ctx.depth > 0 and size > MEMBER_TAIL_LIMIT:
            return  # big archive members (tensor data): no tail read per member
        end = find_end(stream, size, strict=True) if size >= _EOCD.size else None
        if end is not None:
            ctx.record_format(self.name)
            yield from _scan_zip(stream, ctx, size, end, describe_head(head))


SCANNERS: list[FormatScanner] = [ZipScanner(), ZipTailScanner()]
