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

_VALID_IDS: set[str] = set()
"""Ids and check names already found well-formed: checks yield the same few over and over."""
_VALID_THREATS: set[tuple[tuple[str, ...], tuple[str, ...]]] = set()
"""(owasp, atlas) tuples already found valid."""
_MEMO_MAX = 4096
_FLAT: frozenset[type] = frozenset({str, int, bool, type(None)})
"""Value types that :func:`~warden._jsondata.plain` returns unchanged."""


def _plain_mapping(value: Mapping[str, Any], where: str, finding_id: str) -> Any:
    """``plain(value)``, without the recursive walk for a flat dict of strings and integers
    (what nearly every finding carries): a copy of it is already the plain form."""
    if type(value) is dict:
        for k, v in value.items():
            if type(k) is not str or type(v) not in _FLAT:
                break
        else:
            return dict(value)
    return plain(value, f"{finding_id}.{where}", ConfigError)


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
        # Each check is memoised once passed (same outcome, far cheaper for repeated values).
        ident, check = self.id, self.check
        if ident not in _VALID_IDS or check not in _VALID_IDS:
            if not _ID.match(ident) or not _ID.match(check):
                raise ConfigError(
                    f"finding id {ident!r} / check {check!r} must be lower-case dotted"
                )
            if len(_VALID_IDS) < _MEMO_MAX:
                _VALID_IDS.update((ident, check))
        if not isinstance(self.severity, Severity):
            object.__setattr__(self, "severity", Severity(self.severity))
        owasp, atlas = self.owasp, self.atlas
        if (
            type(owasp) is not tuple
            or type(atlas) is not tuple
            or ((owasp, atlas) not in _VALID_THREATS)
        ):
            for t in owasp:
                if t not in OWASP_ML_TOP10:
                    raise ConfigError(f"finding {ident}: unknown OWASP ML Top 10 id {t!r}")
            for t in atlas:
                if not _ATLAS_ID.match(t):
                    raise ConfigError(f"finding {ident}: {t!r} is not a MITRE ATLAS technique id")
            owasp, atlas = tuple(owasp), tuple(atlas)
            object.__setattr__(self, "owasp", owasp)
            object.__setattr__(self, "atlas", atlas)
            if len(_VALID_THREATS) < _MEMO_MAX:
                _VALID_THREATS.add((owasp, atlas))
        object.__setattr__(self, "metrics", _plain_mapping(self.metrics, "metrics", ident))
        object.__setattr__(self, "evidence", _plain_mapping(self.evidence, "evidence", ident))

    @classmethod
    def fast(
        cls,
        id: str,
        check: str,
        title: str,
        severity: Severity,
        summary: str,
        metrics: Mapping[str, Any],
        owasp: tuple[str, ...],
        atlas: tuple[str, ...],
        evidence: Mapping[str, Any],
        remediation: str,
    ) -> Finding:
        """``Finding(...)`` with every field given, made without the frozen dataclass's
        field-by-field ``__init__``. The same checks and conversions run (``__post_init__``), so
        the result equals what the constructor returns; for code that makes many findings."""
        self = object.__new__(cls)
        self.__dict__.update(
            id=id,
            check=check,
            title=title,
            severity=severity,
            summary=summary,
            metrics=metrics,
            owasp=owasp,
            atlas=atlas,
            evidence=evidence,
            remediation=remediation,
        )
        self.__post_init__()
        return self

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
