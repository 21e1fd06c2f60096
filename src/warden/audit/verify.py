"""Verification: recompute the chain and the checkpoints, name the first damage and its kind.

The fast pass reads the records with the raw DBAPI cursor in pages of :data:`PAGE` rows
(keyset pagination, the same statement on every database) and checks, per record,
``HMAC(previous hash ‖ canonical) == hash``, that its time is not earlier than its
predecessor's, and that the columns that are copies (``prev_hash``, ``at_us``) agree with what
the chain authenticates. Each seq range can be checked on its own given the hash before it, so
large logs are split over several processes. Only when something fails are rows read one by
one to tell what happened (:func:`classify`):

==============  ===============================================================================
``modified``    a record's content (or a copied column) no longer matches its hash, while the
                next record or a checkpoint still vouches for the original
``deleted``     records are missing between two authentic, correctly numbered ones
``inserted``    a record no later record or checkpoint links to (not written with the key), or
                rows beyond the chain's head, or before the archive anchor
``reordered``   an authentic record sits at another record's position
``truncated``   a signed checkpoint (in the database or ``--from-checkpoint``) or the chain head
                vouches for more records than exist
==============  ===============================================================================

plus ``time-regression`` (an authentic record dated before its predecessor) and
``bad-checkpoint`` (a checkpoint or anchor whose signature or key does not verify).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Final

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import Engine, Select, func, select

from warden.audit._tables import ANCHORS, CHECKPOINTS, HEAD, RECORDS
from warden.audit.chain import GENESIS, SEP, TIME_DIGITS, hmac_pads, hmac_sha256
from warden.audit.checkpoints import ANCHOR_FORMAT, Checkpoint, open_statement
from warden.audit.keys import AuditKey
from warden.errors import StoreError, TamperError
from warden.store.db import Database

__all__ = ["PAGE", "Damage", "Problem", "VerifyReport", "auto_workers", "verify_log"]

log = logging.getLogger(__name__)

PAGE: Final = 50_000
"""Rows fetched per query by the fast pass."""
PARALLEL_FROM: Final = 150_000
"""Below this many records one process verifies (starting workers costs more than it saves)."""
_ZERO_TIME: Final = "0" * TIME_DIGITS


class Damage(StrEnum):
    """The kind of damage verification found."""

    MODIFIED = "modified"
    DELETED = "deleted"
    INSERTED = "inserted"
    REORDERED = "reordered"
    TRUNCATED = "truncated"
    TIME_REGRESSION = "time-regression"
    BAD_CHECKPOINT = "bad-checkpoint"


@dataclass(frozen=True)
class Problem:
    """One finding of verification, at the first record it concerns."""

    kind: Damage
    """What happened."""
    seq: int
    """The first record affected (for ``truncated``: the first missing one)."""
    message: str
    """What was expected and what was found."""


@dataclass(frozen=True)
class VerifyReport:
    """The result of :func:`verify_log`."""

    records: int
    """Live records checked."""
    first_seq: int | None
    """The first live record (after archived ones), or ``None`` for an empty log."""
    last_seq: int | None
    """The last record checked."""
    checkpoints: int
    """Checkpoints whose signatures were checked (plus the external one, if given)."""
    anchors: int
    """Archive anchors checked."""
    problems: tuple[Problem, ...] = ()
    """Every problem found, first record first; the first is the one to look at."""
    seconds: float = 0.0
    """Wall time of the verification."""
    workers: int = 1
    """Processes the fast pass used."""
    head: str = field(default=GENESIS.hex())
    """The hash of the last record checked (hex)."""

    @property
    def ok(self) -> bool:
        """Whether the log verified with no problem."""
        return not self.problems

    @property
    def problem(self) -> Problem | None:
        """The first problem (lowest sequence number), or ``None``."""
        return self.problems[0] if self.problems else None

    @property
    def records_per_second(self) -> float:
        """Verification speed."""
        return self.records / self.seconds if self.seconds > 0 else 0.0


# --- the fast pass ------------------------------------------------------------------------------


def _raw_statement(engine: Engine, stmt: Select[Any]) -> tuple[str, Any]:
    """SQL text and DBAPI parameters of ``stmt`` for ``engine``'s driver."""
    compiled = stmt.compile(dialect=engine.dialect)
    params = compiled.params
    if compiled.positional:
        return str(compiled), tuple(params[name] for name in compiled.positiontup or ())
    return str(compiled), params


def scan_range(
    db: Database, key: bytes, lo: int, hi: int, prev: bytes, prev_time: str
) -> tuple[int | None, str, int, bytes]:
    """Check records ``lo <= seq < hi`` given the hash and time before ``lo``.

    Returns (first failing seq or ``None``, ``"mac"`` or ``"time"``, rows checked, last hash).
    """
    inner, outer = hmac_pads(key)
    raw = db.engine.raw_connection()
    checked = 0
    last, last_t = prev, prev_time
    try:
        cursor = raw.cursor()
        start = lo
        while True:
            stmt = (
                select(
                    RECORDS.c.seq,
                    RECORDS.c.hash,
                    RECORDS.c.canonical,
                    RECORDS.c.prev_hash,
                    RECORDS.c.at_us,
                )
                .where(RECORDS.c.seq >= start, RECORDS.c.seq < hi)
                .order_by(RECORDS.c.seq)
                .limit(PAGE)
            )
            sql, params = _raw_statement(db.engine, stmt)
            cursor.execute(sql, params)
            rows = cursor.fetchall()
            if not rows:
                break
            for seq, stored, text, prev_column, at in rows:
                i = inner()
                i.update(last + text.encode())
                o = outer()
                o.update(i.digest())
                if o.digest() != stored:
                    return seq, "mac", checked, last
                t = text[:TIME_DIGITS]
                if t < last_t:
                    return seq, "time", checked, last
                if prev_column != last:
                    return seq, "prev", checked, last
                if int(t) != at:
                    return seq, "at", checked, last
                last, last_t = stored, t
                checked += 1
            start = rows[-1][0] + 1
        cursor.close()
    finally:
        raw.close()
    return None, "", checked, last


def _scan_worker(
    url: str, key: bytes, lo: int, hi: int, prev: bytes, prev_time: str
) -> tuple[int | None, str, int, bytes]:
    db = Database(url)
    try:
        return scan_range(db, key, lo, hi, prev, prev_time)
    finally:
        db.dispose()


def _boundary(db: Database, lo: int) -> tuple[bytes, str] | None:
    """Hash and time of the last record before ``lo``."""
    with db.engine.connect() as conn:
        row = conn.execute(
            select(RECORDS.c.hash, RECORDS.c.canonical)
            .where(RECORDS.c.seq < lo)
            .order_by(RECORDS.c.seq.desc())
            .limit(1)
        ).first()
    return None if row is None else (bytes(row.hash), row.canonical[:TIME_DIGITS])


def _fast_pass(
    db: Database,
    key: bytes,
    lo: int,
    hi: int,
    prev: bytes,
    prev_time: str,
    workers: int,
) -> tuple[int | None, str, int, bytes]:
    if workers <= 1 or hi - lo < 2 * workers:
        return scan_range(db, key, lo, hi, prev, prev_time)
    step = -(-(hi - lo) // workers)
    bounds = [(a, min(a + step, hi)) for a in range(lo, hi, step)]
    starts: list[tuple[bytes, str]] = [(prev, prev_time)]
    for a, _ in bounds[1:]:
        found = _boundary(db, a)
        starts.append(found if found is not None else (prev, prev_time))
    # fork is cheap and safe when this process runs no other thread; otherwise spawn
    method = "fork" if threading.active_count() == 1 and os.name == "posix" else "spawn"
    with ProcessPoolExecutor(len(bounds), mp_context=multiprocessing.get_context(method)) as pool:
        futures = [
            pool.submit(_scan_worker, db.url, key, a, b, p, t)
            for (a, b), (p, t) in zip(bounds, starts, strict=True)
        ]
        results = [f.result() for f in futures]
    checked = 0
    last = prev
    for fail, reason, n, end in results:
        checked += n
        if fail is not None:
            return fail, reason, checked, end
        last = end
    return None, "", checked, last


# --- classification of the first failure --------------------------------------------------------


@dataclass(frozen=True)
class _Row:
    seq: int
    canonical: str
    prev_hash: bytes
    hash: bytes


def _row(db: Database, stmt: Select[Any]) -> _Row | None:
    with db.engine.connect() as conn:
        r = conn.execute(stmt).first()
    if r is None:
        return None
    return _Row(r.seq, r.canonical, bytes(r.prev_hash), bytes(r.hash))


def _select_row() -> Select[Any]:
    return select(RECORDS.c.seq, RECORDS.c.canonical, RECORDS.c.prev_hash, RECORDS.c.hash)


def _canonical_seq(text: str) -> int | None:
    parts = text.split(SEP, 2)
    return int(parts[1]) if len(parts) == 3 and parts[1].isdigit() else None


def classify(
    db: Database,
    key: bytes,
    seq: int,
    reason: str,
    *,
    start_seq: int,
    start_prev: bytes,
    checkpoints: dict[int, str],
) -> Problem:
    """What happened at ``seq``, the first record the fast pass rejected (``reason``)."""
    mac = hmac_sha256(key)
    row = _row(db, _select_row().where(RECORDS.c.seq == seq))
    if row is None:  # raced with an archive; nothing to say
        raise StoreError(f"audit record {seq} disappeared during verification; run it again")
    before = _row(
        db,
        _select_row()
        .where(RECORDS.c.seq < seq, RECORDS.c.seq >= start_seq)
        .order_by(RECORDS.c.seq.desc())
        .limit(1),
    )
    expected = before.seq + 1 if before is not None else start_seq
    if reason == "time":
        earlier = before.canonical[:TIME_DIGITS] if before else _ZERO_TIME
        return Problem(
            Damage.TIME_REGRESSION,
            seq,
            f"record {seq} is dated {int(row.canonical[:TIME_DIGITS])} µs, earlier than "
            f"record {expected - 1} ({int(earlier)} µs): the clock of the writer went back",
        )
    if reason in ("prev", "at"):
        column, reference = (
            ("prev_hash", "the previous record's hash")
            if reason == "prev"
            else ("at_us", "the authenticated time in its canonical text")
        )
        return Problem(
            Damage.MODIFIED,
            seq,
            f"record {seq}'s {column} column was altered: it does not match {reference}",
        )
    after = _row(db, _select_row().where(RECORDS.c.seq > seq).order_by(RECORDS.c.seq).limit(1))
    canonical_bytes = row.canonical.encode("utf-8")
    self_ok = mac(row.prev_hash + canonical_bytes) == row.hash
    own_seq = _canonical_seq(row.canonical)
    if self_ok:
        if own_seq != row.seq:
            return Problem(
                Damage.REORDERED,
                seq,
                f"position {seq} holds record {own_seq} (authentic, but moved): records were "
                "reordered",
            )
        if row.seq > expected:
            missing = f"{expected}" if row.seq == expected + 1 else f"{expected}..{row.seq - 1}"
            return Problem(
                Damage.DELETED,
                expected,
                f"record(s) {missing} are missing: record {row.seq} links to a record that is "
                "not there",
            )
        return Problem(
            Damage.INSERTED,
            seq,
            f"record {seq} is authentic but does not follow record {seq - 1}: records from "
            "another chain were spliced in",
        )
    vouched = (after is not None and after.prev_hash == row.hash) or checkpoints.get(
        row.seq
    ) == row.hash.hex()
    if vouched:
        return Problem(
            Damage.MODIFIED,
            seq,
            f"record {seq} was altered: its contents no longer match the hash the next record "
            "(or a checkpoint) vouches for",
        )
    previous = before.hash if before is not None else start_prev
    original = mac(previous + canonical_bytes)
    if after is not None and after.prev_hash == original:
        return Problem(
            Damage.MODIFIED,
            seq,
            f"record {seq}'s stored hash was altered (its contents are the original ones)",
        )
    return Problem(
        Damage.INSERTED,
        seq,
        f"record {seq} was not written with the audit key (its hash is not the chain's HMAC) "
        "and no later record or checkpoint links to it: a forged record was inserted",
    )


# --- the whole verification ---------------------------------------------------------------------


def auto_workers(records: int) -> int:
    """Processes for the fast pass over ``records``: one below :data:`PARALLEL_FROM`; else one
    per idle CPU (the CPUs this process may use less the load average), at most 8.

    One process checks about 300,000 records/s (the HMAC and the row fetch are its floor), so
    more speed needs more cores; but a process on a core that is already busy only adds
    start-up and contention (measured on a loaded 2-core machine: 2 processes lost to 1).
    """
    if records < PARALLEL_FROM:
        return 1
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    try:
        load = os.getloadavg()[0]
    except OSError:  # pragma: no cover - not available on this platform
        load = 0.0
    return max(1, min(8, round((cpus or 1) - load)))


def _head_seq(db: Database) -> int:
    with db.engine.connect() as conn:
        value = conn.execute(select(HEAD.c.seq).where(HEAD.c.id == 1)).scalar()
    return int(value) if value is not None else 0


def verify_log(
    db: Database,
    key: AuditKey,
    public_key: Ed25519PublicKey,
    *,
    external: Checkpoint | None = None,
    workers: int | None = None,
) -> VerifyReport:
    """Recompute the chain, the checkpoints and the archive anchors of the log in ``db``.

    ``external``: a checkpoint copied out of the database (``--from-checkpoint``); the log
    must still hold what it vouches for. ``workers``: processes for the fast pass (default:
    :func:`auto_workers`).
    """
    t0 = time.perf_counter()
    problems: list[Problem] = []
    head_before = _head_seq(db)

    # anchors: where the live chain starts
    start_seq, start_prev, start_time = 1, GENESIS, _ZERO_TIME
    with db.engine.connect() as conn:
        anchors = conn.execute(
            select(ANCHORS.c.first_seq, ANCHORS.c.statement, ANCHORS.c.signature).order_by(
                ANCHORS.c.first_seq
            )
        ).all()
        stored = conn.execute(
            select(CHECKPOINTS.c.count, CHECKPOINTS.c.statement, CHECKPOINTS.c.signature)
        ).all()
    for first_seq, statement, signature in anchors:
        try:
            doc = open_statement(statement, bytes(signature), public_key, ANCHOR_FORMAT)
            if doc.get("audit_key_id") != key.key_id or int(doc["first_seq"]) != first_seq:
                raise TamperError("the anchor names another audit key or another record")
        except (TamperError, KeyError, TypeError, ValueError) as exc:
            problems.append(
                Problem(Damage.BAD_CHECKPOINT, first_seq, f"archive anchor at {first_seq}: {exc}")
            )
            continue
        start_seq = first_seq
        start_prev = bytes.fromhex(doc["prev_hash"])
        start_time = f"{int(doc['last_time_us']):0{TIME_DIGITS}d}"

    checkpoints: list[Checkpoint] = []
    for count, statement, signature in stored:
        try:
            cp = Checkpoint.open(statement, bytes(signature), public_key)
            if cp.count != count:
                raise TamperError(f"its statement says count {cp.count}")
        except TamperError as exc:
            problems.append(Problem(Damage.BAD_CHECKPOINT, count, f"checkpoint {count}: {exc}"))
            continue
        checkpoints.append(cp)
    if external is not None:
        checkpoints.append(external)
    for cp in checkpoints:
        if cp.audit_key_id != key.key_id:
            problems.append(
                Problem(
                    Damage.BAD_CHECKPOINT,
                    cp.count,
                    f"checkpoint {cp.count} is for audit key {cp.audit_key_id}, not for the "
                    f"key given ({key.key_id}): verify with the key this log was written with",
                )
            )
    vouched = {cp.count: cp.head for cp in checkpoints}

    with db.engine.connect() as conn:
        n, low, high = conn.execute(
            select(func.count(), func.min(RECORDS.c.seq), func.max(RECORDS.c.seq))
        ).one()
    if low is not None and low < start_seq:
        problems.append(
            Problem(
                Damage.INSERTED,
                low,
                f"record {low} lies before the archive anchor (the live chain starts at "
                f"{start_seq}): records were inserted",
            )
        )
    checked, last_hash = 0, start_prev
    used = 1
    if high is not None and high >= start_seq:
        if workers is None:
            workers = auto_workers(n)
        if db.dialect == "sqlite" and ":memory:" in db.url:
            workers = 1
        used = workers
        fail, reason, checked, last_hash = _fast_pass(
            db, key.key, start_seq, high + 1, start_prev, start_time, workers
        )
        if fail is not None:
            problems.append(
                classify(
                    db,
                    key.key,
                    fail,
                    reason,
                    start_seq=start_seq,
                    start_prev=start_prev,
                    checkpoints=vouched,
                )
            )

    # truncation and insertion at the end: checkpoints and the head vouch for a length
    live_end = high if high is not None and high >= start_seq else start_seq - 1
    heads = {}
    wanted = [c for c in vouched if start_seq <= c <= live_end]
    if wanted:
        with db.engine.connect() as conn:
            heads = {
                s: bytes(h).hex()
                for s, h in conn.execute(
                    select(RECORDS.c.seq, RECORDS.c.hash).where(RECORDS.c.seq.in_(wanted))
                )
            }
    for cp in sorted(checkpoints, key=lambda c: c.count):
        if cp.count > live_end:
            problems.append(
                Problem(
                    Damage.TRUNCATED,
                    live_end + 1,
                    f"a checkpoint signed at {cp.time.isoformat()} vouches for {cp.count} "
                    f"records, but the log ends at {live_end}: records {live_end + 1}.."
                    f"{cp.count} were removed",
                )
            )
        elif cp.count == start_seq - 1 and cp.head != start_prev.hex():
            problems.append(
                Problem(
                    Damage.MODIFIED,
                    cp.count,
                    f"checkpoint {cp.count} does not match the archive anchor's hash",
                )
            )
        elif cp.count >= start_seq and cp.count not in heads:
            problems.append(
                Problem(
                    Damage.DELETED,
                    cp.count,
                    f"record {cp.count}, which checkpoint {cp.count} vouches for, is missing",
                )
            )
        elif cp.count >= start_seq and heads[cp.count] != cp.head:
            problems.append(
                Problem(
                    Damage.MODIFIED,
                    cp.count,
                    f"record {cp.count}'s hash differs from the one checkpoint {cp.count} "
                    "signed: the chain up to it was rewritten",
                )
            )
    if head_before > live_end:
        problems.append(
            Problem(
                Damage.TRUNCATED,
                live_end + 1,
                f"the chain head says {head_before} records were written, but the log ends at "
                f"{live_end}",
            )
        )
    head_after = _head_seq(db)
    if high is not None and high > head_after:
        problems.append(
            Problem(
                Damage.INSERTED,
                head_after + 1,
                f"records {head_after + 1}..{high} lie beyond the chain head ({head_after}): "
                "they were not appended through the audit log",
            )
        )
    problems.sort(key=lambda p: (p.seq, list(Damage).index(p.kind)))
    return VerifyReport(
        records=checked,
        first_seq=start_seq if checked else None,
        last_seq=start_seq + checked - 1 if checked else None,
        checkpoints=len(checkpoints),
        anchors=len(anchors),
        problems=tuple(problems),
        seconds=time.perf_counter() - t0,
        workers=used,
        head=last_hash.hex(),
    )
