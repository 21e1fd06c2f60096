"""Assessment: Suite → Checks → streamed Findings → Scorecard."""

from __future__ import annotations

from warden.assess.check import (
    Check,
    CheckContext,
    CheckSkipped,
    ProgressEvent,
    check_names,
    create_check,
    register_check,
)
from warden.assess.finding import ATLAS, OWASP_ML_TOP10, Finding, Severity
from warden.assess.result import Assessment
from warden.assess.runner import describe_model, iter_findings, run
from warden.assess.scorecard import Scorecard, ThreatGrade, score
from warden.assess.suite import BUILTIN_SUITES, CheckSpec, Suite

__all__ = [
    "ATLAS",
    "Assessment",
    "BUILTIN_SUITES",
    "Check",
    "CheckContext",
    "CheckSkipped",
    "CheckSpec",
    "Finding",
    "OWASP_ML_TOP10",
    "ProgressEvent",
    "Scorecard",
    "Severity",
    "Suite",
    "ThreatGrade",
    "check_names",
    "create_check",
    "describe_model",
    "iter_findings",
    "register_check",
    "run",
    "score",
]
