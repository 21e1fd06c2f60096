"""Signing keys for model signatures: Ed25519 and ECDSA P-256 as plain PEM files.

The private key is PKCS#8 PEM (optionally password-encrypted) written with mode 0600; the public
key is SubjectPublicKeyInfo PEM. Any tool reads them (``openssl pkey -in key``), and OpenSSF
model_signing reads the ECDSA ones. The *key id* is model_signing's public-key hint: the SHA-256
of the public PEM, so a bundle names its key the same way for both tools.

ECDSA signatures are DER-encoded, with the hash the curve calls for (SHA-256 for P-256, as in
model_signing and sigstore); Ed25519 signs the message itself (pure Ed25519). Verifying also
accepts P-384 and P-521 public keys, which model_signing can sign with.
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path
from typing import Final, Literal, TypeAlias, get_args

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from warden.errors import ConfigError

__all__ = [
    "KEY_KINDS",
    "KeyKind",
    "PrivateKey",
    "PublicKey",
    "generate_key",
    "key_id",
    "key_kind",
    "load_private_key",
    "load_public_key",
    "public_pem",
    "sign_message",
    "verify_message",
]

log = logging.getLogger(__name__)

KeyKind: TypeAlias = Literal["ed25519", "ecdsa-p256"]
"""The kinds of key :func:`generate_key` makes."""
KEY_KINDS: Final[tuple[str, ...]] = get_args(KeyKind)

PrivateKey: TypeAlias = Ed25519PrivateKey | ec.EllipticCurvePrivateKey
PublicKey: TypeAlias = Ed25519PublicKey | ec.EllipticCurvePublicKey
Password: TypeAlias = str | bytes | None
KeySource: TypeAlias = str | os.PathLike[str]

_EC_HASHES: Final[dict[str, type[hashes.HashAlgorithm]]] = {
    "secp256r1": hashes.SHA256,
    "secp384r1": hashes.SHA384,
    "secp521r1": hashes.SHA512,
}
"""Curves model_signing supports, with the hash each signs with (sigstore's key details)."""
_EC_KINDS: Final[dict[str, str]] = {
    "secp256r1": "ecdsa-p256",
    "secp384r1": "ecdsa-p384",
    "secp521r1": "ecdsa-p521",
}


def _password_bytes(password: Password) -> bytes | None:
    if password is None:
        return None
    if isinstance(password, str):
        password = password.encode("utf-8")
    if not password:
        raise ConfigError("the key password is empty; give a non-empty password or none")
    return password


def _check_supported(key: PrivateKey | PublicKey, source: object) -> None:
    if isinstance(key, Ed25519PrivateKey | Ed25519PublicKey):
        return
    if isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey):
        if key.curve.name in _EC_HASHES:
            return
        raise ConfigError(
            f"{source}: unsupported elliptic curve {key.curve.name}; "
            "use Ed25519 or ECDSA P-256 (P-384/P-521 verify too)"
        )
    raise ConfigError(
        f"{source}: unsupported key type {type(key).__name__}; use Ed25519 or ECDSA P-256"
    )


def key_kind(key: PrivateKey | PublicKey) -> str:
    """``"ed25519"``, ``"ecdsa-p256"``, ``"ecdsa-p384"`` or ``"ecdsa-p521"``."""
    if isinstance(key, Ed25519PrivateKey | Ed25519PublicKey):
        return "ed25519"
    return _EC_KINDS[key.curve.name]


def public_pem(key: PrivateKey | PublicKey) -> bytes:
    """The SubjectPublicKeyInfo PEM of ``key`` (of its public half for a private key)."""
    public = (
        key.public_key() if isinstance(key, Ed25519PrivateKey | ec.EllipticCurvePrivateKey) else key
    )
    return public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def key_id(key: PrivateKey | PublicKey) -> str:
    """SHA-256 hex of the public PEM: model_signing's ``publicKey.hint`` for the same key."""
    return hashlib.sha256(public_pem(key)).hexdigest()


def generate_key(
    kind: str,
    private_path: KeySource,
    public_path: KeySource,
    *,
    password: Password = None,
) -> str:
    """Make a new key pair; write the private PEM (mode 0600) and the public PEM.

    Existing files are never overwritten: a lost key cannot be recovered, so replacing one is
    the caller's explicit decision (delete it first). Missing folders are created (mode 0700).
    Returns the key id.
    """
    if kind not in KEY_KINDS:
        raise ConfigError(f"unknown key kind {kind!r}; expected one of {', '.join(KEY_KINDS)}")
    private_path, public_path = Path(private_path), Path(public_path)
    if private_path == public_path:
        raise ConfigError(f"the private and public key paths are the same: {private_path}")
    for p in (private_path, public_path):
        if p.exists() or p.is_symlink():
            raise ConfigError(f"{p} already exists; refusing to overwrite a key (remove it first)")
        if p.parent.exists() and not p.parent.is_dir():
            raise ConfigError(f"{p.parent} is not a directory")
    for p in (private_path, public_path):
        try:
            p.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"cannot create {p.parent}: {exc.strerror or exc}") from exc
    key: PrivateKey = (
        Ed25519PrivateKey.generate()
        if kind == "ed25519"
        else ec.generate_private_key(ec.SECP256R1())
    )
    secret = _password_bytes(password)
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(secret) if secret else serialization.NoEncryption()
    )
    private_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )
    try:
        fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        raise ConfigError(f"cannot write the private key {private_path}: {exc}") from exc
    try:
        with os.fdopen(fd, "wb") as fh:
            os.fchmod(fh.fileno(), 0o600)  # the umask cannot widen it, but be explicit
            fh.write(private_pem)
        with open(public_path, "xb") as fh:
            fh.write(public_pem(key))
    except OSError as exc:
        private_path.unlink(missing_ok=True)  # never leave half a pair behind
        raise ConfigError(f"cannot write the key pair: {exc}") from exc
    log.info("wrote %s key %s to %s", kind, key_id(key)[:16], private_path)
    return key_id(key)


def _read_pem(path: Path, what: str) -> bytes:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{what} {path} not found") from None
    except OSError as exc:
        raise ConfigError(f"cannot read {what} {path}: {exc}") from exc
    if b"-----BEGIN " not in data:
        raise ConfigError(f"{path}: not a PEM file (expected a '-----BEGIN ...' block)")
    return data


def load_private_key(source: PrivateKey | KeySource, *, password: Password = None) -> PrivateKey:
    """A private key object as is, or read from a PKCS#8/traditional PEM file."""
    if isinstance(source, Ed25519PrivateKey | ec.EllipticCurvePrivateKey):
        _check_supported(source, "private key")
        return source
    path = Path(source)
    data = _read_pem(path, "private key")
    if b"PRIVATE KEY" not in data:
        raise ConfigError(
            f"{path}: expected a PEM private key, found a different PEM block "
            "(a public key signs nothing; give the private half)"
        )
    try:
        key = serialization.load_pem_private_key(data, _password_bytes(password))
    except TypeError as exc:  # cryptography: password missing, or given for a plain key
        if password is None:
            raise ConfigError(
                f"{path}: the private key is encrypted; give its password (--password-env VAR)"
            ) from exc
        raise ConfigError(f"{path}: the private key is not encrypted; give no password") from exc
    except (ValueError, UnsupportedAlgorithm) as exc:
        hint = "wrong password, or " if password is not None else ""
        raise ConfigError(f"{path}: cannot load the private key ({hint}{exc})") from exc
    if not isinstance(key, Ed25519PrivateKey | ec.EllipticCurvePrivateKey):
        raise ConfigError(
            f"{path}: unsupported key type {type(key).__name__}; use Ed25519 or ECDSA P-256"
        )
    _check_supported(key, path)
    return key


def load_public_key(source: PublicKey | KeySource) -> PublicKey:
    """A public key object as is, or read from a SubjectPublicKeyInfo PEM file."""
    if isinstance(source, Ed25519PublicKey | ec.EllipticCurvePublicKey):
        _check_supported(source, "public key")
        return source
    path = Path(source)
    data = _read_pem(path, "public key")
    if b"PRIVATE KEY" in data:
        raise ConfigError(
            f"{path}: this is a private key; verify with the public key (the .pub file) "
            "and keep the private one secret"
        )
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise ConfigError(f"{path}: cannot load the public key ({exc})") from exc
    if not isinstance(key, Ed25519PublicKey | ec.EllipticCurvePublicKey):
        raise ConfigError(
            f"{path}: unsupported key type {type(key).__name__}; use Ed25519 or ECDSA P-256"
        )
    _check_supported(key, path)
    return key


def sign_message(key: PrivateKey, message: bytes) -> bytes:
    """Pure Ed25519, or DER ECDSA with the curve's hash (SHA-256 for P-256)."""
    if isinstance(key, Ed25519PrivateKey):
        return key.sign(message)
    return key.sign(message, ec.ECDSA(_EC_HASHES[key.curve.name]()))


def verify_message(key: PublicKey, signature: bytes, message: bytes) -> bool:
    """Whether ``signature`` is ``key``'s signature over ``message``."""
    try:
        if isinstance(key, Ed25519PublicKey):
            key.verify(signature, message)
        else:
            key.verify(signature, message, ec.ECDSA(_EC_HASHES[key.curve.name]()))
    except InvalidSignature:
        return False
    return True
