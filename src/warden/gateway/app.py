"""The gateway's two ASGI apps and what they share.

::

    from warden.gateway.app import Gateway, GatewaySettings, create_admin_app, create_app

    gateway = Gateway.open(store, settings=GatewaySettings(guards={"digits": pipeline}))
    inference = create_app(gateway)        # POST /v1/models/{name}/predict, GET /v1/models …
    admin = create_admin_app(gateway)      # users, keys, grants, deploy, audit, /metrics
    ...                                    # serve both (warden serve), then
    gateway.close()                        # flush the audit log, leave a checkpoint

Both are FastAPI apps with an OpenAPI document at ``/openapi.json`` (no HTML docs pages: they
would load scripts the Content-Security-Policy forbids). Cross-cutting concerns wrap each app as
plain ASGI middleware, outermost first::

    SecurityHeaders → Metrics → RequestAudit → BodyLimit → routes

Every route declares the permission it needs (:mod:`warden.gateway.auth`); every refusal on
purpose is a :class:`~warden.errors.WardenError` turned into ``{"detail": "..."}`` with its
status (:func:`status_of`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from warden.access import Access, AuthenticationError, PermissionDenied
from warden.access.errors import AccessError
from warden.access.roles import ADMIN, AUDITOR, CLIENT, ML_ENGINEER, ROLES, Principal
from warden.errors import (
    ConfigError,
    DataError,
    GateRefused,
    GatewayError,
    InputShapeError,
    LifecycleError,
    RegistryError,
    StoreError,
    WardenError,
)
from warden.gateway.auth import PUBLIC
from warden.gateway.guards.pipeline import GuardPipeline
from warden.gateway.metrics import GatewayMetrics
from warden.gateway.middleware.audit import RequestAuditMiddleware, audit_note
from warden.gateway.middleware.body_limit import BodyLimitMiddleware
from warden.gateway.middleware.metrics import MetricsMiddleware
from warden.gateway.middleware.security_headers import SecurityHeadersMiddleware
from warden.gateway.ratelimit import InProcessLimiter, RateLimiter, RatePlan
from warden.gateway.serving import DEFAULT_LOAD_GATES, ModelServer

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    from warden.audit import AuditKey, AuditLog
    from warden.registry import Registry
    from warden.registry.policy import Policy
    from warden.store import Store

__all__ = [
    "DEFAULT_CLEARANCES",
    "DEFAULT_PLANS",
    "Gateway",
    "GatewaySettings",
    "Listener",
    "create_admin_app",
    "create_app",
    "serve_listeners",
    "settings_from_config",
    "status_of",
    "uvicorn_server",
]

log = logging.getLogger(__name__)

DEFAULT_PLANS: Final[Mapping[str, RatePlan]] = {"default": RatePlan(rate=100.0, burst=256)}
"""Plans when none are configured: ``default`` (100 rows/s, bursts of 256, no daily quota)."""
DEFAULT_CLEARANCES: Final[Mapping[str, str]] = {
    ADMIN: "full",
    ML_ENGINEER: "full",
    AUDITOR: "label",
    CLIENT: "default",
}
"""Output clearance per role: engineers see raw scores, clients the default filters."""


@dataclass(frozen=True)
class GatewaySettings:
    """How the gateway serves (what ``warden serve`` reads from its configuration)."""

    plans: Mapping[str, RatePlan] = field(default_factory=lambda: dict(DEFAULT_PLANS))
    """Rate plans by name; a principal whose plan is not here is refused (403)."""
    clearances: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_CLEARANCES))
    """Output clearance per role; a principal gets that of its most powerful role, and
    ``label`` when none of its roles is listed."""
    guards: Mapping[str, GuardPipeline] = field(default_factory=dict)
    """Guard pipeline per model name."""
    default_guards: GuardPipeline | None = None
    """Pipeline of models not in ``guards``; ``None``: such models are not served."""
    max_body_bytes: int = 1 << 20
    """Largest request body on the inference listener."""
    admin_max_body_bytes: int = 64 << 10
    """Largest request body on the admin listener."""
    load_gates: tuple[str, ...] = DEFAULT_LOAD_GATES
    """Registry gates re-run when a version is loaded."""
    refusal_ttl_s: float = 30.0
    """How long a version refused at load stays refused before it is tried again."""
    max_loaded: int = 16
    """Loaded versions kept in memory."""
    hsts_max_age: int = 31_536_000
    """``Strict-Transport-Security`` max-age on TLS listeners."""

    def __post_init__(self) -> None:
        if not self.plans:
            raise ConfigError("gateway settings: name at least one rate plan")
        for name, plan in self.plans.items():
            if not isinstance(plan, RatePlan):
                raise ConfigError(f"gateway settings: plan {name!r} is not a RatePlan")
        unknown = sorted(set(self.clearances) - set(ROLES))
        if unknown:
            raise ConfigError(
                f"gateway settings: clearances name unknown role(s) {unknown}; "
                f"expected {', '.join(ROLES)}"
            )
        for name, size in (
            ("max_body_bytes", self.max_body_bytes),
            ("admin_max_body_bytes", self.admin_max_body_bytes),
        ):
            if not isinstance(size, int) or size < 1024:
                raise ConfigError(f"gateway settings: {name} must be >= 1024, found {size!r}")
        if self.refusal_ttl_s < 0:
            raise ConfigError("gateway settings: refusal_ttl_s must be >= 0")


_CONFIG_KEYS: Final = frozenset(
    {
        "plans",
        "clearances",
        "models",
        "max_body_bytes",
        "admin_max_body_bytes",
        "load_gates",
        "refusal_ttl_s",
        "max_loaded",
    }
)
_MODEL_KEYS: Final = frozenset({"guards", "ood_data", "ood_method", "ood_quantile"})


def settings_from_config(
    doc: Mapping[str, Any], *, base: Path, unsafe_no_input_guards: bool = False
) -> GatewaySettings:
    """Gateway settings from a TOML document (``warden serve --config``)::

        [plans]
        default = { rate = 100, burst = 256 }
        free = { rate = 1, burst = 10, daily_quota = 1000 }

        [clearances]            # role -> output clearance
        client = "default"

        [models.digits]
        ood_data = "digits-train.npz"      # fits the "ood" guard (relative to the file)
        guards = { input = [{ guard = "ood", flag_at = 1.0, block_at = 3.0 }] }

    Unknown keys are refused. A model without ``guards`` is not served unless
    ``unsafe_no_input_guards`` (it then runs with output filters only; a warning is logged).
    """
    from warden.gateway.guards.ood import OODDetector, OODGuard
    from warden.gateway.guards.pipeline import pipeline_from_config
    from warden.gateway.ratelimit import plans_from_config

    unknown = sorted(set(doc) - _CONFIG_KEYS)
    if unknown:
        raise ConfigError(
            f"gateway config: unknown key(s) {unknown}; expected {sorted(_CONFIG_KEYS)}"
        )
    options: dict[str, Any] = {}
    if "plans" in doc:
        options["plans"] = plans_from_config(doc["plans"])
    if "clearances" in doc:
        options["clearances"] = dict(doc["clearances"])
    for key in ("max_body_bytes", "admin_max_body_bytes", "refusal_ttl_s", "max_loaded"):
        if key in doc:
            options[key] = doc[key]
    if "load_gates" in doc:
        options["load_gates"] = tuple(doc["load_gates"])
    guards: dict[str, GuardPipeline] = {}
    for name, table in dict(doc.get("models", {})).items():
        extra = sorted(set(table) - _MODEL_KEYS)
        if extra:
            raise ConfigError(
                f"gateway config: model {name!r}: unknown key(s) {extra}; "
                f"expected {sorted(_MODEL_KEYS)}"
            )
        available: dict[str, Any] = {}
        if "ood_data" in table:
            from warden.data.loaders import load_dataset

            data = load_dataset(str(base / str(table["ood_data"])))
            detector = OODDetector(
                table.get("ood_method", "mahalanobis"),
                quantile=float(table.get("ood_quantile", 0.99)),
            ).fit(data.x)
            available["ood"] = OODGuard(detector)
        if "guards" in table:
            guards[name] = pipeline_from_config(table["guards"], available)
    options["guards"] = guards
    if unsafe_no_input_guards:
        options["default_guards"] = GuardPipeline([], unsafe_allow_no_input_guards=True)
    return GatewaySettings(**options)


class Gateway:
    """Everything both listeners share: the store, access service, audit log and its keys,
    model server, rate limiter and metrics.

    ``audit`` is the store's :class:`~warden.audit.AuditLog`; ``audit_key`` and
    ``audit_public_key`` let the admin API verify it. ``access`` defaults to an
    :class:`~warden.access.Access` auditing into ``audit``; ``policy`` to the store's
    approval policy; ``limiter`` to an :class:`InProcessLimiter` (one worker).
    """

    def __init__(
        self,
        store: Store,
        *,
        audit: AuditLog,
        audit_key: AuditKey,
        audit_public_key: Ed25519PublicKey,
        settings: GatewaySettings | None = None,
        access: Access | None = None,
        policy: Policy | None = None,
        limiter: RateLimiter | None = None,
        metrics: GatewayMetrics | None = None,
    ) -> None:
        self.store = store
        self.audit = audit
        self.audit_key = audit_key
        self.audit_public_key = audit_public_key
        self.settings = settings or GatewaySettings()
        self.access = access or Access(store, audit=audit)
        self.policy = policy
        self.limiter: RateLimiter = limiter or InProcessLimiter()
        self.metrics = metrics or GatewayMetrics()
        self.models = ModelServer(
            store,
            audit=audit,
            pipelines=self.pipeline_of,
            policy=policy,
            load_gates=self.settings.load_gates,
            refusal_ttl_s=self.settings.refusal_ttl_s,
            max_loaded=self.settings.max_loaded,
        )
        self._owns_audit = False

    @classmethod
    def open(
        cls,
        store: Store,
        *,
        audit_key_text: str | None = None,
        **options: Any,
    ) -> Gateway:
        """A gateway over ``store`` with its own audit log (keys from the home, created on
        first use; ``audit_key_text``: the ``WARDEN_AUDIT_KEY`` value instead of the key
        file). :meth:`close` closes the log."""
        from warden.audit import AuditLog, load_audit_key, load_signing_key

        key = load_audit_key(store.home, audit_key_text, create=True)
        signer = load_signing_key(store.home, create=True)
        audit = AuditLog(store.db, key, signer)
        gateway = cls(
            store, audit=audit, audit_key=key, audit_public_key=signer.public_key(), **options
        )
        gateway._owns_audit = True
        return gateway

    def close(self) -> None:
        """Flush and close the audit log if :meth:`open` made it."""
        if self._owns_audit:
            self.audit.close()

    def __enter__(self) -> Gateway:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- per-request lookups ---------------------------------------------------------------

    def plan_of(self, principal: Principal) -> tuple[str, RatePlan]:
        """The principal's rate plan (name, plan); 403 when it is not configured."""
        plan = self.settings.plans.get(principal.plan)
        if plan is None:
            log.warning(
                "%s has rate plan %r, which is not configured", principal.actor, principal.plan
            )
            raise GatewayError(
                f"rate plan {principal.plan!r} of {principal.actor} is not configured on this "
                "gateway; ask an operator to assign a configured plan",
                status_code=403,
            )
        return principal.plan, plan

    def clearance_of(self, principal: Principal) -> str:
        """The output clearance of the principal's most powerful role (``label`` if none)."""
        for role in ROLES:
            if role in principal.roles and role in self.settings.clearances:
                return self.settings.clearances[role]
        return "label"

    def pipeline_of(self, model: str) -> GuardPipeline | None:
        """The model's guard pipeline (``None``: not configured, so it is not served)."""
        return self.settings.guards.get(model, self.settings.default_guards)

    def registry(self, actor: str) -> Registry:
        """A registry acting as ``actor``, auditing into the gateway's log."""
        from warden.registry import Registry

        return Registry(self.store, actor=actor, policy=self.policy, audit=self.audit)


# -- errors --------------------------------------------------------------------------------


def status_of(exc: WardenError) -> int:
    """The HTTP status of an error raised while handling a request."""
    if isinstance(exc, GatewayError):
        return exc.status_code
    if isinstance(exc, AuthenticationError):
        return 401
    if isinstance(exc, PermissionDenied):
        return 403
    if isinstance(exc, AccessError | ConfigError | DataError):
        return 400
    if isinstance(exc, InputShapeError):
        return 422
    if isinstance(exc, GateRefused | LifecycleError):
        return 409
    if isinstance(exc, RegistryError):
        return 404
    if isinstance(exc, StoreError):
        return 503
    return 500


async def _warden_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, WardenError)
    status = status_of(exc)
    headers = dict(getattr(exc, "headers", {}) or {})
    detail = str(exc)
    if status == 401:
        headers.setdefault("WWW-Authenticate", 'Bearer realm="warden"')
    if status >= 500 and not isinstance(exc, GatewayError):
        log.error("request failed: %s: %s", type(exc).__name__, exc)
        detail = "the gateway could not complete the request; the event is logged"
    audit_note(request.scope, details={"error": str(exc)[:500]})
    return JSONResponse({"detail": detail}, status_code=status, headers=headers)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    first = errors[0] if errors else {}
    where = ".".join(str(p) for p in first.get("loc", ())) or "request"
    detail = f"{where}: {first.get('msg', 'invalid')}"
    audit_note(request.scope, details={"error": detail[:500]})
    return JSONResponse({"detail": detail}, status_code=422)


def _base_app(gateway: Gateway, *, title: str, description: str) -> FastAPI:
    from warden import __version__

    app = FastAPI(
        title=title,
        description=description,
        version=__version__,
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
    )
    app.state.gateway = gateway
    app.add_exception_handler(WardenError, _warden_error)
    app.add_exception_handler(RequestValidationError, _validation_error)

    @app.get(
        "/openapi.json",
        name="openapi",
        include_in_schema=False,
        dependencies=[Depends(PUBLIC)],
    )
    async def openapi() -> JSONResponse:
        """The OpenAPI document of this listener."""
        return JSONResponse(app.openapi())

    return app


def _add_routes(app: FastAPI, *routers: APIRouter) -> None:
    """Put the routers' routes on the app as they are (``include_router`` would wrap them in
    lazily built router contexts; plain routes keep ``app.routes`` a list of the routes
    themselves, which the permission walk reads)."""
    for router in routers:
        app.router.routes.extend(router.routes)


def _wrap(app: FastAPI, gateway: Gateway, *, listener: str, max_body: int) -> FastAPI:
    # add_middleware puts each new layer outside the previous ones
    app.add_middleware(BodyLimitMiddleware, max_bytes=max_body)
    app.add_middleware(RequestAuditMiddleware, audit=gateway.audit, listener=listener)
    app.add_middleware(MetricsMiddleware, metrics=gateway.metrics)
    app.add_middleware(SecurityHeadersMiddleware, hsts_max_age=gateway.settings.hsts_max_age)
    return app


def create_app(gateway: Gateway) -> FastAPI:
    """The inference listener: predict, the caller's models, health, login."""
    from warden.gateway.routes import inference, session

    app = _base_app(
        gateway,
        title="Warden inference gateway",
        description="Predictions from approved, signed, scanned model versions.",
    )
    _add_routes(app, inference.router, session.router)
    return _wrap(app, gateway, listener="inference", max_body=gateway.settings.max_body_bytes)


def create_admin_app(gateway: Gateway) -> FastAPI:
    """The admin listener: users, grants, keys, lifecycle, audit, metrics (loopback by
    default: keep it off the network clients reach)."""
    from warden.gateway.routes import admin, inference, session

    app = _base_app(
        gateway,
        title="Warden admin API",
        description="Users, roles, grants, API keys, deployments, audit log and metrics.",
    )
    healthz = [r for r in inference.router.routes if getattr(r, "name", "") == "healthz"]
    app.router.routes.extend(healthz)
    _add_routes(app, session.router, admin.router)
    return _wrap(app, gateway, listener="admin", max_body=gateway.settings.admin_max_body_bytes)


# -- running the listeners -----------------------------------------------------------------


@dataclass(frozen=True)
class Listener:
    """One listening socket and the app behind it."""

    app: Any
    """The ASGI app (:func:`create_app` or :func:`create_admin_app`)."""
    host: str
    """Address to bind (``127.0.0.1``; ``0.0.0.0`` for every interface)."""
    port: int
    """TCP port (0: any free port; see :attr:`uvicorn.Server.servers` for the one chosen)."""
    ssl: Any = None
    """An :class:`ssl.SSLContext` (:func:`warden.gateway.tls.server_context`) or ``None``."""


def uvicorn_server(listener: Listener) -> Any:
    """A uvicorn server for ``listener`` that leaves signal handling to its caller (several
    servers share one event loop), sends no ``Server`` header and writes no access log (the
    audit log is the record of requests)."""
    import contextlib
    from collections.abc import Iterator

    import uvicorn

    context = listener.ssl

    class _Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            yield

    config = uvicorn.Config(
        listener.app,
        host=listener.host,
        port=listener.port,
        lifespan="off",
        access_log=False,
        server_header=False,
        proxy_headers=False,
        log_level="warning",
        ssl_context_factory=(lambda _config, _default: context) if context is not None else None,
    )
    return _Server(config)


async def serve_listeners(servers: list[Any]) -> None:
    """Run uvicorn ``servers`` (from :func:`uvicorn_server`) in this event loop until one of
    them stops (``server.should_exit = True``, or a listener that cannot bind), then stop the
    others."""
    import asyncio

    async def run(server: Any) -> None:
        try:
            await server.serve()
        except SystemExit as exc:  # uvicorn exits when it cannot bind
            config = server.config
            raise ConfigError(
                f"cannot listen on {config.host}:{config.port} (in use, or not allowed)"
            ) from exc
        finally:
            for other in servers:
                other.should_exit = True

    await asyncio.gather(*(run(s) for s in servers))
