"""``HttpModel`` against a real server on 127.0.0.1: accounting, budget, retries, bad answers."""

from __future__ import annotations

import json
import socket
from typing import Any

import httpx
import numpy as np
import pytest

from warden.errors import InputShapeError, ModelError, ModelQueryError, QueryBudgetExceeded
from warden.models import HttpModel

X = np.linspace(0.0, 1.0, 7 * 4, dtype=np.float32).reshape(7, 4)


def make(url: str, delays: list[float] | None = None, **kwargs) -> HttpModel:
    kwargs.setdefault("batch_size", 3)
    return HttpModel(
        url,
        input_shape=(4,),
        n_classes=3,
        sleep=(delays if delays is not None else []).append,
        trust_env=False,
        **kwargs,
    )


def test_scores_come_from_the_server_in_chunks(server: Any) -> None:
    with make(server.url, headers={"Authorization": "Bearer t0ken"}) as model:
        scores = model(X)
        assert model.queries_used == 7
        assert model.remaining is None
    np.testing.assert_allclose(scores, X.astype(np.float64) @ server.weights, rtol=1e-6)
    assert scores.dtype == np.float32
    assert [len(r["inputs"]) for r in server.requests] == [3, 3, 1]
    assert server.headers[0]["Authorization"] == "Bearer t0ken"
    np.testing.assert_allclose(np.asarray(server.requests[2]["inputs"]), X[6:], rtol=1e-7)


def test_budget_stops_before_sending(server: Any) -> None:
    model = make(server.url, max_queries=9)
    model(X)
    assert (model.queries_used, model.remaining) == (7, 2)
    sent = len(server.requests)
    with pytest.raises(QueryBudgetExceeded, match=r"7 of 9 rows used.*needs 3"):
        model(X[:3])
    assert len(server.requests) == sent
    assert model.queries_used == 7
    model(X[:2])
    assert model.remaining == 0
    with pytest.raises(QueryBudgetExceeded):
        model(X[:1])
    assert server.rows_seen() == 9
    model.reset_queries()
    assert (model.queries_used, model.remaining) == (0, 9)
    model(X[:1])
    assert server.rows_seen() == 10
    model.close()


def test_bad_input_is_refused_before_sending(server: Any) -> None:
    model = make(server.url)
    with pytest.raises(InputShapeError):
        model(X[:, :3])
    with pytest.raises(InputShapeError, match="NaN"):
        model(np.full((2, 4), np.nan, np.float32))
    assert server.requests == []
    assert model.queries_used == 0


def test_retries_503_with_exponential_backoff(server: Any) -> None:
    server.enqueue(503, b"busy", times=2)
    delays: list[float] = []
    model = make(server.url, delays, backoff=0.25, batch_size=8)
    scores = model(X)
    assert delays == [0.25, 0.5]
    assert len(server.requests) == 3
    assert model.queries_used == 7
    np.testing.assert_allclose(scores, X.astype(np.float64) @ server.weights, rtol=1e-6)


def test_429_honours_retry_after_capped(server: Any) -> None:
    server.enqueue(429, b"slow down", {"Retry-After": "2"})
    server.enqueue(429, b"slow down", {"Retry-After": "3600"})
    server.enqueue(429, b"slow down", {"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"})
    delays: list[float] = []
    model = make(server.url, delays, backoff=0.1, max_retry_after=5.0, batch_size=8)
    model(X)
    assert delays == [2.0, 5.0, 0.4]
    assert model.queries_used == 7


def test_gives_up_after_retries(server: Any) -> None:
    server.enqueue(500, b"oops", times=3)
    delays: list[float] = []
    model = make(server.url, delays, retries=1, batch_size=8)
    with pytest.raises(ModelQueryError, match=r"gave up after 2 attempts; last: HTTP 500"):
        model(X)
    assert len(server.requests) == 2
    assert delays == [0.2]
    assert model.queries_used == 0


def test_client_error_fails_at_once(server: Any) -> None:
    server.enqueue(400, b'{"detail": "inputs must be a list"}')
    delays: list[float] = []
    model = make(server.url, delays)
    with pytest.raises(ModelQueryError, match=r"HTTP 400.*inputs must be a list"):
        model(X)
    assert len(server.requests) == 1
    assert delays == []
    assert model.queries_used == 0


@pytest.mark.parametrize(
    ("body", "match"),
    [
        (b"<html>not json</html>", "not JSON"),
        (b'{"scores": [[1, 2, 3]]}', "without the key 'outputs'"),
        (b"[[1, 2, 3]]", "without the key 'outputs'"),
        (json.dumps({"outputs": [[1.0, 2.0]] * 3}).encode(), r"shape \(3, 2\); expected \(3, 3\)"),
        (json.dumps({"outputs": [[1.0, 2.0, 3.0]] * 2}).encode(), r"expected \(3, 3\)"),
        (b'{"outputs": [[1, 2, NaN], [1, 2, 3], [1, 2, 3]]}', "NaN or infinity.*row 0"),
        (b'{"outputs": [[1, 2, "x"], [1, 2, 3], [1, 2, 3]]}', "not a numeric array"),
        (b'{"outputs": [[1, 2], [1, 2, 3], [1, 2, 3]]}', "not a numeric array"),
    ],
)
def test_unreadable_answers_are_query_errors(server: Any, body: bytes, match: str) -> None:
    server.enqueue(200, body, {"Content-Type": "application/json"})
    model = make(server.url)
    with pytest.raises(ModelQueryError, match=match):
        model(X[:3])
    assert len(server.requests) == 1
    assert model.queries_used == 3  # the server answered 2xx, so the rows were spent


def test_connection_refused_is_retried_then_reported() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    delays: list[float] = []
    model = make(f"http://127.0.0.1:{port}/", delays, retries=2, timeout=2.0)
    with pytest.raises(ModelQueryError, match=r"gave up after 3 attempts; last: ConnectError"):
        model(X[:1])
    assert delays == [0.2, 0.4]
    assert model.queries_used == 0


def test_timeout_is_retried_through_an_injected_transport() -> None:
    calls: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(len(json.loads(request.content)["inputs"]))
        if len(calls) == 1:
            raise httpx.ReadTimeout("timed out", request=request)
        return httpx.Response(200, json={"outputs": [[0.0, 1.0, 0.0]] * calls[-1]})

    delays: list[float] = []
    model = make("https://models.example/v1", delays, transport=httpx.MockTransport(handler))
    assert model(X[:2]).argmax(axis=1).tolist() == [1, 1]
    assert calls == [2, 2]
    assert delays == [0.2]
    assert model.queries_used == 2


@pytest.mark.parametrize("url", ["ftp://127.0.0.1/model", "file:///etc/passwd", "127.0.0.1:80"])
def test_only_http_urls(url: str) -> None:
    with pytest.raises(ModelError, match="http"):
        make(url)


def test_settings_are_validated() -> None:
    with pytest.raises(ModelError, match="max_queries"):
        make("http://127.0.0.1:1/", max_queries=-1)
    with pytest.raises(ModelError, match="batch_size"):
        make("http://127.0.0.1:1/", batch_size=0)
