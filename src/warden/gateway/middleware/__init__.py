"""Cross-cutting gateway concerns as plain ASGI middleware, one concern per file.

Each class wraps an ASGI app (``Middleware(app, **options)``), passes non-HTTP scopes through,
and never buffers a response. Suggested order, outermost first::

    SecurityHeadersMiddleware → MetricsMiddleware → BodyLimitMiddleware → app

(headers on every answer including the 413s; metrics count the 413s too).
"""

from warden.gateway.middleware.body_limit import BodyLimitMiddleware
from warden.gateway.middleware.metrics import MetricsMiddleware
from warden.gateway.middleware.security_headers import SecurityHeadersMiddleware

__all__ = ["BodyLimitMiddleware", "MetricsMiddleware", "SecurityHeadersMiddleware"]
