"""The model-artifact scanner: limits, per-file context, format dispatch by content.

A scan never imports, loads or executes what it reads and never writes anything. Each file is
read as bytes; its format is decided from its content (magic bytes, structure), never from its
name; the matching format scanners yield :class:`~warden.assess.finding.Finding` objects. A
file that cannot be parsed is a finding, never a pass: every exception a format scanner raises
becomes a ``scan.error`` finding, and every limit (time, nesting depth, member count,
decompressed size, compression ratio) that is hit becomes a ``scan.limit`` finding.

Format scanners are plain objects with a ``name``, a ``sniff(head)`` test and a
``scan(stream, ctx)`` generator (:class:`FormatScanner`); users can register their own with
:func:`register_format`. Container formats (zip, tar, 7z, compressed streams) call
:meth:`ScanContext.scan_member` for each member, which dispatches the member by content again.
"""

from __future__ import annotations

import io
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, BinaryIO, Protocol, runtime_checkable

from warden.assess.finding import Finding, Severity
from warden.errors import ConfigError, RegistryError

__all__ = [
    "DEFAULT_LIMITS",
    "HEAD_BYTES",
    "FileScan",
    "FormatScanner",
    "ScanContext",
    "ScanLimitExceeded",
    "ScanLimits",
    "format_names",
    "read_head",
    "register_format",
    "scan_bytes",
    "scan_file",
    "unregister_format",
]

log = logging.getLogger(__name__)

HEAD_BYTES = 4096
"""How many leading bytes ``sniff`` sees."""

SMALL_FILE = 64 << 10
"""Files up to this size are read into memory in one read and scanned from there."""

CHECK = "scan"
"""The ``Finding.check`` of every scanner finding."""

_REMEDIATION = (
    "Do not load this artifact. Obtain the model from a trusted source in a format that cannot "
    "execute code (safetensors, ONNX), and verify its signature."
)
OWASP = ("ML06",)
ATLAS_LOAD = ("AML.T0010", "AML.T0011")
"""Supply-chain compromise + user execution: what loading a booby-trapped artifact does."""


@dataclass(frozen=True)
class ScanLimits:
    """Bounds on the work one top-level file may cause. Hitting one is a finding."""

    max_seconds: float = 120.0
    """Wall-clock budget per top-level file (archives included)."""
    max_depth: int = 6
    """How deep containers may nest (a zip in a tar in a gzip is depth 3)."""
    max_members: int = 100_000
    """Archive members per top-level file, all levels together."""
    max_member_bytes: int = 512 << 20
    """Largest member read into memory for a nested scan (bytes, uncompressed)."""
    max_total_bytes: int = 16 << 30
    """Total uncompressed bytes decompressed per top-level file."""
    max_ratio: float = 250.0
    """Largest compression ratio (uncompressed / compressed) before a member counts as a bomb."""
    max_pickle_ops: int = 20_000_000
    """Pickle opcodes executed symbolically per pickle stream."""
    max_pickle_memo: int = 2_000_000
    """Memo entries and stack depth per pickle stream."""

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, int | float) or isinstance(value, bool) or value <= 0:
                raise ConfigError(f"scan limit {f.name} must be a positive number, got {value!r}")

    def replace(self, **changes: Any) -> ScanLimits:
        """A copy with some limits changed; unknown names are refused."""
        known = {f.name for f in fields(self)}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise ConfigError(f"unknown scan limit(s) {unknown}; known: {sorted(known)}")
        return ScanLimits(**{**{f.name: getattr(self, f.name) for f in fields(self)}, **changes})


class ScanLimitExceeded(Exception):
    """Raised inside format scanners when a limit is hit; the dispatcher turns it into a finding.

    ``rule`` is the finding id suffix (``limit.time``, ``limit.depth``, ``archive.bomb`` …).
    """

    def __init__(self, rule: str, message: str, severity: Severity = Severity.MEDIUM) -> None:
        super().__init__(message)
        self.rule = rule
        self.severity = severity


@dataclass(slots=True)
class _Budget:
    """Mutable counters shared by every context of one top-level file."""

    limits: ScanLimits
    deadline: float
    members: int = 0
    total_bytes: int = 0
    formats: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class ScanContext:
    """Where a format scanner is and what it may still spend.

    ``path`` is the display path of the stream being scanned: the file name, then ``!member``
    for each archive level (``model.zip!archive/data.pkl``). ``directory`` is the real directory
    holding a top-level file (for formats that refer to sibling files: ONNX external data, TF
    SavedModel variables); it is ``None`` inside archives.
    """

    path: str
    limits: ScanLimits
    depth: int = 0
    directory: Path | None = None
    budget: _Budget | None = None

    def __post_init__(self) -> None:
        if self.budget is None:
            self.budget = _Budget(self.limits, time.monotonic() + self.limits.max_seconds)

    # --- limits -------------------------------------------------------------------------

    @property
    def _b(self) -> _Budget:
        assert self.budget is not None
        return self.budget

    def check_time(self) -> None:
        """Raise :class:`ScanLimitExceeded` when the file's time budget is spent."""
        if _monotonic() > self._b.deadline:
            raise ScanLimitExceeded(
                "limit.time",
                f"scan stopped after {self.limits.max_seconds:g} s (max_seconds); "
                "the rest of the file was not analysed",
            )

    def count_member(self) -> None:
        """Account for one archive member; raise when ``max_members`` is exceeded."""
        self._b.members += 1
        if self._b.members > self.limits.max_members:
            raise ScanLimitExceeded(
                "archive.too-many-members",
                f"more than {self.limits.max_members} archive members (max_members); "
                "possible archive bomb",
                Severity.HIGH,
            )

    def count_bytes(self, n: int) -> None:
        """Account for ``n`` decompressed bytes; raise when ``max_total_bytes`` is exceeded."""
        self._b.total_bytes += n
        if self._b.total_bytes > self.limits.max_total_bytes:
            raise ScanLimitExceeded(
                "archive.bomb",
                f"more than {self.limits.max_total_bytes} bytes after decompression "
                "(max_total_bytes); possible decompression bomb",
                Severity.HIGH,
            )

    def record_format(self, name: str) -> None:
        """Note that the stream at ``self.path`` was recognised as format ``name``."""
        budget = self.budget
        assert budget is not None
        budget.formats.append((self.path, name))

    # --- findings -----------------------------------------------------------------------

    def finding(
        self,
        rule: str,
        severity: Severity,
        title: str,
        *,
        summary: str = "",
        evidence: Mapping[str, Any] | None = None,
        remediation: str = "",
        atlas: tuple[str, ...] = ATLAS_LOAD,
        metrics: Mapping[str, Any] | None = None,
    ) -> Finding:
        """A finding about the stream at ``self.path``; ``rule`` becomes ``scan.<rule>``."""
        ev = {"path": self.path, **(evidence or {})}
        return Finding.fast(
            f"{CHECK}.{rule}",
            CHECK,
            title,
            severity,
            summary,
            metrics or {},
            OWASP,
            atlas,
            ev,
            remediation or _REMEDIATION,
        )

    # --- recursion ----------------------------------------------------------------------

    def child(self, name: str) -> ScanContext:
        """The context of a member ``name`` one container level down."""
        return ScanContext(
            path=f"{self.path}!{name}",
            limits=self.limits,
            depth=self.depth + 1,
            directory=None,
            budget=self.budget,
        )

    def claims(self, head: bytes) -> bool:
        """Whether dispatching a stream that starts with ``head`` would analyse anything.

        False when no (non-passive) format scanner accepts the head and the pickle probe would
        stop at the first byte. Containers use it to skip big members nobody parses (tensor
        data) without building a stream for them; passive scanners are the caller's concern.
        """
        order, by_first = _dispatch_tables()
        for s, passive in by_first[head[0]] if head else order:
            try:
                if not passive and s.sniff(head):
                    return True
            except Exception:  # noqa: BLE001 - let the dispatcher report the failing sniffer
                return True
        return bool(head) and head[0] in _pickle_opcodes()

    def scan_member(self, name: str, stream: BinaryIO) -> Iterator[Finding]:
        """Scan one container member by content, one level down (depth-limited)."""
        ctx = self.child(name)
        if ctx.depth > self.limits.max_depth:
            yield self._too_deep(ctx)
            return
        yield from _dispatch(stream, ctx)

    def scan_member_bytes(self, name: str, data: bytes) -> Iterator[Finding]:
        """:meth:`scan_member` over bytes already in memory."""
        ctx = self.child(name)
        if ctx.depth > self.limits.max_depth:
            yield self._too_deep(ctx)
            return
        yield from _dispatch(io.BytesIO(data), ctx, data[:HEAD_BYTES])

    def _too_deep(self, ctx: ScanContext) -> Finding:
        return ctx.finding(
            "limit.depth",
            Severity.MEDIUM,
            f"containers nested deeper than {self.limits.max_depth} levels; not analysed",
            remediation="Flatten the archive, or raise max_depth if the nesting is expected.",
        )


@runtime_checkable
class FormatScanner(Protocol):
    """One artifact format. ``sniff`` decides by content; ``scan`` yields findings.

    ``scan`` receives a readable, seekable binary stream positioned at 0. It must not import or
    execute anything it reads, must call ``ctx.check_time()`` in long loops, and should yield
    findings rather than raise; anything it raises becomes a ``scan.error`` finding.

    A scanner may set ``passive = True`` when its ``sniff`` accepts streams speculatively (the
    zip-tail polyglot check accepts everything): passive scanners run, but do not count as
    recognising the stream, so unclaimed streams still get the pickle probe. Such a scanner
    calls ``ctx.record_format(name)`` itself when it does find its format.

    A scanner may also set ``first_bytes`` (a ``bytes`` of every byte value a stream it accepts
    can start with, such as the first byte of its magic): its ``sniff`` is then only asked about
    non-empty heads that start with one of them.
    """

    name: str

    def sniff(self, head: bytes) -> bool: ...

    def scan(self, stream: BinaryIO, ctx: ScanContext) -> Iterator[Finding]: ...


_Order = tuple[tuple[FormatScanner, bool], ...]
_FORMATS: dict[str, FormatScanner] = {}
_order: tuple[_Order, tuple[_Order, ...]] | None = None
"""Cached dispatch order, (scanner, passive) pairs, and the same order per first byte of the
head (less the scanners whose ``first_bytes`` exclude it); reset when the registry changes.
Replaced whole, so a scan using it in another thread never sees it change."""
_BUILTINS_LOADED = False
_lock = threading.Lock()


def register_format(scanner: FormatScanner, *, replace: bool = False) -> FormatScanner:
    """Add a format scanner. Duplicate names are refused unless ``replace``."""
    if not isinstance(scanner, FormatScanner):
        raise RegistryError(f"{scanner!r} is not a FormatScanner (needs name, sniff, scan)")
    with _lock:
        if scanner.name in _FORMATS and not replace:
            raise RegistryError(f"format scanner {scanner.name!r} is already registered")
        _FORMATS[scanner.name] = scanner
        _reset_order()
    return scanner


def unregister_format(name: str) -> None:
    """Remove a format scanner by name (tests, or replacing a built-in); unknown names raise."""
    with _lock:
        if name not in _FORMATS:
            raise RegistryError(f"no format scanner named {name!r}")
        del _FORMATS[name]
        _reset_order()


def _formats() -> list[FormatScanner]:
    global _BUILTINS_LOADED
    if not _BUILTINS_LOADED:
        with _lock:
            if not _BUILTINS_LOADED:
                from warden.supplychain.formats import BUILTIN_FORMATS

                for s in BUILTIN_FORMATS:
                    _FORMATS.setdefault(s.name, s)
                _BUILTINS_LOADED = True
    return list(_FORMATS.values())


def _reset_order() -> None:
    global _order
    _order = None


def _dispatch_tables() -> tuple[_Order, tuple[_Order, ...]]:
    """The dispatch order, and per first byte the scanners whose ``sniff`` may accept it."""
    global _order
    tables = _order
    if tables is None:
        order = tuple((s, bool(getattr(s, "passive", False))) for s in _formats())
        hints = [_first_bytes(s) for s, _ in order]
        pairs = list(zip(order, hints, strict=True))
        by_first = tuple(
            tuple(pair for pair, hint in pairs if hint is None or b in hint) for b in range(256)
        )
        tables = _order = (order, by_first)
    return tables


def _first_bytes(scanner: FormatScanner) -> frozenset[int] | None:
    """The byte values ``scanner.first_bytes`` allows, or ``None`` (sniff every head)."""
    hint = getattr(scanner, "first_bytes", None)
    if not isinstance(hint, bytes | bytearray):
        return None
    return frozenset(hint)


def format_names() -> list[str]:
    """Names of the registered format scanners, in dispatch order."""
    return [s.name for s in _formats()]


_monotonic = time.monotonic


_opcodes: Mapping[int, str] | None = None


def _pickle_opcodes() -> Mapping[int, str]:
    """The pickle opcode table (the probe looks past the first byte only when it is one)."""
    global _opcodes
    if _opcodes is None:
        from warden.supplychain.pickles.vm import OPCODE_NAMES

        _opcodes = OPCODE_NAMES
    return _opcodes


_pickle_module: Any = None


def _probe_pickle() -> Callable[[BinaryIO, ScanContext], Iterator[Finding]]:
    """:func:`warden.supplychain.formats.pickle.probe_pickle` (its module imported once)."""
    global _pickle_module
    if _pickle_module is None:
        from warden.supplychain.formats import pickle

        _pickle_module = pickle
    probe: Callable[[BinaryIO, ScanContext], Iterator[Finding]] = _pickle_module.probe_pickle
    return probe


def read_head(stream: BinaryIO, n: int = HEAD_BYTES) -> bytes:
    """The first ``n`` bytes of ``stream``; the stream is left at position 0."""
    stream.seek(0)
    head = stream.read(n)
    stream.seek(0)
    return head


def _dispatch(stream: BinaryIO, ctx: ScanContext, head: bytes | None = None) -> Iterator[Finding]:
    """Run every format scanner whose ``sniff`` accepts the stream; contain their failures.

    ``head``: the stream's first :data:`HEAD_BYTES` bytes, when the caller has them at hand.
    """
    budget = ctx._b
    try:
        if _monotonic() > budget.deadline:
            ctx.check_time()
        if head is None:
            head = read_head(stream)
    except ScanLimitExceeded as exc:
        yield ctx.finding(exc.rule, exc.severity, str(exc))
        return
    except (OSError, ValueError) as exc:
        yield ctx.finding("error", Severity.MEDIUM, f"could not read: {exc}")
        return
    formats = budget.formats
    order, by_first = _dispatch_tables()
    if head:
        order = by_first[head[0]]
    try:
        hits = [pair for pair in order if pair[0].sniff(head)]
    except Exception:  # noqa: BLE001 - a sniffer failed: sniff one by one to report it
        hits = []
        for pair in order:
            s = pair[0]
            try:
                if s.sniff(head):
                    hits.append(pair)
            except Exception as exc:  # noqa: BLE001 - a broken sniffer is a finding, not a pass
                yield ctx.finding(
                    "error",
                    Severity.MEDIUM,
                    f"{s.name}: format detection failed ({type(exc).__name__}: {exc})"[:300],
                    evidence={"format": s.name, "error": type(exc).__name__},
                )
    matched: list[FormatScanner] = []
    active = 0
    for s, passive in hits:
        matched.append(s)
        if not passive:
            active += 1
            formats.append((ctx.path, s.name))
    if not active:
        before = len(formats)
        if head and head[0] in _pickle_opcodes():  # else the probe stops at the first byte
            yield from _guarded(_probe_pickle(), stream, ctx, "pickle-probe")
        if len(formats) == before:
            formats.append((ctx.path, "unknown"))
    for s in matched:
        stream.seek(0)
        yield from _guarded(s.scan, stream, ctx, s.name)


def _guarded(
    scan: Callable[[BinaryIO, ScanContext], Iterable[Finding]],
    stream: BinaryIO,
    ctx: ScanContext,
    name: str,
) -> Iterator[Finding]:
    """Yield from ``scan``, turning limits and exceptions into findings (fail closed)."""
    try:
        yield from scan(stream, ctx)
    except ScanLimitExceeded as exc:
        yield ctx.finding(
            exc.rule,
            exc.severity,
            str(exc),
            evidence={"format": name},
            remediation="The artifact was only partly analysed: treat it as unverified.",
        )
    except MemoryError:
        yield ctx.finding(
            "limit.memory",
            Severity.HIGH,
            f"{name}: ran out of memory while parsing; the artifact was not fully analysed",
            evidence={"format": name},
        )
    except RecursionError:
        yield ctx.finding(
            "error",
            Severity.HIGH,
            f"{name}: structure nested too deeply to analyse",
            evidence={"format": name},
        )
    except Exception as exc:  # noqa: BLE001 - every failure is a finding, never a crash
        yield ctx.finding(
            "error",
            Severity.MEDIUM,
            f"{name}: could not be parsed ({type(exc).__name__}: {exc})"[:300],
            evidence={"format": name, "error": type(exc).__name__},
            remediation="An artifact that cannot be parsed cannot be vouched for; "
            "treat it as untrusted.",
        )


@dataclass(frozen=True)
class FileScan:
    """The result of scanning one top-level file."""

    path: str
    """The file as given (display path)."""
    size: int
    """Size in bytes (0 when unreadable)."""
    seconds: float
    """Wall-clock time spent."""
    findings: tuple[Finding, ...]
    """Everything found, in discovery order."""
    formats: tuple[tuple[str, str], ...] = ()
    """(display path, format name) for every stream recognised, members included."""

    @property
    def worst(self) -> Severity | None:
        """The highest severity among the findings, or ``None`` when there are none."""
        return max((f.severity for f in self.findings), default=None)


DEFAULT_LIMITS = ScanLimits()
"""The limits used when none are given."""


def scan_file(
    path: str | os.PathLike[str],
    limits: ScanLimits | None = None,
    *,
    display: str | None = None,
) -> FileScan:
    """Scan one file by content. Never raises for bad content; unreadable files are findings."""
    name = os.fspath(path)
    return _scan_file(name, None, limits or DEFAULT_LIMITS, display or name)


_FOLDERS: dict[str, Path] = {}
"""Folders by their text, so that scanning many files builds one ``Path`` per folder."""


def _folder(text: str) -> Path:
    """``Path(text)``, shared between the files of one folder."""
    folder = _FOLDERS.get(text)
    if folder is None:
        if len(_FOLDERS) >= 1024:
            _FOLDERS.clear()
        folder = _FOLDERS[text] = Path(text)
    return folder


def _scan_file(name: str, directory: Path | None, limits: ScanLimits, display: str) -> FileScan:
    """:func:`scan_file` of ``name`` (a str); ``directory``: its folder, when the caller has it
    at hand (walks share one per folder)."""
    start = time.perf_counter()
    budget = _Budget(limits, _monotonic() + limits.max_seconds)
    if directory is None:
        directory = _folder(os.path.dirname(name) or ".")
    ctx = ScanContext(display, limits, 0, directory, budget)
    size = 0
    findings: list[Finding] = []
    data: bytes | None = None
    try:
        # A bare descriptor first: most files are small, read whole and scanned from memory
        # (every scanner's reads then cost no system call; the zip-tail check alone reads the
        # last 64 KiB of every file anyway), and a file object is only built for the others.
        fd = os.open(name, _O_READ)
        try:
            size = os.fstat(fd).st_size
            if size <= SMALL_FILE:
                data = _read_upto(fd, SMALL_FILE + 1)
                if len(data) > SMALL_FILE:
                    data = None  # grew while being read: scan it as a file
                    os.lseek(fd, 0, os.SEEK_SET)
            if data is None:
                with open(fd, "rb", closefd=False) as fh:
                    findings.extend(_dispatch(fh, ctx))
        finally:
            os.close(fd)
    except OSError as exc:
        size, data = 0, None
        findings.append(
            ctx.finding("error", Severity.MEDIUM, f"could not open: {exc.strerror or exc}")
        )
    if data is not None:
        size = len(data)
        findings.extend(_dispatch(io.BytesIO(data), ctx, data[:HEAD_BYTES]))
    return FileScan(
        display, size, time.perf_counter() - start, tuple(findings), tuple(budget.formats)
    )


_O_READ = os.O_RDONLY | getattr(os, "O_BINARY", 0) | getattr(os, "O_CLOEXEC", 0)


def _read_upto(fd: int, limit: int) -> bytes:
    """Up to ``limit`` bytes from ``fd``: until then or the end of the file."""
    first = os.read(fd, limit)
    if not first or len(first) >= limit:
        return first
    parts = [first]
    got = len(first)
    while got < limit:
        chunk = os.read(fd, limit - got)
        if not chunk:
            break
        parts.append(chunk)
        got += len(chunk)
    return parts[0] if len(parts) == 1 else b"".join(parts)


def scan_bytes(data: bytes, name: str = "<bytes>", limits: ScanLimits | None = None) -> FileScan:
    """Scan an in-memory artifact (as :func:`scan_file` does a file)."""
    limits = limits or DEFAULT_LIMITS
    ctx = ScanContext(path=name, limits=limits)
    start = time.perf_counter()
    findings = tuple(_dispatch(io.BytesIO(data), ctx, data[:HEAD_BYTES]))
    return FileScan(name, len(data), time.perf_counter() - start, findings, tuple(ctx._b.formats))
