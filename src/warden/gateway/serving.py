"""Which model versions the gateway serves, and loading them safely.

**What is served.** A request names a model and optionally a version (a number, ``vN``) or an
alias; without one it gets the ``champion``. The champion is served only while its state is
``deployed``; a version asked for explicitly is served while it is ``deployed`` or
``approved`` (a canary or the previous champion). ``registered``, ``quarantined`` and
``retired`` versions are never served: the answer is 404 ("not being served"), the same as
for a version that does not exist.

**At once.** :meth:`ModelServer.resolve` reads the version's state from the database on every
request (one indexed query, in a read-only snapshot that never waits for the audit writer),
so a quarantine, rollback or retirement — made through the admin API, the CLI or another
process — stops the next request, with no cache to expire.

**At load.** The first request for a version (and the first after a restart) loads it:

1. the registry's gates run again — by default ``artifact`` (every blob authenticates and the
   file digests hash to the artifact digest), ``scan`` (clean, by this scanner version, not
   stale) and ``signature`` (a bundle verifies now with a key the policy trusts);
2. the files are exported into a private temporary directory (0700) and each file's SHA-256
   is checked against the registered digest (the bytes loaded are the bytes approved);
3. :func:`warden.models.loading.load_model` loads them (specs with safetensors, TorchScript or
   ONNX; pickle is refused); the temporary directory is removed;
4. the version must have an input spec (the gateway cannot validate inputs otherwise) and a
   guard pipeline.

Any failure refuses the version: an ``error`` is logged, a durable ``gateway.load.refused``
audit record names the failures, and the request gets 503. The refusal is remembered for
``refusal_ttl_s`` seconds, so a tampered artifact does not make every request re-read it.

Loaded models are cached by ``(model, version, artifact digest)`` (least recently used first
out beyond ``max_loaded``).
"""

from __future__ import annotations

import hashlib
import logging
import re
import tempfile
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from sqlalchemy import bindparam, select

from warden.errors import ConfigError, GatewayError, WardenError
from warden.gateway.guards.pipeline import GuardPipeline
from warden.gateway.validation import InputSpec
from warden.store.tables import Alias, ModelVersion
from warden.store.tables import Model as ModelRow

if TYPE_CHECKING:
    from warden.audit.events import AuditSink
    from warden.models.base import Model
    from warden.registry.policy import Policy
    from warden.store import Store

__all__ = [
    "DEFAULT_LOAD_GATES",
    "SERVABLE_EXPLICIT",
    "LoadedModel",
    "ModelServer",
    "ServedVersion",
    "parse_version_ref",
]

log = logging.getLogger(__name__)

CHAMPION: Final = "champion"
DEFAULT_LOAD_GATES: Final = ("artifact", "scan", "signature")
"""Registry gates re-run when a version is loaded."""
SERVABLE_EXPLICIT: Final = frozenset({"deployed", "approved"})
"""States a version asked for by number or alias may be in to be served."""

_NUMBER = re.compile(r"^[vV]?([0-9]{1,9})$")
_ALIAS = re.compile(r"^[a-z][a-z0-9_-]{0,99}$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")


def parse_version_ref(ref: object) -> int | str | None:
    """A request's ``version``: ``None`` (champion), a number, ``"vN"``/``"N"`` or an alias.

    Raises :class:`~warden.errors.InvalidRequest` (422) for anything else.
    """
    from warden.errors import InvalidRequest

    if ref is None:
        return None
    if isinstance(ref, int) and not isinstance(ref, bool):
        if ref < 1:
            raise InvalidRequest(f"version: expected a number >= 1, found {ref}")
        return ref
    if isinstance(ref, str):
        match = _NUMBER.match(ref)
        if match:
            return int(match.group(1))
        if _ALIAS.match(ref):
            return ref
    raise InvalidRequest(
        f"version: expected a version number (3 or 'v3') or an alias such as 'champion', "
        f"found {ref!r}"[:300]
    )


@dataclass(frozen=True)
class ServedVersion:
    """A version the gateway may serve right now (read from the database)."""

    model: str
    """Model name."""
    number: int
    """Version number."""
    state: str
    """Lifecycle state (``deployed`` or ``approved``)."""
    artifact_digest: str
    """The registered artifact digest (part of the cache key)."""
    input_spec: dict[str, Any] | None
    """The registered input spec."""

    @property
    def key(self) -> tuple[str, int, str]:
        """The model cache key."""
        return (self.model, self.number, self.artifact_digest)


@dataclass(frozen=True, eq=False)
class LoadedModel:
    """A version loaded for serving, with what the request path needs."""

    version: ServedVersion
    """Which version this is."""
    model: Model
    """The loaded model."""
    spec: InputSpec
    """Its input spec, parsed."""
    pipeline: GuardPipeline
    """Its guard pipeline."""


_VERSION_COLUMNS = (
    ModelVersion.number,
    ModelVersion.state,
    ModelVersion.artifact_digest,
    ModelVersion.input_spec,
)
_BY_NUMBER = (
    select(*_VERSION_COLUMNS)
    .join(ModelRow, ModelRow.id == ModelVersion.model_id)
    .where(ModelRow.name == bindparam("model"), ModelVersion.number == bindparam("number"))
)
"""A model's version by number (built once: its compiled form is cached)."""
_BY_ALIAS = (
    select(*_VERSION_COLUMNS)
    .join(ModelRow, ModelRow.id == ModelVersion.model_id)
    .join(Alias, Alias.version_id == ModelVersion.id)
    .where(
        ModelRow.name == bindparam("model"),
        Alias.model_id == ModelRow.id,
        Alias.name == bindparam("alias"),
    )
)
"""The version a model's alias points at."""


def _not_served(model: str, ref: int | str | None) -> GatewayError:
    what = CHAMPION if ref is None else str(ref)
    return GatewayError(
        f"model {model!r} has no version {what!r} that is being served", status_code=404
    )


class ModelServer:
    """Resolves requests to servable versions and loads them (see the module docstring).

    ``pipelines(model)`` gives a model's guard pipeline, or ``None`` when it has none (the
    version is then refused). ``audit`` receives the ``gateway.load.refused`` records.
    """

    def __init__(
        self,
        store: Store,
        *,
        audit: AuditSink,
        pipelines: Callable[[str], GuardPipeline | None],
        policy: Policy | None = None,
        load_gates: Sequence[str] = DEFAULT_LOAD_GATES,
        refusal_ttl_s: float = 30.0,
        max_loaded: int = 16,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        from warden.registry.gates import GATE_NAMES

        unknown = sorted(set(load_gates) - set(GATE_NAMES))
        if unknown or not load_gates:
            raise ConfigError(
                f"load gates: expected one or more of {', '.join(GATE_NAMES)}, "
                f"found {list(load_gates)}"
            )
        if max_loaded < 1:
            raise ConfigError(f"max_loaded must be >= 1, found {max_loaded}")
        self.store = store
        self.audit = audit
        self.policy = policy
        self.load_gates = tuple(load_gates)
        self.refusal_ttl_s = refusal_ttl_s
        self.max_loaded = max_loaded
        self._pipelines = pipelines
        self._clock = clock
        self._lock = threading.Lock()
        self._loaded: OrderedDict[tuple[str, int, str], LoadedModel] = OrderedDict()
        self._refused: dict[tuple[str, int, str], tuple[float, str]] = {}
        self._loading: dict[tuple[str, int, str], threading.Lock] = {}

    # -- which version ---------------------------------------------------------------------

    def resolve(self, model: str, ref: int | str | None = None) -> ServedVersion:
        """The version a request for ``model`` (``ref``: see :func:`parse_version_ref`) is
        served by; 404 (:class:`GatewayError`) when none is servable now."""
        if not isinstance(model, str) or not _NAME.match(model):
            raise _not_served(str(model)[:200], ref)
        if isinstance(ref, int):
            query, params = _BY_NUMBER, {"model": model, "number": ref}
        else:
            query, params = _BY_ALIAS, {"model": model, "alias": ref or CHAMPION}
        with self.store.db.read_connection() as conn:  # a snapshot; never waits for a writer
            row = conn.execute(query, params).first()
        allowed = {"deployed"} if ref is None or ref == CHAMPION else SERVABLE_EXPLICIT
        if row is None or row.state not in allowed:
            raise _not_served(model, ref)
        return ServedVersion(model, row.number, row.state, row.artifact_digest, row.input_spec)

    def served(self) -> list[ServedVersion]:
        """Every model's champion that is deployed (what ``GET /v1/models`` lists)."""
        query = (
            select(
                ModelRow.name,
                ModelVersion.number,
                ModelVersion.state,
                ModelVersion.artifact_digest,
                ModelVersion.input_spec,
            )
            .join(Alias, Alias.model_id == ModelRow.id)
            .join(ModelVersion, ModelVersion.id == Alias.version_id)
            .where(Alias.name == CHAMPION, ModelVersion.state == "deployed")
            .order_by(ModelRow.name)
        )
        with self.store.db.read_connection() as conn:
            rows = conn.execute(query).all()
        return [
            ServedVersion(r.name, r.number, r.state, r.artifact_digest, r.input_spec) for r in rows
        ]

    # -- loading ---------------------------------------------------------------------------

    def cached(self, version: ServedVersion) -> LoadedModel | None:
        """The loaded model when it is in the cache (no I/O)."""
        with self._lock:
            loaded = self._loaded.get(version.key)
            if loaded is not None:
                self._loaded.move_to_end(version.key)
            return loaded

    def load(self, version: ServedVersion) -> LoadedModel:
        """The loaded model (from the cache, or verified and loaded now); 503
        (:class:`GatewayError`) when the version fails its load checks."""
        key = version.key
        with self._lock:
            if key in self._loaded:
                self._loaded.move_to_end(key)
                return self._loaded[key]
            self._check_refused(version)
            gate = self._loading.setdefault(key, threading.Lock())
        with gate:  # one load per version at a time; the others wait for its result
            with self._lock:
                if key in self._loaded:
                    return self._loaded[key]
                self._check_refused(version)
            try:
                loaded = self._load(version)
            except _Refused as exc:
                self._refuse(version, exc.failures)
                raise self._refusal_error(version) from None
            with self._lock:
                self._loaded[key] = loaded
                while len(self._loaded) > self.max_loaded:
                    self._loaded.popitem(last=False)
                self._loading.pop(key, None)
            log.info("loaded %s v%d for serving", version.model, version.number)
            return loaded

    def _check_refused(self, version: ServedVersion) -> None:
        refused = self._refused.get(version.key)
        if refused is not None:
            if self._clock() < refused[0]:
                raise self._refusal_error(version)
            del self._refused[version.key]

    @staticmethod
    def _refusal_error(version: ServedVersion) -> GatewayError:
        return GatewayError(
            f"model {version.model!r} v{version.number} cannot be served: it failed its load "
            "checks (the event is in the audit log); ask an operator to investigate",
            status_code=503,
            headers={"Retry-After": "30"},
        )

    def _refuse(self, version: ServedVersion, failures: list[str]) -> None:
        from warden.audit.events import AuditEvent, model_resource

        with self._lock:
            self._refused[version.key] = (self._clock() + self.refusal_ttl_s, "; ".join(failures))
            self._loading.pop(version.key, None)
        log.error(
            "refusing to serve %s v%d (%s): %s",
            version.model,
            version.number,
            version.artifact_digest,
            "; ".join(failures),
        )
        event = AuditEvent(
            action="gateway.load.refused",
            actor="gateway",
            resource=model_resource(version.model, version.number),
            outcome="refused",
            input_digest=version.artifact_digest,
            details={"failures": [f[:1000] for f in failures], "gates": list(self.load_gates)},
        )
        try:
            self.audit.record(event)
        except Exception:  # the refusal stands whether or not it could be recorded
            log.exception("the gateway.load.refused record could not be written")

    def _load(self, version: ServedVersion) -> LoadedModel:
        from warden.models.loading import load_model
        from warden.registry import Registry

        failures: list[str] = []
        spec: InputSpec | None = None
        if version.input_spec is None:
            failures.append(
                "no input spec registered (register the version with --input-spec): the "
                "gateway cannot validate its inputs"
            )
        else:
            try:
                spec = InputSpec.from_dict(version.input_spec)
            except ConfigError as exc:
                failures.append(str(exc))
        pipeline = self._pipelines(version.model)
        if pipeline is None:
            failures.append(
                f"no guard pipeline is configured for model {version.model!r} (configure its "
                "input guards, or serve with --unsafe-no-input-guards)"
            )
        registry = Registry(self.store, actor="gateway", policy=self.policy, audit=self.audit)
        try:
            report = registry.gates(version.model, version.number)
        except WardenError as exc:
            raise _Refused([*failures, f"gates could not be evaluated: {exc}"]) from exc
        if report.version.artifact_digest != version.artifact_digest:
            failures.append("the version's artifact digest changed while it was being loaded")
        for result in report.results:
            if result.name in self.load_gates and not result.passed:
                failures.append(result.line())
        if failures:
            raise _Refused(failures)
        assert spec is not None and pipeline is not None
        with tempfile.TemporaryDirectory(prefix="warden-serve-") as tmp:
            target = Path(tmp) / "artifact"
            try:
                path = registry.export_version(version.model, version.number, target)
                _check_exported(target, report.version.files)
                model = load_model(path)
            except WardenError as exc:
                raise _Refused([f"load: {exc}"]) from exc
            except OSError as exc:
                raise _Refused([f"load: {exc}"]) from exc
        return LoadedModel(version=version, model=model, spec=spec, pipeline=pipeline)


class _Refused(Exception):
    def __init__(self, failures: list[str]) -> None:
        super().__init__("; ".join(failures))
        self.failures = failures


def _check_exported(target: Path, files: Sequence[Any]) -> None:
    """Every exported file hashes to its registered digest (the blob id)."""
    from warden.errors import TamperError

    for f in files:
        path = target / f.path
        digest = hashlib.sha256()
        with path.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
        if digest.hexdigest() != f.blob_id:
            raise TamperError(f"{f.path}: exported bytes do not hash to the registered digest")
