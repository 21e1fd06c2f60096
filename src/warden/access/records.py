"""What :class:`~warden.access.Access` takes as settings and hands back: frozen records."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from warden.access.roles import Principal
from warden.errors import ConfigError

__all__ = [
    "AccessPolicy",
    "GrantInfo",
    "IssuedKey",
    "KeyInfo",
    "LoginResult",
    "TotpEnrolment",
    "UserInfo",
]


@dataclass(frozen=True)
class AccessPolicy:
    """Lockout, session, MFA and key-rotation settings."""

    max_failures: int = 5
    """Consecutive failed logins that lock the account."""
    lockout_base: timedelta = timedelta(minutes=1)
    """The first lockout's length; each further one doubles it."""
    lockout_cap: timedelta = timedelta(hours=1)
    """The longest lockout."""
    session_idle: timedelta = timedelta(minutes=30)
    """A session unused this long expires."""
    session_absolute: timedelta = timedelta(hours=12)
    """A session expires this long after login, used or not."""
    touch_interval: timedelta = timedelta(minutes=1)
    """A session's last-use time is written at most this often (idle expiry's precision)."""
    key_grace: timedelta = timedelta(hours=24)
    """How long a rotated API key keeps working by default."""
    totp_window: int = 1
    """TOTP steps accepted either side of now."""
    mfa_issuer: str = "Warden"
    """The issuer shown by authenticator apps."""

    def __post_init__(self) -> None:
        if self.max_failures < 1:
            raise ConfigError("AccessPolicy.max_failures must be at least 1")
        for name in ("lockout_base", "lockout_cap", "session_idle", "session_absolute"):
            if getattr(self, name) <= timedelta(0):
                raise ConfigError(f"AccessPolicy.{name} must be positive")
        if self.lockout_cap < self.lockout_base:
            raise ConfigError("AccessPolicy.lockout_cap must be at least lockout_base")
        if self.key_grace < timedelta(0) or self.touch_interval < timedelta(0):
            raise ConfigError("AccessPolicy.key_grace and touch_interval must not be negative")
        if not 0 <= self.totp_window <= 2:
            raise ConfigError("AccessPolicy.totp_window: expected 0, 1 or 2 steps")

    def lockout_for(self, lockouts: int) -> timedelta:
        """The length of the ``lockouts``-th lockout (1-based): base × 2^(n-1), capped."""
        if lockouts > 40:  # 2**40 minutes is past any cap
            return self.lockout_cap
        length: timedelta = self.lockout_base * 2 ** max(lockouts - 1, 0)
        return min(length, self.lockout_cap)


@dataclass(frozen=True)
class UserInfo:
    """A user as listed (no secrets)."""

    id: int
    """Database id."""
    name: str
    """The name as created (unique case-insensitively)."""
    roles: tuple[str, ...]
    """Role names, sorted."""
    plan: str
    """Rate plan name."""
    disabled: bool
    """Disabled users cannot log in; their sessions stop working."""
    mfa: Literal["enrolled", "pending", "none"]
    """``pending``: a secret was issued but no code confirmed yet."""
    recovery_codes_left: int
    """Unused recovery codes."""
    models: tuple[str, ...]
    """Models granted (``*``: all), sorted."""
    locked_until: datetime | None
    """While in the future, logins fail."""
    failed_logins: int
    """Consecutive failures since the last success or lockout."""
    lockouts: int
    """Lockouts since the last successful login (sets the next lockout's length)."""
    created_at: datetime
    """When it was created."""
    created_by: str
    """Who created it."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "id": self.id,
            "name": self.name,
            "roles": list(self.roles),
            "plan": self.plan,
            "disabled": self.disabled,
            "mfa": self.mfa,
            "recovery_codes_left": self.recovery_codes_left,
            "models": list(self.models),
            "locked_until": None if self.locked_until is None else self.locked_until.isoformat(),
            "failed_logins": self.failed_logins,
            "lockouts": self.lockouts,
            "created_at": self.created_at.isoformat(),
            "created_by": self.created_by,
        }


@dataclass(frozen=True)
class KeyInfo:
    """An API key as listed (never its secret)."""

    id: str
    """The public id (the ``ID`` in ``wdn_ID_SECRET``)."""
    name: str
    """A label (the service it is for)."""
    role: str
    """The role the key acts with."""
    models: tuple[str, ...]
    """Models the key may use (``*``: all), sorted."""
    plan: str
    """Rate plan name."""
    created_at: datetime
    """When it was issued."""
    created_by: str
    """Who issued it."""
    expires_at: datetime | None
    """When it stops working, if ever."""
    revoked_at: datetime | None
    """When it was revoked, if it was."""
    replaced_by: str | None
    """The id of the key that rotation issued in its place."""
    grace_until: datetime | None
    """After a rotation: when this (old) key stops working."""

    def status(self, now: datetime) -> Literal["active", "grace", "expired", "revoked"]:
        """The key's state at ``now``."""
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and now >= self.expires_at:
            return "expired"
        if self.grace_until is not None:
            return "grace" if now < self.grace_until else "expired"
        return "active"

    def to_dict(self, now: datetime | None = None) -> dict[str, Any]:
        """JSON-ready form (with ``status`` when ``now`` is given)."""

        def iso(t: datetime | None) -> str | None:
            return None if t is None else t.isoformat()

        doc: dict[str, Any] = {
            "id": self.id,
            "name": self.name,
            "role": self.role,
            "models": list(self.models),
            "plan": self.plan,
            "created_at": self.created_at.isoformat(),
            "created_by": self.created_by,
            "expires_at": iso(self.expires_at),
            "revoked_at": iso(self.revoked_at),
            "replaced_by": self.replaced_by,
            "grace_until": iso(self.grace_until),
        }
        if now is not None:
            doc["status"] = self.status(now)
        return doc


@dataclass(frozen=True)
class IssuedKey:
    """A new API key: ``token`` is shown once and never stored."""

    token: str = field(repr=False)
    """``wdn_<id>_<secret>``: what the client sends (``Authorization: Bearer``)."""
    info: KeyInfo
    """The key's record."""


@dataclass(frozen=True)
class GrantInfo:
    """A per-model grant."""

    subject: str
    """``user:NAME`` or ``key:ID``."""
    model: str
    """The model name (``*``: all)."""
    created_at: datetime
    """When it was granted."""
    created_by: str
    """Who granted it."""


@dataclass(frozen=True)
class LoginResult:
    """The outcome of a login that did not fail.

    ``status``:

    - ``ok``: ``token`` is a full session;
    - ``mfa-required``: the password was right and the user has MFA; call again with a TOTP
      or recovery code (no session was made);
    - ``mfa-enrolment-required``: an admin without MFA; ``token`` is a *restricted* session
      that only enrols MFA (:meth:`~warden.access.Access.enrol_totp`), after which the user
      logs in again with a code.
    """

    status: Literal["ok", "mfa-required", "mfa-enrolment-required"]
    """See above."""
    token: str | None = field(default=None, repr=False)
    """The session token (shown once; only its SHA-256 is stored)."""
    principal: Principal | None = None
    """Who logged in (``None`` for ``mfa-required``)."""
    expires_at: datetime | None = None
    """The session's absolute expiry."""


@dataclass(frozen=True)
class TotpEnrolment:
    """A new TOTP secret: show it (or its URI as a QR code) once, then confirm a code."""

    secret: str = field(repr=False)
    """Base32 secret for manual entry."""
    uri: str = field(repr=False)
    """``otpauth://totp/...`` provisioning URI."""
