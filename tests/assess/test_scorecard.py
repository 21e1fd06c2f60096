from __future__ import annotations

import pytest
from tests.conftest import make_finding

from warden.assess import Finding, Severity, score
from warden.errors import ConfigError


@pytest.mark.parametrize(
    ("severity", "grade"),
    [
        (Severity.INFO, "A"),
        (Severity.LOW, "B"),
        (Severity.MEDIUM, "C"),
        (Severity.HIGH, "D"),
        (Severity.CRITICAL, "F"),
    ],
)
def test_threat_grade_is_worst_severity(severity: Severity, grade: str) -> None:
    card = score([make_finding(Severity.INFO), make_finding(severity)])
    assert [t.grade for t in card.threats] == [grade]
    assert card.overall == grade


def test_overall_is_worst_threat_and_unthreatened_findings_do_not_grade() -> None:
    card = score(
        [
            make_finding(Severity.LOW, ("ML01",)),
            make_finding(Severity.HIGH, ("ML06",)),
            make_finding(Severity.CRITICAL, ()),
        ]
    )
    assert {t.threat: t.grade for t in card.threats} == {"ML01": "B", "ML06": "D"}
    assert card.overall == "D"
    assert card.counts == {"info": 0, "low": 1, "medium": 0, "high": 1, "critical": 1}


def test_no_threat_evaluated_is_not_a_pass() -> None:
    assert score([make_finding(Severity.INFO, ())]).overall == "N/A"
    assert score([]).overall == "N/A"


def test_finding_validation() -> None:
    with pytest.raises(ConfigError, match="OWASP"):
        Finding(id="a.b", check="a", title="t", severity=Severity.LOW, owasp=("ML11",))
    with pytest.raises(ConfigError, match="ATLAS"):
        Finding(id="a.b", check="a", title="t", severity=Severity.LOW, atlas=("T0043",))
    with pytest.raises(ConfigError, match="finite"):
        Finding(id="a.b", check="a", title="t", severity=Severity.LOW, metrics={"x": float("nan")})
    with pytest.raises(ConfigError, match="lower-case"):
        Finding(id="A B", check="a", title="t", severity=Severity.LOW)


def test_severity_parse() -> None:
    assert Severity.parse(" High ") is Severity.HIGH
    with pytest.raises(ConfigError, match="unknown severity 'severe'"):
        Severity.parse("severe")
