"""The database: one SQLAlchemy engine, sessions as transactions, Alembic migrations.

SQLite (the embedded default) runs in WAL mode with ``synchronous=FULL`` and foreign keys on.
Each transaction of :meth:`Database.session` and :meth:`Database.write` starts with
``BEGIN IMMEDIATE`` so that concurrent writers from several processes queue on the database
lock (``busy_timeout``) instead of failing half-way through a read-then-write; PostgreSQL gives
the same guarantee with its own row locks and unique constraints.

Read-only work uses :meth:`Database.read` (or :meth:`Database.read_connection` for one Core
statement without the ORM): on SQLite these come from a second pool of ``PRAGMA query_only``
connections, so a write inside fails (``StoreError``) instead of taking the lock, and their
transactions start with a deferred ``BEGIN`` — a WAL snapshot that neither waits for nor
blocks a writer. Everything above this module is database-agnostic.
"""

from __future__ import annotations

import logging
import os
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Engine, create_engine, event, inspect
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from warden.errors import ConfigError, StoreError

__all__ = ["BUSY_TIMEOUT_S", "READ_POOL_SIZE", "Database", "sqlite_url"]

log = logging.getLogger(__name__)

BUSY_TIMEOUT_S = 60.0
"""How long a SQLite writer waits for another process's transaction before giving up."""

READ_POOL_SIZE = 16
"""SQLite read connections kept open (more are opened, and closed again, under bursts)."""
_READ_POOL_OVERFLOW = 48
_SINGLE_STATEMENT = "warden_single_statement"

T = TypeVar("T")


def sqlite_url(path: Path) -> str:
    """The SQLAlchemy URL of a SQLite database file."""
    return f"sqlite+pysqlite:///{path.resolve()}"


def _touch_private(path: Path) -> None:
    """Create ``path`` with mode 0600 if it does not exist (SQLite would use the umask)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o600)
    os.close(fd)
    os.chmod(path, 0o600)


def _sqlite_setup(engine: Engine, *, read_only: bool = False) -> None:
    """Connection settings and how transactions begin: ``BEGIN IMMEDIATE`` (the write lock)
    for the main engine; for the read engine a deferred ``BEGIN`` (a WAL snapshot), none at
    all for a single statement (SQLite runs it in its own implicit snapshot), and every
    connection ``query_only``."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event below issue BEGIN; pysqlite's own implicit BEGIN
        # is deferred, and a deferred read-then-write transaction fails under concurrency.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = FULL")
        cursor.execute("PRAGMA foreign_keys = ON")
        if read_only:
            cursor.execute("PRAGMA query_only = ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        if not read_only:
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        elif not connection.get_execution_options().get(_SINGLE_STATEMENT, False):
            connection.exec_driver_sql("BEGIN")


class Database:
    """A Warden database at ``url``: engine, transactional sessions and schema migrations.

    ``Database(url)`` connects lazily; :meth:`upgrade` brings the schema to the newest
    migration (``warden init`` and first use call it).
    """

    def __init__(self, url: str, *, echo: bool = False) -> None:
        try:
            parsed = make_url(url)
        except ArgumentError as exc:
            raise ConfigError(f"database URL {url!r} is not a SQLAlchemy URL: {exc}") from exc
        self.url = url
        self.dialect = parsed.get_backend_name()
        if self.dialect not in {"sqlite", "postgresql"}:
            raise ConfigError(
                f"database URL {parsed.render_as_string(hide_password=True)!r}: expected "
                "sqlite or postgresql+psycopg"
            )
        kwargs: dict[str, Any] = {"echo": echo}
        if self.dialect == "sqlite":
            database = parsed.database
            if database and database != ":memory:":
                _touch_private(Path(database))
            kwargs["connect_args"] = {"timeout": BUSY_TIMEOUT_S, "check_same_thread": False}
        else:
            kwargs["pool_pre_ping"] = True
        try:
            self.engine = create_engine(parsed, **kwargs)
        except (ArgumentError, ImportError) as exc:
            raise ConfigError(f"cannot use database URL: {exc}") from exc
        self._read_engine = self.engine
        if self.dialect == "sqlite":
            _sqlite_setup(self.engine)
        if self.dialect == "sqlite" and parsed.database and parsed.database != ":memory:":
            # Reads get their own pool of query_only connections: the request path's reads
            # never switch a connection's mode, and never churn the writers' pool.
            self._read_engine = create_engine(
                parsed, pool_size=READ_POOL_SIZE, max_overflow=_READ_POOL_OVERFLOW, **kwargs
            )
            _sqlite_setup(self._read_engine, read_only=True)
            _forget_pool_after_fork(self._read_engine)
        _forget_pool_after_fork(self.engine)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._read_sessions = sessionmaker(self._read_engine, expire_on_commit=False)
        self._statement_engine = self._read_engine.execution_options(**{_SINGLE_STATEMENT: True})

    def __repr__(self) -> str:
        shown = make_url(self.url).render_as_string(hide_password=True)
        return f"Database({shown!r})"

    @property
    def display_url(self) -> str:
        """The URL with any password hidden."""
        return make_url(self.url).render_as_string(hide_password=True)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session whose transaction commits on success and rolls back on error."""
        try:
            with self._sessions() as session, session.begin():
                yield session
        except OperationalError as exc:
            raise StoreError(f"database {self.display_url}: {exc.orig}") from exc

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A session for read-only work: one consistent snapshot that, on SQLite, does not take
        or wait for the write lock (deferred ``BEGIN``; the connection is ``query_only``, so a
        write inside fails with :class:`StoreError`). PostgreSQL, and an in-memory SQLite
        database (one connection), use an ordinary transaction."""
        try:
            with self._read_sessions() as session, session.begin():
                yield session
        except OperationalError as exc:
            raise StoreError(f"database {self.display_url}: {exc.orig}") from exc

    @contextmanager
    def read_connection(self) -> Iterator[Connection]:
        """A read-only Core connection (no ORM) for ONE compiled statement on a hot path.

        On SQLite no ``BEGIN`` is sent: the statement runs in its own implicit snapshot, which
        neither waits for nor blocks a writer (several statements would each see their own
        snapshot: use :meth:`read` for those). PostgreSQL: an ordinary transaction."""
        try:
            with self._statement_engine.begin() as connection:
                yield connection
        except OperationalError as exc:
            raise StoreError(f"database {self.display_url}: {exc.orig}") from exc

    def write(self, work: Callable[[Session], T], *, attempts: int = 5) -> T:
        """Run ``work`` in one transaction, retrying when a concurrent writer won a race.

        A unique-constraint violation (two processes numbering a version at once) or a
        serialization failure is retried with a fresh transaction; ``work`` must therefore be
        safe to run again (it re-reads what it depends on).
        """
        for attempt in range(1, attempts + 1):
            try:
                with self._sessions() as session, session.begin():
                    return work(session)
            except (IntegrityError, OperationalError) as exc:
                if attempt == attempts or not _retryable(exc):
                    if isinstance(exc, IntegrityError):
                        raise
                    raise StoreError(f"database {self.display_url}: {exc.orig}") from exc
                log.debug("write conflict (%s); retrying, attempt %d", exc.orig, attempt + 1)
                time.sleep(0.01 * attempt)
        raise AssertionError("unreachable")  # pragma: no cover

    def upgrade(self, revision: str = "head") -> None:
        """Migrate the schema to ``revision`` (default: the newest)."""
        from alembic import command

        try:
            with self.engine.begin() as connection:
                command.upgrade(_alembic_config(connection), revision)
        except DBAPIError as exc:
            raise StoreError(f"cannot migrate database {self.display_url}: {exc.orig}") from exc

    def revision(self) -> str | None:
        """The schema revision the database is at (``None`` for an empty database)."""
        from alembic.runtime.migration import MigrationContext

        with self.engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()

    def head(self) -> str:
        """The newest schema revision this Warden knows."""
        from alembic.script import ScriptDirectory

        head = ScriptDirectory.from_config(_alembic_config(None)).get_current_head()
        if head is None:  # pragma: no cover - the package ships migrations
            raise StoreError("no schema migrations found in the package")
        return head

    def table_names(self) -> list[str]:
        """The tables that exist in the database."""
        return sorted(inspect(self.engine).get_table_names())

    def ensure_schema(self) -> None:
        """Upgrade to head unless already there (first use)."""
        if self.revision() != self.head():
            self.upgrade()

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()
        if self._read_engine is not self.engine:
            self._read_engine.dispose()


def _forget_pool_after_fork(engine: Engine) -> None:
    """In a forked child, drop the pooled connections inherited from the parent without closing
    them (closing would talk over the parent's sockets or file handles); the child opens its
    own. SQLAlchemy's documented recipe for multiprocessing."""
    ref = weakref.ref(engine)

    def after_in_child() -> None:
        alive = ref()
        if alive is not None:
            alive.dispose(close=False)

    os.register_at_fork(after_in_child=after_in_child)


def _retryable(exc: DBAPIError) -> bool:
    if isinstance(exc, IntegrityError):
        return True
    text = str(exc.orig).lower()
    return "locked" in text or "could not serialize" in text or "deadlock" in text


def _alembic_config(connection: Connection | None) -> Any:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", "warden.store:migrations")
    config.attributes["connection"] = connection
    return config
