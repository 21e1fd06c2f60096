"""Dependency audit: which installed or pinned Python packages have known vulnerabilities.

Packages come from the running environment (:func:`installed_packages`, via
:mod:`importlib.metadata`) or from a pip requirements file (:func:`read_requirements`: only
``name==version`` pins can be audited; anything else is a warning, never silently dropped).
:func:`audit` looks each one up in a local OSV database
(:class:`~warden.supplychain.osv_db.OsvDatabase`, filled by ``warden deps update-db``),
decides which advisories affect the exact version with the OSV evaluation rules
(:func:`~warden.supplychain.osv.match_version`), merges advisories that are aliases of each
other, and returns an :class:`AuditReport`: JSON with :func:`audit_to_dict`, SARIF 2.1.0 with
:func:`audit_to_sarif`.

Nothing here touches the network, and nothing is imported or executed from the packages.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path, PurePath
from typing import Any
from urllib.parse import quote

from packaging.markers import UndefinedEnvironmentName
from packaging.requirements import InvalidRequirement, Requirement
from packaging.version import InvalidVersion, Version

from warden.assess.finding import Severity
from warden.errors import ConfigError
from warden.supplychain.osv import Advisory, match_version, normalize_name
from warden.supplychain.osv_db import OsvDatabase

__all__ = [
    "AuditReport",
    "AuditWarning",
    "Location",
    "Package",
    "PackageSet",
    "Vulnerability",
    "audit",
    "audit_to_dict",
    "audit_to_sarif",
    "installed_packages",
    "read_requirements",
]

AUDIT_FORMAT = "warden-deps-audit-1"
"""``format`` tag of the JSON document :func:`audit_to_dict` writes."""

_MAX_INCLUDE_DEPTH = 16


@dataclass(frozen=True)
class Location:
    """A line of a requirements file."""

    file: str
    """The file, as the user named it (or relative to the including file)."""
    line: int
    """1-based line number where the requirement starts."""

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass(frozen=True)
class Package:
    """One distribution at one exact version."""

    name: str
    """The name as written (installed metadata or requirements file)."""
    version: str
    """The exact version."""
    location: Location | None = None
    """The requirements line it came from; ``None`` for an installed distribution."""
    hashes: tuple[str, ...] = ()
    """``--hash=alg:hex`` values given for it in a requirements file (artifact hashes)."""

    @property
    def key(self) -> str:
        """PEP 503 normalised name."""
        return normalize_name(self.name)


@dataclass(frozen=True)
class AuditWarning:
    """Something that could not be audited, and why. Never silently dropped."""

    kind: str
    """``unpinned``, ``editable``, ``direct-url``, ``marker-skipped``, ``ignored-option``,
    ``invalid-version`` or ``range-unevaluated``."""
    message: str
    """One line for a person."""
    location: Location | None = None
    """Where, for a requirements file."""
    package: str | None = None
    """The package concerned, when known."""

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "kind": self.kind,
            "message": self.message,
            "package": self.package,
            "file": self.location.file if self.location else None,
            "line": self.location.line if self.location else None,
        }


@dataclass(frozen=True)
class PackageSet:
    """What to audit: packages, plus the warnings collecting them produced."""

    source: str
    """``installed`` or the requirements file path."""
    packages: tuple[Package, ...]
    """The packages, in file (or discovery) order."""
    warnings: tuple[AuditWarning, ...] = ()
    """Lines or distributions that cannot be audited."""


# --- collecting packages ---------------------------------------------------------------------


def installed_packages(path: Sequence[str] | None = None) -> PackageSet:
    """The distributions importable from ``path`` (default ``sys.path``), one per name.

    As with :mod:`importlib`, the first distribution found for a name wins. A distribution
    whose metadata has no name or version is reported as a warning.
    """
    found: dict[str, Package] = {}
    warnings: list[AuditWarning] = []
    dists = metadata.distributions() if path is None else metadata.distributions(path=list(path))
    for dist in dists:
        name = dist.metadata["Name"] if dist.metadata else None
        version = dist.version if dist.metadata else None
        if not name or not version:
            warnings.append(
                AuditWarning(
                    "invalid-version",
                    f"a distribution at {getattr(dist, '_path', '?')} has no name or version",
                )
            )
            continue
        found.setdefault(normalize_name(name), Package(name=name, version=version))
    return PackageSet("installed", tuple(found.values()), tuple(warnings))


_COMMENT = re.compile(r"(^|\s)#.*$")
_TRAILING_OPTION = re.compile(r"\s+(?=--?[A-Za-z])")
_HASH = re.compile(r"--hash[=\s]+(\S+)")
_IGNORED_OPTIONS = frozenset(
    {
        "-i",
        "--index-url",
        "--extra-index-url",
        "--no-index",
        "-f",
        "--find-links",
        "--trusted-host",
        "--pre",
        "--prefer-binary",
        "--no-binary",
        "--only-binary",
        "--require-hashes",
        "--use-feature",
        "--hash",
    }
)


def _logical_lines(text: str) -> Iterable[tuple[int, str]]:
    """(first line number, text) with ``\\`` continuations joined and comments removed."""
    start = 0
    parts: list[str] = []
    for number, raw in enumerate(text.splitlines(), 1):
        if not parts:
            start = number
        if raw.endswith("\\"):
            parts.append(raw[:-1])
            continue
        parts.append(raw)
        line = _COMMENT.sub("", " ".join(parts)).strip()
        parts = []
        if line:
            yield start, line
    if parts:
        line = _COMMENT.sub("", " ".join(parts)).strip()
        if line:
            yield start, line


def _option(line: str) -> tuple[str, str]:
    """``-r file``, ``-rfile``, ``--requirement=file`` or ``--requirement file`` as a pair."""
    if line.startswith("--"):
        m = re.match(r"(--[A-Za-z][\w-]*)(?:[=\s]+(.*))?$", line)
        if m is None:
            return line, ""
        return m.group(1), (m.group(2) or "").strip()
    return line[:2], line[2:].strip()


def _looks_like_path(text: str) -> bool:
    return (
        "://" in text
        or text.startswith((".", "/", "~"))
        or text.endswith((".whl", ".zip", ".tar.gz", ".tgz"))
        or "/" in text
        or "\\" in text
    )


def _pinned_version(req: Requirement) -> str | None:
    specs = list(req.specifier)
    if len(specs) == 1 and specs[0].operator in ("==", "===") and "*" not in specs[0].version:
        return specs[0].version
    return None


def read_requirements(path: str | os.PathLike[str]) -> PackageSet:
    """The pinned packages of a pip requirements file, following ``-r`` includes.

    Comments, blank lines, ``\\`` continuations, index/find-links options and per-line
    ``--hash`` options are tolerated; environment markers are evaluated for this interpreter
    (a line whose marker is false is skipped with a ``marker-skipped`` warning). Lines that
    cannot be audited (unpinned, editable, direct URLs or paths, constraints files) become
    warnings. A missing file, an include cycle or a line that is not a requirement is a
    :class:`~warden.errors.ConfigError`.
    """
    packages: list[Package] = []
    warnings: list[AuditWarning] = []
    _read_into(Path(path), str(path), packages, warnings, stack=())
    return PackageSet(str(path), tuple(packages), tuple(warnings))


def _read_into(
    path: Path,
    shown: str,
    packages: list[Package],
    warnings: list[AuditWarning],
    stack: tuple[Path, ...],
) -> None:
    try:
        resolved = path.resolve()
        text = path.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        where = f" (included from {stack[-1]})" if stack else ""
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ConfigError(f"cannot read requirements file {shown}{where}: {reason}") from exc
    if resolved in stack or len(stack) >= _MAX_INCLUDE_DEPTH:
        raise ConfigError(f"requirements file {shown} includes itself (directly or not)")
    for number, line in _logical_lines(text):
        loc = Location(shown, number)
        if line.startswith("-"):
            opt, value = _option(line)
            if opt in ("-r", "--requirement"):
                if not value:
                    raise ConfigError(f"{loc}: {opt} needs a file name")
                child = Path(value) if Path(value).is_absolute() else path.parent / value
                child_shown = (
                    value if Path(value).is_absolute() else str(PurePath(shown).parent / value)
                )
                _read_into(child, child_shown, packages, warnings, (*stack, resolved))
            elif opt in ("-c", "--constraint"):
                warnings.append(
                    AuditWarning(
                        "ignored-option",
                        f"constraints file {value} not audited (constraints install nothing)",
                        loc,
                    )
                )
            elif opt in ("-e", "--editable"):
                warnings.append(
                    AuditWarning(
                        "editable",
                        f"editable requirement {value} has no fixed version; cannot audit",
                        loc,
                    )
                )
            elif opt not in _IGNORED_OPTIONS:
                warnings.append(
                    AuditWarning("ignored-option", f"option {opt} ignored by the audit", loc)
                )
            continue
        _requirement_line(line, loc, packages, warnings)


def _requirement_line(
    line: str, loc: Location, packages: list[Package], warnings: list[AuditWarning]
) -> None:
    spec, *rest = _TRAILING_OPTION.split(line, maxsplit=1)
    hashes = tuple(_HASH.findall(rest[0])) if rest else ()
    try:
        req = Requirement(spec)
    except InvalidRequirement as exc:
        if _looks_like_path(spec):
            warnings.append(
                AuditWarning(
                    "direct-url",
                    f"{spec} is a path or URL, not a pinned package; cannot audit",
                    loc,
                )
            )
            return
        raise ConfigError(f"{loc}: not a requirement: {spec!r} ({exc})") from exc
    if req.marker is not None:
        try:
            applies = req.marker.evaluate()
        except UndefinedEnvironmentName:
            applies = True
        if not applies:
            warnings.append(
                AuditWarning(
                    "marker-skipped",
                    f"{req.name}: marker '{req.marker}' is false here; not audited",
                    loc,
                    req.name,
                )
            )
            return
    if req.url:
        warnings.append(
            AuditWarning(
                "direct-url",
                f"{req.name} comes from a direct URL, not a pinned version; cannot audit",
                loc,
                req.name,
            )
        )
        return
    version = _pinned_version(req)
    if version is None:
        shown = str(req.specifier) or "any version"
        warnings.append(
            AuditWarning(
                "unpinned",
                f"{req.name} is unpinned ({shown}), cannot audit; pin it with =="
                " (pip freeze / pip-compile)",
                loc,
                req.name,
            )
        )
        return
    packages.append(Package(name=req.name, version=version, location=loc, hashes=hashes))


# --- the audit -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Vulnerability:
    """One advisory (with its aliases merged) that affects one package version."""

    package: Package
    """The affected package."""
    id: str
    """The advisory id shown (``GHSA-…``, ``PYSEC-…``)."""
    aliases: tuple[str, ...]
    """Other ids of the same vulnerability (CVE ids, merged advisories)."""
    summary: str
    """One line."""
    severity: Severity
    """Severity used for ``--fail-on`` (``unknown`` counts as medium)."""
    severity_label: str
    """Where it came from: ``HIGH`` (database), ``cvss_v3 7.5`` or ``unknown``."""
    fixed_in: str | None
    """The smallest fixed version above the installed one; ``None`` when there is no fix."""
    cvss_score: float | None = None
    """CVSS v3 base score, when known."""
    references: tuple[str, ...] = ()
    """Reference URLs."""

    @property
    def url(self) -> str:
        """The advisory's page on osv.dev."""
        return f"https://osv.dev/vulnerability/{quote(self.id)}"

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "package": self.package.name,
            "version": self.package.version,
            "id": self.id,
            "aliases": list(self.aliases),
            "summary": self.summary,
            "severity": str(self.severity),
            "severity_source": self.severity_label,
            "cvss_score": self.cvss_score,
            "fixed_in": self.fixed_in,
            "url": self.url,
            "references": list(self.references),
            "file": self.package.location.file if self.package.location else None,
            "line": self.package.location.line if self.package.location else None,
        }


@dataclass(frozen=True)
class AuditReport:
    """The result of :func:`audit`."""

    source: str
    """``installed`` or the requirements file."""
    packages: int
    """How many packages were audited."""
    vulnerabilities: tuple[Vulnerability, ...]
    """Every affected package/advisory pair, worst first."""
    warnings: tuple[AuditWarning, ...]
    """What could not be audited."""
    database: Mapping[str, Any] = field(default_factory=dict)
    """The OSV database's import metadata (source, date, counts)."""

    def at_or_above(self, threshold: Severity) -> list[Vulnerability]:
        """Vulnerabilities whose severity is at least ``threshold``."""
        return [v for v in self.vulnerabilities if v.severity >= threshold]


def _version_key(text: str) -> tuple[int, Version | str]:
    try:
        return (0, Version(text))
    except InvalidVersion:
        return (1, text)


def _severity_for(adv: Advisory, entries: Sequence[Any]) -> tuple[Severity, str]:
    rated = [(e.severity, e.severity_label) for e in entries if e.severity is not None]
    if rated:
        return max(rated, key=lambda r: r[0])
    return adv.severity, adv.severity_label


def _merge(found: list[Vulnerability]) -> list[Vulnerability]:
    """Merge advisories of one package that name each other as aliases (PYSEC vs GHSA)."""
    groups: list[list[Vulnerability]] = []
    for vuln in found:
        ids = {vuln.id, *vuln.aliases}
        hits = [g for g in groups if any(ids & {v.id, *v.aliases} for v in g)]
        merged = [vuln]
        for g in hits:
            merged.extend(g)
            groups.remove(g)
        groups.append(merged)
    out: list[Vulnerability] = []
    for group in groups:
        best = min(group, key=lambda v: (v.severity_label == "unknown", -v.severity, v.id))
        ids = {i for v in group for i in (v.id, *v.aliases)} - {best.id}
        fixes = [v.fixed_in for v in group if v.fixed_in]
        refs = dict.fromkeys(r for v in group for r in v.references)
        out.append(
            Vulnerability(
                package=best.package,
                id=best.id,
                aliases=tuple(sorted(ids)),
                summary=best.summary or next((v.summary for v in group if v.summary), ""),
                severity=best.severity,
                severity_label=best.severity_label,
                fixed_in=min(fixes, key=_version_key) if fixes else None,
                cvss_score=best.cvss_score,
                references=tuple(refs),
            )
        )
    return out


def audit(packages: PackageSet, database: OsvDatabase) -> AuditReport:
    """Match every package of ``packages`` against ``database``."""
    vulns: list[Vulnerability] = []
    warnings = list(packages.warnings)
    for pkg in packages.packages:
        found: list[Vulnerability] = []
        for adv in database.advisories_for(pkg.name):
            entries = adv.for_package(pkg.name)
            affected = False
            fixed: list[str] = []
            problems: list[str] = []
            for entry in entries:
                m = match_version(entry, pkg.version)
                affected |= m.affected
                fixed.extend(m.fixed)
                problems.extend(m.unevaluated)
            for problem in dict.fromkeys(problems):
                warnings.append(
                    AuditWarning(
                        "range-unevaluated",
                        f"{pkg.name} {pkg.version} vs {adv.id}: {problem}",
                        pkg.location,
                        pkg.name,
                    )
                )
            if not affected:
                continue
            severity, label = _severity_for(adv, entries)
            found.append(
                Vulnerability(
                    package=pkg,
                    id=adv.id,
                    aliases=adv.aliases,
                    summary=adv.summary,
                    severity=severity,
                    severity_label=label,
                    fixed_in=min(fixed, key=_version_key) if fixed else None,
                    cvss_score=adv.cvss_score,
                    references=adv.references,
                )
            )
        vulns.extend(_merge(found))
    vulns.sort(key=lambda v: (-v.severity, v.package.key, v.id))
    return AuditReport(
        source=packages.source,
        packages=len(packages.packages),
        vulnerabilities=tuple(vulns),
        warnings=tuple(warnings),
        database=database.stats(),
    )


# --- output ----------------------------------------------------------------------------------


def audit_to_dict(report: AuditReport) -> dict[str, Any]:
    """The JSON document for ``report`` (``format`` = ``warden-deps-audit-1``)."""
    from warden import __version__

    counts = {str(s): 0 for s in Severity}
    for v in report.vulnerabilities:
        counts[str(v.severity)] += 1
    return {
        "format": AUDIT_FORMAT,
        "warden_version": __version__,
        "source": report.source,
        "database": dict(report.database),
        "packages_audited": report.packages,
        "counts": counts,
        "vulnerabilities": [v.to_dict() for v in report.vulnerabilities],
        "warnings": [w.to_dict() for w in report.warnings],
    }


def _sarif_location(pkg: Package) -> dict[str, Any]:
    from warden.report.sarif import sarif_uri

    location: dict[str, Any] = {
        "logicalLocations": [
            {
                "name": pkg.name,
                "fullyQualifiedName": f"pypi:{pkg.key}@{pkg.version}",
                "kind": "package",
            }
        ]
    }
    if pkg.location is not None:
        location["physicalLocation"] = {
            "artifactLocation": {"uri": sarif_uri(pkg.location.file)},
            "region": {"startLine": pkg.location.line},
        }
    return location


def audit_to_sarif(report: AuditReport) -> dict[str, Any]:
    """The SARIF 2.1.0 log of ``report``: one rule per advisory, one result per package hit.

    Results point at the requirements line (physical location) when there is one, and always
    name the distribution (logical location, kind ``package``). Warnings become tool execution
    notifications. ``security-severity`` is the CVSS score when known, else the house score of
    the severity.
    """
    from warden import __version__
    from warden.report.sarif import SECURITY_SEVERITY, sarif_document, sarif_level, sarif_uri

    rules: list[dict[str, Any]] = []
    index: dict[str, int] = {}
    results: list[dict[str, Any]] = []
    for v in report.vulnerabilities:
        score = f"{v.cvss_score:.1f}" if v.cvss_score is not None else SECURITY_SEVERITY[v.severity]
        if v.id not in index:
            index[v.id] = len(rules)
            title = v.summary or f"Known vulnerability {v.id}"
            rules.append(
                {
                    "id": v.id,
                    "name": "vulnerable-dependency",
                    "shortDescription": {"text": title},
                    "fullDescription": {
                        "text": f"{title} (aliases: {', '.join(v.aliases) or 'none'})."
                    },
                    "helpUri": v.url,
                    "help": {
                        "text": "Upgrade the package to a fixed version, or remove it.",
                        "markdown": f"**Remediation.** Upgrade to a fixed version. See [{v.id}]"
                        f"({v.url}).",
                    },
                    "defaultConfiguration": {"level": sarif_level(v.severity)},
                    "properties": {
                        "tags": ["security", "dependency", "vulnerability", *v.aliases],
                        "security-severity": score,
                        "precision": "high",
                    },
                }
            )
        fix = f"upgrade to {v.fixed_in}" if v.fixed_in else "no fixed version is known"
        digest = hashlib.sha256(f"{v.id}\0{v.package.key}\0{v.package.version}".encode())
        results.append(
            {
                "ruleId": v.id,
                "ruleIndex": index[v.id],
                "kind": "fail",
                "level": sarif_level(v.severity) if v.severity > Severity.INFO else "note",
                "message": {
                    "text": f"{v.package.name} {v.package.version} is affected by {v.id}"
                    f"{' (' + v.summary + ')' if v.summary else ''}; {fix}."
                },
                "locations": [_sarif_location(v.package)],
                "partialFingerprints": {"wardenDependency/v1": digest.hexdigest()},
                "properties": {
                    "package": v.package.name,
                    "version": v.package.version,
                    "severity": str(v.severity),
                    "severity_source": v.severity_label,
                    "security-severity": score,
                    "fixed_in": v.fixed_in,
                    "aliases": list(v.aliases),
                },
            }
        )
    notifications = [
        {
            "level": "warning",
            "message": {"text": w.message},
            "descriptor": {"id": f"deps.{w.kind}"},
            **(
                {
                    "locations": [
                        {
                            "physicalLocation": {
                                "artifactLocation": {"uri": sarif_uri(w.location.file)},
                                "region": {"startLine": w.location.line},
                            }
                        }
                    ]
                }
                if w.location
                else {}
            ),
        }
        for w in report.warnings
    ]
    return sarif_document(
        rules,
        results,
        automation_id="warden/deps-audit/",
        invocation={"executionSuccessful": True, "toolExecutionNotifications": notifications},
        properties={
            "source": report.source,
            "packages_audited": report.packages,
            "database": dict(report.database),
        },
        version=__version__,
    )
