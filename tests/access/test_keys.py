"""API keys: shown once, scoped, expiring, rotation with a grace period, immediate revoke."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from tests.access.conftest import FakeClock, ListSink

from warden.access import (
    KEY_INVALID,
    MODELS_PREDICT,
    Access,
    AccessError,
    AuthenticationError,
    PermissionDenied,
)

TOKEN = re.compile(r"^wdn_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$")


def test_issue_and_authenticate(access: Access) -> None:
    issued = access.issue_key("scoring-svc", models=["fraud", "churn"], plan="gold", actor="root")
    assert TOKEN.match(issued.token)
    assert issued.token not in repr(issued)
    assert issued.info.models == ("churn", "fraud") and issued.info.plan == "gold"
    principal = access.authenticate_key(issued.token)
    assert (principal.kind, principal.id, principal.name) == ("key", issued.info.id, "scoring-svc")
    assert principal.actor == f"key:{issued.info.id}"
    assert principal.roles == {"client"} and principal.plan == "gold"
    assert principal.mfa == "not-applicable"
    access.authorize(principal, MODELS_PREDICT, "fraud")
    with pytest.raises(PermissionDenied, match="no grant for model 'other'"):
        access.authorize(principal, MODELS_PREDICT, "other")
    with pytest.raises(PermissionDenied, match="lacks permission registry:deploy"):
        access.authorize(principal, "registry:deploy")


def test_wrong_and_malformed_keys_are_refused_alike(access: Access) -> None:
    issued = access.issue_key("svc", models="fraud", plan="basic", actor="root")
    key_id = issued.info.id
    secret = issued.token.split("_", 2)[2]
    flipped = secret[:-1] + ("A" if secret[-1] != "A" else "B")
    for bad in [
        f"wdn_{key_id}_{flipped}",
        f"wdn_{'0' * 16}_{secret}",
        f"wdn_{key_id}",
        f"wdn_{key_id}_",
        issued.token + "x",
        issued.token.upper(),
        "Bearer " + issued.token,
        "",
        "wdn_",
    ]:
        with pytest.raises(AuthenticationError, match=KEY_INVALID):
            access.authenticate_key(bad)


def test_expiry(access: Access, clock: FakeClock) -> None:
    issued = access.issue_key(
        "svc", models=["fraud"], plan="basic", expires_in=timedelta(days=30), actor="root"
    )
    assert issued.info.expires_at == clock.now + timedelta(days=30)
    clock.advance(days=30, seconds=-1)
    assert access.authenticate_key(issued.token).expires_at == issued.info.expires_at
    clock.advance(seconds=1)
    with pytest.raises(AuthenticationError, match=KEY_INVALID):
        access.authenticate_key(issued.token)
    assert access.list_keys() == []
    assert [k.status(clock.now) for k in access.list_keys(include_inactive=True)] == ["expired"]


def test_rotation_keeps_the_old_key_for_the_grace_period(access: Access, clock: FakeClock) -> None:
    old = access.issue_key(
        "svc", models=["fraud"], plan="gold", expires_in=timedelta(days=90), actor="root"
    )
    clock.advance(days=10)
    new = access.rotate_key(old.info.id, actor="root")
    assert new.token != old.token and new.info.id != old.info.id
    assert (new.info.name, new.info.models, new.info.plan) == ("svc", ("fraud",), "gold")
    assert new.info.expires_at == clock.now + timedelta(days=90)  # same lifetime, from now
    old_info = access.get_key(old.info.id)
    assert old_info.replaced_by == new.info.id
    assert old_info.grace_until == clock.now + timedelta(hours=24)
    assert old_info.status(clock.now) == "grace"
    clock.advance(hours=24, seconds=-1)
    assert access.authenticate_key(old.token).id == old.info.id
    access.authenticate_key(new.token)
    clock.advance(seconds=1)
    with pytest.raises(AuthenticationError, match=KEY_INVALID):
        access.authenticate_key(old.token)
    access.authenticate_key(new.token)
    with pytest.raises(AccessError, match="already rotated"):
        access.rotate_key(old.info.id, actor="root")


def test_rotation_with_zero_grace_and_grace_capped_by_expiry(
    access: Access, clock: FakeClock
) -> None:
    a = access.issue_key("a", models=["m"], plan="p", actor="root")
    access.rotate_key(a.info.id, grace=timedelta(0), actor="root")
    with pytest.raises(AuthenticationError):
        access.authenticate_key(a.token)
    b = access.issue_key("b", models=["m"], plan="p", expires_in=timedelta(hours=2), actor="root")
    access.rotate_key(b.info.id, actor="root")
    assert access.get_key(b.info.id).grace_until == clock.now + timedelta(hours=2)


def test_revoke_is_immediate_and_final(access: Access) -> None:
    issued = access.issue_key("svc", models=["*"], plan="p", actor="root")
    principal = access.authenticate_key(issued.token)
    access.authorize(principal, MODELS_PREDICT, "anything")
    access.revoke_key(issued.info.id, actor="root")
    with pytest.raises(AuthenticationError, match=KEY_INVALID):
        access.authenticate_key(issued.token)
    with pytest.raises(AccessError, match="revoked"):
        access.rotate_key(issued.info.id, actor="root")


def test_revoking_during_grace_stops_the_old_key(access: Access) -> None:
    old = access.issue_key("svc", models=["m"], plan="p", actor="root")
    new = access.rotate_key(old.info.id, actor="root")
    access.revoke_key(old.info.id, actor="root")
    with pytest.raises(AuthenticationError):
        access.authenticate_key(old.token)
    access.authenticate_key(new.token)


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"models": []}, "at least one model"),
        ({"models": ["*", "fraud"]}, "give it alone"),
        ({"models": ["bad model"]}, "model name"),
        ({"plan": "no plan"}, "rate plan"),
        ({"role": "admin"}, "API key role 'admin'"),
        ({"role": "wizard"}, "API key role"),
        ({"expires_in": timedelta(0)}, "future"),
        ({"name": ""}, "needs a name"),
    ],
)
def test_issue_refusals(access: Access, kwargs: dict[str, object], needle: str) -> None:
    args: dict[str, object] = {"name": "svc", "models": ["m"], "plan": "p", "actor": "root"}
    args.update(kwargs)
    with pytest.raises(AccessError, match=needle):
        access.issue_key(**args)  # type: ignore[arg-type]


def test_grants_for_keys_and_unknown_subjects(access: Access) -> None:
    issued = access.issue_key("svc", models=["fraud"], plan="p", actor="root")
    access.grant(f"key:{issued.info.id}", "churn", actor="root")
    access.grant(f"key:{issued.info.id}", "churn", actor="root")  # idempotent
    assert access.authenticate_key(issued.token).models == {"fraud", "churn"}
    access.revoke_grant(f"key:{issued.info.id}", "fraud", actor="root")
    assert access.get_key(issued.info.id).models == ("churn",)
    with pytest.raises(AccessError, match="has no grant for model 'fraud'"):
        access.revoke_grant(f"key:{issued.info.id}", "fraud", actor="root")
    with pytest.raises(AccessError, match="no API key"):
        access.grant("key:0123456789abcdef", "fraud", actor="root")
    with pytest.raises(AccessError, match="no API key"):
        access.revoke_key("0123\x00", actor="root")
    with pytest.raises(AccessError, match="no user named"):
        access.grant("ghost", "fraud", actor="root")
    with pytest.raises(AccessError, match="no user named"):
        access.grant("gh\x00st\n", "fraud", actor="root")  # still audited, as printable text
    subjects = {(g.subject, g.model) for g in access.list_grants()}
    assert subjects == {(f"key:{issued.info.id}", "churn")}


def test_key_actions_are_audited_without_secrets(access: Access, sink: ListSink) -> None:
    issued = access.issue_key("svc", models=["m"], plan="p", actor="root")
    rotated = access.rotate_key(issued.info.id, actor="root")
    access.revoke_key(rotated.info.id, actor="root")
    with pytest.raises(AccessError):
        access.issue_key("svc", models=["m"], plan="p", role="admin", actor="root")
    seen = [(e.action, e.actor, e.resource, e.outcome) for e in sink.events]
    assert seen == [
        ("access.key.issue", "root", "key:new", "ok"),
        ("access.key.rotate", "root", f"key:{issued.info.id}", "ok"),
        ("access.key.revoke", "root", f"key:{rotated.info.id}", "ok"),
        ("access.key.issue", "root", "key:new", "refused"),
    ]
    assert sink.events[0].details["key"] == issued.info.id
    assert sink.events[1].details["new_key"] == rotated.info.id
    text = repr(sink.events)
    for token in (issued.token, rotated.token):
        assert token.split("_", 2)[2] not in text


def test_key_checks_read_a_snapshot_without_waiting_for_a_writer(access: Access) -> None:
    import sqlite3
    import time

    from warden.errors import GatewayError
    from warden.gateway.serving import ModelServer

    if access.store.db.dialect != "sqlite":
        pytest.skip("the write lock that reads must not wait for is SQLite's")
    issued = access.issue_key("svc", models=["fraud"], plan="p", actor="root")
    path = access.store.db.engine.url.database
    assert path is not None
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")  # another process holds the write lock (audit commit)
    writer.execute("DELETE FROM access_grants")  # ... and has not committed this
    server = ModelServer(access.store, audit=ListSink(), pipelines=lambda _m: None)
    started = time.monotonic()
    principal = access.authenticate_key(issued.token)
    with pytest.raises(GatewayError, match="no version 'champion'"):
        server.resolve("fraud")
    elapsed = time.monotonic() - started
    writer.execute("ROLLBACK")
    writer.close()
    assert principal.models == {"fraud"}  # the committed state, not the pending delete
    assert elapsed < 1.0  # a BEGIN IMMEDIATE read would wait for the lock (busy timeout 60 s)
    access.revoke_grant(f"key:{issued.info.id}", "fraud", actor="root")
    assert access.authenticate_key(issued.token).models == set()  # at once; no grants left
