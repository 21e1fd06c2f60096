"""The encrypted, content-addressed blob store.

A blob's id is the SHA-256 of its plaintext. Each blob is encrypted under its own random 256-bit
data key with AES-256-GCM, in chunks, so that files of any size stream through a fixed amount of
memory. The data key is wrapped by the master key (:mod:`warden.store.keys`) and kept in the
``blobs`` table with the id of the wrapping key; the file under ``root`` holds only ciphertext.

File format (``root/<id[:2]>/<id>``)::

    header  = b"WARDENB1" | chunk_size (uint32, big-endian) | blob id (64 ASCII hex digits)
    chunk_i = AES-256-GCM(data key, nonce_i, plaintext chunk i, associated data = header)
    nonce_i = i (11 bytes, big-endian) | 0x01 if chunk i is the last chunk else 0x00

Every chunk is full (``chunk_size`` plaintext bytes) except the last, which may be shorter
(an empty blob is one empty last chunk). Because the header is associated data of every chunk
and the chunk index and last-chunk flag are in the nonce, a flipped byte, a blob file swapped
for another, chunks reordered, or chunks dropped from the end all fail authentication; reading
also checks the file length and, at the end, that the plaintext's SHA-256 is the id.
"""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import select
from sqlalchemy.orm import Session

from warden.errors import MasterKeyError, StoreError, TamperError
from warden.store.db import Database
from warden.store.keys import Keyring, unwrap_key, wrap_key
from warden.store.tables import Blob

__all__ = ["CHUNK_SIZE", "BlobInfo", "BlobStore"]

log = logging.getLogger(__name__)

CHUNK_SIZE = 1 << 20
"""Plaintext bytes per encrypted chunk (1 MiB)."""

_MAGIC = b"WARDENB1"
_HEADER_BYTES = len(_MAGIC) + 4 + 64
_TAG = 16
_TMP_DIR = ".tmp"
_HEX = frozenset("0123456789abcdef")


@dataclass(frozen=True)
class BlobInfo:
    """A stored blob."""

    id: str
    """The SHA-256 of the plaintext (64 lowercase hex digits)."""
    size: int
    """Plaintext size in bytes."""


def _check_id(blob_id: str) -> str:
    if len(blob_id) != 64 or not set(blob_id) <= _HEX:
        raise StoreError(f"blob id {blob_id!r} is not a SHA-256 digest (64 lowercase hex digits)")
    return blob_id


def _header(blob_id: str, chunk_size: int) -> bytes:
    return _MAGIC + chunk_size.to_bytes(4, "big") + blob_id.encode("ascii")


def _nonce(index: int, last: bool) -> bytes:
    return index.to_bytes(11, "big") + (b"\x01" if last else b"\x00")


def _n_chunks(size: int, chunk_size: int) -> int:
    return max(1, -(-size // chunk_size))


def _read_full(handle: BinaryIO, n: int) -> bytes:
    parts: list[bytes] = []
    while n > 0:
        piece = handle.read(n)
        if not piece:
            break
        parts.append(piece)
        n -= len(piece)
    return b"".join(parts)


def _hash_file(path: Path, chunk_size: int) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as handle:
        while piece := handle.read(chunk_size):
            digest.update(piece)
            size += len(piece)
    return digest.hexdigest(), size


class BlobStore:
    """Encrypted blobs under ``root``, their wrapped keys in ``db``, master keys in ``keyring``.

    Safe for several processes at once: a blob's row is claimed in a transaction and its file
    moved into place before that transaction commits; the loser of a race discards its copy.

    ``reload_keyring`` (given by :class:`~warden.store.Store` for key files) re-reads the master
    keys when a blob is written or a row names an unknown key, so a long-running process follows
    a rotation made by another process instead of wrapping new blobs with a retired key.
    """

    def __init__(
        self,
        db: Database,
        root: Path,
        keyring: Keyring,
        *,
        chunk_size: int = CHUNK_SIZE,
        reload_keyring: Callable[[], Keyring] | None = None,
    ) -> None:
        if not 1 <= chunk_size < 1 << 31:
            raise StoreError(f"chunk_size must be between 1 and 2**31 - 1, got {chunk_size}")
        self.db = db
        self.root = Path(root)
        self.keyring = keyring
        self.chunk_size = chunk_size
        self._reload_keyring = reload_keyring

    def __repr__(self) -> str:
        return f"BlobStore({str(self.root)!r}, {self.db!r})"

    def _refresh_keyring(self) -> Keyring:
        """The newest keyring (re-read from the key files when a loader was given)."""
        if self._reload_keyring is not None:
            try:
                self.keyring = self._reload_keyring()
            except MasterKeyError as exc:  # e.g. caught between a rotation's file moves
                log.warning("keeping the loaded master keys: cannot re-read them (%s)", exc)
        return self.keyring

    # -- paths ---------------------------------------------------------------------------

    def path_of(self, blob_id: str) -> Path:
        """Where the ciphertext of ``blob_id`` lives."""
        _check_id(blob_id)
        return self.root / blob_id[:2] / blob_id

    def _tmp_path(self, blob_id: str) -> Path:
        tmp = self.root / _TMP_DIR
        tmp.mkdir(mode=0o700, exist_ok=True)
        return tmp / f"{blob_id}.{os.getpid()}.{secrets.token_hex(8)}"

    # -- writing -------------------------------------------------------------------------

    def put_bytes(self, data: bytes) -> BlobInfo:
        """Store ``data``; its :class:`BlobInfo` (an existing blob if the content is known)."""
        blob_id = hashlib.sha256(data).hexdigest()
        if (known := self._known(blob_id)) is not None:
            return known
        dek = secrets.token_bytes(32)
        tmp = self._tmp_path(blob_id)
        try:
            with self._open_tmp(tmp) as out:
                self._encrypt_stream(out, dek, blob_id, _chunks_of(data, self.chunk_size))
            return self._commit(blob_id, len(data), dek, tmp)
        finally:
            tmp.unlink(missing_ok=True)

    def put_file(self, path: Path) -> BlobInfo:
        """Store the file at ``path``, streamed chunk by chunk (never whole in memory)."""
        path = Path(path)
        try:
            blob_id, size = _hash_file(path, self.chunk_size)
        except OSError as exc:
            raise StoreError(f"cannot read {path}: {exc.strerror or exc}") from exc
        if (known := self._known(blob_id)) is not None:
            return known
        dek = secrets.token_bytes(32)
        tmp = self._tmp_path(blob_id)
        try:
            check = hashlib.sha256()
            total = 0

            def pieces() -> Iterator[bytes]:
                nonlocal total
                with path.open("rb") as handle:
                    while piece := _read_full(handle, self.chunk_size):
                        check.update(piece)
                        total += len(piece)
                        yield piece

            try:
                with self._open_tmp(tmp) as out:
                    self._encrypt_stream(out, dek, blob_id, pieces())
            except OSError as exc:
                raise StoreError(f"cannot store {path}: {exc.strerror or exc}") from exc
            if check.hexdigest() != blob_id or total != size:
                raise StoreError(f"{path} changed while it was being stored; store it again")
            return self._commit(blob_id, size, dek, tmp)
        finally:
            tmp.unlink(missing_ok=True)

    def _open_tmp(self, tmp: Path) -> BinaryIO:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        return os.fdopen(fd, "wb")

    def _encrypt_stream(
        self, out: BinaryIO, dek: bytes, blob_id: str, pieces: Iterator[bytes]
    ) -> None:
        header = _header(blob_id, self.chunk_size)
        aead = AESGCM(dek)
        out.write(header)
        index = 0
        current = next(pieces, b"")
        while True:
            following = next(pieces, None)
            last = following is None
            out.write(aead.encrypt(_nonce(index, last), current, header))
            if following is None:
                break
            current, index = following, index + 1
        out.flush()
        os.fsync(out.fileno())

    def _known(self, blob_id: str) -> BlobInfo | None:
        with self.db.session() as session:
            row = session.get(Blob, blob_id)
            return None if row is None else BlobInfo(row.id, row.size)

    def _commit(self, blob_id: str, size: int, dek: bytes, tmp: Path) -> BlobInfo:
        """Claim the row and move ``tmp`` into place before the claim commits."""
        final = self.path_of(blob_id)
        final.parent.mkdir(mode=0o700, exist_ok=True)

        def claim(session: Session) -> BlobInfo:
            existing = session.get(Blob, blob_id)
            if existing is not None:
                log.debug("blob %s stored concurrently; discarding this copy", blob_id)
                return BlobInfo(existing.id, existing.size)
            # Read the key inside the transaction: on SQLite it holds the write lock, so a
            # rotation's next pass sees this row and re-wraps it if the key changes meanwhile.
            master = self._refresh_keyring().current
            session.add(
                Blob(
                    id=blob_id,
                    size=size,
                    chunk_size=self.chunk_size,
                    key_id=master.key_id,
                    wrapped_key=wrap_key(master, dek, blob_id),
                )
            )
            session.flush()  # the row is ours (or a concurrent insert fails and we retry)
            if tmp.exists():  # a retry after a failed commit finds it already moved
                os.replace(tmp, final)
                _fsync_dir(final.parent)
            return BlobInfo(blob_id, size)

        return self.db.write(claim)

    # -- reading -------------------------------------------------------------------------

    def exists(self, blob_id: str) -> bool:
        """Whether the store has a row for ``blob_id``."""
        return self._known(_check_id(blob_id)) is not None

    def info(self, blob_id: str) -> BlobInfo:
        """The blob's id and size (StoreError if unknown)."""
        known = self._known(_check_id(blob_id))
        if known is None:
            raise StoreError(f"blob {blob_id} is not in the store")
        return known

    def ids(self) -> list[str]:
        """Every blob id, sorted."""
        with self.db.session() as session:
            return list(session.scalars(select(Blob.id).order_by(Blob.id)))

    def _row(self, blob_id: str) -> tuple[int, int, str, bytes]:
        with self.db.session() as session:
            row = session.get(Blob, _check_id(blob_id))
            if row is None:
                raise StoreError(f"blob {blob_id} is not in the store")
            return row.size, row.chunk_size, row.key_id, row.wrapped_key

    def iter_plaintext(self, blob_id: str) -> Iterator[bytes]:
        """The plaintext, chunk by chunk, each authenticated before it is yielded.

        Raises TamperError (possibly after some chunks were yielded) if any chunk, the chunk
        order or count, or the final digest is wrong: callers must not trust partial output.
        """
        size, chunk_size, key_id, wrapped = self._row(blob_id)
        keyring = self.keyring
        if key_id not in keyring.key_ids:
            keyring = self._refresh_keyring()
        dek = unwrap_key(keyring, key_id, wrapped, blob_id)
        return self._decrypt(blob_id, size, chunk_size, dek)

    def _decrypt(self, blob_id: str, size: int, chunk_size: int, dek: bytes) -> Iterator[bytes]:
        path = self.path_of(blob_id)
        n = _n_chunks(size, chunk_size)
        expected_len = _HEADER_BYTES + size + n * _TAG
        try:
            handle = path.open("rb")
        except FileNotFoundError:
            raise TamperError(f"blob {blob_id}: its file {path} is missing") from None
        except OSError as exc:
            raise StoreError(f"blob {blob_id}: cannot read {path}: {exc.strerror}") from exc
        with handle:
            actual_len = os.fstat(handle.fileno()).st_size
            if actual_len != expected_len:
                raise TamperError(
                    f"blob {blob_id}: file {path} is {actual_len} bytes, expected "
                    f"{expected_len}; it was truncated, extended or replaced"
                )
            header = handle.read(_HEADER_BYTES)
            if header != _header(blob_id, chunk_size):
                held = header[len(_MAGIC) + 4 :].decode("ascii", "replace")
                raise TamperError(
                    f"blob {blob_id}: file {path} has a foreign header (it names blob {held!r}); "
                    "blob files were swapped or altered"
                )
            aead = AESGCM(dek)
            digest = hashlib.sha256()
            for index in range(n):
                last = index == n - 1
                want = (size - index * chunk_size if last else chunk_size) + _TAG
                sealed = _read_full(handle, want)
                try:
                    plain = aead.decrypt(_nonce(index, last), sealed, header)
                except InvalidTag:
                    raise TamperError(
                        f"blob {blob_id}: chunk {index + 1} of {n} in {path} fails "
                        "authentication; the file was altered, reordered or swapped"
                    ) from None
                digest.update(plain)
                yield plain
            if digest.hexdigest() != blob_id:  # pragma: no cover - GCM already guarantees it
                raise TamperError(f"blob {blob_id}: decrypted content has another SHA-256")

    def read_bytes(self, blob_id: str) -> bytes:
        """The whole plaintext (for small blobs; use :meth:`export` for large ones)."""
        return b"".join(self.iter_plaintext(blob_id))

    def export(self, blob_id: str, dest: Path) -> None:
        """Write the plaintext to ``dest`` (mode 0600): a temporary file renamed into place
        only after every chunk authenticated, so a failure leaves no partial ``dest``."""
        dest = Path(dest)
        chunks = self.iter_plaintext(blob_id)
        tmp = dest.with_name(f".{dest.name}.{secrets.token_hex(8)}.partial")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as out:
                for piece in chunks:
                    out.write(piece)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, dest)
        except OSError as exc:
            raise StoreError(f"cannot export blob {blob_id} to {dest}: {exc}") from exc
        finally:
            tmp.unlink(missing_ok=True)

    def verify(self, blob_id: str) -> None:
        """Authenticate every byte of ``blob_id`` (TamperError naming the blob if bad)."""
        for _ in self.iter_plaintext(blob_id):  # authentication happens while iterating
            pass

    def verify_all(self) -> list[str]:
        """One line per problem (altered, missing or unreadable blob; a file without a row);
        an empty list means every blob authenticated."""
        problems: list[str] = []
        known = set()
        for blob_id in self.ids():
            known.add(blob_id)
            try:
                self.verify(blob_id)
            except StoreError as exc:
                problems.append(str(exc))
        if self.root.is_dir():
            for sub in sorted(self.root.iterdir()):
                if sub.name == _TMP_DIR or not sub.is_dir():
                    continue
                for path in sorted(sub.iterdir()):
                    if path.name not in known:
                        problems.append(f"{path}: a blob file with no database row")
        return problems


def _chunks_of(data: bytes, size: int) -> Iterator[bytes]:
    view = memoryview(data)
    for start in range(0, len(data), size):
        yield bytes(view[start : start + size])


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
