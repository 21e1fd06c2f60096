"""Fixtures for the model adapter tests: a tiny trained MLP and a scripted local HTTP server."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np
import pytest

from warden.data.bundled import load_breast_cancer
from warden.data.dataset import Dataset
from warden.models import TorchModel, TrainConfig, train_model


@pytest.fixture(scope="session")
def cancer() -> Dataset:
    return load_breast_cancer()


@pytest.fixture(scope="session")
def mlp(cancer: Dataset) -> TorchModel:
    """tabular-mlp with one hidden layer of 16 on breast cancer: 2 classes, 30 features."""
    return train_model(
        cancer, "tabular-mlp", TrainConfig(epochs=3, seed=0), n_features=30, hidden=(16,)
    )


@pytest.fixture(scope="session")
def mlp_weights(mlp: TorchModel) -> list[np.ndarray]:
    """``[W1, b1, W2, b2]`` of :func:`mlp` as float64 numpy arrays (torch layout: out x in)."""
    return [p.detach().cpu().numpy().astype(np.float64) for p in mlp.module.parameters()]


# A fixed linear "model" the fake server computes: 4 features -> 3 classes.
SERVER_WEIGHTS = np.arange(12, dtype=np.float64).reshape(4, 3) / 10.0


@dataclass
class Reply:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


class FakeServer:
    """A real HTTP server on 127.0.0.1 that records requests and plays scripted replies.

    With no scripted reply left it answers ``{"outputs": inputs @ SERVER_WEIGHTS}``.
    """

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.script: list[Reply] = []
        self.weights = SERVER_WEIGHTS
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with server.lock:
                    server.requests.append(json.loads(raw))
                    server.headers.append(dict(self.headers))
                    reply = server.script.pop(0) if server.script else None
                if reply is None:
                    x = np.asarray(json.loads(raw)["inputs"], dtype=np.float64)
                    body = json.dumps({"outputs": (x @ SERVER_WEIGHTS).tolist()}).encode()
                    reply = Reply(200, body, {"Content-Type": "application/json"})
                self.send_response(reply.status)
                for key, value in reply.headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                self.wfile.write(reply.body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/predict"
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def enqueue(
        self, status: int, body: bytes, headers: dict[str, str] | None = None, times: int = 1
    ) -> None:
        """Answer the next ``times`` requests with this reply instead of the model's scores."""
        self.script.extend([Reply(status, body, headers or {})] * times)

    def rows_seen(self) -> int:
        return sum(len(r["inputs"]) for r in self.requests)


@pytest.fixture
def server() -> Iterator[FakeServer]:
    srv = FakeServer()
    srv.thread.start()
    yield srv
    srv.httpd.shutdown()
    srv.httpd.server_close()
    srv.thread.join(timeout=5)
