"""Refuse request bodies larger than a limit with 413, before the app reads them.

A declared ``Content-Length`` above the limit is refused up front (an unreadable one with 400);
a body sent without one (chunked) is counted as it streams, and the app is stopped with
413 as soon as the count passes the limit: it never sees more than ``max_bytes``. Whatever the
app had started to answer by then is dropped in favour of the 413, unless its response had
already begun (then the connection is cut, as nothing else is honest).
"""

from __future__ import annotations

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from warden.errors import ConfigError

__all__ = ["BodyLimitMiddleware"]


class _TooLarge(Exception):
    """Raised from ``receive`` to stop the app once the body passes the limit."""


class BodyLimitMiddleware:
    """413 for request bodies over ``max_bytes`` (declared or streamed)."""

    def __init__(self, app: ASGIApp, max_bytes: int = 1 << 20) -> None:
        if not isinstance(max_bytes, int) or max_bytes < 0:
            raise ConfigError(f"body limit: max_bytes must be an integer >= 0, found {max_bytes!r}")
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        lengths = [v for k, v in scope["headers"] if k == b"content-length"]
        if lengths:
            if len(set(lengths)) != 1 or not lengths[0].isdigit():
                await _reject(400, "Content-Length must be one non-negative integer", send)
                return
            if int(lengths[0]) > self.max_bytes:
                await _reject(413, self._message(), send)
                return
        received = 0
        too_large = started = False

        async def limited_receive() -> Message:
            nonlocal received, too_large
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    too_large = True
                    raise _TooLarge
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if too_large:
                return  # the app's answer to a cut-off body is replaced by the 413
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except Exception:
            if not too_large or started:
                raise
        if too_large and not started:
            await _reject(413, self._message(), send)

    def _message(self) -> str:
        return f"request body is larger than the limit of {self.max_bytes} bytes"


async def _reject(status: int, detail: str, send: Send) -> None:
    response = JSONResponse({"detail": detail}, status_code=status, headers={"Connection": "close"})
    await response({"type": "http"}, _no_receive, send)


async def _no_receive() -> Message:  # pragma: no cover - responses do not read the request
    return {"type": "http.disconnect"}
