"""JSON report: content, the shipped schema, and that the schema rejects broken documents."""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from warden.assess.result import Assessment
from warden.errors import ReportError
from warden.report import SCHEMA_ID, assessment_to_dict, load_schema, schema_path, write_json


@pytest.fixture(scope="module")
def validator() -> Draft202012Validator:
    schema = load_schema()
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


def test_schema_ships_with_the_package() -> None:
    assert schema_path().name == "assessment-1.0.json"
    schema = load_schema()
    assert schema["$id"] == SCHEMA_ID
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"


def test_document_holds_the_whole_assessment(assessment: Assessment) -> None:
    doc = assessment_to_dict(assessment)
    assert doc["$schema"] == SCHEMA_ID
    assert doc["schema_version"] == "1.0"
    assert doc["suite"] == assessment.suite
    assert doc["model"] == dict(assessment.model)
    assert doc["dataset"]["fingerprint"] == assessment.dataset["fingerprint"]
    assert doc["settings"] == dict(assessment.settings)
    assert doc["scorecard"] == assessment.scorecard.to_dict()
    assert doc["findings"] == [f.to_dict() for f in assessment.findings]
    assert (doc["started_at"], doc["finished_at"]) == (
        assessment.started_at,
        assessment.finished_at,
    )
    assert doc["duration_s"] == pytest.approx(assessment.duration_s)


def test_document_validates_against_the_shipped_schema(
    assessment: Assessment, validator: Draft202012Validator
) -> None:
    errors = list(validator.iter_errors(assessment_to_dict(assessment)))
    assert errors == []


def _set(path: tuple[Any, ...], value: Any) -> Callable[[dict[str, Any]], None]:
    def edit(doc: dict[str, Any]) -> None:
        target: Any = doc
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return edit


def _drop(key: str) -> Callable[[dict[str, Any]], None]:
    return lambda doc: doc.pop(key)


BROKEN = {
    "bad severity": _set(("findings", 0, "severity"), "severe"),
    "bad OWASP id": _set(("findings", 1, "owasp"), ["ML11"]),
    "OWASP id ML00": _set(("findings", 1, "owasp"), ["ML00"]),
    "bad ATLAS id": _set(("findings", 1, "atlas"), ["T0043"]),
    "upper-case finding id": _set(("findings", 1, "id"), "Evasion.PGD"),
    "unknown top-level key": _set(("extra",), 1),
    "unknown finding key": _set(("findings", 0, "cvss"), 9.8),
    "wrong schema version": _set(("schema_version",), "2.0"),
    "bad overall grade": _set(("scorecard", "overall"), "E"),
    "negative count": _set(("scorecard", "counts", "high"), -1),
    "curve without y": _set(("findings", 1, "evidence", "curve"), {"x": [0.0, 1.0]}),
    "examples with 2-d shape": _set(("findings", 1, "evidence", "examples", "shape"), [8, 8]),
    "missing findings": _drop("findings"),
}


@pytest.mark.parametrize("edit", BROKEN.values(), ids=BROKEN.keys())
def test_schema_rejects_broken_documents(
    assessment: Assessment,
    validator: Draft202012Validator,
    edit: Callable[[dict[str, Any]], None],
) -> None:
    doc = copy.deepcopy(assessment_to_dict(assessment))
    edit(doc)
    assert not validator.is_valid(doc)


def test_write_json_round_trips(assessment: Assessment, tmp_path: Path) -> None:
    path = write_json(assessment, tmp_path / "sub" / "a.json")
    assert path == tmp_path / "sub" / "a.json"
    assert json.loads(path.read_text(encoding="utf-8")) == assessment_to_dict(assessment)


def test_model_description_that_is_not_json_is_an_error(
    build_assessment: Callable[..., Assessment],
) -> None:
    a = build_assessment(model={"name": "m", "temperature": math.nan})
    with pytest.raises(ReportError, match=r"model\.temperature.*not a finite number"):
        assessment_to_dict(a)
    b = build_assessment(model={"name": "m", "module": object()})
    with pytest.raises(ReportError, match=r"model\.module: a object is not JSON data"):
        assessment_to_dict(b)
