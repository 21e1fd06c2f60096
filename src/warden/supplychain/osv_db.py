"""The local OSV database: import an OSV PyPI export once, look packages up offline.

:func:`import_osv_zip` reads an OSV export (a zip of JSON advisories, like the ``all.zip``
that https://osv-vulnerabilities.storage.googleapis.com/PyPI/all.zip publishes) and writes one
SQLite file, ``osv.sqlite3``, in the database folder: each advisory's JSON once, and an index
from PEP 503 package name to advisory ids. The import is atomic: the new database is built in
a temporary file beside the old one and renamed over it, so a reader sees the old database or
the new one, never half of either.

The archive is untrusted input. Members are read into memory with caps on their number, their
size, the total decompressed size and the compression ratio (a zip bomb is refused, even one
whose headers lie about sizes); nothing is ever extracted to disk, and an archive whose member
names are absolute or climb out with ``..`` is refused as crafted. Each advisory is validated
(:func:`warden.supplychain.osv.parse_advisory`); malformed ones are skipped and counted, and so
are withdrawn ones and ones without a PyPI package. An archive with no valid PyPI advisory at
all is refused with a clear error.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import secrets
import sqlite3
import stat
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

from warden.errors import ConfigError, DataError
from warden.supplychain.osv import Advisory, normalize_name, parse_advisory

__all__ = [
    "DB_FILENAME",
    "DB_FORMAT",
    "ImportLimits",
    "ImportReport",
    "OsvDatabase",
    "import_osv_zip",
]

logger = logging.getLogger(__name__)

DB_FILENAME = "osv.sqlite3"
"""The database file inside the database folder."""

DB_FORMAT = "warden-osv-1"
"""Format tag stored in the database; a different tag means "re-import"."""

OSV_EXPORT_URL = "https://osv-vulnerabilities.storage.googleapis.com/PyPI/all.zip"
"""Where the OSV project publishes the PyPI export (download it yourself; Warden stays offline)."""

_CHUNK = 1 << 16
_MAX_EXAMPLES = 5


@dataclass(frozen=True)
class ImportLimits:
    """Caps on what one archive may cost. Exceeding one refuses the whole archive."""

    max_archive_bytes: int = 4 << 30
    """Size of the zip file itself."""
    max_members: int = 1_000_000
    """Entries in the archive's central directory."""
    max_member_bytes: int = 16 << 20
    """Decompressed size of one advisory (real ones are kilobytes)."""
    max_total_bytes: int = 8 << 30
    """Decompressed size of all members together."""
    max_ratio: float = 200.0
    """Decompressed / compressed size of a member larger than 1 MiB (JSON compresses ~10x)."""

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, int | float) or isinstance(value, bool) or value <= 0:
                raise ConfigError(f"import limit {f.name} must be a positive number, got {value!r}")


@dataclass(frozen=True)
class ImportReport:
    """What :func:`import_osv_zip` did."""

    database: Path
    """The database file written."""
    advisories: int
    """Valid, current advisories stored."""
    packages: int
    """Distinct PyPI packages (normalised names) they affect."""
    malformed: int
    """Members skipped because they are not valid OSV JSON."""
    withdrawn: int
    """Advisories skipped because they are withdrawn."""
    other_ecosystems: int
    """Valid advisories skipped because they name no PyPI package."""
    duplicates: int
    """Advisories whose id appeared more than once (the latest ``modified`` is kept)."""
    problems: tuple[str, ...]
    """The first few reasons members were skipped as malformed."""
    source_sha256: str
    """SHA-256 of the imported zip file."""


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _unsafe_name(name: str) -> bool:
    if "\x00" in name or name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        return True
    return ".." in PurePosixPath(name.replace("\\", "/")).parts


def _read_member(
    zf: zipfile.ZipFile, info: zipfile.ZipInfo, limits: ImportLimits, budget: list[int]
) -> bytes:
    """A member's bytes, read in chunks under the size, ratio and total caps."""
    source = zf.filename or "archive"
    if info.file_size > limits.max_member_bytes:
        raise DataError(
            f"{source}: member {info.filename!r} declares {info.file_size} bytes, over the "
            f"{limits.max_member_bytes}-byte cap for one advisory; refusing the archive"
        )
    parts: list[bytes] = []
    size = 0
    with zf.open(info) as fh:
        while chunk := fh.read(_CHUNK):
            size += len(chunk)
            budget[0] += len(chunk)
            ratio = size / max(info.compress_size, 1)
            if size > limits.max_member_bytes or (size > 1 << 20 and ratio > limits.max_ratio):
                raise DataError(
                    f"{source}: member {info.filename!r} expands past {size} bytes "
                    f"(ratio {ratio:.0f}:1); this looks like a zip bomb, refusing the archive"
                )
            if budget[0] > limits.max_total_bytes:
                raise DataError(
                    f"{source}: more than {limits.max_total_bytes} bytes after decompression "
                    "(max_total_bytes); this looks like a zip bomb, refusing the archive"
                )
            parts.append(chunk)
    return b"".join(parts)


def _members(path: Path, limits: ImportLimits) -> Iterator[tuple[str, bytes]]:
    """(name, bytes) of every file member, in archive order, under the limits."""
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise DataError(f"{path}: cannot read the OSV export: {exc.strerror or exc}") from exc
    if size > limits.max_archive_bytes:
        raise DataError(
            f"{path}: {size} bytes is over the {limits.max_archive_bytes}-byte cap for an OSV "
            "export (max_archive_bytes)"
        )
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise DataError(
            f"{path}: not a zip archive ({exc}); expected an OSV export such as {OSV_EXPORT_URL}"
        ) from exc
    with zf:
        infos = zf.infolist()
        if len(infos) > limits.max_members:
            raise DataError(
                f"{path}: {len(infos)} members is over the {limits.max_members}-member cap "
                "(max_members); refusing the archive"
            )
        for info in infos:
            if _unsafe_name(info.filename):
                raise DataError(
                    f"{path}: member name {info.filename!r} is absolute or climbs out with "
                    "'..'; an OSV export has flat names like PYSEC-2021-1.json; refusing the "
                    "archive as crafted"
                )
        budget = [0]
        for info in infos:
            if info.is_dir():
                continue
            if info.flag_bits & 0x1:
                yield info.filename, b""  # encrypted: counted as malformed below
                continue
            try:
                data = _read_member(zf, info, limits, budget)
            except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError) as exc:
                raise DataError(
                    f"{path}: member {info.filename!r} cannot be decompressed ({exc}); "
                    "the archive is damaged"
                ) from exc
            yield info.filename, data


def _decode(name: str, data: bytes) -> tuple[str, Advisory]:
    """The member as compact JSON text and as a validated advisory."""
    if not data:
        raise DataError(f"{name}: empty or encrypted member")
    try:
        doc = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise DataError(f"{name}: not UTF-8 JSON ({type(exc).__name__})") from exc
    advisory = parse_advisory(doc, name)
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False), advisory


_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE advisories (id TEXT PRIMARY KEY, modified TEXT NOT NULL, doc TEXT NOT NULL);
CREATE TABLE affects (name TEXT NOT NULL, id TEXT NOT NULL, PRIMARY KEY (name, id))
    WITHOUT ROWID;
"""


def import_osv_zip(
    source: str | os.PathLike[str],
    database: str | os.PathLike[str],
    *,
    limits: ImportLimits | None = None,
) -> ImportReport:
    """Import the OSV export ``source`` into the database folder ``database`` (atomically).

    Raises :class:`~warden.errors.DataError` when ``source`` is not a zip, breaks a limit, has
    unsafe member names, or holds no valid PyPI advisory; the existing database is then left
    as it was. Raises :class:`~warden.errors.ConfigError` when the folder cannot be written.
    """
    src = Path(source)
    lim = limits or ImportLimits()
    folder = Path(database)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(
            f"cannot create the OSV database folder {folder}: {exc.strerror or exc}"
        ) from exc
    target = folder / DB_FILENAME
    tmp = folder / f".{DB_FILENAME}.{secrets.token_hex(6)}.tmp"
    try:
        report = _build(src, tmp, target, lim)
        os.replace(tmp, target)
    except sqlite3.Error as exc:
        raise ConfigError(f"cannot write the OSV database {target}: {exc}") from exc
    except OSError as exc:
        raise ConfigError(f"cannot write the OSV database {target}: {exc.strerror or exc}") from exc
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
    logger.info(
        "imported %d advisories for %d packages into %s",
        report.advisories,
        report.packages,
        target,
    )
    return report


def _build(src: Path, tmp: Path, target: Path, lim: ImportLimits) -> ImportReport:
    malformed = withdrawn = others = duplicates = kept = 0
    problems: list[str] = []
    con = sqlite3.connect(tmp)
    try:
        with con:
            con.executescript(_SCHEMA)
            for name, data in _members(src, lim):
                try:
                    doc, adv = _decode(name, data)
                except DataError as exc:
                    malformed += 1
                    if len(problems) < _MAX_EXAMPLES:
                        problems.append(str(exc))
                    continue
                if adv.withdrawn:
                    withdrawn += 1
                    continue
                if not adv.affected:
                    others += 1
                    continue
                row = con.execute(
                    "SELECT modified FROM advisories WHERE id = ?", (adv.id,)
                ).fetchone()
                if row is not None:
                    duplicates += 1
                    if row[0] >= adv.modified:
                        continue
                    con.execute("DELETE FROM advisories WHERE id = ?", (adv.id,))
                    con.execute("DELETE FROM affects WHERE id = ?", (adv.id,))
                    kept -= 1
                con.execute("INSERT INTO advisories VALUES (?, ?, ?)", (adv.id, adv.modified, doc))
                con.executemany(
                    "INSERT INTO affects VALUES (?, ?)", [(n, adv.id) for n in adv.packages()]
                )
                kept += 1
            if not kept:
                if malformed and not (withdrawn or others):
                    raise DataError(
                        f"{src}: none of its {malformed} member(s) is an OSV advisory "
                        f"(first problem: {problems[0]}); expected a zip of OSV JSON records "
                        f"such as {OSV_EXPORT_URL}"
                    )
                raise DataError(
                    f"{src}: no current PyPI advisory in the archive ({withdrawn} withdrawn, "
                    f"{others} for other ecosystems, {malformed} malformed); expected the PyPI "
                    f"export {OSV_EXPORT_URL}"
                )
            (packages,) = con.execute("SELECT COUNT(DISTINCT name) FROM affects").fetchone()
            source_sha = _sha256(src)
            meta = {
                "format": DB_FORMAT,
                "imported_at": datetime.now(UTC).isoformat(timespec="seconds"),
                "source": src.name,
                "source_sha256": source_sha,
                "advisories": str(kept),
                "packages": str(packages),
            }
            con.executemany("INSERT INTO meta VALUES (?, ?)", list(meta.items()))
    finally:
        con.close()
    return ImportReport(
        database=target,
        advisories=kept,
        packages=int(packages),
        malformed=malformed,
        withdrawn=withdrawn,
        other_ecosystems=others,
        duplicates=duplicates,
        problems=tuple(problems),
        source_sha256=source_sha,
    )


class OsvDatabase:
    """A read-only view of an imported OSV database; open it with :meth:`open`.

    Use as a context manager, or call :meth:`close`.
    """

    def __init__(self, path: Path, connection: sqlite3.Connection, meta: dict[str, str]) -> None:
        self.path = path
        """The database file."""
        self.meta = meta
        """What the import recorded: format, imported_at, source, source_sha256, counts."""
        self._con = connection

    @classmethod
    def open(cls, database: str | os.PathLike[str]) -> OsvDatabase:
        """Open the database in folder ``database`` (or the file itself).

        Raises :class:`~warden.errors.ConfigError` telling the user to run ``warden deps
        update-db`` when there is none, or when the file is not a Warden OSV database.
        """
        path = Path(database)
        if not path.is_file():
            path = path / DB_FILENAME
        hint = f"run `warden deps update-db --from all.zip` (the PyPI export, {OSV_EXPORT_URL})"
        try:
            mode = path.stat().st_mode
        except OSError:
            raise ConfigError(f"no OSV database at {path}; {hint}") from None
        if not stat.S_ISREG(mode):
            raise ConfigError(f"{path} is not a file; {hint}")
        try:
            con = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
            meta = dict(con.execute("SELECT key, value FROM meta").fetchall())
        except sqlite3.Error as exc:
            raise ConfigError(f"{path} is not a Warden OSV database ({exc}); {hint}") from exc
        if meta.get("format") != DB_FORMAT:
            con.close()
            raise ConfigError(
                f"{path} has format {meta.get('format')!r}, expected {DB_FORMAT!r}; {hint}"
            )
        return cls(path, con, meta)

    def __enter__(self) -> OsvDatabase:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Release the database file."""
        self._con.close()

    def advisories_for(self, name: str) -> list[Advisory]:
        """Current advisories that affect package ``name`` (any spelling), by id."""
        rows = self._con.execute(
            "SELECT a.id, a.doc FROM affects f JOIN advisories a ON a.id = f.id "
            "WHERE f.name = ? ORDER BY a.id",
            (normalize_name(name),),
        ).fetchall()
        out: list[Advisory] = []
        for ident, doc in rows:
            try:
                adv = parse_advisory(json.loads(doc), ident)
            except (DataError, ValueError) as exc:
                raise ConfigError(
                    f"{self.path}: stored advisory {ident} is unreadable ({exc}); re-run "
                    "`warden deps update-db`"
                ) from exc
            if not adv.withdrawn:
                out.append(adv)
        return out

    def stats(self) -> dict[str, Any]:
        """The import's metadata, with counts as numbers."""
        out: dict[str, Any] = dict(self.meta)
        for key in ("advisories", "packages"):
            if key in out and str(out[key]).isdigit():
                out[key] = int(out[key])
        return out
