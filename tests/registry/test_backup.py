"""Backups: the round trip (SQLite and PostgreSQL), verification, tamper detection, refusals."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import re
import shutil
import stat
import tarfile
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from warden.config import Settings
from warden.errors import BackupError, MasterKeyError, TamperError
from warden.registry.backup import (
    FORMAT,
    BackupManifest,
    create_backup,
    restore_backup,
    verify_backup,
)
from warden.store import MasterKey, Store
from warden.store.blobs import CHUNK_SIZE
from warden.store.db import Database
from warden.store.tables import (
    Alias,
    Assessment,
    Base,
    Dataset,
    LineageEdge,
    Model,
    ModelVersion,
    Note,
    Scan,
    Signature,
    Transition,
    VersionFile,
)

MARKER = b"PLAINTEXT-MODEL-BYTES-7f3a"
"""Repeated in a stored blob: must never appear in a backup file."""
POPULATED = (
    "blobs", "models", "model_versions", "version_files", "datasets", "lineage_edges", "scans",
    "signatures", "assessments", "transitions", "aliases", "notes",
)  # fmt: skip
"""The tables :func:`populate` fills (the round trip compares every table)."""


# --- helpers ---------------------------------------------------------------------------------


def populate(store: Store) -> None:
    """Every table gets rows: models, versions with files of several sizes, datasets, lineage,
    scans, signatures, assessments, transitions (one overridden), aliases and notes."""
    blobs = [
        store.blobs.put_bytes(b""),
        store.blobs.put_bytes(os.urandom(100)),
        store.blobs.put_bytes(os.urandom(CHUNK_SIZE)),  # exactly one chunk
        store.blobs.put_bytes(MARKER * (2 * CHUNK_SIZE // len(MARKER) + 7)),  # three chunks
    ]
    odd_time = datetime(2024, 2, 29, 23, 59, 59, 123456, tzinfo=timezone(timedelta(hours=5)))
    with store.db.session() as s:
        m1 = Model(
            name="digits-cnn",
            description='ünïcödé ✓ "quoted"\nsecond line',
            intended_use="digit recognition",
            limitations="8x8 images only",
            owner="ml-team",
            created_by="alice",
            created_at=odd_time,
        )
        m2 = Model(name="fraud", created_by="bob")
        s.add_all([m1, m2])
        s.flush()
        v1 = ModelVersion(
            model_id=m1.id,
            number=1,
            state="deployed",
            artifact_digest="sha256:" + blobs[3].id,
            artifact_name="model.pt",
            artifact_kind="file",
            framework="torch",
            input_spec={"shape": [1, 8, 8], "dtype": "float32", "bounds": [0.0, 1.0]},
            attributes={"epochs": 8, "lr": 0.001, "nested": {"a": [1, None, True, "x"]}},
            created_by="alice",
        )
        v2 = ModelVersion(
            model_id=m1.id,
            number=2,
            state="approved",
            artifact_digest="sha256:" + "ab" * 32,
            artifact_name="model",
            artifact_kind="dir",
            input_spec=None,
            attributes={},
            created_by="alice",
        )
        v3 = ModelVersion(
            model_id=m2.id,
            number=1,
            state="quarantined",
            artifact_digest="sha256:" + blobs[1].id,
            artifact_name="fraud.onnx",
            artifact_kind="file",
            framework="onnx",
            created_by="bob",
        )
        s.add_all([v1, v2, v3])
        s.flush()
        s.add_all(
            [
                VersionFile(version_id=v1.id, path="model.pt", blob_id=blobs[3].id,
                            size=blobs[3].size),
                VersionFile(version_id=v2.id, path="weights/a.bin", blob_id=blobs[2].id,
                            size=blobs[2].size),
                VersionFile(version_id=v2.id, path="config.json", blob_id=blobs[1].id, size=100),
                VersionFile(version_id=v2.id, path="EMPTY", blob_id=blobs[0].id, size=0),
                VersionFile(version_id=v3.id, path="fraud.onnx", blob_id=blobs[1].id, size=100),
            ]
        )  # fmt: skip
        d1 = Dataset(
            name="digits",
            fingerprint="sha256:" + "11" * 32,
            source="sklearn.datasets.load_digits",
            license="BSD-3-Clause",
            n_rows=1797,
            attributes={"columns": [f"pixel_{i}" for i in range(64)], "label": "target"},
            created_by="alice",
        )
        d2 = Dataset(name="digits", fingerprint="sha256:" + "22" * 32, n_rows=None, created_by="al")
        s.add_all([d1, d2])
        s.flush()
        s.add_all(
            [
                LineageEdge(version_id=v1.id, kind="trained-on", dataset_id=d1.id,
                            details={"split": "train", "fraction": 0.75}, created_by="alice"),
                LineageEdge(version_id=v1.id, kind="evaluated-on", dataset_id=d2.id,
                            created_by="alice"),
                LineageEdge(version_id=v2.id, kind="derived-from", parent_version_id=v1.id,
                            details={"hardening": "adversarial training"}, created_by="alice"),
                Scan(version_id=v1.id, artifact_digest=v1.artifact_digest, scanner_version="0.1.0",
                     clean=True, max_severity=None, finding_count=0,
                     report={"format": "warden-scan/1", "findings": []}, created_by="ci"),
                Scan(version_id=v3.id, artifact_digest=v3.artifact_digest, scanner_version="0.1.0",
                     clean=False, max_severity="critical", finding_count=2,
                     report={"findings": [{"id": "pickle.global", "severity": "critical"}]},
                     created_by="ci"),
                Signature(version_id=v1.id, artifact_digest=v1.artifact_digest, key_id="ed25519:ab",
                          public_key="-----BEGIN PUBLIC KEY-----\nMCow\n-----END PUBLIC KEY-----\n",
                          bundle='{"signatures": []}', verified=True, detail="ok",
                          created_by="alice"),
                Assessment(version_id=v1.id, artifact_digest=v1.artifact_digest, grade="B+",
                           report={"grade": "B+", "scores": {"ML01": 0.75, "ML05": 1e-9}},
                           created_by="ci"),
                Transition(version_id=v1.id, from_state=None, to_state="registered",
                           actor="alice", at=odd_time),
                Transition(version_id=v1.id, from_state="registered", to_state="approved",
                           actor="carol", reason="exception approved by the CISO", override=True,
                           evidence={"scan": 1, "signature": 1, "assessment": None}),
                Transition(version_id=v1.id, from_state="approved", to_state="deployed",
                           actor="carol"),
                Alias(model_id=m1.id, name="champion", version_id=v1.id, updated_by="carol"),
                Alias(model_id=m1.id, name="previous", version_id=v2.id, updated_by="carol"),
                Note(model_id=m1.id, author="alice", text="model-level note"),
                Note(model_id=m1.id, version_id=v2.id, author="bob", text="multi\nline ✓"),
            ]
        )  # fmt: skip


def dump(db: Database) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table as Python values, ordered by primary key."""
    with db.engine.connect() as connection:
        return {
            table.name: [
                tuple(row)
                for row in connection.execute(select(table).order_by(*table.primary_key.columns))
            ]
            for table in Base.metadata.sorted_tables
        }


def largest_blob(store: Store) -> str:
    return max(store.blobs.ids(), key=lambda blob_id: store.blobs.info(blob_id).size)


def plaintexts(store: Store) -> dict[str, bytes]:
    return {blob_id: store.blobs.read_bytes(blob_id) for blob_id in store.blobs.ids()}


def open_store(home: Path, database_url: str | None = None, key: str | None = None) -> Store:
    return Store.open(Settings(home=home, database_url=database_url, master_key=key))


def rewrite(
    src: Path,
    dest: Path,
    change: Callable[[str, bytes], bytes | None] = lambda _n, data: data,
    extra: tuple[tarfile.TarInfo, bytes | None] | None = None,
) -> None:
    """Copy a backup member by member; ``change`` may alter a member or drop it (None)."""
    with tarfile.open(src) as old, tarfile.open(dest, "w", format=tarfile.PAX_FORMAT) as new:
        for info in old.getmembers():
            handle = old.extractfile(info)
            assert handle is not None
            data = change(info.name, handle.read())
            if data is None:
                continue
            info.size = len(data)
            new.addfile(info, io.BytesIO(data))
        if extra is not None:
            info, data = extra
            new.addfile(info, None if data is None else io.BytesIO(data))


def flip_byte(path: Path, member: str, at: int = 0) -> None:
    with tarfile.open(path) as tar:
        offset = tar.getmember(member).offset_data + at
    with path.open("r+b") as handle:
        handle.seek(offset)
        byte = handle.read(1)
        handle.seek(offset)
        handle.write(bytes([byte[0] ^ 0x01]))


def member_info(name: str, size: int = 0, kind: bytes = tarfile.REGTYPE) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size, info.type, info.mode = size, kind, 0o600
    return info


def recompute_hashes(manifest: dict[str, Any], name: str, data: bytes) -> None:
    """Update the manifest's plain hashes for a changed member (what a forger would do)."""
    for table in manifest["tables"]:
        if f"tables/{table['name']}.jsonl" == name:
            table["sha256"] = hashlib.sha256(data).hexdigest()
            table["size"] = len(data)
            table["rows"] = data.count(b"\n")


# --- fixtures --------------------------------------------------------------------------------


@pytest.fixture
def source(tmp_path: Path, database_url: str) -> Iterator[Store]:
    """A populated store on the database under test (SQLite or PostgreSQL)."""
    store = open_store(tmp_path / "source", database_url)
    populate(store)
    yield store
    store.close()


@pytest.fixture
def sqlite_source(tmp_path: Path) -> Iterator[Store]:
    """A populated store on SQLite (for the format and tamper tests)."""
    store = open_store(tmp_path / "sqlite-source")
    populate(store)
    yield store
    store.close()


@pytest.fixture
def backup(sqlite_source: Store, tmp_path: Path) -> Path:
    path = tmp_path / "store.wbak"
    create_backup(sqlite_source, path)
    return path


# --- round trip ------------------------------------------------------------------------------


def test_round_trip_into_an_empty_home_is_identical(source: Store, tmp_path: Path) -> None:
    before, blobs_before = dump(source.db), plaintexts(source)
    assert all(before[name] for name in POPULATED), [n for n in POPULATED if not before[n]]
    path = tmp_path / "backup.wbak"
    manifest = create_backup(source, path)
    assert manifest.format == FORMAT and manifest.dialect == source.db.dialect
    assert {t.name: t.rows for t in manifest.tables} == {k: len(v) for k, v in before.items()}
    assert manifest.key_ids == (source.keyring.current.key_id,)

    # restore into SQLite, the key from the environment (WARDEN_MASTER_KEY's value)
    key = source.keyring.current.to_text()
    result = restore_backup(path, Settings(home=tmp_path / "restored", master_key=key))
    assert result.rows == sum(len(rows) for rows in before.values())
    assert result.blobs == len(blobs_before) == 4
    assert not result.key_file_written and not (tmp_path / "restored" / "master.key").exists()
    with open_store(tmp_path / "restored", key=key) as restored:
        assert dump(restored.db) == before
        assert plaintexts(restored) == blobs_before
        assert restored.blobs.verify_all() == []
        for blob_id in blobs_before:  # the ciphertext files are copied as they are
            original = source.blobs.path_of(blob_id).read_bytes()
            assert restored.blobs.path_of(blob_id).read_bytes() == original
    assert not list((tmp_path / "restored").glob(".restore-*"))


def test_restore_into_the_database_under_test_keeps_ids_and_sequences(
    sqlite_source: Store, tmp_path: Path, database_url: str
) -> None:
    before, blobs_before = dump(sqlite_source.db), plaintexts(sqlite_source)
    path = tmp_path / "backup.wbak"
    create_backup(sqlite_source, path)
    home = tmp_path / "restored"
    home.mkdir(mode=0o700)
    shutil.copy2(sqlite_source.home / "master.key", home / "master.key")  # the key file, copied
    settings = Settings(home=home, database_url=database_url)
    result = restore_backup(path, settings)
    assert result.revision == result.backup_revision
    with Store.open(settings) as restored:
        assert dump(restored.db) == before
        assert plaintexts(restored) == blobs_before
        # new rows get fresh ids after the explicitly inserted ones (PostgreSQL sequences moved)
        with restored.db.session() as s:
            model = Model(name="after-restore", created_by="t")
            s.add(model)
            s.flush()
            version = ModelVersion(
                model_id=model.id, number=1, artifact_digest="sha256:0", artifact_name="m",
                artifact_kind="file", created_by="t",
            )  # fmt: skip
            s.add(version)
            s.flush()
            assert model.id == max(row[0] for row in before["models"]) + 1
            assert version.id == max(row[0] for row in before["model_versions"]) + 1
        new = restored.blobs.put_bytes(b"written after the restore")
        assert restored.blobs.read_bytes(new.id) == b"written after the restore"


def test_backup_file_is_private_and_holds_no_plaintext_or_master_key(
    sqlite_source: Store, backup: Path
) -> None:
    assert stat.S_IMODE(backup.stat().st_mode) == 0o600
    assert [p.name for p in backup.parent.iterdir() if p.name.startswith(".")] == []
    data = backup.read_bytes()
    assert MARKER not in data
    key = sqlite_source.keyring.current
    assert key.key not in data
    assert key.to_text().encode() not in data
    assert base64.b64encode(key.key).rstrip(b"=") not in data
    with tarfile.open(backup) as tar:
        names = tar.getnames()
    assert names[-1] == "manifest.json"
    assert all(n.startswith(("tables/", "blobs/")) for n in names[:-1])


def test_empty_store_round_trips(tmp_path: Path) -> None:
    with open_store(tmp_path / "empty") as store:
        path = tmp_path / "empty.wbak"
        manifest = create_backup(store, path)
        key = store.keyring.current.to_text()
    assert manifest.rows == 0 and manifest.blobs == () and manifest.key_ids == ()
    assert verify_backup(path).ok
    result = restore_backup(path, Settings(home=tmp_path / "restored", master_key=key))
    assert result.rows == 0 and result.blobs == 0


def test_create_refuses_an_existing_file_unless_overwrite(
    sqlite_source: Store, backup: Path
) -> None:
    with pytest.raises(BackupError, match="already exists"):
        create_backup(sqlite_source, backup)
    before = backup.stat().st_ino
    create_backup(sqlite_source, backup, overwrite=True)
    assert backup.stat().st_ino != before  # replaced by rename, never written in place
    assert verify_backup(backup, sqlite_source.keyring).ok


# --- verify ----------------------------------------------------------------------------------


def test_verify_levels(sqlite_source: Store, backup: Path) -> None:
    plain = verify_backup(backup)
    assert plain.ok and not plain.hmac_checked and not plain.blobs_authenticated
    assert isinstance(plain.manifest, BackupManifest) and len(plain.manifest.blobs) == 4
    fast = verify_backup(backup, sqlite_source.keyring, decrypt=False)
    assert fast.ok and fast.hmac_checked and not fast.blobs_authenticated
    full = verify_backup(backup, sqlite_source.keyring)
    assert full.ok and full.hmac_checked and full.blobs_authenticated


@pytest.mark.parametrize(
    ("member", "at", "needle"),
    [
        ("tables/models.jsonl", 5, "member tables/models.jsonl: SHA-256"),
        ("tables/blobs.jsonl", 40, "member tables/blobs.jsonl: SHA-256"),
        ("blob", 200, "it was altered"),
        ("manifest.json", 0, "manifest.json"),
    ],
)
def test_verify_detects_a_flipped_byte(
    sqlite_source: Store, backup: Path, member: str, at: int, needle: str
) -> None:
    if member == "blob":
        member = f"blobs/{largest_blob(sqlite_source)}"
    flip_byte(backup, member, at)
    check = verify_backup(backup)
    assert not check.ok
    assert any(needle in p for p in check.problems), check.problems
    with pytest.raises(BackupError):
        restore_backup(backup, Settings(home=backup.parent / "t"), keyring=sqlite_source.keyring)
    assert not (backup.parent / "t").exists()


def test_verify_detects_a_missing_member(sqlite_source: Store, backup: Path) -> None:
    blob_id = sqlite_source.blobs.ids()[0]
    damaged = backup.with_name("missing.wbak")
    rewrite(
        backup, damaged, lambda n, d: None if n in {f"blobs/{blob_id}", "tables/notes.jsonl"} else d
    )
    check = verify_backup(damaged)
    assert f"member blobs/{blob_id} is missing" in check.problems
    assert "member tables/notes.jsonl is missing" in check.problems


@pytest.mark.parametrize("name", ["blobs/" + "ab" * 32, "tables/extra.jsonl"])
def test_verify_detects_an_extra_member(backup: Path, name: str) -> None:
    damaged = backup.with_name("extra.wbak")
    rewrite(backup, damaged, extra=(member_info(name, 3), b"abc"))
    check = verify_backup(damaged)
    assert f"member {name} is not listed in the manifest" in check.problems


def test_manifest_edit_with_recomputed_hashes_is_caught_by_the_hmac(
    sqlite_source: Store, backup: Path
) -> None:
    forged = backup.with_name("forged.wbak")
    edited: dict[str, bytes] = {}

    def edit_rows(name: str, data: bytes) -> bytes:
        if name == "tables/models.jsonl":
            data = data.replace(b'"digits-cnn"', b'"evil-model"')
            edited[name] = data
        return data

    rewrite(backup, forged, edit_rows)
    # a forger recomputes the plain hashes in the manifest
    with tarfile.open(forged) as tar:
        handle = tar.extractfile("manifest.json")
        assert handle is not None
        manifest = json.loads(handle.read())
    recompute_hashes(manifest, "tables/models.jsonl", edited["tables/models.jsonl"])
    final = backup.with_name("forged2.wbak")
    new_manifest = json.dumps(manifest).encode()
    rewrite(forged, final, lambda n, d: new_manifest if n == "manifest.json" else d)

    without_key = verify_backup(final)
    assert without_key.ok and not without_key.hmac_checked  # hashes alone cannot tell
    with_key = verify_backup(final, sqlite_source.keyring, decrypt=False)
    assert not with_key.ok
    assert any("fails HMAC authentication" in p for p in with_key.problems)
    with pytest.raises(BackupError, match="fails HMAC authentication"):
        restore_backup(final, Settings(home=backup.parent / "t"), keyring=sqlite_source.keyring)
    assert not (backup.parent / "t").exists()


@pytest.mark.parametrize(
    ("info", "needle"),
    [
        (member_info("blobs/link", kind=tarfile.SYMTYPE), "is a link"),
        (member_info("tables/hard.jsonl", kind=tarfile.LNKTYPE), "is a link"),
        (member_info("blobs/", kind=tarfile.DIRTYPE), "not a regular file"),
        (member_info("../escape.jsonl", 3), "unexpected member '../escape.jsonl'"),
        (member_info("/etc/passwd", 3), "unexpected member '/etc/passwd'"),
        (member_info("tables/../../x.jsonl", 3), "unexpected member"),
        (member_info("manifest.json", 3), "member 'manifest.json' appears twice"),
    ],
)
def test_unsafe_members_are_refused(
    sqlite_source: Store, backup: Path, info: tarfile.TarInfo, needle: str
) -> None:
    if info.issym() or info.islnk():
        info.linkname = "/etc/passwd"
    damaged = backup.with_name("unsafe.wbak")
    rewrite(backup, damaged, extra=(info, b"abc" if info.isreg() else None))
    check = verify_backup(damaged)
    assert not check.ok and check.manifest is None
    assert needle in check.problems[0], check.problems
    home = backup.parent / "target"
    with pytest.raises(BackupError, match=re.escape(needle)):
        restore_backup(damaged, Settings(home=home), keyring=sqlite_source.keyring)
    assert not home.exists()


def test_not_a_backup_and_truncated_files(backup: Path) -> None:
    garbage = backup.with_name("garbage.wbak")
    garbage.write_bytes(os.urandom(5000))
    assert "not a readable backup" in verify_backup(garbage).problems[0]
    data = backup.read_bytes()
    truncated = backup.with_name("truncated.wbak")
    with tarfile.open(backup) as tar:
        cut = tar.getmember("manifest.json").offset - 4000  # inside the last blob
    truncated.write_bytes(data[:cut])
    check = verify_backup(truncated)
    assert not check.ok and "the tar structure is damaged" in check.problems[0]
    with pytest.raises(BackupError, match="does not exist"):
        verify_backup(backup.with_name("absent.wbak"))


def test_other_formats_are_refused(backup: Path) -> None:
    def bump(name: str, data: bytes) -> bytes:
        if name != "manifest.json":
            return data
        doc = json.loads(data)
        doc["format"] = "warden-backup/99"
        return json.dumps(doc).encode()

    other = backup.with_name("other.wbak")
    rewrite(backup, other, bump)
    check = verify_backup(other)
    assert "format 'warden-backup/99' is not supported" in check.problems[0]


def test_verify_with_another_master_key_is_a_key_error(backup: Path) -> None:
    from warden.store.keys import Keyring

    with pytest.raises(MasterKeyError, match="authenticates the backup manifest"):
        verify_backup(backup, Keyring(MasterKey.generate()))


# --- restore refusals and rollback -----------------------------------------------------------


def test_restore_refuses_a_non_empty_target(sqlite_source: Store, backup: Path) -> None:
    home = backup.parent / "restored"
    settings = Settings(home=home)
    restore_backup(backup, settings, keyring=sqlite_source.keyring, write_key_file_to_home=True)
    db = Database(f"sqlite+pysqlite:///{home / 'warden.db'}")
    before = dump(db)
    with pytest.raises(BackupError, match="holds blob files"):
        restore_backup(backup, settings)  # the key now comes from home/master.key
    shutil.rmtree(home / "blobs")
    with pytest.raises(BackupError, match=r"database .* is not empty \(\d+ row\(s\) in \w+\)"):
        restore_backup(backup, settings)
    assert dump(db) == before
    assert not (home / "blobs").exists()
    db.dispose()


def test_restore_with_the_wrong_master_key_touches_nothing(backup: Path) -> None:
    home = backup.parent / "restored"
    wrong = MasterKey.generate()
    with pytest.raises(MasterKeyError, match=f"the key given is {wrong.key_id}"):
        restore_backup(backup, Settings(home=home, master_key=wrong.to_text()))
    assert not home.exists()
    with pytest.raises(MasterKeyError, match="restoring needs the master key"):
        restore_backup(backup, Settings(home=home))
    assert not home.exists()


def test_restore_rolls_back_when_a_blob_fails_authentication(
    sqlite_source: Store, tmp_path: Path, database_url: str
) -> None:
    # a blob altered in the store before the backup: hashes match the (altered) ciphertext,
    # only decryption notices
    victim = sqlite_source.blobs.path_of(largest_blob(sqlite_source))
    data = bytearray(victim.read_bytes())
    data[-5] ^= 0x01
    victim.write_bytes(bytes(data))
    path = tmp_path / "backup.wbak"
    create_backup(sqlite_source, path)
    assert verify_backup(path).ok  # hashes alone cannot tell
    check = verify_backup(path, sqlite_source.keyring)
    assert not check.ok and "fails authentication" in check.problems[0]

    home = tmp_path / "restored"
    settings = Settings(home=home, database_url=database_url)
    with pytest.raises(TamperError, match=r"fails authentication.*the restore was undone"):
        restore_backup(path, settings, keyring=sqlite_source.keyring)
    assert not home.exists()  # created by the restore, removed again
    db = Database(database_url)
    assert db.table_names() == []  # the schema the restore created is dropped again
    db.dispose()


def test_a_backup_at_an_older_schema_revision_is_restored_and_upgraded(
    sqlite_source: Store, backup: Path, tmp_path: Path
) -> None:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from warden.registry.backup import _manifest_mac
    from warden.store.db import sqlite_url

    config = Config()
    config.set_main_option("script_location", "warden.store:migrations")
    script = ScriptDirectory.from_config(config)
    base, head = script.get_base(), script.get_current_head()
    if base == head:
        pytest.skip("the package has one schema revision, so no older one to restore")
    scratch = Database(sqlite_url(tmp_path / "base.db"))
    scratch.upgrade(base)
    at_base = set(scratch.table_names()) - {"alembic_version"}
    scratch.dispose()
    before = dump(sqlite_source.db)
    later = {name for name in before if name not in at_base}
    assert all(not before[name] for name in later)  # only empty tables are left out

    def older(name: str, data: bytes) -> bytes | None:
        if name.startswith("tables/") and name[len("tables/") : -len(".jsonl")] in later:
            return None
        if name != "manifest.json":
            return data
        doc = json.loads(data)
        doc["schema_revision"] = base
        doc["tables"] = [t for t in doc["tables"] if t["name"] not in later]
        doc["hmac"]["value"] = _manifest_mac(sqlite_source.keyring.current, doc)
        return json.dumps(doc).encode()

    old = tmp_path / "old.wbak"
    rewrite(backup, old, older)
    assert verify_backup(old, sqlite_source.keyring).ok  # the trial restore upgrades too
    result = restore_backup(
        old, Settings(home=tmp_path / "restored"), keyring=sqlite_source.keyring
    )
    assert (result.backup_revision, result.revision) == (base, head)
    restored = Database(sqlite_url(tmp_path / "restored" / "warden.db"))
    assert dump(restored) == before
    restored.dispose()


def test_registry_view_is_identical_after_restore(tmp_path: Path) -> None:
    """Through the Registry API: every model, version, lineage edge, note and artifact file."""
    from warden.registry import Registry

    artifact = tmp_path / "artifact"
    (artifact / "weights").mkdir(parents=True)
    (artifact / "weights" / "w.bin").write_bytes(os.urandom(CHUNK_SIZE + 17))
    (artifact / "config.json").write_text('{"layers": 3}')
    with open_store(tmp_path / "source") as store:
        registry = Registry(store, actor="alice")
        registry.create_model("digits", description="8x8 digits", owner="ml")
        registry.register_version("digits", artifact, framework="torch")
        registry.register_version("digits", artifact / "config.json")
        registry.register_dataset("digits-train", fingerprint="sha256:" + "ab" * 32, n_rows=10)
        registry.add_lineage("digits", 1, "trained-on", dataset="digits-train")
        registry.add_lineage("digits", 2, "derived-from", parent="v1")
        registry.add_note("digits", "first note", ref=1)

        def view(reg: Registry) -> tuple[Any, ...]:
            return (
                reg.list_models(),
                reg.list_versions("digits"),
                reg.list_datasets(),
                reg.lineage("digits", 1),
                reg.lineage("digits", 2),
                reg.notes("digits", 1),
            )

        before = view(registry)
        create_backup(store, tmp_path / "b.wbak")
        key = store.keyring.current.to_text()
    restore_backup(tmp_path / "b.wbak", Settings(home=tmp_path / "restored", master_key=key))
    with open_store(tmp_path / "restored", key=key) as restored:
        registry = Registry(restored, actor="bob")
        assert view(registry) == before
        out = registry.export_version("digits", 1, tmp_path / "exported")
        for rel in ("weights/w.bin", "config.json"):
            assert (out / rel).read_bytes() == (artifact / rel).read_bytes()


def test_an_empty_schema_at_the_backup_revision_is_accepted_and_emptied_on_failure(
    sqlite_source: Store, backup: Path, tmp_path: Path, database_url: str
) -> None:
    target = Database(database_url)
    target.upgrade()  # e.g. a DBA created the schema; no rows yet
    tables = target.table_names()
    settings = Settings(home=tmp_path / "restored", database_url=database_url)

    tampered = tmp_path / "tampered.wbak"
    victim = sqlite_source.blobs.path_of(largest_blob(sqlite_source))
    data = bytearray(victim.read_bytes())
    data[100] ^= 0x80
    victim.write_bytes(bytes(data))
    create_backup(sqlite_source, tampered)
    with pytest.raises(TamperError, match=r"fails authentication.*the restore was undone"):
        restore_backup(tampered, settings, keyring=sqlite_source.keyring)
    assert target.table_names() == tables  # kept: the restore did not create them
    assert all(not rows for rows in dump(target).values())  # but emptied again
    assert not settings.home.exists()

    result = restore_backup(backup, settings, keyring=sqlite_source.keyring)
    assert result.blobs == 4
    assert dump(target)["models"][0][1] == "digits-cnn"
    target.dispose()
