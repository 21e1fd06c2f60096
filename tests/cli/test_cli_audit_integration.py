"""The CLI writes registry, backup and key-rotation commands to the audit log; reads write
nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.registry._helpers import npy_bytes, report
from typer.testing import CliRunner

from warden.cli.app import app

runner = CliRunner()


@pytest.fixture
def cli_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, restore_warden_logger: None) -> Path:
    for var in ("WARDEN_HOME", "WARDEN_MASTER_KEY", "WARDEN_POLICY", "WARDEN_DATABASE_URL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.delenv("WARDEN_AUDIT_KEY", raising=False)
    monkeypatch.setenv("USER", "erin")
    return tmp_path / "home"


def _run(*args: str, code: int = 0) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == code, result.output
    return result.stdout


def test_cli_commands_are_audited_and_reads_leave_no_trace(cli_home: Path, tmp_path: Path) -> None:
    home = str(cli_home)
    _run("init", "--home", home)
    _run("registry", "models", "--home", home)
    assert not (cli_home / "audit.key").exists()  # reading writes nothing
    model = tmp_path / "w.npy"
    model.write_bytes(npy_bytes())
    card = tmp_path / "r.json"
    card.write_text(json.dumps(report(ML01="B")))
    _run("registry", "register", "fraud", str(model), "--create", "--home", home)
    _run("registry", "approve", "fraud", "1", "--home", home, code=1)
    _run("backup", "create", str(tmp_path / "b.tar"), "--home", home)
    _run("keys", "rotate", "--home", home)
    found = json.loads(_run("audit", "search", "--home", home, "--format", "json"))
    actions = [(r["action"], r["outcome"], r["actor"]) for r in found]
    assert actions == [
        ("registry.version.register", "ok", "erin"),
        ("registry.approve", "refused", "erin"),
        ("backup.create", "ok", actions[2][2]),
        ("keys.rotate", "ok", actions[3][2]),
    ]
    _run("audit", "verify", "--home", home)
