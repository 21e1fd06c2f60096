"""Reading the log: iterate, search, export as JSON lines a SIEM can check line by line.

Records are read from their authenticated canonical text, never from copied columns; run
:func:`~warden.audit.verify.verify_log` to know the log is intact. Each exported line carries
``canonical``, ``prev_hash`` and ``hash``: with the audit key, :func:`check_export_line`
(or any HMAC-SHA256 implementation) confirms the line on its own.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, TextIO

from sqlalchemy import select

from warden.audit._tables import RECORDS
from warden.audit.chain import SEP, hmac_sha256
from warden.audit.events import AuditRecord, model_resource
from warden.audit.keys import AuditKey
from warden.errors import ConfigError, TamperError
from warden.store.db import Database

__all__ = ["check_export_line", "export_jsonl", "iter_records", "search", "to_us"]

_BATCH = 5000


def to_us(when: datetime) -> int:
    """``when`` (timezone-aware) as integer microseconds since the epoch."""
    if when.tzinfo is None:
        raise ConfigError(f"{when.isoformat()}: give a timezone-aware time (e.g. ending in Z)")
    delta = when.astimezone(UTC) - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def iter_records(
    db: Database,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    contains: tuple[str, ...] = (),
) -> Iterator[AuditRecord]:
    """Records in sequence order, written at or after ``since`` and before ``until``.

    ``contains``: only rows whose canonical text contains each of these fields exactly (a
    pre-filter the database does; callers re-check the parsed field).
    """
    start = 0
    while True:
        stmt = select(RECORDS.c.seq, RECORDS.c.canonical, RECORDS.c.prev_hash, RECORDS.c.hash)
        stmt = stmt.where(RECORDS.c.seq > start)
        if since is not None:
            stmt = stmt.where(RECORDS.c.at_us >= to_us(since))
        if until is not None:
            stmt = stmt.where(RECORDS.c.at_us < to_us(until))
        for value in contains:
            stmt = stmt.where(RECORDS.c.canonical.contains(f"{SEP}{value}{SEP}", autoescape=True))
        with db.engine.connect() as conn:
            rows = conn.execute(stmt.order_by(RECORDS.c.seq).limit(_BATCH)).all()
        for row in rows:
            yield AuditRecord.from_row(row.canonical, bytes(row.prev_hash), bytes(row.hash))
        if len(rows) < _BATCH:
            return
        start = rows[-1].seq


def search(
    db: Database,
    *,
    actor: str | None = None,
    action: str | None = None,
    model: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int | None = 1000,
) -> list[AuditRecord]:
    """Records matching every filter given, oldest first, at most ``limit``.

    ``action`` ending in ``*`` matches a prefix (``registry.*``); ``model`` matches the model's
    own records and its versions' (``model:NAME`` and ``model:NAME@v…``).
    """
    prefix = action[:-1] if action is not None and action.endswith("*") else None
    contains = tuple(v for v in (actor, None if prefix is not None else action) if v)
    found: list[AuditRecord] = []
    own = model_resource(model) if model is not None else ""
    for record in iter_records(db, since=since, until=until, contains=contains):
        if actor is not None and record.actor != actor:
            continue
        if action is not None:
            if prefix is not None:
                if not record.action.startswith(prefix):
                    continue
            elif record.action != action:
                continue
        if (
            model is not None
            and record.resource != own
            and not record.resource.startswith(own + "@")
        ):
            continue
        found.append(record)
        if limit is not None and len(found) >= limit:
            break
    return found


def export_jsonl(
    db: Database,
    out: TextIO,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
) -> int:
    """Write one JSON object per record (:meth:`AuditRecord.to_json`) to ``out``; the count."""
    n = 0
    for record in iter_records(db, since=since, until=until):
        out.write(json.dumps(record.to_json(), ensure_ascii=False, sort_keys=True) + "\n")
        n += 1
    return n


def check_export_line(line: str, key: AuditKey) -> AuditRecord:
    """The record an export line holds, once its HMAC and its fields check out.

    ``TamperError`` when the line's hash is not ``HMAC(key, prev_hash ‖ canonical)`` or a
    field disagrees with the authenticated canonical text.
    """
    try:
        doc: dict[str, Any] = json.loads(line)
        record = AuditRecord.from_row(
            doc["canonical"], bytes.fromhex(doc["prev_hash"]), bytes.fromhex(doc["hash"])
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise TamperError(f"not an audit export line: {exc}") from exc
    expected = hmac_sha256(key.key)(bytes.fromhex(record.prev_hash) + record.canonical.encode())
    if not hmac.compare_digest(expected.hex(), record.hash):
        raise TamperError(f"export line of record {record.seq}: the hash does not verify")
    if record.to_json() != doc:
        raise TamperError(
            f"export line of record {record.seq}: a field differs from the authenticated "
            "canonical text"
        )
    return record
