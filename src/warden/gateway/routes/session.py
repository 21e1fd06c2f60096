"""Sessions, on both listeners: log in (password, then TOTP or a recovery code), log out, who
am I, and enrolling one's own MFA (the only thing a restricted admin session may do)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field

from warden.access.errors import AuthenticationError
from warden.access.roles import Principal
from warden.errors import GatewayError
from warden.gateway.auth import AUTHENTICATED, CREDENTIALS_INVALID, PUBLIC, Requires
from warden.gateway.middleware.audit import audit_note
from warden.gateway.routes._common import body_schema, client_address, gateway_of, json_body

__all__ = ["router"]

router = APIRouter()

_AUTHENTICATED = Requires(AUTHENTICATED)


class LoginBody(BaseModel):
    """Credentials; give ``totp`` or ``recovery_code`` when the user has MFA."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    password: str = Field(min_length=1, max_length=1024)
    totp: str | None = Field(default=None, max_length=16)
    recovery_code: str | None = Field(default=None, max_length=64)


class CodeBody(BaseModel):
    """A current TOTP code."""

    model_config = ConfigDict(extra="forbid")

    code: str = Field(min_length=1, max_length=16)


def _user_only(principal: Principal) -> None:
    if principal.kind != "user":
        raise GatewayError(
            "API keys have no session or MFA; revoke or rotate them on the admin listener",
            status_code=400,
        )


@router.post(
    "/v1/login", name="login", dependencies=[Depends(PUBLIC)], openapi_extra=body_schema(LoginBody)
)
def login(
    request: Request, body: Annotated[LoginBody, Depends(json_body(LoginBody))]
) -> dict[str, Any]:
    """Log in. ``status``: ``ok`` (a session token), ``mfa-required`` (call again with a code)
    or ``mfa-enrolment-required`` (an admin without MFA: a restricted token that may only enrol
    MFA at ``/v1/me/mfa/enrol``). Every failure is the same 401."""
    gw = gateway_of(request)
    audit_note(request.scope, resource=f"user:{body.name}"[:200])
    try:
        result = gw.access.login(
            body.name,
            body.password,
            body.totp,
            recovery_code=body.recovery_code,
            source=client_address(request),
        )
    except AuthenticationError:
        gw.metrics.auth_failure("bad_credentials")
        raise GatewayError(
            CREDENTIALS_INVALID,
            status_code=401,
            headers={"WWW-Authenticate": 'Bearer realm="warden"'},
        ) from None
    if result.status == "mfa-required":
        gw.metrics.auth_failure("mfa_required")
    return {
        "status": result.status,
        "token": result.token,
        "expires_at": None if result.expires_at is None else result.expires_at.isoformat(),
        "restricted": bool(result.principal and result.principal.restricted),
    }


@router.post("/v1/logout", name="logout")
def logout(
    request: Request, principal: Annotated[Principal, Depends(_AUTHENTICATED)]
) -> dict[str, Any]:
    """End the session whose token authenticated this request."""
    _user_only(principal)
    token = request.headers.get("authorization", "").strip().partition(" ")[2].strip()
    revoked = gateway_of(request).access.logout(token, source=client_address(request))
    return {"revoked": revoked}


@router.get("/v1/me", name="whoami")
def whoami(principal: Annotated[Principal, Depends(_AUTHENTICATED)]) -> dict[str, Any]:
    """Who the credentials belong to, and what they allow."""
    return {
        "kind": principal.kind,
        "id": principal.id,
        "name": principal.name,
        "actor": principal.actor,
        "roles": sorted(principal.roles),
        "permissions": sorted(principal.permissions),
        "models": sorted(principal.models),
        "plan": principal.plan,
        "mfa": principal.mfa,
        "restricted": principal.restricted,
        "expires_at": None if principal.expires_at is None else principal.expires_at.isoformat(),
    }


@router.post("/v1/me/mfa/enrol", name="mfa_enrol")
def mfa_enrol(
    request: Request, principal: Annotated[Principal, Depends(_AUTHENTICATED)]
) -> dict[str, str]:
    """Start enrolling TOTP: the secret and its ``otpauth://`` URI (shown once)."""
    _user_only(principal)
    audit_note(request.scope, resource=f"user:{principal.name}")
    enrolment = gateway_of(request).access.enrol_totp(principal.name, actor=principal.actor)
    return {"secret": enrolment.secret, "uri": enrolment.uri}


@router.post("/v1/me/mfa/confirm", name="mfa_confirm", openapi_extra=body_schema(CodeBody))
def mfa_confirm(
    request: Request,
    principal: Annotated[Principal, Depends(_AUTHENTICATED)],
    body: Annotated[CodeBody, Depends(json_body(CodeBody))],
) -> dict[str, Any]:
    """Confirm the enrolment with a current code: the recovery codes (shown once). Restricted
    sessions end; log in again with a code."""
    _user_only(principal)
    audit_note(request.scope, resource=f"user:{principal.name}")
    codes = gateway_of(request).access.confirm_totp(
        principal.name, body.code, actor=principal.actor
    )
    return {"recovery_codes": list(codes)}
