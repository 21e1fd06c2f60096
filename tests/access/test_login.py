"""Logins: lockout with back-off, no user enumeration (message, type and timing)."""

from __future__ import annotations

import statistics
import time
from datetime import timedelta
from pathlib import Path

import pytest
from tests.access.conftest import PASSWORD, FakeClock, ListSink

from warden.access import LOGIN_FAILED, Access, AccessPolicy, AuthenticationError, PasswordParams
from warden.config import Settings
from warden.store import Store


def _fail(access: Access, name: str, password: str = "wrong-password-000") -> str:
    with pytest.raises(AuthenticationError) as info:
        access.login(name, password)
    return str(info.value)


def test_a_good_login_makes_a_full_session(access: Access, clock: FakeClock) -> None:
    access.create_user("alice", PASSWORD, roles=["client"], actor="ops")
    result = access.login("ALICE", PASSWORD, source="10.0.0.7")
    assert result.status == "ok" and result.token
    assert result.principal is not None and result.principal.name == "alice"
    assert result.expires_at == clock.now + timedelta(hours=12)
    assert "token" not in repr(result) or result.token not in repr(result)


def test_lockout_timeline_doubles_and_caps(access: Access, clock: FakeClock) -> None:
    access.create_user("alice", PASSWORD, actor="ops")
    expected_lengths = [1, 2, 4, 8, 16, 32, 60, 60]  # minutes: base 1, doubling, cap 1 h
    for n, minutes in enumerate(expected_lengths, start=1):
        for _ in range(4):
            _fail(access, "alice")
        assert access.get_user("alice").locked_until is None
        _fail(access, "alice")  # the 5th consecutive failure locks
        user = access.get_user("alice")
        assert user.lockouts == n
        assert user.locked_until == clock.now + timedelta(minutes=minutes)
        # Locked: even the right password fails, with the same message, and nothing counts.
        assert _fail(access, "alice", PASSWORD) == LOGIN_FAILED
        clock.advance(minutes=minutes, seconds=-1)
        assert _fail(access, "alice", PASSWORD) == LOGIN_FAILED
        assert access.get_user("alice").failed_logins == 0
        clock.advance(seconds=1)
    assert access.login("alice", PASSWORD).status == "ok"
    after = access.get_user("alice")
    assert (after.lockouts, after.failed_logins, after.locked_until) == (0, 0, None)


def test_a_success_resets_the_failure_count(access: Access) -> None:
    access.create_user("alice", PASSWORD, actor="ops")
    for _ in range(4):
        _fail(access, "alice")
    assert access.get_user("alice").failed_logins == 4
    access.login("alice", PASSWORD)
    for _ in range(4):
        _fail(access, "alice")
    assert access.get_user("alice").locked_until is None


def test_admin_can_unlock(access: Access) -> None:
    access.create_user("alice", PASSWORD, actor="ops")
    for _ in range(5):
        _fail(access, "alice")
    assert access.get_user("alice").locked_until is not None
    access.unlock_user("alice", actor="ops")
    assert access.login("alice", PASSWORD).status == "ok"


def test_no_enumeration_same_type_and_message(access: Access, clock: FakeClock) -> None:
    access.create_user("alice", PASSWORD, actor="ops")
    access.create_user("carol", PASSWORD, actor="ops")
    access.create_user("dave", PASSWORD, actor="ops")
    access.disable_user("carol", actor="ops")
    for _ in range(5):
        _fail(access, "dave")
    cases = {
        "unknown user": ("mallory", PASSWORD),
        "invalid name": ("bad name\n", PASSWORD),
        "wrong password": ("alice", "wrong-password-000"),
        "disabled": ("carol", PASSWORD),
        "locked": ("dave", PASSWORD),
        "empty password": ("alice", ""),
    }
    seen = set()
    for name, password in cases.values():
        with pytest.raises(AuthenticationError) as info:
            access.login(name, password)
        seen.add((type(info.value), str(info.value)))
    assert seen == {(AuthenticationError, LOGIN_FAILED)}


def test_unknown_users_are_checked_against_the_dummy_hash(access: Access) -> None:
    access.create_user("alice", PASSWORD, actor="ops")
    before = access.hasher.verifications
    _fail(access, "nobody")
    _fail(access, "alice")
    _fail(access, "bad name")
    assert access.hasher.verifications == before + 3  # one argon2 check per attempt, always
    assert access.dummy_hash.startswith("$argon2id$v=19$m=64,t=1,p=1$")


def test_timing_of_unknown_user_matches_wrong_password(tmp_path: Path) -> None:
    """Production argon2 parameters: an unknown name costs what a wrong password costs.
    Medians over 10 attempts each, compared with a generous factor (argon2 dominates). One
    backend is enough: the hash, not the database, sets the time."""
    store = Store.open(Settings(home=tmp_path / "home"))
    access = Access(
        store,
        policy=AccessPolicy(max_failures=1000),
        password_params=PasswordParams(),
    )
    access.create_user("alice", PASSWORD, actor="ops")
    access.dummy_hash  # noqa: B018 - made once, like a long-running server would have it

    def timed(name: str) -> float:
        start = time.perf_counter()
        with pytest.raises(AuthenticationError):
            access.login(name, "wrong-password-000")
        return time.perf_counter() - start

    unknown, wrong = [], []
    for i in range(10):
        unknown.append(timed(f"ghost{i}"))
        wrong.append(timed("alice"))
    store.close()
    ratio = statistics.median(unknown) / statistics.median(wrong)
    assert 0.5 < ratio < 2.0, (statistics.median(unknown), statistics.median(wrong))


def test_failed_logins_are_audited_without_the_password(access: Access, sink: ListSink) -> None:
    access.create_user("alice", PASSWORD, actor="ops")
    sink.events.clear()
    _fail(access, "alice", "secret-guess-123")
    _fail(access, "ghost", "secret-guess-456")
    _fail(access, "bad\x00name", "secret-guess-789")
    access.login("alice", PASSWORD, source="10.1.2.3")
    assert [(e.action, e.actor, e.outcome, e.details.get("reason")) for e in sink.events] == [
        ("access.login", "alice", "refused", "bad-password"),
        ("access.login", "ghost", "refused", "unknown-user"),
        ("access.login", "anonymous", "refused", "unknown-user"),
        ("access.login", "alice", "ok", None),
    ]
    assert sink.events[-1].source == "10.1.2.3"
    text = repr(sink.events)
    for secret in ("secret-guess", PASSWORD):
        assert secret not in text
