"""The model registry: models, versions, datasets, lineage, evidence, lifecycle and aliases.

:class:`Registry` is the API; it reads and writes through a :class:`~warden.store.Store` and
returns frozen records (:mod:`warden.registry.records`), never database rows. Every write is
one transaction (``Database.write``, retried when another process won a race), and every
lifecycle change writes a ``transitions`` row saying who, when, why, and on what evidence.

Versions are referred to by number (``3``), ``"v3"``, ``"latest"`` or an alias. The aliases
``champion`` and ``previous`` are managed by :meth:`Registry.deploy` and
:meth:`Registry.rollback`; they keep the invariant *the champion is the one deployed version*:

- ``deploy(v)`` makes ``v`` the champion and the old champion ``previous`` (it goes back to
  ``approved``);
- ``rollback`` makes ``previous`` the champion again (it must still be ``approved``), moves the
  old champion to ``approved`` (or ``quarantined``), and points ``previous`` at the most recent
  earlier champion that is still approved (or removes it);
- quarantining or retiring the champion first rolls back to ``previous`` when that is possible;
  when it is not, it is refused unless ``force=True`` (the model is then left with no champion:
  nothing is served).
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, TypeVar

from cryptography.hazmat.primitives import serialization
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from warden.errors import (
    ConfigError,
    GateRefused,
    LifecycleError,
    RegistryError,
    SignatureError,
    StoreError,
)
from warden.registry import gates as _gates
from warden.registry._audit import audited
from warden.registry.artifacts import (
    DEFAULT_SKIP,
    artifact_digest,
    check_relative,
    manifest_for,
    walk_artifact,
)
from warden.registry.assessments import validate_assessment
from warden.registry.gates import GateResult, evidence_snapshot, version_manifest
from warden.registry.lifecycle import Move, State, check_reason, next_state
from warden.registry.policy import Policy, load_policy
from warden.registry.records import (
    AliasInfo,
    AssessmentInfo,
    DatasetInfo,
    FileInfo,
    LineageInfo,
    ModelInfo,
    NoteInfo,
    ScanInfo,
    SignatureInfo,
    TransitionInfo,
    VersionInfo,
)
from warden.store.tables import (
    Alias,
    Assessment,
    Dataset,
    LineageEdge,
    Model,
    ModelVersion,
    Note,
    Scan,
    Signature,
    Transition,
    VersionFile,
    utcnow,
)
from warden.supplychain.keys import (
    PrivateKey,
    PublicKey,
    key_id,
    load_private_key,
    load_public_key,
    public_pem,
)
from warden.supplychain.signing import (
    MAX_BUNDLE_BYTES,
    make_bundle,
    manifest_from_statement,
    open_bundle,
)

if TYPE_CHECKING:
    from warden.audit.events import AuditSink
    from warden.data.dataset import Dataset as WardenDataset
    from warden.store import Store
    from warden.supplychain.scanner import ScanLimits

__all__ = ["CHAMPION", "LINEAGE_KINDS", "PREVIOUS", "RESERVED_ALIASES", "GateReport", "Registry"]

log = logging.getLogger(__name__)

T = TypeVar("T")

CHAMPION: Final = "champion"
"""The alias of the deployed version (what the gateway serves)."""
PREVIOUS: Final = "previous"
"""The alias of the version a rollback returns to."""
RESERVED_ALIASES: Final = frozenset({CHAMPION, PREVIOUS, "latest"})
"""Aliases only :meth:`Registry.deploy` / :meth:`Registry.rollback` move (``latest`` is a
reference, not an alias)."""
LINEAGE_KINDS: Final = ("trained-on", "evaluated-on", "derived-from")
"""The kinds of lineage edge."""

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")
_ALIAS = re.compile(r"^[a-z][a-z0-9_-]{0,99}$")
_NUMBER = re.compile(r"^[vV]?([0-9]+)$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_MAX_TEXT: Final = 100_000


@dataclass(frozen=True)
class GateReport:
    """Every gate's verdict for one version under one policy."""

    version: VersionInfo
    """The version judged."""
    policy: Policy
    """The policy it was judged by."""
    results: tuple[GateResult, ...]
    """One result per gate, in :data:`~warden.registry.gates.GATE_NAMES` order."""
    at: datetime
    """When it was evaluated (UTC)."""

    @property
    def passed(self) -> bool:
        """Every gate passed."""
        return all(r.passed for r in self.results)

    @property
    def failures(self) -> tuple[str, ...]:
        """One line per failing gate."""
        return tuple(r.line() for r in self.results if not r.passed)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "model": self.version.model,
            "version": self.version.number,
            "state": self.version.state,
            "artifact_digest": self.version.artifact_digest,
            "passed": self.passed,
            "at": self.at.isoformat(),
            **evidence_snapshot(self.policy, self.results),
        }


# --- small helpers -----------------------------------------------------------------------------


def _check_name(name: str, what: str = "model name") -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise ConfigError(
            f"{what} {name!r}: expected 1-200 characters, letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return name


def _check_alias(alias: str) -> str:
    if not isinstance(alias, str) or not _ALIAS.match(alias) or _NUMBER.match(alias):
        raise ConfigError(
            f"alias {alias!r}: expected a lower-case name (letters, digits, '_', '-') that is "
            "not a version number"
        )
    return alias


def _text(value: str, what: str) -> str:
    if not isinstance(value, str):
        raise ConfigError(f"{what} must be text, found {type(value).__name__}")
    if len(value) > _MAX_TEXT:
        raise ConfigError(f"{what} is {len(value)} characters; at most {_MAX_TEXT}")
    return value


def _json_doc(value: Any, what: str) -> Any:
    try:
        return json.loads(json.dumps(value, allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{what} is not plain JSON data: {exc}") from exc


def _fingerprint(text: str) -> str:
    value = text.strip().lower()
    if value.startswith("sha256:"):
        value = value[len("sha256:") :]
    if not _HEX64.match(value):
        raise ConfigError(
            f"dataset fingerprint {text!r}: expected 'sha256:' followed by 64 hex characters"
        )
    return f"sha256:{value}"


def _public_key(source: PublicKey | bytes | str | os.PathLike[str]) -> PublicKey:
    if isinstance(source, bytes):
        try:
            key = serialization.load_pem_public_key(source)
        except ValueError as exc:
            raise ConfigError(f"the public key is not a PEM public key: {exc}") from exc
        return load_public_key(key)  # type: ignore[arg-type]  # checked for support there
    return load_public_key(source)


def _relativize(value: Any, prefix: str) -> Any:
    """Strip a private temporary path from every string of a JSON document."""
    if isinstance(value, str):
        return value.replace(prefix + os.sep, "").replace(prefix, ".")
    if isinstance(value, list):
        return [_relativize(v, prefix) for v in value]
    if isinstance(value, dict):
        return {k: _relativize(v, prefix) for k, v in value.items()}
    return value


class Registry:
    """Models and their versions, with evidence, lineage and a gated lifecycle.

    ``actor`` names whoever acts through this object; it is recorded with every change.
    ``policy`` overrides the store's policy file (``Settings.policy``, else
    ``HOME/policy.toml``, else :func:`~warden.registry.policy.default_policy`). ``clock``
    gives "now" for the gates' age checks. ``audit`` (an :class:`~warden.audit.AuditSink`, for
    example an :class:`~warden.audit.AuditLog`) receives one durable record per change and per
    refused or failed attempt (see :mod:`warden.registry._audit`).
    """

    def __init__(
        self,
        store: Store,
        *,
        actor: str,
        policy: Policy | None = None,
        clock: Callable[[], datetime] = utcnow,
        audit: AuditSink | None = None,
    ) -> None:
        if not isinstance(actor, str) or not actor.strip() or len(actor) > 200:
            raise ConfigError("actor must be a non-empty name of at most 200 characters")
        self.store = store
        self.actor = actor.strip()
        self._policy = policy
        self._clock = clock
        self.audit = audit

    def __repr__(self) -> str:
        return f"Registry({self.store!r}, actor={self.actor!r})"

    # -- plumbing ----------------------------------------------------------------------------

    def _read(self, work: Callable[[Session], T]) -> T:
        with self.store.db.session() as session:
            return work(session)

    def _write(self, work: Callable[[Session], T]) -> T:
        try:
            return self.store.db.write(work)
        except IntegrityError as exc:
            raise StoreError(
                f"the database refused the change ({exc.orig}); another process changed the "
                "same records: retry"
            ) from exc

    def policy(self) -> Policy:
        """The approval policy in force (read afresh from its file each call)."""
        if self._policy is not None:
            return self._policy
        settings = self.store.settings
        if settings.policy is not None:
            return load_policy(settings.policy, required=True)
        return load_policy(self.store.home / "policy.toml", required=False)

    # -- lookups -----------------------------------------------------------------------------

    @staticmethod
    def _model_row(session: Session, name: str, *, lock: bool = False) -> Model:
        """The model's row; ``lock`` holds it (``FOR UPDATE`` on PostgreSQL; SQLite's
        transactions already exclude other writers) so concurrent lifecycle changes and
        version numbering of one model queue instead of racing."""
        query = select(Model).where(Model.name == name)
        row = session.scalars(query.with_for_update() if lock else query).one_or_none()
        if row is None:
            raise RegistryError(
                f"no model named {name!r}; `warden registry models` lists them, "
                "`warden registry create NAME` makes one"
            )
        return row

    @staticmethod
    def _version_row(session: Session, model: Model, ref: int | str) -> ModelVersion:
        query = select(ModelVersion).where(ModelVersion.model_id == model.id)
        if isinstance(ref, bool):
            raise ConfigError(f"version reference {ref!r}: expected a number, vN, latest or alias")
        text = str(ref).strip()
        match = _NUMBER.match(text)
        if match:
            number = int(match.group(1))
            row = session.scalars(query.where(ModelVersion.number == number)).one_or_none()
            if row is None:
                raise RegistryError(f"{model.name} has no version {number}")
            return row
        if text == "latest":
            row = session.scalars(query.order_by(ModelVersion.number.desc()).limit(1)).first()
            if row is None:
                raise RegistryError(f"{model.name} has no versions yet")
            return row
        alias = session.get(Alias, (model.id, text))
        if alias is None:
            raise RegistryError(
                f"{model.name} has no version or alias {text!r} (give a number, vN, latest, "
                "or an alias such as champion)"
            )
        version = session.get(ModelVersion, alias.version_id)
        assert version is not None  # foreign key
        return version

    def _locate(
        self, session: Session, model: str, ref: int | str, *, lock: bool = False
    ) -> tuple[Model, ModelVersion]:
        m = self._model_row(session, model, lock=lock)
        return m, self._version_row(session, m, ref)

    @staticmethod
    def _version_info(session: Session, model: Model, v: ModelVersion) -> VersionInfo:
        files = session.scalars(select(VersionFile).where(VersionFile.version_id == v.id)).all()
        aliases = session.scalars(
            select(Alias.name).where(Alias.version_id == v.id).order_by(Alias.name)
        ).all()
        return VersionInfo(
            model=model.name,
            number=v.number,
            state=v.state,
            artifact_digest=v.artifact_digest,
            artifact_name=v.artifact_name,
            artifact_kind=v.artifact_kind,
            files=tuple(
                sorted(
                    (FileInfo(f.path, f.blob_id, f.size) for f in files),
                    key=lambda f: tuple(f.path.split("/")),
                )
            ),
            framework=v.framework,
            input_spec=v.input_spec,
            attributes=dict(v.attributes or {}),
            created_at=v.created_at,
            created_by=v.created_by,
            aliases=tuple(aliases),
        )

    @staticmethod
    def _model_info(session: Session, m: Model) -> ModelInfo:
        count = session.scalar(
            select(func.count()).select_from(ModelVersion).where(ModelVersion.model_id == m.id)
        )
        aliases = session.execute(
            select(Alias.name, ModelVersion.number)
            .join(ModelVersion, ModelVersion.id == Alias.version_id)
            .where(Alias.model_id == m.id)
            .order_by(Alias.name)
        ).all()
        return ModelInfo(
            name=m.name,
            description=m.description,
            intended_use=m.intended_use,
            limitations=m.limitations,
            owner=m.owner,
            created_at=m.created_at,
            created_by=m.created_by,
            versions=int(count or 0),
            aliases={name: number for name, number in aliases},
        )

    # -- models ------------------------------------------------------------------------------

    @audited("registry.model.create")
    def create_model(
        self,
        name: str,
        *,
        description: str = "",
        intended_use: str = "",
        limitations: str = "",
        owner: str = "",
    ) -> ModelInfo:
        """Create a model; :class:`RegistryError` if the name is taken."""
        _check_name(name)
        fields = {
            "description": _text(description, "description"),
            "intended_use": _text(intended_use, "intended_use"),
            "limitations": _text(limitations, "limitations"),
            "owner": _text(owner, "owner"),
        }

        def work(session: Session) -> ModelInfo:
            if session.scalars(select(Model.id).where(Model.name == name)).first() is not None:
                raise RegistryError(f"a model named {name!r} already exists")
            row = Model(name=name, created_by=self.actor, **fields)
            session.add(row)
            session.flush()
            return self._model_info(session, row)

        info = self._write(work)
        log.info("created model %s", name)
        return info

    @audited("registry.model.update")
    def update_model(
        self,
        name: str,
        *,
        description: str | None = None,
        intended_use: str | None = None,
        limitations: str | None = None,
        owner: str | None = None,
    ) -> ModelInfo:
        """Change a model's descriptive text (fields left ``None`` stay as they are)."""
        changes = {
            k: _text(v, k)
            for k, v in {
                "description": description,
                "intended_use": intended_use,
                "limitations": limitations,
                "owner": owner,
            }.items()
            if v is not None
        }

        def work(session: Session) -> ModelInfo:
            row = self._model_row(session, name)
            for key, value in changes.items():
                setattr(row, key, value)
            session.flush()
            return self._model_info(session, row)

        return self._write(work)

    def get_model(self, name: str) -> ModelInfo:
        """The model named ``name`` (:class:`RegistryError` if unknown)."""
        return self._read(lambda s: self._model_info(s, self._model_row(s, name)))

    def list_models(self) -> list[ModelInfo]:
        """Every model, by name."""
        return self._read(
            lambda s: [
                self._model_info(s, m) for m in s.scalars(select(Model).order_by(Model.name))
            ]
        )

    # -- versions ----------------------------------------------------------------------------

    @audited("registry.version.register")
    def register_version(
        self,
        model: str,
        artifact_path: str | os.PathLike[str],
        *,
        framework: str = "",
        input_spec: Mapping[str, Any] | None = None,
        attributes: Mapping[str, Any] | None = None,
        skip: Iterable[str] = DEFAULT_SKIP,
        create_model: bool = False,
    ) -> VersionInfo:
        """Store a file or directory as the model's next version (numbered 1, 2, 3 …).

        Each file goes into the encrypted blob store (deduplicated by content); symbolic links
        and special files are refused. ``skip`` lists relative paths left out of a directory
        (default: git metadata and a ``model.sig`` signature). ``create_model`` creates a
        missing model instead of refusing. The number is assigned inside the transaction, so
        concurrent registrations never share or skip a number.
        """
        _check_name(model)
        path = Path(artifact_path)
        skip = tuple(skip)
        files = walk_artifact(path, skip=skip)
        kind = "dir" if path.is_dir() else "file"
        spec = None if input_spec is None else _json_doc(dict(input_spec), "input_spec")
        if spec is not None and not isinstance(spec, dict):  # pragma: no cover - dict in
            raise ConfigError("input_spec must be a JSON object")
        attrs = _json_doc(dict(attributes or {}), "attributes")
        present = [s for s in skip if (path / s).exists()] if kind == "dir" else []
        if present:
            attrs.setdefault("skipped", present)
        stored: list[tuple[str, str, int]] = []
        for rel, file_path, _size in files:
            blob = self.store.blobs.put_file(file_path)
            stored.append((rel, blob.id, blob.size))
        name = path.name or path.resolve().name
        digest = artifact_digest(manifest_for(kind, ((r, b) for r, b, _ in stored), name=name))
        if len(_text(framework, "framework")) > 50:
            raise ConfigError(f"framework {framework[:60]!r}…: at most 50 characters")

        def work(session: Session) -> VersionInfo:
            row = session.scalars(
                select(Model).where(Model.name == model).with_for_update()
            ).one_or_none()
            if row is None:
                if not create_model:
                    self._model_row(session, model)  # raises the "no model" error
                row = Model(name=model, created_by=self.actor)
                session.add(row)
                session.flush()
            last = session.scalar(
                select(func.max(ModelVersion.number)).where(ModelVersion.model_id == row.id)
            )
            version = ModelVersion(
                model_id=row.id,
                number=(last or 0) + 1,
                state=State.REGISTERED.value,
                artifact_digest=digest,
                artifact_name=name,
                artifact_kind=kind,
                framework=framework,
                input_spec=spec,
                attributes=attrs,
                created_by=self.actor,
            )
            session.add(version)
            session.flush()
            session.add_all(
                VersionFile(version_id=version.id, path=r, blob_id=b, size=n) for r, b, n in stored
            )
            session.add(
                Transition(
                    version_id=version.id,
                    from_state=None,
                    to_state=State.REGISTERED.value,
                    actor=self.actor,
                    reason="registered",
                    evidence={"artifact_digest": digest, "files": len(stored)},
                )
            )
            session.flush()
            return self._version_info(session, row, version)

        info = self._write(work)
        log.info("registered %s (%d files, %s)", info.label, len(info.files), digest)
        return info

    def get_version(self, model: str, ref: int | str = "latest") -> VersionInfo:
        """One version: ``ref`` is a number, ``"v3"``, ``"latest"`` or an alias."""

        def work(session: Session) -> VersionInfo:
            m, v = self._locate(session, model, ref)
            return self._version_info(session, m, v)

        return self._read(work)

    def list_versions(self, model: str, *, state: str | None = None) -> list[VersionInfo]:
        """The model's versions, oldest first (only those in ``state`` if given)."""
        if state is not None:
            State(state)

        def work(session: Session) -> list[VersionInfo]:
            m = self._model_row(session, model)
            query = select(ModelVersion).where(ModelVersion.model_id == m.id)
            if state is not None:
                query = query.where(ModelVersion.state == state)
            rows = session.scalars(query.order_by(ModelVersion.number)).all()
            return [self._version_info(session, m, v) for v in rows]

        return self._read(work)

    @audited("registry.version.export")
    def export_version(self, model: str, ref: int | str, dest: str | os.PathLike[str]) -> Path:
        """Write the version's files (plaintext, authenticated) under ``dest``.

        ``dest`` must not exist or be an empty directory. Returns the exported file (one-file
        artifact) or ``dest`` (directory artifact). Nothing is left behind on failure.
        """
        v = self.get_version(model, ref)
        target = Path(dest)
        created = not target.exists()
        if not created and (not target.is_dir() or any(target.iterdir())):
            raise ConfigError(f"{target}: exists and is not an empty directory; give a new path")
        target.mkdir(mode=0o700, parents=True, exist_ok=True)
        try:
            for f in v.files:
                rel = check_relative(f.path)
                out = target / rel
                out.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
                self.store.blobs.export(f.blob_id, out)
        except BaseException:
            if created:
                shutil.rmtree(target, ignore_errors=True)
            else:
                for child in list(target.iterdir()):
                    if child.is_dir() and not child.is_symlink():
                        shutil.rmtree(child, ignore_errors=True)
                    else:
                        child.unlink(missing_ok=True)
            raise
        log.info("exported %s to %s", v.label, target)
        return target / v.files[0].path if v.artifact_kind == "file" else target

    # -- datasets ----------------------------------------------------------------------------

    @staticmethod
    def _dataset_info(d: Dataset) -> DatasetInfo:
        return DatasetInfo(
            id=d.id,
            name=d.name,
            fingerprint=d.fingerprint,
            source=d.source,
            license=d.license,
            description=d.description,
            n_rows=d.n_rows,
            attributes=dict(d.attributes or {}),
            created_at=d.created_at,
            created_by=d.created_by,
        )

    @audited("registry.dataset.register", subject="dataset")
    def register_dataset(
        self,
        name: str,
        *,
        fingerprint: str,
        source: str = "",
        license: str = "",
        description: str = "",
        n_rows: int | None = None,
        attributes: Mapping[str, Any] | None = None,
    ) -> DatasetInfo:
        """Record a dataset by name and content fingerprint (``sha256:`` + 64 hex).

        Registering the same name, fingerprint and facts again returns the existing record;
        the same name and fingerprint with different facts is a :class:`RegistryError`.
        """
        _check_name(name, "dataset name")
        fp = _fingerprint(fingerprint)
        if len(license) > 200:
            raise ConfigError("license: at most 200 characters (give an SPDX id or a short name)")
        if n_rows is not None and (
            isinstance(n_rows, bool) or not isinstance(n_rows, int) or n_rows < 0
        ):
            raise ConfigError(f"n_rows must be a non-negative integer, found {n_rows!r}")
        facts = {
            "source": _text(source, "source"),
            "license": _text(license, "license"),
            "description": _text(description, "description"),
            "n_rows": n_rows,
            "attributes": _json_doc(dict(attributes or {}), "attributes"),
        }

        def work(session: Session) -> DatasetInfo:
            row = session.scalars(
                select(Dataset).where(Dataset.name == name, Dataset.fingerprint == fp)
            ).one_or_none()
            if row is not None:
                same = all(getattr(row, k) == v for k, v in facts.items())
                if not same:
                    raise RegistryError(
                        f"dataset {name} with fingerprint {fp[:19]}… is already registered with "
                        "other facts (source, licence, rows or attributes)"
                    )
                return self._dataset_info(row)
            row = Dataset(name=name, fingerprint=fp, created_by=self.actor, **facts)
            session.add(row)
            session.flush()
            return self._dataset_info(row)

        return self._write(work)

    def register_dataset_from(
        self,
        name: str,
        data: str | os.PathLike[str] | WardenDataset,
        *,
        label_column: str = "label",
        source: str | None = None,
        license: str = "",
        description: str = "",
        attributes: Mapping[str, Any] | None = None,
    ) -> DatasetInfo:
        """Register a :class:`~warden.data.dataset.Dataset`, or one loaded with
        :func:`warden.data.load_dataset` (a ``.npz``/CSV file, an image folder or a bundled
        name).

        The fingerprint is the dataset's content fingerprint (``Dataset.fingerprint``: SHA-256
        over the canonical encoding of inputs and labels), the one ``warden assess`` reports
        record, so an assessment names the registered data it ran on. Rows, input shape,
        column and class names are recorded as attributes.
        """
        from warden.data.dataset import Dataset as WardenDataset
        from warden.data.loaders import load_dataset

        if isinstance(data, WardenDataset):
            ds = data
            default_source = str(ds.metadata.get("source", "") or ds.name)
        else:
            ds = load_dataset(os.fspath(data), label_column=label_column)
            default_source = os.fspath(data)
        attrs: dict[str, Any] = {"input_shape": list(ds.input_shape), "n_classes": ds.n_classes}
        if ds.feature_names:
            attrs["columns"] = list(ds.feature_names)
        if ds.class_names:
            attrs["classes"] = list(ds.class_names)
        attrs.update(attributes or {})
        return self.register_dataset(
            name,
            fingerprint=ds.fingerprint,
            source=default_source if source is None else source,
            license=license or str(ds.metadata.get("license", "") or ""),
            description=description,
            n_rows=len(ds),
            attributes=attrs,
        )

    @staticmethod
    def _dataset_row(session: Session, ref: str) -> Dataset:
        name, _, prefix = ref.partition("@")
        query = select(Dataset).where(Dataset.name == name)
        if prefix:
            wanted = prefix.lower()
            if not wanted.startswith("sha256:"):
                wanted = "sha256:" + wanted
            query = query.where(Dataset.fingerprint.startswith(wanted, autoescape=True))
        rows = session.scalars(query.order_by(Dataset.id.desc())).all()
        if not rows:
            raise RegistryError(
                f"no dataset {ref!r}; register it with `warden registry dataset add`"
            )
        if prefix and len(rows) > 1:
            raise RegistryError(f"dataset reference {ref!r} is ambiguous; give more of the digest")
        return rows[0]

    def get_dataset(self, ref: str) -> DatasetInfo:
        """A dataset by ``name`` (its latest fingerprint) or ``name@sha256:<prefix>``."""
        return self._read(lambda s: self._dataset_info(self._dataset_row(s, ref)))

    def list_datasets(self) -> list[DatasetInfo]:
        """Every dataset, by name then registration order."""
        return self._read(
            lambda s: [
                self._dataset_info(d)
                for d in s.scalars(select(Dataset).order_by(Dataset.name, Dataset.id))
            ]
        )

    # -- lineage -----------------------------------------------------------------------------

    def _parent_row(
        self, session: Session, model: Model, parent: str | tuple[str, int | str]
    ) -> tuple[Model, ModelVersion]:
        if isinstance(parent, tuple):
            return self._locate(session, parent[0], parent[1])
        other, sep, ref = str(parent).rpartition(":")
        if sep:
            return self._locate(session, other, ref)
        return model, self._version_row(session, model, parent)

    @staticmethod
    def _ancestors(session: Session, version_id: int) -> set[int]:
        seen: set[int] = set()
        todo = [version_id]
        while todo:
            current = todo.pop()
            parents = session.scalars(
                select(LineageEdge.parent_version_id).where(
                    LineageEdge.version_id == current, LineageEdge.kind == "derived-from"
                )
            ).all()
            for p in parents:
                if p is not None and p not in seen:
                    seen.add(p)
                    todo.append(p)
        return seen

    def _lineage_info(self, session: Session, e: LineageEdge) -> LineageInfo:
        v = session.get(ModelVersion, e.version_id)
        assert v is not None
        m = session.get(Model, v.model_id)
        assert m is not None
        dataset = parent_model = parent_number = None
        if e.dataset_id is not None:
            d = session.get(Dataset, e.dataset_id)
            assert d is not None
            dataset = self._dataset_info(d)
        if e.parent_version_id is not None:
            pv = session.get(ModelVersion, e.parent_version_id)
            assert pv is not None
            pm = session.get(Model, pv.model_id)
            assert pm is not None
            parent_model, parent_number = pm.name, pv.number
        return LineageInfo(
            model=m.name,
            version=v.number,
            kind=e.kind,
            dataset=dataset,
            parent_model=parent_model,
            parent_version=parent_number,
            details=dict(e.details or {}),
            created_at=e.created_at,
            created_by=e.created_by,
        )

    @audited("registry.lineage.add")
    def add_lineage(
        self,
        model: str,
        ref: int | str,
        kind: str,
        *,
        dataset: str | None = None,
        parent: str | tuple[str, int | str] | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> LineageInfo:
        """Record that the version was ``trained-on`` / ``evaluated-on`` a dataset, or is
        ``derived-from`` a parent version (``"v2"`` of the same model, ``"other:v2"``, or a
        ``(model, ref)`` pair). A derived-from edge that would make a cycle is refused;
        recording an existing edge again returns it."""
        if kind not in LINEAGE_KINDS:
            raise ConfigError(f"lineage kind {kind!r}: expected one of {', '.join(LINEAGE_KINDS)}")
        if kind == "derived-from":
            if parent is None or dataset is not None:
                raise ConfigError("a derived-from edge names a parent version and no dataset")
        elif dataset is None or parent is not None:
            raise ConfigError(f"a {kind} edge names a dataset and no parent version")
        info = _json_doc(dict(details or {}), "details")

        def work(session: Session) -> LineageInfo:
            m, v = self._locate(session, model, ref)
            query = select(LineageEdge).where(
                LineageEdge.version_id == v.id, LineageEdge.kind == kind
            )
            dataset_id = parent_id = None
            if dataset is not None:
                dataset_id = self._dataset_row(session, dataset).id
                query = query.where(LineageEdge.dataset_id == dataset_id)
            else:
                assert parent is not None
                _, p = self._parent_row(session, m, parent)
                if p.id == v.id or v.id in self._ancestors(session, p.id):
                    raise RegistryError(
                        f"{m.name} v{v.number} derived from that version would make a cycle "
                        "in the lineage"
                    )
                parent_id = p.id
                query = query.where(LineageEdge.parent_version_id == parent_id)
            existing = session.scalars(query).first()
            if existing is not None:
                return self._lineage_info(session, existing)
            edge = LineageEdge(
                version_id=v.id,
                kind=kind,
                dataset_id=dataset_id,
                parent_version_id=parent_id,
                details=info,
                created_by=self.actor,
            )
            session.add(edge)
            session.flush()
            return self._lineage_info(session, edge)

        return self._write(work)

    def lineage(self, model: str, ref: int | str, *, recursive: bool = False) -> list[LineageInfo]:
        """The version's lineage edges (its datasets and parents); with ``recursive``, its
        ancestors' edges too (a hardened version inherits its parent's training data)."""

        def work(session: Session) -> list[LineageInfo]:
            _, v = self._locate(session, model, ref)
            ids = [v.id]
            if recursive:
                ids += sorted(self._ancestors(session, v.id))
            edges = session.scalars(
                select(LineageEdge).where(LineageEdge.version_id.in_(ids)).order_by(LineageEdge.id)
            ).all()
            order = {vid: i for i, vid in enumerate(ids)}
            edges = sorted(edges, key=lambda e: (order[e.version_id], e.id))
            return [self._lineage_info(session, e) for e in edges]

        return self._read(work)

    def derived_versions(self, model: str, ref: int | str) -> list[VersionInfo]:
        """Versions recorded as ``derived-from`` this one (direct children)."""

        def work(session: Session) -> list[VersionInfo]:
            _, v = self._locate(session, model, ref)
            rows = session.scalars(
                select(ModelVersion)
                .join(LineageEdge, LineageEdge.version_id == ModelVersion.id)
                .where(LineageEdge.parent_version_id == v.id)
                .order_by(ModelVersion.id)
            ).all()
            out = []
            for child in rows:
                cm = session.get(Model, child.model_id)
                assert cm is not None
                out.append(self._version_info(session, cm, child))
            return out

        return self._read(work)

    # -- evidence: scans ---------------------------------------------------------------------

    @staticmethod
    def _scan_info(m: Model, v: ModelVersion, s: Scan) -> ScanInfo:
        summary = (s.report or {}).get("summary", {})
        by_severity = summary.get("by_severity", {}) if isinstance(summary, dict) else {}
        return ScanInfo(
            id=s.id,
            model=m.name,
            version=v.number,
            artifact_digest=s.artifact_digest,
            scanner_version=s.scanner_version,
            clean=s.clean,
            max_severity=s.max_severity,
            finding_count=s.finding_count,
            by_severity={str(k): int(n) for k, n in by_severity.items()},
            report=s.report,
            created_at=s.created_at,
            created_by=s.created_by,
        )

    @audited("registry.scan")
    def scan_version(
        self, model: str, ref: int | str, *, limits: ScanLimits | None = None
    ) -> ScanInfo:
        """Scan the version's artifact with Warden's supply-chain scanner and record the
        ``warden-scan/1`` report.

        The files are exported (authenticated) into a private temporary directory (0700),
        scanned there without being loaded, and removed; paths in the stored report are
        relative to the artifact.
        """
        from warden import __version__
        from warden.assess.finding import Severity
        from warden.supplychain.scan import scan_paths
        from warden.supplychain.scanreport import scan_to_dict

        v = self.get_version(model, ref)
        tmp = Path(tempfile.mkdtemp(prefix="warden-scan-"))
        try:
            os.chmod(tmp, 0o700)
            root = self.export_version(model, v.number, tmp / "artifact")
            report = scan_paths([root], limits)
            doc = _relativize(scan_to_dict(report), str(tmp / "artifact"))
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        doc["artifact"] = {
            "model": v.model,
            "version": v.number,
            "artifact_digest": v.artifact_digest,
        }
        worst = report.worst
        clean = worst is None or worst < Severity.LOW

        def work(session: Session) -> ScanInfo:
            m, row = self._locate(session, model, v.number)
            if (
                row.artifact_digest != v.artifact_digest
            ):  # pragma: no cover - versions are immutable
                raise StoreError(f"{v.label} changed while it was being scanned")
            scan = Scan(
                version_id=row.id,
                artifact_digest=v.artifact_digest,
                scanner_version=__version__,
                clean=clean,
                max_severity=None if worst is None else str(worst),
                finding_count=len(report.findings),
                report=doc,
                created_by=self.actor,
            )
            session.add(scan)
            session.flush()
            return self._scan_info(m, row, scan)

        info = self._write(work)
        log.info(
            "scanned %s: %d finding(s), worst %s", v.label, info.finding_count, info.max_severity
        )
        return info

    def scans(self, model: str, ref: int | str) -> list[ScanInfo]:
        """Every scan of the version, oldest first."""

        def work(session: Session) -> list[ScanInfo]:
            m, v = self._locate(session, model, ref)
            rows = session.scalars(
                select(Scan).where(Scan.version_id == v.id).order_by(Scan.id)
            ).all()
            return [self._scan_info(m, v, s) for s in rows]

        return self._read(work)

    def latest_scan(self, model: str, ref: int | str) -> ScanInfo | None:
        """The version's most recent scan, or ``None``."""
        found = self.scans(model, ref)
        return found[-1] if found else None

    # -- evidence: signatures ----------------------------------------------------------------

    @staticmethod
    def _signature_info(m: Model, v: ModelVersion, s: Signature) -> SignatureInfo:
        return SignatureInfo(
            id=s.id,
            model=m.name,
            version=v.number,
            artifact_digest=s.artifact_digest,
            key_id=s.key_id,
            public_key=s.public_key,
            bundle=s.bundle,
            verified=s.verified,
            detail=s.detail,
            created_at=s.created_at,
            created_by=s.created_by,
        )

    @audited("registry.signature.attach")
    def attach_signature(
        self,
        model: str,
        ref: int | str,
        bundle: bytes | str,
        public_key: PublicKey | bytes | str | os.PathLike[str],
    ) -> SignatureInfo:
        """Verify a model_signing bundle against the version's files and record it.

        The bundle must verify with ``public_key`` (a key, PEM bytes, or a PEM file path) and
        its manifest must list exactly the version's files with their SHA-256 digests (the
        blob ids: nothing is decrypted). Anything else is a :class:`SignatureError` and nothing
        is recorded. Whether the key is *trusted* is the approval policy's decision.
        """
        raw = bundle.encode("utf-8") if isinstance(bundle, str) else bytes(bundle)
        if len(raw) > MAX_BUNDLE_BYTES:
            raise SignatureError(f"the bundle is {len(raw)} bytes; too large for a signature")
        key = _public_key(public_key)
        v = self.get_version(model, ref)
        statement, kid = open_bundle(raw, key)
        signed = manifest_from_statement(statement)
        expected = version_manifest(v)
        mismatch = _gates._covers(signed, expected)
        if mismatch is not None:
            raise SignatureError(f"the signature does not match {v.label}: it {mismatch}")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:  # pragma: no cover - open_bundle parsed it as JSON
            raise SignatureError("the bundle is not UTF-8 text") from exc
        detail = f"verified with key {kid} over {len(signed.files)} file(s)"

        def work(session: Session) -> SignatureInfo:
            m, row = self._locate(session, model, v.number)
            sig = Signature(
                version_id=row.id,
                artifact_digest=f"sha256:{signed.root_digest}",
                key_id=kid,
                public_key=public_pem(key).decode("ascii"),
                bundle=text,
                verified=True,
                detail=detail,
                created_by=self.actor,
            )
            session.add(sig)
            session.flush()
            return self._signature_info(m, row, sig)

        info = self._write(work)
        log.info("attached a signature by key %s to %s", kid[:16], v.label)
        return info

    @audited("registry.signature.sign")
    def sign_version(
        self,
        model: str,
        ref: int | str,
        private_key: PrivateKey | str | os.PathLike[str],
        *,
        password: str | bytes | None = None,
    ) -> SignatureInfo:
        """Sign the version's files (their digests, without decrypting) and record the bundle.

        The bundle is what ``warden sign`` / model_signing would write for the exported
        artifact, so ``warden verify`` accepts it on the exported files.
        """
        key = load_private_key(private_key, password=password)
        v = self.get_version(model, ref)
        manifest = version_manifest(v)
        payload = json.dumps(manifest.statement(), indent=2, ensure_ascii=False).encode("utf-8")
        bundle = json.dumps(make_bundle(payload, key), separators=(",", ":"))
        log.info("signing %s with key %s", v.label, key_id(key)[:16])
        return self.attach_signature(model, v.number, bundle, public_pem(key))

    def signatures(self, model: str, ref: int | str) -> list[SignatureInfo]:
        """Every signature of the version, oldest first."""

        def work(session: Session) -> list[SignatureInfo]:
            m, v = self._locate(session, model, ref)
            rows = session.scalars(
                select(Signature).where(Signature.version_id == v.id).order_by(Signature.id)
            ).all()
            return [self._signature_info(m, v, s) for s in rows]

        return self._read(work)

    def latest_signature(self, model: str, ref: int | str) -> SignatureInfo | None:
        """The version's most recent signature, or ``None``."""
        found = self.signatures(model, ref)
        return found[-1] if found else None

    # -- evidence: assessments ---------------------------------------------------------------

    @staticmethod
    def _assessment_info(m: Model, v: ModelVersion, a: Assessment) -> AssessmentInfo:
        threats = (a.report or {}).get("scorecard", {}).get("threats", [])
        grades = {
            str(t.get("threat")): str(t.get("grade"))
            for t in threats
            if isinstance(t, dict) and "threat" in t
        }
        return AssessmentInfo(
            id=a.id,
            model=m.name,
            version=v.number,
            artifact_digest=a.artifact_digest,
            grade=a.grade,
            threat_grades=grades,
            report=a.report,
            created_at=a.created_at,
            created_by=a.created_by,
        )

    @audited("registry.assessment.attach")
    def attach_assessment(
        self, model: str, ref: int | str, report: Mapping[str, Any]
    ) -> AssessmentInfo:
        """Record an assessment report (the ``warden assess`` JSON document) for the version.

        The document is checked first (:func:`~warden.registry.assessments.validate_assessment`):
        a scorecard with an overall grade and per-threat grades is required; a full report
        naming Warden's schema is validated against it. It is tied to the version's current
        artifact digest.
        """
        doc = _json_doc(dict(report), "the assessment report")
        overall, _grades = validate_assessment(doc)

        def work(session: Session) -> AssessmentInfo:
            m, v = self._locate(session, model, ref)
            row = Assessment(
                version_id=v.id,
                artifact_digest=v.artifact_digest,
                grade=overall,
                report=doc,
                created_by=self.actor,
            )
            session.add(row)
            session.flush()
            return self._assessment_info(m, v, row)

        info = self._write(work)
        log.info("attached an assessment (grade %s) to %s v%d", overall, info.model, info.version)
        return info

    def assessments(self, model: str, ref: int | str) -> list[AssessmentInfo]:
        """Every assessment of the version, oldest first."""

        def work(session: Session) -> list[AssessmentInfo]:
            m, v = self._locate(session, model, ref)
            rows = session.scalars(
                select(Assessment).where(Assessment.version_id == v.id).order_by(Assessment.id)
            ).all()
            return [self._assessment_info(m, v, a) for a in rows]

        return self._read(work)

    def latest_assessment(self, model: str, ref: int | str) -> AssessmentInfo | None:
        """The version's most recent assessment, or ``None``."""
        found = self.assessments(model, ref)
        return found[-1] if found else None

    # -- notes -------------------------------------------------------------------------------

    @audited("registry.note.add")
    def add_note(self, model: str, text: str, ref: int | str | None = None) -> NoteInfo:
        """Attach free text to the model, or to one of its versions."""
        body = _text(text, "note").strip()
        if not body:
            raise ConfigError("the note is empty")

        def work(session: Session) -> NoteInfo:
            m = self._model_row(session, model)
            v = None if ref is None else self._version_row(session, m, ref)
            note = Note(
                model_id=m.id, version_id=None if v is None else v.id, author=self.actor, text=body
            )
            session.add(note)
            session.flush()
            return NoteInfo(
                id=note.id,
                model=m.name,
                version=None if v is None else v.number,
                author=note.author,
                text=note.text,
                created_at=note.created_at,
            )

        return self._write(work)

    def notes(self, model: str, ref: int | str | None = None) -> list[NoteInfo]:
        """The model's notes, oldest first: all of them, or only one version's."""

        def work(session: Session) -> list[NoteInfo]:
            m = self._model_row(session, model)
            query = (
                select(Note, ModelVersion.number)
                .outerjoin(ModelVersion, ModelVersion.id == Note.version_id)
                .where(Note.model_id == m.id)
            )
            if ref is not None:
                v = self._version_row(session, m, ref)
                query = query.where(Note.version_id == v.id)
            rows = session.execute(query.order_by(Note.id)).all()
            return [
                NoteInfo(
                    id=n.id,
                    model=m.name,
                    version=number,
                    author=n.author,
                    text=n.text,
                    created_at=n.created_at,
                )
                for n, number in rows
            ]

        return self._read(work)

    # -- gates -------------------------------------------------------------------------------

    def _blob_problems(self, v: VersionInfo) -> list[str]:
        problems: list[str] = []
        for f in v.files:
            try:
                info = self.store.blobs.info(f.blob_id)
                if info.size != f.size:
                    problems.append(f"{f.path}: blob holds {info.size} bytes, expected {f.size}")
                    continue
                self.store.blobs.verify(f.blob_id)
            except StoreError as exc:
                problems.append(f"{f.path}: {exc}")
        return problems

    def verify_version(self, model: str, ref: int | str) -> list[str]:
        """Check that the version's bytes are the bytes registered: its file digests hash to
        its artifact digest and every blob authenticates. One line per problem; empty: fine."""
        v = self.get_version(model, ref)
        gate = _gates.artifact_gate(v, self._blob_problems(v))
        return [] if gate.passed else [f"{v.label}: {gate.detail}"]

    def gates(self, model: str, ref: int | str, *, policy: Policy | None = None) -> GateReport:
        """Evaluate every approval gate for the version now, changing nothing.

        The artifact gate authenticates every blob of the version (it reads the whole
        artifact once).
        """
        from warden import __version__

        policy = policy or self.policy()
        now = self._clock()
        v = self.get_version(model, ref)
        results = (
            _gates.artifact_gate(v, self._blob_problems(v)),
            _gates.scan_gate(
                v,
                self.latest_scan(model, v.number),
                policy.scan,
                now=now,
                scanner_version=__version__,
            ),
            _gates.signature_gate(v, self.signatures(model, v.number), policy.signature),
            _gates.assessment_gate(
                v, self.latest_assessment(model, v.number), policy.assessment, now=now
            ),
        )
        return GateReport(version=v, policy=policy, results=results, at=now)

    # -- lifecycle ---------------------------------------------------------------------------

    def _move(
        self,
        session: Session,
        m: Model,
        v: ModelVersion,
        move: Move,
        reason: str,
        *,
        override: bool = False,
        evidence: Mapping[str, Any] | None = None,
    ) -> Transition:
        target = next_state(v.state, move, subject=f"{m.name} v{v.number}")
        row = Transition(
            version_id=v.id,
            from_state=v.state,
            to_state=target.value,
            actor=self.actor,
            reason=reason,
            override=override,
            evidence=dict(evidence or {"move": move.value}),
            at=utcnow(),
        )
        v.state = target.value
        session.add(row)
        session.flush()
        return row

    @staticmethod
    def _transition_info(m: Model, v: ModelVersion, t: Transition) -> TransitionInfo:
        return TransitionInfo(
            id=t.id,
            model=m.name,
            version=v.number,
            from_state=t.from_state,
            to_state=t.to_state,
            actor=t.actor,
            reason=t.reason,
            override=t.override,
            evidence=dict(t.evidence or {}),
            at=t.at,
        )

    def _set_alias_row(self, session: Session, m: Model, name: str, v: ModelVersion) -> None:
        row = session.get(Alias, (m.id, name))
        if row is None:
            session.add(Alias(model_id=m.id, name=name, version_id=v.id, updated_by=self.actor))
        else:
            row.version_id = v.id
            row.updated_at = utcnow()
            row.updated_by = self.actor
        session.flush()

    @staticmethod
    def _alias_target(session: Session, m: Model, name: str) -> ModelVersion | None:
        row = session.get(Alias, (m.id, name))
        return None if row is None else session.get(ModelVersion, row.version_id)

    @staticmethod
    def _drop_alias(session: Session, m: Model, name: str) -> None:
        row = session.get(Alias, (m.id, name))
        if row is not None:
            session.delete(row)
            session.flush()

    @audited("registry.approve")
    def approve(
        self,
        model: str,
        ref: int | str,
        *,
        reason: str = "",
        policy: Policy | None = None,
        override_reason: str | None = None,
    ) -> TransitionInfo:
        """Approve a registered version if every policy gate passes.

        Failing gates raise :class:`GateRefused` listing each failure. ``override_reason``
        (non-empty) approves anyway: the transition is recorded with ``override=True``, the
        reason and the failures, and a warning is logged. The gate results are recorded as the
        transition's evidence either way.
        """
        if override_reason is not None and not override_reason.strip():
            raise LifecycleError("overriding the policy gates needs a reason: say why")
        v = self.get_version(model, ref)
        next_state(v.state, Move.APPROVE, subject=v.label)  # refuse early, before the gates
        report = self.gates(model, v.number, policy=policy)
        override = False
        text = reason.strip()
        if not report.passed:
            if override_reason is None:
                raise GateRefused(
                    f"{v.label} cannot be approved: {len(report.failures)} policy gate(s) "
                    f"refused: {'; '.join(report.failures)}",
                    report.failures,
                )
            override = True
            text = override_reason.strip() + (f" — {text}" if text else "")
            log.warning(
                "%s approved by %s OVERRIDING failed policy gates (%s): %s",
                v.label,
                self.actor,
                override_reason.strip(),
                "; ".join(report.failures),
            )
        elif override_reason is not None:
            log.info("%s: every gate passed; the override was not needed", v.label)
        evidence = report.to_dict()

        def work(session: Session) -> TransitionInfo:
            m, row = self._locate(session, model, v.number, lock=True)
            if row.artifact_digest != v.artifact_digest:  # pragma: no cover - immutable
                raise LifecycleError(f"{v.label} changed while its gates were evaluated")
            t = self._move(
                session, m, row, Move.APPROVE, text, override=override, evidence=evidence
            )
            return self._transition_info(m, row, t)

        info = self._write(work)
        log.info("approved %s", v.label)
        return info

    @audited("registry.deploy")
    def deploy(self, model: str, ref: int | str, *, reason: str = "") -> TransitionInfo:
        """Deploy an approved version: it becomes ``champion``; the old champion goes back
        to ``approved`` and becomes ``previous``."""
        text = check_reason(Move.DEPLOY, reason)

        def work(session: Session) -> TransitionInfo:
            m, v = self._locate(session, model, ref, lock=True)
            next_state(v.state, Move.DEPLOY, subject=f"{m.name} v{v.number}")
            old = self._alias_target(session, m, CHAMPION)
            if old is not None and old.id != v.id:
                if old.state == State.DEPLOYED:
                    self._move(
                        session,
                        m,
                        old,
                        Move.SUPERSEDE,
                        f"superseded by v{v.number}",
                        evidence={"move": "supersede", "by": v.number},
                    )
                self._set_alias_row(session, m, PREVIOUS, old)
            t = self._move(
                session,
                m,
                v,
                Move.DEPLOY,
                text,
                evidence={"move": "deploy", "previous": None if old is None else old.number},
            )
            self._set_alias_row(session, m, CHAMPION, v)
            return self._transition_info(m, v, t)

        info = self._write(work)
        log.info("deployed %s v%d (champion)", info.model, info.version)
        return info

    def _rollback_target(self, session: Session, m: Model) -> ModelVersion | None:
        prev = self._alias_target(session, m, PREVIOUS)
        return prev if prev is not None and prev.state == State.APPROVED else None

    def _next_previous(self, session: Session, m: Model, exclude: set[int]) -> ModelVersion | None:
        """The champion before the current one, replaying the deploy history as a stack.

        Each deploy pushes its version; each rollback pops the version rolled back from. The
        answer is the highest entry below the top that is still approved and not in
        ``exclude`` (the version just rolled back from).
        """
        deploys = session.execute(
            select(Transition.version_id, Transition.evidence)
            .join(ModelVersion, ModelVersion.id == Transition.version_id)
            .where(ModelVersion.model_id == m.id, Transition.to_state == State.DEPLOYED.value)
            .order_by(Transition.id)
        ).all()
        stack: list[int] = []
        for vid, evidence in deploys:
            if (evidence or {}).get("move") == "rollback" and stack:
                stack.pop()
                if stack and stack[-1] == vid:
                    continue
            stack.append(vid)
        for vid in reversed(stack[:-1]):
            if vid in exclude or (stack and vid == stack[-1]):
                continue
            candidate = session.get(ModelVersion, vid)
            if candidate is not None and candidate.state == State.APPROVED:
                return candidate
        return None

    def _do_rollback(
        self, session: Session, m: Model, reason: str, *, quarantine: bool
    ) -> Transition:
        current = self._alias_target(session, m, CHAMPION)
        if current is None:
            raise LifecycleError(f"{m.name} has no champion to roll back from")
        prev = self._alias_target(session, m, PREVIOUS)
        if prev is None:
            raise LifecycleError(
                f"{m.name} has no previous version to roll back to; deploy an approved version "
                "instead"
            )
        if prev.state != State.APPROVED:
            raise LifecycleError(
                f"{m.name} v{prev.number} (previous) is {prev.state}: a rollback needs an "
                "approved version; deploy another approved version instead"
            )
        if quarantine:
            self._move(
                session,
                m,
                current,
                Move.QUARANTINE,
                reason,
                evidence={"move": "quarantine", "rollback_to": prev.number},
            )
        else:
            self._move(
                session,
                m,
                current,
                Move.SUPERSEDE,
                reason,
                evidence={"move": "rollback", "rollback_to": prev.number},
            )
        t = self._move(
            session,
            m,
            prev,
            Move.DEPLOY,
            reason,
            evidence={"move": "rollback", "from": current.number},
        )
        self._set_alias_row(session, m, CHAMPION, prev)
        after = self._next_previous(session, m, {current.id})
        if after is None:
            self._drop_alias(session, m, PREVIOUS)
        else:
            self._set_alias_row(session, m, PREVIOUS, after)
        return t

    @audited("registry.rollback")
    def rollback(self, model: str, *, reason: str, quarantine: bool = False) -> TransitionInfo:
        """Make ``previous`` the champion again; the current champion goes to ``approved``
        (or ``quarantined`` with ``quarantine=True``). Returns the redeploy's transition."""
        text = check_reason(Move.DEPLOY, reason, what="a rollback")

        def work(session: Session) -> TransitionInfo:
            m = self._model_row(session, model, lock=True)
            t = self._do_rollback(session, m, text, quarantine=quarantine)
            v = session.get(ModelVersion, t.version_id)
            assert v is not None
            return self._transition_info(m, v, t)

        info = self._write(work)
        log.warning("rolled %s back to v%d: %s", info.model, info.version, text)
        return info

    def _leave(
        self, model: str, ref: int | str, move: Move, reason: str, *, force: bool
    ) -> TransitionInfo:
        """Quarantine or retire a version; the champion is rolled back first if possible."""
        text = check_reason(move, reason)

        def work(session: Session) -> TransitionInfo:
            m, v = self._locate(session, model, ref, lock=True)
            subject = f"{m.name} v{v.number}"
            next_state(v.state, move, subject=subject)
            champion = self._alias_target(session, m, CHAMPION)
            if champion is not None and champion.id == v.id:
                if self._rollback_target(session, m) is not None:
                    self._do_rollback(session, m, text, quarantine=move is Move.QUARANTINE)
                    if move is Move.QUARANTINE:
                        t = session.scalars(
                            select(Transition)
                            .where(Transition.version_id == v.id)
                            .order_by(Transition.id.desc())
                            .limit(1)
                        ).one()
                        return self._transition_info(m, v, t)
                elif not force:
                    raise LifecycleError(
                        f"{subject} is the champion (deployed) and there is no approved previous "
                        f"version to roll back to; deploy another version first, or force the "
                        f"{move} (the model is then left with nothing deployed)"
                    )
                else:
                    self._drop_alias(session, m, CHAMPION)
            t = self._move(session, m, v, move, text, evidence={"move": move.value})
            prev = self._alias_target(session, m, PREVIOUS)
            if prev is not None and prev.id == v.id:
                self._drop_alias(session, m, PREVIOUS)
            if move is Move.RETIRE:
                for alias in session.scalars(select(Alias).where(Alias.version_id == v.id)).all():
                    session.delete(alias)
                session.flush()
            return self._transition_info(m, v, t)

        info = self._write(work)
        log.warning("%s %s v%d: %s", move.value, info.model, info.version, text)
        return info

    @audited("registry.quarantine")
    def quarantine(
        self, model: str, ref: int | str, *, reason: str, force: bool = False
    ) -> TransitionInfo:
        """Take a version out of use (suspected compromise). Quarantining the champion rolls
        back to ``previous`` first; without an approved previous version it is refused unless
        ``force`` (the model is then left with no champion)."""
        return self._leave(model, ref, Move.QUARANTINE, reason, force=force)

    @audited("registry.retire")
    def retire(
        self, model: str, ref: int | str, *, reason: str, force: bool = False
    ) -> TransitionInfo:
        """Retire a version for good (terminal); the champion as for :meth:`quarantine`.
        Aliases pointing at it are removed."""
        return self._leave(model, ref, Move.RETIRE, reason, force=force)

    @audited("registry.release")
    def release(self, model: str, ref: int | str, *, reason: str) -> TransitionInfo:
        """Release a quarantined version back to ``registered`` (it must be approved again)."""
        text = check_reason(Move.RELEASE, reason)

        def work(session: Session) -> TransitionInfo:
            m, v = self._locate(session, model, ref, lock=True)
            t = self._move(session, m, v, Move.RELEASE, text)
            return self._transition_info(m, v, t)

        return self._write(work)

    # -- aliases -----------------------------------------------------------------------------

    @audited("registry.alias.set")
    def set_alias(self, model: str, alias: str, ref: int | str) -> AliasInfo:
        """Point ``alias`` at a version (not ``champion``/``previous``: deploy and rollback
        move those; not a retired version)."""
        _check_alias(alias)
        if alias in RESERVED_ALIASES:
            raise LifecycleError(
                f"alias {alias!r} is managed by deploy and rollback; use "
                "`warden registry deploy` or `warden registry rollback`"
            )

        def work(session: Session) -> AliasInfo:
            m, v = self._locate(session, model, ref, lock=True)
            if v.state == State.RETIRED:
                raise LifecycleError(f"{m.name} v{v.number} is retired; aliases cannot point at it")
            self._set_alias_row(session, m, alias, v)
            row = session.get(Alias, (m.id, alias))
            assert row is not None
            return AliasInfo(m.name, alias, v.number, row.updated_at, row.updated_by)

        return self._write(work)

    @audited("registry.alias.delete")
    def delete_alias(self, model: str, alias: str) -> None:
        """Remove a user alias (:class:`RegistryError` if absent)."""
        if alias in RESERVED_ALIASES:
            raise LifecycleError(f"alias {alias!r} is managed by deploy and rollback")

        def work(session: Session) -> None:
            m = self._model_row(session, model, lock=True)
            row = session.get(Alias, (m.id, alias))
            if row is None:
                raise RegistryError(f"{m.name} has no alias {alias!r}")
            session.delete(row)

        self._write(work)

    def aliases(self, model: str) -> list[AliasInfo]:
        """The model's aliases, by name."""

        def work(session: Session) -> list[AliasInfo]:
            m = self._model_row(session, model)
            rows = session.execute(
                select(Alias, ModelVersion.number)
                .join(ModelVersion, ModelVersion.id == Alias.version_id)
                .where(Alias.model_id == m.id)
                .order_by(Alias.name)
            ).all()
            return [
                AliasInfo(m.name, a.name, number, a.updated_at, a.updated_by) for a, number in rows
            ]

        return self._read(work)

    # -- history -----------------------------------------------------------------------------

    def history(self, model: str, ref: int | str | None = None) -> list[TransitionInfo]:
        """Lifecycle transitions, oldest first: of one version, or of the whole model."""

        def work(session: Session) -> list[TransitionInfo]:
            m = self._model_row(session, model)
            query = (
                select(Transition, ModelVersion)
                .join(ModelVersion, ModelVersion.id == Transition.version_id)
                .where(ModelVersion.model_id == m.id)
            )
            if ref is not None:
                v = self._version_row(session, m, ref)
                query = query.where(Transition.version_id == v.id)
            rows = session.execute(query.order_by(Transition.id)).all()
            return [self._transition_info(m, v, t) for t, v in rows]

        return self._read(work)
