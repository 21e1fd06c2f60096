"""Master-key rotation: re-wrap without re-encrypting, interrupted runs, environment keys."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest
from sqlalchemy import select

import warden.store.keys as keys_module
from warden.config import Settings
from warden.errors import MasterKeyError
from warden.store import Database, Keyring, MasterKey, Store, rotate_master_key
from warden.store.tables import Blob

N_BLOBS = 5


def fill(store: Store) -> dict[str, bytes]:
    contents = {}
    for i in range(N_BLOBS):
        data = os.urandom(3000 + i)
        contents[store.blobs.put_bytes(data).id] = data
    return contents


def key_ids(store: Store) -> dict[str, str]:
    with store.db.session() as session:
        return {
            blob_id: key_id for blob_id, key_id in session.execute(select(Blob.id, Blob.key_id))
        }


def files(store: Store) -> dict[str, bytes]:
    return {blob_id: store.blobs.path_of(blob_id).read_bytes() for blob_id in store.blobs.ids()}


def assert_readable(settings: Settings, contents: dict[str, bytes]) -> None:
    with Store.open(settings, create=False) as store:
        for blob_id, data in contents.items():
            assert store.blobs.read_bytes(blob_id) == data
        assert store.blobs.verify_all() == []


def fail_after(monkeypatch: pytest.MonkeyPatch, n_wraps: int) -> None:
    """Make the rotation crash at its ``n_wraps + 1``-th re-wrap, in batches of two rows."""
    real = keys_module.wrap_key
    calls = 0

    def flaky(master: MasterKey, dek: bytes, blob_id: str) -> bytes:
        nonlocal calls
        calls += 1
        if calls > n_wraps:
            raise KeyboardInterrupt("simulated crash")
        return real(master, dek, blob_id)

    monkeypatch.setattr(keys_module, "_BATCH", 2)
    monkeypatch.setattr(keys_module, "wrap_key", flaky)


def test_rotation_rewraps_every_row_and_leaves_blob_files_alone(store: Store) -> None:
    contents = fill(store)
    old = store.keyring.current
    before = files(store)
    result = rotate_master_key(store.db, store.home, store.keyring)
    assert (result.old_key_id, result.rewrapped, result.already_done) == (old.key_id, N_BLOBS, 0)
    assert result.new_key_id != old.key_id and not result.switch_env
    assert set(key_ids(store).values()) == {result.new_key_id}
    assert files(store) == before
    key_file = store.home / "master.key"
    assert MasterKey.from_text(key_file.read_text()).key_id == result.new_key_id
    assert old.to_text() not in key_file.read_text()
    assert sorted(p.name for p in store.home.glob("*master.key*")) == ["master.key"]
    assert os.stat(key_file).st_mode & 0o077 == 0
    assert_readable(store.settings, contents)
    assert f"{N_BLOBS} data key(s) re-wrapped" in result.message


def test_rotating_twice_and_with_a_given_key(store: Store) -> None:
    contents = fill(store)
    first = rotate_master_key(store.db, store.home, store.keyring)
    chosen = MasterKey.generate()
    with Store.open(store.settings, create=False) as reopened:
        second = rotate_master_key(reopened.db, reopened.home, reopened.keyring, new_key=chosen)
    assert second.old_key_id == first.new_key_id and second.new_key_id == chosen.key_id
    assert second.rewrapped == N_BLOBS
    assert set(key_ids(store).values()) == {chosen.key_id}
    assert_readable(store.settings, contents)


def test_interrupted_rotation_stays_readable_and_a_rerun_completes(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    contents = fill(store)
    old = store.keyring.current
    new = MasterKey.generate()
    fail_after(monkeypatch, 3)  # batch 1 (2 rows) commits; batch 2 rolls back mid-way
    with pytest.raises(KeyboardInterrupt, match="simulated crash"):
        rotate_master_key(store.db, store.home, store.keyring, new_key=new)
    monkeypatch.undo()
    ids = key_ids(store)
    assert sorted(ids.values()).count(new.key_id) == 2
    assert sorted(ids.values()).count(old.key_id) == N_BLOBS - 2
    assert (store.home / "master.key.next").exists()
    assert MasterKey.from_text((store.home / "master.key").read_text()) == old
    assert_readable(store.settings, contents)  # both keys are loaded while pending

    with Store.open(store.settings, create=False) as pending:
        assert pending.keyring.current == new and pending.keyring.others == (old,)
        added = pending.blobs.put_bytes(b"stored during the rotation")
        assert key_ids(pending)[added.id] == new.key_id
        other = MasterKey.generate()
        with pytest.raises(MasterKeyError, match=f"rotation to master key {new.key_id} is pend"):
            rotate_master_key(pending.db, pending.home, pending.keyring, new_key=other)
        result = rotate_master_key(pending.db, pending.home, pending.keyring)
    assert (result.old_key_id, result.new_key_id) == (old.key_id, new.key_id)
    assert (result.rewrapped, result.already_done) == (N_BLOBS - 2, 3)
    assert set(key_ids(store).values()) == {new.key_id}
    assert not (store.home / "master.key.next").exists()
    assert MasterKey.from_text((store.home / "master.key").read_text()) == new
    assert_readable(store.settings, {**contents, added.id: b"stored during the rotation"})


def test_env_key_rotation(store: Store) -> None:
    old, new = MasterKey.generate(), MasterKey.generate()
    env_settings = dataclasses.replace(store.settings, master_key=old.to_text())
    (store.home / "master.key").unlink()  # this store keeps its key in the environment
    with Store.open(env_settings) as env_store:
        contents = fill(env_store)
        with pytest.raises(MasterKeyError, match=r"provide the new key .*WARDEN_NEW_MASTER_KEY"):
            rotate_master_key(env_store.db, env_store.home, env_store.keyring)
        result = rotate_master_key(env_store.db, env_store.home, env_store.keyring, new_key=new)
    assert (result.old_key_id, result.new_key_id) == (old.key_id, new.key_id)
    assert result.rewrapped == N_BLOBS and result.switch_env
    assert "set WARDEN_MASTER_KEY to the new key" in result.message
    assert list(store.home.glob("*master.key*")) == []  # no key ever written to disk
    assert_readable(dataclasses.replace(env_settings, master_key=new.to_text()), contents)
    with pytest.raises(MasterKeyError, match=f"wrapped by master key {new.key_id}"):
        Store.open(env_settings, create=False)


def test_interrupted_env_key_rotation(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    old, new = MasterKey.generate(), MasterKey.generate()
    env_settings = dataclasses.replace(store.settings, master_key=old.to_text())
    (store.home / "master.key").unlink()
    with Store.open(env_settings) as env_store:
        contents = fill(env_store)
        fail_after(monkeypatch, 2)
        with pytest.raises(KeyboardInterrupt):
            rotate_master_key(env_store.db, env_store.home, env_store.keyring, new_key=new)
        monkeypatch.undo()
    both = dataclasses.replace(env_settings, master_key=f"{old.to_text()},{new.to_text()}")
    assert_readable(both, contents)  # old key current, new key accepted for reading
    with Store.open(both, create=False) as resumed:
        result = rotate_master_key(resumed.db, resumed.home, resumed.keyring, new_key=new)
    assert (result.rewrapped, result.already_done) == (N_BLOBS - 2, 2)
    assert_readable(dataclasses.replace(env_settings, master_key=new.to_text()), contents)
    # Re-running after switching the variable is a no-op.
    switched = dataclasses.replace(env_settings, master_key=new.to_text())
    with Store.open(switched, create=False) as done:
        again = rotate_master_key(done.db, done.home, done.keyring, new_key=new)
    assert (again.rewrapped, again.already_done, again.switch_env) == (0, N_BLOBS, False)


def test_rotating_to_the_current_key_is_refused(store: Store) -> None:
    with pytest.raises(MasterKeyError, match="the new master key is the current key"):
        rotate_master_key(store.db, store.home, store.keyring, new_key=store.keyring.current)
    assert not Path(store.home / "master.key.next").exists()


def test_a_store_opened_before_a_rotation_follows_it(store: Store) -> None:
    contents = fill(store)
    old = store.keyring.current
    with Store.open(store.settings, create=False) as rotator:
        result = rotate_master_key(rotator.db, rotator.home, rotator.keyring)
    # `store` (think: a long-running gateway) still holds the old keyring in memory.
    assert store.blobs.keyring.current == old
    for blob_id, data in contents.items():
        assert store.blobs.read_bytes(blob_id) == data  # rows name the new key: re-read
    added = store.blobs.put_bytes(b"written after the rotation")
    assert key_ids(store)[added.id] == result.new_key_id
    assert store.keyring.current.key_id == result.new_key_id
    assert_readable(store.settings, {**contents, added.id: b"written after the rotation"})


def test_a_stale_store_writing_during_a_rotation_is_caught_by_it(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A blob put with the old key while a rotation runs is re-wrapped by the rotation."""
    fill(store)
    stale = Store.open(store.settings, create=False)
    real = keys_module._rewrap_batch
    late: list[str] = []

    def batch_then_put(db: Database, ring: Keyring, new: MasterKey) -> int:
        done = real(db, ring, new)
        if not late:
            stale.blobs._reload_keyring = None  # simulate a process that cannot see the files
            late.append(stale.blobs.put_bytes(b"late arrival").id)
        return done

    monkeypatch.setattr(keys_module, "_rewrap_batch", batch_then_put)
    with stale:
        result = rotate_master_key(store.db, store.home, store.keyring)
    assert key_ids(store)[late[0]] == result.new_key_id
    assert_readable(store.settings, {late[0]: b"late arrival"})


def test_rotation_reads_the_key_files_not_a_stale_keyring(store: Store) -> None:
    contents = fill(store)
    stale_ring = store.keyring
    first = rotate_master_key(store.db, store.home, stale_ring)
    second = rotate_master_key(store.db, store.home, stale_ring)  # stale: names the retired key
    assert second.old_key_id == first.new_key_id and second.rewrapped == N_BLOBS
    assert_readable(store.settings, contents)
