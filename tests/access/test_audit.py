"""Every access action lands in the real, tamper-evident audit log, with no secrets."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from tests.access.conftest import ADMIN_PASSWORD, PASSWORD, TEST_PARAMS, FakeClock, code_at

from warden.access import Access, AccessError, AuthenticationError
from warden.audit import AuditLog, load_audit_key, load_signing_key, search, verify_log
from warden.errors import StoreError
from warden.store import Store


@pytest.fixture
def log(store: Store) -> Iterator[AuditLog]:
    audit = AuditLog(
        store.db,
        load_audit_key(store.home, None, create=True),
        load_signing_key(store.home, create=True),
    )
    yield audit
    audit.close()


def test_each_action_is_recorded_and_the_chain_verifies(
    store: Store, log: AuditLog, clock: FakeClock
) -> None:
    access = Access(store, audit=log, clock=clock, password_params=TEST_PARAMS)
    access.create_user("root", ADMIN_PASSWORD, roles=["admin"], actor="bootstrap")
    restricted = access.login("root", ADMIN_PASSWORD)
    enrolment = access.enrol_totp("root")
    codes = access.confirm_totp("root", code_at(enrolment.secret, clock.now))
    clock.advance(seconds=30)
    access.login("root", ADMIN_PASSWORD, code_at(enrolment.secret, clock.now))
    access.create_user("alice", PASSWORD, actor="root")
    access.set_roles("alice", ["ml-engineer"], actor="root")
    access.grant("alice", "fraud", actor="root")
    access.revoke_grant("alice", "fraud", actor="root")
    for _ in range(5):
        with pytest.raises(AuthenticationError):
            access.login("alice", "wrong-password-000")
    access.unlock_user("alice", actor="root")
    token = access.login("alice", PASSWORD).token
    assert token is not None
    access.logout(token)
    access.set_password("alice", "new-harbour-lantern-43", actor="root")
    access.revoke_sessions("alice", actor="root")
    access.disable_user("alice", actor="root")
    access.enable_user("alice", actor="root")
    issued = access.issue_key("svc", models=["fraud"], plan="gold", actor="root")
    rotated = access.rotate_key(issued.info.id, actor="root")
    access.revoke_key(rotated.info.id, actor="root")
    access.login("root", ADMIN_PASSWORD, recovery_code=codes[0])
    access.reset_mfa("root", actor="root")
    with pytest.raises(AccessError):
        access.create_user("alice", PASSWORD, actor="root")
    log.flush()
    records = search(store.db, action="access.*")
    seen = [(r.action, r.actor, r.outcome) for r in records]
    assert seen == [
        ("access.user.create", "bootstrap", "ok"),
        ("access.login", "root", "ok"),  # the restricted session
        ("access.mfa.enrol", "root", "ok"),
        ("access.mfa.confirm", "root", "ok"),
        ("access.login", "root", "ok"),
        ("access.user.create", "root", "ok"),
        ("access.user.roles", "root", "ok"),
        ("access.grant", "root", "ok"),
        ("access.grant.revoke", "root", "ok"),
        *[("access.login", "alice", "refused")] * 4,
        ("access.lockout", "alice", "locked"),
        ("access.login", "alice", "refused"),
        ("access.user.unlock", "root", "ok"),
        ("access.login", "alice", "ok"),
        ("access.logout", "alice", "ok"),
        ("access.user.password", "root", "ok"),
        ("access.session.revoke", "root", "ok"),
        ("access.user.disable", "root", "ok"),
        ("access.user.enable", "root", "ok"),
        ("access.key.issue", "root", "ok"),
        ("access.key.rotate", "root", "ok"),
        ("access.key.revoke", "root", "ok"),
        ("access.mfa.recovery", "root", "ok"),
        ("access.login", "root", "ok"),
        ("access.mfa.reset", "root", "ok"),
        ("access.user.create", "root", "refused"),
    ]
    assert records[1].details == {"session": "mfa-enrol"}
    assert records[4].details == {"session": "full", "mfa": "totp"}
    assert records[13].details["seconds"] == 60
    assert records[6].details == {"from": ["client"], "to": ["ml-engineer"]}
    assert "already exists" in records[-1].details["error"]
    assert restricted.status == "mfa-enrolment-required"
    text = " ".join(r.canonical for r in records)
    for secret in (
        PASSWORD,
        ADMIN_PASSWORD,
        "new-harbour-lantern-43",
        enrolment.secret,
        *codes,
        issued.token.split("_", 2)[2],
        rotated.token.split("_", 2)[2],
        token,
    ):
        assert secret not in text
    report = verify_log(
        store.db,
        load_audit_key(store.home, None, create=False),
        load_signing_key(store.home, create=False).public_key(),
    )
    assert report.ok, report


class _BrokenSink:
    def record(self, event: object) -> None:
        raise OSError("disk full")


def test_an_unwritable_audit_record_fails_the_call(store: Store, clock: FakeClock) -> None:
    access = Access(store, audit=_BrokenSink(), clock=clock, password_params=TEST_PARAMS)
    with pytest.raises(StoreError, match=r"audit record could not be written.*disk full"):
        access.create_user("alice", PASSWORD, actor="ops")
    with pytest.raises(StoreError, match="audit record"):
        access.login("alice", PASSWORD)
