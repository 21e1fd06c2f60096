"""OSV advisories: parsing, version-range evaluation and severity, as pure functions.

An OSV record (https://ossf.github.io/osv-schema/) names the packages it affects, each with
``ranges`` (a timeline of ``introduced`` / ``fixed`` / ``last_affected`` / ``limit`` events)
and an explicit ``versions`` list. :func:`match_version` decides whether one installed version
is affected exactly as the schema's *Evaluation* pseudocode says: a version is affected when it
is in the ``versions`` list or inside any range; inside a range means below one of its limits
(an implicit ``"*"`` when none is given) and, walking the events sorted by version, the last
event at or below it was an ``introduced``. Versions are compared as PEP 440 versions
(:class:`packaging.version.Version`), so pre-releases sort before their release. ``GIT``
ranges need the repository's commit graph and are ignored; ``ECOSYSTEM`` and ``SEMVER`` ranges
are evaluated.

Severity comes from, in order: a package-level ``severity`` / ``ecosystem_specific.severity`` /
``database_specific.severity``; the record's ``database_specific.severity`` (GitHub's
``LOW``/``MODERATE``/``HIGH``/``CRITICAL``); a CVSS v3 vector or score in ``severity[]``
(scored with :func:`cvss3_base_score`). Nothing usable gives ``unknown``, which counts as
medium.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from warden.assess.finding import Severity
from warden.errors import DataError

__all__ = [
    "ECOSYSTEM",
    "Advisory",
    "AffectedPackage",
    "Match",
    "RangeEvent",
    "VersionRange",
    "cvss3_base_score",
    "match_version",
    "normalize_name",
    "parse_advisory",
    "severity_from_score",
]

ECOSYSTEM = "PyPI"
"""The OSV ecosystem whose packages are indexed and audited."""

EventKind = Literal["introduced", "fixed", "last_affected", "limit"]
_EVENT_KINDS: tuple[EventKind, ...] = ("introduced", "fixed", "last_affected", "limit")
_EVALUATED_RANGES = frozenset({"ECOSYSTEM", "SEMVER"})

_RATINGS: dict[str, Severity] = {
    "NONE": Severity.INFO,
    "INFO": Severity.INFO,
    "LOW": Severity.LOW,
    "MODERATE": Severity.MEDIUM,
    "MEDIUM": Severity.MEDIUM,
    "HIGH": Severity.HIGH,
    "IMPORTANT": Severity.HIGH,
    "CRITICAL": Severity.CRITICAL,
}


def normalize_name(name: str) -> str:
    """PEP 503 normal form: lower case, runs of ``-``, ``_`` and ``.`` become one ``-``."""
    return str(canonicalize_name(name))


# --- the record ------------------------------------------------------------------------------


@dataclass(frozen=True)
class RangeEvent:
    """One point on a range's timeline."""

    kind: EventKind
    """``introduced``, ``fixed``, ``last_affected`` or ``limit``."""
    version: str
    """The version as written in the record (``"0"`` and ``"*"`` are special)."""


@dataclass(frozen=True)
class VersionRange:
    """One ``affected[].ranges[]`` entry."""

    type: str
    """``ECOSYSTEM``, ``SEMVER`` or ``GIT`` (only the first two are evaluated)."""
    events: tuple[RangeEvent, ...]
    """The events, in the record's order."""


@dataclass(frozen=True)
class AffectedPackage:
    """One ``affected[]`` entry of the PyPI ecosystem."""

    name: str
    """The package name, PEP 503 normalised."""
    ranges: tuple[VersionRange, ...]
    """Affected ranges."""
    versions: tuple[str, ...]
    """Explicitly listed affected versions."""
    severity: Severity | None = None
    """A package-level severity, when the record gives one (it then overrides the record's)."""
    severity_label: str | None = None
    """Where the package-level severity came from (``cvss_v3 7.5``, ``HIGH`` …)."""


@dataclass(frozen=True)
class Advisory:
    """An OSV vulnerability record, reduced to what an audit needs."""

    id: str
    """The record id (``PYSEC-2021-1``, ``GHSA-xxxx-xxxx-xxxx``)."""
    modified: str
    """When the record was last changed (RFC 3339)."""
    aliases: tuple[str, ...] = ()
    """Other ids of the same vulnerability (CVE ids among them)."""
    summary: str = ""
    """One line, plain text."""
    details: str = ""
    """Longer description (CommonMark)."""
    severity: Severity = Severity.MEDIUM
    """How bad; ``unknown`` severities are medium."""
    severity_label: str = "unknown"
    """Where :attr:`severity` came from: ``HIGH`` (database), ``cvss_v3 9.8`` or ``unknown``."""
    cvss_score: float | None = None
    """The CVSS v3 base score, when one could be computed."""
    affected: tuple[AffectedPackage, ...] = ()
    """Affected PyPI packages; other ecosystems are dropped."""
    references: tuple[str, ...] = ()
    """Reference URLs, advisories first."""
    withdrawn: str | None = None
    """When the record was withdrawn; a withdrawn record affects nothing."""
    other_ecosystems: int = 0
    """How many ``affected[]`` entries belonged to other ecosystems (dropped)."""

    def packages(self) -> frozenset[str]:
        """Normalised names of the PyPI packages this advisory affects."""
        return frozenset(a.name for a in self.affected)

    def for_package(self, name: str) -> tuple[AffectedPackage, ...]:
        """The ``affected[]`` entries for ``name`` (any spelling)."""
        canon = normalize_name(name)
        return tuple(a for a in self.affected if a.name == canon)


def _fail(where: str, message: str) -> DataError:
    return DataError(f"{where}: {message}")


def _string(doc: Mapping[str, Any], key: str, where: str, *, required: bool = False) -> str:
    value = doc.get(key)
    if value is None:
        if required:
            raise _fail(where, f"missing required string {key!r}")
        return ""
    if not isinstance(value, str) or (required and not value.strip()):
        raise _fail(where, f"{key!r} must be a non-empty string, got {type(value).__name__}")
    return value


def _list(doc: Mapping[str, Any], key: str, where: str) -> list[Any]:
    value = doc.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise _fail(where, f"{key!r} must be a list, got {type(value).__name__}")
    return value


def _strings(doc: Mapping[str, Any], key: str, where: str) -> tuple[str, ...]:
    items = _list(doc, key, where)
    if not all(isinstance(s, str) for s in items):
        raise _fail(where, f"{key!r} must be a list of strings")
    return tuple(items)


def _mapping(doc: Mapping[str, Any], key: str, where: str) -> Mapping[str, Any]:
    value = doc.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _fail(where, f"{key!r} must be an object, got {type(value).__name__}")
    return value


def _parse_range(raw: Any, where: str) -> VersionRange:
    if not isinstance(raw, dict):
        raise _fail(where, "a range must be an object")
    rtype = _string(raw, "type", where, required=True)
    events: list[RangeEvent] = []
    for j, ev in enumerate(_list(raw, "events", where)):
        at = f"{where}.events[{j}]"
        if not isinstance(ev, dict):
            raise _fail(at, "an event must be an object")
        kinds = [k for k in _EVENT_KINDS if k in ev]
        if len(kinds) != 1:
            raise _fail(at, f"an event needs exactly one of {', '.join(_EVENT_KINDS)}")
        kind = kinds[0]
        version = ev[kind]
        if not isinstance(version, str) or not version:
            raise _fail(at, f"{kind!r} must be a non-empty version string")
        events.append(RangeEvent(kind, version))
    if not events:
        raise _fail(where, "a range needs at least one event")
    if rtype in _EVALUATED_RANGES and not any(e.kind == "introduced" for e in events):
        raise _fail(where, "a range needs at least one 'introduced' event")
    return VersionRange(rtype, tuple(events))


def _rating(value: Any) -> Severity | None:
    if isinstance(value, str):
        return _RATINGS.get(value.strip().upper())
    return None


def _scored(entries: Sequence[Any], where: str) -> tuple[Severity, str, float] | None:
    """Severity from a ``severity[]`` list: the worst CVSS v3 entry that can be scored."""
    best: tuple[Severity, str, float] | None = None
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise _fail(f"{where}.severity[{i}]", "must be an object with type and score")
        stype, score = entry.get("type"), entry.get("score")
        if not isinstance(stype, str) or not isinstance(score, str):
            raise _fail(f"{where}.severity[{i}]", "type and score must be strings")
        if stype != "CVSS_V3":
            continue
        value = _cvss3_value(score)
        if value is None:
            continue
        rated = (severity_from_score(value), f"cvss_v3 {value:.1f}", value)
        if best is None or value > best[2]:
            best = rated
    return best


def _cvss3_value(score: str) -> float | None:
    text = score.strip()
    try:
        value = float(text)
    except ValueError:
        try:
            return cvss3_base_score(text)
        except ValueError:
            return None
    return value if math.isfinite(value) and 0.0 <= value <= 10.0 else None


def _package_severity(entry: Mapping[str, Any], where: str) -> tuple[Severity, str] | None:
    for key in ("ecosystem_specific", "database_specific"):
        raw = _mapping(entry, key, where).get("severity")
        rating = _rating(raw)
        if rating is not None:
            return rating, str(raw).strip().upper()
    scored = _scored(_list(entry, "severity", where), where)
    return (scored[0], scored[1]) if scored else None


def parse_advisory(doc: Any, where: str = "advisory") -> Advisory:
    """Validate one OSV JSON record and keep what an audit needs.

    Only ``affected[]`` entries of the PyPI ecosystem are kept. Raises
    :class:`~warden.errors.DataError` naming ``where`` and the bad field when the record does
    not follow the OSV schema (missing ``id`` or ``modified``, an event with two kinds, a
    range without ``introduced``, wrong types).
    """
    if not isinstance(doc, dict):
        raise _fail(where, f"an OSV record is a JSON object, got {type(doc).__name__}")
    ident = _string(doc, "id", where, required=True)
    where = f"{where} ({ident})" if where != ident else where
    modified = _string(doc, "modified", where, required=True)
    affected: list[AffectedPackage] = []
    others = 0
    for i, entry in enumerate(_list(doc, "affected", where)):
        at = f"{where}.affected[{i}]"
        if not isinstance(entry, dict):
            raise _fail(at, "must be an object")
        package = _mapping(entry, "package", at)
        ranges = tuple(
            _parse_range(r, f"{at}.ranges[{j}]") for j, r in enumerate(_list(entry, "ranges", at))
        )
        versions = _strings(entry, "versions", at)
        if not package:
            continue
        ecosystem = _string(package, "ecosystem", at, required=True)
        name = _string(package, "name", at, required=True)
        if ecosystem.split(":", 1)[0] != ECOSYSTEM:
            others += 1
            continue
        pkg_sev = _package_severity(entry, at)
        affected.append(
            AffectedPackage(
                name=normalize_name(name),
                ranges=ranges,
                versions=versions,
                severity=pkg_sev[0] if pkg_sev else None,
                severity_label=pkg_sev[1] if pkg_sev else None,
            )
        )
    severity, label, score = Severity.MEDIUM, "unknown", None
    db_raw = _mapping(doc, "database_specific", where).get("severity")
    db_rating = _rating(db_raw)
    scored = _scored(_list(doc, "severity", where), where)
    if db_rating is not None:
        severity = db_rating
        label = str(db_raw).strip().upper()
        score = scored[2] if scored else None
    elif scored is not None:
        severity, label, score = scored
    refs = []
    for i, ref in enumerate(_list(doc, "references", where)):
        if not isinstance(ref, dict) or not isinstance(ref.get("url"), str):
            raise _fail(f"{where}.references[{i}]", "must be an object with a url string")
        refs.append((ref.get("type") != "ADVISORY", ref["url"]))
    withdrawn = _string(doc, "withdrawn", where) or None
    return Advisory(
        id=ident,
        modified=modified,
        aliases=_strings(doc, "aliases", where),
        summary=_string(doc, "summary", where).strip(),
        details=_string(doc, "details", where),
        severity=severity,
        severity_label=label,
        cvss_score=score,
        affected=tuple(affected),
        references=tuple(url for _, url in sorted(refs, key=lambda r: r[0])),
        withdrawn=withdrawn,
        other_ecosystems=others,
    )


# --- version matching ------------------------------------------------------------------------


@dataclass(frozen=True)
class Match:
    """Whether a version is affected by one ``affected[]`` entry, and what could not be judged."""

    affected: bool
    """True when the version is listed or falls inside an evaluated range."""
    fixed: tuple[str, ...] = ()
    """``fixed`` versions of the entry's ranges that are above the version, smallest first."""
    unevaluated: tuple[str, ...] = ()
    """Why a range could not be evaluated (a version that is not PEP 440)."""


def _version(text: str) -> Version:
    return Version(text)


def _sort_key(event: RangeEvent) -> tuple[int, Version]:
    if event.kind == "introduced" and event.version == "0":
        return (0, Version("0"))
    if event.kind == "limit" and "*" in event.version:
        return (2, Version("0"))
    return (1, _version(event.version))


def _before_limits(v: Version, events: Iterable[RangeEvent]) -> bool:
    limits = [e for e in events if e.kind == "limit"]
    if not limits:
        return True  # an implicit {"limit": "*"}
    return any("*" in e.version or v < _version(e.version) for e in limits)


def _in_range(v: Version, events: Sequence[RangeEvent]) -> bool:
    """The OSV *Evaluation* pseudocode for one range (raises InvalidVersion)."""
    if not _before_limits(v, events):
        return False
    vulnerable = False
    for e in sorted(events, key=_sort_key):
        if e.kind == "introduced" and (e.version == "0" or v >= _version(e.version)):
            vulnerable = True
        elif (e.kind == "fixed" and v >= _version(e.version)) or (
            e.kind == "last_affected" and v > _version(e.version)
        ):
            vulnerable = False
    return vulnerable


def _listed(version: str, parsed: Version | None, versions: Iterable[str]) -> bool:
    for listed in versions:
        if listed == version:
            return True
        if parsed is not None:
            try:
                if Version(listed) == parsed:
                    return True
            except InvalidVersion:
                continue
    return False


def match_version(entry: AffectedPackage, version: str) -> Match:
    """Is ``version`` of ``entry.name`` affected? (OSV ``IsVulnerable`` for one entry.)

    ``GIT`` and unknown range types are skipped. A range whose versions (or the installed
    version) are not PEP 440 cannot be ordered; it is reported in ``Match.unevaluated``
    instead of being silently treated as "not affected".
    """
    try:
        parsed: Version | None = Version(version)
    except InvalidVersion:
        parsed = None
    problems: list[str] = []
    affected = _listed(version, parsed, entry.versions)
    fixed: set[Version] = set()
    for r in entry.ranges:
        if r.type not in _EVALUATED_RANGES:
            continue
        if parsed is None:
            problems.append(f"installed version {version!r} is not PEP 440; {r.type} range skipped")
            continue
        try:
            if _in_range(parsed, r.events):
                affected = True
            fixed.update(
                fv
                for fv in (_version(e.version) for e in r.events if e.kind == "fixed")
                if fv > parsed
            )
        except InvalidVersion as exc:
            problems.append(f"{r.type} range has a version that is not PEP 440 ({exc})")
    return Match(
        affected=affected,
        fixed=tuple(str(v) for v in sorted(fixed)),
        unevaluated=tuple(problems),
    )


# --- CVSS ------------------------------------------------------------------------------------

_CVSS3_WEIGHTS: dict[str, dict[str, float]] = {
    "AV": {"N": 0.85, "A": 0.62, "L": 0.55, "P": 0.2},
    "AC": {"L": 0.77, "H": 0.44},
    "UI": {"N": 0.85, "R": 0.62},
    "C": {"H": 0.56, "L": 0.22, "N": 0.0},
    "I": {"H": 0.56, "L": 0.22, "N": 0.0},
    "A": {"H": 0.56, "L": 0.22, "N": 0.0},
}
_CVSS3_PR = {"U": {"N": 0.85, "L": 0.62, "H": 0.27}, "C": {"N": 0.85, "L": 0.68, "H": 0.5}}
_CVSS3_PREFIX = re.compile(r"^CVSS:3\.[01]/")


def _roundup(value: float) -> float:
    """CVSS v3.1 ``Roundup``: the smallest number with one decimal that is >= ``value``."""
    as_int = round(value * 100_000)
    if as_int % 10_000 == 0:
        return as_int / 100_000.0
    return (math.floor(as_int / 10_000) + 1) / 10.0


def cvss3_base_score(vector: str) -> float:
    """The CVSS v3.0/v3.1 base score of a vector such as ``CVSS:3.1/AV:N/AC:L/.../A:H``.

    Follows the CVSS v3.1 specification, section 7.1 (base metrics only; temporal and
    environmental metrics in the vector are ignored). Raises ``ValueError`` for anything else.
    """
    if not _CVSS3_PREFIX.match(vector):
        raise ValueError(f"not a CVSS v3 vector: {vector!r}")
    metrics: dict[str, str] = {}
    for part in vector.split("/")[1:]:
        key, sep, value = part.partition(":")
        if not sep or key in metrics:
            raise ValueError(f"malformed CVSS v3 vector: {vector!r}")
        metrics[key] = value
    try:
        scope = metrics["S"]
        pr = _CVSS3_PR[scope][metrics["PR"]]
        w = {k: table[metrics[k]] for k, table in _CVSS3_WEIGHTS.items()}
    except KeyError as exc:
        raise ValueError(f"CVSS v3 vector {vector!r} lacks or misspells {exc}") from None
    iss = 1 - (1 - w["C"]) * (1 - w["I"]) * (1 - w["A"])
    impact = 6.42 * iss if scope == "U" else 7.52 * (iss - 0.029) - 3.25 * (iss - 0.02) ** 15
    exploitability = 8.22 * w["AV"] * w["AC"] * pr * w["UI"]
    if impact <= 0:
        return 0.0
    if scope == "U":
        return _roundup(min(impact + exploitability, 10.0))
    return _roundup(min(1.08 * (impact + exploitability), 10.0))


def severity_from_score(score: float) -> Severity:
    """CVSS qualitative rating: 0 none (info), <4 low, <7 medium, <9 high, else critical."""
    if score <= 0.0:
        return Severity.INFO
    if score < 4.0:
        return Severity.LOW
    if score < 7.0:
        return Severity.MEDIUM
    if score < 9.0:
        return Severity.HIGH
    return Severity.CRITICAL
