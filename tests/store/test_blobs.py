"""The encrypted blob store: round trips, dedupe, no plaintext at rest, tamper detection."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from warden.errors import MasterKeyError, StoreError, TamperError
from warden.store import BlobStore, Keyring, MasterKey, Store
from warden.store.blobs import CHUNK_SIZE
from warden.store.tables import Blob

SMALL = 64
"""A chunk size that makes multi-chunk blobs out of a few hundred bytes."""


def small_chunks(store: Store) -> BlobStore:
    return BlobStore(store.db, store.blobs.root, store.keyring, chunk_size=SMALL)


def pattern(n: int, seed: int = 0) -> bytes:
    """``n`` bytes that differ from chunk to chunk (so chunk reordering changes content)."""
    out = bytearray()
    counter = 0
    while len(out) < n:
        out += hashlib.sha256(f"{seed}:{counter}".encode()).digest()
        counter += 1
    return bytes(out[:n])


def flip(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


def set_row(store: Store, blob_id: str, **values: object) -> None:
    with store.db.session() as session:
        session.execute(update(Blob).where(Blob.id == blob_id).values(**values))


def row_count(store: Store) -> int:
    with store.db.session() as session:
        return int(session.scalar(select(func.count()).select_from(Blob)) or 0)


@pytest.mark.parametrize(
    "size",
    [0, 1, CHUNK_SIZE - 1, CHUNK_SIZE, CHUNK_SIZE + 1, 3 * CHUNK_SIZE + 17],
    ids=["empty", "one-byte", "chunk-1", "one-chunk", "chunk+1", "multi-chunk"],
)
def test_put_file_round_trip(store: Store, tmp_path: Path, size: int) -> None:
    data = pattern(size, seed=size)
    source = tmp_path / "model.bin"
    source.write_bytes(data)
    info = store.blobs.put_file(source)
    assert info.id == hashlib.sha256(data).hexdigest()
    assert info.size == size
    assert store.blobs.info(info.id) == info
    assert store.blobs.exists(info.id)
    assert store.blobs.read_bytes(info.id) == data
    chunks = list(store.blobs.iter_plaintext(info.id))
    assert all(len(c) <= CHUNK_SIZE for c in chunks)
    assert len(chunks) == max(1, -(-size // CHUNK_SIZE))
    dest = tmp_path / "out" / "exported.bin"
    dest.parent.mkdir()
    store.blobs.export(info.id, dest)
    assert dest.read_bytes() == data
    assert os.listdir(dest.parent) == ["exported.bin"]
    store.blobs.verify(info.id)
    assert store.blobs.verify_all() == []


def test_put_bytes_round_trip_and_many_small_chunks(store: Store) -> None:
    blobs = small_chunks(store)
    for size in (0, SMALL - 1, SMALL, SMALL + 1, 10 * SMALL):
        data = pattern(size, seed=size)
        info = blobs.put_bytes(data)
        assert info.size == size
        assert blobs.read_bytes(info.id) == data
        assert store.blobs.read_bytes(info.id) == data  # chunk size is recorded per blob


def test_dedupe_by_content(store: Store, tmp_path: Path) -> None:
    data = pattern(5000)
    first = store.blobs.put_bytes(data)
    path = store.blobs.path_of(first.id)
    stored = path.read_bytes()
    source = tmp_path / "same.bin"
    source.write_bytes(data)
    assert store.blobs.put_file(source) == first
    assert store.blobs.put_bytes(data) == first
    assert path.read_bytes() == stored  # not re-encrypted
    other = store.blobs.put_bytes(data + b"!")
    assert other.id != first.id
    assert row_count(store) == 2
    assert store.blobs.ids() == sorted([first.id, other.id])
    assert list((store.blobs.root / ".tmp").iterdir()) == []


def test_unknown_and_malformed_ids(store: Store) -> None:
    missing = "0" * 64
    assert not store.blobs.exists(missing)
    with pytest.raises(StoreError, match=f"blob {missing} is not in the store"):
        store.blobs.info(missing)
    with pytest.raises(StoreError, match="not in the store"):
        store.blobs.read_bytes(missing)
    with pytest.raises(StoreError, match="not a SHA-256 digest"):
        store.blobs.path_of("../../etc/passwd")


def test_put_file_refuses_a_missing_file(store: Store, tmp_path: Path) -> None:
    with pytest.raises(StoreError, match=r"cannot read .*nope\.bin"):
        store.blobs.put_file(tmp_path / "nope.bin")


def test_nothing_in_the_home_is_plaintext(sqlite_store: Store, tmp_path: Path) -> None:
    marker = b"WARDEN-PLAINTEXT-MARKER-7f3a"
    data = marker * 100_000  # 2.8 MB: several chunks
    source = tmp_path / "weights.bin"
    source.write_bytes(data)
    sqlite_store.blobs.put_file(source)
    sqlite_store.blobs.put_bytes(marker * 10 + b"small")
    sqlite_store.blobs.put_bytes(marker)  # shorter than a chunk, exactly the marker
    files = [p for p in sqlite_store.home.rglob("*") if p.is_file()]
    names = {p.name for p in files}
    assert "warden.db" in names and "master.key" in names
    assert any(p.parent.parent == sqlite_store.blobs.root for p in files)
    assert marker in source.read_bytes()  # the grep below can find it
    leaked = [p for p in files if marker in p.read_bytes()]
    assert leaked == []


def test_a_flipped_byte_in_a_chunk_is_refused(store: Store) -> None:
    info = small_chunks(store).put_bytes(pattern(5 * SMALL))
    flip(store.blobs.path_of(info.id), 76 + 2 * (SMALL + 16) + 5)  # inside chunk 3
    with pytest.raises(TamperError, match=rf"blob {info.id}: chunk 3 of 5 .* fails auth"):
        store.blobs.read_bytes(info.id)
    assert [line for line in store.blobs.verify_all() if info.id in line]


def test_a_flipped_header_byte_is_refused(store: Store) -> None:
    info = store.blobs.put_bytes(pattern(100))
    flip(store.blobs.path_of(info.id), 9)  # the chunk size field
    with pytest.raises(TamperError, match=f"blob {info.id}: .*foreign header"):
        store.blobs.verify(info.id)


def test_a_flipped_byte_in_the_wrapped_key_is_refused(store: Store) -> None:
    info = store.blobs.put_bytes(pattern(100))
    with store.db.session() as session:
        wrapped = bytearray(session.get_one(Blob, info.id).wrapped_key)
    wrapped[20] ^= 0x80
    set_row(store, info.id, wrapped_key=bytes(wrapped))
    with pytest.raises(TamperError, match=f"blob {info.id}: the wrapped data key fails auth"):
        store.blobs.read_bytes(info.id)
    set_row(store, info.id, wrapped_key=bytes(wrapped[:-1]))
    with pytest.raises(TamperError, match=f"blob {info.id}: the wrapped data key is malformed"):
        store.blobs.read_bytes(info.id)


def test_a_wrapped_key_moved_to_another_blob_is_refused(store: Store) -> None:
    a = store.blobs.put_bytes(b"a" * 100)
    b = store.blobs.put_bytes(b"b" * 100)
    with store.db.session() as session:
        a_key = session.get_one(Blob, a.id).wrapped_key
    set_row(store, b.id, wrapped_key=a_key)
    with pytest.raises(TamperError, match=f"blob {b.id}: the wrapped data key fails auth"):
        store.blobs.read_bytes(b.id)


def test_swapped_blob_files_are_detected(store: Store) -> None:
    a = store.blobs.put_bytes(b"a" * 300)
    b = store.blobs.put_bytes(b"b" * 300)
    pa, pb = store.blobs.path_of(a.id), store.blobs.path_of(b.id)
    ca, cb = pa.read_bytes(), pb.read_bytes()
    pa.write_bytes(cb)
    pb.write_bytes(ca)
    with pytest.raises(TamperError, match=f"blob {a.id}: .*names blob '{b.id}'.*swapped"):
        store.blobs.read_bytes(a.id)
    # Rewriting the header to the expected id does not help: the data key is another blob's.
    pa.write_bytes(cb[:12] + a.id.encode() + cb[76:])
    with pytest.raises(TamperError, match=f"blob {a.id}: chunk 1 of 1 .* fails auth"):
        store.blobs.read_bytes(a.id)
    assert len(store.blobs.verify_all()) == 2


def test_reordered_chunks_are_detected(store: Store) -> None:
    info = small_chunks(store).put_bytes(pattern(4 * SMALL))
    path = store.blobs.path_of(info.id)
    raw = path.read_bytes()
    step = SMALL + 16
    c1, c2 = raw[76 : 76 + step], raw[76 + step : 76 + 2 * step]
    path.write_bytes(raw[:76] + c2 + c1 + raw[76 + 2 * step :])
    with pytest.raises(TamperError, match=r"chunk 1 of 4 .* fails authentication"):
        store.blobs.read_bytes(info.id)


def test_truncation_is_detected_even_when_the_size_row_is_changed_too(store: Store) -> None:
    size = 4 * SMALL
    info = small_chunks(store).put_bytes(pattern(size))
    path = store.blobs.path_of(info.id)
    raw = path.read_bytes()
    path.write_bytes(raw[: -(SMALL + 16)])  # drop the last chunk
    with pytest.raises(TamperError, match=f"blob {info.id}: .* truncated"):
        store.blobs.read_bytes(info.id)
    set_row(store, info.id, size=size - SMALL)  # make the length check pass
    with pytest.raises(TamperError, match=r"chunk 3 of 3 .* fails authentication"):
        store.blobs.read_bytes(info.id)


def test_a_missing_blob_file_is_reported(store: Store) -> None:
    info = store.blobs.put_bytes(b"x" * 10)
    store.blobs.path_of(info.id).unlink()
    with pytest.raises(TamperError, match=f"blob {info.id}: its file .* is missing"):
        store.blobs.verify(info.id)
    assert store.blobs.verify_all() == [
        f"blob {info.id}: its file {store.blobs.path_of(info.id)} is missing"
    ]


def test_a_blob_file_without_a_row_is_reported(store: Store) -> None:
    stray = store.blobs.path_of("ab" * 32)
    stray.parent.mkdir(exist_ok=True)
    stray.write_bytes(b"junk")
    assert store.blobs.verify_all() == [f"{stray}: a blob file with no database row"]


def test_export_leaves_no_partial_file_on_failure(store: Store, tmp_path: Path) -> None:
    info = small_chunks(store).put_bytes(pattern(6 * SMALL))
    flip(store.blobs.path_of(info.id), store.blobs.path_of(info.id).stat().st_size - 3)
    out = tmp_path / "export"
    out.mkdir()
    with pytest.raises(TamperError, match=r"chunk 6 of 6"):
        store.blobs.export(info.id, out / "model.bin")
    assert list(out.iterdir()) == []
    existing = out / "keep.bin"
    existing.write_bytes(b"previous")
    with pytest.raises(TamperError, match=r"chunk 6 of 6"):
        store.blobs.export(info.id, existing)
    assert existing.read_bytes() == b"previous"
    assert [p.name for p in out.iterdir()] == ["keep.bin"]


def test_a_wrong_master_key_is_refused_clearly(store: Store) -> None:
    info = store.blobs.put_bytes(b"secret weights")
    other = MasterKey.generate()
    wrong = BlobStore(store.db, store.blobs.root, Keyring(other, source="test"))
    with pytest.raises(
        MasterKeyError,
        match=rf"wrapped by master key {store.keyring.current.key_id}, but the loaded master "
        rf"key is {other.key_id}",
    ):
        wrong.read_bytes(info.id)


def test_losing_a_put_race_keeps_the_winners_blob(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = pattern(1000)
    winner = store.blobs.put_bytes(data)
    stored = store.blobs.path_of(winner.id).read_bytes()
    # A second writer that checked before the winner committed: it encrypts its own copy,
    # finds the row claimed, and discards the copy.
    monkeypatch.setattr(BlobStore, "_known", lambda self, blob_id: None)
    assert store.blobs.put_bytes(data) == winner
    assert store.blobs.path_of(winner.id).read_bytes() == stored
    assert list((store.blobs.root / ".tmp").iterdir()) == []
    assert row_count(store) == 1
    assert store.blobs.read_bytes(winner.id) == data
