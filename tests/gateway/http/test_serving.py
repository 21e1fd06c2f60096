"""Serving over real HTTP: predictions, the audit trail, quarantine at once, tampered artifacts
refused at load, guards, output filters, rate limits, and hostile payloads."""

from __future__ import annotations

import socket

import numpy as np
import pytest
from tests.gateway.http.conftest import CANARY, World

from warden.audit import search, verify_log

ROW = [0.1, 0.2, 0.3, 0.4]


def test_predict_and_its_durable_audit_record(world: World) -> None:
    issued = world.access.issue_key("audited", models=["toy"], plan="default", actor="setup")
    actor = f"key:{issued.info.id}"
    statuses = []
    with world.client(issued.token) as c:
        for n in (1, 3, 5):
            response = c.post("/v1/models/toy/predict", json={"inputs": [ROW] * n})
            statuses.append(response.status_code)
            body = response.json()
            assert body["model"] == "toy" and body["version"] == 1
            assert len(body["outputs"]) == n and len(body["labels"]) == n
            assert response.headers["ratelimit-remaining"].isdigit()
            # the record is committed before the answer leaves: no flush needed to see it
            records = search(world.store.db, actor=actor, action="gateway.predict")
            assert len(records) == statuses.count(200)
    assert statuses == [200, 200, 200]
    record = records[-1]
    assert record.outcome == "ok" and record.resource == "model:toy@v1"
    assert record.input_digest.startswith("sha256:") and record.latency_ms is not None
    assert record.verdicts == {"ood": "allow", "canary": "allow"}
    assert record.details["rows"] == 5 and record.details["status"] == 200
    assert record.source == "127.0.0.1"
    with world.client(world.tokens["auditor"], admin=True) as c:
        report = c.get("/v1/audit/verify").json()
    assert report["ok"] is True and report["records"] >= 3 and report["problems"] == []
    world.gateway.audit.flush()
    assert verify_log(world.store.db, world.gateway.audit_key, world.gateway.audit_public_key).ok


def test_refusals_are_recorded_too(world: World) -> None:
    with world.client("wdn_0123456789abcdef_" + "x" * 43) as c:
        assert c.post("/v1/models/toy/predict", json={"inputs": [ROW]}).status_code == 401
    world.gateway.audit.flush()
    refused = [
        r
        for r in search(world.store.db, action="gateway.predict", actor="anonymous")
        if r.outcome == "unauthenticated"
    ]
    assert refused and refused[-1].details["status"] == 401


def test_a_version_can_be_asked_for(world: World) -> None:
    with world.client(world.tokens["client"]) as c:
        for version in (1, "v1", "1", "champion"):
            response = c.post("/v1/models/toy/predict", json={"inputs": [ROW], "version": version})
            assert response.status_code == 200, (version, response.text)
        missing = c.post("/v1/models/toy/predict", json={"inputs": [ROW], "version": 99})
        assert missing.status_code == 404
        assert "no version '99' that is being served" in missing.json()["detail"]
        bad = c.post("/v1/models/toy/predict", json={"inputs": [ROW], "version": "Robert'); --"})
        assert bad.status_code == 422


def test_output_filters_follow_the_clearance(world: World) -> None:
    rows = np.random.default_rng(1).random((8, 4)).tolist()
    with world.client(world.tokens["client"]) as c:
        client_out = np.array(
            c.post("/v1/models/toy/predict", json={"inputs": rows}).json()["outputs"]
        )
    with world.client(world.tokens["ml-engineer"]) as c:
        raw = np.array(c.post("/v1/models/toy/predict", json={"inputs": rows}).json()["outputs"])
    assert np.array_equal(client_out, np.round(client_out, 2))  # default: rounded to 2 places
    assert not np.array_equal(raw, np.round(raw, 2))  # ml-engineer: full scores
    assert np.allclose(client_out, np.round(raw, 2), atol=1e-6)


def test_an_input_guard_blocks_and_names_itself(world: World) -> None:
    with world.client(world.tokens["client"]) as c:
        response = c.post("/v1/models/toy/predict", json={"inputs": [ROW, [CANARY, 0.5, 0.5, 0.5]]})
    assert response.status_code == 403
    assert response.json()["detail"] == "the request was refused by input guard 'canary'"
    world.gateway.audit.flush()
    blocked = search(world.store.db, actor="cli", action="gateway.predict")[-1]
    assert blocked.outcome == "blocked" and blocked.verdicts["canary"] == "block"


def test_rate_limits_answer_429_with_retry_after(world: World) -> None:
    issued = world.access.issue_key("tiny", models=["toy"], plan="tiny", actor="setup")
    with world.client(issued.token) as c:
        assert c.post("/v1/models/toy/predict", json={"inputs": [ROW, ROW]}).status_code == 200
        refused = c.post("/v1/models/toy/predict", json={"inputs": [ROW]})
        assert refused.status_code == 429
        assert int(refused.headers["retry-after"]) >= 1
        too_big = c.post("/v1/models/toy/predict", json={"inputs": [ROW] * 3})
        assert too_big.status_code == 429 and "retry-after" not in too_big.headers
    with world.client(world.tokens["admin"], admin=True) as c:
        metrics = c.get("/metrics").text
    assert 'warden_gateway_rate_limit_rejections_total{plan="tiny",reason="rate"} 1.0' in metrics


def test_models_lists_only_what_the_caller_may_use(world: World) -> None:
    with world.client(world.tokens["key-no-grant"]) as c:
        assert c.get("/v1/models").json() == {"models": []}
    with world.client(world.tokens["client"]) as c:
        names = [m["name"] for m in c.get("/v1/models").json()["models"]]
    assert "toy" in names


def test_quarantine_stops_serving_at_once(world: World) -> None:
    version = world.deploy_model("quarantined-model", seed=1)
    world.access.grant("cli", "quarantined-model", actor="setup")
    path = "/v1/models/quarantined-model/predict"
    with world.client(world.tokens["client"]) as c:
        assert c.post(path, json={"inputs": [ROW]}).status_code == 200  # loaded and cached
        with world.client(world.tokens["admin"], admin=True) as admin:
            answer = admin.post(
                f"/v1/registry/models/quarantined-model/versions/{version}/quarantine",
                json={"reason": "INC-7: suspected tampering", "force": True},
            )
        assert answer.status_code == 200 and answer.json()["to_state"] == "quarantined"
        after = c.post(path, json={"inputs": [ROW]})
        assert after.status_code == 404
        assert "no version 'champion' that is being served" in after.json()["detail"]
        explicit = c.post(path, json={"inputs": [ROW], "version": version})
        assert explicit.status_code == 404
    records = search(world.store.db, action="registry.quarantine", model="quarantined-model")
    assert records and records[-1].actor == "root"


def test_a_tampered_artifact_is_refused_at_load_and_audited(world: World) -> None:
    world.deploy_model("tampered-model", seed=2)
    world.access.grant("cli", "tampered-model", actor="setup")
    version = world.registry.get_version("tampered-model", "champion")
    blob = max(version.files, key=lambda f: f.size)
    path = world.store.blobs.path_of(blob.blob_id)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    with world.client(world.tokens["client"]) as c:
        first = c.post("/v1/models/tampered-model/predict", json={"inputs": [ROW]})
        second = c.post("/v1/models/tampered-model/predict", json={"inputs": [ROW]})
    assert first.status_code == 503 and second.status_code == 503
    assert "failed its load checks" in first.json()["detail"]
    refusals = search(world.store.db, action="gateway.load.refused", model="tampered-model")
    assert len(refusals) == 1  # remembered: the second request did not re-read the artifact
    assert refusals[0].outcome == "refused" and refusals[0].actor == "gateway"
    assert any(f.startswith("artifact: FAIL") for f in refusals[0].details["failures"])


def _raw(port: int, request: bytes) -> int:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(request)
        head = s.recv(65536)
    return int(head.split(b" ", 2)[1])


HOSTILE = [
    (b"{not json", 400),
    (b'{"inputs": [[NaN, 0, 0, 0]]}', 400),
    (b'{"inputs": [[1e999, 0, 0, 0]]}', 422),
    (b"\xff\xfe{}", 400),
    (b"[" * 100_000 + b"]" * 100_000, 400),
    (b'{"inputs": ' + b"[" * 5000 + b"]" * 5000 + b"}", 400),
    (b'{"inputs": [[true, 0, 0, 0]]}', 422),
    (b'{"inputs": [["0.1", 0, 0, 0]]}', 422),
    (b'{"inputs": [[0.1, 0.2, 0.3]]}', 422),
    (b'{"inputs": [[0.1, 0.2, 0.3, 7]]}', 422),
    (b'{"inputs": []}', 422),
    (b'{"inputs": [[0.1, 0.2, 0.3, 0.4]], "x": 1}', 422),
    (b'{"inputs": [[0.1, 0.2, 0.3, 0.4]], "version": {"a": [[[[1]]]]}}', 422),
    (b'"inputs"', 422),
    (b"null", 422),
    (b'{"inputs": ' + b"[[0.1, 0.2, 0.3, 0.4]]" * 1 + b"}", 200),
    (b'{"inputs": [' + b",".join([b"[0.1, 0.2, 0.3, 0.4]"] * 65) + b"]}", 413),
    (b'{"inputs": [[0.1, 0.2, 0.3, 0.4]]}' + b" " * (1 << 20), 413),
]


@pytest.mark.parametrize(("body", "status"), HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_payloads_get_4xx_never_5xx(world: World, body: bytes, status: int) -> None:
    with world.client(world.tokens["client"]) as c:
        response = c.post(
            "/v1/models/toy/predict", content=body, headers={"Content-Type": "application/json"}
        )
    assert response.status_code == status, response.text[:200]


def test_a_chunked_body_past_the_limit_is_cut_off(world: World) -> None:
    port = int(world.base.rsplit(":", 1)[1])
    token = world.tokens["client"]
    chunk = b'{"inputs": [' + b"[0.1, 0.2, 0.3, 0.4]," * 80_000
    request = (
        b"POST /v1/models/toy/predict HTTP/1.1\r\nHost: x\r\n"
        + f"Authorization: Bearer {token}\r\n".encode()
        + b"Transfer-Encoding: chunked\r\nContent-Type: application/json\r\n\r\n"
        + f"{len(chunk):x}\r\n".encode()
        + chunk
        + b"\r\n0\r\n\r\n"
    )
    assert _raw(port, request) == 413


def test_admin_bodies_are_read_after_authentication(world: World) -> None:
    with world.client(admin=True) as c:  # no credentials: 401 before the body is parsed
        assert c.post("/v1/users", content=b"{broken").status_code == 401
    with world.client(world.tokens["admin"], admin=True) as c:
        assert c.post("/v1/users", content=b"{broken").status_code == 400
        weak = c.post("/v1/users", json={"name": "weakling", "password": "short"})
        assert weak.status_code == 400 and "password" in weak.json()["detail"]
        wrong = c.post("/v1/users", json={"name": "x", "password": "y" * 20, "admin": True})
        assert wrong.status_code == 422


class _AsyncOnlyLimiter:
    """A limiter like the Redis one: decides on the event loop through its async client."""

    def __init__(self, *, fail: bool = False) -> None:
        self.fail = fail
        self.loop_threads: list[str] = []

    def check(self, key_id: str, plan: object, cost: int = 1) -> object:
        raise AssertionError("the gateway must use acheck() for a limiter that is not in-process")

    async def acheck(self, key_id: str, plan: object, cost: int = 1) -> object:
        import asyncio
        import threading

        from warden.errors import BackendUnavailable
        from warden.gateway.ratelimit import Decision

        asyncio.get_running_loop()  # raises unless on the event loop
        self.loop_threads.append(threading.current_thread().name)
        if self.fail:
            raise BackendUnavailable("rate-limit store unreachable")
        return Decision(allowed=True, retry_after_s=None, remaining=9, quota_remaining=None)


def test_an_async_limiter_decides_on_the_event_loop(world: World) -> None:
    original = world.gateway.limiter
    working, failing = _AsyncOnlyLimiter(), _AsyncOnlyLimiter(fail=True)
    try:
        world.gateway.limiter = working  # type: ignore[assignment]
        with world.client(world.tokens["key"]) as c:
            answer = c.post("/v1/models/toy/predict", json={"inputs": [ROW]})
        world.gateway.limiter = failing  # type: ignore[assignment]
        with world.client(world.tokens["key"]) as c:
            refused = c.post("/v1/models/toy/predict", json={"inputs": [ROW]})
    finally:
        world.gateway.limiter = original
    assert answer.status_code == 200, answer.text
    assert len(working.loop_threads) == 1 and not working.loop_threads[0].startswith("AnyIO")
    assert refused.status_code == 503
