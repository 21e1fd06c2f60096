"""The audit log on a real database (SQLite, and PostgreSQL when configured): appending,
group commit, every kind of damage, forging, crash safety, concurrency, export, archive."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import delete, func, insert, select, update

from warden.audit import (
    AuditEvent,
    AuditKey,
    AuditLog,
    Damage,
    NullSink,
    archive_before,
    check_export_line,
    export_jsonl,
    load_audit_key,
    load_signing_key,
    model_resource,
    read_checkpoint_file,
    search,
    verify_archive,
    verify_log,
)
from warden.audit._tables import CHECKPOINTS, HEAD, RECORDS
from warden.audit.chain import canonical_text, hmac_sha256
from warden.audit.events import AuditSink
from warden.errors import ConfigError, TamperError
from warden.store.db import Database

WORKER = Path(__file__).with_name("_append_worker.py")


@dataclass
class Env:
    url: str
    home: Path
    db: Database
    key: AuditKey
    signer: Ed25519PrivateKey

    def log(self, **kwargs: object) -> AuditLog:
        return AuditLog(self.db, self.key, self.signer, **kwargs)  # type: ignore[arg-type]

    def verify(self, **kwargs: object) -> object:
        return verify_log(self.db, self.key, self.signer.public_key(), **kwargs)  # type: ignore[arg-type]


@pytest.fixture
def env(database_url: str, tmp_path: Path) -> Iterator[Env]:
    db = Database(database_url)
    db.upgrade()
    home = tmp_path / "home"
    yield Env(
        database_url,
        home,
        db,
        load_audit_key(home, None, create=True),
        load_signing_key(home, create=True),
    )
    db.dispose()


def _event(i: int) -> AuditEvent:
    return AuditEvent(
        "gateway.predict" if i % 2 else "registry.approve",
        f"user-{i:03d}",
        resource=model_resource("iris", 1 + i % 3),
        source="127.0.0.1",
        latency_ms=1.5,
        verdicts={"size": "allow"},
        details={"i": i},
    )


def _fill(env: Env, n: int = 30, **kwargs: object) -> AuditLog:
    log = env.log(checkpoint_every=10, external_dir=env.home / "external", **kwargs)
    for i in range(1, n + 1):
        log.append(_event(i))
    log.close()
    return log


def _sql(env: Env, statement: object) -> None:
    with env.db.engine.begin() as conn:
        conn.execute(statement)  # type: ignore[call-overload]


def _row(env: Env, seq: int) -> dict[str, object]:
    with env.db.engine.connect() as conn:
        return dict(conn.execute(select(RECORDS).where(RECORDS.c.seq == seq)).one()._mapping)


def _set_head(env: Env, seq: int) -> None:
    digest = _row(env, seq)["hash"]
    _sql(env, update(HEAD).where(HEAD.c.id == 1).values(seq=seq, hash=digest))


def test_appended_log_verifies_and_receipts_match(env: Env) -> None:
    log = env.log(checkpoint_every=5)
    receipts = [log.append(_event(i)) for i in range(12)]
    log.close()
    assert [r.seq for r in receipts] == list(range(1, 13))
    assert receipts[-1].hash == bytes(_row(env, 12)["hash"]).hex()  # type: ignore[arg-type]
    report = env.verify()
    assert report.ok, report.problems  # type: ignore[attr-defined]
    assert report.records == 12 and report.checkpoints == 3  # type: ignore[attr-defined]
    assert report.head == receipts[-1].hash  # type: ignore[attr-defined]
    assert isinstance(log, AuditSink) and isinstance(NullSink(), AuditSink)


def test_async_append_and_sink_record(env: Env) -> None:
    async def main(log: AuditLog) -> list[int]:
        receipts = await asyncio.gather(*(log.append_async(_event(i)) for i in range(20)))
        return sorted(r.seq for r in receipts)

    with env.log() as log:
        assert asyncio.run(main(log)) == list(range(1, 21))
        log.record(_event(99))
    assert env.verify().ok  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("damage", "expected", "seq"),
    [
        ("edit", Damage.MODIFIED, 12),
        ("edit-hash", Damage.MODIFIED, 12),
        ("edit-at-column", Damage.MODIFIED, 12),
        ("edit-prev-column", Damage.MODIFIED, 12),
        ("delete", Damage.DELETED, 12),
        ("delete-first", Damage.DELETED, 1),
        ("insert-sha256", Damage.INSERTED, 31),
        ("insert-wrong-key", Damage.INSERTED, 31),
        ("swap", Damage.REORDERED, 12),
        ("truncate", Damage.TRUNCATED, 21),
        ("truncate-head-only", Damage.TRUNCATED, 31),
        ("beyond-head", Damage.INSERTED, 31),
    ],
)
def test_each_kind_of_damage_is_detected_and_named(
    env: Env, damage: str, expected: Damage, seq: int
) -> None:
    _fill(env)
    assert env.verify().ok  # type: ignore[attr-defined]
    if damage == "edit":
        _sql(
            env,
            update(RECORDS)
            .where(RECORDS.c.seq == 12)
            .values(canonical=func.replace(RECORDS.c.canonical, "user-012", "user-666")),
        )
    elif damage == "edit-hash":
        _sql(env, update(RECORDS).where(RECORDS.c.seq == 12).values(hash=bytes(32)))
    elif damage == "edit-at-column":
        _sql(env, update(RECORDS).where(RECORDS.c.seq == 12).values(at_us=RECORDS.c.at_us + 1))
    elif damage == "edit-prev-column":
        _sql(env, update(RECORDS).where(RECORDS.c.seq == 12).values(prev_hash=bytes(32)))
    elif damage in ("delete", "delete-first"):
        _sql(env, delete(RECORDS).where(RECORDS.c.seq == seq))
    elif damage.startswith("insert"):
        # a forger appends a plausible record and moves the head; without the audit key
        # the best they can do is plain SHA-256 or an HMAC with a key of their own
        prev = _row(env, 30)["hash"]
        text_ = canonical_text(int(_row(env, 30)["at_us"]) + 1, 31, _event(31).tail)  # type: ignore[call-overload]
        body = prev + text_.encode()  # type: ignore[operator]
        digest = (
            hashlib.sha256(body).digest()
            if damage == "insert-sha256"
            else hmac_sha256(b"\x01" * 32)(body)
        )
        _sql(
            env,
            insert(RECORDS).values(
                seq=31, at_us=int(text_[:16]), canonical=text_, prev_hash=prev, hash=digest
            ),
        )
        _set_head(env, 31)
    elif damage == "swap":
        _sql(env, update(RECORDS).where(RECORDS.c.seq == 12).values(seq=-1))
        _sql(env, update(RECORDS).where(RECORDS.c.seq == 15).values(seq=12))
        _sql(env, update(RECORDS).where(RECORDS.c.seq == -1).values(seq=15))
    elif damage == "truncate":
        _sql(env, delete(RECORDS).where(RECORDS.c.seq > 20))
        _set_head(env, 20)
    elif damage == "truncate-head-only":
        with env.log(checkpoint_every=1000) as log:  # records 31..35, no checkpoint over them
            for i in range(31, 36):
                log.append(_event(i), durable=False)
            log.flush()
            _sql(env, delete(RECORDS).where(RECORDS.c.seq > 30))
    elif damage == "beyond-head":
        row = _row(env, 30)
        _sql(env, insert(RECORDS).values({**row, "seq": 31}))
    report = env.verify()
    assert not report.ok  # type: ignore[attr-defined]
    first = report.problem  # type: ignore[attr-defined]
    assert (first.kind, first.seq) == (expected, seq), report.problems  # type: ignore[attr-defined]
    assert str(seq) in first.message


def test_wholesale_rewrite_without_the_key_fails_even_with_sha256(env: Env) -> None:
    _fill(env)
    with env.db.engine.connect() as conn:
        rows = conn.execute(select(RECORDS).order_by(RECORDS.c.seq)).all()
    prev = bytes(32)
    for row in rows:  # recompute the whole chain with plain SHA-256, a consistent forgery
        canonical = row.canonical.replace("user-", "evil-")
        digest = hashlib.sha256(prev + canonical.encode()).digest()
        _sql(
            env,
            update(RECORDS)
            .where(RECORDS.c.seq == row.seq)
            .values(canonical=canonical, prev_hash=prev, hash=digest),
        )
        prev = digest
    _set_head(env, 30)
    report = env.verify()
    assert not report.ok and report.problem.seq == 1  # type: ignore[attr-defined]
    assert report.problem.kind == Damage.MODIFIED  # type: ignore[attr-defined]


def test_the_wrong_audit_key_does_not_verify(env: Env) -> None:
    _fill(env, 5)
    report = verify_log(env.db, AuditKey(b"\x02" * 32), env.signer.public_key())
    assert not report.ok
    assert {p.kind for p in report.problems} >= {Damage.BAD_CHECKPOINT}


def test_truncation_with_checkpoints_removed_is_caught_by_the_external_copy(env: Env) -> None:
    _fill(env)
    external = read_checkpoint_file(env.home / "external" / "latest.json", env.signer.public_key())
    assert external.count == 30
    _sql(env, delete(RECORDS).where(RECORDS.c.seq > 20))
    _sql(env, delete(CHECKPOINTS).where(CHECKPOINTS.c.count > 20))
    _set_head(env, 20)
    assert env.verify().ok  # type: ignore[attr-defined] # the database alone is consistent
    report = env.verify(external=external)
    assert (report.problem.kind, report.problem.seq) == (Damage.TRUNCATED, 21)  # type: ignore[attr-defined]


def test_a_forged_checkpoint_signature_is_named(env: Env) -> None:
    _fill(env)
    _sql(env, update(CHECKPOINTS).where(CHECKPOINTS.c.count == 20).values(signature=b"\0" * 64))
    report = env.verify()
    assert (report.problem.kind, report.problem.seq) == (Damage.BAD_CHECKPOINT, 20)  # type: ignore[attr-defined]


def test_time_regression_by_a_key_holder_is_a_finding_and_the_writer_clamps(env: Env) -> None:
    clock = iter([2_000_000, 1_000_000, 3_000_000, 4_000_000]).__next__
    with env.log(clock=clock) as log:
        log.append(_event(1))  # the first call creates the head at 2 s
        log.append(_event(2))  # the clock went back: clamped to 2 s, noted
    rows = [_row(env, s) for s in (1, 2)]
    assert rows[0]["at_us"] == rows[1]["at_us"] == 2_000_000
    assert '"_clock":{"clamped_to_us":2000000,"wall_us":1000000}' in str(rows[1]["canonical"])
    assert env.verify().ok  # type: ignore[attr-defined]
    # a record with an earlier time but a valid HMAC (someone holding the key)
    text_ = canonical_text(5, 3, _event(3).tail)
    prev = rows[1]["hash"]
    digest = hmac_sha256(env.key.key)(prev + text_.encode())  # type: ignore[operator]
    _sql(env, insert(RECORDS).values(seq=3, at_us=5, canonical=text_, prev_hash=prev, hash=digest))
    _set_head(env, 3)
    report = env.verify()
    assert (report.problem.kind, report.problem.seq) == (Damage.TIME_REGRESSION, 3)  # type: ignore[attr-defined]


def test_non_durable_append_returns_before_commit_and_close_flushes(env: Env) -> None:
    log = env.log(checkpoint_every=1000)
    log.append(_event(0))  # creates the head row
    blocker = Database(env.url)
    with blocker.session() as session:  # hold the chain head: nobody can commit
        session.execute(select(HEAD).with_for_update()).all()
        pending = log.append(_event(1), durable=False)
        durable_done = threading.Event()
        t = threading.Thread(target=lambda: (log.append(_event(2)), durable_done.set()))
        t.start()
        time.sleep(0.3)
        assert not pending.done() and not durable_done.is_set()
    t.join(30)
    assert pending.result(30).seq in (2, 3) and durable_done.is_set()
    blocker.dispose()
    futures = [log.append(_event(i), durable=False) for i in range(3, 103)]
    log.close()
    assert all(f.done() for f in futures)
    with env.db.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(RECORDS)).scalar() == 103
        assert conn.execute(select(func.max(CHECKPOINTS.c.count))).scalar() == 103
    with pytest.raises(Exception, match="closed"):
        log.append(_event(0))


def test_export_lines_verify_on_their_own(env: Env) -> None:
    _fill(env, 8)
    buffer = io.StringIO()
    assert export_jsonl(env.db, buffer) == 8
    lines = buffer.getvalue().splitlines()
    records = [check_export_line(line, env.key) for line in lines]
    assert [r.seq for r in records] == list(range(1, 9))
    doc = json.loads(lines[3])
    doc["actor"] = "someone-else"
    with pytest.raises(TamperError, match="differs from the authenticated"):
        check_export_line(json.dumps(doc), env.key)
    doc = json.loads(lines[3])
    doc["canonical"] = doc["canonical"].replace("user-004", "user-005")
    with pytest.raises(TamperError, match="does not verify"):
        check_export_line(json.dumps(doc), env.key)
    with pytest.raises(TamperError, match="does not verify"):
        check_export_line(lines[0], AuditKey(b"\x03" * 32))


def test_search_by_actor_action_model_and_time(env: Env) -> None:
    _fill(env, 12)
    assert [r.seq for r in search(env.db, actor="user-007")] == [7]
    assert {r.action for r in search(env.db, action="registry.*")} == {"registry.approve"}
    iris2 = search(env.db, model="iris")
    assert len(iris2) == 12
    assert all(r.resource.startswith("model:iris@") for r in iris2)
    assert search(env.db, model="iri") == []
    assert [r.seq for r in search(env.db, action="gateway.predict", limit=2)] == [1, 3]
    assert search(env.db, since=datetime(2100, 1, 1, tzinfo=UTC)) == []


def test_archive_moves_old_records_and_the_live_chain_still_verifies(
    env: Env, tmp_path: Path
) -> None:
    times = iter(range(1_000_000, 100_000_000, 1_000_000))
    log = env.log(checkpoint_every=7, clock=lambda: next(times))
    for i in range(20):
        log.append(_event(i))
    cutoff = datetime.fromtimestamp(11.5, UTC)  # record i is written at i seconds
    result = archive_before(env.db, env.key, env.signer, cutoff, tmp_path / "a1.jsonl")
    assert (result.records, result.first_seq, result.last_seq) == (11, 1, 11)
    assert verify_archive(tmp_path / "a1.jsonl", env.key, env.signer.public_key()).records == 11
    report = env.verify()
    assert report.ok, report.problems  # type: ignore[attr-defined]
    assert (report.first_seq, report.records, report.anchors) == (12, 9, 1)  # type: ignore[attr-defined]
    for i in range(20, 25):
        log.append(_event(i))
    log.close()
    later = datetime.fromtimestamp(18.5, UTC)
    again = archive_before(env.db, env.key, env.signer, later, tmp_path / "a2.jsonl")
    assert (again.first_seq, again.last_seq) == (12, 18)
    assert env.verify().ok  # type: ignore[attr-defined]
    # the archive is tamper-evident on its own
    path = tmp_path / "a1.jsonl"
    path.write_text(path.read_text().replace("user-005", "user-500"))
    with pytest.raises(TamperError, match="SHA-256"):
        verify_archive(path, env.key, env.signer.public_key())
    # removing live records right after the anchor is still caught
    _sql(env, delete(RECORDS).where(RECORDS.c.seq == 20))
    assert env.verify().problem.kind == Damage.DELETED, env.verify().problems  # type: ignore[attr-defined]
    # a damaged log is not archived
    with pytest.raises(TamperError, match="not archived"):
        archive_before(env.db, env.key, env.signer, later, tmp_path / "a3.jsonl")


def test_parallel_verification_agrees_with_one_process(env: Env) -> None:
    with env.log(checkpoint_every=500) as log:
        for i in range(1200):
            log.append(_event(i), durable=False)
    one, two = env.verify(workers=1), env.verify(workers=3)
    assert one.ok and two.ok and one.records == two.records == 1200  # type: ignore[attr-defined]
    assert one.head == two.head  # type: ignore[attr-defined]
    _sql(env, delete(RECORDS).where(RECORDS.c.seq == 900))
    for workers in (1, 3):
        problem = env.verify(workers=workers).problem  # type: ignore[attr-defined]
        assert (problem.kind, problem.seq) == (Damage.DELETED, 900)


def _spawn(env: Env, threads: int, n: int, tag: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(WORKER), env.url, str(env.home), str(threads), str(n), tag],
        stdout=subprocess.PIPE,
        text=True,
    )


def test_several_processes_append_to_one_chain_without_gaps(env: Env) -> None:
    procs = [_spawn(env, 3, 40, f"p{k}") for k in range(4)]
    outputs = [p.communicate(timeout=120)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs)
    seqs = sorted(int(line.split()[0]) for out in outputs for line in out.splitlines())
    assert seqs == list(range(1, 481))
    report = env.verify()
    assert report.ok and report.records == 480, report.problems  # type: ignore[attr-defined]


def test_durable_receipts_survive_sigkill(env: Env) -> None:
    proc = _spawn(env, 8, 0, "crash")
    assert proc.stdout is not None
    seen: list[tuple[int, str]] = []
    for line in proc.stdout:
        seq, digest = line.split()
        seen.append((int(seq), digest))
        if len(seen) >= 400:
            break
    os.kill(proc.pid, signal.SIGKILL)
    rest, _ = proc.communicate(timeout=60)
    seen += [(int(a), b) for a, b in (line.split() for line in rest.splitlines() if " " in line)]
    assert proc.returncode == -signal.SIGKILL
    reopened = Database(env.url)
    with reopened.engine.connect() as conn:
        stored = {
            s: bytes(h).hex()
            for s, h in conn.execute(
                select(RECORDS.c.seq, RECORDS.c.hash).where(RECORDS.c.seq.in_([s for s, _ in seen]))
            )
        }
    assert all(stored.get(s) == h for s, h in seen), "a durable receipt was lost"
    report = verify_log(reopened, env.key, env.signer.public_key())
    assert report.ok and report.records >= len(seen), report.problems
    reopened.dispose()


def test_no_update_or_delete_path_for_audit_records_in_the_code() -> None:
    src = Path(__file__).parents[2] / "src" / "warden"
    found: list[tuple[str, str, str]] = []
    for path in src.rglob("*.py"):
        code = path.read_text(encoding="utf-8")
        assert not re.search(r"(?i)\b(update\s+audit_|delete\s+from\s+audit_)", code), path
        for verb, target in re.findall(r"(?<![.\w])(update|delete)\(\s*([A-Za-z_.]+)", code):
            if "audit" in str(path) or "Audit" in target or target in {"RECORDS", "HEAD"}:
                found.append((path.name, verb, target))
        assert not re.search(r"session\.delete\(", code) or "audit" not in str(path), path
    allowed = {
        ("writer.py", "update", "HEAD"),
        ("archive.py", "update", "HEAD"),
        ("archive.py", "delete", "RECORDS"),
    }
    assert set(found) <= allowed, found
    assert found.count(("archive.py", "delete", "RECORDS")) == 1


def test_the_audit_key_file_is_private_and_env_wins(tmp_path: Path) -> None:
    key = load_audit_key(tmp_path, None, create=True)
    path = tmp_path / "audit.key"
    assert path.stat().st_mode & 0o777 == 0o600
    assert load_audit_key(tmp_path, None, create=False) == key
    other = AuditKey.generate()
    assert load_audit_key(tmp_path, other.to_text(), create=False) == other
    path.chmod(0o644)
    with pytest.raises(Exception, match="chmod 600"):
        load_audit_key(tmp_path, None, create=False)
    with pytest.raises(Exception, match="32 bytes"):
        AuditKey.from_text("YWJj")
    assert (tmp_path / "audit-signing.pem").exists() is False
    load_signing_key(tmp_path, create=True)
    assert (tmp_path / "audit-signing.pem").stat().st_mode & 0o777 == 0o600
    assert "key" not in repr(key).replace("AuditKey", "")


def test_a_different_key_is_refused_before_it_extends_the_chain(env: Env) -> None:
    _fill(env, 3)
    other = AuditLog(env.db, AuditKey.generate(), env.signer)
    with pytest.raises(ConfigError, match="did not write this audit log"):
        other.append(_event(99))
    other.close()
    assert env.verify().ok  # type: ignore[attr-defined]
    again = env.log()
    assert again.append(_event(4)).seq == 4  # the right key still appends
    again.close()
    assert env.verify().ok  # type: ignore[attr-defined]
