"""Which assessment documents the registry accepts."""

from __future__ import annotations

from typing import Any

import pytest
from tests.registry._helpers import full_report, report, scorecard

from warden.errors import ConfigError
from warden.registry.assessments import validate_assessment


def test_scorecard_and_full_report_are_accepted() -> None:
    assert validate_assessment(report(ML01="C", ML05="A")) == ("C", {"ML01": "C", "ML05": "A"})
    assert validate_assessment(full_report(ML02="D")) == ("D", {"ML02": "D"})
    assert validate_assessment(report()) == ("N/A", {})


def _edited(**changes: Any) -> dict[str, Any]:
    card = scorecard(ML01="D")
    card.update(changes)
    return {"scorecard": card}


@pytest.mark.parametrize(
    ("doc", "needle"),
    [
        ([1, 2], "must be a JSON object, found list"),
        ({"findings": []}, "has no scorecard"),
        ({"scorecard": "A"}, "scorecard: \\(root\\): 'A' is not of type 'object'"),
        (_edited(overall="E"), "scorecard: overall: 'E' is not one of"),
        (_edited(overall="A"), "overall grade A is better than its worst threat grade D"),
        (_edited(overall="N/A"), "overall grade N/A is better"),
        ({"scorecard": {**scorecard(), "overall": "B"}}, "overall grade B but no threat"),
        (
            _edited(threats=scorecard(ML01="D")["threats"] * 2),
            "threat ML01 is graded twice",
        ),
        (
            _edited(threats=[{**scorecard(ML01="D")["threats"][0], "threat": "ML99"}]),
            "threats/0/threat: 'ML99' does not match",
        ),
        ({**full_report(ML01="C"), "$schema": "urn:other"}, "names schema 'urn:other'"),
        ({**full_report(ML01="C"), "findings": "none"}, "findings: 'none' is not of type"),
    ],
)
def test_garbage_is_refused_with_a_reason(doc: Any, needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        validate_assessment(doc)
