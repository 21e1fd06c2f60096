"""Errors the gateway raises on purpose; each carries the HTTP status it maps to.

Part of the one error tree (drawn in :mod:`warden.errors`; move them there if preferred)::

    WardenError
    └── GatewayError             a request was refused by the gateway (carries its HTTP status)
        ├── InvalidRequest           malformed, oversized or invalid request body (400/413/422)
        ├── RateLimited              a key's rate limit or daily quota is spent (429)
        ├── GuardBlocked             an input guard blocked the request (403)
        └── BackendUnavailable       shared state (Redis) cannot be reached; fail closed (503)

The app turns any ``GatewayError`` into ``{"detail": str(exc)}`` with ``exc.status_code`` and
``exc.headers``.
"""

from __future__ import annotations

from collections.abc import Mapping

from warden.errors import WardenError

__all__ = ["BackendUnavailable", "GatewayError", "GuardBlocked", "InvalidRequest", "RateLimited"]


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
