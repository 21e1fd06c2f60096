"""The policy file: strict parsing, defaults that fail closed."""

from __future__ import annotations

from pathlib import Path

import pytest

from warden.assess.finding import Severity
from warden.errors import ConfigError
from warden.registry.policy import default_policy, grade_at_least, load_policy
from warden.supplychain.keys import generate_key

EXAMPLE = """
[scan]
fail_on = "medium"
max_age_days = 30

[signature]
trusted_keys = ["keys/release.pub"]

[assessment]
max_age_days = 90
min_grade = "c"

[assessment.threats]
ML01 = "B"
ML05 = "C"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "policy.toml"
    path.write_text(text)
    return path


@pytest.fixture
def release_key(tmp_path: Path) -> str:
    return generate_key("ed25519", tmp_path / "keys" / "release", tmp_path / "keys" / "release.pub")


def test_full_example_parses(tmp_path: Path, release_key: str) -> None:
    p = load_policy(write(tmp_path, EXAMPLE))
    assert p.scan.fail_on is Severity.MEDIUM and p.scan.max_age_days == 30
    assert [k.key_id for k in p.signature.trusted_keys] == [release_key]
    assert p.signature.trusted_keys[0].path == "keys/release.pub"
    assert p.assessment.min_grade == "C" and p.assessment.max_age_days == 90
    assert dict(p.assessment.threats) == {"ML01": "B", "ML05": "C"}
    assert p.source == str(tmp_path / "policy.toml")
    doc = p.to_dict()
    assert doc["signature"]["trusted_keys"][0]["key_id"] == release_key
    assert doc["scan"]["fail_on"] == "medium"


def test_the_documented_example_is_this_one(release_key: str) -> None:
    docs = Path(__file__).parents[2] / "docs" / "registry.md"
    assert EXAMPLE.strip() in docs.read_text(), "docs/registry.md shows the policy example"


def test_default_policy_fails_closed() -> None:
    p = default_policy()
    assert p.scan.fail_on is Severity.LOW
    assert p.signature.trusted_keys == ()
    assert p.assessment.min_grade is None and not p.assessment.threats


def test_missing_file(tmp_path: Path) -> None:
    assert load_policy(tmp_path / "absent.toml", required=False) == default_policy()
    assert load_policy(None) == default_policy()
    with pytest.raises(ConfigError, match=r"policy file .*absent\.toml not found"):
        load_policy(tmp_path / "absent.toml")


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("[scans]\nfail_on='low'", r"unknown section\(s\) scans"),
        ("[scan]\nfail_on='low'\nmax_age=3", r"unknown key\(s\) in \[scan\]: max_age"),
        ("[scan]\nfail_on='severe'", r"scan\.fail_on: unknown severity 'severe'"),
        ("[scan]\nmax_age_days=0", r"scan\.max_age_days must be a positive number"),
        ("[scan]\nmax_age_days=true", r"scan\.max_age_days must be a positive number"),
        ("[assessment]\nmin_grade='E'", r"min_grade = 'E': expected a grade letter"),
        ("[assessment]\nmin_grade=3", r"min_grade = 3: expected a grade letter"),
        ("[assessment.threats]\nML01='Z'", r"assessment\.threats\.ML01 = 'Z'"),
        ("[assessment.threats]\nML11='B'", r"unknown threat 'ML11'"),
        ("[assessment]\nthreats=['ML01']", r"\[assessment\.threats\] must be a table"),
        ("[signature]\ntrusted_keys=[]", r"trusted_keys is empty"),
        ("[signature]\ntrusted_keys='k.pub'", r"trusted_keys must be a list"),
        ("[signature]\ntrusted_keys=['nope.pub']", r"trusted_keys: .*nope\.pub"),
        ("scan = 3", r"\[scan\] must be a table"),
        ("[scan", r"not valid TOML"),
    ],
)
def test_strict_parsing(tmp_path: Path, text: str, needle: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError, match=needle) as info:
        load_policy(path)
    assert str(path) in str(info.value)


def test_private_key_is_not_a_trusted_key(tmp_path: Path, release_key: str) -> None:
    path = write(tmp_path, "[signature]\ntrusted_keys=['keys/release']")
    with pytest.raises(ConfigError, match="this is a private key"):
        load_policy(path)


@pytest.mark.parametrize(
    ("grade", "minimum", "ok"),
    [("A", "C", True), ("C", "C", True), ("D", "C", False), ("F", "A", False), ("N/A", "F", False)],
)
def test_grade_order(grade: str, minimum: str, ok: bool) -> None:
    assert grade_at_least(grade, minimum) is ok
