"""Retention: move old records to a signed archive file, leaving a signed anchor behind.

:func:`archive_before` is the one function in Warden that deletes audit records. It

1. verifies the whole live log (a damaged log is never archived: the evidence stays put);
2. writes the records older than the cut-off to ``FILE`` (a temporary name, fsynced, then
   linked into place; an existing file is never replaced) as JSON lines: a header, one export
   line per record, and a footer whose Ed25519-signed statement covers the SHA-256 of
   everything before it, the range and the last hash;
3. reads the file back and verifies it (:func:`verify_archive`);
4. in one transaction, holding the chain head: inserts a signed *anchor* (the first live
   sequence number and the hash and time it continues from), signs a checkpoint over the
   current end of the chain, and deletes the archived rows.

The live chain then verifies from the anchor; the archive verifies on its own with the audit
key and the checkpoint public key.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import delete, insert, select, update
from sqlalchemy.orm import Session

from warden.audit._tables import ANCHORS, CHECKPOINTS, HEAD, RECORDS
from warden.audit.chain import hmac_sha256
from warden.audit.checkpoints import ANCHOR_FORMAT, ARCHIVE_FORMAT, Checkpoint, open_statement
from warden.audit.checkpoints import sign_statement as _sign
from warden.audit.events import AuditRecord
from warden.audit.keys import AuditKey
from warden.audit.query import iter_records, to_us
from warden.audit.verify import verify_log
from warden.audit.writer import lock_head, now_us
from warden.errors import ConfigError, StoreError, TamperError
from warden.store.db import Database

__all__ = ["ArchiveResult", "archive_before", "verify_archive"]


@dataclass(frozen=True)
class ArchiveResult:
    """What :func:`archive_before` moved, or what :func:`verify_archive` found in a file."""

    path: Path | None
    """The archive file (``None`` when there was nothing to archive)."""
    records: int
    """How many records it holds."""
    first_seq: int | None
    """The first archived record."""
    last_seq: int | None
    """The last archived record (the live chain continues at ``last_seq + 1``)."""
    sha256: str = ""
    """SHA-256 of the archive's content before its signed footer (hex)."""


def verify_archive(path: Path, key: AuditKey, public_key: Ed25519PublicKey) -> ArchiveResult:
    """Check an archive file on its own: every record's HMAC and link, its numbering, and
    the signed footer over the whole content (``TamperError`` at the first problem)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read archive {path}: {exc.strerror}") from exc
    lines = data.splitlines(keepends=True)
    if len(lines) < 2:
        raise TamperError(f"{path}: not an audit archive (expected a header and a footer)")
    body = b"".join(lines[:-1])
    try:
        header = json.loads(lines[0])
        footer = json.loads(lines[-1])
        fields = open_statement(
            footer["statement"],
            base64.b64decode(footer["signature"], validate=True),
            public_key,
            ARCHIVE_FORMAT,
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise TamperError(f"{path}: malformed archive header or footer ({exc})") from exc
    digest = hashlib.sha256(body).hexdigest()
    if not hmac.compare_digest(digest, str(fields.get("sha256"))):
        raise TamperError(f"{path}: the content does not match its signed SHA-256")
    if header.get("format") != ARCHIVE_FORMAT or fields.get("audit_key_id") != key.key_id:
        raise TamperError(f"{path}: not an archive of this audit key's log")
    mac = hmac_sha256(key.key)
    prev = bytes.fromhex(fields["prev_hash"])
    expected = int(fields["first_seq"])
    for raw in lines[1:-1]:
        doc: dict[str, Any] = json.loads(raw)
        record = AuditRecord.from_row(
            doc["canonical"], bytes.fromhex(doc["prev_hash"]), bytes.fromhex(doc["hash"])
        )
        if record.seq != expected or record.to_json() != doc:
            raise TamperError(f"{path}: record {expected} is missing, moved or altered")
        if bytes.fromhex(record.prev_hash) != prev:
            raise TamperError(f"{path}: record {record.seq} does not link to its predecessor")
        if mac(prev + record.canonical.encode()).hex() != record.hash:
            raise TamperError(f"{path}: record {record.seq} fails its HMAC")
        prev = bytes.fromhex(record.hash)
        expected += 1
    count = expected - int(fields["first_seq"])
    if count != int(fields["records"]) or prev.hex() != fields["last_hash"]:
        raise TamperError(f"{path}: holds {count} records; its footer signed for another set")
    return ArchiveResult(
        path, count, int(fields["first_seq"]), int(fields["last_seq"]), str(fields["sha256"])
    )


def _write_archive(
    path: Path,
    records: list[AuditRecord],
    prev_hash: str,
    key: AuditKey,
    signer: Ed25519PrivateKey,
) -> str:
    first, last = records[0], records[-1]
    header = {
        "format": ARCHIVE_FORMAT,
        "first_seq": first.seq,
        "last_seq": last.seq,
        "prev_hash": prev_hash,
        "audit_key_id": key.key_id,
    }
    digest = hashlib.sha256()
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    try:
        with open(tmp, "xb") as handle:

            def put(line: str) -> None:
                data = line.encode("utf-8") + b"\n"
                digest.update(data)
                handle.write(data)

            put(json.dumps(header, sort_keys=True))
            for record in records:
                put(json.dumps(record.to_json(), ensure_ascii=False, sort_keys=True))
            statement, signature = _sign(
                signer,
                {
                    "format": ARCHIVE_FORMAT,
                    "first_seq": first.seq,
                    "last_seq": last.seq,
                    "records": len(records),
                    "prev_hash": prev_hash,
                    "last_hash": last.hash,
                    "last_time_us": last.time_us,
                    "sha256": digest.hexdigest(),
                    "audit_key_id": key.key_id,
                },
            )
            footer = {"statement": statement, "signature": base64.b64encode(signature).decode()}
            handle.write(json.dumps(footer).encode("utf-8") + b"\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.link(tmp, path)
    except FileExistsError:
        raise ConfigError(f"archive file {path} already exists; choose a new name") from None
    except OSError as exc:
        raise StoreError(f"cannot write archive {path}: {exc}") from exc
    finally:
        tmp.unlink(missing_ok=True)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    return digest.hexdigest()


def archive_before(
    db: Database,
    key: AuditKey,
    signer: Ed25519PrivateKey,
    before: datetime,
    path: Path,
) -> ArchiveResult:
    """Move every record written before ``before`` to the archive file ``path`` (see the
    module docstring for the steps and guarantees)."""
    public = signer.public_key()
    report = verify_log(db, key, public)
    if not report.ok:
        problem = report.problem
        assert problem is not None
        raise TamperError(
            f"the audit log does not verify ({problem.kind} at record {problem.seq}: "
            f"{problem.message}); it is not archived so that the evidence stays in place"
        )
    cutoff = to_us(before)
    records = list(iter_records(db, until=before))
    if not records:
        return ArchiveResult(None, 0, None, None)
    first, last = records[0], records[-1]
    if last.time_us >= cutoff:  # pragma: no cover - iter_records filters on at_us
        raise StoreError("archive selection went past the cut-off")
    digest = _write_archive(path, records, first.prev_hash, key, signer)
    checked = verify_archive(path, key, public)
    if checked.records != len(records):  # pragma: no cover - verify_archive raises first
        raise TamperError(f"{path}: read back {checked.records} of {len(records)} records")

    def work(session: Session) -> None:
        now = now_us()
        head = lock_head(session, now)
        current = session.execute(
            select(RECORDS.c.hash).where(RECORDS.c.seq == last.seq)
        ).scalar_one_or_none()
        if current is None or bytes(current).hex() != last.hash:
            raise TamperError(
                f"audit record {last.seq} changed while it was being archived; run it again"
            )
        at = max(now, head.at_us)
        statement, signature = _sign(
            signer,
            {
                "format": ANCHOR_FORMAT,
                "first_seq": last.seq + 1,
                "prev_hash": last.hash,
                "last_time_us": last.time_us,
                "archived": len(records),
                "archive_name": path.name,
                "archive_sha256": digest,
                "audit_key_id": key.key_id,
                "time_us": at,
            },
        )
        session.execute(
            insert(ANCHORS).values(
                first_seq=last.seq + 1,
                at_us=at,
                key_id=statement_key_id(statement),
                statement=statement,
                signature=signature,
            )
        )
        if head.checkpoint_seq < head.seq:
            checkpoint = Checkpoint.make(
                signer, count=head.seq, head=head.hash, time_us=at, audit_key_id=key.key_id
            )
            session.execute(
                insert(CHECKPOINTS).values(
                    count=head.seq,
                    at_us=at,
                    key_id=checkpoint.key_id,
                    statement=checkpoint.statement,
                    signature=checkpoint.signature,
                )
            )
            session.execute(
                update(HEAD).where(HEAD.c.id == 1).values(checkpoint_seq=head.seq, checkpoint_us=at)
            )
        # The one delete of audit records in Warden: they are in the verified archive now.
        session.execute(delete(RECORDS).where(RECORDS.c.seq <= last.seq))

    db.write(work)
    return ArchiveResult(path, len(records), first.seq, last.seq, digest)


def statement_key_id(statement: str) -> str:
    """The ``key_id`` a signed statement names."""
    return str(json.loads(statement)["key_id"])
