"""``warden audit ...`` from the outside: exit codes, output, one-line errors."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
import typer
from sqlalchemy import delete
from tests.cli._helpers import one_line_error
from typer.testing import CliRunner

from warden.audit import (
    AuditEvent,
    AuditLog,
    check_export_line,
    load_audit_key,
    load_signing_key,
    model_resource,
)
from warden.audit._tables import RECORDS
from warden.cli._store import open_store
from warden.cli.audit import audit_app

app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
app.add_typer(audit_app, name="audit")
runner = CliRunner()


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("WARDEN_HOME", "WARDEN_DATABASE_URL", "WARDEN_MASTER_KEY", "WARDEN_AUDIT_KEY"):
        monkeypatch.delenv(name, raising=False)
    root = tmp_path / "home"
    with open_store(root, create=True) as store:
        log = AuditLog(
            store.db,
            load_audit_key(root, None, create=True),
            load_signing_key(root, create=True),
            checkpoint_every=5,
            external_dir=root / "external",
        )
        for i in range(12):
            log.append(
                AuditEvent(
                    "registry.approve" if i % 3 == 0 else "gateway.predict",
                    "alice" if i % 2 else "bob",
                    resource=model_resource("iris" if i < 6 else "wine", 1),
                )
            )
        log.close()
    return root


def _run(*args: str) -> object:
    return runner.invoke(app, ["audit", *args])


def test_verify_intact_then_damaged(home: Path) -> None:
    ok = _run("verify", "--home", str(home))
    assert ok.exit_code == 0, ok.output  # type: ignore[attr-defined]
    assert "intact: 12 record(s)" in ok.stdout  # type: ignore[attr-defined]
    with open_store(home, create=False) as store, store.db.engine.begin() as conn:
        conn.execute(delete(RECORDS).where(RECORDS.c.seq == 7))
    bad = _run("verify", "--home", str(home))
    assert bad.exit_code == 1, bad.output  # type: ignore[attr-defined]
    assert "DAMAGED: deleted at record 7" in bad.stdout  # type: ignore[attr-defined]
    as_json = _run("verify", "--home", str(home), "--format", "json")
    doc = json.loads(as_json.stdout)  # type: ignore[attr-defined]
    assert doc["ok"] is False and doc["problems"][0] == {
        "kind": "deleted",
        "seq": 7,
        "message": doc["problems"][0]["message"],
    }


def test_verify_from_an_external_checkpoint_and_a_public_key_file(
    home: Path, tmp_path: Path
) -> None:
    pem = tmp_path / "audit.pub"
    assert _run("public-key", "--home", str(home), "--out", str(pem)).exit_code == 0  # type: ignore[attr-defined]
    printed = _run("public-key", "--home", str(home))
    assert printed.stdout == pem.read_text()  # type: ignore[attr-defined]
    assert "PRIVATE" not in pem.read_text()
    latest = home / "external" / "latest.json"
    result = _run(
        "verify", "--home", str(home), "--from-checkpoint", str(latest), "--public-key", str(pem)
    )
    assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
    with open_store(home, create=False) as store, store.db.engine.begin() as conn:
        conn.execute(delete(RECORDS).where(RECORDS.c.seq > 8))
    result = _run("verify", "--home", str(home), "--from-checkpoint", str(latest))
    assert result.exit_code == 1 and "truncated at record 9" in result.stdout  # type: ignore[attr-defined]


def test_export_search_checkpoint(home: Path, tmp_path: Path) -> None:
    out = tmp_path / "audit.jsonl"
    result = _run("export", "--home", str(home), "--format", "jsonl", "--out", str(out))
    assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
    key = load_audit_key(home, None, create=False)
    lines = out.read_text().splitlines()
    assert [check_export_line(line, key).seq for line in lines] == list(range(1, 13))
    stdout = _run("export", "--home", str(home), "--since", "2000-01-01")
    assert len(stdout.stdout.splitlines()) == 12  # type: ignore[attr-defined]
    found = _run(
        "search", "--home", str(home), "--actor", "alice", "--model", "iris", "--format", "json"
    )
    docs = json.loads(found.stdout)  # type: ignore[attr-defined]
    assert [d["seq"] for d in docs] == [2, 4, 6]
    table = _run("search", "--home", str(home), "--action", "registry.*")
    assert table.exit_code == 0 and "4 record(s)" in table.stderr  # type: ignore[attr-defined]
    assert "registry" in table.stdout and "gateway" not in table.stdout  # type: ignore[attr-defined]
    made = _run("checkpoint", "--home", str(home))
    assert made.exit_code == 0 and "checkpoint: 12 record(s)" in made.stdout  # type: ignore[attr-defined]


def test_archive_then_verify(home: Path, tmp_path: Path) -> None:
    future = datetime(2200, 1, 1, tzinfo=UTC).isoformat()
    target = tmp_path / "old.jsonl"
    result = _run("archive", "--home", str(home), "--before", future, str(target))
    assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
    assert "archived records 1..12 (12)" in result.stdout  # type: ignore[attr-defined]
    ok = _run("verify", "--home", str(home))
    assert ok.exit_code == 0 and "0 record(s)" in ok.stdout  # type: ignore[attr-defined]
    again = _run("archive", "--home", str(home), "--before", future, str(tmp_path / "x"))
    assert "nothing to archive" in again.stdout  # type: ignore[attr-defined]


def test_usage_errors_are_one_line(home: Path, tmp_path: Path) -> None:
    one_line_error(_run("search", "--home", str(home), "--since", "yesterday"), "ISO 8601")
    one_line_error(_run("verify", "--home", str(home), "--format", "xml"), "table or json")
    (home / "audit.key").chmod(0o644)
    one_line_error(_run("verify", "--home", str(home)), "chmod 600")
    one_line_error(
        _run("verify", "--home", str(home), "--from-checkpoint", str(tmp_path / "none.json")),
        "chmod 600",
    )
