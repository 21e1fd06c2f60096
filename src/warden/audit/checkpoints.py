"""Signed statements: checkpoints (count, head hash, time) and archive anchors.

A statement is compact, key-sorted JSON text; its Ed25519 signature is over the UTF-8 bytes of
that text. Checkpoints are stored in ``audit_checkpoints`` and, when the log is given an
external directory, also written there as ``checkpoint-<count>.json`` plus ``latest.json``
(the newest), so that a truncation or rewrite of the database after a checkpoint can be shown
against a copy the attacker did not reach (``warden audit verify --from-checkpoint FILE``).
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from warden.audit.chain import canonical_json
from warden.audit.keys import public_key_id
from warden.errors import ConfigError, TamperError

__all__ = [
    "ANCHOR_FORMAT",
    "ARCHIVE_FORMAT",
    "CHECKPOINT_FORMAT",
    "FILE_FORMAT",
    "Checkpoint",
    "open_statement",
    "read_checkpoint_file",
    "sign_statement",
    "time_from_us",
    "write_checkpoint_file",
]

CHECKPOINT_FORMAT: Final = "warden-audit-checkpoint/1"
ANCHOR_FORMAT: Final = "warden-audit-anchor/1"
ARCHIVE_FORMAT: Final = "warden-audit-archive/1"
FILE_FORMAT: Final = "warden-audit-checkpoint-file/1"


def time_from_us(time_us: int) -> datetime:
    """A UTC datetime from integer microseconds since the epoch (exact)."""
    return datetime.fromtimestamp(time_us // 1_000_000, UTC).replace(
        microsecond=time_us % 1_000_000
    )


def sign_statement(signer: Ed25519PrivateKey, fields: dict[str, Any]) -> tuple[str, bytes]:
    """The statement text for ``fields`` (plus the signer's ``key_id``) and its signature."""
    text = canonical_json({**fields, "key_id": public_key_id(signer)})
    return text, signer.sign(text.encode("utf-8"))


def open_statement(
    statement: str, signature: bytes, public_key: Ed25519PublicKey, expected_format: str
) -> dict[str, Any]:
    """The fields of a statement whose signature verifies (``TamperError`` otherwise)."""
    try:
        public_key.verify(signature, statement.encode("utf-8"))
    except InvalidSignature:
        raise TamperError(
            f"a {expected_format} statement does not verify with public key "
            f"{public_key_id(public_key)[:16]}: it was altered or signed by another key"
        ) from None
    doc = json.loads(statement)
    if not isinstance(doc, dict) or doc.get("format") != expected_format:
        raise TamperError(f"expected a {expected_format} statement, found {statement[:80]!r}")
    return doc


@dataclass(frozen=True)
class Checkpoint:
    """A signed statement that the chain held ``count`` records ending in ``head``."""

    count: int
    """Records written so far (the sequence number of the newest)."""
    head: str
    """The newest record's hash (hex; the genesis value for an empty chain)."""
    time_us: int
    """When the checkpoint was made (UTC microseconds since the epoch)."""
    audit_key_id: str
    """Which audit key the chain is keyed with."""
    key_id: str
    """Which Ed25519 key signed it (SHA-256 of its raw public key)."""
    statement: str
    """The signed text."""
    signature: bytes
    """The Ed25519 signature over the statement."""

    @property
    def time(self) -> datetime:
        """When the checkpoint was made (UTC)."""
        return time_from_us(self.time_us)

    @classmethod
    def make(
        cls,
        signer: Ed25519PrivateKey,
        *,
        count: int,
        head: bytes,
        time_us: int,
        audit_key_id: str,
    ) -> Checkpoint:
        """Sign a new checkpoint."""
        fields = {
            "format": CHECKPOINT_FORMAT,
            "count": count,
            "head": head.hex(),
            "time_us": time_us,
            "audit_key_id": audit_key_id,
        }
        statement, signature = sign_statement(signer, fields)
        return cls(
            count, head.hex(), time_us, audit_key_id, public_key_id(signer), statement, signature
        )

    @classmethod
    def open(cls, statement: str, signature: bytes, public_key: Ed25519PublicKey) -> Checkpoint:
        """A stored checkpoint, its signature checked (``TamperError`` otherwise)."""
        doc = open_statement(statement, signature, public_key, CHECKPOINT_FORMAT)
        try:
            return cls(
                count=int(doc["count"]),
                head=str(doc["head"]),
                time_us=int(doc["time_us"]),
                audit_key_id=str(doc["audit_key_id"]),
                key_id=str(doc["key_id"]),
                statement=statement,
                signature=signature,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise TamperError(f"checkpoint statement lacks a field: {exc}") from exc


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    with open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def write_checkpoint_file(directory: Path, checkpoint: Checkpoint, public_key: str) -> Path:
    """Copy ``checkpoint`` to ``directory`` (``checkpoint-<count>.json`` and ``latest.json``)."""
    directory.mkdir(parents=True, exist_ok=True)
    doc = {
        "format": FILE_FORMAT,
        "statement": checkpoint.statement,
        "signature": base64.b64encode(checkpoint.signature).decode("ascii"),
        "public_key": public_key,
    }
    data = (json.dumps(doc, indent=1) + "\n").encode("utf-8")
    path = directory / f"checkpoint-{checkpoint.count:012d}.json"
    _atomic_write(path, data)
    _atomic_write(directory / "latest.json", data)
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    return path


def read_checkpoint_file(path: Path, public_key: Ed25519PublicKey) -> Checkpoint:
    """A checkpoint copied out by :func:`write_checkpoint_file`, its signature checked."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        statement = doc["statement"]
        signature = base64.b64decode(doc["signature"], validate=True)
    except FileNotFoundError:
        raise ConfigError(f"checkpoint file {path} not found") from None
    except (OSError, ValueError, KeyError, TypeError, binascii.Error) as exc:
        raise ConfigError(
            f"{path}: expected a {FILE_FORMAT} file (written by the audit log's external "
            f"checkpoint copy), found something else ({exc})"
        ) from exc
    if not isinstance(doc, dict) or doc.get("format") != FILE_FORMAT:
        raise ConfigError(f"{path}: expected format {FILE_FORMAT}")
    if not isinstance(statement, str):
        raise ConfigError(f"{path}: the statement must be a string")
    return Checkpoint.open(statement, signature, public_key)
