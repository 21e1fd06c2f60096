"""Authentication and authorization of gateway routes: every route declares what it needs.

Deny by default. A route declares exactly one of:

* ``Depends(Requires(PERMISSION))`` — a live session or API key whose principal holds
  ``PERMISSION`` (``models:predict`` …); with ``model_param="name"`` also a grant for the model
  named by that path parameter;
* ``Depends(Requires(AUTHENTICATED))`` — any live session or API key, restricted ones included
  (logout, "who am I", enrolling MFA);
* ``Depends(PUBLIC)`` — no credentials (``/healthz``, the OpenAPI document, login).

:func:`route_requirements` reads the declarations back from an app's routes; the test suite
walks every route of both listeners and fails if one declares nothing.

Credentials come as ``Authorization: Bearer <token>``: an API key (``wdn_…``) or a session
token. A missing, malformed, unknown, expired or revoked credential is 401 with one fixed
message and ``WWW-Authenticate: Bearer``; a principal lacking the permission or the model grant
(or an admin session that must still enrol MFA) is 403. Each failure is counted in
``warden_gateway_auth_failures_total``. The principal is left in the ASGI scope for the
request audit record (:data:`PRINCIPAL_KEY`).

The checks read the database (the access service), so the dependency is a plain function that
FastAPI runs in its thread pool, never blocking the event loop.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from fastapi import Request
from fastapi.routing import APIRoute

from warden.access.errors import AuthenticationError, PermissionDenied
from warden.access.roles import ALL_PERMISSIONS, Principal
from warden.access.service import KEY_PREFIX
from warden.errors import ConfigError, GatewayError

if TYPE_CHECKING:
    from fastapi.dependencies.models import Dependant
    from starlette.routing import BaseRoute

    from warden.access import Access
    from warden.gateway.metrics import GatewayMetrics

__all__ = [
    "AUTHENTICATED",
    "CREDENTIALS_INVALID",
    "PRINCIPAL_KEY",
    "PUBLIC",
    "Public",
    "Requirement",
    "Requires",
    "authenticate",
    "route_requirements",
]

AUTHENTICATED: Final = "authenticated"
"""Pseudo-permission: any live credential (restricted sessions included), nothing more."""
PRINCIPAL_KEY: Final = "warden.principal"
"""ASGI scope key holding the request's authenticated :class:`Principal`."""
CREDENTIALS_INVALID: Final = "missing, invalid, expired or revoked credentials"
"""The one message of every 401."""
_CHALLENGE: Final = {"WWW-Authenticate": 'Bearer realm="warden"'}
_MAX_HEADER: Final = 1024


def _unauthorized() -> GatewayError:
    return GatewayError(CREDENTIALS_INVALID, status_code=401, headers=_CHALLENGE)


def authenticate(access: Access, authorization: str | None) -> Principal:
    """The principal of an ``Authorization: Bearer <token>`` header value (an API key or a
    session token); :class:`AuthenticationError` if there is none or it is not live."""
    if not authorization or len(authorization) > _MAX_HEADER:
        raise AuthenticationError(CREDENTIALS_INVALID)
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise AuthenticationError(CREDENTIALS_INVALID)
    if token.startswith(KEY_PREFIX):
        return access.authenticate_key(token)
    return access.verify_session(token)


class Requires:
    """Route dependency: authenticate, then check ``permission`` (see the module docstring).

    Returns the :class:`Principal`; raises :class:`GatewayError` 401 / 403.
    """

    def __init__(self, permission: str, *, model_param: str | None = None) -> None:
        if permission != AUTHENTICATED and permission not in ALL_PERMISSIONS:
            raise ConfigError(
                f"route permission {permission!r}: expected one of "
                f"{', '.join(sorted(ALL_PERMISSIONS))} or {AUTHENTICATED!r}"
            )
        if permission == AUTHENTICATED and model_param is not None:
            raise ConfigError("an AUTHENTICATED route cannot also require a model grant")
        self.permission = permission
        self.model_param = model_param

    def __repr__(self) -> str:
        extra = f", model_param={self.model_param!r}" if self.model_param else ""
        return f"Requires({self.permission!r}{extra})"

    def __call__(self, request: Request) -> Principal:
        state = request.app.state
        access: Access = state.gateway.access
        metrics: GatewayMetrics = state.gateway.metrics
        header = request.headers.get("authorization")
        try:
            principal = authenticate(access, header)
        except AuthenticationError:
            metrics.auth_failure("bad_credentials" if header else "missing_credentials")
            raise _unauthorized() from None
        request.scope[PRINCIPAL_KEY] = principal
        if self.permission == AUTHENTICATED:
            return principal
        model = None
        if self.model_param is not None:
            model = str(request.path_params.get(self.model_param, ""))
        try:
            access.authorize(principal, self.permission, model)
        except PermissionDenied as exc:
            metrics.auth_failure("mfa_required" if principal.restricted else "forbidden")
            raise GatewayError(str(exc), status_code=403) from None
        return principal


class Public:
    """Route dependency marking a route that needs no credentials (it checks nothing)."""

    def __repr__(self) -> str:
        return "PUBLIC"

    def __call__(self) -> None:
        return None


PUBLIC: Final = Public()
"""The one :class:`Public` marker: ``dependencies=[Depends(PUBLIC)]``."""


@dataclass(frozen=True)
class Requirement:
    """What one route declared."""

    method: str
    """HTTP method."""
    path: str
    """Route template."""
    name: str
    """Route name (the audit action is ``gateway.<name>``)."""
    permission: str | None
    """The permission, :data:`AUTHENTICATED`, or ``None`` for a public route."""
    model_param: str | None
    """The path parameter naming the model whose grant is needed, if any."""


def _declarations(dependant: Dependant) -> Iterator[Any]:
    for dep in dependant.dependencies:
        if isinstance(dep.call, Requires | Public):
            yield dep.call
        yield from _declarations(dep)


def route_requirements(routes: list[BaseRoute]) -> list[Requirement]:
    """One :class:`Requirement` per route and method; :class:`ConfigError` for a route that
    declares nothing, declares twice, or is not a FastAPI route (nothing to check)."""
    out: list[Requirement] = []
    for route in routes:
        if not isinstance(route, APIRoute):
            raise ConfigError(
                f"route {getattr(route, 'path', route)!r} is not an APIRoute: it cannot "
                "declare a permission"
            )
        found = {id(d): d for d in _declarations(route.dependant)}
        if len(found) != 1:
            raise ConfigError(
                f"route {sorted(route.methods or ())} {route.path} declares {len(found)} access "
                "requirements; expected exactly one (Requires(...) or PUBLIC)"
            )
        (decl,) = found.values()
        permission = decl.permission if isinstance(decl, Requires) else None
        model_param = decl.model_param if isinstance(decl, Requires) else None
        for method in sorted(route.methods or ()):
            out.append(Requirement(method, route.path, route.name, permission, model_param))
    return out
