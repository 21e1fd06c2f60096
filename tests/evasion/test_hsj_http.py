"""HopSkipJump against a remote model: a real HTTP server on 127.0.0.1 serving predict_proba."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from warden.data.bundled import load_breast_cancer
from warden.evasion.hopskipjump import HopSkipJump
from warden.models import HttpModel
from warden.models.base import Bounds


class ProbaServer:
    """Answers ``{"inputs": rows}`` with ``{"outputs": clf.predict_proba(rows)}``; counts rows."""

    def __init__(self, clf: Any) -> None:
        self.rows = 0
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                x = np.asarray(json.loads(raw)["inputs"], dtype=np.float32)
                with server.lock:
                    server.rows += len(x)
                body = json.dumps({"outputs": clf.predict_proba(x).tolist()}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/predict"
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )


@pytest.fixture(scope="module")
def fitted() -> tuple[Any, Bounds, np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    data = load_breast_cancer()
    train, test = data.split(0.3, seed=0)
    clf = LogisticRegression(max_iter=1000).fit(train.x, train.y)
    # Both classes: HopSkipJump starts from an input of another class (noise is all class 0).
    pick = np.concatenate([np.flatnonzero(test.y == c)[:5] for c in (0, 1)])
    return clf, data.bounds, np.asarray(test.x[pick]), np.asarray(test.y[pick])


@pytest.fixture
def server(fitted: Any) -> Iterator[ProbaServer]:
    srv = ProbaServer(fitted[0])
    srv.thread.start()
    yield srv
    srv.httpd.shutdown()
    srv.httpd.server_close()
    srv.thread.join(timeout=5)


def _remote(srv: ProbaServer, bounds: Bounds, max_queries: int | None = None) -> HttpModel:
    return HttpModel(
        srv.url,
        input_shape=(30,),
        n_classes=2,
        bounds=bounds,
        max_queries=max_queries,
        batch_size=256,
        trust_env=False,
    )


def test_hsj_fools_a_remote_model(server: ProbaServer, fitted: Any) -> None:
    clf, bounds, x, y = fitted
    attack = HopSkipJump(eps=2.0, steps=4, init_evals=20, max_queries=400)
    with _remote(server, bounds) as model:
        result = attack.attack(model, x, y)
        assert result.queries == model.queries_used == server.rows
    clean = float((clf.predict(x) == y).mean())
    robust = float((clf.predict(result.x_adv) == y).mean())
    assert robust < clean
    assert result.robust_accuracy == pytest.approx(robust)
    assert not result.budget_exhausted
    assert result.queries <= attack.max_queries * len(x)
    assert bounds.contains(result.x_adv, atol=0.0).all()
    assert (np.linalg.norm(result.x_adv - x, axis=1) <= 2.0 + 1e-6).all()


@pytest.mark.parametrize("norm", ["l2", "linf"])
def test_hsj_stops_at_the_remote_budget(server: ProbaServer, fitted: Any, norm: str) -> None:
    clf, bounds, x, y = fitted
    budget = 150
    with _remote(server, bounds, max_queries=budget) as model:
        result = HopSkipJump(norm=norm, steps=40, init_evals=20).attack(model, x, y)
        assert model.queries_used <= budget
    assert result.budget_exhausted
    assert server.rows <= budget
    assert result.queries == server.rows
    assert bounds.contains(result.x_adv, atol=0.0).all()
    # The result is still valid: what is reported as fooled is fooled.
    np.testing.assert_array_equal(result.success, clf.predict(result.x_adv) != y)
    assert result.success.any()
