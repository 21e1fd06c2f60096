"""Warden's one error tree.

Every error Warden raises on purpose is a :class:`WardenError`; third-party errors are
translated at the boundary (``raise DataError(...) from exc``). The CLI turns any
``WardenError`` into a one-line message and exit code 2.

::

    WardenError
    ├── AccessError              an access-control request is invalid (unknown user or key,
    │   │                        a password the policy refuses, a name taken twice)
    │   ├── AuthenticationError      credentials are wrong, expired, revoked or locked out (one
    │   │                            fixed message whatever the reason: no enumeration)
    │   └── PermissionDenied         authenticated, but lacking the permission or model grant
    ├── ConfigError              a setting, suite file or option is invalid
    ├── DataError                a dataset file or array is malformed (names the file/row)
    ├── GatewayError             the gateway refused a request (carries its HTTP status)
    │   ├── InvalidRequest           malformed, oversized or invalid request body (400/413/422)
    │   ├── RateLimited              a key's rate limit or daily quota is spent (429)
    │   ├── GuardBlocked             an input guard blocked the request (403)
    │   └── BackendUnavailable       shared state (Redis) cannot be reached; fail closed (503)
    ├── ModelError               a model cannot be loaded, built or queried
    │   ├── ModelLoadError           the artifact is unreadable or its spec is wrong
    │   ├── UnsafeModelError         loading would execute code (pickle) and was refused
    │   ├── ModelQueryError          a remote model answered with an error or garbage
    │   └── QueryBudgetExceeded      a model's query budget is spent
    ├── InputShapeError          an input batch does not match the model (shape/dtype/NaN)
    ├── AttackError              attack settings are invalid or the attack cannot run
    ├── NotFittedError           a detector was used before ``fit``
    ├── RegistryError            a name is registered twice or is unknown
    │   └── LifecycleError           a model-version state change is not allowed
    │       └── GateRefused              a policy gate refused (missing or stale evidence)
    ├── ReportError              a report cannot be rendered or written
    ├── SignatureError           a signature, key or signed manifest is invalid or does not verify
    └── StoreError               the database, blob store or a backup cannot be used
        ├── MasterKeyError           the master key is missing, malformed or not the right one
        ├── TamperError              stored bytes or a wrapped key fail authentication
        └── BackupError              a backup file is malformed, incomplete or altered

Messages say what was expected, what was found, and what to do.
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = [
    "AccessError",
    "AttackError",
    "AuthenticationError",
    "BackendUnavailable",
    "BackupError",
    "ConfigError",
    "DataError",
    "GateRefused",
    "GatewayError",
    "GuardBlocked",
    "InputShapeError",
    "InvalidRequest",
    "LifecycleError",
    "MasterKeyError",
    "ModelError",
    "ModelLoadError",
    "ModelQueryError",
    "NotFittedError",
    "PermissionDenied",
    "QueryBudgetExceeded",
    "RateLimited",
    "RegistryError",
    "ReportError",
    "SignatureError",
    "StoreError",
    "TamperError",
    "UnsafeModelError",
    "WardenError",
]


class WardenError(Exception):
    """Base class of every error Warden raises on purpose."""


class ConfigError(WardenError):
    """A setting, suite file or option is invalid."""


class DataError(WardenError):
    """A dataset file or array is malformed."""


class ModelError(WardenError):
    """A model cannot be loaded, built or queried."""


class ModelLoadError(ModelError):
    """A model artifact is unreadable or its spec is wrong."""


class UnsafeModelError(ModelError):
    """Loading the artifact would execute code (pickle) and was refused."""


class ModelQueryError(ModelError):
    """A remote model answered with an error status or an unreadable body."""


class QueryBudgetExceeded(ModelError):
    """A model's query budget is spent; no query was sent."""


class InputShapeError(WardenError, ValueError):
    """An input batch does not match what the model expects."""


class AttackError(WardenError):
    """Attack settings are invalid or the attack cannot run on this model."""


class NotFittedError(WardenError):
    """A fitted object (detector) was used before ``fit``."""


class RegistryError(WardenError, KeyError):
    """A name is registered twice, or looked up and not found."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class ReportError(WardenError):
    """A report cannot be rendered or written."""


class SignatureError(WardenError):
    """A signature, key or signed manifest is invalid, or the signed files do not verify."""


class LifecycleError(RegistryError):
    """A model-version state change is not allowed from its current state."""


class GateRefused(LifecycleError):
    """A policy gate refused a transition because its evidence is missing, failing or stale.

    ``failures`` names each gate that refused and why, one line each.
    """

    def __init__(self, message: str, failures: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.failures = failures


class StoreError(WardenError):
    """The database, the blob store or a backup cannot be opened, read or written."""


class MasterKeyError(StoreError):
    """The master key is missing, malformed, or not the key that wrapped the stored data keys."""


class TamperError(StoreError):
    """Stored bytes or a wrapped data key fail authentication: they were altered or swapped."""


class BackupError(StoreError):
    """A backup file is malformed, incomplete, or does not match its integrity manifest."""


class GatewayError(WardenError):
    """A request was refused by the gateway; ``status_code`` and ``headers`` make the response."""

    status_code: int = 400

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        if status_code is not None:
            self.status_code = status_code
        self.headers: dict[str, str] = dict(headers or {})


class InvalidRequest(GatewayError, ValueError):
    """The request body is malformed (400), too large (413) or fails validation (422)."""

    status_code = 422


class RateLimited(GatewayError):
    """The caller's rate limit or daily quota is spent (429, with ``Retry-After``)."""

    status_code = 429


class GuardBlocked(GatewayError):
    """An input guard blocked the request (403); the detail names the guard, not its internals."""

    status_code = 403


class BackendUnavailable(GatewayError):
    """Shared gateway state (the Redis rate-limit store) cannot be reached: refused, 503."""

    status_code = 503


class AccessError(WardenError):
    """An access-control request is invalid: unknown user or key, refused password, …"""


class AuthenticationError(AccessError):
    """Credentials are wrong, expired, revoked or locked out; the message never says which."""


class PermissionDenied(AccessError):
    """The principal is authenticated but lacks the permission or the model grant."""
