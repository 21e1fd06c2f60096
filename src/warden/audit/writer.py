"""The writer: group commit of audit records into one HMAC chain shared by every process.

Callers (any thread, or ``await`` from asyncio) hand events to one writer thread per process;
the writer takes everything queued (up to ``max_batch``) and commits it in one transaction.
A durable append returns only after its batch committed (SQLite: the WAL is fsynced, as the
database runs with ``synchronous=FULL``; PostgreSQL: the commit returned).

Numbering happens inside the committing transaction: it locks the one-row ``audit_head``
(SQLite: the transaction already holds the write lock from ``BEGIN IMMEDIATE``; PostgreSQL:
``SELECT ... FOR UPDATE``), reads the sequence number, hash and time of the chain's end, links
the batch on, inserts it and moves the head. Several processes therefore extend one chain
without forking it, and a batch is either wholly in the chain or not at all.

The writer thread keeps one connection of the database's engine and runs each batch as one
transaction begun the way every Warden transaction is (SQLite: ``BEGIN IMMEDIATE``), but with
statements that SQLAlchemy compiled once, executed on the DBAPI cursor: building and compiling
Core statements per batch cost more than SQLite's durable commit. Callers waiting for a durable
append wait on a bare lock the writer releases, not on a ``Future``.

Times never go backwards: a batch is stamped ``max(now, time of the chain's end)``; when the
wall clock is behind, the records say so in ``details["_clock"]``.

Checkpoints (signed count + head) are made in the same transaction when ``checkpoint_every``
records or ``checkpoint_seconds`` have passed since the last one, by whichever process is
writing, and on :meth:`AuditLog.close`; with ``external_dir`` each is also copied there.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Literal, TypeVar, cast, overload

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Connection, Dialect, bindparam, insert, select, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler

from warden.audit._tables import CHECKPOINTS, HEAD, RECORDS
from warden.audit.chain import GENESIS, MAX_TIME_US, SEP, hmac_pads
from warden.audit.checkpoints import Checkpoint, write_checkpoint_file
from warden.audit.events import AuditEvent, AuditReceipt
from warden.audit.keys import AuditKey, public_key_pem
from warden.errors import ConfigError, StoreError
from warden.store.db import Database

__all__ = ["AuditLog", "now_us"]

log = logging.getLogger(__name__)

T = TypeVar("T")

_EVENT: Final = 0
_FLUSH: Final = 1
_STOP: Final = 2
_ATTEMPTS: Final = 5
"""Transactions a batch may take when a concurrent writer wins a race (as ``Database.write``)."""

_HEAD_COLUMNS: Final = ("seq", "hash", "at_us", "checkpoint_seq", "checkpoint_us")
_RECORD_COLUMNS: Final = ("seq", "at_us", "canonical", "prev_hash", "hash")
_CHECKPOINT_COLUMNS: Final = ("count", "at_us", "key_id", "statement", "signature")


def now_us() -> int:
    """The wall-clock time in integer microseconds since the Unix epoch."""
    return time.time_ns() // 1000


class _Waiter:
    """A caller waiting for its durable append: one lock, released by the writer thread (a
    :class:`~concurrent.futures.Future` costs a condition variable and a lock per wait)."""

    __slots__ = ("_lock", "error", "value")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._lock.acquire()
        self.value: Any = None
        self.error: BaseException | None = None

    def set_result(self, value: Any) -> None:
        self.value = value
        self._lock.release()

    def set_exception(self, error: BaseException) -> None:
        self.error = error
        self._lock.release()

    def wait(self) -> Any:
        self._lock.acquire()
        if self.error is not None:
            raise self.error
        return self.value


Item = tuple[int, AuditEvent | None, "Future[Any] | _Waiter"]


@dataclasses.dataclass(frozen=True)
class _Head:
    seq: int
    hash: bytes
    at_us: int
    checkpoint_seq: int
    checkpoint_us: int


@dataclasses.dataclass(frozen=True)
class _Sql:
    """A statement as SQLAlchemy compiles it for the database's driver, run on a DBAPI
    cursor: the writer's hot path skips SQLAlchemy's per-statement work, not its SQL."""

    text: str
    order: tuple[str, ...] | None
    """Parameter names in the order a positional driver takes them; ``None``: by name."""
    fixed: dict[str, Any]
    """Values bound in the statement itself (``id = 1``)."""

    @classmethod
    def compile(
        cls, stmt: ClauseElement, dialect: Dialect, columns: tuple[str, ...] | None = None
    ) -> _Sql:
        compiled = cast(
            SQLCompiler,
            stmt.compile(dialect=dialect, column_keys=list(columns) if columns else None),
        )
        fixed = {k: v for k, v in compiled.params.items() if columns is None or k not in columns}
        order = tuple(compiled.positiontup or ()) if compiled.positional else None
        return cls(str(compiled), order, fixed)

    def params(self, values: dict[str, Any]) -> Any:
        merged = {**self.fixed, **values}
        return merged if self.order is None else tuple(merged[name] for name in self.order)

    def run(self, cursor: Any, **values: Any) -> None:
        cursor.execute(self.text, self.params(values))

    def one(self, cursor: Any, **values: Any) -> Any:
        cursor.execute(self.text, self.params(values))
        return cursor.fetchone()

    def many(self, cursor: Any, names: tuple[str, ...], rows: list[tuple[Any, ...]]) -> None:
        if self.order == names:
            params: list[Any] = rows
        elif self.order is None:
            params = [dict(zip(names, row, strict=True)) for row in rows]
        else:
            index = [names.index(name) for name in self.order]
            params = [tuple(row[i] for i in index) for row in rows]
        cursor.executemany(self.text, params)


@dataclasses.dataclass(frozen=True)
class _Statements:
    """Every statement the writer runs, compiled once per dialect."""

    lock_head: _Sql
    create_head: _Sql
    move_head: _Sql
    insert_records: _Sql
    insert_checkpoint: _Sql
    find_checkpoint: _Sql
    find_record: _Sql


@functools.lru_cache(maxsize=8)
def _statements(dialect: Dialect) -> _Statements:
    head = select(*(HEAD.c[name] for name in _HEAD_COLUMNS)).where(HEAD.c.id == 1)
    return _Statements(
        lock_head=_Sql.compile(head.with_for_update(), dialect),
        create_head=_Sql.compile(insert(HEAD), dialect, ("id", *_HEAD_COLUMNS)),
        move_head=_Sql.compile(update(HEAD).where(HEAD.c.id == 1), dialect, _HEAD_COLUMNS),
        insert_records=_Sql.compile(insert(RECORDS), dialect, _RECORD_COLUMNS),
        insert_checkpoint=_Sql.compile(insert(CHECKPOINTS).inline(), dialect, _CHECKPOINT_COLUMNS),
        find_checkpoint=_Sql.compile(
            select(CHECKPOINTS.c.statement, CHECKPOINTS.c.signature).where(
                CHECKPOINTS.c.count == bindparam("count")
            ),
            dialect,
        ),
        find_record=_Sql.compile(
            select(RECORDS.c.canonical, RECORDS.c.prev_hash).where(
                RECORDS.c.seq == bindparam("seq")
            ),
            dialect,
        ),
    )


@contextmanager
def _cursor(session: Session) -> Iterator[Any]:
    """A DBAPI cursor in ``session``'s transaction."""
    dbapi = session.connection().connection.dbapi_connection
    assert dbapi is not None
    cursor = dbapi.cursor()
    try:
        yield cursor
    finally:
        cursor.close()


def _lock_head(cursor: Any, sql: _Statements, clock_us: int) -> _Head:
    row = sql.lock_head.one(cursor)
    if row is None:
        sql.create_head.run(
            cursor, id=1, seq=0, hash=GENESIS, at_us=0, checkpoint_seq=0, checkpoint_us=clock_us
        )
        return _Head(0, GENESIS, 0, 0, clock_us)
    seq, digest, at_us, checkpoint_seq, checkpoint_us = row
    return _Head(seq, bytes(digest), at_us, checkpoint_seq, checkpoint_us)


def lock_head(session: Session, clock_us: int) -> _Head:
    """The chain's end, locked for this transaction (created on first use)."""
    with _cursor(session) as cursor:
        return _lock_head(cursor, _statements(session.get_bind().dialect), clock_us)


def _is_conflict(dbapi: Any, error: BaseException) -> bool:
    """Whether a failed transaction lost a race and may simply run again (the rule of
    ``Database.write``: a unique-key clash, a busy lock, a serialization failure)."""
    if isinstance(error, dbapi.IntegrityError):
        return True
    text = str(error).lower()
    return "locked" in text or "could not serialize" in text or "deadlock" in text


class AuditLog:
    """An append-only, HMAC-chained audit log in ``db`` (also an :class:`AuditSink`).

    ``key`` keys the chain; ``signer`` signs checkpoints every ``checkpoint_every`` records or
    ``checkpoint_seconds`` (``None``: never by time), each copied to ``external_dir`` when
    given. Use it as a context manager or call :meth:`close`, which flushes what is queued and
    leaves a checkpoint over it.

    ``max_delay_s`` bounds how long the writer holds a batch open for callers that are on
    their way back (0: commit whatever is queued at once).
    """

    def __init__(
        self,
        db: Database,
        key: AuditKey,
        signer: Ed25519PrivateKey,
        *,
        checkpoint_every: int = 10_000,
        checkpoint_seconds: float | None = 60.0,
        external_dir: Path | None = None,
        max_batch: int = 4096,
        max_delay_s: float = 0.002,
        clock: Callable[[], int] = now_us,
    ) -> None:
        if checkpoint_every < 1:
            raise ConfigError(f"checkpoint_every must be >= 1, found {checkpoint_every}")
        if checkpoint_seconds is not None and checkpoint_seconds <= 0:
            raise ConfigError(f"checkpoint_seconds must be > 0, found {checkpoint_seconds}")
        if max_batch < 1:
            raise ConfigError(f"max_batch must be >= 1, found {max_batch}")
        if max_delay_s < 0:
            raise ConfigError(f"max_delay_s must be >= 0, found {max_delay_s}")
        self.db = db
        self.key_id = key.key_id
        self._pads = hmac_pads(key.key)
        self._signer = signer
        self._public_pem = public_key_pem(signer)
        self.checkpoint_every = checkpoint_every
        self.checkpoint_seconds = checkpoint_seconds
        self.external_dir = external_dir
        self.max_batch = max_batch
        self.max_delay_s = max_delay_s
        self._clock = clock
        self._lock = threading.Lock()
        self._closed = False
        self._pid = -1
        self._queue: queue.SimpleQueue[Item] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._conn: Connection | None = None
        self._inherited: list[Connection] = []
        self._dirty = False
        self._key_checked = False

    # --- the callers' side ---------------------------------------------------------------

    def _submit(self, kind: int, event: AuditEvent | None, waiter: Future[Any] | _Waiter) -> None:
        with self._lock:
            if self._closed:
                raise StoreError("the audit log is closed; open a new AuditLog to append")
            if self._pid != os.getpid():  # first use, or this process was forked from another
                self._queue = queue.SimpleQueue()
                if self._conn is not None:
                    # The parent's connection: never used, closed or returned to the pool here
                    # (that would talk over the parent's socket), so kept from collection.
                    self._inherited.append(self._conn)
                    self._conn = None
                self._thread = threading.Thread(
                    target=self._run, name="warden-audit-writer", daemon=True
                )
                self._pid = os.getpid()
                self._thread.start()
            self._queue.put((kind, event, waiter))

    @overload
    def append(self, event: AuditEvent, *, durable: Literal[True] = ...) -> AuditReceipt: ...

    @overload
    def append(self, event: AuditEvent, *, durable: Literal[False]) -> Future[AuditReceipt]: ...

    def append(
        self, event: AuditEvent, *, durable: bool = True
    ) -> AuditReceipt | Future[AuditReceipt]:
        """Append ``event``. Durable (default): return its receipt once it is committed.
        ``durable=False``: return at once with a future of the receipt."""
        if not isinstance(event, AuditEvent):
            raise ConfigError(f"expected an AuditEvent, found {type(event).__name__}")
        if not durable:
            future: Future[AuditReceipt] = Future()
            self._submit(_EVENT, event, future)
            return future
        waiter = _Waiter()
        self._submit(_EVENT, event, waiter)
        seq, digest = waiter.wait()
        return AuditReceipt(seq, digest.hex())

    async def append_async(self, event: AuditEvent) -> AuditReceipt:
        """Append ``event`` durably without blocking the event loop."""
        return await asyncio.wrap_future(self.append(event, durable=False))

    def record(self, event: AuditEvent) -> None:
        """:class:`~warden.audit.events.AuditSink`: append ``event`` durably."""
        self.append(event)

    def flush(self) -> None:
        """Return once everything appended before this call is committed."""
        waiter = _Waiter()
        self._submit(_FLUSH, None, waiter)
        waiter.wait()

    def close(self) -> None:
        """Commit what is queued, leave a checkpoint over it, stop the writer thread."""
        with self._lock:
            if self._closed:
                return
            running = self._thread is not None and self._pid == os.getpid()
            if running:
                stop = _Waiter()
                self._queue.put((_STOP, None, stop))
            self._closed = True
        if running:
            assert self._thread is not None
            self._thread.join()
            stop.wait()

    def __enter__(self) -> AuditLog:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # --- checkpoints -----------------------------------------------------------------------

    def _make_checkpoint(self, cursor: Any, count: int, head: bytes, at_us: int) -> Checkpoint:
        checkpoint = Checkpoint.make(
            self._signer, count=count, head=head, time_us=at_us, audit_key_id=self.key_id
        )
        _statements(self.db.engine.dialect).insert_checkpoint.run(
            cursor,
            count=count,
            at_us=at_us,
            key_id=checkpoint.key_id,
            statement=checkpoint.statement,
            signature=checkpoint.signature,
        )
        return checkpoint

    def _copy_out(self, checkpoints: list[Checkpoint]) -> None:
        if self.external_dir is None:
            return
        for checkpoint in checkpoints:
            try:
                write_checkpoint_file(self.external_dir, checkpoint, self._public_pem)
            except OSError as exc:
                log.error(
                    "cannot copy audit checkpoint %d to %s: %s",
                    checkpoint.count,
                    self.external_dir,
                    exc,
                )

    def _checkpoint_work(self, cursor: Any) -> tuple[Checkpoint | None, bool]:
        sql = _statements(self.db.engine.dialect)
        now = self._clock()
        head = _lock_head(cursor, sql, now)
        if head.seq == 0:
            return None, False
        if head.checkpoint_seq == head.seq:
            row = sql.find_checkpoint.one(cursor, count=head.seq)
            if row is not None:
                statement, signature = row
                return Checkpoint.open(
                    statement, bytes(signature), self._signer.public_key()
                ), False
        at = max(now, head.at_us)
        made = self._make_checkpoint(cursor, head.seq, head.hash, at)
        sql.move_head.run(
            cursor,
            seq=head.seq,
            hash=head.hash,
            at_us=head.at_us,
            checkpoint_seq=head.seq,
            checkpoint_us=at,
        )
        return made, True

    def checkpoint(self) -> Checkpoint | None:
        """Sign a checkpoint over the chain's end now, unless the newest one already covers
        it (then return that one); ``None`` for an empty log."""

        def work(session: Session) -> tuple[Checkpoint | None, bool]:
            with _cursor(session) as cursor:
                return self._checkpoint_work(cursor)

        made, new = self.db.write(work)
        if made is not None and new:
            self._copy_out([made])
        return made

    # --- the writer thread -------------------------------------------------------------------

    def _commit(
        self, cursor: Any, events: list[AuditEvent]
    ) -> tuple[list[tuple[int, bytes]], list[Checkpoint]]:
        """Number, link and insert ``events`` after the chain's end, in the open transaction:
        (sequence number, hash) per event, and the checkpoint made, if one was due."""
        sql = _statements(self.db.engine.dialect)
        now = self._clock()
        head = _lock_head(cursor, sql, now)
        if not self._key_checked:
            self._check_key(cursor, sql, head)
        at = max(now, head.at_us)
        if not 0 <= at <= MAX_TIME_US:
            raise ValueError(f"time {at} µs is outside 0..{MAX_TIME_US}")
        prefix = f"{at:016d}{SEP}"
        inner, outer = self._pads
        seq, prev = head.seq, head.hash
        rows: list[tuple[int, int, str, bytes, bytes]] = []
        done: list[tuple[int, bytes]] = []
        for event in events:
            tail = event.tail
            if now < head.at_us:
                clamped = {**event.details, "_clock": {"wall_us": now, "clamped_to_us": at}}
                tail = dataclasses.replace(event, details=clamped).tail
            seq += 1
            canonical = f"{prefix}{seq}{SEP}{tail}"
            h = inner()
            h.update(prev + canonical.encode("utf-8"))
            o = outer()
            o.update(h.digest())
            digest: bytes = o.digest()
            rows.append((seq, at, canonical, prev, digest))
            done.append((seq, digest))
            prev = digest
        if rows:
            sql.insert_records.many(cursor, _RECORD_COLUMNS, rows)
        checkpoints: list[Checkpoint] = []
        checkpoint_seq, checkpoint_us = head.checkpoint_seq, head.checkpoint_us
        due_by_time = (
            self.checkpoint_seconds is not None
            and at - checkpoint_us >= self.checkpoint_seconds * 1_000_000
        )
        if seq > checkpoint_seq and (seq - checkpoint_seq >= self.checkpoint_every or due_by_time):
            checkpoints.append(self._make_checkpoint(cursor, seq, prev, at))
            checkpoint_seq, checkpoint_us = seq, at
        sql.move_head.run(
            cursor,
            seq=seq,
            hash=prev,
            at_us=at,
            checkpoint_seq=checkpoint_seq,
            checkpoint_us=checkpoint_us,
        )
        return done, checkpoints

    def _check_key(self, cursor: Any, sql: _Statements, head: _Head) -> None:
        """Refuse to extend a chain this key did not write (a lost or wrong audit key would
        otherwise fork it silently): the head record must authenticate with our key."""
        if head.seq > 0:
            row = sql.find_record.one(cursor, seq=head.seq)
            inner, outer = self._pads
            ok = False
            if row is not None:
                canonical, prev_hash = row
                h = inner()
                h.update(bytes(prev_hash) + canonical.encode("utf-8"))
                o = outer()
                o.update(h.digest())
                ok = o.digest() == head.hash
            if not ok:
                raise ConfigError(
                    f"audit key {self.key_id[:16]} did not write this audit log (its last record, "
                    f"#{head.seq}, does not authenticate with it, or was altered): set "
                    "WARDEN_AUDIT_KEY or HOME/audit.key to the log's key, and run "
                    "`warden audit verify`"
                )
        self._key_checked = True

    def _transaction(self, work: Callable[[Any], T]) -> T:
        """Run ``work(cursor)`` in one transaction on the writer thread's own connection.

        The transaction begins as every Warden transaction does (SQLite: ``BEGIN IMMEDIATE``,
        from the engine's ``begin`` event) and commits through SQLAlchemy; only the statements
        in between go straight to the DBAPI cursor. Lost races are retried as
        :meth:`Database.write` does; a dropped connection is replaced, and the batch retried
        when the failure came before the commit.
        """
        dbapi = self.db.engine.dialect.loaded_dbapi
        for attempt in range(1, _ATTEMPTS + 1):
            committing = False
            try:
                if self._conn is None:
                    self._conn = self.db.engine.connect()
                conn = self._conn
                with conn.begin():
                    raw = conn.connection.dbapi_connection
                    assert raw is not None
                    cursor = raw.cursor()
                    try:
                        result = work(cursor)
                    finally:
                        cursor.close()
                    committing = True
                return result
            except Exception as exc:
                error = exc.orig if isinstance(exc, DBAPIError) else exc
                if not isinstance(error, dbapi.Error):
                    raise
                dropped = self._drop_connection(error)
                again = _is_conflict(dbapi, error) or (dropped and not committing)
                if attempt == _ATTEMPTS or not again:
                    raise StoreError(f"database {self.db.display_url}: {error}") from exc
                log.debug("audit write conflict (%s); retrying, attempt %d", error, attempt + 1)
                time.sleep(0.01 * attempt)
        raise AssertionError("unreachable")  # pragma: no cover

    def _drop_connection(self, error: BaseException) -> bool:
        """Give the writer's connection back after a failure; whether it was lost."""
        conn, self._conn = self._conn, None
        if conn is None:
            return False
        lost = conn.invalidated
        try:
            raw = None if lost else conn.connection.dbapi_connection
            lost = lost or self.db.engine.dialect.is_disconnect(error, raw, None)  # type: ignore[arg-type]
            if lost and not conn.invalidated:
                conn.invalidate()
            conn.close()
        except Exception as exc:  # noqa: BLE001 - the next batch takes a fresh connection
            log.debug("audit writer: closing a failed connection: %s", exc)
            lost = True
        return lost

    def _wait_s(self) -> float | None:
        return self.checkpoint_seconds if self._dirty else None

    def _drain(self, batch: list[Item], events: list[AuditEvent]) -> None:
        q = self._queue
        while len(events) < self.max_batch:
            try:
                item = q.get_nowait()
            except queue.Empty:
                return
            batch.append(item)
            if item[0] == _EVENT and item[1] is not None:
                events.append(item[1])

    def _run(self) -> None:
        q = self._queue
        last_size, last_commit_s = 0, 0.0
        try:
            while True:
                try:
                    first = q.get(timeout=self._wait_s())
                except queue.Empty:
                    self._timed_checkpoint()
                    continue
                batch = [first]
                events: list[AuditEvent] = [first[1]] if first[0] == _EVENT and first[1] else []
                self._drain(batch, events)
                # Group-commit delay: the callers of the last batch are still coming back;
                # wait a little (at most half a commit) so that one fsync serves them all.
                if len(events) < last_size and last_size > 1 and first[0] == _EVENT:
                    deadline = time.perf_counter() + min(last_commit_s / 2, self.max_delay_s)
                    while len(events) < last_size and time.perf_counter() < deadline:
                        time.sleep(self.max_delay_s / 20)
                        self._drain(batch, events)
                started = time.perf_counter()
                self._write_batch(batch, events)
                if events:
                    last_size, last_commit_s = len(events), time.perf_counter() - started
                if any(kind == _STOP for kind, _, _ in batch):
                    self._final_checkpoint(batch)
                    return
        finally:
            self._drop_connection_quietly()

    def _drop_connection_quietly(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except Exception as exc:  # noqa: BLE001 - the thread is ending
                log.debug("audit writer: closing its connection: %s", exc)

    def _write_batch(self, batch: list[Item], events: list[AuditEvent]) -> None:
        try:
            done, checkpoints = (
                self._transaction(lambda cursor: self._commit(cursor, events))
                if events
                else ([], [])
            )
        except BaseException as exc:  # noqa: BLE001 - every waiting caller must hear of it
            failed = 0
            for kind, _, waiter in batch:
                if kind == _EVENT:
                    failed += 1
                    waiter.set_exception(exc)
            log.error("audit log: a batch of %d record(s) was not written: %s", failed, exc)
            for kind, _, waiter in batch:
                if kind == _FLUSH:
                    waiter.set_exception(exc)
            return
        if events:
            self._dirty = not checkpoints
        it = iter(done)
        for kind, _, waiter in batch:
            if kind == _EVENT:
                if type(waiter) is _Waiter:
                    waiter.set_result(next(it))
                else:
                    seq, digest = next(it)
                    waiter.set_result(AuditReceipt(seq, digest.hex()))
            elif kind == _FLUSH:
                waiter.set_result(None)
        self._copy_out(checkpoints)

    def _checkpoint_now(self) -> None:
        made, new = self._transaction(self._checkpoint_work)
        if made is not None and new:
            self._copy_out([made])

    def _timed_checkpoint(self) -> None:
        self._dirty = False
        try:
            self._checkpoint_now()
        except Exception as exc:  # noqa: BLE001 - the writer thread must keep running
            log.error("audit log: cannot write a checkpoint: %s", exc)

    def _final_checkpoint(self, batch: list[Item]) -> None:
        stop = next(waiter for kind, _, waiter in batch if kind == _STOP)
        try:
            if self._dirty:
                self._checkpoint_now()
        except Exception as exc:  # noqa: BLE001 - reported to close()
            stop.set_exception(exc)
            return
        stop.set_result(None)
