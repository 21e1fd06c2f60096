"""Backups of a Warden store: create, verify and restore one self-checking file.

A backup is one uncompressed tar file (written to a temporary name, fsynced, then renamed into
place; mode 0600) with these members, in this order::

    tables/<table>.jsonl    every table of the schema, one JSON object per row, in FK order
    blobs/<id>              each blob's ciphertext file exactly as the store holds it
    manifest.json           what the backup holds and how to check it (last, see below)

Tables are dumped generically, column by column (bytes as base64, times as ISO-8601 UTC, JSON
columns as they are), all in **one** read transaction so the dump is a consistent snapshot;
the blob files listed in that snapshot are then copied as they are (they are encrypted, and the
data keys that open them are in the ``blobs`` rows, wrapped by the master key). **The master
key is never in a backup**: restoring needs the key the store used when the backup was made.

``manifest.json`` (format ``warden-backup/1``) records the Warden version, the schema revision,
each table's columns, row count, size and SHA-256, each blob's plaintext size, file size and
ciphertext SHA-256, the ids of the master keys that wrap the data keys, and an HMAC-SHA256 over
the canonical manifest (sorted keys, no spaces, ASCII) keyed by HKDF-SHA256(master key,
info="warden backup manifest"). The plain hashes catch damage; the HMAC catches a deliberate
edit that also recomputed them, when the master key is there to check it.

Reading never trusts the archive: only regular-file members named as above (no links, no
absolute paths, no ``..``, no duplicates), a bounded manifest and bounded rows; anything else
is a :class:`~warden.errors.BackupError` naming the member. Nothing is extracted except into a
private directory (0700) that is removed afterwards.

Restoring goes into an *empty* target (no rows in its database, no blob files): the schema is
created at the backup's revision, rows are inserted table by table in FK order in one
transaction, the schema is upgraded to this Warden's newest revision, blob files are moved into
place and every blob is decrypted and authenticated. If anything fails after the target was
touched, what the restore created is removed again (tables dropped or emptied, blob files and
new directories deleted), so a failed restore leaves the target as it found it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import json
import logging
import os
import re
import secrets
import shutil
import tarfile
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import IO, Any, BinaryIO

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import (
    JSON,
    Column,
    Connection,
    Date,
    DateTime,
    Integer,
    LargeBinary,
    MetaData,
    Numeric,
    Table,
    Time,
    TypeDecorator,
    func,
    insert,
    select,
    text,
)
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.types import TypeEngine

from warden.config import Settings
from warden.errors import BackupError, MasterKeyError, StoreError
from warden.store.blobs import BlobStore
from warden.store.db import Database, sqlite_url
from warden.store.home import BLOBS_DIR, DB_FILE, Store
from warden.store.keys import KEY_FILE, Keyring, MasterKey, load_keyring, write_key_file
from warden.store.tables import Base, Blob

__all__ = [
    "FORMAT",
    "BackupCheck",
    "BackupManifest",
    "BlobEntry",
    "RestoreResult",
    "TableEntry",
    "create_backup",
    "restore_backup",
    "verify_backup",
]

log = logging.getLogger(__name__)

FORMAT = "warden-backup/1"
"""The format name in ``manifest.json``; other formats are refused."""
MANIFEST = "manifest.json"
MAX_MANIFEST_BYTES = 256 << 20
"""The largest ``manifest.json`` read (it is parsed in memory)."""
MAX_ROW_BYTES = 256 << 20
"""The longest table row (one JSON line) read."""
MAX_MEMBERS = 20_000_000
"""The most members a backup may have (their headers are held in memory)."""

_HMAC_INFO = b"warden backup manifest"
_VERSION_TABLE = "alembic_version"
_COPY_CHUNK = 1 << 20
_BATCH_ROWS = 500
_TABLE_NAME = r"[a-z_][a-z0-9_]{0,62}"
_MEMBER = re.compile(rf"(?:manifest\.json|tables/{_TABLE_NAME}\.jsonl|blobs/[0-9a-f]{{64}})")
_HEX64 = re.compile(r"[0-9a-f]{64}")


# --- results ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class TableEntry:
    """One table's dump in a backup."""

    name: str
    """The table name; its member is ``tables/<name>.jsonl``."""
    columns: tuple[str, ...]
    """The columns each row object has."""
    rows: int
    """How many rows (lines) the member holds."""
    size: int
    """The member's size in bytes."""
    sha256: str
    """SHA-256 of the member."""

    @property
    def member(self) -> str:
        """The tar member holding the rows."""
        return f"tables/{self.name}.jsonl"


@dataclass(frozen=True)
class BlobEntry:
    """One blob's ciphertext file in a backup."""

    id: str
    """The blob id (SHA-256 of the plaintext); its member is ``blobs/<id>``."""
    size: int
    """The plaintext size in bytes."""
    file_size: int
    """The ciphertext file's size in bytes."""
    sha256: str
    """SHA-256 of the ciphertext file (not of the plaintext)."""

    @property
    def member(self) -> str:
        """The tar member holding the ciphertext."""
        return f"blobs/{self.id}"


@dataclass(frozen=True)
class BackupManifest:
    """What a backup holds (``manifest.json``)."""

    created_at: datetime
    """When the snapshot was taken (UTC)."""
    warden_version: str
    """The Warden version that wrote the backup."""
    schema_revision: str
    """The database schema revision (Alembic) of the dumped rows."""
    dialect: str
    """The database the rows came from (``sqlite`` or ``postgresql``); restores may go to
    either."""
    tables: tuple[TableEntry, ...]
    """Every table, in foreign-key order."""
    blobs: tuple[BlobEntry, ...]
    """Every blob file, sorted by id."""
    key_ids: tuple[str, ...]
    """The master keys (ids only) that wrap the backed-up data keys; restoring needs them."""
    hmac_key_id: str
    """The master key whose derived key authenticates the manifest."""
    hmac: str = field(repr=False)
    """HMAC-SHA256 (hex) over the canonical manifest."""
    format: str = FORMAT
    """The backup format."""

    @property
    def rows(self) -> int:
        """Rows in all tables."""
        return sum(t.rows for t in self.tables)

    def to_json(self) -> dict[str, Any]:
        """The ``manifest.json`` document."""
        return {
            "format": self.format,
            "created_at": _iso(self.created_at),
            "warden_version": self.warden_version,
            "schema_revision": self.schema_revision,
            "dialect": self.dialect,
            "tables": [
                {
                    "name": t.name,
                    "columns": list(t.columns),
                    "rows": t.rows,
                    "size": t.size,
                    "sha256": t.sha256,
                }
                for t in self.tables
            ],
            "blobs": [
                {"id": b.id, "size": b.size, "file_size": b.file_size, "sha256": b.sha256}
                for b in self.blobs
            ],
            "key_ids": list(self.key_ids),
            "hmac": {
                "algorithm": "HMAC-SHA256",
                "kdf": "HKDF-SHA256",
                "info": _HMAC_INFO.decode(),
                "key_id": self.hmac_key_id,
                "value": self.hmac,
            },
        }

    @classmethod
    def from_json(cls, doc: object) -> BackupManifest:
        """Parse a ``manifest.json`` document (BackupError naming what is wrong)."""
        m = _Fields(doc, "manifest.json")
        fmt = m.text("format")
        if fmt != FORMAT:
            raise BackupError(
                f"manifest.json: format {fmt!r} is not supported; this Warden reads {FORMAT}"
            )
        m.only(
            "format",
            "created_at",
            "warden_version",
            "schema_revision",
            "dialect",
            "tables",
            "blobs",
            "key_ids",
            "hmac",
        )
        tables = []
        for i, item in enumerate(m.items("tables")):
            t = _Fields(item, f"manifest.json tables[{i}]")
            t.only("name", "columns", "rows", "size", "sha256")
            name = t.text("name")
            if not re.fullmatch(_TABLE_NAME, name):
                raise BackupError(f"manifest.json tables[{i}]: {name!r} is not a table name")
            columns = tuple(t.strings("columns"))
            tables.append(
                TableEntry(
                    name, columns, t.integer("rows"), t.integer("size"), t.hexdigest("sha256")
                )
            )
        blobs = []
        for i, item in enumerate(m.items("blobs")):
            b = _Fields(item, f"manifest.json blobs[{i}]")
            b.only("id", "size", "file_size", "sha256")
            blobs.append(
                BlobEntry(
                    b.hexdigest("id"),
                    b.integer("size"),
                    b.integer("file_size"),
                    b.hexdigest("sha256"),
                )
            )
        mac = _Fields(m.get("hmac"), "manifest.json hmac")
        mac.only("algorithm", "kdf", "info", "key_id", "value")
        if (mac.text("algorithm"), mac.text("kdf"), mac.text("info")) != (
            "HMAC-SHA256",
            "HKDF-SHA256",
            _HMAC_INFO.decode(),
        ):
            raise BackupError("manifest.json hmac: expected HMAC-SHA256 keyed by HKDF-SHA256")
        _unique([t.name for t in tables], "table")
        _unique([b.id for b in blobs], "blob")
        return cls(
            created_at=m.timestamp("created_at"),
            warden_version=m.text("warden_version"),
            schema_revision=m.text("schema_revision"),
            dialect=m.text("dialect"),
            tables=tuple(tables),
            blobs=tuple(blobs),
            key_ids=tuple(m.strings("key_ids")),
            hmac_key_id=mac.text("key_id"),
            hmac=mac.hexdigest("value"),
        )


@dataclass(frozen=True)
class BackupCheck:
    """The result of :func:`verify_backup`."""

    path: Path
    """The backup file checked."""
    manifest: BackupManifest | None
    """Its manifest (``None`` when the file is too damaged to read one)."""
    problems: tuple[str, ...]
    """One line per problem found; empty means the backup is intact."""
    hmac_checked: bool
    """Whether the manifest's HMAC was checked (needs the master key)."""
    blobs_authenticated: bool
    """Whether every blob was decrypted and authenticated (needs the master key)."""

    @property
    def ok(self) -> bool:
        """No problems found."""
        return not self.problems


@dataclass(frozen=True)
class RestoreResult:
    """What :func:`restore_backup` restored."""

    home: Path
    """The Warden home restored into."""
    database: str
    """The database restored into (password hidden)."""
    backup_revision: str
    """The schema revision of the backup's rows."""
    revision: str
    """The schema revision of the restored database (this Warden's newest)."""
    tables: tuple[tuple[str, int], ...]
    """Rows restored per table, in the order they were inserted."""
    blobs: int
    """Blob files restored (each one decrypted and authenticated)."""
    key_ids: tuple[str, ...]
    """The master keys that wrap the restored data keys."""
    key_file_written: bool = False
    """Whether the master key was written to ``home/master.key``."""

    @property
    def rows(self) -> int:
        """Rows restored in all tables."""
        return sum(n for _, n in self.tables)


# --- manifest helpers ------------------------------------------------------------------------


class _Fields:
    """Typed access to one JSON object of the manifest, with messages naming the field."""

    def __init__(self, doc: object, where: str) -> None:
        if not isinstance(doc, dict):
            raise BackupError(f"{where}: expected a JSON object, found {type(doc).__name__}")
        self.doc: dict[str, Any] = doc
        self.where = where

    def only(self, *names: str) -> None:
        extra = sorted(set(self.doc) - set(names))
        missing = sorted(set(names) - set(self.doc))
        if extra or missing:
            raise BackupError(
                f"{self.where}: expected the fields {', '.join(names)}"
                + (f"; unknown: {', '.join(extra)}" if extra else "")
                + (f"; missing: {', '.join(missing)}" if missing else "")
            )

    def get(self, name: str) -> Any:
        if name not in self.doc:
            raise BackupError(f"{self.where}: the field {name!r} is missing")
        return self.doc[name]

    def text(self, name: str) -> str:
        value = self.get(name)
        if not isinstance(value, str):
            raise BackupError(f"{self.where}: {name} must be a string")
        return value

    def integer(self, name: str) -> int:
        value = self.get(name)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise BackupError(f"{self.where}: {name} must be a non-negative integer")
        return value

    def hexdigest(self, name: str) -> str:
        value = self.text(name)
        if not _HEX64.fullmatch(value):
            raise BackupError(f"{self.where}: {name} must be 64 lowercase hex digits")
        return value

    def items(self, name: str) -> list[Any]:
        value = self.get(name)
        if not isinstance(value, list):
            raise BackupError(f"{self.where}: {name} must be a list")
        return value

    def strings(self, name: str) -> list[str]:
        value = self.items(name)
        if not all(isinstance(v, str) for v in value):
            raise BackupError(f"{self.where}: {name} must be a list of strings")
        return value

    def timestamp(self, name: str) -> datetime:
        value = self.text(name)
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise BackupError(f"{self.where}: {name} {value!r} is not an ISO-8601 time") from None
        if parsed.tzinfo is None:
            raise BackupError(f"{self.where}: {name} {value!r} has no time zone")
        return parsed.astimezone(UTC)


def _unique(values: list[str], what: str) -> None:
    seen: set[str] = set()
    for value in values:
        if value in seen:
            raise BackupError(f"manifest.json lists the {what} {value} twice")
        seen.add(value)


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat()


def _canonical(doc: Mapping[str, Any]) -> bytes:
    """The bytes the HMAC covers: the manifest without the HMAC value, canonically encoded."""
    body = dict(doc)
    body["hmac"] = {k: v for k, v in dict(doc["hmac"]).items() if k != "value"}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def _manifest_mac(key: MasterKey, doc: Mapping[str, Any]) -> str:
    mac_key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_HMAC_INFO).derive(key.key)
    return hmac.new(mac_key, _canonical(doc), hashlib.sha256).hexdigest()


# --- column codec ----------------------------------------------------------------------------


def _base_type(type_: TypeEngine[Any]) -> TypeEngine[Any]:
    while isinstance(type_, TypeDecorator):
        type_ = type_.impl_instance
    return type_


def _encode(value: Any, json_column: bool) -> Any:
    """A column value as JSON: bytes base64, times ISO-8601, JSON columns as they are."""
    if value is None or json_column:
        return value
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, datetime):
        return _iso(value) if value.tzinfo is not None else value.isoformat()
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


def _decoder(type_: TypeEngine[Any]) -> Callable[[Any], Any]:
    """The inverse of :func:`_encode` for a column of ``type_``."""
    base = _base_type(type_)
    if isinstance(base, JSON):
        return lambda v: v
    if isinstance(base, LargeBinary):
        return lambda v: None if v is None else base64.b64decode(v, validate=True)
    if isinstance(base, DateTime):
        return lambda v: None if v is None else datetime.fromisoformat(v)
    if isinstance(base, Date):
        return lambda v: None if v is None else date.fromisoformat(v)
    if isinstance(base, Time):
        return lambda v: None if v is None else time.fromisoformat(v)
    if isinstance(base, Numeric) and base.asdecimal:
        return lambda v: None if v is None else Decimal(v)
    return lambda v: v


def _is_json(type_: TypeEngine[Any]) -> bool:
    return isinstance(_base_type(type_), JSON)


# --- creating --------------------------------------------------------------------------------


@contextmanager
def _snapshot(db: Database) -> Iterator[Connection]:
    """One read transaction that sees one consistent state of every table.

    SQLite: a transaction (``BEGIN IMMEDIATE``, see :mod:`warden.store.db`) reads a single
    snapshot. PostgreSQL's default READ COMMITTED gives each *statement* its own snapshot, so
    the dump asks for REPEATABLE READ, which gives the whole transaction one.
    """
    with db.engine.connect() as connection:
        if db.dialect == "postgresql":
            connection.execution_options(isolation_level="REPEATABLE READ")
        with connection.begin():
            yield connection


class _HashingReader(io.RawIOBase):
    """Reads ``source`` while hashing what was read."""

    def __init__(self, source: BinaryIO) -> None:
        self.source = source
        self.digest = hashlib.sha256()
        self.count = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        data = self.source.read(size)
        self.digest.update(data)
        self.count += len(data)
        return data


def _tar_info(name: str, size: int, mtime: float) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mode = 0o600
    info.mtime = int(mtime)
    info.type = tarfile.REGTYPE
    return info


def _dump_table(connection: Connection, table: Table, out: IO[bytes]) -> tuple[int, int, str]:
    """Write every row of ``table`` as JSON lines; (rows, bytes, sha256)."""
    columns = list(table.columns)
    json_columns = {c.name for c in columns if _is_json(c.type)}
    order = list(table.primary_key.columns) or columns
    digest = hashlib.sha256()
    rows = size = 0
    result = connection.execute(select(*columns).order_by(*order).execution_options(yield_per=1000))
    for row in result.mappings():
        doc = {name: _encode(value, name in json_columns) for name, value in row.items()}
        line = (json.dumps(doc, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")
        out.write(line)
        digest.update(line)
        rows += 1
        size += len(line)
    return rows, size, digest.hexdigest()


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def create_backup(store: Store, dest: Path, *, overwrite: bool = False) -> BackupManifest:
    """Back up ``store`` into the file ``dest``.

    The rows of every table are read in one transaction; the blob files that snapshot lists are
    then copied as they are. ``dest`` appears only once complete (temporary file, fsync,
    rename) with mode 0600; an existing ``dest`` is refused unless ``overwrite``.
    """
    from warden import __version__

    dest = Path(dest)
    db, blobs, keyring = store.db, store.blobs, store.keyring
    if dest.exists() and not overwrite:
        raise BackupError(f"{dest} already exists; choose another file name or overwrite it")
    if not dest.parent.is_dir():
        raise BackupError(f"cannot write {dest}: the directory {dest.parent} does not exist")
    revision, head = db.revision(), db.head()
    if revision != head:
        raise BackupError(
            f"database {db.display_url} is at schema revision {revision}, not this Warden's "
            f"{head}; open it once with this Warden (`warden init`) to upgrade, then back up"
        )
    work = Path(tempfile.mkdtemp(prefix=".warden-backup-", dir=dest.parent))
    tmp = dest.with_name(f".{dest.name}.{secrets.token_hex(8)}.partial")
    try:
        created_at = datetime.now(UTC)
        tables: list[TableEntry] = []
        with _snapshot(db) as connection:
            for table in Base.metadata.sorted_tables:
                with (work / f"{table.name}.jsonl").open("wb") as out:
                    rows, size, sha = _dump_table(connection, table, out)
                tables.append(TableEntry(table.name, tuple(table.columns.keys()), rows, size, sha))
            blob_rows = connection.execute(
                select(Blob.id, Blob.size, Blob.key_id).order_by(Blob.id)
            ).all()
        log.info("dumped %d rows of %d tables", sum(t.rows for t in tables), len(tables))
        blob_entries: list[BlobEntry] = []
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as raw:
            with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
                stamp = created_at.timestamp()
                for entry in tables:
                    with (work / f"{entry.name}.jsonl").open("rb") as src:
                        tar.addfile(_tar_info(entry.member, entry.size, stamp), src)
                for blob_id, plain_size, _key_id in blob_rows:
                    blob_entries.append(_add_blob(tar, blobs, blob_id, plain_size, stamp))
                manifest = _sealed_manifest(
                    keyring.current,
                    created_at=created_at,
                    warden_version=__version__,
                    schema_revision=revision,
                    dialect=db.dialect,
                    tables=tuple(tables),
                    blobs=tuple(blob_entries),
                    key_ids=tuple(sorted({row[2] for row in blob_rows})),
                )
                body = json.dumps(manifest.to_json(), indent=2, sort_keys=True).encode() + b"\n"
                tar.addfile(_tar_info(MANIFEST, len(body), stamp), io.BytesIO(body))
            raw.flush()
            os.fsync(raw.fileno())
        os.replace(tmp, dest)
        _fsync_dir(dest.parent)
    except OSError as exc:
        raise BackupError(f"cannot write the backup {dest}: {exc}") from exc
    finally:
        tmp.unlink(missing_ok=True)
        shutil.rmtree(work, ignore_errors=True)
    log.info("backup %s: %d rows, %d blobs", dest, manifest.rows, len(manifest.blobs))
    return manifest


def _add_blob(
    tar: tarfile.TarFile, blobs: BlobStore, blob_id: str, plain_size: int, stamp: float
) -> BlobEntry:
    path = blobs.path_of(blob_id)
    try:
        handle = path.open("rb")
    except FileNotFoundError:
        raise BackupError(
            f"blob {blob_id} is in the database but its file {path} is missing; run "
            "`warden store verify` and repair the store before backing it up"
        ) from None
    with handle:
        file_size = os.fstat(handle.fileno()).st_size
        reader = _HashingReader(handle)
        tar.addfile(_tar_info(f"blobs/{blob_id}", file_size, stamp), reader)
    return BlobEntry(blob_id, plain_size, file_size, reader.digest.hexdigest())


def _sealed_manifest(key: MasterKey, **fields: Any) -> BackupManifest:
    unsigned = BackupManifest(hmac_key_id=key.key_id, hmac="0" * 64, **fields)
    return BackupManifest(
        hmac_key_id=key.key_id, hmac=_manifest_mac(key, unsigned.to_json()), **fields
    )


# --- reading ---------------------------------------------------------------------------------


@dataclass
class _Seen:
    """What streaming one member found."""

    size: int = 0
    sha256: str = ""
    lines: int = 0
    key_sets: set[tuple[str, ...]] = field(default_factory=set)
    problem: str | None = None


@dataclass
class _Contents:
    """What a full read of the archive found."""

    members: dict[str, _Seen]
    blob_rows: dict[str, str]  # blob id -> key id, from tables/blobs.jsonl


class _Archive:
    """A backup file opened for reading: member headers checked, manifest parsed."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self.tar = tarfile.open(path, mode="r:")  # noqa: SIM115 - closed by close()
        except FileNotFoundError:
            raise BackupError(f"backup file {path} does not exist") from None
        except (tarfile.TarError, OSError) as exc:
            raise BackupError(f"{path} is not a readable backup (tar) file: {exc}") from exc
        try:
            self.members = self._check_members()
            self.doc = self._read_manifest()
            self.manifest = BackupManifest.from_json(self.doc)
        except BaseException:
            self.tar.close()
            raise

    def close(self) -> None:
        self.tar.close()

    def __enter__(self) -> _Archive:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _check_members(self) -> list[tarfile.TarInfo]:
        members: list[tarfile.TarInfo] = []
        names: set[str] = set()
        try:
            while (info := self.tar.next()) is not None:
                name = info.name
                if len(members) >= MAX_MEMBERS:
                    raise BackupError(f"{self.path}: more than {MAX_MEMBERS} members")
                if info.type not in (tarfile.REGTYPE, tarfile.AREGTYPE) or info.issparse():
                    kind = "a link" if info.issym() or info.islnk() else "not a regular file"
                    raise BackupError(
                        f"{self.path}: member {name!r} is {kind}; a backup holds regular files only"
                    )
                if not _MEMBER.fullmatch(name):
                    raise BackupError(
                        f"{self.path}: unexpected member {name!r}; a backup holds only "
                        "manifest.json, tables/<table>.jsonl and blobs/<sha256>"
                    )
                if name in names:
                    raise BackupError(f"{self.path}: member {name!r} appears twice")
                names.add(name)
                members.append(info)
        except tarfile.TarError as exc:
            raise BackupError(f"{self.path}: the tar structure is damaged: {exc}") from exc
        if MANIFEST not in names:
            raise BackupError(f"{self.path}: no manifest.json; not a Warden backup or truncated")
        return members

    def _read_manifest(self) -> Any:
        info = next(m for m in self.members if m.name == MANIFEST)
        if info.size > MAX_MANIFEST_BYTES:
            raise BackupError(
                f"{self.path}: manifest.json is {info.size} bytes, more than the "
                f"{MAX_MANIFEST_BYTES} allowed"
            )
        try:
            raw = self._open(info).read()
        except (tarfile.TarError, OSError) as exc:
            raise BackupError(f"{self.path}: cannot read manifest.json: {exc}") from exc
        try:
            return json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise BackupError(f"{self.path}: manifest.json is not JSON: {exc}") from exc

    def _open(self, info: tarfile.TarInfo) -> IO[bytes]:
        handle = self.tar.extractfile(info)
        if handle is None:  # pragma: no cover - regular files always have data
            raise BackupError(f"{self.path}: member {info.name!r} has no data")
        return handle

    def scan(self, stage: Path | None) -> _Contents:
        """Stream every member once, hashing it (and writing it under ``stage`` if given)."""
        seen: dict[str, _Seen] = {}
        blob_rows: dict[str, str] = {}
        for info in self.members:
            if info.name == MANIFEST:
                continue
            target = None if stage is None else stage / info.name
            if target is not None:
                target.parent.mkdir(mode=0o700, exist_ok=True)
            try:
                handle = self._open(info)
                with _maybe_open(target) as out:
                    if info.name.startswith("tables/"):
                        collect = blob_rows if info.name == "tables/blobs.jsonl" else None
                        seen[info.name] = _scan_rows(handle, out, collect)
                    else:
                        seen[info.name] = _scan_bytes(handle, out)
            except (tarfile.TarError, EOFError) as exc:
                raise BackupError(
                    f"{self.path}: member {info.name!r} cannot be read ({exc}); the file is "
                    "truncated or damaged"
                ) from exc
        return _Contents(seen, blob_rows)


@contextmanager
def _maybe_open(path: Path | None) -> Iterator[IO[bytes] | None]:
    if path is None:
        yield None
        return
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        yield out


def _scan_bytes(handle: IO[bytes], out: IO[bytes] | None) -> _Seen:
    digest = hashlib.sha256()
    size = 0
    while piece := handle.read(_COPY_CHUNK):
        digest.update(piece)
        size += len(piece)
        if out is not None:
            out.write(piece)
    return _Seen(size=size, sha256=digest.hexdigest())


def _scan_rows(handle: IO[bytes], out: IO[bytes] | None, blob_rows: dict[str, str] | None) -> _Seen:
    seen = _Seen()
    digest = hashlib.sha256()
    while line := handle.readline(MAX_ROW_BYTES + 1):
        digest.update(line)
        seen.size += len(line)
        if out is not None:
            out.write(line)
        seen.lines += 1
        if seen.problem is not None:
            continue
        if len(line) > MAX_ROW_BYTES or not line.endswith(b"\n"):
            seen.problem = f"row {seen.lines} is longer than {MAX_ROW_BYTES} bytes or unterminated"
            continue
        try:
            row = json.loads(line)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            seen.problem = f"row {seen.lines} is not JSON ({exc})"
            continue
        if not isinstance(row, dict):
            seen.problem = f"row {seen.lines} is not a JSON object"
            continue
        seen.key_sets.add(tuple(sorted(row)))
        if blob_rows is not None:
            blob_id, key_id = row.get("id"), row.get("key_id")
            if isinstance(blob_id, str) and isinstance(key_id, str):
                blob_rows[blob_id] = key_id
    seen.sha256 = digest.hexdigest()
    return seen


def _compare(manifest: BackupManifest, contents: _Contents) -> list[str]:
    """Every way the members differ from what the manifest says."""
    problems: list[str] = []
    members = contents.members
    expected: set[str] = set()
    for t in manifest.tables:
        expected.add(t.member)
        got = members.get(t.member)
        if got is None:
            problems.append(f"member {t.member} is missing")
            continue
        if got.size != t.size or got.sha256 != t.sha256:
            problems.append(
                f"member {t.member}: SHA-256 {got.sha256[:16]}… ({got.size} bytes) does not match "
                f"the manifest's {t.sha256[:16]}… ({t.size} bytes); it was altered"
            )
        elif got.lines != t.rows:
            problems.append(f"member {t.member}: {got.lines} rows, the manifest says {t.rows}")
        if got.problem is not None:
            problems.append(f"member {t.member}: {got.problem}")
        wanted = tuple(sorted(t.columns))
        odd = sorted(k for k in got.key_sets if k != wanted)
        if odd:
            problems.append(
                f"member {t.member}: rows with columns {', '.join(odd[0])}; expected "
                f"{', '.join(wanted)}"
            )
    for b in manifest.blobs:
        expected.add(b.member)
        got = members.get(b.member)
        if got is None:
            problems.append(f"member {b.member} is missing")
        elif got.size != b.file_size or got.sha256 != b.sha256:
            problems.append(
                f"member {b.member}: SHA-256 {got.sha256[:16]}… ({got.size} bytes) does not match "
                f"the manifest's {b.sha256[:16]}… ({b.file_size} bytes); it was altered"
            )
    for name in sorted(set(members) - expected):
        problems.append(f"member {name} is not listed in the manifest")
    listed = {b.id for b in manifest.blobs}
    if "blobs" in {t.name for t in manifest.tables} and set(contents.blob_rows) != listed:
        stray = sorted(set(contents.blob_rows) ^ listed)
        problems.append(
            f"the blobs table and the blob files disagree on {len(stray)} blob(s), e.g. {stray[0]}"
        )
    key_ids = set(contents.blob_rows.values())
    if key_ids and key_ids != set(manifest.key_ids):
        problems.append(
            f"the blobs table names master keys {', '.join(sorted(key_ids))}; the manifest "
            f"lists {', '.join(manifest.key_ids) or 'none'}"
        )
    return problems


def _check_hmac(archive: _Archive, keyring: Keyring) -> str | None:
    """A problem line if the manifest's HMAC does not verify under the keyring's key."""
    key = _key_for(keyring, archive.manifest.hmac_key_id, "authenticates the backup manifest")
    if hmac.compare_digest(_manifest_mac(key, archive.doc), archive.manifest.hmac):
        return None
    return (
        "manifest.json fails HMAC authentication: it was edited after the backup was made "
        "(the member hashes it lists cannot be trusted)"
    )


def _key_for(keyring: Keyring, key_id: str, purpose: str) -> MasterKey:
    try:
        return keyring.get(key_id)
    except MasterKeyError:
        raise MasterKeyError(
            f"master key {key_id} {purpose}, but the key given is "
            f"{', '.join(keyring.key_ids)} (from {keyring.source or 'the caller'}); use the "
            "master key the store had when the backup was made (WARDEN_MASTER_KEY or a key file)"
        ) from None


def _require_keys(manifest: BackupManifest, keyring: Keyring) -> None:
    missing = sorted(set(manifest.key_ids) - set(keyring.key_ids))
    if missing:
        raise MasterKeyError(
            f"the backup's data keys are wrapped by master key {', '.join(missing)}, but the key "
            f"given is {', '.join(keyring.key_ids)} (from {keyring.source or 'the caller'}); "
            "restore with the master key the store had when the backup was made "
            "(WARDEN_MASTER_KEY or --master-key-file); a backup never contains it"
        )


# --- verifying -------------------------------------------------------------------------------


def verify_backup(
    path: Path,
    keyring: Keyring | None = None,
    *,
    decrypt: bool = True,
    workdir: Path | None = None,
) -> BackupCheck:
    """Check the backup file ``path``; damage is reported in ``problems``, never raised.

    Without a keyring: the tar structure, the manifest and every member's size, SHA-256 and row
    count (the HMAC is *not* checked, so a deliberate edit that recomputed the hashes is not
    caught). With the keyring of the store the backup came from: also the manifest's HMAC,
    and, with ``decrypt``, a trial restore into a private temporary SQLite database (under
    ``workdir``, default the system temp directory) that decrypts and authenticates every blob.

    Raises BackupError only if ``path`` does not exist, and MasterKeyError if ``keyring`` lacks
    the key the backup needs.
    """
    path = Path(path)
    if not path.is_file():
        raise BackupError(f"backup file {path} does not exist")
    try:
        archive = _Archive(path)
    except BackupError as exc:
        return BackupCheck(path, None, (str(exc),), False, False)
    with archive:
        manifest = archive.manifest
        hmac_checked = decrypted = False
        problems: list[str] = []
        if keyring is not None:
            if (bad_mac := _check_hmac(archive, keyring)) is not None:
                problems.append(bad_mac)
            hmac_checked = True
            if decrypt:
                _require_keys(manifest, keyring)
        stage = None
        if keyring is not None and decrypt and not problems:
            stage = Path(tempfile.mkdtemp(prefix="warden-verify-", dir=workdir))
        try:
            try:
                contents = archive.scan(stage)
            except BackupError as exc:
                return BackupCheck(path, manifest, (*problems, str(exc)), hmac_checked, False)
            problems += _compare(manifest, contents)
            if stage is not None and keyring is not None and not problems:
                problems += _trial_restore(manifest, stage, keyring)
                decrypted = True
        finally:
            if stage is not None:
                shutil.rmtree(stage, ignore_errors=True)
    return BackupCheck(path, manifest, tuple(problems), hmac_checked, decrypted and not problems)


def _trial_restore(manifest: BackupManifest, stage: Path, keyring: Keyring) -> list[str]:
    """Load the staged backup into a scratch SQLite store and authenticate every blob."""
    db = Database(sqlite_url(stage / "scratch" / DB_FILE))
    try:
        try:
            _load_database(db, manifest, stage)
        except StoreError as exc:
            return [f"the rows cannot be loaded into a database: {exc}"]
        blobs = BlobStore(db, stage / "scratch" / BLOBS_DIR, keyring)
        problems = []
        for entry in manifest.blobs:
            _place_blob(stage, blobs, entry.id)
            try:
                blobs.verify(entry.id)
            except StoreError as exc:
                problems.append(str(exc))
        return problems
    finally:
        db.dispose()


# --- restoring -------------------------------------------------------------------------------


def _known_revisions() -> set[str]:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", "warden.store:migrations")
    return {rev.revision for rev in ScriptDirectory.from_config(config).walk_revisions()}


def _advance_postgres_sequences(connection: Connection, table: Table) -> None:
    """Point each serial/identity sequence of ``table`` past the ids the restore inserted.

    PostgreSQL only, and the one dialect-specific statement in the backup code: inserting rows
    with explicit integer ids does not move a column's sequence, so the next insert would
    reuse id 1. SQLite derives the next id from the table itself and needs nothing.
    """
    quote = connection.dialect.identifier_preparer.quote
    for column in table.primary_key.columns:
        if not isinstance(_base_type(column.type), Integer):
            continue
        sequence = connection.execute(
            text("SELECT pg_get_serial_sequence(:table, :column)"),
            {"table": quote(table.name), "column": column.name},
        ).scalar()
        if sequence is None:
            continue
        connection.execute(
            text(
                f"SELECT setval(:sequence, COALESCE((SELECT MAX({quote(column.name)}) "
                f"FROM {quote(table.name)}), 0) + 1, false)"
            ),
            {"sequence": sequence},
        )


def _row_types(name: str, reflected: Table) -> dict[str, TypeEngine[Any]]:
    """Column types for loading: the model's (e.g. UTC-aware times) where it has the column,
    else what the database reports (columns of an older schema revision)."""
    model = Base.metadata.tables.get(name)
    return {
        column.name: (
            model.c[column.name].type
            if model is not None and column.name in model.c
            else column.type
        )
        for column in reflected.columns
    }


def _load_database(db: Database, manifest: BackupManifest, stage: Path) -> list[tuple[str, int]]:
    """Create the schema at the backup's revision, insert every row, upgrade to head."""
    db.upgrade(manifest.schema_revision)
    loaded: list[tuple[str, int]] = []
    entries = {t.name: t for t in manifest.tables}
    try:
        with db.engine.connect() as connection, connection.begin():
            reflected = MetaData()
            reflected.reflect(connection)
            names = {t.name for t in reflected.sorted_tables} - {_VERSION_TABLE}
            if names != set(entries):
                raise BackupError(
                    f"the backup has tables {', '.join(sorted(entries))}, but schema revision "
                    f"{manifest.schema_revision} has {', '.join(sorted(names))}"
                )
            for table in reflected.sorted_tables:
                if table.name == _VERSION_TABLE:
                    continue
                entry = entries[table.name]
                if set(entry.columns) != set(table.columns.keys()):
                    raise BackupError(
                        f"table {table.name}: the backup has columns {', '.join(entry.columns)}, "
                        f"schema revision {manifest.schema_revision} has "
                        f"{', '.join(table.columns.keys())}"
                    )
                types = _row_types(table.name, table)
                target = Table(
                    table.name, MetaData(), *(Column(c, types[c]) for c in entry.columns)
                )
                decoders = {c: _decoder(types[c]) for c in entry.columns}
                count = 0
                batch: list[dict[str, Any]] = []
                with (stage / entry.member).open("rb") as rows:
                    for line in rows:
                        doc = json.loads(line)
                        batch.append({c: decoders[c](doc[c]) for c in entry.columns})
                        if len(batch) >= _BATCH_ROWS:
                            connection.execute(insert(target), batch)
                            count, batch = count + len(batch), []
                if batch:
                    connection.execute(insert(target), batch)
                    count += len(batch)
                if db.dialect == "postgresql":
                    _advance_postgres_sequences(connection, table)
                loaded.append((table.name, count))
    except (ValueError, KeyError, TypeError) as exc:
        raise BackupError(f"a row in the backup cannot be loaded: {exc!r}") from exc
    except SQLAlchemyError as exc:
        raise BackupError(f"the backup's rows cannot be inserted: {exc}") from exc
    db.upgrade()
    return loaded


def _place_blob(stage: Path, blobs: BlobStore, blob_id: str) -> Path:
    final = blobs.path_of(blob_id)
    final.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.replace(stage / "blobs" / blob_id, final)
    return final


def _rows_in(db: Database, names: list[str]) -> dict[str, int]:
    counts = {}
    with db.engine.connect() as connection:
        for name in names:
            table = Table(name, MetaData())
            counts[name] = connection.execute(select(func.count()).select_from(table)).scalar_one()
    return counts


def _has_files(directory: Path) -> bool:
    return directory.exists() and any(p.is_file() or p.is_symlink() for p in directory.rglob("*"))


class _Target:
    """The restore target: checks it is empty, remembers what the restore creates there, and
    removes exactly that again on failure."""

    def __init__(self, settings: Settings) -> None:
        self.home = Path(settings.home)
        self.db_path = None if settings.database_url is not None else self.home / DB_FILE
        self.url = settings.database_url or sqlite_url(self.home / DB_FILE)
        self.blobs_dir = self.home / BLOBS_DIR
        self.created_home = not self.home.exists()
        self.created_db_file = self.db_path is not None and not self.db_path.exists()
        self.created_blobs_dir = not self.blobs_dir.exists()
        self.created_schema = False
        self.db: Database | None = None
        if self.home.exists() and not self.home.is_dir():
            raise BackupError(f"restore target {self.home} exists and is not a directory")
        if _has_files(self.blobs_dir):
            raise BackupError(
                f"restore target {self.home} is not empty: {self.blobs_dir} holds blob files; "
                "restore into a new, empty home"
            )

    def database(self) -> Database:
        if self.db is None:
            self.db = Database(self.url)
        return self.db

    def check_database(self, revision: str) -> None:
        """Refuse a database with rows, or with a schema other than the backup's revision."""
        if self.created_db_file:
            return
        db = self.database()
        names = [n for n in db.table_names() if n != _VERSION_TABLE]
        if not names and db.revision() is None:
            return
        filled = {n: c for n, c in _rows_in(db, names).items() if c}
        if filled:
            table, count = next(iter(filled.items()))
            raise BackupError(
                f"restore target database {db.display_url} is not empty ({count} row(s) in "
                f"{table}); restore into a new, empty database"
            )
        current = db.revision()
        if current != revision:
            raise BackupError(
                f"restore target database {db.display_url} already has schema revision "
                f"{current}, the backup has {revision}; restore into a new, empty database"
            )

    def rollback(self) -> None:
        """Remove what the restore created (best effort; errors are logged)."""
        log.info("restore failed; removing what it created in %s", self.home)
        if self.db is not None:
            with suppress(Exception):
                self._empty_database(self.db)
            self.db.dispose()
        if self.db_path is not None and self.created_db_file:
            for suffix in ("", "-wal", "-shm", "-journal"):
                Path(f"{self.db_path}{suffix}").unlink(missing_ok=True)
        if self.created_blobs_dir:
            shutil.rmtree(self.blobs_dir, ignore_errors=True)
        elif self.blobs_dir.is_dir():
            for child in self.blobs_dir.iterdir():  # it held no files before the restore
                if child.is_dir() and not child.is_symlink():
                    shutil.rmtree(child, ignore_errors=True)
                else:
                    child.unlink(missing_ok=True)
        if self.created_home:
            shutil.rmtree(self.home, ignore_errors=True)

    def _empty_database(self, db: Database) -> None:
        with db.engine.connect() as connection, connection.begin():
            reflected = MetaData()
            reflected.reflect(connection)
            if self.created_schema:
                reflected.drop_all(connection)
            else:
                for table in reversed(reflected.sorted_tables):
                    if table.name != _VERSION_TABLE:
                        connection.execute(table.delete())


def restore_backup(
    path: Path,
    settings: Settings,
    *,
    keyring: Keyring | None = None,
    write_key_file_to_home: bool = False,
) -> RestoreResult:
    """Restore the backup ``path`` into the empty Warden home (and database) ``settings`` name.

    The master key comes from ``keyring`` or, if not given, from ``settings`` (the
    ``WARDEN_MASTER_KEY`` value) or ``home/master.key``; it must be the key (or keys) that
    wrapped the backed-up data keys, and this is checked before anything is written. With
    ``write_key_file_to_home`` the key is saved as ``home/master.key`` (0600) once the restore
    succeeded.

    Refuses (BackupError) a target whose database has rows or whose blob directory has files.
    The whole backup is verified (hashes and HMAC) before the target is touched; if a later
    step fails (e.g. a blob fails authentication), what the restore created is removed again
    and the error is raised.
    """
    path = Path(path)
    home = Path(settings.home)
    if keyring is None:
        if settings.master_key is None and not (home / KEY_FILE).exists():
            raise MasterKeyError(
                f"restoring needs the master key the backup was made with (a backup never "
                f"contains it): set WARDEN_MASTER_KEY, put it in {home / KEY_FILE}, or pass "
                "--master-key-file"
            )
        keyring = load_keyring(home, settings.master_key, create=False)
    elif write_key_file_to_home and (home / KEY_FILE).exists():
        present = load_keyring(home, None, create=False).current
        if present.key_id != keyring.current.key_id:
            raise MasterKeyError(
                f"{home / KEY_FILE} holds master key {present.key_id}, not the key given "
                f"({keyring.current.key_id}); remove it or restore with that key"
            )
    target = _Target(settings)
    with _Archive(path) as archive:
        manifest = archive.manifest
        _require_keys(manifest, keyring)
        if (bad_mac := _check_hmac(archive, keyring)) is not None:
            raise BackupError(f"{path}: {bad_mac}")
        known = _known_revisions()
        if manifest.schema_revision not in known:
            raise BackupError(
                f"{path} has schema revision {manifest.schema_revision}, which this Warden does "
                "not know (the backup is from a newer Warden); upgrade Warden, then restore"
            )
        target.check_database(manifest.schema_revision)
        try:
            target.home.mkdir(mode=0o700, parents=True, exist_ok=True)
            target.blobs_dir.mkdir(mode=0o700, exist_ok=True)
            stage = Path(tempfile.mkdtemp(prefix=".restore-", dir=target.home))
        except OSError as exc:
            target.rollback()
            raise BackupError(f"cannot create the restore target {target.home}: {exc}") from exc
        try:
            contents = archive.scan(stage)
            problems = _compare(manifest, contents)
            if problems:
                raise BackupError(
                    f"{path} is damaged ({len(problems)} problem(s)): {problems[0]}; run "
                    "`warden backup verify` for the full list"
                )
            db = target.database()
            target.created_schema = db.revision() is None
            loaded = _load_database(db, manifest, stage)
            blobs = BlobStore(db, target.blobs_dir, keyring)
            for entry in manifest.blobs:
                _place_blob(stage, blobs, entry.id)
            for entry in manifest.blobs:
                blobs.verify(entry.id)
            written = False
            if write_key_file_to_home and not (target.home / KEY_FILE).exists():
                write_key_file(target.home / KEY_FILE, keyring.current)
                written = True
            revision = db.revision() or manifest.schema_revision
        except StoreError as exc:
            shutil.rmtree(stage, ignore_errors=True)
            target.rollback()
            raise type(exc)(f"{exc} (the restore was undone: {target.home} is as before)") from exc
        except BaseException:
            shutil.rmtree(stage, ignore_errors=True)
            target.rollback()
            raise
        shutil.rmtree(stage, ignore_errors=True)
        display = db.display_url
        db.dispose()
    log.info("restored %s into %s", path, target.home)
    return RestoreResult(
        home=target.home,
        database=display,
        backup_revision=manifest.schema_revision,
        revision=revision,
        tables=tuple(loaded),
        blobs=len(manifest.blobs),
        key_ids=manifest.key_ids,
        key_file_written=written,
    )
