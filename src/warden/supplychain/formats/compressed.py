"""Compressed streams (gzip, bzip2, xz, lzma-alone, zstd), and the bounded decompression and
stream windows every container format shares.

A compressed stream is decompressed in memory (never to disk) in bounded pieces: every piece is
counted against the file's decompressed-bytes budget (``max_total_bytes``) and the stream's
compression ratio is checked as it grows, so a decompression bomb is stopped after a bounded
amount of work whatever its headers claim. The result, at most ``max_member_bytes``, is scanned
by content again, so ``.tar.gz`` works as gzip → tar → members.

Shared pieces the zip, tar and 7z scanners use: :class:`Meter` (ratio and byte accounting),
:func:`decode` (one compressed stream into memory, bounded), :class:`StreamView` (an O(1)-seek
window of a seekable stream, so stored members are scanned in place without copying) and
:func:`unsafe_name` (path-traversal test for member names).
"""

from __future__ import annotations

import bz2
import importlib
import io
import logging
import lzma
import re
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, BinaryIO

from warden.assess.finding import Finding, Severity
from warden.supplychain.scanner import FormatScanner, ScanContext, ScanLimitExceeded

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

__all__ = [
    "CODECS",
    "IN_CHUNK",
    "LZMA_MEMLIMIT",
    "OUT_CHUNK",
    "RATIO_FLOOR",
    "SCANNERS",
    "TOO_LARGE",
    "BombError",
    "Codec",
    "CompressedScanner",
    "Decoded",
    "Meter",
    "StreamView",
    "buffered",
    "decode",
    "describe_head",
    "stream_size",
    "unsafe_name",
]

log = logging.getLogger(__name__)

RATIO_FLOOR = 8 << 20
"""Bytes a stream must decompress to before its ratio counts: small, highly compressible data
(a zero-filled bias array) is not a bomb, and ratios of tiny streams are noise."""
IN_CHUNK = 1 << 16
"""Compressed bytes fed to a decompressor at a time."""
OUT_CHUNK = 1 << 20
"""Most decompressed bytes produced by one decompressor call: bounds memory per step."""

LZMA_MEMLIMIT = 1 << 30
"""Most memory an xz or lzma decoder may ask for: liblzma allocates the dictionary a header
declares up front, so a 100-byte file could otherwise ask for 4 GiB."""

TOO_LARGE = "archive.member-too-large"
"""Rule of the finding for a member bigger than ``max_member_bytes`` (not analysed)."""


# --- shared: accounting -------------------------------------------------------------------


class BombError(ScanLimitExceeded):
    """One stream or member decompressed past ``max_ratio``; the container skips it."""


@dataclass
class Meter:
    """Counts one stream's compressed input and decompressed output; stops a bomb early.

    Every output byte is charged to the file's budget (``ctx.count_bytes``), and once the output
    passes :data:`RATIO_FLOOR` the ratio output / input must stay within ``max_ratio``. The
    check uses bytes actually produced, never sizes declared in headers.
    """

    ctx: ScanContext
    """Where the bytes are charged."""
    what: str
    """The stream, for messages."""
    consumed: int = 0
    """Compressed bytes read so far (or the whole container size, for formats that read it
    themselves)."""
    produced: int = 0
    """Decompressed bytes so far."""

    def took(self, n: int) -> None:
        """Account for ``n`` compressed bytes read."""
        self.consumed += n

    def gave(self, n: int) -> None:
        """Account for ``n`` decompressed bytes; raise :class:`BombError` past the ratio."""
        self.ctx.count_bytes(n)
        self.produced += n
        limit = self.ctx.limits.max_ratio
        if self.produced > RATIO_FLOOR and self.produced > limit * max(self.consumed, 1):
            raise BombError(
                "archive.bomb",
                f"{self.what}: {self.produced} bytes from {self.consumed} compressed bytes "
                f"(ratio above max_ratio {limit:g}); decompression bomb, not analysed further",
                Severity.HIGH,
            )


# --- shared: bounded decompression --------------------------------------------------------


@dataclass(frozen=True)
class Decoded:
    """The outcome of decompressing one stream into memory."""

    data: bytes
    """What was decompressed (everything, or the part before an error; empty when too large)."""
    complete: bool
    """The decompressor reached its end-of-stream marker."""
    too_large: bool
    """Output passed the size cap; decompression stopped and ``data`` is empty."""
    error: str
    """The decompressor's error message, or ``""``."""
    crc: int
    """CRC-32 of ``data``."""
    unused: bytes
    """Input read past the end of the stream (the start of whatever follows it)."""


def _pump(dec: Any, data: bytes) -> Iterator[bytes]:
    """Every output piece (≤ :data:`OUT_CHUNK`) of feeding ``data`` to ``dec``.

    zlib keeps unread input in ``unconsumed_tail`` to be fed again; bz2 and lzma keep it
    internally and say ``needs_input``.
    """
    if hasattr(dec, "unconsumed_tail"):
        buf = data
        while True:
            out = dec.decompress(buf, OUT_CHUNK)
            stalled = not out and dec.unconsumed_tail == buf
            buf = dec.unconsumed_tail
            if out:
                yield out
            if dec.eof or stalled or (not buf and len(out) < OUT_CHUNK):
                return
    out = dec.decompress(data, OUT_CHUNK)
    if out:
        yield out
    while not dec.eof and not dec.needs_input:
        out = dec.decompress(b"", OUT_CHUNK)
        if not out:
            return
        yield out


def decode(
    read: Callable[[int], bytes],
    dec: Any,
    meter: Meter,
    max_bytes: int,
    *,
    pending: bytes = b"",
) -> Decoded:
    """Decompress one stream read through ``read`` with ``dec``, in memory, bounded.

    ``pending`` is input already read (fed first). Output is capped at ``max_bytes`` (then
    ``too_large``), every piece goes through ``meter`` (which raises :class:`BombError` or
    :class:`~warden.supplychain.scanner.ScanLimitExceeded`), and the time budget is checked
    between input chunks. Decoder errors end the stream and are returned, not raised.
    """
    pieces: list[bytes] = []
    size = 0
    crc = 0
    chunk = pending or read(IN_CHUNK)
    try:
        while chunk:
            meter.ctx.check_time()
            meter.took(len(chunk))
            for out in _pump(dec, chunk):
                meter.gave(len(out))
                size += len(out)
                if size > max_bytes:
                    return Decoded(b"", False, True, "", 0, b"")
                crc = zlib.crc32(out, crc)
                pieces.append(out)
            if dec.eof:
                break
            chunk = read(IN_CHUNK)
    except (zlib.error, OSError, lzma.LZMAError, EOFError, ValueError) as exc:
        return Decoded(b"".join(pieces), False, False, str(exc) or type(exc).__name__, crc, b"")
    done = bool(dec.eof)
    return Decoded(b"".join(pieces), done, False, "", crc, bytes(dec.unused_data) if done else b"")


# --- shared: windows on a stream ----------------------------------------------------------


class StreamView(io.RawIOBase):
    """A read-only window ``[start, start + length)`` of a seekable stream; O(1) seek.

    Stored archive members are scanned through a view, so nothing is copied and a scanner that
    only sniffs a member's head reads only the head. The view keeps the CRC-32 of the longest
    prefix it has handed out (``crc`` covers ``[0, crc_pos)``; any read that reaches
    ``crc_pos`` extends it); :meth:`finish_crc` completes it. The underlying stream may be
    shared: every read seeks it.
    """

    def __init__(self, base: BinaryIO, start: int, length: int) -> None:
        super().__init__()
        self._base = base
        self._start = start
        self._length = max(0, length)
        self._pos = 0
        self.crc = 0
        """CRC-32 of ``[0, crc_pos)``."""
        self.crc_pos = 0
        """How far the in-order CRC reaches."""

    @property
    def length(self) -> int:
        """Size of the window in bytes."""
        return self._length

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_SET:
            pos = offset
        elif whence == io.SEEK_CUR:
            pos = self._pos + offset
        elif whence == io.SEEK_END:
            pos = self._length + offset
        else:
            raise ValueError(f"invalid whence {whence}")
        if pos < 0:
            raise ValueError(f"negative seek position {pos}")
        self._pos = pos
        return pos

    def _read_at(self, pos: int, n: int) -> bytes:
        n = min(n, self._length - pos)
        if n <= 0:
            return b""
        self._base.seek(self._start + pos)
        data = self._base.read(n)
        if pos <= self.crc_pos < pos + len(data):
            self.crc = zlib.crc32(memoryview(data)[self.crc_pos - pos :], self.crc)
            self.crc_pos = pos + len(data)
        return data

    def read(self, size: int | None = -1) -> bytes:
        n = self._length - self._pos if size is None or size < 0 else size
        data = self._read_at(self._pos, n)
        self._pos += len(data)
        return data

    def readall(self) -> bytes:
        return self.read(-1)

    def readinto(self, buffer: WriteableBuffer) -> int:
        view = memoryview(buffer).cast("B")
        data = self.read(len(view))
        view[: len(data)] = data
        return len(data)

    def finish_crc(self, ctx: ScanContext, chunk: int = 8 << 20) -> int:
        """Read the rest of the window in order and return the CRC-32 of all of it."""
        while self.crc_pos < self._length:
            ctx.check_time()
            if not self._read_at(self.crc_pos, chunk):
                break
        return self.crc


def buffered(view: StreamView) -> io.BufferedReader:
    """``view`` with a read buffer (scanners may read a few bytes at a time).

    The buffer is small (8 KiB): the head read of a member nobody parses (tensor data) should
    cost the head, not a 64 KiB read; large reads bypass the buffer anyway.
    """
    return io.BufferedReader(view, buffer_size=8 << 10)


def stream_size(stream: BinaryIO) -> int:
    """Length of a seekable stream; the position is left at 0."""
    size = stream.seek(0, io.SEEK_END)
    stream.seek(0)
    return size


# --- shared: names ------------------------------------------------------------------------

_DRIVE = re.compile(r"^[A-Za-z]:")


def unsafe_name(name: str) -> str:
    """Why extracting a member called ``name`` could write outside the target, or ``""``."""
    if "\x00" in name:
        return "contains a NUL byte"
    if name.startswith(("/", "\\")):
        return "absolute path"
    if _DRIVE.match(name):
        return "drive-letter path"
    if "\\" in name:
        return "backslash separator (a parent or absolute path on Windows)"
    if ".." in name.split("/"):
        return "parent-directory component"
    return ""


def describe_head(head: bytes) -> str:
    """What a stream that starts with ``head`` looks like (for polyglot evidence)."""
    kinds: tuple[tuple[bytes, str], ...] = (
        (b"PK\x03\x04", "a zip local file header"),
        (b"PK\x05\x06", "a zip end record"),
        (b"\x7fELF", "an ELF executable"),
        (b"MZ", "a Windows executable (MZ)"),
        (b"%PDF", "a PDF document"),
        (b"\x89PNG", "a PNG image"),
        (b"\xff\xd8\xff", "a JPEG image"),
        (b"GIF8", "a GIF image"),
        (b"\x93NUMPY", "a NumPy .npy array"),
        (b"\x89HDF", "an HDF5 file"),
        (b"#!", "a script (shebang)"),
        (b"\x1f\x8b", "a gzip stream"),
        (b"BZh", "a bzip2 stream"),
        (b"\xfd7zXZ\x00", "an xz stream"),
        (b"7z\xbc\xaf\x27\x1c", "a 7z archive"),
    )
    for magic, kind in kinds:
        if head.startswith(magic):
            return kind
    if len(head) >= 2 and head[0] == 0x80 and 0 < head[1] <= 5:
        return f"a pickle (protocol {head[1]})"
    sample = head[:256]
    if sample and all(32 <= b < 127 or b in b"\t\r\n" for b in sample):
        return "text"
    return "unknown binary data"


# --- compressed stream formats ------------------------------------------------------------


@dataclass(frozen=True)
class Codec:
    """One compressed-stream format."""

    name: str
    """Format name (``gzip``) and scanner name."""
    magic: bytes
    """Leading bytes of every stream of this format."""
    make: Callable[[], Any] | None
    """A fresh decompressor (``decompress(data, max_length)``, ``eof``, ``unused_data``), or
    ``None`` when the codec needs a module that is not installed."""
    suffixes: tuple[tuple[str, str], ...]
    """Display-name suffix rewrites (``.tgz`` → ``.tar``) for the decompressed member."""
    check: Callable[[bytes], bool] = lambda head: True
    """Extra sniff test beyond the magic bytes."""
    multi: bool = True
    """Concatenated streams are one logical stream (gzip, bzip2, xz)."""


def _gzip_ok(head: bytes) -> bool:
    return len(head) >= 10 and head[2] == 8 and head[3] & 0xE0 == 0


def _bzip2_ok(head: bytes) -> bool:
    return (
        len(head) >= 10
        and 0x31 <= head[3] <= 0x39
        and head[4:10]
        in (
            b"1AY&SY",
            b"\x17rE8P\x90",
        )
    )


def _lzma_alone_ok(head: bytes) -> bool:
    """``.lzma`` has no magic: props 0x5d, a power-of-two-ish dictionary, a sane size."""
    if len(head) < 13:
        return False
    dict_size = int.from_bytes(head[1:5], "little")
    usize = int.from_bytes(head[5:13], "little")
    pow2 = dict_size & (dict_size - 1) == 0
    two_three = dict_size % 3 == 0 and (dict_size // 3) & (dict_size // 3 - 1) == 0
    return (
        dict_size >= 4096
        and (pow2 or two_three)
        and (usize == 0xFFFF_FFFF_FFFF_FFFF or usize < 1 << 40)
    )


def _zstd_module() -> Any:
    try:
        return importlib.import_module("zstandard")
    except ImportError:
        return None


_TAR = ((".tgz", ".tar"), (".taz", ".tar"))
CODECS: tuple[Codec, ...] = (
    Codec(
        "gzip",
        b"\x1f\x8b",
        lambda: zlib.decompressobj(31),
        ((".gz", ""), *_TAR),
        _gzip_ok,
    ),
    Codec(
        "bzip2",
        b"BZh",
        bz2.BZ2Decompressor,
        ((".bz2", ""), (".tbz2", ".tar"), (".tbz", ".tar")),
        _bzip2_ok,
    ),
    Codec(
        "xz",
        b"\xfd7zXZ\x00",
        lambda: lzma.LZMADecompressor(lzma.FORMAT_XZ, memlimit=LZMA_MEMLIMIT),
        ((".xz", ""), (".txz", ".tar")),
    ),
    Codec(
        "lzma",
        b"\x5d",
        lambda: lzma.LZMADecompressor(lzma.FORMAT_ALONE, memlimit=LZMA_MEMLIMIT),
        ((".lzma", ""),),
        _lzma_alone_ok,
        multi=False,
    ),
    Codec("zstd", b"\x28\xb5\x2f\xfd", None, ((".zst", ""), (".tzst", ".tar"))),
)
"""The compressed formats, in sniff order."""


def _member_name(path: str, codec: Codec, head: bytes) -> str:
    """Display name of the decompressed content: gzip's stored name, else the outer name less
    its compression suffix, else ``<gzip data>``."""
    if codec.name == "gzip" and len(head) > 10 and head[3] & 0x08:
        pos = 10
        if head[3] & 0x04:
            pos += 2 + int.from_bytes(head[10:12], "little")
        end = head.find(b"\x00", pos, pos + 256)
        if end > pos:
            name = head[pos:end].decode("latin-1")
            if name.isprintable():
                return name.replace("!", "_")[:120]
    last = path.rsplit("!", 1)[-1].replace("\\", "/").rsplit("/", 1)[-1]
    lower = last.lower()
    for suffix, repl in codec.suffixes:
        if lower.endswith(suffix) and len(last) > len(suffix):
            return last[: -len(suffix)] + repl
    return f"<{codec.name} data>"


class CompressedScanner:
    """A compressed stream: decompressed in memory (bounded), the content scanned by dispatch."""

    def __init__(self, codec: Codec) -> None:
        self.codec = codec
        self.name = codec.name
        self.first_bytes: bytes | None = codec.magic[:1] or None

    def sniff(self, head: bytes) -> bool:
        return head.startswith(self.codec.magic) and self.codec.check(head)

    def scan(self, stream: BinaryIO, ctx: ScanContext) -> Iterator[Finding]:
        head = stream.read(4096)
        stream.seek(0)
        name = _member_name(ctx.path, self.codec, head)
        if self.codec.name == "zstd":
            yield from self._scan_zstd(stream, ctx, name)
            return
        assert self.codec.make is not None
        meter = Meter(ctx, ctx.path)
        size = stream_size(stream)
        parts: list[bytes] = []
        total = 0
        pending = b""
        streams = 0
        while True:
            try:
                res = decode(
                    stream.read,
                    self.codec.make(),
                    meter,
                    ctx.limits.max_member_bytes - total,
                    pending=pending,
                )
            except BombError as exc:
                yield ctx.finding(
                    exc.rule,
                    exc.severity,
                    str(exc),
                    evidence={"format": self.name, "decompressed": meter.produced},
                    remediation="Do not decompress this file; it is built to exhaust memory or "
                    "disk.",
                )
                return
            streams += 1
            if res.too_large:
                yield _too_large(ctx, self.name, name, ctx.limits.max_member_bytes)
                return
            parts.append(res.data)
            total += len(res.data)
            if not res.complete:
                yield self._malformed(ctx, res.error or "the stream ends before its end marker")
                break
            pos = stream.tell() - len(res.unused)
            rest = res.unused
            if len(rest) < 64:
                rest += stream.read(IN_CHUNK)
            # xz allows zero padding between streams
            nxt = rest.lstrip(b"\x00") if self.codec.name == "xz" else rest
            if self.codec.multi and nxt.startswith(self.codec.magic):
                pending = nxt
                continue
            if rest:
                yield from self._trailing(stream, ctx, pos, size)
            break
        data = b"".join(parts)
        parts.clear()
        log.debug("%s: %d stream(s), %d bytes", ctx.path, streams, len(data))
        if data:
            yield from ctx.scan_member_bytes(name, data)

    def _malformed(self, ctx: ScanContext, why: str) -> Finding:
        return ctx.finding(
            "compressed.malformed",
            Severity.MEDIUM,
            f"{self.name} stream is corrupt or truncated: {why}"[:300],
            summary="The part decompressed before the damage is still analysed; what follows "
            "it is not. Loaders differ in how they treat damaged streams.",
            evidence={"format": self.name, "error": why[:200]},
        )

    def _trailing(
        self, stream: BinaryIO, ctx: ScanContext, pos: int, size: int
    ) -> Iterator[Finding]:
        """Bytes after the last compressed stream: report them and scan them by content."""
        stream.seek(pos)
        sample = stream.read(IN_CHUNK)
        if not sample.strip(b"\x00") and size - pos <= IN_CHUNK:
            return  # zero padding (tape blocks)
        yield ctx.finding(
            "compressed.trailing-data",
            Severity.MEDIUM,
            f"{size - pos} bytes follow the end of the {self.name} data",
            summary="Data appended after a compressed stream is invisible to most tools but "
            "can be read by a crafted loader. It is scanned separately.",
            evidence={"format": self.name, "offset": pos, "length": size - pos},
        )
        yield from ctx.scan_member("<trailing data>", buffered(StreamView(stream, pos, size - pos)))

    def _scan_zstd(self, stream: BinaryIO, ctx: ScanContext, name: str) -> Iterator[Finding]:
        zstd = _zstd_module()
        if zstd is None:
            yield ctx.finding(
                "compressed.unsupported",
                Severity.MEDIUM,
                "zstd-compressed data cannot be analysed (the zstandard module is not installed)",
                evidence={"format": self.name},
                remediation="Install the 'zstandard' package and scan again, or decompress the "
                "file and scan the result. Until then treat it as unverified.",
            )
            return
        meter = Meter(ctx, ctx.path)
        parts: list[bytes] = []
        total = 0
        try:
            reader = zstd.ZstdDecompressor().stream_reader(
                stream, read_across_frames=True, closefd=False
            )
            while True:
                ctx.check_time()
                out = reader.read(OUT_CHUNK)
                if not out:
                    break
                meter.consumed = stream.tell()
                meter.gave(len(out))
                total += len(out)
                if total > ctx.limits.max_member_bytes:
                    yield _too_large(ctx, self.name, name, ctx.limits.max_member_bytes)
                    return
                parts.append(out)
        except BombError as exc:
            yield ctx.finding(exc.rule, exc.severity, str(exc), evidence={"format": self.name})
            return
        except zstd.ZstdError as exc:
            yield self._malformed(ctx, str(exc))
        if parts:
            yield from ctx.scan_member_bytes(name, b"".join(parts))


def _too_large(ctx: ScanContext, fmt: str, member: str, limit: int) -> Finding:
    return ctx.finding(
        TOO_LARGE,
        Severity.MEDIUM,
        f"{member}: larger than {limit} bytes when decompressed (max_member_bytes); not analysed",
        evidence={"format": fmt, "member": member, "limit": limit},
        remediation="Raise max_member_bytes if the size is expected, or scan the decompressed "
        "content directly. Until then treat it as unverified.",
    )


SCANNERS: list[FormatScanner] = [CompressedScanner(c) for c in CODECS]
