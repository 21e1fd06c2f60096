"""Errors the gateway raises on purpose; each carries the HTTP status it maps to.

They live in the one error tree (:mod:`warden.errors`); this module re-exports them for the
gateway's code. The app turns any ``GatewayError`` into ``{"detail": str(exc)}`` with
``exc.status_code`` and ``exc.headers``.
"""

from warden.errors import (
    BackendUnavailable,
    GatewayError,
    GuardBlocked,
    InvalidRequest,
    RateLimited,
)

__all__ = ["BackendUnavailable", "GatewayError", "GuardBlocked", "InvalidRequest", "RateLimited"]
