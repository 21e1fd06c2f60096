"""Dependency audit: requirements parsing, installed distributions, matching, JSON and SARIF."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from jsonschema.protocols import Validator
from tests.supplychain.test_deps_osv import make_database

from warden.assess.finding import Severity
from warden.errors import ConfigError
from warden.supplychain.deps import (
    Location,
    Package,
    PackageSet,
    audit,
    audit_to_dict,
    audit_to_sarif,
    installed_packages,
    read_requirements,
)
from warden.supplychain.osv_db import OsvDatabase


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> Any:
    db = OsvDatabase.open(make_database(tmp_path_factory.mktemp("osvdb") / "osv"))
    yield db
    db.close()


# --- requirements files ----------------------------------------------------------------------

REQUIREMENTS = """\
# a comment line
--index-url https://example.invalid/simple
-r base.txt
Foo_Bar==1.1   # trailing comment
lastpkg==1.4 \\
    --hash=sha256:aaaa \\
    --hash=sha256:bbbb
requests>=2.0
loose
ranged==1.*
-e ./src/mine
./wheels/local-1.0-py3-none-any.whl
direct @ https://example.invalid/direct-1.0.tar.gz
old==1.0 ; python_version < "3"
newer==2.0 ; python_version >= "3"
exact===3.0
-c constraints.txt
--weird-option
"""


@pytest.fixture
def requirements(tmp_path: Path) -> Path:
    (tmp_path / "base.txt").write_text("multipkg==3.1.0\n\n# nothing else\n")
    path = tmp_path / "requirements.txt"
    path.write_text(REQUIREMENTS)
    return path


def test_read_requirements_pins_and_includes(requirements: Path) -> None:
    got = read_requirements(requirements)
    assert [(p.name, p.version) for p in got.packages] == [
        ("multipkg", "3.1.0"),
        ("Foo_Bar", "1.1"),
        ("lastpkg", "1.4"),
        ("newer", "2.0"),
        ("exact", "3.0"),
    ]
    lines = {p.name: p.location for p in got.packages}
    assert lines["multipkg"] == Location(str(requirements.parent / "base.txt"), 1)
    assert lines["Foo_Bar"] == Location(str(requirements), 4)
    assert lines["lastpkg"] == Location(str(requirements), 5)
    hashed = next(p for p in got.packages if p.name == "lastpkg")
    assert hashed.hashes == ("sha256:aaaa", "sha256:bbbb")


def test_read_requirements_warns_about_everything_it_cannot_audit(requirements: Path) -> None:
    warnings = read_requirements(requirements).warnings
    kinds = [(w.kind, w.location.line if w.location else None) for w in warnings]
    assert kinds == [
        ("unpinned", 8),
        ("unpinned", 9),
        ("unpinned", 10),
        ("editable", 11),
        ("direct-url", 12),
        ("direct-url", 13),
        ("marker-skipped", 14),
        ("ignored-option", 17),
        ("ignored-option", 18),
    ]
    assert "requests is unpinned (>=2.0)" in warnings[0].message
    assert "any version" in warnings[1].message


def test_read_requirements_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read requirements file"):
        read_requirements(tmp_path / "missing.txt")
    (tmp_path / "a.txt").write_text("-r b.txt\n")
    (tmp_path / "b.txt").write_text("--requirement=a.txt\n")
    with pytest.raises(ConfigError, match="includes itself"):
        read_requirements(tmp_path / "a.txt")
    (tmp_path / "c.txt").write_text("ok==1.0\n-r gone.txt\n")
    with pytest.raises(ConfigError, match=r"gone.txt \(included from"):
        read_requirements(tmp_path / "c.txt")
    (tmp_path / "d.txt").write_text("this is == not valid\n")
    with pytest.raises(ConfigError, match=r"d.txt:1: not a requirement"):
        read_requirements(tmp_path / "d.txt")


def _dist_info(root: Path, name: str, version: str, *requires: str) -> None:
    folder = root / f"{name.replace('-', '_')}-{version}.dist-info"
    folder.mkdir(parents=True)
    lines = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}"]
    lines += [f"Requires-Dist: {r}" for r in requires]
    (folder / "METADATA").write_text("\n".join(lines) + "\n")


def test_installed_packages_reads_distribution_metadata(tmp_path: Path) -> None:
    _dist_info(tmp_path / "site", "Foo_Bar", "1.0")
    _dist_info(tmp_path / "site", "prepkg", "2.0.0b1")
    _dist_info(tmp_path / "other", "foo-bar", "9.9")  # shadowed: the first on the path wins
    got = installed_packages([str(tmp_path / "site"), str(tmp_path / "other")])
    assert got.source == "installed"
    assert sorted((p.key, p.version) for p in got.packages) == [
        ("foo-bar", "1.0"),
        ("prepkg", "2.0.0b1"),
    ]
    assert all(p.location is None for p in got.packages)


# --- the audit -------------------------------------------------------------------------------


def _pkgs(*pairs: tuple[str, str]) -> PackageSet:
    return PackageSet("test", tuple(Package(n, v) for n, v in pairs))


AUDIT_CASES = [
    # (package, version, expected advisory ids, fixed_in)
    ("Foo_Bar", "1.1", {"PYSEC-2099-1"}, "1.2.0"),  # merged with its GHSA alias
    ("foo.bar", "1.2.0", set(), None),
    ("lastpkg", "1.4", {"PYSEC-2099-2"}, None),
    ("lastpkg", "1.5", set(), None),
    ("multipkg", "1.0.1", {"PYSEC-2099-3"}, "1.0.2"),
    ("multipkg", "2.0", set(), None),
    ("multipkg", "3.1.0", {"PYSEC-2099-3"}, "3.2.5"),
    ("multipkg", "6.0", {"PYSEC-2099-3"}, None),
    ("listpkg", "1.1", {"PYSEC-2099-4"}, None),
    ("listpkg", "1.0", set(), None),
    ("prepkg", "2.0.0b1", {"PYSEC-2099-6"}, "2.0.0rc2"),
    ("prepkg", "2.0.0", set(), None),
    ("gitpkg", "1.0", set(), None),
    ("nosev", "0.1", {"PYSEC-2099-7"}, None),
    ("left-pad", "1.0", set(), None),
]


@pytest.mark.parametrize(("name", "version", "ids", "fixed"), AUDIT_CASES)
def test_audit_matches_fixture_database(
    database: OsvDatabase, name: str, version: str, ids: set[str], fixed: str | None
) -> None:
    report = audit(_pkgs((name, version)), database)
    assert {v.id for v in report.vulnerabilities} == ids
    assert all(v.fixed_in == fixed for v in report.vulnerabilities)


def test_aliases_are_merged_keeping_the_best_known_severity(database: OsvDatabase) -> None:
    (vuln,) = audit(_pkgs(("foo-bar", "1.0")), database).vulnerabilities
    assert vuln.id == "PYSEC-2099-1"
    assert vuln.aliases == ("CVE-2099-0001", "GHSA-aaaa-bbbb-cccc")
    assert (vuln.severity, vuln.severity_label, vuln.cvss_score) == (
        Severity.CRITICAL,
        "cvss_v3 9.8",
        9.8,
    )


def test_unknown_severity_counts_as_medium(database: OsvDatabase) -> None:
    (vuln,) = audit(_pkgs(("nosev", "1.0")), database).vulnerabilities
    assert (vuln.severity, vuln.severity_label) == (Severity.MEDIUM, "unknown")


def test_report_orders_worst_first_and_gates_on_severity(database: OsvDatabase) -> None:
    report = audit(
        _pkgs(("multipkg", "1.0.1"), ("foo-bar", "1.0"), ("lastpkg", "1.1"), ("nosev", "1")),
        database,
    )
    assert [str(v.severity) for v in report.vulnerabilities] == [
        "critical",
        "medium",
        "medium",
        "low",
    ]
    assert len(report.at_or_above(Severity.HIGH)) == 1
    assert len(report.at_or_above(Severity.LOW)) == 4
    assert report.packages == 4


def test_unparseable_installed_version_is_a_warning(database: OsvDatabase) -> None:
    report = audit(_pkgs(("foo-bar", "1.0-local_build!!")), database)
    assert report.vulnerabilities == ()
    assert {w.kind for w in report.warnings} == {"range-unevaluated"}


def test_audit_to_dict(database: OsvDatabase, requirements: Path) -> None:
    report = audit(read_requirements(requirements), database)
    doc = json.loads(json.dumps(audit_to_dict(report)))
    assert doc["format"] == "warden-deps-audit-1"
    assert doc["packages_audited"] == 5
    assert doc["counts"]["critical"] == 1
    by_id = {v["id"]: v for v in doc["vulnerabilities"]}
    assert set(by_id) == {"PYSEC-2099-1", "PYSEC-2099-2", "PYSEC-2099-3"}
    assert by_id["PYSEC-2099-1"]["line"] == 4
    assert by_id["PYSEC-2099-1"]["url"] == "https://osv.dev/vulnerability/PYSEC-2099-1"
    assert by_id["PYSEC-2099-3"]["file"].endswith("base.txt")
    assert len(doc["warnings"]) == 9
    assert doc["database"]["advisories"] == 8


def test_sarif_validates_and_has_one_rule_per_advisory(
    database: OsvDatabase, requirements: Path, sarif_validator: Validator
) -> None:
    report = audit(read_requirements(requirements), database)
    log = audit_to_sarif(report)
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in sarif_validator.iter_errors(log)]
    assert errors == []
    run = log["runs"][0]
    rules = run["tool"]["driver"]["rules"]
    assert sorted(r["id"] for r in rules) == ["PYSEC-2099-1", "PYSEC-2099-2", "PYSEC-2099-3"]
    first = next(r for r in run["results"] if r["ruleId"] == "PYSEC-2099-1")
    assert rules[first["ruleIndex"]]["id"] == "PYSEC-2099-1"
    assert first["level"] == "error"
    assert first["properties"]["security-severity"] == "9.8"
    physical = first["locations"][0]["physicalLocation"]
    assert physical["region"]["startLine"] == 4
    assert physical["artifactLocation"]["uri"].endswith("requirements.txt")
    assert first["locations"][0]["logicalLocations"][0]["fullyQualifiedName"] == (
        "pypi:foo-bar@1.1"
    )
    notes = run["invocations"][0]["toolExecutionNotifications"]
    assert len(notes) == 9 and notes[0]["descriptor"]["id"] == "deps.unpinned"


def test_sarif_of_installed_packages_uses_logical_locations(
    database: OsvDatabase, sarif_validator: Validator
) -> None:
    log = audit_to_sarif(audit(_pkgs(("prepkg", "2.0.0a1")), database))
    assert sarif_validator.is_valid(log)
    (result,) = log["runs"][0]["results"]
    assert "physicalLocation" not in result["locations"][0]
    assert result["level"] == "warning"
    assert result["message"]["text"].startswith("prepkg 2.0.0a1 is affected by PYSEC-2099-6")
