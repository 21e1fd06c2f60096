"""Access-control errors; they live in the one error tree (:mod:`warden.errors`)."""

from warden.errors import AccessError, AuthenticationError, PermissionDenied

__all__ = ["AccessError", "AuthenticationError", "PermissionDenied"]
