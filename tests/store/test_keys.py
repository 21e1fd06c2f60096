"""Master keys, key files, wrapping of data keys, and the home's layout and file modes."""

from __future__ import annotations

import base64
import os
import re
import stat
from pathlib import Path

import pytest

from warden.config import Settings
from warden.errors import MasterKeyError, StoreError, TamperError
from warden.store import Keyring, MasterKey, Store, init_home
from warden.store.keys import load_keyring, unwrap_key, wrap_key


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_master_key_text_round_trip_and_id() -> None:
    key = MasterKey.generate()
    assert len(key.key) == 32
    assert re.fullmatch(r"[0-9a-f]{32}", key.key_id)
    again = MasterKey.from_text(f"  {key.to_text()}\n")
    assert again == key and again.key_id == key.key_id
    assert key.to_text() not in repr(key) and key.key_id in repr(key)
    assert MasterKey.generate().key_id != key.key_id


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("not base64!!", "is not base64 text"),
        (base64.b64encode(b"x" * 16).decode(), "decodes to 16 bytes; expected the base64 of 32"),
        ("", "decodes to 0 bytes"),
    ],
)
def test_malformed_key_text_is_refused(text: str, needle: str) -> None:
    with pytest.raises(MasterKeyError, match=needle):
        MasterKey.from_text(text, source="WARDEN_MASTER_KEY")


def test_master_key_must_be_32_bytes() -> None:
    with pytest.raises(MasterKeyError, match="a master key is 32 bytes; found 5"):
        MasterKey(b"short")


def test_keyring_get_names_the_missing_key() -> None:
    a, b = MasterKey.generate(), MasterKey.generate()
    ring = Keyring(a, (b,), source="test")
    assert ring.get(b.key_id) is b and ring.key_ids == (a.key_id, b.key_id)
    with pytest.raises(MasterKeyError, match=f"wrapped by master key {'f' * 32}, but the loaded"):
        ring.get("f" * 32)


def test_wrap_and_unwrap() -> None:
    key, dek, blob = MasterKey.generate(), os.urandom(32), "a" * 64
    wrapped = wrap_key(key, dek, blob)
    assert dek not in wrapped
    assert unwrap_key(key, key.key_id, wrapped, blob) == dek
    assert unwrap_key(Keyring(key), key.key_id, wrapped, blob) == dek
    assert wrap_key(key, dek, blob) != wrapped  # a fresh nonce each time
    with pytest.raises(TamperError, match=f"blob {'b' * 64}: the wrapped data key fails"):
        unwrap_key(key, key.key_id, wrapped, "b" * 64)
    altered = wrapped[:-1] + bytes([wrapped[-1] ^ 1])
    with pytest.raises(TamperError, match="fails authentication"):
        unwrap_key(key, key.key_id, altered, blob)
    other = MasterKey.generate()
    with pytest.raises(MasterKeyError, match=f"wrapped by master key {key.key_id}, not by"):
        unwrap_key(other, key.key_id, wrapped, blob)
    with pytest.raises(MasterKeyError, match="but the loaded master key"):
        unwrap_key(Keyring(other), key.key_id, wrapped, blob)


def test_key_file_created_0600_and_reused(tmp_path: Path) -> None:
    ring = load_keyring(tmp_path, None, create=True)
    path = tmp_path / "master.key"
    assert mode(path) == 0o600
    assert MasterKey.from_text(path.read_text()) == ring.current
    assert not ring.from_env and ring.others == ()
    assert load_keyring(tmp_path, None, create=True).current == ring.current
    assert load_keyring(tmp_path, None, create=False).current == ring.current


def test_missing_key_file_without_create(tmp_path: Path) -> None:
    with pytest.raises(MasterKeyError, match=r"no master key: .*master\.key does not exist"):
        load_keyring(tmp_path, None, create=False)


def test_group_readable_key_file_is_refused(tmp_path: Path) -> None:
    load_keyring(tmp_path, None, create=True)
    os.chmod(tmp_path / "master.key", 0o640)
    with pytest.raises(MasterKeyError, match=r"has mode 0640.*chmod 600"):
        load_keyring(tmp_path, None, create=False)


def test_malformed_key_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "master.key"
    path.write_text("dG9vIHNob3J0\n")
    os.chmod(path, 0o600)
    with pytest.raises(MasterKeyError, match=r"master key file .*master\.key decodes to 9 bytes"):
        load_keyring(tmp_path, None, create=True)


def test_env_key_wins_and_no_key_file_is_created(tmp_path: Path) -> None:
    key = MasterKey.generate()
    home = tmp_path / "home"
    with Store.open(Settings(home=home, master_key=key.to_text())) as store:
        assert store.keyring.from_env and store.keyring.current == key
        assert store.key_source == "WARDEN_MASTER_KEY"
        info = store.blobs.put_bytes(b"weights")
    assert not (home / "master.key").exists()
    with Store.open(Settings(home=home, master_key=key.to_text()), create=False) as store:
        assert store.blobs.read_bytes(info.id) == b"weights"


def test_env_may_list_older_keys(tmp_path: Path) -> None:
    a, b = MasterKey.generate(), MasterKey.generate()
    ring = load_keyring(tmp_path, f"{a.to_text()}, {b.to_text()}", create=True)
    assert ring.current == a and ring.others == (b,)
    with pytest.raises(MasterKeyError, match=r"WARDEN_MASTER_KEY \(key 2 of 2\) is not base64"):
        load_keyring(tmp_path, f"{a.to_text()},???", create=True)


def test_home_layout_and_modes(tmp_path: Path) -> None:
    home = tmp_path / "deep" / "home"
    old = os.umask(0o022)
    try:
        store = init_home(Settings(home=home))
    finally:
        os.umask(old)
    with store:
        store.blobs.put_bytes(b"x")
        assert mode(home) == 0o700
        assert mode(home / "blobs") == 0o700
        assert mode(home / "master.key") == 0o600
        assert mode(home / "warden.db") == 0o600
        for path in home.rglob("*"):
            assert mode(path) & 0o077 == 0, path
    with init_home(Settings(home=home)) as again:  # safe to run twice: same key, same data
        assert again.keyring.current == store.keyring.current
        assert len(again.blobs.ids()) == 1


def test_open_without_create_needs_an_existing_home(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match=r"no Warden home at .*run `warden init`"):
        Store.open(Settings(home=tmp_path / "nowhere"), create=False)
    assert not (tmp_path / "nowhere").exists()
    (tmp_path / "empty").mkdir()
    with pytest.raises(StoreError, match=r"no database at .*warden\.db"):
        Store.open(Settings(home=tmp_path / "empty"), create=False)


def test_store_opened_with_a_wrong_key_is_refused_before_any_write(store: Store) -> None:
    store.blobs.put_bytes(b"weights")
    right = store.keyring.current
    wrong = MasterKey.generate()
    settings = Settings(
        home=store.home, database_url=store.settings.database_url, master_key=wrong.to_text()
    )
    with pytest.raises(
        MasterKeyError,
        match=rf"wrapped by master key {right.key_id}, but the loaded key is {wrong.key_id}",
    ):
        Store.open(settings)


def test_lost_key_file_is_not_silently_replaced(store: Store) -> None:
    store.blobs.put_bytes(b"weights")
    (store.home / "master.key").unlink()
    with pytest.raises(MasterKeyError, match=r"no master key: .*master\.key does not exist"):
        Store.open(store.settings)
    assert not (store.home / "master.key").exists()


def test_the_master_key_never_reaches_the_database(sqlite_store: Store) -> None:
    key = sqlite_store.keyring.current
    for i in range(5):
        sqlite_store.blobs.put_bytes(os.urandom(100) + bytes([i]))
    files = [p for p in sqlite_store.home.glob("warden.db*") if p.is_file()]
    assert sqlite_store.home / "warden.db" in files
    forms = [key.key, key.to_text().encode(), key.key.hex().encode()]
    assert key.to_text().encode() in (sqlite_store.home / "master.key").read_bytes()
    for path in files:
        content = path.read_bytes()
        assert [form for form in forms if form in content] == [], path
