"""Body limit, security headers and metrics middleware: raw ASGI calls and httpx over FastAPI."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from starlette.types import Message, Receive, Scope, Send
from tests.gateway.conftest import call_asgi, http_scope

from warden.errors import ConfigError
from warden.gateway.metrics import GatewayMetrics, set_model_label
from warden.gateway.middleware import (
    BodyLimitMiddleware,
    MetricsMiddleware,
    SecurityHeadersMiddleware,
)
from warden.gateway.middleware.body_limit import _TooLarge
from warden.gateway.middleware.metrics import UNMATCHED


class Echo:
    """A tiny ASGI app: reads the whole body, answers its length; records what it saw."""

    def __init__(self, headers: list[tuple[bytes, bytes]] | None = None) -> None:
        self.calls = 0
        self.seen = 0
        self.headers = headers or []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.calls += 1
        more = True
        while more:
            message = await receive()
            self.seen += len(message.get("body", b""))
            more = message.get("more_body", False)
        await send({"type": "http.response.start", "status": 200, "headers": self.headers})
        await send({"type": "http.response.body", "body": str(self.seen).encode()})


def cl(n: int) -> list[tuple[bytes, bytes]]:
    return [(b"content-length", str(n).encode())]


# --- body limit -----------------------------------------------------------------------------


def test_declared_length_over_limit_is_refused_before_the_app() -> None:
    app = Echo()
    answer = call_asgi(BodyLimitMiddleware(app, max_bytes=10), http_scope(headers=cl(11)))
    assert answer.status == 413 and app.calls == 0
    assert answer.body == b'{"detail":"request body is larger than the limit of 10 bytes"}'


@pytest.mark.parametrize("value", [b"abc", b"-1", b"1 ", b""])
def test_unreadable_length_is_a_400(value: bytes) -> None:
    app = Echo()
    answer = call_asgi(
        BodyLimitMiddleware(app, 10), http_scope(headers=[(b"content-length", value)])
    )
    assert answer.status == 400 and app.calls == 0


def test_conflicting_lengths_are_a_400() -> None:
    answer = call_asgi(BodyLimitMiddleware(Echo(), 10), http_scope(headers=cl(1) + cl(2)))
    assert answer.status == 400


def test_streamed_body_is_cut_at_the_limit() -> None:
    app = Echo()
    chunks = [b"x" * 4] * 5  # 20 bytes, no Content-Length
    answer = call_asgi(BodyLimitMiddleware(app, max_bytes=10), http_scope(), chunks)
    assert answer.status == 413 and app.seen <= 10


def test_body_at_the_limit_passes() -> None:
    app = Echo()
    answer = call_asgi(BodyLimitMiddleware(app, 12), http_scope(headers=cl(12)), [b"x" * 6] * 2)
    assert (answer.status, answer.body) == (200, b"12")


def test_lying_content_length_is_still_counted() -> None:
    app = Echo()
    answer = call_asgi(BodyLimitMiddleware(app, 10), http_scope(headers=cl(5)), [b"x" * 8] * 2)
    assert answer.status == 413


def test_app_that_swallows_the_error_still_answers_413() -> None:
    async def stubborn(scope: Scope, receive: Receive, send: Send) -> None:
        # A misbehaving app under test: it swallows the middleware's error and answers 200.
        with contextlib.suppress(Exception):
            while (await receive()).get("more_body"):
                pass
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    answer = call_asgi(BodyLimitMiddleware(stubborn, 5), http_scope(), [b"123", b"456", b""])
    assert answer.status == 413


def test_response_already_started_cuts_the_connection() -> None:
    async def early(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        while (await receive()).get("more_body"):
            pass

    with pytest.raises(_TooLarge):
        call_asgi(BodyLimitMiddleware(early, 5), http_scope(), [b"123", b"456", b""])


def test_non_http_scopes_pass_through() -> None:
    seen: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope["type"])

    async def nothing() -> Message:
        return {}

    async def drop(message: Message) -> None:
        pass

    for mw in (BodyLimitMiddleware(app, 0), SecurityHeadersMiddleware(app),
               MetricsMiddleware(app, GatewayMetrics())):  # fmt: skip
        asyncio.run(mw({"type": "lifespan"}, nothing, drop))
    assert seen == ["lifespan"] * 3


def test_bad_limit_is_refused() -> None:
    with pytest.raises(ConfigError, match="max_bytes must be an integer >= 0"):
        BodyLimitMiddleware(Echo(), -1)


# --- security headers -----------------------------------------------------------------------


def test_headers_on_plain_http_without_hsts() -> None:
    answer = call_asgi(SecurityHeadersMiddleware(Echo([(b"server", b"uvicorn")])), http_scope())
    assert answer.header("x-content-type-options") == "nosniff"
    assert answer.header("x-frame-options") == "DENY"
    assert answer.header("referrer-policy") == "no-referrer"
    assert answer.header("content-security-policy") == "default-src 'none'; frame-ancestors 'none'"
    assert answer.header("cache-control") == "no-store"
    assert answer.header("strict-transport-security") is None
    assert answer.header("server") is None


def test_hsts_on_tls() -> None:
    answer = call_asgi(SecurityHeadersMiddleware(Echo()), http_scope(scheme="https"))
    assert answer.header("strict-transport-security") == "max-age=31536000; includeSubDomains"


def test_app_set_header_is_kept() -> None:
    app = Echo([(b"Content-Security-Policy", b"default-src 'self'")])
    answer = call_asgi(SecurityHeadersMiddleware(app), http_scope())
    values = [v for k, v in answer.headers if k.lower() == b"content-security-policy"]
    assert values == [b"default-src 'self'"]


# --- metrics --------------------------------------------------------------------------------


def sample(metrics: GatewayMetrics, name: str, labels: dict[str, str]) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


def build_app(metrics: GatewayMetrics, max_bytes: int = 1000) -> Any:
    api = FastAPI()

    @api.post("/v1/models/{name}/predict")
    async def predict(name: str, request: Request) -> dict[str, int]:
        if name == "explode":
            raise RuntimeError("model crashed")
        set_model_label(request.scope, name)
        return {"bytes": len(await request.body())}

    app: Any = BodyLimitMiddleware(api, max_bytes)
    app = MetricsMiddleware(app, metrics)
    return SecurityHeadersMiddleware(app)


def test_stack_over_fastapi_with_httpx() -> None:
    metrics = GatewayMetrics()
    transport = httpx.ASGITransport(app=build_app(metrics), raise_app_exceptions=False)

    async def chunked() -> AsyncIterator[bytes]:
        for _ in range(30):
            yield b"x" * 100

    async def run() -> list[httpx.Response]:
        async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
            return [
                await client.post("/v1/models/digits/predict", content=b"{}"),
                await client.post("/v1/models/wine/predict", content=b"{}"),
                await client.post("/v1/models/digits/predict", content=b"x" * 1001),
                await client.post("/v1/models/digits/predict", content=chunked()),
                await client.get("/no/such/path/123"),
                await client.post("/v1/models/explode/predict", content=b"{}"),
            ]

    ok, ok2, big, streamed, missing, crashed = asyncio.run(run())
    assert (ok.status_code, ok.json()) == (200, {"bytes": 2}) and ok2.status_code == 200
    assert big.status_code == 413 and streamed.status_code == 413
    assert missing.status_code == 404 and crashed.status_code == 500
    assert big.headers["x-frame-options"] == "DENY" and "server" not in ok.headers

    route = "/v1/models/{name}/predict"
    count = "warden_gateway_requests_total"
    assert sample(metrics, count, {"route": route, "method": "POST", "model": "digits",
                                   "status": "200"}) == 1.0  # fmt: skip
    assert sample(metrics, count, {"route": route, "method": "POST", "model": "wine",
                                   "status": "200"}) == 1.0  # fmt: skip
    # a declared length is refused before routing; a streamed body once the route reads it
    assert sample(metrics, count, {"route": UNMATCHED, "method": "POST", "model": "",
                                   "status": "413"}) == 1.0  # fmt: skip
    assert sample(metrics, count, {"route": route, "method": "POST", "model": "digits",
                                   "status": "413"}) == 1.0  # fmt: skip
    assert sample(metrics, count, {"route": UNMATCHED, "method": "GET", "model": "",
                                   "status": "404"}) == 1.0  # fmt: skip
    assert sample(metrics, count, {"route": route, "method": "POST", "model": "",
                                   "status": "500"}) == 1.0  # fmt: skip
    hist = sample(metrics, "warden_gateway_request_duration_seconds_count",
                  {"route": route, "model": "digits"})  # fmt: skip
    assert hist == 2.0  # the 200 and the streamed 413
    assert sample(metrics, "warden_gateway_requests_in_flight", {}) == 0.0
    text, content_type = metrics.render()
    assert b"/no/such/path" not in text and content_type.startswith("text/plain")


def test_app_raising_before_answering_counts_500() -> None:
    async def broken(scope: Scope, receive: Receive, send: Send) -> None:
        raise RuntimeError("boom")

    metrics = GatewayMetrics()
    with pytest.raises(RuntimeError, match="boom"):
        call_asgi(MetricsMiddleware(broken, metrics), http_scope(method="BREW"))
    labels = {"route": UNMATCHED, "method": "other", "model": "", "status": "500"}
    assert sample(metrics, "warden_gateway_requests_total", labels) == 1.0


def test_counters_for_other_layers() -> None:
    from warden.gateway.guards import Verdict

    metrics = GatewayMetrics()
    metrics.rate_limited("free", "quota")
    metrics.guard_verdicts("digits", [Verdict("flag", "ood"), Verdict("allow", "strip")])
    metrics.auth_failure("bad_credentials")
    metrics.auth_failure("user alice@example.com not found")  # never a label value
    assert sample(metrics, "warden_gateway_rate_limit_rejections_total",
                  {"plan": "free", "reason": "quota"}) == 1.0  # fmt: skip
    assert sample(metrics, "warden_gateway_guard_verdicts_total",
                  {"model": "digits", "guard": "ood", "action": "flag"}) == 1.0  # fmt: skip
    assert sample(metrics, "warden_gateway_auth_failures_total", {"reason": "other"}) == 1.0
    assert b"alice" not in metrics.render()[0]


def test_registries_are_private() -> None:
    from prometheus_client import REGISTRY

    a, b = GatewayMetrics(), GatewayMetrics()  # two instances: no duplicate-series clash
    a.auth_failure("expired")
    name, labels = "warden_gateway_auth_failures_total", {"reason": "expired"}
    assert a.registry.get_sample_value(name, labels) == 1.0
    assert b.registry.get_sample_value(name, labels) is None
    assert REGISTRY.get_sample_value(name, labels) is None
