"""The database layer: URLs, file modes, SQLite settings, transactions and write retries."""

from __future__ import annotations

import multiprocessing
import stat
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from warden.config import load_settings
from warden.errors import ConfigError, StoreError
from warden.store.db import Database, sqlite_url
from warden.store.tables import Model, utcnow


def test_sqlite_file_is_private_and_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "home" / "w.db"
    db = Database(sqlite_url(path))
    db.upgrade()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    with db.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
    db.dispose()


@pytest.mark.parametrize(
    ("url", "match"),
    [
        ("not a url", "not a SQLAlchemy URL"),
        ("mysql://u@localhost/db", "expected sqlite or postgresql"),
    ],
)
def test_bad_urls_are_config_errors(url: str, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        Database(url)


def test_password_is_hidden_in_display_url() -> None:
    db = Database("postgresql+psycopg://user:s3cret@127.0.0.1:1/db")
    assert "s3cret" not in db.display_url
    assert "s3cret" not in repr(db)


def test_unreachable_server_is_a_store_error() -> None:
    db = Database("postgresql+psycopg://user@127.0.0.1:1/db?connect_timeout=2")
    with pytest.raises(StoreError, match="cannot migrate database"):
        db.upgrade()


def test_session_commits_and_rolls_back(database_url: str) -> None:
    db = Database(database_url)
    db.upgrade()
    with db.session() as s:
        s.add(Model(name="kept", created_by="t"))
    with pytest.raises(RuntimeError), db.session() as s:
        s.add(Model(name="dropped", created_by="t"))
        s.flush()
        raise RuntimeError("boom")
    with db.session() as s:
        names = s.scalars(select(Model.name)).all()
    assert names == ["kept"]
    db.dispose()


def test_times_come_back_timezone_aware_utc(database_url: str) -> None:
    db = Database(database_url)
    db.upgrade()
    now = utcnow()
    with db.session() as s:
        s.add(Model(name="m", created_by="t", created_at=now))
    with db.session() as s:
        model = s.scalars(select(Model)).one()
    assert model.created_at.tzinfo is not None
    assert abs((model.created_at - now).total_seconds()) < 1e-3
    db.dispose()


def test_write_retries_a_race_then_gives_up_on_a_real_duplicate(database_url: str) -> None:
    db = Database(database_url)
    db.upgrade()
    calls = []

    def add_once(session):  # type: ignore[no-untyped-def]
        calls.append(1)
        if len(calls) == 1:
            session.add(Model(name="dup", created_by="t"))
            session.flush()
            # A concurrent writer committed the same name first:
            raise IntegrityError("INSERT", {}, Exception("UNIQUE constraint failed"))
        existing = session.scalar(select(Model).where(Model.name == "dup"))
        if existing is None:
            session.add(Model(name="dup", created_by="t"))
        return len(calls)

    assert db.write(add_once) == 2

    def always_duplicate(session):  # type: ignore[no-untyped-def]
        session.add(Model(name="dup", created_by="t"))
        session.flush()

    with pytest.raises(IntegrityError):
        db.write(always_duplicate, attempts=2)
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(Model)) == 1
    db.dispose()


def _count_up(url: str, worker: int, n: int) -> None:
    db = Database(url)

    def add(session):  # type: ignore[no-untyped-def]
        total = session.scalar(select(func.count()).select_from(Model))
        session.add(Model(name=f"m{total:05d}", created_by=f"w{worker}"))

    for _ in range(n):
        db.write(add, attempts=50)
    db.dispose()


def test_concurrent_read_then_write_transactions_lose_nothing(database_url: str) -> None:
    """Each writer reads the count then inserts name m<count>: any interleaving would make
    two writers pick the same name; serialised transactions plus retries never do."""
    db = Database(database_url)
    db.upgrade()
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_count_up, args=(database_url, w, 15)) for w in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    with db.session() as s:
        names = s.scalars(select(Model.name).order_by(Model.name)).all()
    assert names == [f"m{i:05d}" for i in range(45)]
    db.dispose()


def test_settings_precedence(tmp_path: Path) -> None:
    home = tmp_path / "h"
    home.mkdir()
    (home / "warden.toml").write_text('database_url = "sqlite:///from-file.db"\n')
    from_file = load_settings({"WARDEN_HOME": str(home)})
    assert from_file.database_url == "sqlite:///from-file.db"
    from_env = load_settings(
        {"WARDEN_HOME": str(home), "WARDEN_DATABASE_URL": "sqlite:///from-env.db"}
    )
    assert from_env.database_url == "sqlite:///from-env.db"
    assert load_settings({}, home=home).home == home
    assert load_settings({}).home == Path(".warden")


def test_settings_file_errors_are_precise(tmp_path: Path) -> None:
    (tmp_path / "warden.toml").write_text("colour = 'blue'\n")
    with pytest.raises(ConfigError, match=r"unknown setting.*colour"):
        load_settings({}, home=tmp_path)
    (tmp_path / "warden.toml").write_text("database_url = [1]\n")
    with pytest.raises(ConfigError, match="must be a string"):
        load_settings({}, home=tmp_path)
    (tmp_path / "warden.toml").write_text("database_url = \n")
    with pytest.raises(ConfigError, match="not a readable TOML"):
        load_settings({}, home=tmp_path)


def test_a_forked_child_uses_its_own_connections(tmp_path: Path) -> None:
    import os

    db = Database(sqlite_url(tmp_path / "f.db"))
    db.upgrade()
    with db.session() as s:  # the parent now holds a pooled connection
        s.add(Model(name="parent", created_by="t"))
    assert db.engine.pool.checkedin() == 1  # type: ignore[attr-defined]
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through its exit code
        code = 1
        try:
            if db.engine.pool.checkedin() != 0:  # type: ignore[attr-defined]
                os._exit(3)  # the parent's connection was inherited into the pool
            with db.session() as s:
                s.add(Model(name="child", created_by="t"))
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    with db.session() as s:
        assert sorted(s.scalars(select(Model.name))) == ["child", "parent"]
    db.dispose()


def test_read_does_not_wait_for_a_writer_and_sees_its_snapshot(tmp_path: Path) -> None:
    import sqlite3
    import time

    path = tmp_path / "r.db"
    db = Database(sqlite_url(path))
    db.upgrade()
    with db.session() as s:
        s.add(Model(name="before", created_by="t"))
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")  # another process holds the write lock, uncommitted
    writer.execute(
        "INSERT INTO models (name, description, intended_use, limitations, owner, created_at, "
        "created_by) VALUES ('during', '', '', '', '', '2026-01-01', 't')"
    )
    started = time.monotonic()
    with db.read() as s:
        names = list(s.scalars(select(Model.name)))
    with db.read_connection() as conn:
        count = conn.execute(select(func.count()).select_from(Model)).scalar_one()
    elapsed = time.monotonic() - started
    writer.execute("ROLLBACK")
    writer.close()
    assert names == ["before"]
    assert count == 1
    assert elapsed < 1.0  # BEGIN IMMEDIATE would have waited busy_timeout (60 s)
    db.dispose()


def test_a_write_inside_read_is_refused_and_the_connection_writes_again_after(
    tmp_path: Path,
) -> None:
    db = Database(sqlite_url(tmp_path / "q.db"))
    db.upgrade()
    with pytest.raises(StoreError, match="readonly"), db.read() as s:
        s.add(Model(name="sneaky", created_by="t"))
        s.flush()
    with db.session() as s:  # writers are unaffected
        s.add(Model(name="kept", created_by="t"))
    with db.read() as s:
        assert list(s.scalars(select(Model.name))) == ["kept"]
    with db.session() as s:
        s.add(Model(name="again", created_by="t"))
    with db.read() as s:
        assert sorted(s.scalars(select(Model.name))) == ["again", "kept"]
    db.dispose()


def test_read_works_on_every_backend(database_url: str) -> None:
    db = Database(database_url)
    db.upgrade()
    with db.session() as s:
        s.add(Model(name="m", created_by="t"))
    with db.read() as s:
        assert list(s.scalars(select(Model.name))) == ["m"]
    with db.read_connection() as conn:
        assert conn.execute(select(Model.name)).scalars().all() == ["m"]
    db.dispose()
