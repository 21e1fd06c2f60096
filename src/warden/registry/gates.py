"""Approval gates as pure functions: evidence + policy + clock → :class:`GateResult`.

Each gate fails closed: missing evidence, evidence for other bytes, evidence older than the
policy allows, or evidence that does not verify *now* is a failure that says what to do.

- ``artifact``: the version's files still hash to its artifact digest and every blob
  authenticates (the bytes on disk are the bytes registered).
- ``scan``: the latest scan of the version covers the same artifact digest, was made by the
  running Warden's scanner, is young enough, and found nothing at or above ``fail_on``.
- ``signature``: a stored bundle verifies *now* with one of the policy's trusted keys and its
  manifest covers exactly the version's files (the bundle is re-checked, not the stored flag).
- ``assessment``: the latest assessment of the version covers the same artifact digest, is
  young enough, and meets the overall and per-threat minimum grades.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from warden.assess.finding import Severity
from warden.errors import ConfigError, SignatureError
from warden.registry.artifacts import artifact_digest, manifest_for
from warden.registry.policy import AssessmentPolicy, Policy, ScanPolicy, SignaturePolicy
from warden.registry.policy import grade_at_least as _at_least
from warden.registry.records import AssessmentInfo, ScanInfo, SignatureInfo, VersionInfo
from warden.supplychain.signing import Manifest, manifest_from_statement, open_bundle

__all__ = [
    "GATE_NAMES",
    "GateResult",
    "artifact_gate",
    "assessment_gate",
    "evidence_snapshot",
    "scan_gate",
    "signature_gate",
    "version_manifest",
]

GATE_NAMES = ("artifact", "scan", "signature", "assessment")
"""The gates, in the order they are evaluated and reported."""


@dataclass(frozen=True)
class GateResult:
    """One gate's verdict."""

    name: str
    """``artifact``, ``scan``, ``signature`` or ``assessment``."""
    passed: bool
    """Whether the evidence satisfies the policy."""
    detail: str
    """What was found, and on failure what to do."""
    evidence: tuple[str, ...] = ()
    """The evidence looked at (``scan:12``, ``signature:3``, ``assessment:7``)."""

    def line(self) -> str:
        """``scan: FAIL — detail`` (one line)."""
        return f"{self.name}: {'pass' if self.passed else 'FAIL'} — {self.detail}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "gate": self.name,
            "passed": self.passed,
            "detail": self.detail,
            "evidence": list(self.evidence),
        }


def _ref(v: VersionInfo) -> str:
    return f"{v.model} v{v.number}"


def _age_days(then: datetime, now: datetime) -> float:
    return (now - then).total_seconds() / 86400.0


def _stale_age(then: datetime, now: datetime, limit: float | None, what: str) -> str | None:
    if limit is None:
        return None
    age = _age_days(then, now)
    if age > limit:
        return f"stale: the {what} is {age:.1f} days old (policy allows {limit:g})"
    return None


def version_manifest(v: VersionInfo) -> Manifest:
    """The model_signing manifest of ``v``'s files (their blob ids are their SHA-256)."""
    return manifest_for(
        v.artifact_kind, ((f.path, f.blob_id) for f in v.files), name=v.artifact_name
    )


def artifact_gate(v: VersionInfo, problems: Sequence[str]) -> GateResult:
    """Pass when the files hash to the artifact digest and ``problems`` (blob checks) is
    empty."""
    computed = artifact_digest(version_manifest(v))
    if computed != v.artifact_digest:
        return GateResult(
            "artifact",
            False,
            f"the version's files hash to {computed}, not the registered {v.artifact_digest}: "
            "the registry's records were altered",
        )
    if problems:
        shown = "; ".join(problems[:3]) + (
            f" (+{len(problems) - 3} more)" if len(problems) > 3 else ""
        )
        return GateResult("artifact", False, f"stored bytes fail authentication: {shown}")
    return GateResult(
        "artifact", True, f"{len(v.files)} file(s) authenticate and match {v.artifact_digest}"
    )


def _severity(name: str) -> Severity:
    try:
        return Severity.parse(name)
    except ConfigError:  # an unknown severity name counts as the worst (fail closed)
        return Severity.CRITICAL


def scan_gate(
    v: VersionInfo,
    scan: ScanInfo | None,
    policy: ScanPolicy,
    *,
    now: datetime,
    scanner_version: str,
) -> GateResult:
    """The latest scan of ``v`` (``None``: none recorded) against the policy."""
    hint = f"run `warden registry scan {v.model} v{v.number}`"
    if scan is None:
        return GateResult("scan", False, f"no scan recorded — {hint}")
    ev = (f"scan:{scan.id}",)
    if scan.artifact_digest != v.artifact_digest:
        return GateResult(
            "scan",
            False,
            f"stale: the latest scan is of other bytes ({scan.artifact_digest}) — {hint}",
            ev,
        )
    if scan.scanner_version != scanner_version:
        return GateResult(
            "scan",
            False,
            f"stale: scanned by an older scanner (Warden {scan.scanner_version}, running "
            f"{scanner_version}) — {hint}",
            ev,
        )
    stale = _stale_age(scan.created_at, now, policy.max_age_days, "latest scan")
    if stale:
        return GateResult("scan", False, f"{stale} — {hint}", ev)
    blocking = 0
    for name, count in scan.by_severity.items():
        if _severity(name) >= policy.fail_on:
            blocking += int(count)
    worst = scan.max_severity
    if worst is not None and blocking == 0 and _severity(worst) >= policy.fail_on:
        blocking = 1  # counts disagree with the worst severity: trust the worse reading
    if blocking:
        return GateResult(
            "scan",
            False,
            f"{blocking} finding(s) at or above {policy.fail_on} (worst: {worst}); fix the "
            f"artifact and register a new version",
            ev,
        )
    return GateResult(
        "scan",
        True,
        f"{scan.finding_count} finding(s), none at or above {policy.fail_on}",
        ev,
    )


def _covers(signed: Manifest, expected: Manifest) -> str | None:
    have, want = signed.digests(), expected.digests()
    if have == want:
        return None
    parts = []
    missing = sorted(set(want) - set(have))
    extra = sorted(set(have) - set(want))
    changed = sorted(n for n in set(have) & set(want) if have[n] != want[n])
    if missing:
        parts.append(f"does not cover {', '.join(missing[:3])}")
    if extra:
        parts.append(f"lists files the version lacks: {', '.join(extra[:3])}")
    if changed:
        parts.append(f"signs other bytes for {', '.join(changed[:3])}")
    return "; ".join(parts)


def signature_gate(
    v: VersionInfo, signatures: Sequence[SignatureInfo], policy: SignaturePolicy
) -> GateResult:
    """Pass when one of ``signatures`` verifies now with a trusted key and covers exactly
    ``v``'s files."""
    hint = f"sign it: `warden registry sign {v.model} v{v.number} --key KEY`"
    if not policy.trusted_keys:
        return GateResult(
            "signature",
            False,
            "no trusted keys in the policy — list public keys under [signature] trusted_keys",
            tuple(f"signature:{s.id}" for s in signatures),
        )
    if not signatures:
        return GateResult("signature", False, f"no signature recorded — {hint}")
    expected = version_manifest(v)
    trusted = {k.key_id: k for k in policy.trusted_keys}
    reasons: list[str] = []
    for sig in sorted(signatures, key=lambda s: s.id, reverse=True):
        key = trusted.get(sig.key_id)
        candidates = [key] if key is not None else list(policy.trusted_keys)
        last = f"signature:{sig.id} is by key {sig.key_id[:16]}…, which the policy does not trust"
        for candidate in candidates:
            try:
                statement, kid = open_bundle(sig.bundle.encode("utf-8"), candidate.key)
                signed = manifest_from_statement(statement)
            except SignatureError as exc:
                if key is not None:
                    last = f"signature:{sig.id} does not verify: {exc}"
                continue
            mismatch = _covers(signed, expected)
            if mismatch is not None:
                last = f"signature:{sig.id} (key {kid[:16]}…) {mismatch}"
                continue
            return GateResult(
                "signature",
                True,
                f"verified now with trusted key {candidate.path} ({kid[:16]}…); covers all "
                f"{len(expected.files)} file(s)",
                (f"signature:{sig.id}",),
            )
        reasons.append(last)
    shown = "; ".join(reasons[:3]) + (f" (+{len(reasons) - 3} more)" if len(reasons) > 3 else "")
    return GateResult(
        "signature",
        False,
        f"no valid signature by a trusted key: {shown}",
        tuple(f"signature:{s.id}" for s in signatures),
    )


def assessment_gate(
    v: VersionInfo, assessment: AssessmentInfo | None, policy: AssessmentPolicy, *, now: datetime
) -> GateResult:
    """The latest assessment of ``v`` (``None``: none recorded) against the policy."""
    hint = f"attach one: `warden registry attach-assessment {v.model} v{v.number} REPORT.json`"
    if assessment is None:
        return GateResult("assessment", False, f"no assessment recorded — {hint}")
    ev = (f"assessment:{assessment.id}",)
    if assessment.artifact_digest != v.artifact_digest:
        return GateResult(
            "assessment",
            False,
            f"stale: the latest assessment is of other bytes ({assessment.artifact_digest}) — "
            f"{hint}",
            ev,
        )
    stale = _stale_age(assessment.created_at, now, policy.max_age_days, "latest assessment")
    if stale:
        return GateResult("assessment", False, f"{stale} — {hint}", ev)
    failures: list[str] = []
    if policy.min_grade is not None and not _at_least(assessment.grade, policy.min_grade):
        failures.append(f"overall grade {assessment.grade} is below {policy.min_grade}")
    for threat, minimum in policy.threats.items():
        grade = assessment.threat_grades.get(threat)
        if grade is None:
            failures.append(f"{threat} required ({minimum}) but not evaluated")
        elif not _at_least(grade, minimum):
            failures.append(f"{threat} grade {grade} is below {minimum}")
    if failures:
        return GateResult("assessment", False, "; ".join(failures), ev)
    graded = ", ".join(f"{t} {g}" for t, g in sorted(assessment.threat_grades.items()))
    return GateResult(
        "assessment",
        True,
        f"overall {assessment.grade}" + (f" ({graded})" if graded else ""),
        ev,
    )


def evidence_snapshot(policy: Policy, results: Sequence[GateResult]) -> dict[str, Any]:
    """What an approval records: the policy it was judged by and every gate's result."""
    return {
        "policy": policy.to_dict(),
        "gates": [r.to_dict() for r in results],
        "failures": [r.line() for r in results if not r.passed],
    }
