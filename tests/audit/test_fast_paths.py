"""The audit log's fast paths give the same answers as the slow ones: event encoding, the
writer's own connection (retry, failure, many threads) and the choice of verify workers."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from types import MappingProxyType

import pytest
from sqlalchemy import select, text

from warden.audit import AuditEvent, AuditLog, load_audit_key, load_signing_key, verify_log
from warden.audit import verify as verify_module
from warden.audit._tables import RECORDS
from warden.audit.chain import canonical_json, check_text_field
from warden.errors import ConfigError, StoreError
from warden.store.db import Database


def _json(value: object) -> str:
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False
    )


@pytest.mark.parametrize(
    "value",
    [{}, {"b": 1, "a": [1.5, None, True]}, {"é": "ü\n", "x": {"z": 1, "y": 2}}, {"n": 10**30}],
)
def test_canonical_json_equals_json_dumps_with_the_canonical_options(
    value: dict[str, object],
) -> None:
    assert canonical_json(value) == _json(value)


def test_canonical_json_still_refuses_nan() -> None:
    with pytest.raises(ValueError, match="not JSON compliant"):
        canonical_json({"x": float("nan")})


@pytest.mark.parametrize("value", ["plain", "", "café", "\u0085next", "\u00a0nbsp", "日本"])
def test_text_fields_without_ascii_controls_pass_unchanged(value: str) -> None:
    assert check_text_field("actor", value) == value
    event = AuditEvent("a.b", "u", resource=value)
    assert event.tail.split("\x1f")[2] == value


@pytest.mark.parametrize(
    ("value", "needle"),
    [("a\x7fb", "control character"), ("é\x00", "control character"), ("\udfff", "Unicode")],
)
def test_bad_text_fields_are_refused_whatever_else_they_hold(value: str, needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        AuditEvent("a.b", "u", source=value)


def test_a_field_that_is_not_a_string_is_named() -> None:
    with pytest.raises(ConfigError, match="audit field outcome: expected a string, found int"):
        AuditEvent("a.b", "u", outcome=3)  # type: ignore[arg-type]


@pytest.mark.parametrize("value", [None, ["x"], "text"])
def test_verdicts_must_be_a_mapping(value: object) -> None:
    with pytest.raises(ConfigError, match="plain JSON objects"):
        AuditEvent("a.b", "u", verdicts=value)  # type: ignore[arg-type]


def test_event_tail_is_the_same_for_a_dict_and_a_read_only_mapping() -> None:
    details = {"b": 2, "a": 1}
    plain = AuditEvent("a.b", "u", details=details)
    frozen = AuditEvent("a.b", "u", details=MappingProxyType(details))
    assert plain.tail == frozen.tail
    assert plain.tail.endswith('\x1f{}\x1f{"a":1,"b":2}')


# --- the writer -------------------------------------------------------------------------------


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = Database(database_url)
    database.upgrade()
    yield database
    database.dispose()


def _log(db: Database, home: Path, **kwargs: object) -> AuditLog:
    return AuditLog(
        db,
        load_audit_key(home, None, create=True),
        load_signing_key(home, create=True),
        **kwargs,  # type: ignore[arg-type]
    )


def _verify(db: Database, home: Path) -> object:
    return verify_log(
        db,
        load_audit_key(home, None, create=False),
        load_signing_key(home, create=False).public_key(),
    )


def test_many_threads_get_distinct_consecutive_receipts(db: Database, tmp_path: Path) -> None:
    receipts: list[tuple[int, str]] = []
    lock = threading.Lock()
    with _log(db, tmp_path, checkpoint_every=64) as log:

        def work(t: int) -> None:
            for i in range(25):
                r = log.append(AuditEvent("test.append", f"t{t}", details={"i": i}))
                with lock:
                    receipts.append((r.seq, r.hash))

        threads = [threading.Thread(target=work, args=(t,)) for t in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        log.flush()
    assert sorted(s for s, _ in receipts) == list(range(1, 401))
    with db.engine.connect() as conn:
        stored = {s: bytes(h).hex() for s, h in conn.execute(select(RECORDS.c.seq, RECORDS.c.hash))}
    assert all(stored[s] == h for s, h in receipts)
    report = _verify(db, tmp_path)
    assert report.ok and report.records == 400, report.problems  # type: ignore[attr-defined]


def test_a_dropped_connection_is_replaced_and_the_append_succeeds(
    db: Database, tmp_path: Path
) -> None:
    with _log(db, tmp_path) as log:
        assert log.append(AuditEvent("a.b", "u")).seq == 1
        held = log._conn  # the writer thread's connection, idle between batches
        assert held is not None and held.connection.dbapi_connection is not None
        held.connection.dbapi_connection.close()  # as a server restart or a network cut would
        assert log.append(AuditEvent("a.b", "u")).seq == 2
        assert log._conn is not held
    assert _verify(db, tmp_path).ok  # type: ignore[attr-defined]


def test_a_failed_batch_reaches_every_caller_and_the_writer_goes_on(
    db: Database, tmp_path: Path
) -> None:
    with _log(db, tmp_path) as log:
        log.append(AuditEvent("a.b", "u"))
        with db.engine.begin() as conn:
            conn.execute(text("ALTER TABLE audit_records RENAME TO audit_records_away"))
        pending = [log.append(AuditEvent("a.b", f"u{i}"), durable=False) for i in range(5)]
        with pytest.raises(StoreError, match="audit_records"):
            log.append(AuditEvent("a.b", "u"))
        for future in pending:
            with pytest.raises(StoreError, match="audit_records"):
                future.result(30)
        with db.engine.begin() as conn:
            conn.execute(text("ALTER TABLE audit_records_away RENAME TO audit_records"))
        assert log.append(AuditEvent("a.b", "u")).seq == 2  # nothing half-written
    assert _verify(db, tmp_path).ok  # type: ignore[attr-defined]


def test_flush_waits_for_non_durable_appends(db: Database, tmp_path: Path) -> None:
    with _log(db, tmp_path) as log:
        futures = [log.append(AuditEvent("a.b", "u"), durable=False) for _ in range(50)]
        log.flush()
        assert all(f.done() for f in futures)
        assert [f.result().seq for f in futures] == list(range(1, 51))


def test_a_negative_delay_is_refused(db: Database, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="max_delay_s must be >= 0"):
        _log(db, tmp_path, max_delay_s=-1)


# --- verify workers ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("records", "cpus", "load", "expected"),
    [
        (1_000, 16, 0.0, 1),  # small: one process
        (10**6, 2, 0.1, 2),  # idle cores: one each
        (10**6, 2, 2.5, 1),  # busy cores: extra processes only contend
        (10**6, 4, 1.0, 3),
        (10**6, 64, 0.0, 8),  # at most 8
    ],
)
def test_verify_uses_idle_cores_only(
    monkeypatch: pytest.MonkeyPatch, records: int, cpus: int, load: float, expected: int
) -> None:
    monkeypatch.setattr(verify_module.os, "sched_getaffinity", lambda _pid: set(range(cpus)))
    monkeypatch.setattr(verify_module.os, "getloadavg", lambda: (load, load, load))
    assert verify_module.auto_workers(records) == expected
