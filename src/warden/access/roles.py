"""Roles, permissions, the :class:`Principal` and :func:`authorize` (deny by default).

A permission is a constant string (``models:predict`` …). Each role grants a fixed set
(:data:`ROLE_PERMISSIONS`); a principal's permissions are the union over its roles. Model-scoped
checks (``authorize(p, MODELS_PREDICT, model="fraud")``) also need a per-model grant for that
model (``*`` grants every model); the admin role holds ``*`` implicitly. An unknown permission,
a missing permission, a missing grant or a restricted principal (an admin who must enrol MFA
first) is :class:`~warden.access.errors.PermissionDenied`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Final, Literal

from warden.access.errors import PermissionDenied

__all__ = [
    "ADMIN",
    "ALL_MODELS",
    "ALL_PERMISSIONS",
    "AUDITOR",
    "AUDIT_READ",
    "CLIENT",
    "KEYS_ADMIN",
    "METRICS_READ",
    "ML_ENGINEER",
    "MODELS_PREDICT",
    "MODELS_READ",
    "REGISTRY_DEPLOY",
    "REGISTRY_READ",
    "REGISTRY_WRITE",
    "ROLES",
    "ROLE_PERMISSIONS",
    "USERS_ADMIN",
    "Principal",
    "authorize",
    "permissions_of",
]

MODELS_READ: Final = "models:read"
"""See the models one may use and their metadata."""
MODELS_PREDICT: Final = "models:predict"
"""Send prediction requests to a model."""
REGISTRY_READ: Final = "registry:read"
"""Read the registry: versions, evidence, lineage, model cards."""
REGISTRY_WRITE: Final = "registry:write"
"""Register versions and datasets, attach scans, signatures, assessments, notes."""
REGISTRY_DEPLOY: Final = "registry:deploy"
"""Approve, deploy, quarantine, roll back, retire."""
USERS_ADMIN: Final = "users:admin"
"""Create, disable and change users; roles; grants; reset MFA; revoke sessions."""
KEYS_ADMIN: Final = "keys:admin"
"""Issue, rotate and revoke API keys."""
AUDIT_READ: Final = "audit:read"
"""Search, export and verify the audit log."""
METRICS_READ: Final = "metrics:read"
"""Read the Prometheus metrics."""

ALL_PERMISSIONS: Final = frozenset(
    {
        MODELS_READ,
        MODELS_PREDICT,
        REGISTRY_READ,
        REGISTRY_WRITE,
        REGISTRY_DEPLOY,
        USERS_ADMIN,
        KEYS_ADMIN,
        AUDIT_READ,
        METRICS_READ,
    }
)
"""Every permission there is; anything else is denied."""

ADMIN: Final = "admin"
ML_ENGINEER: Final = "ml-engineer"
AUDITOR: Final = "auditor"
CLIENT: Final = "client"
ROLES: Final = (ADMIN, ML_ENGINEER, AUDITOR, CLIENT)
"""The roles, most powerful first."""

ROLE_PERMISSIONS: Final[Mapping[str, frozenset[str]]] = {
    ADMIN: ALL_PERMISSIONS,
    ML_ENGINEER: frozenset(
        {MODELS_READ, MODELS_PREDICT, REGISTRY_READ, REGISTRY_WRITE, REGISTRY_DEPLOY, METRICS_READ}
    ),
    AUDITOR: frozenset({MODELS_READ, REGISTRY_READ, AUDIT_READ, METRICS_READ}),
    CLIENT: frozenset({MODELS_READ, MODELS_PREDICT}),
}
"""What each role may do (see docs/access.md for the table)."""

ALL_MODELS: Final = "*"
"""The grant that covers every model."""


def permissions_of(roles: frozenset[str] | tuple[str, ...]) -> frozenset[str]:
    """The union of the roles' permissions (unknown roles grant nothing)."""
    out: frozenset[str] = frozenset()
    for role in roles:
        out |= ROLE_PERMISSIONS.get(role, frozenset())
    return out


@dataclass(frozen=True)
class Principal:
    """Who is calling, as authenticated by a session or an API key."""

    kind: Literal["user", "key"]
    """``user`` (a session) or ``key`` (an API key)."""
    id: str
    """The user's id (decimal) or the API key's id."""
    name: str
    """The user name, or the API key's label."""
    roles: frozenset[str]
    """Role names."""
    permissions: frozenset[str]
    """What the roles allow (empty while ``restricted``)."""
    models: frozenset[str]
    """Models granted (``*``: all of them)."""
    plan: str
    """The rate plan name (the gateway defines plans)."""
    mfa: Literal["enrolled", "pending", "none", "not-applicable"]
    """The user's MFA state (``not-applicable`` for API keys)."""
    restricted: bool = False
    """True for an admin session without MFA: good only for enrolling MFA."""
    expires_at: datetime | None = None
    """When the session or key stops working (absolute expiry), if ever."""

    @property
    def actor(self) -> str:
        """How the audit log names this principal: the user name, or ``key:ID``."""
        return self.name if self.kind == "user" else f"key:{self.id}"

    def may_use(self, model: str) -> bool:
        """Whether a grant covers ``model``."""
        return ALL_MODELS in self.models or model in self.models

    def can(self, permission: str, model: str | None = None) -> bool:
        """:func:`authorize` as a boolean."""
        try:
            authorize(self, permission, model)
        except PermissionDenied:
            return False
        return True


def authorize(principal: Principal, permission: str, model: str | None = None) -> None:
    """Return if ``principal`` holds ``permission`` (and a grant for ``model`` when given);
    raise :class:`PermissionDenied` otherwise. Unknown permissions are denied."""
    who = f"{principal.kind} {principal.actor!r}"
    if permission not in ALL_PERMISSIONS:
        raise PermissionDenied(f"{who}: unknown permission {permission!r} is never granted")
    if principal.restricted:
        raise PermissionDenied(
            f"{who} must enrol MFA before doing anything else (the admin role requires it)"
        )
    if permission not in principal.permissions:
        roles = ", ".join(sorted(principal.roles)) or "no role"
        raise PermissionDenied(f"{who} ({roles}) lacks permission {permission}")
    if model is not None and not principal.may_use(model):
        raise PermissionDenied(f"{who} has no grant for model {model!r}")
