"""TOTP secrets at rest: envelope encryption under the store's master key, as blobs do.

Each secret gets its own random 256-bit data key; the secret is sealed with AES-256-GCM under
that key (associated data binds it to the user id), and the data key is wrapped by the master
key with :func:`warden.store.keys.wrap_key` under the synthetic id ``access-totp:<user id>``.
The row keeps the wrapping key's id, so a master-key rotation only re-wraps the data key
(:func:`rewrap_wrapped_keys`, which :func:`warden.store.keys.rotate_master_key` calls),
exactly as for blobs.
"""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import select, update

from warden.errors import StoreError, TamperError
from warden.store.keys import Keyring, MasterKey, unwrap_key, wrap_key
from warden.store.tables import AccessTotp

if TYPE_CHECKING:
    from warden.store.db import Database

__all__ = ["open_secret", "rewrap_wrapped_keys", "seal_secret", "wrapped_key_ids"]

_NONCE = 12
_VERSION = b"\x01"


def _wrap_id(user_id: int) -> str:
    return f"access-totp:{user_id}"


def _ad(user_id: int) -> bytes:
    return f"warden access totp secret v1 user {user_id}".encode()


def seal_secret(master: MasterKey, user_id: int, secret: bytes) -> tuple[str, bytes, bytes]:
    """``(key_id, wrapped data key, sealed secret)`` for storing ``secret`` of ``user_id``."""
    dek = secrets.token_bytes(32)
    nonce = secrets.token_bytes(_NONCE)
    sealed = _VERSION + nonce + AESGCM(dek).encrypt(nonce, secret, _ad(user_id))
    return master.key_id, wrap_key(master, dek, _wrap_id(user_id)), sealed


def open_secret(
    keyring: Keyring, user_id: int, key_id: str, wrapped: bytes, sealed: bytes
) -> bytes:
    """The TOTP secret stored for ``user_id`` (TamperError if any part was altered)."""
    dek = unwrap_key(keyring, key_id, wrapped, _wrap_id(user_id))
    if len(sealed) < 1 + _NONCE + 16 or sealed[:1] != _VERSION:
        raise TamperError(f"the TOTP secret of user {user_id} is malformed; reset their MFA")
    nonce, body = sealed[1 : 1 + _NONCE], sealed[1 + _NONCE :]
    try:
        return AESGCM(dek).decrypt(nonce, body, _ad(user_id))
    except InvalidTag:
        raise TamperError(
            f"the TOTP secret of user {user_id} fails authentication (altered or moved to "
            "another user); reset their MFA with `warden access mfa reset`"
        ) from None


def wrapped_key_ids(db: Database) -> set[str]:
    """The ids of the master keys that wrap stored TOTP data keys."""
    with db.session() as session:
        return set(session.scalars(select(AccessTotp.key_id).distinct()))


def rewrap_wrapped_keys(db: Database, keyring: Keyring, new: MasterKey) -> int:
    """Re-wrap every TOTP data key not yet under ``new`` (for a master-key rotation); the
    number of rows re-wrapped. Safe to re-run."""
    done = 0
    with db.session() as session:
        rows = session.execute(
            select(AccessTotp.user_id, AccessTotp.key_id, AccessTotp.wrapped_key).where(
                AccessTotp.key_id != new.key_id
            )
        ).all()
        for user_id, key_id, wrapped in rows:
            dek = unwrap_key(keyring, key_id, wrapped, _wrap_id(user_id))
            result = session.execute(
                update(AccessTotp)
                .where(AccessTotp.user_id == user_id, AccessTotp.key_id == key_id)
                .values(key_id=new.key_id, wrapped_key=wrap_key(new, dek, _wrap_id(user_id)))
            )
            done += int(getattr(result, "rowcount", 0) or 0)
    if rows and not done:
        raise StoreError("re-wrapping TOTP keys made no progress; another process changed them")
    return done
