"""The one schema, as SQLAlchemy 2 declarative tables (Alembic migrations mirror it).

No database-specific types or SQL: the same tables serve SQLite and PostgreSQL. Times are
timezone-aware UTC on the way out (:class:`UTCDateTime`); JSON columns hold plain documents.

Tables and what they record:

- ``blobs``: one encrypted, content-addressed blob (id = SHA-256 of the plaintext) and its data
  key wrapped by the master key that ``key_id`` names.
- ``models``, ``model_versions``, ``version_files``: registered models, their numbered versions
  and the files (blobs) each version is made of.
- ``datasets`` and ``lineage_edges``: data sources and how versions relate to them and to each
  other (``trained-on``, ``evaluated-on``, ``derived-from``).
- ``scans``, ``signatures``, ``assessments``: the evidence the approval gates read, each tied to
  the artifact digest it was made for (so evidence for other bytes is stale).
- ``transitions``: every lifecycle change with who, when, why, and whether a gate was overridden.
- ``aliases``: per-model names (``champion``, ``previous``) pointing at versions.
- ``notes``: free text attached to a model or a version.
- ``audit_records``, ``audit_head``, ``audit_checkpoints``, ``audit_anchors``: the
  tamper-evident audit log (:mod:`warden.audit`), see the section at the end.
- ``access_users``, ``access_totp``, ``access_recovery_codes``, ``access_sessions``,
  ``access_api_keys``, ``access_grants``: users, MFA, sessions, API keys and per-model grants
  (:mod:`warden.access`); no secret in the clear, see the last section.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Dialect,
    ForeignKey,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = [
    "AccessApiKey",
    "AccessGrant",
    "AccessRecoveryCode",
    "AccessSession",
    "AccessTotp",
    "AccessUser",
    "Alias",
    "Assessment",
    "AuditAnchor",
    "AuditCheckpoint",
    "AuditHead",
    "AuditRecord",
    "Base",
    "Blob",
    "Dataset",
    "LineageEdge",
    "Model",
    "ModelVersion",
    "Note",
    "Scan",
    "Signature",
    "Transition",
    "UTCDateTime",
    "VersionFile",
    "utcnow",
]

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored as UTC and always read back timezone-aware (SQLite drops the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: pass a timezone-aware time")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    """Declarative base with a naming convention so migrations name constraints the same way."""

    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: dict[Any, Any] = {  # noqa: RUF012 - SQLAlchemy's class-level mapping
        datetime: UTCDateTime(),
        dict[str, Any]: JSON(),
        list[Any]: JSON(),
        bytes: LargeBinary(),
    }


class Blob(Base):
    """One encrypted blob; the row holds its wrapped data key, the file its ciphertext."""

    __tablename__ = "blobs"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger)
    chunk_size: Mapped[int] = mapped_column(Integer)
    key_id: Mapped[str] = mapped_column(String(32), index=True)
    wrapped_key: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Model(Base):
    """A registered model (a name with versions)."""

    __tablename__ = "models"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    intended_use: Mapped[str] = mapped_column(Text, default="")
    limitations: Mapped[str] = mapped_column(Text, default="")
    owner: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str] = mapped_column(String(200))


class ModelVersion(Base):
    """A numbered version of a model: its artifact files, state and input spec."""

    __tablename__ = "model_versions"
    __table_args__ = (
        UniqueConstraint("model_id", "number", name="model_number"),
        CheckConstraint(
            "state IN ('registered', 'approved', 'deployed', 'quarantined', 'retired')",
            name="state",
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(20), default="registered")
    artifact_digest: Mapped[str] = mapped_column(String(80))
    artifact_name: Mapped[str] = mapped_column(String(500))
    artifact_kind: Mapped[str] = mapped_column(String(10))
    framework: Mapped[str] = mapped_column(String(50), default="")
    input_spec: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    attributes: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str] = mapped_column(String(200))


class VersionFile(Base):
    """One file of a version's artifact, stored as a blob."""

    __tablename__ = "version_files"
    __table_args__ = (UniqueConstraint("version_id", "path", name="version_path"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"), index=True)
    path: Mapped[str] = mapped_column(String(1000))
    blob_id: Mapped[str] = mapped_column(ForeignKey("blobs.id"), index=True)
    size: Mapped[int] = mapped_column(BigInteger)


class Dataset(Base):
    """A data source: content fingerprint, where it came from, licence and attributes."""

    __tablename__ = "datasets"
    __table_args__ = (UniqueConstraint("name", "fingerprint", name="name_fingerprint"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), index=True)
    fingerprint: Mapped[str] = mapped_column(String(80))
    source: Mapped[str] = mapped_column(Text, default="")
    license: Mapped[str] = mapped_column(String(200), default="")
    description: Mapped[str] = mapped_column(Text, default="")
    n_rows: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    attributes: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str] = mapped_column(String(200))


class LineageEdge(Base):
    """``version`` was trained on / evaluated on a dataset, or derived from another version."""

    __tablename__ = "lineage_edges"
    __table_args__ = (
        CheckConstraint(
            "kind IN ('trained-on', 'evaluated-on', 'derived-from')",
            name="kind",
        ),
        CheckConstraint(
            "(dataset_id IS NULL) <> (parent_version_id IS NULL)",
            name="one_target",
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    dataset_id: Mapped[int | None] = mapped_column(ForeignKey("datasets.id"), nullable=True)
    parent_version_id: Mapped[int | None] = mapped_column(
        ForeignKey("model_versions.id"), nullable=True
    )
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str] = mapped_column(String(200))


class Scan(Base):
    """A supply-chain scan of a version's artifact (the ``warden-scan/1`` report)."""

    __tablename__ = "scans"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"), index=True)
    artifact_digest: Mapped[str] = mapped_column(String(80))
    scanner_version: Mapped[str] = mapped_column(String(50))
    clean: Mapped[bool] = mapped_column(Boolean)
    max_severity: Mapped[str | None] = mapped_column(String(20), nullable=True)
    finding_count: Mapped[int] = mapped_column(Integer)
    report: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str] = mapped_column(String(200))


class Signature(Base):
    """A signature bundle over a version's artifact and the result of verifying it."""

    __tablename__ = "signatures"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"), index=True)
    artifact_digest: Mapped[str] = mapped_column(String(80))
    key_id: Mapped[str] = mapped_column(String(100))
    public_key: Mapped[str] = mapped_column(Text)
    bundle: Mapped[str] = mapped_column(Text)
    verified: Mapped[bool] = mapped_column(Boolean)
    detail: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str] = mapped_column(String(200))


class Assessment(Base):
    """An assessment scorecard (the ``warden assess`` JSON report) for a version."""

    __tablename__ = "assessments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"), index=True)
    artifact_digest: Mapped[str] = mapped_column(String(80))
    grade: Mapped[str] = mapped_column(String(5))
    report: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str] = mapped_column(String(200))


class Transition(Base):
    """One lifecycle change: from which state to which, by whom, when, why, on what evidence."""

    __tablename__ = "transitions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"), index=True)
    from_state: Mapped[str | None] = mapped_column(String(20), nullable=True)
    to_state: Mapped[str] = mapped_column(String(20))
    actor: Mapped[str] = mapped_column(String(200))
    reason: Mapped[str] = mapped_column(Text, default="")
    override: Mapped[bool] = mapped_column(Boolean, default=False)
    evidence: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    at: Mapped[datetime] = mapped_column(default=utcnow)


class Alias(Base):
    """A per-model name (``champion``, ``previous``, …) for one version."""

    __tablename__ = "aliases"

    model_id: Mapped[int] = mapped_column(ForeignKey("models.id"), primary_key=True)
    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_by: Mapped[str] = mapped_column(String(200))


class Note(Base):
    """Free text about a model or one of its versions."""

    __tablename__ = "notes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id"), index=True)
    version_id: Mapped[int | None] = mapped_column(
        ForeignKey("model_versions.id"), nullable=True, index=True
    )
    author: Mapped[str] = mapped_column(String(200))
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


# --- the audit log (warden.audit) ------------------------------------------------------------
#
# Append-only: the code inserts into ``audit_records``, ``audit_checkpoints`` and
# ``audit_anchors`` and never updates them; the only delete is
# ``warden.audit.archive.archive_before`` (records moved to a signed archive file first).
# ``audit_head`` is the one-row lock and cache of the chain's end that writers update.
# Times are integer microseconds since the Unix epoch (UTC): exact and identical on every
# database, and part of each record's authenticated canonical text.

_AUDIT_SEQ = BigInteger().with_variant(Integer(), "sqlite")
"""A 64-bit sequence number; on SQLite the rowid itself (``INTEGER PRIMARY KEY``)."""


class AuditRecord(Base):
    """One audit record: its canonical text (every field) and its link in the HMAC chain."""

    __tablename__ = "audit_records"

    seq: Mapped[int] = mapped_column(_AUDIT_SEQ, primary_key=True, autoincrement=False)
    at_us: Mapped[int] = mapped_column(BigInteger, index=True)
    canonical: Mapped[str] = mapped_column(Text)
    prev_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    hash: Mapped[bytes] = mapped_column(LargeBinary(32))


class AuditHead(Base):
    """The end of the chain (one row, ``id = 1``): writers lock it to number records."""

    __tablename__ = "audit_head"
    __table_args__ = (CheckConstraint("id = 1", name="single_row"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(BigInteger)
    hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    at_us: Mapped[int] = mapped_column(BigInteger)
    checkpoint_seq: Mapped[int] = mapped_column(BigInteger)
    checkpoint_us: Mapped[int] = mapped_column(BigInteger)


class AuditCheckpoint(Base):
    """An Ed25519-signed statement of the chain's record count and head hash at a time."""

    __tablename__ = "audit_checkpoints"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    count: Mapped[int] = mapped_column(BigInteger, unique=True)
    at_us: Mapped[int] = mapped_column(BigInteger)
    key_id: Mapped[str] = mapped_column(String(64))
    statement: Mapped[str] = mapped_column(Text)
    signature: Mapped[bytes] = mapped_column(LargeBinary)


class AuditAnchor(Base):
    """Where the live chain starts after records were archived: a signed statement."""

    __tablename__ = "audit_anchors"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    first_seq: Mapped[int] = mapped_column(BigInteger, unique=True)
    at_us: Mapped[int] = mapped_column(BigInteger)
    key_id: Mapped[str] = mapped_column(String(64))
    statement: Mapped[str] = mapped_column(Text)
    signature: Mapped[bytes] = mapped_column(LargeBinary)


# --- access control (warden.access) ----------------------------------------------------------
#
# No secret is stored in the clear: passwords as argon2id hashes, session tokens, API-key
# secrets and recovery codes as SHA-256 digests (high-entropy random values), TOTP secrets
# encrypted (AES-256-GCM under a data key wrapped by the master key, like blobs).


class AccessUser(Base):
    """A user: argon2id password hash, roles, lockout state."""

    __tablename__ = "access_users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    name_key: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    roles: Mapped[list[Any]] = mapped_column(JSON, default=list)
    plan: Mapped[str] = mapped_column(String(100), default="default")
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    lockouts: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(nullable=True)
    password_changed_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str] = mapped_column(String(200))


class AccessTotp(Base):
    """A user's TOTP secret (encrypted) and the last time step accepted (replay guard)."""

    __tablename__ = "access_totp"

    user_id: Mapped[int] = mapped_column(ForeignKey("access_users.id"), primary_key=True)
    key_id: Mapped[str] = mapped_column(String(32))
    wrapped_key: Mapped[bytes] = mapped_column(LargeBinary)
    sealed_secret: Mapped[bytes] = mapped_column(LargeBinary)
    confirmed_at: Mapped[datetime | None] = mapped_column(nullable=True)
    last_step: Mapped[int] = mapped_column(BigInteger, default=-1)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class AccessRecoveryCode(Base):
    """One MFA recovery code (SHA-256 of user id and code), usable once."""

    __tablename__ = "access_recovery_codes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("access_users.id"), index=True)
    code_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    used_at: Mapped[datetime | None] = mapped_column(nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class AccessSession(Base):
    """A login session: the SHA-256 of its token, expiry, and whether it is restricted."""

    __tablename__ = "access_sessions"
    __table_args__ = (CheckConstraint("kind IN ('full', 'mfa-enrol')", name="kind"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("access_users.id"), index=True)
    kind: Mapped[str] = mapped_column(String(10))
    source: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None] = mapped_column(nullable=True)


class AccessApiKey(Base):
    """An API key: public id, SHA-256 of its secret, role, plan, expiry, rotation, revocation."""

    __tablename__ = "access_api_keys"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    secret_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(50))
    plan: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str] = mapped_column(String(200))
    expires_at: Mapped[datetime | None] = mapped_column(nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(nullable=True)
    replaced_by: Mapped[str | None] = mapped_column(String(32), nullable=True)
    grace_until: Mapped[datetime | None] = mapped_column(nullable=True)


class AccessGrant(Base):
    """A per-model grant to a user (``subject_id`` = user id) or an API key (its id)."""

    __tablename__ = "access_grants"
    __table_args__ = (
        UniqueConstraint("subject_kind", "subject_id", "model", name="subject_model"),
        CheckConstraint("subject_kind IN ('user', 'key')", name="subject_kind"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    subject_kind: Mapped[str] = mapped_column(String(10))
    subject_id: Mapped[str] = mapped_column(String(32), index=True)
    model: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str] = mapped_column(String(200))
