"""Password policy and argon2id parameters (production parameters checked once)."""

from __future__ import annotations

import logging

import pytest

from warden.access import AccessError, PasswordHasher, PasswordParams, check_password
from warden.access.passwords import COMMON_PASSWORDS, MAX_PASSWORD, MIN_PASSWORD
from warden.errors import ConfigError


@pytest.mark.parametrize(
    ("password", "needle"),
    [
        ("short-pw-1", "at least 12"),
        ("x" * (MAX_PASSWORD + 1), "at most 256"),
        ("aaaaaaaaaaaaaaaa", "distinct"),
        ("abababab1212abab", "distinct"),
        ("alice-the-great-99", "user name"),
        ("ALICE-THE-GREAT-99", "user name"),
        ("Password1234", "commonly used"),
        ("QWERTY123456", "commonly used"),
        ("tab\there-is-a-control", "control"),
    ],
)
def test_policy_refusals_say_what_to_change(password: str, needle: str) -> None:
    with pytest.raises(AccessError, match=needle):
        check_password(password, "alice")


def test_policy_accepts_a_good_password_and_bounds_are_inclusive() -> None:
    assert check_password("violet-harbour-lantern-42", "alice") == "violet-harbour-lantern-42"
    edge = "zyxwvu" + "t" * (MIN_PASSWORD - 6)
    assert len(check_password(edge, "bob")) == MIN_PASSWORD
    long = ("abcdefghij" * 30)[:MAX_PASSWORD]
    assert len(check_password(long, "bob")) == MAX_PASSWORD


def test_common_list_is_only_long_passwords_in_lower_case() -> None:
    assert len(COMMON_PASSWORDS) >= 80
    assert all(len(p) >= MIN_PASSWORD and p == p.casefold() for p in COMMON_PASSWORDS)


def test_nfkc_normalisation_makes_equivalent_spellings_one_password() -> None:
    composed = "caf\u00e9-ol\u00e9-harbour-42"
    decomposed = "cafe\u0301-ole\u0301-harbour-42"
    fullwidth = "\uff56\uff49\uff4f\uff4c\uff45\uff54-harbour-lantern"  # fullwidth "violet"
    assert check_password(decomposed) == composed
    assert check_password(fullwidth) == "violet-harbour-lantern"
    hasher = PasswordHasher(
        PasswordParams(time_cost=1, memory_kib=64, parallelism=1, unsafe_allow_weak=True)
    )
    stored = hasher.hash(composed)
    assert hasher.verify(stored, decomposed)
    assert not hasher.verify(stored, composed.upper())


def test_production_parameters_meet_owasp_and_are_what_the_hash_records() -> None:
    params = PasswordParams()
    assert params.memory_kib >= 19 * 1024 and params.time_cost >= 2 and not params.weak
    hasher = PasswordHasher(params)
    stored = hasher.hash("violet-harbour-lantern-42")
    assert stored.startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    assert hasher.verify(stored, "violet-harbour-lantern-42")
    assert not hasher.verify(stored, "violet-harbour-lantern-43")
    assert not hasher.needs_rehash(stored)


@pytest.mark.parametrize(
    "kwargs", [{"memory_kib": 19 * 1024 - 1}, {"time_cost": 1}, {"memory_kib": 1024}]
)
def test_weak_parameters_are_refused_unless_unsafe(kwargs: dict[str, int]) -> None:
    with pytest.raises(ConfigError, match="below OWASP"):
        PasswordParams(**kwargs)


def test_unsafe_weak_parameters_log_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="warden.access"):
        params = PasswordParams(time_cost=1, memory_kib=64, parallelism=1, unsafe_allow_weak=True)
    assert params.weak
    assert "unsafe_allow_weak" in caplog.text


@pytest.mark.parametrize("kwargs", [{"time_cost": 0}, {"parallelism": 0}, {"hash_len": 8}])
def test_nonsense_parameters_are_refused(kwargs: dict[str, int]) -> None:
    with pytest.raises(ConfigError, match="PasswordParams"):
        PasswordParams(**kwargs)


def test_other_parameters_need_a_rehash_and_garbage_never_verifies() -> None:
    weak = PasswordHasher(
        PasswordParams(time_cost=1, memory_kib=64, parallelism=1, unsafe_allow_weak=True)
    )
    other = PasswordHasher(
        PasswordParams(time_cost=2, memory_kib=128, parallelism=1, unsafe_allow_weak=True)
    )
    stored = weak.hash("violet-harbour-lantern-42")
    assert other.verify(stored, "violet-harbour-lantern-42")
    assert other.needs_rehash(stored)
    assert not weak.needs_rehash(stored)
    assert not weak.verify("not-a-hash", "violet-harbour-lantern-42")
    assert weak.needs_rehash("not-a-hash")
