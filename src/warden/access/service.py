"""The access service: users, logins with lockout and MFA, sessions, API keys, roles, grants.

:class:`Access` reads and writes through a :class:`~warden.store.Store` and returns frozen
records, never rows. Every change, and every login attempt whatever its outcome, is sent to the
optional :class:`~warden.audit.AuditSink` (actor, resource ``user:NAME`` / ``key:ID``,
outcome); no password, code, token or secret is ever part of an event. A change whose audit
record cannot be written raises :class:`~warden.errors.StoreError`.

Failed logins all raise :class:`AuthenticationError` with the same message
(:data:`LOGIN_FAILED`), whether the user is unknown, disabled or locked out, or the password or
code is wrong; an unknown user's password is checked against a dummy argon2id hash with the
same parameters, so the time taken does not tell either.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
import threading
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Final, Literal, TypeVar

from sqlalchemy import and_, bindparam, delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from warden.access.errors import AccessError, AuthenticationError
from warden.access.passwords import PasswordHasher, PasswordParams, check_password
from warden.access.records import (
    AccessPolicy,
    GrantInfo,
    IssuedKey,
    KeyInfo,
    LoginResult,
    TotpEnrolment,
    UserInfo,
)
from warden.access.roles import (
    ADMIN,
    ALL_MODELS,
    CLIENT,
    ROLES,
    Principal,
    authorize,
    permissions_of,
)
from warden.access.sealing import open_secret, seal_secret
from warden.access.totp import match_step, new_secret, provisioning_uri, secret_to_base32
from warden.errors import StoreError, WardenError
from warden.store.tables import (
    AccessApiKey,
    AccessGrant,
    AccessRecoveryCode,
    AccessSession,
    AccessTotp,
    AccessUser,
    utcnow,
)

if TYPE_CHECKING:
    from warden.audit.events import AuditSink
    from warden.store import Store

__all__ = [
    "KEY_INVALID",
    "KEY_PREFIX",
    "LOGIN_FAILED",
    "RECOVERY_CODES",
    "SESSION_INVALID",
    "Access",
]

log = logging.getLogger(__name__)

T = TypeVar("T")

LOGIN_FAILED: Final = (
    "login failed: the name, password or code is wrong, or the account cannot log in now"
)
"""The one message of every failed login (no enumeration)."""
SESSION_INVALID: Final = "the session is invalid, expired or revoked: log in again"
"""The one message of every refused session token."""
KEY_INVALID: Final = "the API key is invalid, expired or revoked"
"""The one message of every refused API key."""
KEY_PREFIX: Final = "wdn_"
"""API keys look like ``wdn_<16 hex id>_<43 urlsafe secret>``."""
RECOVERY_CODES: Final = 10
"""Recovery codes issued when MFA is confirmed."""

_USER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
_MODEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")
_PLAN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
_KEY_ID = re.compile(r"^[0-9a-f]{16}$")
_KEY_SECRET = re.compile(r"^[A-Za-z0-9_-]{43}$")
_RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i
_RECOVERY_LEN = 16  # 16 × log2(31) ≈ 79 bits
_MAX_TOKEN = 512
_KEY_WITH_GRANTS = (
    select(
        AccessApiKey.id,
        AccessApiKey.secret_hash,
        AccessApiKey.name,
        AccessApiKey.role,
        AccessApiKey.plan,
        AccessApiKey.expires_at,
        AccessApiKey.revoked_at,
        AccessApiKey.grace_until,
        AccessGrant.model,
    )
    .outerjoin(
        AccessGrant,
        and_(AccessGrant.subject_kind == "key", AccessGrant.subject_id == AccessApiKey.id),
    )
    .where(AccessApiKey.id == bindparam("key_id"))
)
"""An API key and its grants, one row per grant (one row with ``model`` NULL without any)."""
_MAX_ERROR = 500


def _sha256(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8")).digest()


def _name_key(name: str) -> str:
    return unicodedata.normalize("NFKC", name).strip().casefold()


def _check_user_name(name: str) -> str:
    if not isinstance(name, str):
        raise AccessError(f"a user name must be text, found {type(name).__name__}")
    text = unicodedata.normalize("NFKC", name).strip()
    if not _USER_NAME.match(text):
        raise AccessError(
            f"user name {name!r}: expected 1-64 characters (letters, digits, '.', '_', '@', "
            "'-'), starting with a letter or digit"
        )
    return text


def _check_model(model: str) -> str:
    if model == ALL_MODELS:
        return model
    if not isinstance(model, str) or not _MODEL.match(model):
        raise AccessError(
            f"model name {model!r}: expected a registry model name (letters, digits, '.', '_', "
            "'-') or '*' for every model"
        )
    return model


def _check_plan(plan: str) -> str:
    if not isinstance(plan, str) or not _PLAN.match(plan):
        raise AccessError(
            f"rate plan {plan!r}: expected 1-100 characters (letters, digits, '.', '_', '-')"
        )
    return plan


def _check_roles(roles: Sequence[str] | str) -> list[str]:
    if isinstance(roles, str):
        roles = [roles]
    found = sorted(set(roles))
    unknown = [r for r in found if r not in ROLES]
    if unknown or not found:
        raise AccessError(
            f"roles {', '.join(map(repr, unknown)) or '(none)'}: expected one or more of "
            f"{', '.join(ROLES)}"
        )
    return found


def _check_models(models: Sequence[str] | str) -> list[str]:
    if isinstance(models, str):
        models = [models]
    found = sorted({_check_model(m) for m in models})
    if not found:
        raise AccessError("an API key needs at least one model (or '*' for every model)")
    if ALL_MODELS in found and len(found) > 1:
        raise AccessError("'*' already covers every model; give it alone")
    return found


def _safe_actor(name: object) -> tuple[str, dict[str, Any]]:
    """An audit actor for a claimed name (which may be anything a client sent)."""
    if isinstance(name, str):
        text = unicodedata.normalize("NFKC", name).strip()
        if _USER_NAME.match(text):
            return text, {}
    return "anonymous", {"claimed": ascii(name)[:100]}


def _res(text: object) -> str:
    """A resource name for the audit log from caller-supplied text (printable, bounded)."""
    if isinstance(text, str) and text.isprintable() and len(text) <= 200:
        return text
    return ascii(text)[:200]


def _new_recovery_code() -> str:
    raw = "".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(_RECOVERY_LEN))
    return "-".join(raw[i : i + 4] for i in range(0, _RECOVERY_LEN, 4))


def _recovery_hash(user_id: int, code: str) -> bytes:
    cleaned = "".join(c for c in code.lower() if c not in "- \t")
    return _sha256(f"warden recovery code v1:{user_id}:{cleaned}")


@dataclass(frozen=True)
class _UserSnap:
    """What a login needs from the user's row, read before the slow hash check."""

    id: int
    name: str
    password_hash: str
    roles: tuple[str, ...]
    plan: str
    disabled: bool
    locked_until: datetime | None
    mfa: Literal["enrolled", "pending", "none"]


class Access:
    """Users, passwords, MFA, sessions, API keys, roles and per-model grants.

    ``audit`` receives one event per change and per login attempt; ``clock`` gives "now"
    (timezone-aware); ``policy`` sets lockout, session and rotation times;
    ``password_params`` the argon2id cost (the defaults are production settings).
    """

    def __init__(
        self,
        store: Store,
        *,
        audit: AuditSink | None = None,
        clock: Callable[[], datetime] = utcnow,
        policy: AccessPolicy | None = None,
        password_params: PasswordParams | None = None,
    ) -> None:
        self.store = store
        self.audit = audit
        self.policy = policy or AccessPolicy()
        self.hasher = PasswordHasher(password_params)
        self._clock = clock
        self._dummy: str | None = None
        self._dummy_lock = threading.Lock()
        self._dummy_key_hash = _sha256(secrets.token_urlsafe(32))

    def __repr__(self) -> str:
        return f"Access({self.store!r})"

    # -- plumbing ----------------------------------------------------------------------------

    def _now(self) -> datetime:
        now = self._clock()
        if now.tzinfo is None:
            raise AccessError("the clock returned a naive datetime; it must be timezone-aware")
        return now

    def _read(self, work: Callable[[Session], T]) -> T:
        """Run read-only ``work`` in a snapshot that does not take the write lock."""
        with self.store.db.read() as session:
            return work(session)

    def _write(self, work: Callable[[Session], T]) -> T:
        try:
            return self.store.db.write(work)
        except IntegrityError as exc:
            raise StoreError(
                f"the database refused the change ({exc.orig}); another process changed the "
                "same records: retry"
            ) from exc

    @property
    def dummy_hash(self) -> str:
        """The argon2id hash an unknown user's password is checked against (made once)."""
        with self._dummy_lock:
            if self._dummy is None:
                self._dummy = self.hasher.hash(secrets.token_urlsafe(24))
            return self._dummy

    def _record(
        self,
        action: str,
        actor: str,
        resource: str,
        outcome: str = "ok",
        *,
        source: str = "",
        details: dict[str, Any] | None = None,
    ) -> None:
        if self.audit is None:
            return
        from warden.audit.events import AuditEvent

        event = AuditEvent(
            action=action,
            actor=actor,
            resource=resource,
            outcome=outcome,
            source=source,
            details=details or {},
        )
        try:
            self.audit.record(event)
        except Exception as exc:
            raise StoreError(
                f"{action} on {resource}: its audit record could not be written ({exc}); "
                "check the database and run `warden audit verify`"
            ) from exc

    @contextmanager
    def _attempt(
        self, action: str, actor: str, resource: str, *, source: str = ""
    ) -> Iterator[dict[str, Any]]:
        """Audit an admin action: ``ok`` with the details the body fills in, or ``refused``
        (an AccessError) / ``error`` (another WardenError) with the message."""
        details: dict[str, Any] = {}
        try:
            yield details
        except AccessError as exc:
            msg = str(exc)[:_MAX_ERROR]
            self._record(action, actor, resource, "refused", source=source, details={"error": msg})
            raise
        except WardenError as exc:
            msg = str(exc)[:_MAX_ERROR]
            self._record(action, actor, resource, "error", source=source, details={"error": msg})
            raise
        else:
            self._record(action, actor, resource, "ok", source=source, details=details)

    # -- lookups -----------------------------------------------------------------------------

    @staticmethod
    def _user_row(session: Session, name: str, *, lock: bool = False) -> AccessUser:
        key = _name_key(name) if isinstance(name, str) else ""
        row = None
        if _USER_NAME.match(key):  # a name that cannot exist is not looked up (NUL bytes …)
            query = select(AccessUser).where(AccessUser.name_key == key)
            row = session.scalars(query.with_for_update() if lock else query).one_or_none()
        if row is None:
            raise AccessError(f"no user named {name!r}; `warden access user list` lists them")
        return row

    @staticmethod
    def _mfa_state(session: Session, user_id: int) -> Literal["enrolled", "pending", "none"]:
        confirmed = session.execute(
            select(AccessTotp.confirmed_at).where(AccessTotp.user_id == user_id)
        ).one_or_none()
        if confirmed is None:
            return "none"
        return "pending" if confirmed[0] is None else "enrolled"

    @staticmethod
    def _grants(session: Session, kind: str, subject_id: str) -> frozenset[str]:
        return frozenset(
            session.scalars(
                select(AccessGrant.model).where(
                    AccessGrant.subject_kind == kind, AccessGrant.subject_id == subject_id
                )
            )
        )

    def _user_info(self, session: Session, row: AccessUser) -> UserInfo:
        left = session.scalar(
            select(func.count())
            .select_from(AccessRecoveryCode)
            .where(AccessRecoveryCode.user_id == row.id, AccessRecoveryCode.used_at.is_(None))
        )
        return UserInfo(
            id=row.id,
            name=row.name,
            roles=tuple(sorted(row.roles)),
            plan=row.plan,
            disabled=row.disabled,
            mfa=self._mfa_state(session, row.id),
            recovery_codes_left=int(left or 0),
            models=tuple(sorted(self._grants(session, "user", str(row.id)))),
            locked_until=row.locked_until,
            failed_logins=row.failed_logins,
            lockouts=row.lockouts,
            created_at=row.created_at,
            created_by=row.created_by,
        )

    def _user_principal(
        self, session: Session, row: AccessUser, *, restricted: bool, expires_at: datetime | None
    ) -> Principal:
        roles = frozenset(row.roles)
        mfa = self._mfa_state(session, row.id)
        restricted = restricted or (ADMIN in roles and mfa != "enrolled")
        models = self._grants(session, "user", str(row.id))
        if ADMIN in roles:
            models |= {ALL_MODELS}
        return Principal(
            kind="user",
            id=str(row.id),
            name=row.name,
            roles=roles,
            permissions=frozenset() if restricted else permissions_of(roles),
            models=models,
            plan=row.plan,
            mfa=mfa,
            restricted=restricted,
            expires_at=expires_at,
        )

    # -- users -------------------------------------------------------------------------------

    def create_user(
        self,
        name: str,
        password: str,
        *,
        roles: Sequence[str] | str = (CLIENT,),
        plan: str = "default",
        actor: str,
    ) -> UserInfo:
        """A new user (name unique case-insensitively; the password must meet the policy)."""
        with self._attempt("access.user.create", actor, f"user:{_safe_actor(name)[0]}") as d:
            display = _check_user_name(name)
            role_list = _check_roles(roles)
            _check_plan(plan)
            text = check_password(password, display)
            hashed = self.hasher.hash(text)
            now = self._now()

            def work(session: Session) -> UserInfo:
                key = _name_key(display)
                taken = session.scalars(select(AccessUser.name).where(AccessUser.name_key == key))
                existing = taken.first()
                if existing is not None:
                    raise AccessError(
                        f"a user named {existing!r} already exists (names are case-insensitive)"
                    )
                row = AccessUser(
                    name=display,
                    name_key=key,
                    password_hash=hashed,
                    roles=role_list,
                    plan=plan,
                    disabled=False,
                    failed_logins=0,
                    lockouts=0,
                    password_changed_at=now,
                    created_at=now,
                    created_by=actor,
                )
                session.add(row)
                session.flush()
                return self._user_info(session, row)

            info = self._write(work)
            d.update(roles=list(info.roles), plan=plan)
        return info

    def get_user(self, name: str) -> UserInfo:
        """The user named ``name`` (AccessError if none)."""
        return self._read(lambda s: self._user_info(s, self._user_row(s, name)))

    def list_users(self) -> list[UserInfo]:
        """Every user, by name."""

        def work(session: Session) -> list[UserInfo]:
            rows = session.scalars(select(AccessUser).order_by(AccessUser.name_key))
            return [self._user_info(session, row) for row in rows]

        return self._read(work)

    def _enabled_admins(self, session: Session) -> list[int]:
        rows = session.execute(
            select(AccessUser.id, AccessUser.roles).where(AccessUser.disabled.is_(False))
        ).all()
        return [uid for uid, roles in rows if ADMIN in roles]

    def set_roles(self, name: str, roles: Sequence[str] | str, *, actor: str) -> UserInfo:
        """Replace the user's roles (refused if it would leave no enabled admin)."""
        with self._attempt("access.user.roles", actor, f"user:{_safe_actor(name)[0]}") as d:
            role_list = _check_roles(roles)

            def work(session: Session) -> tuple[list[str], UserInfo]:
                row = self._user_row(session, name, lock=True)
                before = sorted(row.roles)
                if ADMIN in before and ADMIN not in role_list and not row.disabled:
                    self._keep_an_admin(session, row.id, "remove the admin role from")
                row.roles = role_list
                session.flush()
                return before, self._user_info(session, row)

            before, info = self._write(work)
            d.update({"from": before, "to": role_list})
        return info

    def _keep_an_admin(self, session: Session, user_id: int, verb: str) -> None:
        if self._enabled_admins(session) == [user_id]:
            raise AccessError(
                f"cannot {verb} the last enabled admin; make another user admin first"
            )

    def disable_user(self, name: str, *, actor: str) -> UserInfo:
        """Disable the user: logins fail and every session of theirs is revoked."""
        return self._set_disabled(name, True, actor)

    def enable_user(self, name: str, *, actor: str) -> UserInfo:
        """Enable a disabled user again."""
        return self._set_disabled(name, False, actor)

    def _set_disabled(self, name: str, disabled: bool, actor: str) -> UserInfo:
        action = "access.user.disable" if disabled else "access.user.enable"
        with self._attempt(action, actor, f"user:{_safe_actor(name)[0]}") as d:
            now = self._now()

            def work(session: Session) -> tuple[int, UserInfo]:
                row = self._user_row(session, name, lock=True)
                revoked = 0
                if disabled:
                    if ADMIN in row.roles and not row.disabled:
                        self._keep_an_admin(session, row.id, "disable")
                    revoked = self._revoke_user_sessions(session, row.id, now)
                row.disabled = disabled
                session.flush()
                return revoked, self._user_info(session, row)

            revoked, info = self._write(work)
            if disabled:
                d["sessions_revoked"] = revoked
        return info

    def unlock_user(self, name: str, *, actor: str) -> UserInfo:
        """Clear a lockout and the failure counters."""
        with self._attempt("access.user.unlock", actor, f"user:{_safe_actor(name)[0]}"):

            def work(session: Session) -> UserInfo:
                row = self._user_row(session, name, lock=True)
                row.locked_until = None
                row.failed_logins = 0
                row.lockouts = 0
                session.flush()
                return self._user_info(session, row)

            info = self._write(work)
        return info

    def set_password(
        self, name: str, password: str, *, actor: str, current: str | None = None
    ) -> None:
        """Set a new password (policy-checked) and revoke every session of the user.

        With ``current`` (self-service), the current password must verify first; a wrong one
        is an :class:`AuthenticationError` and counts as a failed login.
        """
        with self._attempt("access.user.password", actor, f"user:{_safe_actor(name)[0]}") as d:
            display = self.get_user(name).name
            if current is not None:
                self.reauthenticate(name, current)
            text = check_password(password, display)
            hashed = self.hasher.hash(text)
            now = self._now()

            def work(session: Session) -> int:
                row = self._user_row(session, name, lock=True)
                row.password_hash = hashed
                row.password_changed_at = now
                return self._revoke_user_sessions(session, row.id, now)

            d.update(self_service=current is not None, sessions_revoked=self._write(work))

    def reauthenticate(self, name: str, password: str) -> None:
        """Check ``password`` as a login would (lockout and failure counting included) without
        making a session, e.g. before a sensitive change; AuthenticationError
        (:data:`LOGIN_FAILED`) if it does not verify."""
        self._password_step(name, password, self._now(), source="", action="access.reauth")

    # -- login -------------------------------------------------------------------------------

    def _snapshot(self, name: object) -> _UserSnap | None:
        if not isinstance(name, str) or len(name) > 200:
            return None
        key = _name_key(name)
        if not _USER_NAME.match(key):
            return None

        def work(session: Session) -> _UserSnap | None:
            row = session.scalars(
                select(AccessUser).where(AccessUser.name_key == key)
            ).one_or_none()
            if row is None:
                return None
            return _UserSnap(
                id=row.id,
                name=row.name,
                password_hash=row.password_hash,
                roles=tuple(row.roles),
                plan=row.plan,
                disabled=row.disabled,
                locked_until=row.locked_until,
                mfa=self._mfa_state(session, row.id),
            )

        return self._read(work)

    def _refuse(
        self,
        action: str,
        actor: str,
        source: str,
        reason: str,
        extra: dict[str, Any] | None = None,
    ) -> AuthenticationError:
        details = {"reason": reason, **(extra or {})}
        self._record(action, actor, f"user:{actor}", "refused", source=source, details=details)
        return AuthenticationError(LOGIN_FAILED)

    def _count_failure(self, user: _UserSnap, now: datetime, source: str) -> None:
        policy = self.policy

        def work(session: Session) -> tuple[int, datetime] | None:
            row = session.get(AccessUser, user.id, with_for_update=True)
            if row is None or (row.locked_until is not None and now < row.locked_until):
                return None
            row.locked_until = None  # an expired lockout
            row.failed_logins += 1
            if row.failed_logins < policy.max_failures:
                return None
            row.lockouts += 1
            row.failed_logins = 0
            row.locked_until = now + policy.lockout_for(row.lockouts)
            return row.lockouts, row.locked_until

        locked = self._write(work)
        if locked is not None:
            count, until = locked
            log.warning("user %s locked out until %s (lockout %d)", user.name, until, count)
            self._record(
                "access.lockout",
                user.name,
                f"user:{user.name}",
                "locked",
                source=source,
                details={
                    "lockouts": count,
                    "until": until.isoformat(),
                    "seconds": int((until - now).total_seconds()),
                },
            )

    def _password_step(
        self, name: object, password: object, now: datetime, *, source: str, action: str
    ) -> _UserSnap:
        """Check the name and password; the user's snapshot, or AuthenticationError (after
        auditing the refusal and counting the failure)."""
        user = self._snapshot(name)
        stored = user.password_hash if user is not None else self.dummy_hash
        text = password if isinstance(password, str) and len(password) <= 4 * 256 else ""
        ok = self.hasher.verify(stored, text) and bool(text)
        if user is None:
            actor, extra = _safe_actor(name)
            raise self._refuse(action, actor, source, "unknown-user", extra)
        if user.disabled:
            raise self._refuse(action, user.name, source, "disabled")
        if user.locked_until is not None and now < user.locked_until:
            raise self._refuse(action, user.name, source, "locked")
        if not ok:
            self._count_failure(user, now, source)
            raise self._refuse(action, user.name, source, "bad-password")
        if self.hasher.needs_rehash(user.password_hash):
            rehashed = self.hasher.hash(text)

            def store_rehash(session: Session) -> None:
                session.execute(
                    update(AccessUser)
                    .where(
                        AccessUser.id == user.id,
                        AccessUser.password_hash == user.password_hash,
                    )
                    .values(password_hash=rehashed)
                )

            self._write(store_rehash)
            log.info("re-hashed the password of %s with the current argon2id parameters", user.name)
        return user

    def login(
        self,
        name: str,
        password: str,
        totp: str | None = None,
        *,
        recovery_code: str | None = None,
        source: str = "",
    ) -> LoginResult:
        """Log in; see :class:`LoginResult` for the outcomes that are not failures.

        A user with MFA must also give a current TOTP code (``totp``) or an unused recovery
        code (``recovery_code``, then spent); without either the result is ``mfa-required``.
        Every failure is :class:`AuthenticationError` with :data:`LOGIN_FAILED`; wrong
        passwords and wrong codes count towards the lockout.
        """
        source = source[:200] if isinstance(source, str) else ""
        now = self._now()
        user = self._password_step(name, password, now, source=source, action="access.login")
        mfa_used = ""
        if user.mfa == "enrolled":
            if totp is None and recovery_code is None:
                self._record(
                    "access.login", user.name, f"user:{user.name}", "mfa-required", source=source
                )
                return LoginResult("mfa-required")
            if totp is not None:
                good, mfa_used = self._accept_totp(user.id, totp, now), "totp"
            else:
                good, mfa_used = self._use_recovery(user, recovery_code, now, source), "recovery"
            if not good:
                self._count_failure(user, now, source)
                raise self._refuse("access.login", user.name, source, f"bad-{mfa_used}-code")
        restricted = ADMIN in user.roles and user.mfa != "enrolled"
        kind = "mfa-enrol" if restricted else "full"
        token = secrets.token_urlsafe(32)
        expires = now + self.policy.session_absolute

        def work(session: Session) -> Principal:
            row = session.get(AccessUser, user.id, with_for_update=True)
            if row is None:  # pragma: no cover - users are never deleted
                raise AuthenticationError(LOGIN_FAILED)
            row.failed_logins = 0
            row.lockouts = 0
            row.locked_until = None
            session.add(
                AccessSession(
                    token_hash=_sha256(token),
                    user_id=user.id,
                    kind=kind,
                    source=source,
                    created_at=now,
                    last_seen_at=now,
                    expires_at=expires,
                )
            )
            session.flush()
            return self._user_principal(session, row, restricted=restricted, expires_at=expires)

        principal = self._write(work)
        status: Literal["ok", "mfa-enrolment-required"] = (
            "mfa-enrolment-required" if restricted else "ok"
        )
        details: dict[str, Any] = {"session": kind}
        if mfa_used:
            details["mfa"] = mfa_used
        self._record(
            "access.login", user.name, f"user:{user.name}", "ok", source=source, details=details
        )
        return LoginResult(status, token=token, principal=principal, expires_at=expires)

    # -- sessions ----------------------------------------------------------------------------

    def _session_row(
        self, session: Session, token: object, now: datetime
    ) -> tuple[AccessSession, AccessUser]:
        if not isinstance(token, str) or not token or len(token) > _MAX_TOKEN:
            raise AuthenticationError(SESSION_INVALID)
        digest = _sha256(token)
        row = session.scalars(
            select(AccessSession).where(AccessSession.token_hash == digest)
        ).one_or_none()
        if row is None or not hmac.compare_digest(row.token_hash, digest):
            raise AuthenticationError(SESSION_INVALID)
        user = session.get(AccessUser, row.user_id)
        if (
            user is None
            or user.disabled
            or row.revoked_at is not None
            or now >= row.expires_at
            or now >= row.last_seen_at + self.policy.session_idle
        ):
            raise AuthenticationError(SESSION_INVALID)
        return row, user

    def verify_session(self, token: str) -> Principal:
        """The principal of a live session token; AuthenticationError (:data:`SESSION_INVALID`)
        for an unknown, revoked, idle-expired or expired token or a disabled user. Roles and
        grants are read afresh, so changes apply to existing sessions at once."""
        now = self._now()

        def work(session: Session) -> tuple[Principal, int | None]:
            row, user = self._session_row(session, token, now)
            principal = self._user_principal(
                session, user, restricted=row.kind != "full", expires_at=row.expires_at
            )
            stale = now - row.last_seen_at >= self.policy.touch_interval
            return principal, row.id if stale else None

        principal, touch = self._read(work)
        if touch is not None:

            def bump(session: Session) -> None:
                session.execute(
                    update(AccessSession)
                    .where(AccessSession.id == touch, AccessSession.last_seen_at < now)
                    .values(last_seen_at=now)
                )

            self._write(bump)
        return principal

    def logout(self, token: str, *, source: str = "") -> bool:
        """Revoke the session ``token`` names; False if it was not a live session."""
        now = self._now()

        def work(session: Session) -> str | None:
            try:
                row, user = self._session_row(session, token, now)
            except AuthenticationError:
                return None
            row.revoked_at = now
            return user.name

        name = self._write(work)
        if name is not None:
            self._record("access.logout", name, f"user:{name}", source=source)
        return name is not None

    @staticmethod
    def _revoke_user_sessions(session: Session, user_id: int, now: datetime) -> int:
        result = session.execute(
            update(AccessSession)
            .where(AccessSession.user_id == user_id, AccessSession.revoked_at.is_(None))
            .values(revoked_at=now)
        )
        return int(getattr(result, "rowcount", 0) or 0)

    def revoke_sessions(self, name: str, *, actor: str) -> int:
        """Revoke every session of the user; how many were live."""
        with self._attempt("access.session.revoke", actor, f"user:{_safe_actor(name)[0]}") as d:
            now = self._now()

            def work(session: Session) -> int:
                row = self._user_row(session, name)
                return self._revoke_user_sessions(session, row.id, now)

            count = self._write(work)
            d["sessions_revoked"] = count
        return count

    # -- MFA ---------------------------------------------------------------------------------

    def enrol_totp(self, name: str, *, actor: str | None = None) -> TotpEnrolment:
        """A new TOTP secret for the user (replacing an unconfirmed one); confirm it with a
        code from the app (:meth:`confirm_totp`). Refused while MFA is enrolled (reset first).
        """
        who = actor or _safe_actor(name)[0]
        with self._attempt("access.mfa.enrol", who, f"user:{_safe_actor(name)[0]}"):
            secret = new_secret()
            master = self.store.keyring.current
            now = self._now()

            def work(session: Session) -> str:
                row = self._user_row(session, name, lock=True)
                if row.disabled:
                    raise AccessError(f"user {row.name!r} is disabled")
                existing = session.get(AccessTotp, row.id)
                if existing is not None and existing.confirmed_at is not None:
                    raise AccessError(
                        f"user {row.name!r} already has MFA; an admin must reset it "
                        "(`warden access mfa reset`) before a new enrolment"
                    )
                if existing is not None:
                    session.delete(existing)
                    session.flush()
                key_id, wrapped, sealed = seal_secret(master, row.id, secret)
                session.add(
                    AccessTotp(
                        user_id=row.id,
                        key_id=key_id,
                        wrapped_key=wrapped,
                        sealed_secret=sealed,
                        confirmed_at=None,
                        last_step=-1,
                        created_at=now,
                    )
                )
                return row.name

            display = self._write(work)
        return TotpEnrolment(
            secret=secret_to_base32(secret),
            uri=provisioning_uri(secret, display, self.policy.mfa_issuer),
        )

    def confirm_totp(self, name: str, code: str, *, actor: str | None = None) -> tuple[str, ...]:
        """Confirm a pending enrolment with a current code; the recovery codes (shown once,
        stored hashed). The user's restricted sessions are revoked: log in again with a code.
        """
        who = actor or _safe_actor(name)[0]
        with self._attempt("access.mfa.confirm", who, f"user:{_safe_actor(name)[0]}") as d:
            now = self._now()
            keyring = self.store.keyring
            codes = tuple(_new_recovery_code() for _ in range(RECOVERY_CODES))

            def work(session: Session) -> None:
                row = self._user_row(session, name, lock=True)
                totp_row = session.get(AccessTotp, row.id, with_for_update=True)
                if totp_row is None or totp_row.confirmed_at is not None:
                    raise AccessError(
                        f"user {row.name!r} has no pending MFA enrolment; start one first"
                    )
                secret = open_secret(
                    keyring, row.id, totp_row.key_id, totp_row.wrapped_key, totp_row.sealed_secret
                )
                step = match_step(secret, code, now.timestamp(), window=self.policy.totp_window)
                if step is None:
                    raise AccessError(
                        "the code does not match the new secret; check the device's clock and "
                        "enter the current 6-digit code"
                    )
                totp_row.confirmed_at = now
                totp_row.last_step = step
                session.execute(
                    delete(AccessRecoveryCode).where(AccessRecoveryCode.user_id == row.id)
                )
                for c in codes:
                    session.add(
                        AccessRecoveryCode(
                            user_id=row.id, code_hash=_recovery_hash(row.id, c), created_at=now
                        )
                    )
                session.execute(
                    update(AccessSession)
                    .where(
                        AccessSession.user_id == row.id,
                        AccessSession.kind == "mfa-enrol",
                        AccessSession.revoked_at.is_(None),
                    )
                    .values(revoked_at=now)
                )

            self._write(work)
            d["recovery_codes"] = len(codes)
        return codes

    def reset_mfa(self, name: str, *, actor: str) -> UserInfo:
        """Remove the user's TOTP secret and recovery codes and revoke their sessions."""
        with self._attempt("access.mfa.reset", actor, f"user:{_safe_actor(name)[0]}") as d:
            now = self._now()

            def work(session: Session) -> tuple[int, UserInfo]:
                row = self._user_row(session, name, lock=True)
                session.execute(delete(AccessTotp).where(AccessTotp.user_id == row.id))
                session.execute(
                    delete(AccessRecoveryCode).where(AccessRecoveryCode.user_id == row.id)
                )
                revoked = self._revoke_user_sessions(session, row.id, now)
                session.flush()
                return revoked, self._user_info(session, row)

            revoked, info = self._write(work)
            d["sessions_revoked"] = revoked
        return info

    def _accept_totp(self, user_id: int, code: object, now: datetime) -> bool:
        """Whether ``code`` is a current code of a step not accepted before (then recorded)."""
        if not isinstance(code, str) or len(code) > 20:
            return False
        keyring = self.store.keyring
        window = self.policy.totp_window

        def work(session: Session) -> bool:
            row = session.get(AccessTotp, user_id, with_for_update=True)
            if row is None or row.confirmed_at is None:
                return False
            secret = open_secret(keyring, user_id, row.key_id, row.wrapped_key, row.sealed_secret)
            step = match_step(secret, code, now.timestamp(), window=window)
            if step is None or step <= row.last_step:
                return False
            row.last_step = step
            return True

        return self._write(work)

    def _use_recovery(self, user: _UserSnap, code: object, now: datetime, source: str) -> bool:
        if not isinstance(code, str) or len(code) > 64:
            return False
        digest = _recovery_hash(user.id, code)

        def work(session: Session) -> int | None:
            row = session.scalars(
                select(AccessRecoveryCode).where(
                    AccessRecoveryCode.code_hash == digest,
                    AccessRecoveryCode.user_id == user.id,
                )
            ).one_or_none()
            if (
                row is None
                or row.used_at is not None
                or not hmac.compare_digest(row.code_hash, digest)
            ):
                return None
            result = session.execute(
                update(AccessRecoveryCode)
                .where(AccessRecoveryCode.id == row.id, AccessRecoveryCode.used_at.is_(None))
                .values(used_at=now)
            )
            if int(getattr(result, "rowcount", 0) or 0) != 1:
                return None
            left = session.scalar(
                select(func.count())
                .select_from(AccessRecoveryCode)
                .where(AccessRecoveryCode.user_id == user.id, AccessRecoveryCode.used_at.is_(None))
            )
            return int(left or 0)

        left = self._write(work)
        if left is None:
            return False
        self._record(
            "access.mfa.recovery",
            user.name,
            f"user:{user.name}",
            source=source,
            details={"codes_left": left},
        )
        return True

    # -- API keys ----------------------------------------------------------------------------

    @staticmethod
    def _key_info(session: Session, row: AccessApiKey) -> KeyInfo:
        return KeyInfo(
            id=row.id,
            name=row.name,
            role=row.role,
            models=tuple(sorted(Access._grants(session, "key", row.id))),
            plan=row.plan,
            created_at=row.created_at,
            created_by=row.created_by,
            expires_at=row.expires_at,
            revoked_at=row.revoked_at,
            replaced_by=row.replaced_by,
            grace_until=row.grace_until,
        )

    @staticmethod
    def _key_row(session: Session, key_id: str, *, lock: bool = False) -> AccessApiKey:
        text = key_id.strip() if isinstance(key_id, str) else ""
        if text.startswith(KEY_PREFIX):
            text = text[len(KEY_PREFIX) :].split("_", 1)[0]
        row = session.get(AccessApiKey, text, with_for_update=lock) if _KEY_ID.match(text) else None
        if row is None:
            raise AccessError(f"no API key with id {key_id!r}; `warden access key list` lists them")
        return row

    @staticmethod
    def _new_key(
        session: Session,
        *,
        name: str,
        role: str,
        plan: str,
        models: Sequence[str],
        expires_at: datetime | None,
        now: datetime,
        actor: str,
    ) -> tuple[str, AccessApiKey]:
        key_id = secrets.token_hex(8)
        secret = secrets.token_urlsafe(32)
        row = AccessApiKey(
            id=key_id,
            secret_hash=_sha256(secret),
            name=name,
            role=role,
            plan=plan,
            created_at=now,
            created_by=actor,
            expires_at=expires_at,
        )
        session.add(row)
        for model in models:
            session.add(
                AccessGrant(
                    subject_kind="key",
                    subject_id=key_id,
                    model=model,
                    created_at=now,
                    created_by=actor,
                )
            )
        session.flush()
        return f"{KEY_PREFIX}{key_id}_{secret}", row

    def issue_key(
        self,
        name: str,
        *,
        models: Sequence[str] | str,
        plan: str,
        role: str = CLIENT,
        expires_in: timedelta | None = None,
        actor: str,
    ) -> IssuedKey:
        """A new API key for ``models`` (``["*"]``: every model) on rate plan ``plan``.

        The token is in the result only; the store keeps the SHA-256 of its secret. API keys
        cannot hold the admin role (it requires MFA, which a key cannot do).
        """
        with self._attempt("access.key.issue", actor, "key:new") as d:
            label = name.strip() if isinstance(name, str) else ""
            if not label or len(label) > 200 or not label.isprintable():
                raise AccessError("an API key needs a name: 1-200 printable characters")
            model_list = _check_models(models)
            _check_plan(plan)
            if role not in ROLES or role == ADMIN:
                allowed = ", ".join(r for r in ROLES if r != ADMIN)
                raise AccessError(f"API key role {role!r}: expected one of {allowed}")
            if expires_in is not None and expires_in <= timedelta(0):
                raise AccessError("an API key's expiry must be in the future")
            now = self._now()
            expires_at = None if expires_in is None else now + expires_in

            def work(session: Session) -> tuple[str, KeyInfo]:
                token, row = self._new_key(
                    session,
                    name=label,
                    role=role,
                    plan=plan,
                    models=model_list,
                    expires_at=expires_at,
                    now=now,
                    actor=actor,
                )
                return token, self._key_info(session, row)

            token, info = self._write(work)
            d.update(
                key=info.id,
                name=label,
                role=role,
                models=model_list,
                plan=plan,
                expires_at=None if expires_at is None else expires_at.isoformat(),
            )
        return IssuedKey(token=token, info=info)

    def get_key(self, key_id: str) -> KeyInfo:
        """The key with this id (or the id part of a full ``wdn_…`` token)."""
        return self._read(lambda s: self._key_info(s, self._key_row(s, key_id)))

    def list_keys(self, *, include_inactive: bool = False) -> list[KeyInfo]:
        """API keys by creation time; without ``include_inactive`` only those still working."""
        now = self._now()

        def work(session: Session) -> list[KeyInfo]:
            rows = session.scalars(
                select(AccessApiKey).order_by(AccessApiKey.created_at, AccessApiKey.id)
            )
            infos = [self._key_info(session, row) for row in rows]
            if include_inactive:
                return infos
            return [k for k in infos if k.status(now) in ("active", "grace")]

        return self._read(work)

    def rotate_key(self, key_id: str, *, grace: timedelta | None = None, actor: str) -> IssuedKey:
        """A new key with the old one's name, role, plan, models and lifetime; the old one keeps
        working for ``grace`` (default :attr:`AccessPolicy.key_grace`), then stops."""
        with self._attempt("access.key.rotate", actor, _res(f"key:{key_id}")) as d:
            wait = self.policy.key_grace if grace is None else grace
            if wait < timedelta(0):
                raise AccessError("the grace period cannot be negative")
            now = self._now()

            def work(session: Session) -> tuple[str, KeyInfo, datetime]:
                old = self._key_row(session, key_id, lock=True)
                status = self._key_info(session, old).status(now)
                if old.replaced_by is not None:
                    raise AccessError(
                        f"API key {old.id} was already rotated (to {old.replaced_by}); rotate "
                        "that one instead"
                    )
                if status != "active":
                    raise AccessError(f"API key {old.id} is {status}; issue a new key instead")
                lifetime = None if old.expires_at is None else old.expires_at - old.created_at
                token, new = self._new_key(
                    session,
                    name=old.name,
                    role=old.role,
                    plan=old.plan,
                    models=sorted(self._grants(session, "key", old.id)),
                    expires_at=None if lifetime is None else now + lifetime,
                    now=now,
                    actor=actor,
                )
                until = now + wait
                if old.expires_at is not None:
                    until = min(until, old.expires_at)
                old.replaced_by = new.id
                old.grace_until = until
                return token, self._key_info(session, new), until

            token, info, until = self._write(work)
            d.update(new_key=info.id, grace_until=until.isoformat())
        return IssuedKey(token=token, info=info)

    def revoke_key(self, key_id: str, *, actor: str) -> KeyInfo:
        """Revoke the key now (it stops working at once)."""
        with self._attempt("access.key.revoke", actor, _res(f"key:{key_id}")):
            now = self._now()

            def work(session: Session) -> KeyInfo:
                row = self._key_row(session, key_id, lock=True)
                if row.revoked_at is None:
                    row.revoked_at = now
                session.flush()
                return self._key_info(session, row)

            info = self._write(work)
        return info

    def authenticate_key(self, token: str) -> Principal:
        """The principal of an API key token (``wdn_<id>_<secret>``); AuthenticationError
        (:data:`KEY_INVALID`) for a malformed, unknown, wrong, expired, revoked or rotated-out
        key. The secret's hash is compared in constant time."""
        now = self._now()
        key_id, secret = "", ""
        if isinstance(token, str) and len(token) <= _MAX_TOKEN and token.startswith(KEY_PREFIX):
            key_id, _, secret = token[len(KEY_PREFIX) :].partition("_")
        well_formed = bool(_KEY_ID.match(key_id)) and bool(_KEY_SECRET.match(secret))
        digest = _sha256(secret)

        rows: list[Any] = []
        if well_formed:  # one compiled statement: the key and its grants (outer join)
            with self.store.db.read_connection() as conn:
                rows = list(conn.execute(_KEY_WITH_GRANTS, {"key_id": key_id}))
        row = rows[0] if rows else None
        expected = row.secret_hash if row is not None else self._dummy_key_hash
        matches = hmac.compare_digest(expected, digest)
        if row is None or not matches:
            raise AuthenticationError(KEY_INVALID)
        # the rules of KeyInfo.status: only "active" and "grace" keys authenticate
        if row.revoked_at is not None:
            raise AuthenticationError(KEY_INVALID)
        if row.expires_at is not None and now >= row.expires_at:
            raise AuthenticationError(KEY_INVALID)
        if row.grace_until is not None and now >= row.grace_until:
            raise AuthenticationError(KEY_INVALID)
        ends = [t for t in (row.expires_at, row.grace_until) if t is not None]
        roles = frozenset({row.role})
        return Principal(
            kind="key",
            id=row.id,
            name=row.name,
            roles=roles,
            permissions=permissions_of(roles),
            models=frozenset(r.model for r in rows if r.model is not None),
            plan=row.plan,
            mfa="not-applicable",
            expires_at=min(ends) if ends else None,
        )

    # -- grants ------------------------------------------------------------------------------

    def _subject(self, session: Session, subject: str) -> tuple[str, str, str]:
        """``(kind, subject_id, display)`` for ``NAME``, ``user:NAME`` or ``key:ID``."""
        text = subject.strip() if isinstance(subject, str) else ""
        if text.startswith("key:") or text.startswith(KEY_PREFIX):
            row = self._key_row(session, text.removeprefix("key:"))
            return "key", row.id, f"key:{row.id}"
        user = self._user_row(session, text.removeprefix("user:"))
        return "user", str(user.id), f"user:{user.name}"

    def grant(self, subject: str, model: str, *, actor: str) -> GrantInfo:
        """Allow ``subject`` (a user name, ``user:NAME`` or ``key:ID``) to use ``model``
        (``*``: every model). Granting twice is harmless."""
        with self._attempt("access.grant", actor, _res(subject)) as d:
            name = _check_model(model)
            now = self._now()

            def work(session: Session) -> GrantInfo:
                kind, sid, display = self._subject(session, subject)
                row = session.scalars(
                    select(AccessGrant).where(
                        AccessGrant.subject_kind == kind,
                        AccessGrant.subject_id == sid,
                        AccessGrant.model == name,
                    )
                ).one_or_none()
                if row is None:
                    row = AccessGrant(
                        subject_kind=kind,
                        subject_id=sid,
                        model=name,
                        created_at=now,
                        created_by=actor,
                    )
                    session.add(row)
                    session.flush()
                return GrantInfo(display, name, row.created_at, row.created_by)

            info = self._write(work)
            d.update(subject=info.subject, model=name)
        return info

    def revoke_grant(self, subject: str, model: str, *, actor: str) -> None:
        """Remove ``subject``'s grant for ``model`` (AccessError if there is none)."""
        with self._attempt("access.grant.revoke", actor, _res(subject)) as d:
            name = _check_model(model)

            def work(session: Session) -> str:
                kind, sid, display = self._subject(session, subject)
                result = session.execute(
                    delete(AccessGrant).where(
                        AccessGrant.subject_kind == kind,
                        AccessGrant.subject_id == sid,
                        AccessGrant.model == name,
                    )
                )
                if not int(getattr(result, "rowcount", 0) or 0):
                    raise AccessError(f"{display} has no grant for model {name!r}")
                return display

            d.update(subject=self._write(work), model=name)

    def list_grants(self) -> list[GrantInfo]:
        """Every grant, by subject and model."""

        def work(session: Session) -> list[GrantInfo]:
            users = {
                uid: name for uid, name in session.execute(select(AccessUser.id, AccessUser.name))
            }
            out = []
            for row in session.scalars(select(AccessGrant)):
                if row.subject_kind == "user":
                    display = f"user:{users.get(int(row.subject_id), row.subject_id)}"
                else:
                    display = f"key:{row.subject_id}"
                out.append(GrantInfo(display, row.model, row.created_at, row.created_by))
            return sorted(out, key=lambda g: (g.subject, g.model))

        return self._read(work)

    # -- authorization -----------------------------------------------------------------------

    @staticmethod
    def authorize(principal: Principal, permission: str, model: str | None = None) -> None:
        """See :func:`warden.access.roles.authorize` (deny by default)."""
        authorize(principal, permission, model)
