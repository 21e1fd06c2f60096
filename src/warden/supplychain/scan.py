"""Scan files and directories: walk, scan each file by content, collect a :class:`ScanReport`.

``scan_paths`` never follows symbolic links: a link is reported (``path.symlink``; one that
points outside the scanned directory is worse) and its target is not read through it. Files are
scanned in parallel threads; results keep the order of the walk.
"""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from warden.assess.finding import Finding, Severity
from warden.errors import ConfigError
from warden.supplychain.scanner import (
    DEFAULT_LIMITS,
    FileScan,
    ScanContext,
    ScanLimits,
    _folder,
    _scan_file,
)

__all__ = ["ScanReport", "iter_scan", "scan_paths"]


@dataclass(frozen=True)
class ScanReport:
    """Everything one ``warden scan`` run found."""

    files: tuple[FileScan, ...]
    """One entry per file, in walk order."""
    started_at: str
    """UTC start time, ISO 8601."""
    seconds: float
    """Wall-clock duration of the whole scan."""
    roots: tuple[str, ...] = ()
    """The paths as given."""

    @property
    def findings(self) -> list[Finding]:
        """Every finding of every file."""
        return [f for fs in self.files for f in fs.findings]

    @property
    def worst(self) -> Severity | None:
        """The highest severity found, or ``None`` when nothing was found."""
        return max((f.severity for f in self.findings), default=None)

    @property
    def bytes_scanned(self) -> int:
        """Total size of the files scanned."""
        return sum(fs.size for fs in self.files)

    def counts(self) -> dict[str, int]:
        """Number of findings per severity name (every severity present, zeros included)."""
        counts = {str(s): 0 for s in Severity}
        for f in self.findings:
            counts[str(f.severity)] += 1
        return counts

    def fails(self, threshold: Severity) -> bool:
        """Whether any finding is at or above ``threshold``."""
        worst = self.worst
        return worst is not None and worst >= threshold


def _symlink_finding(link: Path, root: Path) -> Finding:
    target = os.readlink(link)
    resolved = (link.parent / target).resolve()
    outside = root.is_dir() and not resolved.is_relative_to(root.resolve())
    ctx = ScanContext(path=str(link), limits=DEFAULT_LIMITS)
    return ctx.finding(
        "path.symlink",
        Severity.HIGH if outside else Severity.LOW,
        f"symbolic link to {target!r}" + (" outside the scanned directory" if outside else ""),
        summary="Links are not followed. A link leaving the model directory can make a loader "
        "read (or a packager ship) files that were never reviewed.",
        evidence={"target": target, "outside": outside},
        remediation="Replace links with the files they point to, or remove them.",
    )


_Entry = tuple[str, Path, Path | None]
"""A walked entry: (path, its folder, None) for a file; (path, folder, root) for a link."""


def _walk(root: Path) -> Iterator[_Entry]:
    """``(file, folder, None)`` for each regular file; ``(link, folder, root)`` for each link.

    Top-down and sorted by name: a directory's links and files, then its subdirectories.
    ``os.scandir`` answers "is it a link / a directory" without a stat per entry; one ``Path``
    is built per folder, not per file.
    """
    st = os.lstat(root)
    if stat.S_ISLNK(st.st_mode):
        yield str(root), root.parent, root
        return
    if not stat.S_ISDIR(st.st_mode):
        yield str(root), root.parent, None
        return
    stack = [str(root)]
    while stack:
        here = stack.pop()
        folder = Path(here)
        with os.scandir(here) as it:
            entries = sorted(it, key=lambda e: e.name)
        subdirs = []
        for e in entries:
            if e.is_symlink():
                yield e.path, folder, root
            elif e.is_dir(follow_symlinks=False):
                subdirs.append(e.path)
            else:
                yield e.path, folder, None
        stack.extend(reversed(subdirs))


def _file_entry(raw: str | os.PathLike[str]) -> _Entry | None:
    """The walk of a path that is a regular file (or anything but a directory or a link),
    without building a ``Path`` for it; ``None`` for a directory or a link (walk those)."""
    text = os.fspath(raw)
    st = os.lstat(text)
    if stat.S_ISLNK(st.st_mode) or stat.S_ISDIR(st.st_mode):
        return None
    if os.sep != "/" or not _is_normal(text):
        text = str(Path(text))
    return text, _folder(os.path.dirname(text) or "."), None


def _is_normal(text: str) -> bool:
    """Whether ``str(Path(text)) == text`` on POSIX (no ``//``, ``.`` parts, trailing ``/``)."""
    return (
        bool(text)
        and "//" not in text
        and "/./" not in text
        and not text.startswith("./")
        and not text.endswith(("/", "/."))
        and text != "."
    )


def iter_scan(
    paths: Iterable[str | os.PathLike[str]],
    limits: ScanLimits | None = None,
    *,
    workers: int | None = None,
) -> Iterator[FileScan]:
    """Scan files and directory trees, yielding one :class:`FileScan` per file in walk order."""
    limits = limits or DEFAULT_LIMITS
    workers = workers or min(4, os.cpu_count() or 1)
    if workers < 1:
        raise ConfigError(f"workers must be >= 1, got {workers}")
    entries: list[_Entry] = []
    for raw in paths:
        try:
            entry = _file_entry(raw)
            found = [entry] if entry is not None else list(_walk(Path(raw)))
        except FileNotFoundError:
            raise ConfigError(f"no such file or directory: {raw}") from None
        except OSError as exc:
            raise ConfigError(f"cannot read {raw}: {exc.strerror or exc}") from exc
        if not found:
            raise ConfigError(f"no files to scan under {raw}")
        entries.extend(found)

    def one(entry: _Entry) -> FileScan:
        name, folder, link_root = entry
        if link_root is not None:
            return FileScan(name, 0, 0.0, (_symlink_finding(Path(name), link_root),))
        return _scan_file(name, folder, limits, name)

    if workers == 1 or len(entries) < 2:
        yield from map(one, entries)
        return
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="warden-scan") as pool:
        yield from pool.map(one, entries)


_stamp: tuple[int, str] = (-1, "")


def _now_iso() -> str:
    """The current UTC time to the second, ISO 8601 (formatted once per second)."""
    global _stamp
    second = int(time.time())
    cached = _stamp
    if cached[0] != second:
        text = datetime.fromtimestamp(second, UTC).isoformat(timespec="seconds")
        cached = _stamp = (second, text)
    return cached[1]


def scan_paths(
    paths: Sequence[str | os.PathLike[str]],
    limits: ScanLimits | None = None,
    *,
    workers: int | None = None,
    on_file: Callable[[FileScan], Any] | None = None,
) -> ScanReport:
    """Scan every file under ``paths`` (files or directories) and collect a report.

    ``on_file`` is called after each file (progress). Raises :class:`ConfigError` only for a
    path that does not exist; everything wrong *inside* a file is a finding.
    """
    if not paths:
        raise ConfigError("nothing to scan: give at least one file or directory")
    started = _now_iso()
    start = time.perf_counter()
    files: list[FileScan] = []
    for fs in iter_scan(paths, limits, workers=workers):
        files.append(fs)
        if on_file is not None:
            on_file(fs)
    return ScanReport(
        tuple(files), started, time.perf_counter() - start, tuple(str(p) for p in paths)
    )
