"""The admin listener's routes: users, roles, grants, API keys; deploy, quarantine, rollback;
audit search, export and verify; Prometheus metrics.

Each route declares its permission (``users:admin``, ``keys:admin``, ``registry:read``,
``registry:deploy``, ``audit:read``, ``metrics:read``). The access service and the registry
record their own durable audit events for every change, with the caller as the actor; the
request itself is recorded by the request audit middleware as well.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from warden.access.roles import (
    AUDIT_READ,
    KEYS_ADMIN,
    METRICS_READ,
    REGISTRY_DEPLOY,
    REGISTRY_READ,
    USERS_ADMIN,
    Principal,
)
from warden.audit.events import model_resource
from warden.errors import InvalidRequest
from warden.gateway.auth import Requires
from warden.gateway.middleware.audit import audit_note
from warden.gateway.routes._common import body_schema, gateway_of, json_body

__all__ = ["router"]

router = APIRouter()

_USERS = Requires(USERS_ADMIN)
_KEYS = Requires(KEYS_ADMIN)
_READ = Requires(REGISTRY_READ)
_DEPLOY = Requires(REGISTRY_DEPLOY)
_AUDIT = Requires(AUDIT_READ)
_METRICS = Requires(METRICS_READ)

Name = Annotated[str, Field(min_length=1, max_length=200)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NewUser(_Body):
    """A user to create."""

    name: Name
    password: str = Field(min_length=1, max_length=1024)
    roles: list[str] = Field(default_factory=lambda: ["client"], min_length=1, max_length=8)
    plan: str = Field(default="default", min_length=1, max_length=100)


class Roles(_Body):
    """A user's new roles."""

    roles: list[str] = Field(min_length=1, max_length=8)


class Password(_Body):
    """A new password (admin reset: the user's sessions end)."""

    password: str = Field(min_length=1, max_length=1024)


class GrantBody(_Body):
    """A subject (``NAME``, ``user:NAME`` or ``key:ID``) and a model (``*`` for all)."""

    subject: Name
    model: Name


class NewKey(_Body):
    """An API key to issue (``expires_in_s``: seconds, or null for never)."""

    name: Name
    models: list[Name] = Field(min_length=1, max_length=100)
    plan: str = Field(default="default", min_length=1, max_length=100)
    role: Literal["ml-engineer", "auditor", "client"] = "client"
    expires_in_s: int | None = Field(default=90 * 86400, ge=1, le=10 * 365 * 86400)


class Rotate(_Body):
    """How long the old key keeps working (seconds; default: the access policy's grace)."""

    grace_s: int | None = Field(default=None, ge=0, le=30 * 86400)


class Reason(_Body):
    """Why (recorded with the transition)."""

    reason: str = Field(default="", max_length=2000)


class Quarantine(_Body):
    """Why; ``force`` quarantines a champion even with no approved previous version."""

    reason: str = Field(min_length=1, max_length=2000)
    force: bool = False


class Rollback(_Body):
    """Why; ``quarantine`` sends the current champion to quarantine instead of approved."""

    reason: str = Field(min_length=1, max_length=2000)
    quarantine: bool = False


def _note_user(request: Request, name: str) -> None:
    audit_note(request.scope, resource=f"user:{name}"[:200])


# -- users ---------------------------------------------------------------------------------


@router.get("/v1/users", name="list_users", dependencies=[Depends(_USERS)])
def list_users(request: Request) -> dict[str, Any]:
    """Every user (never a password hash or secret)."""
    return {"users": [u.to_dict() for u in gateway_of(request).access.list_users()]}


@router.post("/v1/users", name="create_user", openapi_extra=body_schema(NewUser))
def create_user(
    request: Request,
    principal: Annotated[Principal, Depends(_USERS)],
    body: Annotated[NewUser, Depends(json_body(NewUser))],
) -> dict[str, Any]:
    """Create a user (the password must meet the policy)."""
    _note_user(request, body.name)
    info = gateway_of(request).access.create_user(
        body.name, body.password, roles=body.roles, plan=body.plan, actor=principal.actor
    )
    return info.to_dict()


@router.get("/v1/users/{name}", name="get_user", dependencies=[Depends(_USERS)])
def get_user(request: Request, name: str) -> dict[str, Any]:
    """One user."""
    return gateway_of(request).access.get_user(name).to_dict()


@router.put("/v1/users/{name}/roles", name="set_roles", openapi_extra=body_schema(Roles))
def set_roles(
    request: Request,
    name: str,
    principal: Annotated[Principal, Depends(_USERS)],
    body: Annotated[Roles, Depends(json_body(Roles))],
) -> dict[str, Any]:
    """Replace a user's roles."""
    _note_user(request, name)
    return gateway_of(request).access.set_roles(name, body.roles, actor=principal.actor).to_dict()


@router.post("/v1/users/{name}/password", name="set_password", openapi_extra=body_schema(Password))
def set_password(
    request: Request,
    name: str,
    principal: Annotated[Principal, Depends(_USERS)],
    body: Annotated[Password, Depends(json_body(Password))],
) -> dict[str, Any]:
    """Reset a user's password; their sessions end."""
    _note_user(request, name)
    gateway_of(request).access.set_password(name, body.password, actor=principal.actor)
    return {"name": name, "password": "changed"}


def _user_action(verb: str, doc: str) -> None:
    def handler(
        request: Request, name: str, principal: Annotated[Principal, Depends(_USERS)]
    ) -> dict[str, Any]:
        _note_user(request, name)
        access = gateway_of(request).access
        if verb == "revoke_sessions":
            return {
                "name": name,
                "sessions_revoked": access.revoke_sessions(name, actor=principal.actor),
            }
        method = {
            "disable": access.disable_user,
            "enable": access.enable_user,
            "unlock": access.unlock_user,
            "reset_mfa": access.reset_mfa,
        }[verb]
        return method(name, actor=principal.actor).to_dict()

    handler.__doc__ = doc
    path = verb.replace("reset_mfa", "mfa/reset").replace("revoke_sessions", "sessions/revoke")
    router.post(f"/v1/users/{{name}}/{path}", name=f"user_{verb}")(handler)


_user_action("disable", "Disable a user (their sessions end; users are never deleted).")
_user_action("enable", "Enable a disabled user.")
_user_action("unlock", "Clear a user's lockout.")
_user_action("reset_mfa", "Remove a user's MFA (lost device); their sessions end.")
_user_action("revoke_sessions", "End every session of a user.")


# -- grants --------------------------------------------------------------------------------


@router.get("/v1/grants", name="list_grants", dependencies=[Depends(_USERS)])
def list_grants(request: Request) -> dict[str, Any]:
    """Every per-model grant."""
    grants = gateway_of(request).access.list_grants()
    return {
        "grants": [
            {
                "subject": g.subject,
                "model": g.model,
                "created_at": g.created_at.isoformat(),
                "created_by": g.created_by,
            }
            for g in grants
        ]
    }


@router.post("/v1/grants", name="grant", openapi_extra=body_schema(GrantBody))
def grant(
    request: Request,
    principal: Annotated[Principal, Depends(_USERS)],
    body: Annotated[GrantBody, Depends(json_body(GrantBody))],
) -> dict[str, Any]:
    """Allow a user or key to use a model."""
    audit_note(request.scope, resource=body.subject)
    info = gateway_of(request).access.grant(body.subject, body.model, actor=principal.actor)
    return {"subject": info.subject, "model": info.model}


@router.post("/v1/grants/revoke", name="revoke_grant", openapi_extra=body_schema(GrantBody))
def revoke_grant(
    request: Request,
    principal: Annotated[Principal, Depends(_USERS)],
    body: Annotated[GrantBody, Depends(json_body(GrantBody))],
) -> dict[str, Any]:
    """Remove a grant."""
    audit_note(request.scope, resource=body.subject)
    gateway_of(request).access.revoke_grant(body.subject, body.model, actor=principal.actor)
    return {"subject": body.subject, "model": body.model, "revoked": True}


# -- API keys ------------------------------------------------------------------------------


@router.get("/v1/keys", name="list_keys", dependencies=[Depends(_KEYS)])
def list_keys(
    request: Request,
    include_inactive: Annotated[
        bool, Query(alias="all", description="include revoked and expired keys")
    ] = False,
) -> dict[str, Any]:
    """API keys (never their secrets)."""
    gw = gateway_of(request)
    now = datetime.now(UTC)
    keys = gw.access.list_keys(include_inactive=include_inactive)
    return {"keys": [k.to_dict(now) for k in keys]}


@router.post("/v1/keys", name="issue_key", openapi_extra=body_schema(NewKey))
def issue_key(
    request: Request,
    principal: Annotated[Principal, Depends(_KEYS)],
    body: Annotated[NewKey, Depends(json_body(NewKey))],
) -> dict[str, Any]:
    """Issue a key; its token is in this answer only."""
    expires = None if body.expires_in_s is None else timedelta(seconds=body.expires_in_s)
    issued = gateway_of(request).access.issue_key(
        body.name,
        models=body.models,
        plan=body.plan,
        role=body.role,
        expires_in=expires,
        actor=principal.actor,
    )
    audit_note(request.scope, resource=f"key:{issued.info.id}")
    return {"token": issued.token, "key": issued.info.to_dict()}


@router.post("/v1/keys/{key_id}/rotate", name="rotate_key", openapi_extra=body_schema(Rotate))
def rotate_key(
    request: Request,
    key_id: str,
    principal: Annotated[Principal, Depends(_KEYS)],
    body: Annotated[Rotate, Depends(json_body(Rotate))],
) -> dict[str, Any]:
    """Issue a replacement; the old key works until the grace period ends."""
    audit_note(request.scope, resource=f"key:{key_id}"[:200])
    grace = None if body.grace_s is None else timedelta(seconds=body.grace_s)
    issued = gateway_of(request).access.rotate_key(key_id, grace=grace, actor=principal.actor)
    return {"token": issued.token, "key": issued.info.to_dict()}


@router.post("/v1/keys/{key_id}/revoke", name="revoke_key")
def revoke_key(
    request: Request, key_id: str, principal: Annotated[Principal, Depends(_KEYS)]
) -> dict[str, Any]:
    """Revoke a key now."""
    audit_note(request.scope, resource=f"key:{key_id}"[:200])
    return gateway_of(request).access.revoke_key(key_id, actor=principal.actor).to_dict()


# -- registry ------------------------------------------------------------------------------


@router.get("/v1/registry/models", name="registry_models", dependencies=[Depends(_READ)])
def registry_models(request: Request) -> dict[str, Any]:
    """Every registered model with its aliases."""
    return {"models": [m.to_dict() for m in gateway_of(request).registry("gateway").list_models()]}


@router.get(
    "/v1/registry/models/{model}/versions",
    name="registry_versions",
    dependencies=[Depends(_READ)],
)
def registry_versions(request: Request, model: str) -> dict[str, Any]:
    """A model's versions and their states."""
    versions = gateway_of(request).registry("gateway").list_versions(model)
    return {"versions": [v.to_dict() for v in versions]}


@router.post(
    "/v1/registry/models/{model}/versions/{ref}/deploy",
    name="deploy",
    openapi_extra=body_schema(Reason),
)
def deploy(
    request: Request,
    model: str,
    ref: str,
    principal: Annotated[Principal, Depends(_DEPLOY)],
    body: Annotated[Reason, Depends(json_body(Reason))],
) -> dict[str, Any]:
    """Make an approved version the champion."""
    audit_note(request.scope, resource=model_resource(model)[:200])
    reg = gateway_of(request).registry(principal.actor)
    return reg.deploy(model, ref, reason=body.reason).to_dict()


@router.post(
    "/v1/registry/models/{model}/versions/{ref}/quarantine",
    name="quarantine",
    openapi_extra=body_schema(Quarantine),
)
def quarantine(
    request: Request,
    model: str,
    ref: str,
    principal: Annotated[Principal, Depends(_DEPLOY)],
    body: Annotated[Quarantine, Depends(json_body(Quarantine))],
) -> dict[str, Any]:
    """Take a version out of use; the gateway stops serving it with the next request."""
    audit_note(request.scope, resource=model_resource(model)[:200])
    reg = gateway_of(request).registry(principal.actor)
    return reg.quarantine(model, ref, reason=body.reason, force=body.force).to_dict()


@router.post(
    "/v1/registry/models/{model}/rollback", name="rollback", openapi_extra=body_schema(Rollback)
)
def rollback(
    request: Request,
    model: str,
    principal: Annotated[Principal, Depends(_DEPLOY)],
    body: Annotated[Rollback, Depends(json_body(Rollback))],
) -> dict[str, Any]:
    """Make ``previous`` the champion again."""
    audit_note(request.scope, resource=model_resource(model)[:200])
    reg = gateway_of(request).registry(principal.actor)
    return reg.rollback(model, reason=body.reason, quarantine=body.quarantine).to_dict()


# -- audit ---------------------------------------------------------------------------------


def _when(text: str | None, what: str) -> datetime | None:
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidRequest(f"{what}: expected an ISO 8601 time, found {text[:50]!r}") from None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


@router.get("/v1/audit/search", name="audit_search", dependencies=[Depends(_AUDIT)])
def audit_search(
    request: Request,
    actor: Annotated[str | None, Query(max_length=200)] = None,
    action: Annotated[str | None, Query(max_length=200)] = None,
    model: Annotated[str | None, Query(max_length=200)] = None,
    since: Annotated[str | None, Query(max_length=64)] = None,
    until: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> dict[str, Any]:
    """Records matching every filter, oldest first."""
    from warden.audit.query import search

    records = search(
        gateway_of(request).store.db,
        actor=actor,
        action=action,
        model=model,
        since=_when(since, "since"),
        until=_when(until, "until"),
        limit=limit,
    )
    return {"records": [r.to_json() for r in records]}


@router.get("/v1/audit/export", name="audit_export", dependencies=[Depends(_AUDIT)])
def audit_export(
    request: Request,
    since: Annotated[str | None, Query(max_length=64)] = None,
    until: Annotated[str | None, Query(max_length=64)] = None,
) -> StreamingResponse:
    """Every record as JSON lines (``warden audit export``'s format)."""
    from warden.audit.query import iter_records

    db = gateway_of(request).store.db
    start, end = _when(since, "since"), _when(until, "until")

    def lines() -> Iterator[str]:
        for record in iter_records(db, since=start, until=end):
            yield json.dumps(record.to_json(), ensure_ascii=False, sort_keys=True) + "\n"

    return StreamingResponse(lines(), media_type="application/x-ndjson")


@router.get("/v1/audit/verify", name="audit_verify", dependencies=[Depends(_AUDIT)])
def audit_verify(request: Request) -> dict[str, Any]:
    """Recompute the chain and the signed checkpoints (``warden audit verify``)."""
    from warden.audit.verify import verify_log

    gw = gateway_of(request)
    report = verify_log(gw.store.db, gw.audit_key, gw.audit_public_key, workers=1)
    return {
        "ok": report.ok,
        "records": report.records,
        "first_seq": report.first_seq,
        "last_seq": report.last_seq,
        "checkpoints": report.checkpoints,
        "head": report.head,
        "problems": [
            {"kind": str(p.kind), "seq": p.seq, "message": p.message} for p in report.problems
        ],
    }


# -- metrics -------------------------------------------------------------------------------


@router.get("/metrics", name="metrics", dependencies=[Depends(_METRICS)])
def metrics(request: Request) -> Response:
    """Prometheus exposition of the gateway's metrics."""
    body, content_type = gateway_of(request).metrics.render()
    return Response(body, media_type=content_type)
