"""Users: creation rules, roles, disable/enable, the last admin, passwords."""

from __future__ import annotations

import pytest
from tests.access.conftest import PASSWORD, FakeClock, ListSink

from warden.access import Access, AccessError, AuthenticationError


def test_create_and_read_back(access: Access) -> None:
    info = access.create_user("Alice", PASSWORD, roles=["client", "auditor"], actor="ops")
    assert info.name == "Alice"
    assert info.roles == ("auditor", "client")
    assert info.mfa == "none" and not info.disabled and info.created_by == "ops"
    assert access.get_user("alice") == info  # case-insensitive lookup
    assert [u.name for u in access.list_users()] == ["Alice"]


@pytest.mark.parametrize("other", ["alice", "ALICE", "Alice", " alice "])
def test_names_are_unique_case_insensitively(access: Access, other: str) -> None:
    access.create_user("Alice", PASSWORD, actor="ops")
    with pytest.raises(AccessError, match="already exists"):
        access.create_user(other, PASSWORD, actor="ops")


@pytest.mark.parametrize(
    ("name", "roles", "password", "needle"),
    [
        ("", ["client"], PASSWORD, "user name"),
        ("bad name", ["client"], PASSWORD, "user name"),
        ("x" * 65, ["client"], PASSWORD, "user name"),
        ("bob", ["root"], PASSWORD, "expected one or more of admin"),
        ("bob", [], PASSWORD, "expected one or more"),
        ("bob", ["client"], "short", "at least 12"),
        ("bob", ["client"], "my-name-is-BOB-42", "user name"),
    ],
)
def test_creation_refusals(
    access: Access, name: str, roles: list[str], password: str, needle: str
) -> None:
    with pytest.raises(AccessError, match=needle):
        access.create_user(name, password, roles=roles, actor="ops")
    assert access.list_users() == []


def test_roles_change_and_the_last_admin_is_kept(access: Access) -> None:
    access.create_user("root", PASSWORD, roles=["admin"], actor="ops")
    with pytest.raises(AccessError, match="last enabled admin"):
        access.set_roles("root", ["client"], actor="ops")
    with pytest.raises(AccessError, match="last enabled admin"):
        access.disable_user("root", actor="ops")
    access.create_user("second", PASSWORD, roles=["ml-engineer"], actor="ops")
    access.set_roles("second", ["admin", "auditor"], actor="root")
    assert access.set_roles("root", "client", actor="second").roles == ("client",)
    with pytest.raises(AccessError, match="expected one or more of admin"):
        access.set_roles("root", ["wizard"], actor="second")
    with pytest.raises(AccessError, match="no user named 'ghost'"):
        access.set_roles("ghost", ["client"], actor="second")


def test_disable_and_enable(access: Access) -> None:
    access.create_user("alice", PASSWORD, actor="ops")
    token = access.login("alice", PASSWORD).token
    assert token is not None
    assert access.disable_user("alice", actor="ops").disabled
    with pytest.raises(AuthenticationError):
        access.verify_session(token)
    with pytest.raises(AuthenticationError):
        access.login("alice", PASSWORD)
    assert not access.enable_user("alice", actor="ops").disabled
    with pytest.raises(AuthenticationError):  # revoked by the disable, not just suspended
        access.verify_session(token)
    assert access.login("alice", PASSWORD).status == "ok"


def test_set_password_revokes_sessions_and_checks_the_current_one(
    access: Access, sink: ListSink
) -> None:
    access.create_user("alice", PASSWORD, actor="ops")
    token = access.login("alice", PASSWORD).token
    assert token is not None
    with pytest.raises(AuthenticationError):
        access.set_password("alice", "new-harbour-lantern-43", actor="alice", current="wrong")
    access.verify_session(token)  # a refused change leaves the session alone
    access.set_password("alice", "new-harbour-lantern-43", actor="alice", current=PASSWORD)
    with pytest.raises(AuthenticationError):
        access.verify_session(token)
    with pytest.raises(AuthenticationError):
        access.login("alice", PASSWORD)
    assert access.login("alice", "new-harbour-lantern-43").status == "ok"
    with pytest.raises(AccessError, match="at least 12"):
        access.set_password("alice", "short", actor="ops")


def test_rehash_on_login_when_parameters_change(
    access: Access, store: object, clock: FakeClock
) -> None:
    from warden.access import PasswordParams
    from warden.store import Store

    assert isinstance(store, Store)
    access.create_user("alice", PASSWORD, actor="ops")
    stronger = Access(
        store,
        clock=clock,
        password_params=PasswordParams(
            time_cost=2, memory_kib=128, parallelism=1, unsafe_allow_weak=True
        ),
    )
    old_hash = _hash_of(store, "alice")
    assert "m=64,t=1" in old_hash
    assert stronger.login("alice", PASSWORD).status == "ok"
    new_hash = _hash_of(store, "alice")
    assert "m=128,t=2" in new_hash and new_hash != old_hash
    assert access.login("alice", PASSWORD).status == "ok"  # still verifies under either


def _hash_of(store: object, name: str) -> str:
    from sqlalchemy import select

    from warden.store import Store
    from warden.store.tables import AccessUser

    assert isinstance(store, Store)
    with store.db.session() as session:
        value = session.scalar(select(AccessUser.password_hash).where(AccessUser.name == name))
    assert isinstance(value, str)
    return value
