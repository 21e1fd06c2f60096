"""Sessions: opaque tokens, idle and absolute expiry, revocation one by one or all at once."""

from __future__ import annotations

from datetime import timedelta

import pytest
from tests.access.conftest import PASSWORD, FakeClock

from warden.access import SESSION_INVALID, Access, AuthenticationError


def _token(access: Access) -> str:
    token = access.login("alice", PASSWORD).token
    assert token is not None
    return token


@pytest.fixture
def alice(access: Access) -> None:
    access.create_user("alice", PASSWORD, roles=["client"], actor="ops")
    access.grant("alice", "fraud", actor="ops")


def test_token_shape_and_principal(access: Access, alice: None) -> None:
    token = _token(access)
    assert len(token) == 43 and token.replace("-", "").replace("_", "").isalnum()
    principal = access.verify_session(token)
    assert (principal.kind, principal.name, principal.roles) == ("user", "alice", {"client"})
    assert principal.models == {"fraud"} and principal.plan == "default"
    assert principal.mfa == "none" and not principal.restricted
    assert principal.actor == "alice"
    assert _token(access) != token


def test_idle_expiry_and_use_keeps_a_session_alive(
    access: Access, alice: None, clock: FakeClock
) -> None:
    token = _token(access)
    for _ in range(5):  # used every 20 minutes: stays alive past the idle limit
        clock.advance(minutes=20)
        access.verify_session(token)
    clock.advance(minutes=29)
    access.verify_session(token)
    clock.advance(minutes=30)
    with pytest.raises(AuthenticationError, match=SESSION_INVALID):
        access.verify_session(token)


def test_absolute_expiry(access: Access, alice: None, clock: FakeClock) -> None:
    token = _token(access)
    for _ in range(12 * 4 - 1):
        clock.advance(minutes=15)
        access.verify_session(token)
    clock.advance(minutes=14, seconds=59)
    access.verify_session(token)
    clock.advance(seconds=1)  # 12 h after login, however busy
    with pytest.raises(AuthenticationError, match=SESSION_INVALID):
        access.verify_session(token)


def test_logout_revokes_one_and_revoke_sessions_all(access: Access, alice: None) -> None:
    one, two, three = _token(access), _token(access), _token(access)
    assert access.logout(one)
    assert not access.logout(one)
    with pytest.raises(AuthenticationError):
        access.verify_session(one)
    access.verify_session(two)
    assert access.revoke_sessions("alice", actor="ops") == 2
    for token in (two, three):
        with pytest.raises(AuthenticationError):
            access.verify_session(token)


@pytest.mark.parametrize("bad", ["", "x", "a" * 43, "a" * 10_000, None, 42])
def test_garbage_tokens_are_refused_alike(access: Access, alice: None, bad: object) -> None:
    with pytest.raises(AuthenticationError, match=SESSION_INVALID):
        access.verify_session(bad)  # type: ignore[arg-type]


def test_role_and_grant_changes_apply_to_live_sessions(access: Access, alice: None) -> None:
    token = _token(access)
    access.set_roles("alice", ["auditor"], actor="ops")
    access.grant("alice", "churn", actor="ops")
    principal = access.verify_session(token)
    assert principal.roles == {"auditor"} and "audit:read" in principal.permissions
    assert principal.models == {"fraud", "churn"}
    access.revoke_grant("alice", "fraud", actor="ops")
    assert access.verify_session(token).models == {"churn"}


def test_expires_at_is_reported(access: Access, alice: None, clock: FakeClock) -> None:
    result = access.login("alice", PASSWORD)
    assert result.token is not None
    principal = access.verify_session(result.token)
    assert principal.expires_at == result.expires_at == clock.now + timedelta(hours=12)
