"""``warden scan`` from the outside: exit codes, formats, output files, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.cli._helpers import one_line_error
from typer.testing import CliRunner

from warden.cli.app import app

runner = CliRunner()

EVIL = b"\x80\x02cos\nsystem\nX\x04\x00\x00\x00trueq\x85R."  # never loaded


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    (tmp_path / "clean.txt").write_text("weights are elsewhere\n")
    (tmp_path / "model.bin").write_bytes(EVIL)
    return tmp_path


def test_clean_file_exits_0(tree: Path) -> None:
    result = runner.invoke(app, ["scan", str(tree / "clean.txt")])
    assert result.exit_code == 0, result.output
    assert "No findings." in result.stdout


def test_findings_exit_1_and_name_the_file(tree: Path) -> None:
    result = runner.invoke(app, ["scan", str(tree)])
    assert result.exit_code == 1, result.output
    assert "scan.pickle.dangerou" in result.stdout  # the id column folds on narrow terminals
    assert "critical" in result.stdout
    assert "1 critical" in result.stderr


def test_fail_on_threshold_and_none(tree: Path) -> None:
    assert runner.invoke(app, ["scan", str(tree), "--fail-on", "none"]).exit_code == 0
    assert runner.invoke(app, ["scan", str(tree), "--fail-on", "critical"]).exit_code == 1


def test_json_to_stdout(tree: Path) -> None:
    result = runner.invoke(app, ["scan", str(tree), "-f", "json"])
    doc = json.loads(result.stdout)
    assert doc["format"] == "warden-scan/1"
    assert doc["summary"]["by_severity"]["critical"] == 1
    assert {f["path"].rsplit("/", 1)[-1] for f in doc["files"]} == {"clean.txt", "model.bin"}


def test_sarif_to_file(tree: Path, tmp_path: Path, sarif_validator: object) -> None:
    out = tmp_path / "reports" / "scan.sarif"
    result = runner.invoke(app, ["scan", str(tree / "model.bin"), "-f", "sarif", "-o", str(out)])
    assert result.exit_code == 1
    log = json.loads(out.read_text())
    assert list(sarif_validator.iter_errors(log)) == []  # type: ignore[attr-defined]
    assert log["runs"][0]["results"][0]["ruleId"] == "scan.pickle.dangerous-global"


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["scan", "/no/such/path"], "no such file"),
        (["scan", ".", "-f", "xml"], "--format"),
        (["scan", ".", "--fail-on", "bogus"], "unknown severity"),
    ],
)
def test_usage_errors_are_one_line(args: list[str], needle: str) -> None:
    one_line_error(runner.invoke(app, args), needle)
