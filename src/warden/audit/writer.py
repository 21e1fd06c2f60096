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

Times never go backwards: a batch is stamped ``max(now, time of the chain's end)``; when the
wall clock is behind, the records say so in ``details["_clock"]``.

Checkpoints (signed count + head) are made in the same transaction when ``checkpoint_every``
records or ``checkpoint_seconds`` have passed since the last one, by whichever process is
writing, and on :meth:`AuditLog.close`; with ``external_dir`` each is also copied there.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Literal, overload

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from warden.audit._tables import CHECKPOINTS, HEAD, RECORDS
from warden.audit.chain import GENESIS, canonical_text, hmac_sha256
from warden.audit.checkpoints import Checkpoint, write_checkpoint_file
from warden.audit.events import AuditEvent, AuditReceipt
from warden.audit.keys import AuditKey, public_key_pem
from warden.errors import ConfigError, StoreError
from warden.store.db import Database

__all__ = ["AuditLog", "now_us"]

log = logging.getLogger(__name__)

_EVENT: Final = 0
_FLUSH: Final = 1
_STOP: Final = 2

Item = tuple[int, AuditEvent | None, "Future[Any]"]


def now_us() -> int:
    """The wall-clock time in integer microseconds since the Unix epoch."""
    return time.time_ns() // 1000


@dataclasses.dataclass(frozen=True)
class _Head:
    seq: int
    hash: bytes
    at_us: int
    checkpoint_seq: int
    checkpoint_us: int


def lock_head(session: Session, clock_us: int) -> _Head:
    """The chain's end, locked for this transaction (created on first use)."""
    row = session.execute(select(HEAD).where(HEAD.c.id == 1).with_for_update()).first()
    if row is None:
        session.execute(
            insert(HEAD).values(
                id=1, seq=0, hash=GENESIS, at_us=0, checkpoint_seq=0, checkpoint_us=clock_us
            )
        )
        return _Head(0, GENESIS, 0, 0, clock_us)
    return _Head(row.seq, row.hash, row.at_us, row.checkpoint_seq, row.checkpoint_us)


class AuditLog:
    """An append-only, HMAC-chained audit log in ``db`` (also an :class:`AuditSink`).

    ``key`` keys the chain; ``signer`` signs checkpoints every ``checkpoint_every`` records or
    ``checkpoint_seconds`` (``None``: never by time), each copied to ``external_dir`` when
    given. Use it as a context manager or call :meth:`close`, which flushes what is queued and
    leaves a checkpoint over it.
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
        self.db = db
        self.key_id = key.key_id
        self._mac = hmac_sha256(key.key)
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
        self._dirty = False
        self._key_checked = False
        self._insert_sql: tuple[str, bool, list[str]] | None = None

    # --- the callers' side ---------------------------------------------------------------

    def _submit(self, kind: int, event: AuditEvent | None) -> Future[Any]:
        future: Future[Any] = Future()
        with self._lock:
            if self._closed:
                raise StoreError("the audit log is closed; open a new AuditLog to append")
            if self._pid != os.getpid():  # first use, or this process was forked from another
                self._queue = queue.SimpleQueue()
                self._thread = threading.Thread(
                    target=self._run, name="warden-audit-writer", daemon=True
                )
                self._pid = os.getpid()
                self._thread.start()
            self._queue.put((kind, event, future))
        return future

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
        future: Future[AuditReceipt] = self._submit(_EVENT, event)
        return future.result() if durable else future

    async def append_async(self, event: AuditEvent) -> AuditReceipt:
        """Append ``event`` durably without blocking the event loop."""
        return await asyncio.wrap_future(self.append(event, durable=False))

    def record(self, event: AuditEvent) -> None:
        """:class:`~warden.audit.events.AuditSink`: append ``event`` durably."""
        self.append(event)

    def flush(self) -> None:
        """Return once everything appended before this call is committed."""
        self._submit(_FLUSH, None).result()

    def close(self) -> None:
        """Commit what is queued, leave a checkpoint over it, stop the writer thread."""
        with self._lock:
            if self._closed:
                return
            running = self._thread is not None and self._pid == os.getpid()
            if running:
                stop: Future[Any] = Future()
                self._queue.put((_STOP, None, stop))
            self._closed = True
        if running:
            assert self._thread is not None
            self._thread.join()
            stop.result()

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

    def _make_checkpoint(self, session: Session, count: int, head: bytes, at_us: int) -> Checkpoint:
        checkpoint = Checkpoint.make(
            self._signer, count=count, head=head, time_us=at_us, audit_key_id=self.key_id
        )
        session.execute(
            insert(CHECKPOINTS).values(
                count=count,
                at_us=at_us,
                key_id=checkpoint.key_id,
                statement=checkpoint.statement,
                signature=checkpoint.signature,
            )
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

    def checkpoint(self) -> Checkpoint | None:
        """Sign a checkpoint over the chain's end now, unless the newest one already covers
        it (then return that one); ``None`` for an empty log."""

        def work(session: Session) -> tuple[Checkpoint | None, bool]:
            now = self._clock()
            head = lock_head(session, now)
            if head.seq == 0:
                return None, False
            if head.checkpoint_seq == head.seq:
                row = session.execute(
                    select(CHECKPOINTS.c.statement, CHECKPOINTS.c.signature).where(
                        CHECKPOINTS.c.count == head.seq
                    )
                ).first()
                if row is not None:
                    return Checkpoint.open(
                        row.statement, row.signature, self._signer.public_key()
                    ), False
            at = max(now, head.at_us)
            made = self._make_checkpoint(session, head.seq, head.hash, at)
            session.execute(
                update(HEAD).where(HEAD.c.id == 1).values(checkpoint_seq=head.seq, checkpoint_us=at)
            )
            return made, True

        made, new = self.db.write(work)
        if made is not None and new:
            self._copy_out([made])
        return made

    # --- the writer thread -------------------------------------------------------------------

    def _commit(
        self, session: Session, events: list[AuditEvent]
    ) -> tuple[list[AuditReceipt], list[Checkpoint]]:
        now = self._clock()
        head = lock_head(session, now)
        if not self._key_checked:
            self._check_key(session, head)
        at = max(now, head.at_us)
        seq, prev, mac = head.seq, head.hash, self._mac
        rows: list[tuple[int, int, str, bytes, bytes]] = []
        receipts: list[AuditReceipt] = []
        for event in events:
            tail = event.tail
            if now < head.at_us:
                clamped = {**event.details, "_clock": {"wall_us": now, "clamped_to_us": at}}
                tail = dataclasses.replace(event, details=clamped).tail
            seq += 1
            canonical = canonical_text(at, seq, tail)
            digest = mac(prev + canonical.encode("utf-8"))
            rows.append((seq, at, canonical, prev, digest))
            receipts.append(AuditReceipt(seq, digest.hex()))
            prev = digest
        if rows:
            self._insert_rows(session, rows)
        checkpoints: list[Checkpoint] = []
        checkpoint_seq, checkpoint_us = head.checkpoint_seq, head.checkpoint_us
        due_by_time = (
            self.checkpoint_seconds is not None
            and at - checkpoint_us >= self.checkpoint_seconds * 1_000_000
        )
        if seq > checkpoint_seq and (seq - checkpoint_seq >= self.checkpoint_every or due_by_time):
            checkpoints.append(self._make_checkpoint(session, seq, prev, at))
            checkpoint_seq, checkpoint_us = seq, at
        session.execute(
            update(HEAD)
            .where(HEAD.c.id == 1)
            .values(
                seq=seq,
                hash=prev,
                at_us=at,
                checkpoint_seq=checkpoint_seq,
                checkpoint_us=checkpoint_us,
            )
        )
        return receipts, checkpoints

    def _check_key(self, session: Session, head: _Head) -> None:
        """Refuse to extend a chain this key did not write (a lost or wrong audit key would
        otherwise fork it silently): the head record must authenticate with our key."""
        if head.seq > 0:
            row = session.execute(
                select(RECORDS.c.canonical, RECORDS.c.prev_hash).where(RECORDS.c.seq == head.seq)
            ).first()
            if row is None or self._mac(bytes(row.prev_hash) + row.canonical.encode()) != bytes(
                head.hash
            ):
                raise ConfigError(
                    f"audit key {self.key_id[:16]} did not write this audit log (its last record, "
                    f"#{head.seq}, does not authenticate with it, or was altered): set "
                    "WARDEN_AUDIT_KEY or HOME/audit.key to the log's key, and run "
                    "`warden audit verify`"
                )
        self._key_checked = True

    def _insert_rows(
        self, session: Session, rows: list[tuple[int, int, str, bytes, bytes]]
    ) -> None:
        """``executemany`` on the transaction's DBAPI cursor: SQLAlchemy's per-row parameter
        processing would cost more than the whole chain step. The statement is SQLAlchemy's
        own compilation of the insert for this dialect."""
        if self._insert_sql is None:
            compiled = insert(RECORDS).compile(dialect=self.db.engine.dialect)
            self._insert_sql = (
                str(compiled),
                compiled.positional,
                list(compiled.positiontup or ()),
            )
        sql, positional, order = self._insert_sql
        names = ("seq", "at_us", "canonical", "prev_hash", "hash")
        if positional:
            index = [names.index(name) for name in order]
            params: list[Any] = [tuple(row[i] for i in index) for row in rows]
        else:
            params = [dict(zip(names, row, strict=True)) for row in rows]
        dbapi = session.connection().connection.dbapi_connection
        assert dbapi is not None
        cursor = dbapi.cursor()
        try:
            cursor.executemany(sql, params)
        finally:
            cursor.close()

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
        while True:
            try:
                first = q.get(timeout=self._wait_s())
            except queue.Empty:
                self._timed_checkpoint()
                continue
            batch = [first]
            events: list[AuditEvent] = [first[1]] if first[0] == _EVENT and first[1] else []
            self._drain(batch, events)
            # Group-commit delay: the callers of the last batch are still coming back; wait a
            # little (at most half a commit) for them so that one fsync serves them all.
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

    def _write_batch(self, batch: list[Item], events: list[AuditEvent]) -> None:
        try:
            receipts, checkpoints = (
                self.db.write(lambda session: self._commit(session, events)) if events else ([], [])
            )
        except BaseException as exc:  # noqa: BLE001 - every waiting caller must hear of it
            failed = 0
            for kind, _, future in batch:
                if kind == _EVENT:
                    failed += 1
                    future.set_exception(exc)
            log.error("audit log: a batch of %d record(s) was not written: %s", failed, exc)
            for kind, _, future in batch:
                if kind == _FLUSH:
                    future.set_exception(exc)
            return
        if events:
            self._dirty = not checkpoints
        it = iter(receipts)
        for kind, _, future in batch:
            if kind == _EVENT:
                future.set_result(next(it))
            elif kind == _FLUSH:
                future.set_result(None)
        self._copy_out(checkpoints)

    def _timed_checkpoint(self) -> None:
        self._dirty = False
        try:
            self.checkpoint()
        except Exception as exc:  # noqa: BLE001 - the writer thread must keep running
            log.error("audit log: cannot write a checkpoint: %s", exc)

    def _final_checkpoint(self, batch: list[Item]) -> None:
        stop = next(future for kind, _, future in batch if kind == _STOP)
        try:
            if self._dirty:
                self.checkpoint()
        except Exception as exc:  # noqa: BLE001 - reported to close()
            stop.set_exception(exc)
            return
        stop.set_result(None)
