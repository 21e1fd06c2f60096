"""The audit log's two keys, kept apart from the database.

- The **audit key** (32 random bytes) keys the HMAC chain: whoever can write to the database
  but lacks it cannot forge a consistent chain. It comes from ``WARDEN_AUDIT_KEY`` (base64; the
  CLI passes the value in) or ``HOME/audit.key`` (base64 text, mode 0600, created on first
  use).
- The **checkpoint key** (Ed25519, ``HOME/audit-signing.pem``, PKCS#8 PEM, mode 0600, created
  on first use) signs checkpoints and archive anchors. Its public half
  (:func:`public_key_pem`, ``warden audit public-key``) lets anyone check them without it.

Neither key is ever written to the database or a backup.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import secrets
import stat
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from warden.errors import ConfigError

__all__ = [
    "AUDIT_KEY_FILE",
    "SIGNING_KEY_FILE",
    "AuditKey",
    "load_audit_key",
    "load_public_key",
    "load_signing_key",
    "public_key_id",
    "public_key_pem",
]

AUDIT_KEY_FILE = "audit.key"
"""The audit key's file name in the Warden home."""
SIGNING_KEY_FILE = "audit-signing.pem"
"""The checkpoint signing key's file name in the Warden home."""


@dataclass(frozen=True)
class AuditKey:
    """The 32-byte HMAC key of the audit chain."""

    key: bytes = field(repr=False)
    """The key bytes (never printed)."""

    def __post_init__(self) -> None:
        if len(self.key) != 32:
            raise ConfigError(f"the audit key must be 32 bytes, found {len(self.key)}")

    @property
    def key_id(self) -> str:
        """A name for the key that reveals nothing about it (32 hex digits)."""
        return hmac.new(self.key, b"warden audit key id", hashlib.sha256).hexdigest()[:32]

    @classmethod
    def generate(cls) -> AuditKey:
        """A fresh random key."""
        return cls(secrets.token_bytes(32))

    @classmethod
    def from_text(cls, text: str, *, source: str = "the audit key") -> AuditKey:
        """The key from its base64 text (whitespace ignored)."""
        try:
            raw = base64.b64decode("".join(text.split()), validate=True)
        except (binascii.Error, ValueError):
            raise ConfigError(
                f"{source}: expected base64 of 32 bytes (make one with `openssl rand -base64 "
                "32`), found text that is not base64"
            ) from None
        if len(raw) != 32:
            raise ConfigError(f"{source}: expected base64 of 32 bytes, found {len(raw)} bytes")
        return cls(raw)

    def to_text(self) -> str:
        """The key as base64 text."""
        return base64.b64encode(self.key).decode("ascii")


def _check_private_file(path: Path, what: str) -> None:
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        raise ConfigError(f"cannot read {what} {path}: {exc.strerror}") from exc
    if not stat.S_ISREG(mode):
        raise ConfigError(f"{what} {path} is not a regular file")
    if mode & 0o077:
        raise ConfigError(
            f"{what} {path} has mode {stat.S_IMODE(mode):04o}; it must be readable by its "
            f"owner only: run `chmod 600 {path}`"
        )


def _write_private_file(path: Path, data: bytes) -> bool:
    """Write ``data`` to ``path`` (0600) atomically; ``False`` if ``path`` appeared meanwhile."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.link(tmp, path)  # never replaces an existing key (another process may have won)
    except FileExistsError:
        return False
    finally:
        tmp.unlink(missing_ok=True)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    return True


def load_audit_key(home: Path, env_key: str | None, *, create: bool) -> AuditKey:
    """The audit key: ``env_key`` (the ``WARDEN_AUDIT_KEY`` value) if given, else
    ``home/audit.key``, created when ``create`` and absent."""
    if env_key:
        return AuditKey.from_text(env_key, source="WARDEN_AUDIT_KEY")
    path = home / AUDIT_KEY_FILE
    if not path.exists():
        if not create:
            raise ConfigError(
                f"no audit key: {path} does not exist and WARDEN_AUDIT_KEY is not set "
                "(the audit log was never written here, or the key lives elsewhere)"
            )
        _write_private_file(path, (AuditKey.generate().to_text() + "\n").encode("ascii"))
    _check_private_file(path, "audit key file")
    try:
        text = path.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read audit key file {path}: {exc}") from exc
    return AuditKey.from_text(text, source=f"audit key file {path}")


def load_signing_key(home: Path, *, create: bool) -> Ed25519PrivateKey:
    """The Ed25519 checkpoint key in ``home/audit-signing.pem``, created when ``create``."""
    path = home / SIGNING_KEY_FILE
    if not path.exists():
        if not create:
            raise ConfigError(
                f"no audit signing key: {path} does not exist (checkpoints are signed with it; "
                "it is created the first time the audit log is written)"
            )
        pem = Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        _write_private_file(path, pem)
    _check_private_file(path, "audit signing key")
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), None)
    except (OSError, ValueError, TypeError) as exc:
        raise ConfigError(f"cannot load the audit signing key {path}: {exc}") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigError(f"{path}: expected an Ed25519 private key, found {type(key).__name__}")
    return key


def public_key_pem(key: Ed25519PrivateKey | Ed25519PublicKey) -> str:
    """The SubjectPublicKeyInfo PEM of the checkpoint key (what verifiers need)."""
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode("ascii")


def public_key_id(key: Ed25519PrivateKey | Ed25519PublicKey) -> str:
    """SHA-256 hex of the public key's raw 32 bytes: the ``key_id`` checkpoints carry."""
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()


def load_public_key(path: Path) -> Ed25519PublicKey:
    """An Ed25519 public key from a PEM file (``warden audit public-key`` output)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read public key {path}: {exc.strerror}") from exc
    try:
        key = serialization.load_pem_public_key(data)
    except ValueError as exc:
        raise ConfigError(f"{path}: not a PEM public key ({exc})") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise ConfigError(f"{path}: expected an Ed25519 public key, found {type(key).__name__}")
    return key
