"""SARIF 2.1.0 report, for code-scanning dashboards (GitHub, Azure DevOps, VS Code viewers).

One run; one rule per distinct finding id; one result per finding. Each rule carries the
finding's OWASP ML Top 10 and MITRE ATLAS ids as tags and a ``security-severity`` score, which
GitHub code scanning uses to rank alerts. Every result points at the model under test: a
logical location always, and the model file when ``Assessment.model["source"]`` names one.

Spec: https://docs.oasis-open.org/sarif/sarif/v2.1.0/sarif-v2.1.0.html
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path, PurePath
from typing import Any
from urllib.parse import quote

from warden.assess.finding import ATLAS, OWASP_ML_TOP10, Finding, Severity
from warden.assess.result import Assessment
from warden.report._io import dumps, plain, write_text

__all__ = [
    "INFORMATION_URI",
    "SARIF_SCHEMA",
    "SARIF_VERSION",
    "SECURITY_SEVERITY",
    "assessment_to_sarif",
    "sarif_document",
    "sarif_level",
    "sarif_properties",
    "sarif_result",
    "sarif_rule",
    "sarif_rules",
    "sarif_uri",
    "write_sarif",
]

SARIF_VERSION = "2.1.0"
"""The SARIF version written."""

SARIF_SCHEMA = (
    "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
)
"""The official SARIF 2.1.0 schema URI, named in the log's ``$schema``."""

INFORMATION_URI = "https://owasp.org/www-project-machine-learning-security-top-10/"
"""Where the tool's findings are explained (the taxonomy Warden grades against)."""

SECURITY_SEVERITY: dict[Severity, str] = {
    Severity.INFO: "0.0",
    Severity.LOW: "3.0",
    Severity.MEDIUM: "5.0",
    Severity.HIGH: "7.5",
    Severity.CRITICAL: "9.5",
}
"""CVSS-like score per severity, as the number string GitHub's ``security-severity`` expects."""

_LEVEL: dict[Severity, str] = {
    Severity.INFO: "none",
    Severity.LOW: "note",
    Severity.MEDIUM: "warning",
    Severity.HIGH: "error",
    Severity.CRITICAL: "error",
}


def sarif_level(severity: Severity) -> str:
    """SARIF ``level`` for a severity: info→none, low→note, medium→warning, high/critical→error."""
    return _LEVEL[severity]


def _model_name(a: Assessment) -> str:
    for key in ("name", "source", "kind"):
        value = a.model.get(key)
        if isinstance(value, str) and value:
            return value
    return "model"


def _source_uri(model: Mapping[str, Any]) -> str | None:
    """``model["source"]`` as a URI reference: relative paths stay relative (POSIX, quoted)."""
    source = model.get("source")
    if not isinstance(source, (str, os.PathLike)) or not os.fspath(source):
        return None
    text = os.fspath(source)
    if "://" in text:
        return text
    return sarif_uri(text)


def sarif_uri(file: str | os.PathLike[str]) -> str:
    """A file path as a SARIF URI reference: absolute paths as ``file://`` URIs, relative
    ones kept relative (POSIX separators, percent-quoted)."""
    path = PurePath(file)
    if path.is_absolute():
        return Path(path).as_uri()
    return quote(path.as_posix())


def _utc(stamp: str) -> str | None:
    """An ISO 8601 time as SARIF wants it (UTC, ``Z``), or None when it does not parse."""
    try:
        when = datetime.fromisoformat(stamp)
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _tags(f: Finding) -> list[str]:
    return ["security", "machine-learning", *f.owasp, *f.atlas]


def sarif_rule(f: Finding, worst: Severity) -> dict[str, Any]:
    """The SARIF rule for finding id ``f.id``, at the level of the worst result it has."""
    threats = [f"{t} {OWASP_ML_TOP10[t]}" for t in f.owasp]
    threats += [f"{t} {ATLAS[t]}" if t in ATLAS else t for t in f.atlas]
    full = f.summary or f.title
    if threats:
        full = f"{full} Threats: {'; '.join(threats)}."
    help_text = f.remediation or "No action needed."
    return {
        "id": f.id,
        "name": f.check,
        "shortDescription": {"text": f.title},
        "fullDescription": {"text": full},
        "help": {"text": help_text, "markdown": f"**Remediation.** {help_text}"},
        "defaultConfiguration": {"level": sarif_level(worst)},
        "properties": {
            "tags": _tags(f),
            "security-severity": SECURITY_SEVERITY[worst],
            "precision": "high",
        },
    }


def sarif_rules(findings: Iterable[Finding]) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """One rule per distinct finding id, in order of first appearance, at the level of its worst
    result; and each id's rule index."""
    first: dict[str, Finding] = {}
    worst: dict[str, Severity] = {}
    for f in findings:
        first.setdefault(f.id, f)
        worst[f.id] = max(worst.get(f.id, Severity.INFO), f.severity)
    index = {rule_id: i for i, rule_id in enumerate(first)}
    return [sarif_rule(f, worst[rule_id]) for rule_id, f in first.items()], index


def sarif_properties(f: Finding) -> dict[str, Any]:
    """The severity and taxonomy entries of a result's property bag."""
    return {
        "severity": str(f.severity),
        "security-severity": SECURITY_SEVERITY[f.severity],
        "owasp": list(f.owasp),
        "atlas": list(f.atlas),
    }


def sarif_result(
    f: Finding,
    rule_index: int,
    location: dict[str, Any],
    fingerprint_key: str,
    properties: dict[str, Any],
) -> dict[str, Any]:
    """The SARIF result for ``f``: ``fail`` (``informational`` when INFO) at the level of its
    severity, with its title and summary as the message, one ``location``, the SHA-256 of
    ``fingerprint_key`` as its ``wardenFinding/v1`` fingerprint, and ``properties``."""
    text = f.title if not f.summary else f"{f.title.rstrip('.')}. {f.summary}"
    digest = hashlib.sha256(fingerprint_key.encode()).hexdigest()
    return {
        "ruleId": f.id,
        "ruleIndex": rule_index,
        "kind": "informational" if f.severity == Severity.INFO else "fail",
        "level": sarif_level(f.severity),
        "message": {"text": text},
        "locations": [location],
        "partialFingerprints": {"wardenFinding/v1": digest},
        "properties": properties,
    }


def _location(a: Assessment) -> dict[str, Any]:
    name = _model_name(a)
    location: dict[str, Any] = {
        "logicalLocations": [
            {"name": name, "fullyQualifiedName": f"model:{name}", "kind": "module"}
        ]
    }
    uri = _source_uri(a.model)
    if uri is not None:
        location["physicalLocation"] = {"artifactLocation": {"uri": uri}}
    return location


def _result(f: Finding, rule_index: int, a: Assessment) -> dict[str, Any]:
    properties = {
        "check": f.check,
        **sarif_properties(f),
        "metrics": dict(f.metrics),
        "remediation": f.remediation,
    }
    return sarif_result(f, rule_index, _location(a), f"{f.id}\0{_model_name(a)}", properties)


def assessment_to_sarif(a: Assessment) -> dict[str, Any]:
    """The SARIF 2.1.0 log for ``a``: one run of the ``Warden`` tool with its rules and results.

    Informational findings are results of kind ``informational`` and level ``none`` (as the
    spec requires for non-failures); the others are ``fail`` with the level of their severity.
    """
    rules, index = sarif_rules(a.findings)
    results = [_result(f, index[f.id], a) for f in a.findings]

    invocation: dict[str, Any] = {"executionSuccessful": True}
    for key, stamp in (("startTimeUtc", a.started_at), ("endTimeUtc", a.finished_at)):
        utc = _utc(stamp)
        if utc is not None:
            invocation[key] = utc

    properties = {
        "suite": a.suite,
        "scorecard": a.scorecard.to_dict(),
        "model": plain(a.model, "model"),
        "dataset": plain(a.dataset, "dataset"),
        "duration_s": a.duration_s,
    }
    return sarif_document(
        rules,
        results,
        automation_id=f"warden/{a.suite}/",
        invocation=invocation,
        properties=properties,
        version=a.warden_version,
    )


def sarif_document(
    rules: list[dict[str, Any]],
    results: list[dict[str, Any]],
    *,
    automation_id: str,
    invocation: Mapping[str, Any],
    properties: Mapping[str, Any],
    version: str,
) -> dict[str, Any]:
    """A SARIF 2.1.0 log with one run of the ``Warden`` tool (shared by every SARIF writer)."""
    run: dict[str, Any] = {
        "tool": {
            "driver": {
                "name": "Warden",
                "fullName": f"Warden {version}",
                "version": version,
                "informationUri": INFORMATION_URI,
                "rules": rules,
            }
        },
        "automationDetails": {"id": automation_id},
        "invocations": [dict(invocation)],
        "results": results,
        "properties": dict(properties),
    }
    return {"$schema": SARIF_SCHEMA, "version": SARIF_VERSION, "runs": [run]}


def write_sarif(a: Assessment, path: str | os.PathLike[str]) -> Path:
    """Write the SARIF 2.1.0 log of ``a`` to ``path``; return the path."""
    return write_text(path, dumps(assessment_to_sarif(a)))
