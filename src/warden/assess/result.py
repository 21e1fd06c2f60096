"""``Assessment``: everything one run of a suite produced, ready for the reporters."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from warden.assess.finding import Finding, Severity
from warden.assess.scorecard import Scorecard

__all__ = ["Assessment"]


@dataclass(frozen=True)
class Assessment:
    """The result of :func:`warden.assess.run`."""

    suite: str
    """Name of the suite that ran."""
    model: Mapping[str, Any]
    """Description of the model under test (kind, input shape, classes, source)."""
    dataset: Mapping[str, Any]
    """Description of the evaluation data (name, size, fingerprint)."""
    findings: tuple[Finding, ...]
    """Every finding, in the order the checks produced them."""
    scorecard: Scorecard
    """Grades computed from ``findings``."""
    started_at: str
    """UTC start time, ISO 8601."""
    finished_at: str
    """UTC end time, ISO 8601."""
    duration_s: float
    """Wall-clock seconds the suite took."""
    warden_version: str
    """Version of Warden that produced it."""
    settings: Mapping[str, Any] = field(default_factory=dict)
    """The suite's settings (checks and their options, seed, max_samples)."""

    def worst_severity(self) -> Severity:
        """The worst severity among the findings (``INFO`` when there are none)."""
        return max((f.severity for f in self.findings), default=Severity.INFO)

    def at_or_above(self, threshold: Severity) -> list[Finding]:
        """Findings whose severity is at least ``threshold``."""
        return [f for f in self.findings if f.severity >= threshold]
