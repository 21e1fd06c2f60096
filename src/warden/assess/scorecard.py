"""``Scorecard``: a letter grade per threat and overall, from the findings.

The rule (also in ``docs/grading.md``):

* Each finding maps to zero or more OWASP ML Top 10 threats.
* A threat's grade comes from the worst severity among its findings:
  info → **A**, low → **B**, medium → **C**, high → **D**, critical → **F**.
* The overall grade is the worst threat grade. Findings with no threat (for example the clean
  accuracy baseline) inform but do not grade.
* A check that could not run yields a high-severity finding for its threats (fail closed),
  so a broken check can never improve a grade.
* An assessment that evaluated no threat at all has overall grade ``N/A``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from warden.assess.finding import OWASP_ML_TOP10, Finding, Severity

__all__ = ["GRADES", "Scorecard", "ThreatGrade", "grade_for", "score"]

GRADES: dict[Severity, str] = {
    Severity.INFO: "A",
    Severity.LOW: "B",
    Severity.MEDIUM: "C",
    Severity.HIGH: "D",
    Severity.CRITICAL: "F",
}
"""The letter for each worst severity."""


def grade_for(worst: Severity) -> str:
    """The letter grade for a threat whose worst finding has severity ``worst``."""
    return GRADES[worst]


@dataclass(frozen=True)
class ThreatGrade:
    """The grade of one threat."""

    threat: str
    """OWASP ML Top 10 id, e.g. ``ML01``."""
    name: str
    """The threat's OWASP name."""
    grade: str
    """Letter A (best) … F (worst)."""
    worst: Severity
    """Worst severity among the threat's findings."""
    findings: int
    """How many findings map to the threat."""


@dataclass(frozen=True)
class Scorecard:
    """Grades per threat and overall, and how many findings of each severity."""

    overall: str
    """Worst threat grade, or ``N/A`` when no threat was evaluated."""
    threats: tuple[ThreatGrade, ...]
    """One grade per evaluated threat, in OWASP order."""
    counts: dict[str, int]
    """Number of findings per severity name."""

    def to_dict(self) -> dict[str, Any]:
        """JSON form (the report schema's ``scorecard``)."""
        return {
            "overall": self.overall,
            "rule": "worst severity per threat: info=A low=B medium=C high=D critical=F; "
            "overall = worst threat grade",
            "threats": [
                {
                    "threat": t.threat,
                    "name": t.name,
                    "grade": t.grade,
                    "worst_severity": str(t.worst),
                    "findings": t.findings,
                }
                for t in self.threats
            ],
            "counts": dict(self.counts),
        }


def score(findings: Iterable[Finding]) -> Scorecard:
    """Grade ``findings`` by the rule in this module's docstring."""
    worst: dict[str, Severity] = {}
    count: dict[str, int] = {}
    counts = {str(s): 0 for s in Severity}
    for f in findings:
        counts[str(f.severity)] += 1
        for t in f.owasp:
            worst[t] = max(worst.get(t, Severity.INFO), f.severity)
            count[t] = count.get(t, 0) + 1
    threats = tuple(
        ThreatGrade(t, OWASP_ML_TOP10[t], grade_for(worst[t]), worst[t], count[t])
        for t in OWASP_ML_TOP10
        if t in worst
    )
    overall = grade_for(max(t.worst for t in threats)) if threats else "N/A"
    return Scorecard(overall=overall, threats=threats, counts=counts)
