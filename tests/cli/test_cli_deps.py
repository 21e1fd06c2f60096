"""``warden deps update-db`` / ``warden deps audit``: formats, exit codes, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from jsonschema.protocols import Validator
from tests.cli._helpers import logging_app, one_line_error
from tests.supplychain.test_deps_osv import ADVISORIES, make_osv_zip
from typer.testing import CliRunner

from warden.cli.deps import deps_app

app = logging_app()
app.add_typer(deps_app, name="deps")  # as warden.cli.app registers it
runner = CliRunner()
pytestmark = pytest.mark.usefixtures("restore_warden_logger")


@pytest.fixture
def db(tmp_path: Path) -> Path:
    source = make_osv_zip(tmp_path / "all.zip", ADVISORIES)
    folder = tmp_path / "osv"
    result = runner.invoke(app, ["deps", "update-db", "--from", str(source), "--db", str(folder)])
    assert result.exit_code == 0, result.output
    assert "imported 8 advisories for 7 packages" in result.stderr
    assert "1 withdrawn, 1 for other ecosystems" in result.stderr
    return folder


@pytest.fixture
def requirements(tmp_path: Path) -> Path:
    path = tmp_path / "requirements.txt"
    path.write_text("foo_bar==1.1\nmultipkg==1.0.1\nsafe==1.0\nunpinned>=1\n")
    return path


def test_audit_table_and_exit_codes(db: Path, requirements: Path) -> None:
    base = ["deps", "audit", "-r", str(requirements), "--db", str(db)]
    result = runner.invoke(app, base)
    assert result.exit_code == 1, result.output
    assert "PYSEC-2099-1" in result.stdout and "PYSEC-2099-3" in result.stdout
    assert "2 known vulnerabilities in 3 packages" in result.stdout
    assert "unpinned is unpinned" in result.stderr
    assert "exit 1" in result.stderr
    assert runner.invoke(app, [*base, "--fail-on", "critical"]).exit_code == 1
    clean = requirements.with_name("clean.txt")
    clean.write_text("safe==1.0\nmultipkg==1.0.2\n")
    result = runner.invoke(app, ["deps", "audit", "-r", str(clean), "--db", str(db)])
    assert result.exit_code == 0, result.output
    assert "0 known vulnerabilities" in result.stdout


def test_fail_on_threshold_and_strict(db: Path, tmp_path: Path) -> None:
    low = tmp_path / "low.txt"
    low.write_text("multipkg==1.0.1\nloose\n")
    base = ["deps", "audit", "-r", str(low), "--db", str(db)]
    assert runner.invoke(app, [*base, "--fail-on", "medium"]).exit_code == 0
    assert runner.invoke(app, [*base, "--fail-on", "low"]).exit_code == 1
    assert runner.invoke(app, [*base, "--fail-on", "none"]).exit_code == 0
    strict = runner.invoke(app, [*base, "--fail-on", "none", "--strict"])
    assert strict.exit_code == 1
    assert "not audited (--strict)" in strict.stderr
    one_line_error(runner.invoke(app, [*base, "--fail-on", "bad"]), "unknown severity")


def test_audit_json_and_out_file(db: Path, requirements: Path, tmp_path: Path) -> None:
    out = tmp_path / "audit.json"
    args = ["deps", "audit", "-r", str(requirements), "--db", str(db), "-f", "json"]
    result = runner.invoke(app, [*args, "--out", str(out), "--fail-on", "none"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert json.loads(out.read_text("utf-8")) == doc
    assert {v["id"] for v in doc["vulnerabilities"]} == {"PYSEC-2099-1", "PYSEC-2099-3"}
    assert doc["warnings"][0]["kind"] == "unpinned"


def test_audit_sarif_validates(db: Path, requirements: Path, sarif_validator: Validator) -> None:
    args = ["deps", "audit", "-r", str(requirements), "--db", str(db), "-f", "sarif"]
    result = runner.invoke(app, args)
    assert result.exit_code == 1, result.output
    log = json.loads(result.stdout)
    assert [e.message for e in sarif_validator.iter_errors(log)] == []
    assert len(log["runs"][0]["tool"]["driver"]["rules"]) == 2


def test_audit_installed_environment_uses_warden_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    source = make_osv_zip(tmp_path / "all.zip", ADVISORIES)
    monkeypatch.setenv("WARDEN_HOME", str(home))
    assert runner.invoke(app, ["deps", "update-db", "--from", str(source)]).exit_code == 0
    assert (home / "osv" / "osv.sqlite3").is_file()
    result = runner.invoke(app, ["deps", "audit", "-f", "json"])
    assert result.exit_code == 0, result.output  # nothing installed here is in the fixture DB
    doc = json.loads(result.stdout)
    assert doc["source"] == "installed"
    assert doc["packages_audited"] > 10


def test_missing_database_and_bad_inputs_are_one_line_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("WARDEN_HOME", raising=False)
    result = runner.invoke(app, ["deps", "audit"])
    one_line_error(result, "warden deps update-db")
    assert ".warden/osv" in result.stderr
    junk = tmp_path / "junk.zip"
    junk.write_bytes(b"not a zip")
    one_line_error(runner.invoke(app, ["deps", "update-db", "--from", str(junk)]), "not a zip")
    other = make_osv_zip(tmp_path / "other.zip", {"a": {"x": 1}})
    result = runner.invoke(app, ["deps", "update-db", "--from", str(other), "--db", "d"])
    one_line_error(result, "is an OSV advisory")
