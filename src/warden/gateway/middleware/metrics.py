"""Count every HTTP request and time it, labelled by route template, model and status.

The route label is read from the scope after the app has routed it (Starlette and FastAPI set
``scope["route"]``), so ``/v1/models/digits/predict`` counts as
``/v1/models/{name}/predict``; a request no route matched counts as ``<unmatched>``. The model
label is what the app set with :func:`~warden.gateway.metrics.set_model_label`, else empty. An
app that raises before answering counts as 500 (and the error propagates).
"""

from __future__ import annotations

import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from warden.gateway.metrics import MODEL_LABEL_KEY, GatewayMetrics

__all__ = ["UNMATCHED", "MetricsMiddleware", "route_label"]

UNMATCHED = "<unmatched>"
"""Route label of requests no route matched (404s): never the raw path."""


def route_label(scope: Scope, root_path: str = "") -> str:
    """The matched route's template (with any mount prefix), or :data:`UNMATCHED`."""
    route: Any = scope.get("route")
    template = getattr(route, "path_format", None) or getattr(route, "path", None)
    if not isinstance(template, str):
        return UNMATCHED
    mount = str(scope.get("root_path", ""))[len(root_path) :]
    return mount + template


class MetricsMiddleware:
    """Feeds :class:`GatewayMetrics`' request counter, latency histogram and in-flight gauge."""

    def __init__(self, app: ASGIApp, metrics: GatewayMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        root_path = str(scope.get("root_path", ""))
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        self.metrics.in_flight.inc()
        try:
            await self.app(scope, receive, send_status)
        finally:
            self.metrics.in_flight.dec()
            self.metrics.observe_request(
                route_label(scope, root_path),
                str(scope.get("method", "")),
                str(scope.get(MODEL_LABEL_KEY, "")),
                status,
                time.perf_counter() - start,
            )
