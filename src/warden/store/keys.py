"""The master key, wrapping of per-blob data keys, and master-key rotation.

Envelope encryption: every blob has its own random 256-bit data key (see
:mod:`warden.store.blobs`); the data key is stored in the database *wrapped* (AES-256-GCM
encrypted) by the master key. The master key itself never reaches the database: it comes from
``WARDEN_MASTER_KEY`` or from ``HOME/master.key`` (mode 0600).

Rotation re-wraps every data key under a new master key without touching the blob files. It is
safe to interrupt and re-run:

1. the new key is written to ``HOME/master.key.next`` (0600, fsynced) before any row changes;
   from then on :func:`load_keyring` loads it as the *current* key and keeps ``master.key`` as
   an older key, so every row is readable whichever key wraps it, and new blobs are wrapped by
   the new key straight away;
2. rows are re-wrapped in small transactions; each row records the id of the key that wraps it,
   so a re-run skips the rows already done;
3. once no row names another key, ``master.key.next`` atomically replaces ``master.key`` (the
   old key is gone).

With a key from the environment there is no key file to stage: the new key is passed in, rows
are re-wrapped the same way, and the user then switches ``WARDEN_MASTER_KEY`` to the new key.
``WARDEN_MASTER_KEY`` may hold several comma-separated keys (current first, then older keys
still accepted for unwrapping), which keeps a store readable while an interrupted
environment-key rotation waits to be re-run.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import logging
import os
import secrets
import stat
from dataclasses import dataclass, field
from hashlib import sha256
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from warden.errors import MasterKeyError, StoreError, TamperError

if TYPE_CHECKING:
    from warden.store.db import Database

__all__ = [
    "KEY_FILE",
    "NEXT_KEY_FILE",
    "Keyring",
    "MasterKey",
    "RotationResult",
    "load_keyring",
    "rotate_master_key",
    "unwrap_key",
    "wrap_key",
    "write_key_file",
]

log = logging.getLogger(__name__)

KEY_FILE = "master.key"
"""The master key's file name inside the Warden home."""
NEXT_KEY_FILE = "master.key.next"
"""The new master key while a rotation is in progress."""

KEY_BYTES = 32
_WRAP_VERSION = b"\x01"
_NONCE_BYTES = 12
_WRAPPED_BYTES = 1 + _NONCE_BYTES + KEY_BYTES + 16
_BATCH = 200


def _key_id(key: bytes) -> str:
    return hmac.new(key, b"warden master key id", sha256).hexdigest()[:32]


@dataclass(frozen=True)
class MasterKey:
    """A 256-bit master key; its ``repr`` shows only the key id."""

    key: bytes = field(repr=False)
    """The 32 key bytes."""
    key_id: str = field(init=False)
    """The first 32 hex digits of HMAC-SHA256(key, "warden master key id"): names the key in
    the database and in messages without revealing it."""

    def __post_init__(self) -> None:
        if not isinstance(self.key, bytes) or len(self.key) != KEY_BYTES:
            found = len(self.key) if isinstance(self.key, bytes) else type(self.key).__name__
            raise MasterKeyError(f"a master key is {KEY_BYTES} bytes; found {found}")
        object.__setattr__(self, "key_id", _key_id(self.key))

    @classmethod
    def generate(cls) -> MasterKey:
        """A fresh random key."""
        return cls(secrets.token_bytes(KEY_BYTES))

    @classmethod
    def from_text(cls, text: str, *, source: str = "the master key") -> MasterKey:
        """The key from its base64 text (surrounding whitespace ignored)."""
        cleaned = "".join(text.split())
        try:
            raw = base64.b64decode(cleaned, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise MasterKeyError(
                f"{source} is not base64 text ({exc}); expected the base64 of {KEY_BYTES} "
                'random bytes, e.g. from `python -c "import base64, os; '
                'print(base64.b64encode(os.urandom(32)).decode())"`'
            ) from exc
        if len(raw) != KEY_BYTES:
            raise MasterKeyError(
                f"{source} decodes to {len(raw)} bytes; expected the base64 of {KEY_BYTES} "
                "random bytes"
            )
        return cls(raw)

    def to_text(self) -> str:
        """The key as base64 text (what ``master.key`` and ``WARDEN_MASTER_KEY`` hold)."""
        return base64.b64encode(self.key).decode("ascii")


@dataclass(frozen=True)
class Keyring:
    """The master keys a store can unwrap with: ``current`` wraps new data keys."""

    current: MasterKey
    """The key that wraps new data keys."""
    others: tuple[MasterKey, ...] = ()
    """Older keys still accepted for unwrapping (during a rotation)."""
    source: str = ""
    """Where the keys came from, for messages (``WARDEN_MASTER_KEY`` or a file path)."""
    from_env: bool = False
    """Whether the keys came from the environment rather than ``HOME/master.key``."""

    @property
    def key_ids(self) -> tuple[str, ...]:
        """The ids of every key, current first."""
        return (self.current.key_id, *(k.key_id for k in self.others))

    def get(self, key_id: str) -> MasterKey:
        """The key named ``key_id`` (MasterKeyError if it is not loaded)."""
        for key in (self.current, *self.others):
            if key.key_id == key_id:
                return key
        raise MasterKeyError(
            f"data is wrapped by master key {key_id}, but the loaded master key is "
            f"{self.current.key_id} (from {self.source or 'the keyring'}); set "
            "WARDEN_MASTER_KEY or HOME/master.key to the key this store was created with"
        )


def _read_key_file(path: Path) -> MasterKey:
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        raise MasterKeyError(f"cannot read master key file {path}: {exc.strerror}") from exc
    if not stat.S_ISREG(mode):
        raise MasterKeyError(f"master key file {path} is not a regular file")
    if mode & 0o077:
        raise MasterKeyError(
            f"master key file {path} has mode {stat.S_IMODE(mode):04o}; it must be readable by "
            f"its owner only: run `chmod 600 {path}`"
        )
    try:
        text = path.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as exc:
        raise MasterKeyError(f"cannot read master key file {path}: {exc}") from exc
    return MasterKey.from_text(text, source=f"master key file {path}")


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_key_file(path: Path, key: MasterKey) -> None:
    """Write ``key`` to ``path`` (mode 0600) atomically and durably; refuse to overwrite."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write(key.to_text() + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o600)
        os.link(tmp, path)  # fails if path exists: never replaces a key by accident
    except FileExistsError as exc:
        raise MasterKeyError(f"master key file {path} already exists; not overwriting it") from exc
    finally:
        tmp.unlink(missing_ok=True)
    _fsync_dir(path.parent)


def _env_keys(text: str) -> list[MasterKey]:
    parts = [p for p in text.split(",") if p.strip()]
    if not parts:
        raise MasterKeyError("WARDEN_MASTER_KEY is empty; unset it to use HOME/master.key")
    keys = [
        MasterKey.from_text(part, source=f"WARDEN_MASTER_KEY (key {i + 1} of {len(parts)})")
        for i, part in enumerate(parts)
    ]
    return keys


def load_keyring(home: Path, env_key: str | None, *, create: bool) -> Keyring:
    """The master keys: from ``env_key`` (the ``WARDEN_MASTER_KEY`` value) if given, else
    ``home/master.key`` (generated, mode 0600, when ``create`` and absent).

    While a rotation is pending (``home/master.key.next`` exists) the next key is current and
    ``master.key`` is kept as an older key.
    """
    if env_key is not None:
        first, *rest = _env_keys(env_key)
        return Keyring(first, tuple(rest), source="WARDEN_MASTER_KEY", from_env=True)
    path = home / KEY_FILE
    next_path = home / NEXT_KEY_FILE
    if not path.exists() and not next_path.exists():
        if not create:
            raise MasterKeyError(
                f"no master key: {path} does not exist and WARDEN_MASTER_KEY is not set; run "
                "`warden init` for a new store, or provide the key this store was created with"
            )
        try:
            write_key_file(path, MasterKey.generate())
            log.info("created master key %s", path)
        except MasterKeyError:
            if not path.exists():
                raise
            # Another process created it first (two first uses at once): use theirs.
    keys: list[MasterKey] = []
    if next_path.exists():
        keys.append(_read_key_file(next_path))
    if path.exists():
        keys.append(_read_key_file(path))
    return Keyring(keys[0], tuple(keys[1:]), source=str(path), from_env=False)


def _wrap_ad(blob_id: str, key_id: str) -> bytes:
    return b"warden-wrap/1\x00" + blob_id.encode("ascii") + b"\x00" + key_id.encode("ascii")


def wrap_key(master: MasterKey, dek: bytes, blob_id: str) -> bytes:
    """``dek`` encrypted under ``master`` (AES-256-GCM, random nonce), bound to ``blob_id``."""
    nonce = secrets.token_bytes(_NONCE_BYTES)
    sealed = AESGCM(master.key).encrypt(nonce, dek, _wrap_ad(blob_id, master.key_id))
    return _WRAP_VERSION + nonce + sealed


def unwrap_key(keys: Keyring | MasterKey, key_id: str, wrapped: bytes, blob_id: str) -> bytes:
    """The data key of ``blob_id`` (TamperError if ``wrapped`` fails authentication)."""
    if isinstance(keys, Keyring):
        master = keys.get(key_id)
    elif keys.key_id != key_id:
        raise MasterKeyError(
            f"blob {blob_id} is wrapped by master key {key_id}, not by key {keys.key_id}"
        )
    else:
        master = keys
    if len(wrapped) != _WRAPPED_BYTES or wrapped[:1] != _WRAP_VERSION:
        raise TamperError(
            f"blob {blob_id}: the wrapped data key is malformed ({len(wrapped)} bytes, expected "
            f"{_WRAPPED_BYTES}); the database row was altered"
        )
    nonce, sealed = wrapped[1 : 1 + _NONCE_BYTES], wrapped[1 + _NONCE_BYTES :]
    try:
        return AESGCM(master.key).decrypt(nonce, sealed, _wrap_ad(blob_id, key_id))
    except InvalidTag:
        raise TamperError(
            f"blob {blob_id}: the wrapped data key fails authentication under master key "
            f"{key_id}; the database row was altered or belongs to another blob"
        ) from None


@dataclass(frozen=True)
class RotationResult:
    """What a master-key rotation did."""

    old_key_id: str
    """The key that was current when the rotation started."""
    new_key_id: str
    """The key every data key is now wrapped by."""
    rewrapped: int
    """Rows re-wrapped by this run."""
    already_done: int
    """Rows that were already wrapped by the new key (an earlier, interrupted run)."""
    switch_env: bool = False
    """True when the key came from ``WARDEN_MASTER_KEY``: set it to the new key now."""

    @property
    def message(self) -> str:
        """One line saying what happened and what to do next."""
        text = (
            f"master key rotated {self.old_key_id} -> {self.new_key_id}: "
            f"{self.rewrapped} data key(s) re-wrapped, {self.already_done} already done"
        )
        if self.switch_env:
            text += "; now set WARDEN_MASTER_KEY to the new key (the old one no longer works)"
        return text


def _rewrap_batch(db: Database, keyring: Keyring, new: MasterKey) -> int:
    """Re-wrap up to one batch of rows not yet under ``new``; the number re-wrapped."""
    from sqlalchemy import select, update

    from warden.store.tables import Blob

    with db.session() as session:
        rows = session.execute(
            select(Blob.id, Blob.key_id, Blob.wrapped_key)
            .where(Blob.key_id != new.key_id)
            .order_by(Blob.id)
            .limit(_BATCH)
        ).all()
        done = 0
        for blob_id, key_id, wrapped in rows:
            dek = unwrap_key(keyring, key_id, wrapped, blob_id)
            result = session.execute(
                update(Blob)
                .where(Blob.id == blob_id, Blob.key_id == key_id)
                .values(key_id=new.key_id, wrapped_key=wrap_key(new, dek, blob_id))
            )
            done += int(getattr(result, "rowcount", 0) or 0)
    if rows and not done:
        raise StoreError(
            f"rotation made no progress on {len(rows)} row(s); another process keeps changing "
            "them: stop other Warden processes and run `warden keys rotate` again"
        )
    return done if rows else -1


WRAPPED_KEY_MODULES = ("warden.access.sealing",)
"""Modules whose tables also hold data keys wrapped by the master key. Each exposes
``wrapped_key_ids(db) -> set[str]`` and ``rewrap_wrapped_keys(db, keyring, new) -> int``;
rotation re-wraps them all and the store refuses a keyring that cannot unwrap any of them. The
list is explicit (not registered at import) so that no table is ever skipped."""


def _others() -> list[Any]:
    import importlib

    return [importlib.import_module(name) for name in WRAPPED_KEY_MODULES]


def _rewrap_others(db: Database, ring: Keyring, new: MasterKey) -> int:
    return sum(int(m.rewrap_wrapped_keys(db, ring, new)) for m in _others())


def wrapped_key_ids(db: Database) -> set[str]:
    """The ids of the master keys that wrap any data key outside the blob table."""
    ids: set[str] = set()
    for m in _others():
        ids |= set(m.wrapped_key_ids(db))
    return ids


def rotate_master_key(
    db: Database, home: Path, keyring: Keyring, *, new_key: MasterKey | None = None
) -> RotationResult:
    """Re-wrap every data key under a new master key (blob files are not touched).

    Safe to interrupt and re-run (see the module docstring). With keys from the environment,
    ``new_key`` is required and the caller must then switch ``WARDEN_MASTER_KEY``.
    """
    from sqlalchemy import func, select

    from warden.store.tables import Blob

    next_path = home / NEXT_KEY_FILE
    if not keyring.from_env:
        # The key files are the truth (another process may have staged or finished a rotation
        # since ``keyring`` was loaded).
        keyring = load_keyring(home, None, create=False)
    if keyring.from_env:
        if new_key is None:
            raise MasterKeyError(
                "the master key comes from WARDEN_MASTER_KEY, so Warden cannot store a new one: "
                "provide the new key (WARDEN_NEW_MASTER_KEY for `warden keys rotate`)"
            )
        new = new_key
        old = keyring.current if keyring.current.key_id != new.key_id else None
        ring = Keyring(new, tuple(k for k in (keyring.current, *keyring.others) if k != new))
    elif next_path.exists():
        # An interrupted rotation: the staged key is already current in the keyring.
        new = keyring.current
        if new_key is not None and new_key.key_id != new.key_id:
            raise MasterKeyError(
                f"a rotation to master key {new.key_id} is pending ({next_path}); run "
                "`warden keys rotate` without a new key to finish it first"
            )
        old = keyring.others[0] if keyring.others else None
        ring = keyring
    else:
        new = new_key or MasterKey.generate()
        if new.key_id == keyring.current.key_id:
            raise MasterKeyError("the new master key is the current key; give a different key")
        write_key_file(next_path, new)
        log.info("staged new master key %s in %s", new.key_id, next_path)
        old = keyring.current
        ring = Keyring(new, (keyring.current, *keyring.others), source=keyring.source)

    with db.session() as session:
        count = select(func.count()).select_from(Blob).where(Blob.key_id == new.key_id)
        already = session.scalar(count) or 0
    rewrapped = 0
    while (done := _rewrap_batch(db, ring, new)) >= 0:
        rewrapped += done
        log.info("re-wrapped %d data keys", rewrapped)
    rewrapped += _rewrap_others(db, ring, new)

    if not keyring.from_env and next_path.exists():
        os.replace(next_path, home / KEY_FILE)
        _fsync_dir(home)
        # A process that read the old key just before the replace may have committed a blob
        # after the last pass; the old key is still in memory here, so catch it now.
        while (done := _rewrap_batch(db, ring, new)) >= 0:
            rewrapped += done
        rewrapped += _rewrap_others(db, ring, new)
    return RotationResult(
        old_key_id=(old or new).key_id,
        new_key_id=new.key_id,
        rewrapped=rewrapped,
        already_done=int(already),
        switch_env=keyring.from_env and old is not None,
    )
