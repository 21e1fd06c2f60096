"""The approval policy: what evidence a version needs before it may be approved.

A TOML file (default ``WARDEN_HOME/policy.toml``; ``WARDEN_POLICY`` or ``--policy`` names
another), parsed strictly: an unknown section or key, a bad severity or grade letter, a missing
key file is a :class:`~warden.errors.ConfigError` naming it. ::

    [scan]
    fail_on = "low"          # a finding at or above this severity blocks approval
    max_age_days = 30        # older scans are stale (optional)

    [signature]
    trusted_keys = ["keys/release.pub"]   # PEM public keys, relative to this file

    [assessment]
    max_age_days = 90        # optional
    min_grade = "C"          # overall scorecard grade, A (best) to F (optional)

    [assessment.threats]     # per OWASP ML threat minimum grades (optional)
    ML01 = "B"
    ML05 = "C"

No file means :func:`default_policy`, which still fails closed: a clean scan (nothing at or
above ``low``), a signature by a trusted key — and with no trusted keys configured the
signature gate refuses every version — and an assessment on record.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from warden.assess.finding import OWASP_ML_TOP10, Severity
from warden.errors import ConfigError
from warden.supplychain.keys import PublicKey, key_id, load_public_key, public_pem

__all__ = [
    "GRADE_ORDER",
    "AssessmentPolicy",
    "Policy",
    "ScanPolicy",
    "SignaturePolicy",
    "TrustedKey",
    "default_policy",
    "grade_at_least",
    "load_policy",
    "parse_policy",
]

GRADE_ORDER: Final[tuple[str, ...]] = ("A", "B", "C", "D", "F")
"""Scorecard letters, best first (``N/A``, nothing evaluated, meets no minimum)."""


def grade_at_least(grade: str, minimum: str) -> bool:
    """Whether ``grade`` is ``minimum`` or better (``N/A`` or an unknown letter never is)."""
    if grade not in GRADE_ORDER:
        return False
    return GRADE_ORDER.index(grade) <= GRADE_ORDER.index(minimum)


@dataclass(frozen=True)
class TrustedKey:
    """A public key whose signatures the policy accepts."""

    path: str
    """Where it was read from (as written in the policy, or ``<given>``)."""
    key_id: str
    """SHA-256 of the public key PEM (model_signing's key hint)."""
    key: PublicKey = field(repr=False, compare=False)
    """The key itself."""

    @classmethod
    def load(cls, source: PublicKey | str | Path, *, label: str | None = None) -> TrustedKey:
        """A trusted key from a PEM file or a key object."""
        key = load_public_key(source)
        if label is None:
            label = str(source) if isinstance(source, str | Path) else "<given>"
        return cls(path=label or "<given>", key_id=key_id(key), key=key)

    def pem(self) -> str:
        """The public key PEM."""
        return public_pem(self.key).decode("ascii")


@dataclass(frozen=True)
class ScanPolicy:
    """The scan gate's thresholds."""

    fail_on: Severity = Severity.LOW
    """A finding at or above this severity blocks approval."""
    max_age_days: float | None = None
    """Scans older than this are stale; ``None``: no age limit."""


@dataclass(frozen=True)
class SignaturePolicy:
    """The signature gate's trust."""

    trusted_keys: tuple[TrustedKey, ...] = ()
    """Keys whose signature approves; empty: every signature gate fails (fail closed)."""


@dataclass(frozen=True)
class AssessmentPolicy:
    """The assessment gate's thresholds."""

    max_age_days: float | None = None
    """Assessments older than this are stale; ``None``: no age limit."""
    min_grade: str | None = None
    """The lowest acceptable overall grade (``A``–``F``); ``None``: any grade."""
    threats: Mapping[str, str] = field(default_factory=dict)
    """OWASP ML threat id → lowest acceptable grade; a threat listed here must be graded."""

    def __post_init__(self) -> None:
        if self.min_grade is not None and self.min_grade not in GRADE_ORDER:
            raise ConfigError(
                f"min_grade {self.min_grade!r}: expected one of {', '.join(GRADE_ORDER)}"
            )
        for threat, grade in self.threats.items():
            if threat not in OWASP_ML_TOP10:
                raise ConfigError(
                    f"assessment.threats: unknown threat {threat!r}; expected OWASP ML ids "
                    f"{', '.join(OWASP_ML_TOP10)}"
                )
            if grade not in GRADE_ORDER:
                raise ConfigError(
                    f"assessment.threats.{threat} = {grade!r}: expected one of "
                    f"{', '.join(GRADE_ORDER)}"
                )
        object.__setattr__(self, "threats", dict(sorted(self.threats.items())))


@dataclass(frozen=True)
class Policy:
    """Everything the approval gates check."""

    scan: ScanPolicy = field(default_factory=ScanPolicy)
    """Scan gate settings."""
    signature: SignaturePolicy = field(default_factory=SignaturePolicy)
    """Signature gate settings."""
    assessment: AssessmentPolicy = field(default_factory=AssessmentPolicy)
    """Assessment gate settings."""
    source: str = "<default policy>"
    """Where the policy came from (a path, or ``<default policy>``)."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (recorded with every approval as its evidence)."""
        return {
            "source": self.source,
            "scan": {"fail_on": str(self.scan.fail_on), "max_age_days": self.scan.max_age_days},
            "signature": {
                "trusted_keys": [
                    {"path": k.path, "key_id": k.key_id} for k in self.signature.trusted_keys
                ]
            },
            "assessment": {
                "max_age_days": self.assessment.max_age_days,
                "min_grade": self.assessment.min_grade,
                "threats": dict(self.assessment.threats),
            },
        }


def default_policy() -> Policy:
    """The policy used when there is no policy file: clean scan, trusted signature (none
    trusted yet: fails), an assessment on record."""
    return Policy()


_SECTIONS: Final = {"scan", "signature", "assessment"}
_KEYS: Final = {
    "scan": {"fail_on", "max_age_days"},
    "signature": {"trusted_keys"},
    "assessment": {"max_age_days", "min_grade", "threats"},
}


def _table(doc: Mapping[str, Any], name: str, where: str) -> Mapping[str, Any]:
    value = doc.get(name, {})
    if not isinstance(value, Mapping):
        raise ConfigError(f"{where}: [{name}] must be a table, found {type(value).__name__}")
    unknown = sorted(set(value) - _KEYS[name])
    if unknown:
        raise ConfigError(
            f"{where}: unknown key(s) in [{name}]: {', '.join(unknown)}; expected "
            f"{', '.join(sorted(_KEYS[name]))}"
        )
    return value


def _age(table: Mapping[str, Any], section: str, where: str) -> float | None:
    value = table.get("max_age_days")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ConfigError(
            f"{where}: {section}.max_age_days must be a positive number of days, found {value!r}"
        )
    return float(value)


def _grade(value: object, key: str, where: str) -> str:
    if not isinstance(value, str) or value.strip().upper() not in GRADE_ORDER:
        raise ConfigError(
            f"{where}: {key} = {value!r}: expected a grade letter, one of {', '.join(GRADE_ORDER)}"
        )
    return value.strip().upper()


def parse_policy(doc: Mapping[str, Any], *, base: Path, where: str = "policy") -> Policy:
    """A :class:`Policy` from a parsed TOML document; key paths are relative to ``base``."""
    unknown = sorted(set(doc) - _SECTIONS)
    if unknown:
        raise ConfigError(
            f"{where}: unknown section(s) {', '.join(unknown)}; expected "
            f"{', '.join(sorted(_SECTIONS))}"
        )
    scan = _table(doc, "scan", where)
    fail_on = scan.get("fail_on", "low")
    if not isinstance(fail_on, str):
        raise ConfigError(f"{where}: scan.fail_on must be a severity name, found {fail_on!r}")
    try:
        severity = Severity.parse(fail_on)
    except ConfigError as exc:
        raise ConfigError(f"{where}: scan.fail_on: {exc}") from None

    signature = _table(doc, "signature", where)
    keys: list[TrustedKey] = []
    if "trusted_keys" in signature:
        paths = signature["trusted_keys"]
        if not isinstance(paths, list) or not all(isinstance(p, str) and p for p in paths):
            raise ConfigError(f"{where}: signature.trusted_keys must be a list of PEM file paths")
        if not paths:
            raise ConfigError(
                f"{where}: signature.trusted_keys is empty; approval needs a signature by a "
                "trusted key: list at least one public key file"
            )
        for p in paths:
            path = Path(p) if Path(p).is_absolute() else base / p
            try:
                keys.append(TrustedKey.load(path, label=p))
            except ConfigError as exc:
                raise ConfigError(f"{where}: signature.trusted_keys: {exc}") from None

    assessment = _table(doc, "assessment", where)
    min_grade = assessment.get("min_grade")
    threats = assessment.get("threats", {})
    if not isinstance(threats, Mapping):
        raise ConfigError(f'{where}: [assessment.threats] must be a table of THREAT = "GRADE"')
    try:
        assessment_policy = AssessmentPolicy(
            max_age_days=_age(assessment, "assessment", where),
            min_grade=None if min_grade is None else _grade(min_grade, "min_grade", where),
            threats={
                str(t).upper(): _grade(g, f"assessment.threats.{t}", where)
                for t, g in threats.items()
            },
        )
    except ConfigError as exc:
        if str(exc).startswith(where):
            raise
        raise ConfigError(f"{where}: {exc}") from None
    return Policy(
        scan=ScanPolicy(fail_on=severity, max_age_days=_age(scan, "scan", where)),
        signature=SignaturePolicy(trusted_keys=tuple(keys)),
        assessment=assessment_policy,
        source=where,
    )


def load_policy(path: str | Path | None, *, required: bool = True) -> Policy:
    """The policy in the TOML file at ``path``.

    ``None``, or a missing file when ``required`` is false (the home's default
    ``policy.toml``), gives :func:`default_policy`. A missing file that was named explicitly is
    a :class:`ConfigError`.
    """
    if path is None:
        return default_policy()
    p = Path(path)
    if not p.exists() and not required:
        return default_policy()
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"policy file {p} not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"policy file {p}: cannot read it: {exc}") from exc
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"policy file {p}: not valid TOML: {exc}") from exc
    return parse_policy(doc, base=p.parent, where=str(p))
