"""Standard security headers on every HTTP response, and no ``Server`` header.

Added unless the app set the header itself (a docs page may need its own
``Content-Security-Policy``): ``X-Content-Type-Options: nosniff``, ``X-Frame-Options: DENY``,
``Referrer-Policy: no-referrer``, ``Content-Security-Policy: default-src 'none';
frame-ancestors 'none'`` and ``Cache-Control: no-store``; ``Strict-Transport-Security`` only on
TLS connections (scope scheme ``https``), where browsers honour it. A ``Server`` header set by
the app is removed; uvicorn's own is turned off with ``server_header=False``.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["DEFAULT_CSP", "SecurityHeadersMiddleware"]

DEFAULT_CSP = "default-src 'none'; frame-ancestors 'none'"
"""An API answers data, never pages: nothing may load, nothing may frame it."""


class SecurityHeadersMiddleware:
    """Adds security headers to every response (see the module docstring)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        hsts_max_age: int = 31_536_000,
        hsts_include_subdomains: bool = True,
        content_security_policy: str = DEFAULT_CSP,
    ) -> None:
        self.app = app
        base = {
            b"x-content-type-options": b"nosniff",
            b"x-frame-options": b"DENY",
            b"referrer-policy": b"no-referrer",
            b"content-security-policy": content_security_policy.encode("latin-1"),
            b"cache-control": b"no-store",
        }
        hsts = f"max-age={hsts_max_age}"
        if hsts_include_subdomains:
            hsts += "; includeSubDomains"
        self._plain = list(base.items())
        self._tls = [*self._plain, (b"strict-transport-security", hsts.encode("latin-1"))]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = self._tls if scope.get("scheme") == "https" else self._plain

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"server"]
                present = {k.lower() for k, _ in headers}
                headers.extend((k, v) for k, v in extra if k not in present)
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)
