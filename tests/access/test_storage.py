"""What is stored: no secret in the clear, TOTP secrets sealed under the master key, and a
master-key rotation that re-wraps them."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select, update
from tests.access.conftest import PASSWORD, FakeClock, code_at, enrol

from warden.access import Access, AuthenticationError, rewrap_wrapped_keys, wrapped_key_ids
from warden.access.totp import secret_from_base32
from warden.errors import TamperError
from warden.store import Store
from warden.store.keys import Keyring, MasterKey
from warden.store.tables import AccessTotp, Base


def _every_stored_value(store: Store) -> list[object]:
    values: list[object] = []
    with store.db.session() as session:
        for table in Base.metadata.sorted_tables:
            for row in session.execute(select(table)):
                values.extend(row)
    return values


def test_no_secret_is_stored_in_the_clear(access: Access, store: Store, clock: FakeClock) -> None:
    access.create_user("alice", PASSWORD, actor="ops")
    secret_b32, codes = enrol(access, "alice", clock)
    secret = secret_from_base32(secret_b32)
    session_token = access.login("alice", PASSWORD, code_at(secret_b32, clock.now)).token
    issued = access.issue_key("svc", models=["m"], plan="p", actor="ops")
    assert session_token is not None
    key_secret = issued.token.split("_", 2)[2]
    needles_text = [PASSWORD, session_token, key_secret, issued.token, secret_b32, *codes]
    needles_bytes = [s.encode() for s in needles_text] + [secret]
    values = _every_stored_value(store)
    for value in values:
        if isinstance(value, str):
            assert not any(n in value for n in needles_text)
        if isinstance(value, bytes):
            assert not any(n in value for n in needles_bytes)
    if store.db.dialect == "sqlite":
        store.db.dispose()  # checkpoint the WAL into the file
        files = sorted(Path(store.home).glob("warden.db*"))
        assert files
        for path in files:
            raw = path.read_bytes()
            for needle in needles_bytes:
                assert needle not in raw, (path.name, needle[:6])
        assert b"argon2id" in (Path(store.home) / "warden.db").read_bytes()  # the hash is there


def test_a_sealed_secret_moved_to_another_user_fails(
    access: Access, store: Store, clock: FakeClock
) -> None:
    access.create_user("alice", PASSWORD, actor="ops")
    access.create_user("bob", "tangerine-osprey-ledger-5", actor="ops")
    enrol(access, "alice", clock)
    bob_secret, _ = enrol(access, "bob", clock)
    alice_id, bob_id = access.get_user("alice").id, access.get_user("bob").id
    with store.db.session() as session:
        alice_row = session.get(AccessTotp, alice_id)
        assert alice_row is not None
        session.execute(
            update(AccessTotp)
            .where(AccessTotp.user_id == bob_id)
            .values(wrapped_key=alice_row.wrapped_key, sealed_secret=alice_row.sealed_secret)
        )
    with pytest.raises(TamperError, match="fails authentication"):
        access.login("bob", "tangerine-osprey-ledger-5", code_at(bob_secret, clock.now))


def test_master_key_rotation_rewraps_totp_keys(
    access: Access, store: Store, clock: FakeClock
) -> None:
    access.create_user("alice", PASSWORD, actor="ops")
    secret, _ = enrol(access, "alice", clock)
    old = store.keyring.current
    assert wrapped_key_ids(store.db) == {old.key_id}
    new = MasterKey.generate()
    assert rewrap_wrapped_keys(store.db, Keyring(new, (old,)), new) == 1
    assert rewrap_wrapped_keys(store.db, Keyring(new, (old,)), new) == 0  # re-run: nothing to do
    assert wrapped_key_ids(store.db) == {new.key_id}
    only_new = Access(store, clock=clock, password_params=access.hasher.params)
    store.blobs.keyring = Keyring(new)
    assert only_new.login("alice", PASSWORD, code_at(secret, clock.now)).status == "ok"
    store.blobs.keyring = Keyring(old)
    clock.advance(seconds=30)
    with pytest.raises(Exception, match="master key"):
        only_new.login("alice", PASSWORD, code_at(secret, clock.now))
    with pytest.raises(AuthenticationError):
        only_new.login("alice", "wrong-password-000")


def test_rotate_master_key_rewraps_totp_keys_too(
    access: Access, store: Store, clock: FakeClock
) -> None:
    from warden.store.keys import rotate_master_key

    access.create_user("alice", PASSWORD, actor="ops")
    secret, _ = enrol(access, "alice", clock)
    old = store.keyring.current
    result = rotate_master_key(store.db, store.home, store.keyring)
    assert result.rewrapped >= 1
    assert wrapped_key_ids(store.db) == {result.new_key_id} != {old.key_id}
    clock.advance(seconds=30)
    with Store.open(store.settings, create=False) as reopened:  # only the new key now
        assert reopened.keyring.key_ids == (result.new_key_id,)
        fresh = Access(reopened, clock=clock, password_params=access.hasher.params)
        assert fresh.login("alice", PASSWORD, code_at(secret, clock.now)).status == "ok"
