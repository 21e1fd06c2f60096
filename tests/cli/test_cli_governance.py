"""``warden registry card | compliance | sbom`` through the real ``warden`` app."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.cli._helpers import one_line_error
from tests.registry._helpers import npy_bytes, report
from typer.testing import CliRunner

from warden.cli.app import app
from warden.supplychain.sbom import validate_sbom

runner = CliRunner()


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, restore_warden_logger: None) -> Path:
    for var in ("WARDEN_HOME", "WARDEN_MASTER_KEY", "WARDEN_POLICY", "WARDEN_DATABASE_URL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("USER", "dana")
    home = tmp_path / "home"
    model = tmp_path / "w.npy"
    model.write_bytes(npy_bytes())
    scorecard = tmp_path / "r.json"
    scorecard.write_text(json.dumps(report(ML01="B")))
    for args in (
        ["create", "fraud", "--intended-use", "Rank <b>transactions</b>"],
        ["register", "fraud", str(model)],
        ["scan", "fraud", "1"],
        ["attach-assessment", "fraud", "1", str(scorecard)],
    ):
        result = runner.invoke(app, ["registry", *args, "--home", str(home)])
        assert result.exit_code == 0, result.output
    return home


def invoke(home: Path, *args: str, code: int = 0) -> str:
    result = runner.invoke(app, ["registry", *args, "--home", str(home)])
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    return result.stdout


def test_card_to_stdout_and_files(home: Path, tmp_path: Path) -> None:
    md = invoke(home, "card", "fraud", "1")
    assert md.startswith("# Model card: fraud v1")
    assert "Rank &lt;b&gt;transactions&lt;/b&gt;" in md
    invoke(home, "card", "fraud", "--out", str(tmp_path / "card.html"))
    page = (tmp_path / "card.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and "<b>transactions" not in page
    doc = json.loads(invoke(home, "card", "fraud", "latest", "--format", "json"))
    assert doc["assessment"]["grade"] == "B"
    assert doc["intended_use"] == "Rank <b>transactions</b>"


def test_compliance_exit_codes_and_formats(home: Path, tmp_path: Path) -> None:
    doc = json.loads(invoke(home, "compliance", "fraud", "--format", "json"))
    assert doc["format"] == "warden-compliance/1"
    ids = [i["id"] for i in doc["items"]]
    assert ids[:10] == [f"ML{n:02d}" for n in range(1, 11)]
    assert ids[10:] == ["GOVERN", "MAP", "MEASURE", "MANAGE"]
    assert {i["id"]: i["status"] for i in doc["items"]}["ML01"] == "evidence"
    invoke(home, "compliance", "fraud", "--fail-on-gaps", code=1)
    invoke(home, "compliance", "fraud", "-o", str(tmp_path / "c.md"))
    assert "# Compliance report: fraud v1" in (tmp_path / "c.md").read_text()


def test_sbom_from_the_registry_is_valid_cyclonedx(home: Path, tmp_path: Path) -> None:
    invoke(home, "sbom", "fraud", "1", "--no-libraries", "--out", str(tmp_path / "bom.json"))
    bom = json.loads((tmp_path / "bom.json").read_text())
    assert validate_sbom(bom) == []
    model = bom["components"][0]
    assert model["name"] == "fraud"
    assert model["modelCard"]["considerations"]["useCases"] == ["Rank <b>transactions</b>"]
    metrics = model["modelCard"]["quantitativeAnalysis"]["performanceMetrics"]
    assert {"type": "grade", "value": "B", "slice": "ML01"} in metrics


def test_unknown_model_and_version_are_one_line_errors(home: Path) -> None:
    for args in (["card", "nope"], ["compliance", "fraud", "9"], ["sbom", "nope"]):
        result = runner.invoke(app, ["registry", *args, "--home", str(home)])
        one_line_error(result, "no ")


def test_update_sets_the_card_text(home: Path) -> None:
    invoke(home, "update", "fraud", "--limitations", "Not for credit decisions.", "--owner", "risk")
    md = invoke(home, "card", "fraud")
    assert "Not for credit decisions." in md and "| Owner | risk |" in md
    result = runner.invoke(app, ["registry", "update", "fraud", "--home", str(home)])
    one_line_error(result, "nothing to update")
