"""What the registry returns: frozen records, never database rows.

Every record has ``to_dict()``, a JSON-ready form (times as ISO 8601 UTC strings) that the CLI
prints with ``--format json``. Records are snapshots: changing the registry afterwards does not
change a record already returned.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

__all__ = [
    "AliasInfo",
    "AssessmentInfo",
    "DatasetInfo",
    "FileInfo",
    "LineageInfo",
    "ModelInfo",
    "NoteInfo",
    "ScanInfo",
    "SignatureInfo",
    "TransitionInfo",
    "VersionInfo",
]


def _time(t: datetime | None) -> str | None:
    return None if t is None else t.isoformat()


@dataclass(frozen=True)
class ModelInfo:
    """A registered model: a name that versions are numbered under."""

    name: str
    """Unique name (letters, digits, ``.``, ``_``, ``-``)."""
    description: str
    """What the model does (free text)."""
    intended_use: str
    """Intended use, for the model card (free text)."""
    limitations: str
    """Known limitations, for the model card (free text)."""
    owner: str
    """Who is responsible for it (free text)."""
    created_at: datetime
    """When it was created (UTC)."""
    created_by: str
    """Who created it."""
    versions: int = 0
    """How many versions it has."""
    aliases: dict[str, int] = field(default_factory=dict)
    """Alias name to version number (``champion``, ``previous``, …)."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "name": self.name,
            "description": self.description,
            "intended_use": self.intended_use,
            "limitations": self.limitations,
            "owner": self.owner,
            "created_at": _time(self.created_at),
            "created_by": self.created_by,
            "versions": self.versions,
            "aliases": dict(self.aliases),
        }


@dataclass(frozen=True)
class FileInfo:
    """One file of a version's artifact."""

    path: str
    """POSIX path relative to the artifact directory; a one-file artifact's file name."""
    blob_id: str
    """SHA-256 (hex) of the file's bytes: its id in the encrypted blob store."""
    size: int
    """Size in bytes."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"path": self.path, "blob_id": self.blob_id, "size": self.size}


@dataclass(frozen=True)
class VersionInfo:
    """One numbered version of a model: its artifact files, state and metadata."""

    model: str
    """The model's name."""
    number: int
    """1, 2, 3 … per model, assigned at registration."""
    state: str
    """``registered``, ``approved``, ``deployed``, ``quarantined`` or ``retired``."""
    artifact_digest: str
    """``sha256:`` + the model_signing root digest over the files' SHA-256 digests."""
    artifact_name: str
    """The registered file's or directory's name."""
    artifact_kind: str
    """``file`` (one file) or ``dir`` (a directory of files)."""
    files: tuple[FileInfo, ...]
    """The artifact's files, sorted by path component."""
    framework: str
    """Framework label given at registration (``torch``, ``sklearn``, ``onnx`` …), or empty."""
    input_spec: dict[str, Any] | None
    """The input specification given at registration (for the gateway's validation), if any."""
    attributes: dict[str, Any]
    """Other facts recorded at registration (ignored paths …)."""
    created_at: datetime
    """When it was registered (UTC)."""
    created_by: str
    """Who registered it."""
    aliases: tuple[str, ...] = ()
    """Aliases pointing at this version."""

    @property
    def label(self) -> str:
        """``model v3``: how messages name the version."""
        return f"{self.model} v{self.number}"

    @property
    def size(self) -> int:
        """Total bytes of the artifact's files."""
        return sum(f.size for f in self.files)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "model": self.model,
            "version": self.number,
            "state": self.state,
            "artifact_digest": self.artifact_digest,
            "artifact_name": self.artifact_name,
            "artifact_kind": self.artifact_kind,
            "size": self.size,
            "files": [f.to_dict() for f in self.files],
            "framework": self.framework,
            "input_spec": self.input_spec,
            "attributes": dict(self.attributes),
            "created_at": _time(self.created_at),
            "created_by": self.created_by,
            "aliases": list(self.aliases),
        }


@dataclass(frozen=True)
class DatasetInfo:
    """A data source: a name and content fingerprint, with where it came from."""

    id: int
    """Database id (a dataset name may have several fingerprints: several versions)."""
    name: str
    """Name."""
    fingerprint: str
    """Content fingerprint, ``sha256:`` + 64 hex characters."""
    source: str
    """Where it came from (URL, path, description)."""
    license: str
    """Licence (SPDX id or text)."""
    description: str
    """Free text."""
    n_rows: int | None
    """Number of rows/samples, if known."""
    attributes: dict[str, Any]
    """Other facts: ``columns``, ``classes``, ``input_shape`` …"""
    created_at: datetime
    """When it was registered (UTC)."""
    created_by: str
    """Who registered it."""

    @property
    def ref(self) -> str:
        """``name@sha256:abcdef012345``: an unambiguous short reference."""
        return f"{self.name}@{self.fingerprint[:19]}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "name": self.name,
            "fingerprint": self.fingerprint,
            "source": self.source,
            "license": self.license,
            "description": self.description,
            "n_rows": self.n_rows,
            "attributes": dict(self.attributes),
            "created_at": _time(self.created_at),
            "created_by": self.created_by,
        }


@dataclass(frozen=True)
class LineageInfo:
    """One lineage edge: a version was trained/evaluated on a dataset, or derived from a
    version."""

    model: str
    """The subject version's model."""
    version: int
    """The subject version's number."""
    kind: str
    """``trained-on``, ``evaluated-on`` or ``derived-from``."""
    dataset: DatasetInfo | None
    """The dataset (``trained-on`` / ``evaluated-on``)."""
    parent_model: str | None
    """The parent version's model (``derived-from``)."""
    parent_version: int | None
    """The parent version's number (``derived-from``)."""
    details: dict[str, Any]
    """Free-form facts about the relation (e.g. how it was hardened)."""
    created_at: datetime
    """When it was recorded (UTC)."""
    created_by: str
    """Who recorded it."""

    @property
    def target(self) -> str:
        """The dataset reference or ``model vN`` of the parent."""
        if self.dataset is not None:
            return self.dataset.ref
        return f"{self.parent_model} v{self.parent_version}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "model": self.model,
            "version": self.version,
            "kind": self.kind,
            "dataset": None if self.dataset is None else self.dataset.to_dict(),
            "parent": None
            if self.parent_model is None
            else {"model": self.parent_model, "version": self.parent_version},
            "details": dict(self.details),
            "created_at": _time(self.created_at),
            "created_by": self.created_by,
        }


@dataclass(frozen=True)
class ScanInfo:
    """A supply-chain scan of a version's artifact."""

    id: int
    """Evidence id (``scan:<id>`` in gate results)."""
    model: str
    """The model's name."""
    version: int
    """The version's number."""
    artifact_digest: str
    """The artifact digest the scanned bytes had."""
    scanner_version: str
    """The Warden version that scanned."""
    clean: bool
    """No finding at or above ``low``."""
    max_severity: str | None
    """The worst finding's severity, or ``None`` when there was no finding."""
    finding_count: int
    """Number of findings."""
    by_severity: dict[str, int]
    """Findings per severity name."""
    report: dict[str, Any]
    """The full ``warden-scan/1`` document (paths relative to the artifact)."""
    created_at: datetime
    """When it ran (UTC)."""
    created_by: str
    """Who ran it."""

    def to_dict(self, *, report: bool = False) -> dict[str, Any]:
        """JSON-ready form; the full scan document only when ``report`` is true."""
        doc: dict[str, Any] = {
            "id": self.id,
            "model": self.model,
            "version": self.version,
            "artifact_digest": self.artifact_digest,
            "scanner_version": self.scanner_version,
            "clean": self.clean,
            "max_severity": self.max_severity,
            "finding_count": self.finding_count,
            "by_severity": dict(self.by_severity),
            "created_at": _time(self.created_at),
            "created_by": self.created_by,
        }
        if report:
            doc["report"] = self.report
        return doc


@dataclass(frozen=True)
class SignatureInfo:
    """A signature bundle attached to a version (it verified when attached)."""

    id: int
    """Evidence id (``signature:<id>`` in gate results)."""
    model: str
    """The model's name."""
    version: int
    """The version's number."""
    artifact_digest: str
    """The root digest the bundle signs (``sha256:`` …)."""
    key_id: str
    """SHA-256 of the signer's public key PEM."""
    public_key: str
    """The signer's public key PEM."""
    bundle: str
    """The sigstore bundle JSON, as attached."""
    verified: bool
    """Whether it verified against the version's files when attached."""
    detail: str
    """What verification found."""
    created_at: datetime
    """When it was attached (UTC)."""
    created_by: str
    """Who attached it."""

    def to_dict(self, *, bundle: bool = False) -> dict[str, Any]:
        """JSON-ready form; the bundle itself only when ``bundle`` is true."""
        doc: dict[str, Any] = {
            "id": self.id,
            "model": self.model,
            "version": self.version,
            "artifact_digest": self.artifact_digest,
            "key_id": self.key_id,
            "verified": self.verified,
            "detail": self.detail,
            "created_at": _time(self.created_at),
            "created_by": self.created_by,
        }
        if bundle:
            doc["bundle"] = self.bundle
            doc["public_key"] = self.public_key
        return doc


@dataclass(frozen=True)
class AssessmentInfo:
    """An assessment (the ``warden assess`` JSON report) attached to a version."""

    id: int
    """Evidence id (``assessment:<id>`` in gate results)."""
    model: str
    """The model's name."""
    version: int
    """The version's number."""
    artifact_digest: str
    """The version's artifact digest when the assessment was attached."""
    grade: str
    """The scorecard's overall grade (``A``–``F`` or ``N/A``)."""
    threat_grades: dict[str, str]
    """Grade per OWASP ML threat id the assessment evaluated."""
    report: dict[str, Any]
    """The report document as attached."""
    created_at: datetime
    """When it was attached (UTC)."""
    created_by: str
    """Who attached it."""

    def to_dict(self, *, report: bool = False) -> dict[str, Any]:
        """JSON-ready form; the full report only when ``report`` is true."""
        doc: dict[str, Any] = {
            "id": self.id,
            "model": self.model,
            "version": self.version,
            "artifact_digest": self.artifact_digest,
            "grade": self.grade,
            "threat_grades": dict(self.threat_grades),
            "created_at": _time(self.created_at),
            "created_by": self.created_by,
        }
        if report:
            doc["report"] = self.report
        return doc


@dataclass(frozen=True)
class TransitionInfo:
    """One lifecycle change of a version."""

    id: int
    """Database id (increasing in time)."""
    model: str
    """The model's name."""
    version: int
    """The version's number."""
    from_state: str | None
    """The state before (``None`` for the registration itself)."""
    to_state: str
    """The state after."""
    actor: str
    """Who made the change."""
    reason: str
    """Why (required for overrides, quarantine, release, rollback and retirement)."""
    override: bool
    """Whether failing policy gates were overridden."""
    evidence: dict[str, Any]
    """The gate results and policy the decision was made on (approvals), or other context."""
    at: datetime
    """When (UTC)."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "id": self.id,
            "model": self.model,
            "version": self.version,
            "from_state": self.from_state,
            "to_state": self.to_state,
            "actor": self.actor,
            "reason": self.reason,
            "override": self.override,
            "evidence": self.evidence,
            "at": _time(self.at),
        }


@dataclass(frozen=True)
class AliasInfo:
    """A per-model alias and the version it points at."""

    model: str
    """The model's name."""
    name: str
    """The alias (``champion``, ``previous``, or one of the user's)."""
    version: int
    """The version number it points at."""
    updated_at: datetime
    """When it was last moved (UTC)."""
    updated_by: str
    """Who moved it."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "model": self.model,
            "alias": self.name,
            "version": self.version,
            "updated_at": _time(self.updated_at),
            "updated_by": self.updated_by,
        }


@dataclass(frozen=True)
class NoteInfo:
    """Free text attached to a model or one of its versions."""

    id: int
    """Database id."""
    model: str
    """The model's name."""
    version: int | None
    """The version's number, or ``None`` for a note on the model."""
    author: str
    """Who wrote it."""
    text: str
    """The note."""
    created_at: datetime
    """When (UTC)."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "id": self.id,
            "model": self.model,
            "version": self.version,
            "author": self.author,
            "text": self.text,
            "created_at": _time(self.created_at),
        }
