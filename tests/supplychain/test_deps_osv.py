"""OSV records, version ranges (the OSV spec's Evaluation semantics) and the local database."""

from __future__ import annotations

import json
import sqlite3
import struct
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from warden.assess.finding import Severity
from warden.errors import ConfigError, DataError
from warden.supplychain.osv import (
    AffectedPackage,
    RangeEvent,
    VersionRange,
    cvss3_base_score,
    match_version,
    normalize_name,
    parse_advisory,
    severity_from_score,
)
from warden.supplychain.osv_db import DB_FILENAME, ImportLimits, OsvDatabase, import_osv_zip

# --- a fixture database ----------------------------------------------------------------------

MODIFIED = "2024-01-02T03:04:05Z"


def advisory(
    ident: str,
    package: str,
    events: list[dict[str, str]] | None = None,
    *,
    versions: list[str] | None = None,
    ecosystem: str = "PyPI",
    range_type: str = "ECOSYSTEM",
    **extra: Any,
) -> dict[str, Any]:
    """One OSV record affecting ``package``."""
    affected: dict[str, Any] = {"package": {"ecosystem": ecosystem, "name": package}}
    if events is not None:
        affected["ranges"] = [{"type": range_type, "events": events}]
    if versions is not None:
        affected["versions"] = versions
    return {"id": ident, "modified": MODIFIED, "affected": [affected], **extra}


CRITICAL_VECTOR = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"

ADVISORIES: dict[str, dict[str, Any]] = {
    # introduced/fixed, name spelled Foo_Bar; scored from its CVSS vector (9.8 → critical)
    "PYSEC-2099-1": advisory(
        "PYSEC-2099-1",
        "Foo_Bar",
        [{"introduced": "0"}, {"fixed": "1.2.0"}],
        aliases=["CVE-2099-0001"],
        summary="Foo_Bar runs code from a crafted header",
        severity=[{"type": "CVSS_V3", "score": CRITICAL_VECTOR}],
    ),
    # the same vulnerability from GitHub: merged with the PYSEC record by alias
    "GHSA-aaaa-bbbb-cccc": advisory(
        "GHSA-aaaa-bbbb-cccc",
        "foo-bar",
        [{"introduced": "0"}, {"fixed": "1.2.0"}],
        aliases=["CVE-2099-0001", "PYSEC-2099-1"],
        summary="Code execution in foo-bar",
        database_specific={"severity": "HIGH"},
    ),
    # last_affected: 1.4 is the last vulnerable version
    "PYSEC-2099-2": advisory(
        "PYSEC-2099-2",
        "lastpkg",
        [{"introduced": "1.0"}, {"last_affected": "1.4"}],
        summary="last_affected range",
        database_specific={"severity": "MODERATE"},
    ),
    # multiple ranges, two in one events list and a second range object
    "PYSEC-2099-3": {
        "id": "PYSEC-2099-3",
        "modified": MODIFIED,
        "summary": "multiple ranges",
        "database_specific": {"severity": "LOW"},
        "affected": [
            {
                "package": {"ecosystem": "PyPI", "name": "multipkg"},
                "ranges": [
                    {
                        "type": "ECOSYSTEM",
                        "events": [
                            {"introduced": "1.0.0"},
                            {"fixed": "1.0.2"},
                            {"introduced": "3.0.0"},
                            {"fixed": "3.2.5"},
                        ],
                    },
                    {"type": "ECOSYSTEM", "events": [{"introduced": "5.0"}]},
                ],
            }
        ],
    },
    # explicit versions only
    "PYSEC-2099-4": advisory(
        "PYSEC-2099-4", "listpkg", None, versions=["0.9", "1.1"], summary="versions list"
    ),
    # withdrawn: never reported
    "PYSEC-2099-5": advisory(
        "PYSEC-2099-5", "foo-bar", [{"introduced": "0"}], withdrawn="2024-02-01T00:00:00Z"
    ),
    # pre-releases
    "PYSEC-2099-6": advisory(
        "PYSEC-2099-6",
        "prepkg",
        [{"introduced": "2.0.0a1"}, {"fixed": "2.0.0rc2"}],
        summary="pre-release range",
        severity=[{"type": "CVSS_V3", "score": "5.3"}],
    ),
    # GIT range only: cannot be evaluated without the repository, ignored
    "GHSA-gggg-gggg-gggg": advisory(
        "GHSA-gggg-gggg-gggg",
        "gitpkg",
        [{"introduced": "a" * 40}, {"fixed": "b" * 40}],
        range_type="GIT",
    ),
    # another ecosystem only
    "GHSA-npm0-npm0-npm0": advisory(
        "GHSA-npm0-npm0-npm0", "left-pad", [{"introduced": "0"}], ecosystem="npm"
    ),
    # no severity at all: unknown, counted as medium; no fix
    "PYSEC-2099-7": advisory("PYSEC-2099-7", "nosev", [{"introduced": "0"}]),
}


def make_osv_zip(path: Path, records: Mapping[str, Any]) -> Path:
    """Write ``records`` (OSV dicts, or raw bytes) as ``<key>.json`` members of a zip."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, record in records.items():
            data = record if isinstance(record, bytes) else json.dumps(record).encode()
            zf.writestr(name if "." in name else f"{name}.json", data)
    return path


def make_database(folder: Path) -> Path:
    """Import :data:`ADVISORIES` into ``folder``; return the folder."""
    import_osv_zip(make_osv_zip(folder.parent / "all.zip", ADVISORIES), folder)
    return folder


@pytest.fixture
def db_dir(tmp_path: Path) -> Path:
    return make_database(tmp_path / "osv")


# --- version ranges --------------------------------------------------------------------------


def _entry(
    *events: tuple[str, str], versions: tuple[str, ...] = (), rtype: str = "ECOSYSTEM"
) -> AffectedPackage:
    evs = tuple(RangeEvent(k, v) for k, v in events)  # type: ignore[arg-type]
    ranges = (VersionRange(rtype, evs),) if evs else ()
    return AffectedPackage("pkg", ranges, versions)


FIXED = _entry(("introduced", "0"), ("fixed", "1.0.2"))
UNSORTED = _entry(("fixed", "1.0.2"), ("introduced", "0"))
MULTI = _entry(
    ("introduced", "1.0.0"), ("fixed", "1.0.2"), ("introduced", "3.0.0"), ("fixed", "3.2.5")
)
LAST = _entry(("introduced", "0"), ("last_affected", "2.1.214"))
OPEN = _entry(("introduced", "1.0"))
LIMIT = _entry(("introduced", "0"), ("limit", "2.0"))
STAR = _entry(("introduced", "1.0"), ("limit", "*"))
PRE = _entry(("introduced", "2.0.0a1"), ("fixed", "2.0.0rc2"))
LISTED = _entry(versions=("1.1", "1.3"))
BOTH = AffectedPackage("pkg", FIXED.ranges, ("3.0",))
GIT = _entry(("introduced", "a" * 40), ("fixed", "b" * 40), rtype="GIT")

RANGE_CASES = [
    # introduced 0 / fixed: everything before the fix, pre-releases of the fix included
    (FIXED, "0.0.1", True),
    (FIXED, "1.0.1", True),
    (FIXED, "1.0.2rc1", True),
    (FIXED, "1.0.2", False),
    (FIXED, "2.0", False),
    # events are sorted before evaluation
    (UNSORTED, "1.0.1", True),
    (UNSORTED, "1.0.2", False),
    # two intervals in one range: [1.0.0, 1.0.2) and [3.0.0, 3.2.5)
    (MULTI, "0.9", False),
    (MULTI, "1.0.0", True),
    (MULTI, "1.0.1", True),
    (MULTI, "1.0.2", False),
    (MULTI, "2.5", False),
    (MULTI, "3.0.0", True),
    (MULTI, "3.2.4", True),
    (MULTI, "3.2.5", False),
    (MULTI, "4.0", False),
    # last_affected is itself affected; anything above is not
    (LAST, "2.1.213", True),
    (LAST, "2.1.214", True),
    (LAST, "2.1.214.post1", False),
    (LAST, "2.1.215", False),
    # no fix: affected from introduced on
    (OPEN, "0.9", False),
    (OPEN, "1.0", True),
    (OPEN, "99.0", True),
    # limit: versions at or above every limit are outside the range
    (LIMIT, "1.9", True),
    (LIMIT, "2.0", False),
    (LIMIT, "3.0", False),
    (STAR, "0.5", False),
    (STAR, "100", True),
    # pre-releases order before their release (PEP 440)
    (PRE, "1.9", False),
    (PRE, "2.0.0a0", False),
    (PRE, "2.0.0a1", True),
    (PRE, "2.0.0b3", True),
    (PRE, "2.0.0rc1", True),
    (PRE, "2.0.0rc2", False),
    (PRE, "2.0.0", False),
    # explicit versions compare as PEP 440 versions
    (LISTED, "1.1", True),
    (LISTED, "1.1.0", True),
    (LISTED, "1.2", False),
    (LISTED, "1.3", True),
    # a version is affected when listed OR in a range
    (BOTH, "0.5", True),
    (BOTH, "3.0", True),
    (BOTH, "2.0", False),
    # GIT ranges are not evaluated
    (GIT, "1.0", False),
]


@pytest.mark.parametrize(("entry", "version", "expected"), RANGE_CASES)
def test_match_version_follows_osv_evaluation(
    entry: AffectedPackage, version: str, expected: bool
) -> None:
    assert match_version(entry, version).affected is expected


def test_fixed_versions_are_those_above_the_installed_one() -> None:
    assert match_version(MULTI, "1.0.1").fixed == ("1.0.2", "3.2.5")
    assert match_version(MULTI, "3.1").fixed == ("3.2.5",)
    assert match_version(LAST, "1.0").fixed == ()


def test_unparseable_versions_are_reported_not_passed() -> None:
    bad_range = _entry(("introduced", "0"), ("fixed", "not a version!"))
    m = match_version(bad_range, "1.0")
    assert not m.affected
    assert m.unevaluated and "PEP 440" in m.unevaluated[0]
    legacy = match_version(FIXED, "1.0-legacy_build!x")
    assert legacy.unevaluated and "not PEP 440" in legacy.unevaluated[0]
    assert match_version(_entry(versions=("weird-1",)), "weird-1").affected


# --- severity --------------------------------------------------------------------------------

CVSS_CASES = [
    ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", 9.8),
    ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H", 10.0),
    ("CVSS:3.0/AV:N/AC:H/PR:N/UI:N/S:C/C:H/I:N/A:N", 6.8),
    ("CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H", 7.8),
    ("CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:C/C:L/I:L/A:N", 6.1),
    ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H", 7.5),
    ("CVSS:3.1/AV:P/AC:H/PR:H/UI:R/S:U/C:L/I:N/A:N", 1.6),
    ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:N", 0.0),
    ("CVSS:3.1/AV:N/AC:L/PR:L/UI:N/S:C/C:H/I:H/A:H/E:P", 9.9),
]


@pytest.mark.parametrize(("vector", "score"), CVSS_CASES)
def test_cvss3_base_score_matches_reference_values(vector: str, score: float) -> None:
    assert cvss3_base_score(vector) == score


@pytest.mark.parametrize(
    "vector",
    [
        "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N",
        "AV:N/AC:L",
        "CVSS:3.1/AV:N",
    ],
)
def test_cvss3_base_score_rejects_other_vectors(vector: str) -> None:
    with pytest.raises(ValueError, match="CVSS"):
        cvss3_base_score(vector)


@pytest.mark.parametrize(
    ("score", "severity"),
    [
        (0.0, Severity.INFO),
        (3.9, Severity.LOW),
        (4.0, Severity.MEDIUM),
        (7.0, Severity.HIGH),
        (9.0, Severity.CRITICAL),
    ],
)
def test_severity_from_score_uses_cvss_ratings(score: float, severity: Severity) -> None:
    assert severity_from_score(score) is severity


def test_advisory_severity_sources() -> None:
    crit = parse_advisory(ADVISORIES["PYSEC-2099-1"])
    assert (crit.severity, crit.severity_label, crit.cvss_score) == (
        Severity.CRITICAL,
        "cvss_v3 9.8",
        9.8,
    )
    ghsa = parse_advisory(ADVISORIES["GHSA-aaaa-bbbb-cccc"])
    assert (ghsa.severity, ghsa.severity_label) == (Severity.HIGH, "HIGH")
    moderate = parse_advisory(ADVISORIES["PYSEC-2099-2"])
    assert moderate.severity is Severity.MEDIUM
    scored = parse_advisory(ADVISORIES["PYSEC-2099-6"])
    assert (scored.severity, scored.cvss_score) == (Severity.MEDIUM, 5.3)
    unknown = parse_advisory(ADVISORIES["PYSEC-2099-7"])
    assert (unknown.severity, unknown.severity_label) == (Severity.MEDIUM, "unknown")
    v4_only = advisory(
        "X-1", "p", [{"introduced": "0"}], severity=[{"type": "CVSS_V4", "score": "CVSS:4.0/AV:N"}]
    )
    assert parse_advisory(v4_only).severity_label == "unknown"


def test_package_level_severity_is_kept() -> None:
    doc = advisory("X-2", "p", [{"introduced": "0"}])
    doc["affected"][0]["ecosystem_specific"] = {"severity": "CRITICAL"}
    entry = parse_advisory(doc).affected[0]
    assert (entry.severity, entry.severity_label) == (Severity.CRITICAL, "CRITICAL")


# --- parsing ---------------------------------------------------------------------------------


def test_parse_keeps_pypi_packages_normalised() -> None:
    adv = parse_advisory(ADVISORIES["PYSEC-2099-1"])
    assert adv.packages() == frozenset({"foo-bar"})
    assert adv.for_package("FOO.bar") == adv.affected
    assert normalize_name("Foo__Bar.baz") == "foo-bar-baz"
    npm = parse_advisory(ADVISORIES["GHSA-npm0-npm0-npm0"])
    assert (npm.affected, npm.other_ecosystems) == ((), 1)


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ([1, 2], "JSON object"),
        ({"modified": MODIFIED}, "missing required string 'id'"),
        ({"id": "X"}, "'modified'"),
        ({"id": "X", "modified": MODIFIED, "affected": {"a": 1}}, "must be a list"),
        (advisory("X", "p", [{"introduced": "0", "fixed": "1"}]), "exactly one of"),
        (advisory("X", "p", [{"fixed": "1"}]), "at least one 'introduced'"),
        (advisory("X", "p", [{"introduced": 0}]), "non-empty version string"),
        (advisory("X", "p", [], versions=[1]), "at least one event"),
        (advisory("X", "p", None, versions=[1]), "list of strings"),
        ({**advisory("X", "p", None), "aliases": "CVE-1"}, "'aliases' must be a list"),
        ({**advisory("X", "p", None), "severity": [{"type": "CVSS_V3"}]}, "type and score"),
    ],
)
def test_parse_rejects_malformed_records(doc: Any, message: str) -> None:
    with pytest.raises(DataError, match=message):
        parse_advisory(doc)


# --- the database ----------------------------------------------------------------------------


def test_import_counts_and_lookup_by_any_spelling(tmp_path: Path) -> None:
    source = make_osv_zip(tmp_path / "all.zip", ADVISORIES)
    report = import_osv_zip(source, tmp_path / "osv")
    assert report.advisories == 8  # 10 records - 1 withdrawn - 1 npm-only
    assert (report.withdrawn, report.other_ecosystems, report.malformed) == (1, 1, 0)
    assert report.packages == 7
    with OsvDatabase.open(tmp_path / "osv") as db:
        ids = {a.id for a in db.advisories_for("Foo_Bar")}
        assert ids == {"PYSEC-2099-1", "GHSA-aaaa-bbbb-cccc"}  # the withdrawn one is gone
        assert {a.id for a in db.advisories_for("foo.BAR")} == ids
        assert db.advisories_for("not-there") == []
        assert db.stats()["advisories"] == 8
        assert db.stats()["source"] == "all.zip"


def test_malformed_members_are_skipped_and_counted(tmp_path: Path) -> None:
    records: dict[str, Any] = {
        "PYSEC-2099-1": ADVISORIES["PYSEC-2099-1"],
        "broken.json": b"{not json",
        "bad-event.json": advisory("X", "p", [{"introduced": "0", "fixed": "1"}]),
        "notes.txt": b"\xff\xfe binary",
    }
    report = import_osv_zip(make_osv_zip(tmp_path / "mixed.zip", records), tmp_path / "osv")
    assert (report.advisories, report.malformed) == (1, 3)
    assert any("broken.json" in p for p in report.problems)
    assert any("exactly one of" in p for p in report.problems)


def test_a_zip_of_other_json_is_refused(tmp_path: Path) -> None:
    source = make_osv_zip(tmp_path / "x.zip", {"a": {"hello": "world"}, "b": [1, 2]})
    with pytest.raises(DataError, match=r"none of its 2 member\(s\) is an OSV advisory"):
        import_osv_zip(source, tmp_path / "osv")
    assert not (tmp_path / "osv" / DB_FILENAME).exists()


def test_a_zip_without_pypi_advisories_is_refused(tmp_path: Path) -> None:
    source = make_osv_zip(tmp_path / "npm.zip", {"n": ADVISORIES["GHSA-npm0-npm0-npm0"]})
    with pytest.raises(DataError, match="no current PyPI advisory"):
        import_osv_zip(source, tmp_path / "osv")


def test_a_file_that_is_not_a_zip_is_refused(tmp_path: Path) -> None:
    source = tmp_path / "all.zip"
    source.write_bytes(b"this is not a zip archive at all")
    with pytest.raises(DataError, match="not a zip archive"):
        import_osv_zip(source, tmp_path / "osv")


@pytest.mark.parametrize(
    "name", ["../evil.json", "/etc/evil.json", "a/../../evil.json", "C:evil.json"]
)
def test_member_names_that_climb_out_refuse_the_archive(tmp_path: Path, name: str) -> None:
    source = make_osv_zip(tmp_path / "t.zip", {name: ADVISORIES["PYSEC-2099-1"]})
    with pytest.raises(DataError, match="climbs out"):
        import_osv_zip(source, tmp_path / "osv")
    assert not (tmp_path / "evil.json").exists()


def test_an_oversized_member_is_refused(tmp_path: Path) -> None:
    source = make_osv_zip(tmp_path / "big.zip", {"big": b" " * (2 << 20)})
    with pytest.raises(DataError, match="cap for one advisory"):
        import_osv_zip(source, tmp_path / "osv", limits=ImportLimits(max_member_bytes=1 << 20))


def test_a_high_ratio_member_is_refused_as_a_bomb(tmp_path: Path) -> None:
    source = make_osv_zip(tmp_path / "bomb.zip", {"bomb": b"\x00" * (4 << 20)})
    with pytest.raises(DataError, match="zip bomb"):
        import_osv_zip(source, tmp_path / "osv")


def test_a_bomb_whose_header_lies_about_its_size_is_refused(tmp_path: Path) -> None:
    source = make_osv_zip(tmp_path / "liar.zip", {"liar": b"\x00" * (4 << 20)})
    raw = bytearray(source.read_bytes())
    for signature, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        at = raw.index(signature)
        raw[at + offset : at + offset + 4] = struct.pack("<I", 100)  # declared size: 100 bytes
    source.write_bytes(bytes(raw))
    with pytest.raises(DataError, match=r"zip bomb|damaged"):
        import_osv_zip(source, tmp_path / "osv")


def test_total_size_and_member_count_caps(tmp_path: Path) -> None:
    source = make_osv_zip(tmp_path / "all.zip", ADVISORIES)
    with pytest.raises(DataError, match="max_total_bytes"):
        import_osv_zip(source, tmp_path / "osv", limits=ImportLimits(max_total_bytes=1000))
    with pytest.raises(DataError, match="member cap"):
        import_osv_zip(source, tmp_path / "osv", limits=ImportLimits(max_members=3))
    with pytest.raises(ConfigError, match="positive"):
        ImportLimits(max_ratio=0)


def test_update_is_atomic_and_a_failed_import_keeps_the_old_database(tmp_path: Path) -> None:
    folder = make_database(tmp_path / "osv")
    reader = OsvDatabase.open(folder)
    newer = {
        **ADVISORIES["PYSEC-2099-7"],
        "id": "PYSEC-2100-1",
        "affected": [
            {
                "package": {"ecosystem": "PyPI", "name": "newpkg"},
                "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}]}],
            }
        ],
    }
    import_osv_zip(make_osv_zip(tmp_path / "new.zip", {"n": newer}), folder)
    assert [a.id for a in reader.advisories_for("nosev")] == ["PYSEC-2099-7"]  # old snapshot
    reader.close()
    with OsvDatabase.open(folder) as db:
        assert db.advisories_for("nosev") == []
        assert [a.id for a in db.advisories_for("newpkg")] == ["PYSEC-2100-1"]
    bad = tmp_path / "bad.zip"
    bad.write_bytes(b"garbage")
    with pytest.raises(DataError):
        import_osv_zip(bad, folder)
    with OsvDatabase.open(folder) as db:
        assert [a.id for a in db.advisories_for("newpkg")] == ["PYSEC-2100-1"]
    assert sorted(p.name for p in folder.iterdir()) == [DB_FILENAME]  # no temp files left


def test_duplicate_ids_keep_the_latest_modified(tmp_path: Path) -> None:
    old = advisory("PYSEC-1", "dup", [{"introduced": "0"}], summary="old")
    new = {
        **advisory("PYSEC-1", "dup", [{"introduced": "0"}], summary="new"),
        "modified": "2025-01-01T00:00:00Z",
    }
    report = import_osv_zip(
        make_osv_zip(tmp_path / "d.zip", {"b/new.json": new, "a/old.json": old}), tmp_path / "osv"
    )
    assert (report.advisories, report.duplicates) == (1, 1)
    with OsvDatabase.open(tmp_path / "osv") as db:
        assert [a.summary for a in db.advisories_for("dup")] == ["new"]


def test_opening_a_missing_or_foreign_database_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"no OSV database at .*warden deps update-db"):
        OsvDatabase.open(tmp_path / "nowhere")
    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / DB_FILENAME).write_bytes(b"not sqlite" * 100)
    with pytest.raises(ConfigError, match="not a Warden OSV database"):
        OsvDatabase.open(junk)
    other = tmp_path / "other"
    other.mkdir()
    con = sqlite3.connect(other / DB_FILENAME)
    con.executescript(
        "CREATE TABLE meta (key TEXT, value TEXT); INSERT INTO meta VALUES ('format', 'x');"
    )
    con.commit()
    con.close()
    with pytest.raises(ConfigError, match="expected 'warden-osv-1'"):
        OsvDatabase.open(other)
