"""TOTP MFA: enrolment, confirmation, replay, window, recovery codes, the admin rule."""

from __future__ import annotations

import pytest
from tests.access.conftest import ADMIN_PASSWORD, PASSWORD, FakeClock, ListSink, code_at, enrol

from warden.access import (
    LOGIN_FAILED,
    RECOVERY_CODES,
    USERS_ADMIN,
    Access,
    AccessError,
    AuthenticationError,
    PermissionDenied,
)


def test_enrol_confirm_then_login_needs_a_code(access: Access, clock: FakeClock) -> None:
    access.create_user("alice", PASSWORD, actor="ops")
    enrolment = access.enrol_totp("alice")
    assert enrolment.uri.startswith("otpauth://totp/Warden%3Aalice?secret=")
    assert enrolment.secret not in repr(enrolment)
    assert access.get_user("alice").mfa == "pending"
    assert access.login("alice", PASSWORD).status == "ok"  # pending: not yet required
    with pytest.raises(AccessError, match="does not match"):
        access.confirm_totp(
            "alice", "000000" if code_at(enrolment.secret, clock.now) != "000000" else "111111"
        )
    codes = access.confirm_totp("alice", code_at(enrolment.secret, clock.now))
    assert len(codes) == RECOVERY_CODES == len(set(codes))
    assert access.get_user("alice").mfa == "enrolled"
    assert access.get_user("alice").recovery_codes_left == RECOVERY_CODES
    clock.advance(seconds=30)
    assert access.login("alice", PASSWORD).status == "mfa-required"
    result = access.login("alice", PASSWORD, code_at(enrolment.secret, clock.now))
    assert result.status == "ok" and result.token


def test_a_code_is_accepted_once(access: Access, clock: FakeClock) -> None:
    access.create_user("alice", PASSWORD, actor="ops")
    secret, _ = enrol(access, "alice", clock)
    code = code_at(secret, clock.now)
    assert access.login("alice", PASSWORD, code).status == "ok"
    with pytest.raises(AuthenticationError, match=LOGIN_FAILED):
        access.login("alice", PASSWORD, code)  # replay within the same step
    clock.advance(seconds=10)
    with pytest.raises(AuthenticationError):
        access.login("alice", PASSWORD, code)  # still the same step
    clock.advance(seconds=30)
    assert access.login("alice", PASSWORD, code_at(secret, clock.now)).status == "ok"


def test_window_is_one_step_either_side(access: Access, clock: FakeClock) -> None:
    access.create_user("alice", PASSWORD, actor="ops")
    secret, _ = enrol(access, "alice", clock)
    clock.advance(seconds=300)
    with pytest.raises(AuthenticationError):
        access.login("alice", PASSWORD, code_at(secret, clock.now, -2))
    assert access.login("alice", PASSWORD, code_at(secret, clock.now, -1)).status == "ok"
    clock.advance(seconds=300)
    with pytest.raises(AuthenticationError):
        access.login("alice", PASSWORD, code_at(secret, clock.now, 2))
    assert access.login("alice", PASSWORD, code_at(secret, clock.now, 1)).status == "ok"
    # The step just accepted (now+1) shuts out the current one: steps only move forward.
    with pytest.raises(AuthenticationError):
        access.login("alice", PASSWORD, code_at(secret, clock.now))


def test_wrong_codes_count_towards_lockout(access: Access, clock: FakeClock) -> None:
    access.create_user("alice", PASSWORD, actor="ops")
    secret, _ = enrol(access, "alice", clock)
    good = code_at(secret, clock.now)
    bad = "123456" if good != "123456" else "654321"
    for _ in range(5):
        with pytest.raises(AuthenticationError):
            access.login("alice", PASSWORD, bad)
    assert access.get_user("alice").locked_until is not None
    with pytest.raises(AuthenticationError):
        access.login("alice", PASSWORD, good)


def test_recovery_codes_work_once_each(access: Access, clock: FakeClock, sink: ListSink) -> None:
    access.create_user("alice", PASSWORD, actor="ops")
    _, codes = enrol(access, "alice", clock)
    assert access.login("alice", PASSWORD, recovery_code=codes[0]).status == "ok"
    with pytest.raises(AuthenticationError):
        access.login("alice", PASSWORD, recovery_code=codes[0])
    spaced = codes[1].upper().replace("-", " ")
    assert access.login("alice", PASSWORD, recovery_code=spaced).status == "ok"
    with pytest.raises(AuthenticationError):
        access.login("alice", PASSWORD, recovery_code="aaaa-bbbb-cccc-dddd")
    assert access.get_user("alice").recovery_codes_left == RECOVERY_CODES - 2
    used = [e for e in sink.events if e.action == "access.mfa.recovery"]
    assert [e.details["codes_left"] for e in used] == [9, 8]


def test_recovery_codes_belong_to_their_user(access: Access, clock: FakeClock) -> None:
    access.create_user("alice", PASSWORD, actor="ops")
    access.create_user("bob", "tangerine-osprey-ledger-5", actor="ops")
    _, alice_codes = enrol(access, "alice", clock)
    enrol(access, "bob", clock)
    with pytest.raises(AuthenticationError):
        access.login("bob", "tangerine-osprey-ledger-5", recovery_code=alice_codes[0])


def test_enrolment_rules(access: Access, clock: FakeClock) -> None:
    access.create_user("alice", PASSWORD, actor="ops")
    with pytest.raises(AccessError, match="no pending MFA enrolment"):
        access.confirm_totp("alice", "123456")
    first = access.enrol_totp("alice")
    second = access.enrol_totp("alice")  # replaces the unconfirmed one
    assert first.secret != second.secret
    with pytest.raises(AccessError, match="does not match"):
        access.confirm_totp("alice", code_at(first.secret, clock.now))
    access.confirm_totp("alice", code_at(second.secret, clock.now))
    with pytest.raises(AccessError, match="already has MFA"):
        access.enrol_totp("alice")
    with pytest.raises(AccessError, match="no user named"):
        access.enrol_totp("ghost")


def test_reset_removes_mfa_and_sessions(access: Access, clock: FakeClock) -> None:
    access.create_user("alice", PASSWORD, actor="ops")
    secret, _ = enrol(access, "alice", clock)
    token = access.login("alice", PASSWORD, code_at(secret, clock.now)).token
    assert token is not None
    info = access.reset_mfa("alice", actor="ops")
    assert info.mfa == "none" and info.recovery_codes_left == 0
    with pytest.raises(AuthenticationError):
        access.verify_session(token)
    assert access.login("alice", PASSWORD).status == "ok"  # no code needed any more


def test_admin_without_mfa_gets_only_a_restricted_session(access: Access, clock: FakeClock) -> None:
    access.create_user("root", ADMIN_PASSWORD, roles=["admin"], actor="bootstrap")
    result = access.login("root", ADMIN_PASSWORD)
    assert result.status == "mfa-enrolment-required" and result.token
    principal = access.verify_session(result.token)
    assert principal.restricted and principal.permissions == frozenset()
    with pytest.raises(PermissionDenied, match="enrol MFA"):
        access.authorize(principal, USERS_ADMIN)
    enrolment = access.enrol_totp(principal.name)
    access.confirm_totp(principal.name, code_at(enrolment.secret, clock.now))
    with pytest.raises(AuthenticationError):  # the restricted session ends with enrolment
        access.verify_session(result.token)
    clock.advance(seconds=30)
    full = access.login("root", ADMIN_PASSWORD, code_at(enrolment.secret, clock.now))
    assert full.status == "ok" and full.token
    admin = access.verify_session(full.token)
    assert not admin.restricted and admin.mfa == "enrolled"
    access.authorize(admin, USERS_ADMIN)
    access.authorize(admin, "models:predict", "any-model")


def test_promoting_a_user_without_mfa_to_admin_restricts_their_sessions(
    access: Access, admin: str
) -> None:
    access.create_user("alice", PASSWORD, roles=["ml-engineer"], actor="root")
    token = access.login("alice", PASSWORD).token
    assert token is not None
    assert not access.verify_session(token).restricted
    access.set_roles("alice", ["admin"], actor="root")
    promoted = access.verify_session(token)
    assert promoted.restricted and promoted.permissions == frozenset()
