"""``warden sbom`` from the outside: BOM on stdout or in a file, one-line errors, exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.cli._helpers import logging_app, one_line_error
from tests.report.conftest import make_assessment
from tests.supplychain.test_sbom import onnx_model, spec_model
from typer.testing import CliRunner

from warden.cli.sbom import sbom
from warden.report.json import assessment_to_dict
from warden.supplychain.sbom import validate_sbom

app = logging_app()
app.command()(sbom)  # as warden.cli.app registers it
runner = CliRunner()
pytestmark = pytest.mark.usefixtures("restore_warden_logger")


@pytest.fixture
def model(tmp_path: Path) -> Path:
    return spec_model(tmp_path / "model")


def test_sbom_to_stdout_is_valid_cyclonedx(model: Path, tmp_path: Path) -> None:
    report = tmp_path / "report.json"
    report.write_text(json.dumps(assessment_to_dict(make_assessment())))
    args = ["sbom", str(model), "--assessment", str(report), "--dataset", "digits"]
    args += ["--name", "digits-cnn", "--version", "2.0", "--intended-use", "demo"]
    args += ["--limitations", "8x8 only", "--no-libraries"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    bom = json.loads(result.stdout)
    assert validate_sbom(bom) == []
    model_comp = bom["components"][0]
    assert (model_comp["name"], model_comp["version"]) == ("digits-cnn", "2.0")
    card = model_comp["modelCard"]
    assert card["considerations"]["useCases"] == ["demo"]
    assert card["considerations"]["technicalLimitations"] == ["8x8 only"]
    assert [c["type"] for c in bom["components"]] == ["machine-learning-model", "data", "data"]


def test_sbom_to_file_with_installed_libraries(tmp_path: Path) -> None:
    path = onnx_model(tmp_path / "tiny.onnx")
    out = tmp_path / "out" / "bom.json"
    result = runner.invoke(app, ["sbom", str(path), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert "wrote CycloneDX 1.6 ML-BOM" in result.stderr
    bom = json.loads(out.read_text("utf-8"))
    purls = {c.get("purl") for c in bom["components"] if c["type"] == "library"}
    assert any(p and p.startswith("pkg:pypi/numpy@") for p in purls)
    model_deps = next(d for d in bom["dependencies"] if d["ref"] == "model:tiny")
    assert any(ref.startswith("pkg:pypi/numpy@") for ref in model_deps["dependsOn"])


def test_sbom_with_requirements(model: Path, tmp_path: Path) -> None:
    req = tmp_path / "requirements.txt"
    req.write_text("numpy==2.0.0\nrequests\n")
    result = runner.invoke(app, ["sbom", str(model), "-r", str(req)])
    assert result.exit_code == 0, result.output
    libs = [c["purl"] for c in json.loads(result.stdout)["components"] if c["type"] == "library"]
    assert libs == ["pkg:pypi/numpy@2.0.0"]
    assert "requests is unpinned" in result.stderr


def test_sbom_errors_are_one_line(model: Path, tmp_path: Path) -> None:
    one_line_error(runner.invoke(app, ["sbom", str(tmp_path / "nope.onnx")]), "no such model")
    bad = tmp_path / "bad.json"
    bad.write_text("[]")
    result = runner.invoke(app, ["sbom", str(model), "--assessment", str(bad), "--no-libraries"])
    one_line_error(result, "not a Warden assessment report")
    result = runner.invoke(app, ["sbom", str(model), "--dataset", "no-such-set", "--no-libraries"])
    one_line_error(result, "unknown dataset")
