"""Authentication and authorization: users, argon2id passwords, TOTP MFA, sessions, API keys,
roles and per-model grants.

::

    from warden.access import Access, MODELS_PREDICT

    access = Access(store, audit=audit_log)
    access.create_user("alice", "correct horse battery", roles=["client"], actor="ops")
    result = access.login("alice", "correct horse battery")       # LoginResult
    principal = access.verify_session(result.token)               # Principal
    access.authorize(principal, MODELS_PREDICT, model="fraud")    # or PermissionDenied

Importing this package opens nothing. See docs/access.md for the rules (policy, lockout, MFA,
sessions, keys, the role table).
"""

from warden.access.errors import AccessError, AuthenticationError, PermissionDenied
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
    ALL_PERMISSIONS,
    AUDIT_READ,
    AUDITOR,
    CLIENT,
    KEYS_ADMIN,
    METRICS_READ,
    ML_ENGINEER,
    MODELS_PREDICT,
    MODELS_READ,
    REGISTRY_DEPLOY,
    REGISTRY_READ,
    REGISTRY_WRITE,
    ROLE_PERMISSIONS,
    ROLES,
    USERS_ADMIN,
    Principal,
    authorize,
    permissions_of,
)
from warden.access.sealing import rewrap_wrapped_keys, wrapped_key_ids
from warden.access.service import (
    KEY_INVALID,
    KEY_PREFIX,
    LOGIN_FAILED,
    RECOVERY_CODES,
    SESSION_INVALID,
    Access,
)

__all__ = [
    "ADMIN",
    "ALL_MODELS",
    "ALL_PERMISSIONS",
    "AUDITOR",
    "AUDIT_READ",
    "CLIENT",
    "KEYS_ADMIN",
    "KEY_INVALID",
    "KEY_PREFIX",
    "LOGIN_FAILED",
    "METRICS_READ",
    "ML_ENGINEER",
    "MODELS_PREDICT",
    "MODELS_READ",
    "RECOVERY_CODES",
    "REGISTRY_DEPLOY",
    "REGISTRY_READ",
    "REGISTRY_WRITE",
    "ROLES",
    "ROLE_PERMISSIONS",
    "SESSION_INVALID",
    "USERS_ADMIN",
    "Access",
    "AccessError",
    "AccessPolicy",
    "AuthenticationError",
    "GrantInfo",
    "IssuedKey",
    "KeyInfo",
    "LoginResult",
    "PasswordHasher",
    "PasswordParams",
    "PermissionDenied",
    "Principal",
    "TotpEnrolment",
    "UserInfo",
    "authorize",
    "check_password",
    "permissions_of",
    "rewrap_wrapped_keys",
    "wrapped_key_ids",
]
