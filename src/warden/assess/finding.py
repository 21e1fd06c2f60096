"""``Finding``: one measured result of a check, mapped to OWASP ML Top 10 and MITRE ATLAS."""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from warden._jsondata import plain
from warden.errors import ConfigError

__all__ = ["ATLAS", "OWASP_ML_TOP10", "Finding", "Severity"]


class Severity(enum.IntEnum):
    """How bad a finding is; ordered, so ``max`` gives the worst."""

    INFO = 0
    LOW = 1
    MEDIUM = 2
    HIGH = 3
    CRITICAL = 4

    @classmethod
    def parse(cls, text: str) -> Severity:
        """``"high"`` (any case) to ``Severity.HIGH``; a clear error otherwise."""
        try:
            return cls[text.strip().upper()]
        except KeyError:
            names = ", ".join(s.name.lower() for s in cls)
            raise ConfigError(f"unknown severity {text!r}; expected one of {names}") from None

    def __str__(self) -> str:
        return self.name.lower()


OWASP_ML_TOP10: dict[str, str] = {
    "ML01": "Input Manipulation Attack",
    "ML02": "Data Poisoning Attack",
    "ML03": "Model Inversion Attack",
    "ML04": "Membership Inference Attack",
    "ML05": "Model Theft",
    "ML06": "AI Supply Chain Attacks",
    "ML07": "Transfer Learning Attack",
    "ML08": "Model Skewing",
    "ML09": "Output Integrity Attack",
    "ML10": "Model Poisoning",
}
"""OWASP Machine Learning Security Top 10 (2023) ids and names."""

ATLAS: dict[str, str] = {
    "AML.T0010": "ML Supply Chain Compromise",
    "AML.T0011": "User Execution",
    "AML.T0015": "Evade ML Model",
    "AML.T0018": "Backdoor ML Model",
    "AML.T0020": "Poison Training Data",
    "AML.T0024": "Exfiltration via ML Inference API",
    "AML.T0031": "Erode ML Model Integrity",
    "AML.T0040": "ML Model Inference API Access",
    "AML.T0043": "Craft Adversarial Data",
    "AML.T0044": "Full ML Model Access",
}
"""MITRE ATLAS techniques Warden's checks refer to (id to name)."""

_ID = re.compile(r"^[a-z0-9][a-z0-9_.\-]*$")
_ATLAS_ID = re.compile(r"^AML\.T\d{4}(\.\d{3})?$")


@dataclass(frozen=True)
class Finding:
    """One result of a check. Every check yields at least one, even when nothing is wrong."""

    id: str
    """Stable identifier, ``<check>`` or ``<check>.<aspect>`` (lower case, dots)."""
    check: str
    """Name of the check that produced it."""
    title: str
    """One-line headline a person reads first."""
    severity: Severity
    """How bad it is; drives the scorecard grade of each threat it maps to."""
    summary: str = ""
    """A few sentences: what was measured and what it means."""
    metrics: Mapping[str, Any] = field(default_factory=dict)
    """Numbers that back the finding (JSON data, finite floats)."""
    owasp: tuple[str, ...] = ()
    """OWASP ML Top 10 ids (``ML01`` … ``ML10``)."""
    atlas: tuple[str, ...] = ()
    """MITRE ATLAS technique ids (``AML.T0043`` …)."""
    evidence: Mapping[str, Any] = field(default_factory=dict)
    """Supporting data for reports (JSON data). Well-known keys the HTML report plots:
    ``curve`` ({x, y, x_label, y_label, series}), ``per_class`` ({classes, clean,
    adversarial, epsilon}), ``examples`` ({shape, clean, adversarial, true, clean_pred,
    adv_pred, epsilon})."""
    remediation: str = ""
    """What to do about it."""

    def __post_init__(self) -> None:
        if not _ID.match(self.id) or not _ID.match(self.check):
            raise ConfigError(
                f"finding id {self.id!r} / check {self.check!r} must be lower-case dotted"
            )
        if not isinstance(self.severity, Severity):
            object.__setattr__(self, "severity", Severity(self.severity))
        for t in self.owasp:
            if t not in OWASP_ML_TOP10:
                raise ConfigError(f"finding {self.id}: unknown OWASP ML Top 10 id {t!r}")
        for t in self.atlas:
            if not _ATLAS_ID.match(t):
                raise ConfigError(f"finding {self.id}: {t!r} is not a MITRE ATLAS technique id")
        object.__setattr__(self, "owasp", tuple(self.owasp))
        object.__setattr__(self, "atlas", tuple(self.atlas))
        object.__setattr__(self, "metrics", plain(self.metrics, f"{self.id}.metrics", ConfigError))
        object.__setattr__(
            self, "evidence", plain(self.evidence, f"{self.id}.evidence", ConfigError)
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON form (the report schema's ``finding``)."""
        return {
            "id": self.id,
            "check": self.check,
            "title": self.title,
            "severity": str(self.severity),
            "summary": self.summary,
            "metrics": dict(self.metrics),
            "owasp": list(self.owasp),
            "atlas": list(self.atlas),
            "evidence": dict(self.evidence),
            "remediation": self.remediation,
        }
