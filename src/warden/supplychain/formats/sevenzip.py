"""7z archives, read with py7zr into memory (never to disk), member by member.

py7zr decompresses each member into a writer this module supplies: the writer charges every
byte to the file's budget, enforces the archive's compression ratio as bytes arrive (7z members
of a solid block have no compressed size of their own, so the ratio is output over the whole
archive's size), keeps at most ``max_member_bytes`` of one member, and scans the member by
content as soon as py7zr finishes it, so only one member is held at a time. Encrypted archives
cannot be analysed and are findings; so are unsafe names and links.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from warden.assess.finding import Finding, Severity
from warden.supplychain.formats.compressed import (
    OUT_CHUNK,
    RATIO_FLOOR,
    TOO_LARGE,
    BombError,
    Meter,
    stream_size,
    unsafe_name,
)
from warden.supplychain.scanner import FormatScanner, ScanContext, ScanLimitExceeded

__all__ = ["SCANNERS", "SevenZipScanner"]

log = logging.getLogger(__name__)

MAGIC = b"7z\xbc\xaf\x27\x1c"


@dataclass
class _Sink:
    """Where py7zr writes one member (py7zr's ``Py7zIO`` interface, duck-typed)."""

    owner: _Collector
    """The collector that scans the member when py7zr closes it."""
    filename: str
    """Member name as py7zr reports it."""
    parts: list[bytes] = field(default_factory=list)
    """Content kept so far."""
    written: int = 0
    """Bytes py7zr wrote (kept or not)."""
    too_large: bool = False
    """The member passed ``max_member_bytes``; its content was dropped."""

    def write(self, data: bytes | bytearray) -> int:
        n = len(data)
        self.owner.ctx.check_time()
        self.owner.meter.gave(n)
        self.written += n
        if not self.too_large:
            if self.written > self.owner.ctx.limits.max_member_bytes:
                self.too_large = True
                self.parts.clear()
            else:
                self.parts.append(bytes(data))
        return n

    def read(self, size: int | None = None) -> bytes:
        return b""

    def seek(self, offset: int, whence: int = 0) -> int:
        return 0

    def flush(self) -> None:
        return None

    def size(self) -> int:
        return self.written

    def close(self) -> None:
        self.owner.finished(self)


@dataclass
class _Collector:
    """py7zr's writer factory: hands out sinks, scans each member when it is complete."""

    ctx: ScanContext
    """Context of the archive."""
    meter: Meter
    """Byte and ratio accounting for the whole archive."""
    findings: list[Finding] = field(default_factory=list)
    """Findings of the members scanned so far."""
    done: set[str] = field(default_factory=set)
    """Members already scanned."""
    sinks: list[_Sink] = field(default_factory=list)
    """Every sink handed out."""

    def create(self, filename: str) -> _Sink:
        sink = _Sink(self, filename)
        self.sinks.append(sink)
        return sink

    def finished(self, sink: _Sink) -> None:
        if sink.filename in self.done:
            return
        self.done.add(sink.filename)
        if sink.too_large:
            self.findings.append(
                self.ctx.finding(
                    TOO_LARGE,
                    Severity.MEDIUM,
                    f"{sink.filename}: larger than {self.ctx.limits.max_member_bytes} bytes "
                    "(max_member_bytes); not analysed",
                    evidence={"format": "7z", "member": sink.filename},
                    remediation="Raise max_member_bytes if the size is expected. Until then "
                    "treat the archive as unverified.",
                )
            )
            return
        data = b"".join(sink.parts)
        sink.parts.clear()
        if data:
            self.findings.extend(self.ctx.scan_member_bytes(sink.filename, data))


def _finding(
    ctx: ScanContext, rule: str, severity: Severity, title: str, summary: str, **ev: Any
) -> Finding:
    return ctx.finding(
        rule, severity, title[:300], summary=summary, evidence={"format": "7z", **ev}
    )


def _malformed(ctx: ScanContext, why: str) -> Finding:
    return _finding(
        ctx,
        "sevenzip.malformed",
        Severity.MEDIUM,
        f"7z archive cannot be fully read: {why}",
        "Members after the damage were not analysed; a more lenient extractor may still load "
        "them. Treat the archive as unverified.",
        error=why[:200],
    )


def _encrypted(ctx: ScanContext, names: list[str]) -> Finding:
    return _finding(
        ctx,
        "sevenzip.encrypted",
        Severity.HIGH,
        "7z archive is encrypted; its content cannot be analysed",
        "Encryption hides the members from any scanner while whoever has the password loads "
        "them. A model must not be distributed this way.",
        members=names[:20],
    )


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:200]


class SevenZipScanner:
    """7z by its signature ``7z\\xbc\\xaf\\x27\\x1c``."""

    name = "7z"
    first_bytes = MAGIC[:1]

    def sniff(self, head: bytes) -> bool:
        return head.startswith(MAGIC)

    def scan(self, stream: BinaryIO, ctx: ScanContext) -> Iterator[Finding]:
        import py7zr

        if not isinstance(stream, io.IOBase):  # py7zr only accepts real file objects
            data = stream.read(ctx.limits.max_member_bytes + 1)
            if len(data) > ctx.limits.max_member_bytes:
                yield _finding(
                    ctx,
                    TOO_LARGE,
                    Severity.MEDIUM,
                    f"7z archive larger than {ctx.limits.max_member_bytes} bytes given as a "
                    "stream that cannot be read in place; not analysed",
                    "Scan the archive as a file, or raise max_member_bytes.",
                )
                return
            stream = io.BytesIO(data)
        size = stream_size(stream)
        try:
            archive = py7zr.SevenZipFile(stream, mode="r")
        except py7zr.PasswordRequired:
            yield _encrypted(ctx, [])
            return
        except Exception as exc:  # noqa: BLE001 - py7zr raises many types on bad input
            yield _malformed(ctx, _describe(exc))
            return
        try:
            yield from self._scan_archive(archive, stream, ctx, size)
        finally:
            archive.close()

    def _scan_archive(
        self, archive: Any, stream: BinaryIO, ctx: ScanContext, size: int
    ) -> Iterator[Finding]:
        import py7zr

        try:
            files = list(archive.list())
            encrypted = bool(archive.needs_password())
        except Exception as exc:  # noqa: BLE001 - py7zr raises many types on bad headers
            yield _malformed(ctx, _describe(exc))
            return
        names = [str(f.filename) for f in files]
        if encrypted:
            yield _encrypted(ctx, names)
            return
        safe: list[str] = []
        for f in files:
            ctx.check_time()
            ctx.count_member()
            name = str(f.filename)
            why = unsafe_name(name)
            if why:
                yield _finding(
                    ctx,
                    "sevenzip.path-traversal",
                    Severity.HIGH,
                    f"member name {name!r} escapes the extraction directory ({why}); not analysed",
                    "Extracting this archive with a naive tool writes outside the target "
                    "directory.",
                    member=name,
                    reason=why,
                )
            elif f.is_symlink:
                yield _finding(
                    ctx,
                    "sevenzip.symlink",
                    Severity.MEDIUM,
                    f"member {name!r} is a symbolic link",
                    "Links in a model archive let extraction or a loader reach files outside "
                    "the archive.",
                    member=name,
                )
            elif not f.is_directory:
                safe.append(name)
        if not safe:
            return
        meter = Meter(ctx, ctx.path, consumed=size)
        collector = _Collector(ctx, meter)
        limit = min(
            ctx.limits.max_total_bytes,
            max(int(ctx.limits.max_ratio * size), RATIO_FLOOR) + OUT_CHUNK,
        )
        archive.max_extract_size = limit  # also bounds members py7zr only CRC-checks
        problem: Finding | None = None
        try:
            archive.extract(targets=safe, factory=collector)
        except (BombError, py7zr.exceptions.DecompressionBombError) as exc:
            problem = _finding(
                ctx,
                "archive.bomb",
                Severity.HIGH,
                f"7z archive decompresses to more than {limit} bytes from {size} (above "
                f"max_ratio {ctx.limits.max_ratio:g}); not analysed further",
                "A decompression bomb: the rest of the archive was not analysed.",
                error=_describe(exc),
            )
        except ScanLimitExceeded:
            yield from collector.findings
            raise
        except py7zr.exceptions.CrcError as exc:
            problem = _finding(
                ctx,
                "sevenzip.bad-crc",
                Severity.HIGH,
                "7z member content does not match its CRC; later members were not analysed",
                "A member whose checksum is wrong is refused by some extractors and loaded by "
                "others. The content read so far was scanned.",
                error=_describe(exc),
            )
        except Exception as exc:  # noqa: BLE001 - py7zr raises many types on bad input
            problem = _malformed(ctx, _describe(exc))
        yield from collector.findings
        collector.findings.clear()
        for sink in collector.sinks:  # members py7zr stopped in the middle of (bad CRC etc.)
            if sink.filename not in collector.done:
                collector.finished(sink)
        yield from collector.findings
        if problem is not None:
            yield problem


SCANNERS: list[FormatScanner] = [SevenZipScanner()]
