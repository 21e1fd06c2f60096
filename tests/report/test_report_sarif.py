"""SARIF report: valid against the official SARIF 2.1.0 schema, and what code scanning reads."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft7Validator
from jsonschema.protocols import Validator
from jsonschema.validators import validator_for

from warden.assess.finding import Finding, Severity
from warden.assess.result import Assessment
from warden.report import assessment_to_sarif, write_sarif


@pytest.fixture(scope="module")
def sarif_validator(sarif_schema_path: Path) -> Validator:
    schema = json.loads(sarif_schema_path.read_text(encoding="utf-8"))
    assert "2.1.0" in schema["title"]
    # The OASIS errata01 file declares draft-04 (older copies: draft-07); use the one it names.
    cls = validator_for(schema, default=Draft7Validator)
    cls.check_schema(schema)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


@pytest.fixture
def log(assessment: Assessment) -> dict[str, Any]:
    return assessment_to_sarif(assessment)


def test_log_validates_against_official_schema(
    log: dict[str, Any], sarif_validator: Validator
) -> None:
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in sarif_validator.iter_errors(log)]
    assert errors == []
    # Same verdict under draft-07 rules, which tools that bundle the draft-07 copy apply.
    assert Draft7Validator(sarif_validator.schema).is_valid(log)


BROKEN = {
    "unknown level": lambda log: log["runs"][0]["results"][0].update(level="fatal"),
    "wrong version": lambda log: log.update(version="2.0.0"),
    "result without message": lambda log: log["runs"][0]["results"][0].pop("message"),
    "unknown result key": lambda log: log["runs"][0]["results"][0].update(severity="high"),
}


@pytest.mark.parametrize("edit", BROKEN.values(), ids=BROKEN.keys())
def test_official_schema_rejects_broken_logs(
    log: dict[str, Any], sarif_validator: Validator, edit: Callable[[dict[str, Any]], Any]
) -> None:
    broken = copy.deepcopy(log)
    edit(broken)
    assert not sarif_validator.is_valid(broken)


def test_tool_and_run(log: dict[str, Any], assessment: Assessment) -> None:
    assert log["version"] == "2.1.0"
    assert len(log["runs"]) == 1
    run = log["runs"][0]
    driver = run["tool"]["driver"]
    assert driver["name"] == "Warden"
    assert driver["version"] == assessment.warden_version
    assert driver["informationUri"].startswith("https://")
    assert run["properties"]["scorecard"] == assessment.scorecard.to_dict()
    assert run["invocations"][0]["startTimeUtc"] == "2025-01-02T03:04:05.000Z"
    assert run["invocations"][0]["endTimeUtc"] == "2025-01-02T03:05:17.000Z"


def test_one_rule_per_distinct_finding_id(
    assessment: Assessment, base_findings: list[Finding], build_assessment: Callable[..., Any]
) -> None:
    repeat = Finding(
        id="evasion.pgd",
        check="evasion.pgd",
        title="PGD again",
        severity=Severity.CRITICAL,
        owasp=("ML01",),
    )
    run = assessment_to_sarif(build_assessment([*base_findings, repeat]))["runs"][0]
    rules = run["tool"]["driver"]["rules"]
    ids = [r["id"] for r in rules]
    assert ids == [f.id for f in base_findings]
    assert len(run["results"]) == len(base_findings) + 1
    for result in run["results"]:
        assert rules[result["ruleIndex"]]["id"] == result["ruleId"]
    pgd = rules[ids.index("evasion.pgd")]
    assert pgd["properties"]["security-severity"] == "9.5"  # the worst of its results
    assert pgd["defaultConfiguration"]["level"] == "error"


@pytest.mark.parametrize(
    ("severity", "level", "score"),
    [
        (Severity.INFO, "none", "0.0"),
        (Severity.LOW, "note", "3.0"),
        (Severity.MEDIUM, "warning", "5.0"),
        (Severity.HIGH, "error", "7.5"),
        (Severity.CRITICAL, "error", "9.5"),
    ],
)
def test_levels_and_security_severity(
    build_assessment: Callable[..., Assessment], severity: Severity, level: str, score: str
) -> None:
    f = Finding(id="x.y", check="x", title="t", severity=severity, owasp=("ML01",))
    run = assessment_to_sarif(build_assessment([f]))["runs"][0]
    rule, result = run["tool"]["driver"]["rules"][0], run["results"][0]
    assert result["level"] == level
    assert result["kind"] == ("informational" if severity == Severity.INFO else "fail")
    assert rule["defaultConfiguration"]["level"] == level
    assert rule["properties"]["security-severity"] == score
    float(rule["properties"]["security-severity"])  # a number string, as GitHub expects


def test_rules_carry_threat_tags_and_remediation(log: dict[str, Any]) -> None:
    rules = {r["id"]: r for r in log["runs"][0]["tool"]["driver"]["rules"]}
    pgd = rules["evasion.pgd"]
    assert {"ML01", "AML.T0015", "AML.T0043"} <= set(pgd["properties"]["tags"])
    assert pgd["shortDescription"]["text"].startswith("PGD at eps=1")
    assert "Input Manipulation Attack" in pgd["fullDescription"]["text"]
    assert "adversarial training" in pgd["help"]["text"]


def test_results_point_at_the_model(log: dict[str, Any], hostile_name: str) -> None:
    for result in log["runs"][0]["results"]:
        (location,) = result["locations"]
        assert location["logicalLocations"][0]["name"] == hostile_name
        assert location["physicalLocation"]["artifactLocation"]["uri"] == "models/digits%20cnn.pt"
    pgd = next(r for r in log["runs"][0]["results"] if r["ruleId"] == "evasion.pgd")
    assert pgd["properties"]["metrics"]["robust_accuracy"] == pytest.approx(0.299)


def test_without_a_source_only_the_logical_location(
    build_assessment: Callable[..., Assessment], sarif_validator: Validator
) -> None:
    log = assessment_to_sarif(build_assessment(model={"kind": "SklearnModel"}))
    location = log["runs"][0]["results"][0]["locations"][0]
    assert "physicalLocation" not in location
    assert location["logicalLocations"][0]["name"] == "SklearnModel"
    assert sarif_validator.is_valid(log)


def test_absolute_source_is_a_file_uri(build_assessment: Callable[..., Assessment]) -> None:
    log = assessment_to_sarif(build_assessment(model={"source": "/srv/models/m.onnx"}))
    location = log["runs"][0]["results"][0]["locations"][0]
    assert location["physicalLocation"]["artifactLocation"]["uri"] == "file:///srv/models/m.onnx"


def test_write_sarif(assessment: Assessment, tmp_path: Path) -> None:
    path = write_sarif(assessment, tmp_path / "out.sarif")
    assert json.loads(path.read_text(encoding="utf-8")) == assessment_to_sarif(assessment)
