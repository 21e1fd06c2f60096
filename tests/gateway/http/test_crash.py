"""Crash durability of ``warden serve``: under concurrent load the server is killed with
SIGKILL; every request that got a 2xx answer is in the audit log afterwards and the log
verifies (``warden audit verify`` exit 0); editing, deleting or truncating records makes it
fail (exit 1) naming the damage.

The server runs as a subprocess over a home this module builds (store, trusted signing key in
``policy.toml``, the ``toy`` model deployed, API keys, ``gateway.toml`` with an OOD guard).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pytest
import typer
from sqlalchemy import delete, func, select, update
from tests.gateway.http.conftest import TEST_PARAMS, deploy_tiny_model
from typer.testing import CliRunner

from warden.access import Access
from warden.audit import AuditLog, iter_records, load_audit_key, load_signing_key
from warden.audit._tables import CHECKPOINTS, HEAD, RECORDS
from warden.cli.audit import audit_app
from warden.config import Settings
from warden.registry import Registry
from warden.store import Store
from warden.supplychain.keys import generate_key

THREADS = 6
LOAD_SECONDS = 1.5


@dataclass(frozen=True)
class Home:
    """A home ready for ``warden serve`` and the API keys that may use its ``toy`` model."""

    path: Path
    tokens: dict[str, str]
    """Actor (``key:ID``) -> API key."""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _build_home(tmp: Path) -> Home:
    home = tmp / "home"
    home.mkdir()
    private = home / "keys" / "release"
    generate_key("ed25519", private, private.with_suffix(".pub"))
    (home / "policy.toml").write_text('[signature]\ntrusted_keys = ["keys/release.pub"]\n')
    rng = np.random.default_rng(0)
    np.savez(home / "ood.npz", x=rng.random((200, 4)).astype(np.float32), y=np.zeros(200))
    (home / "gateway.toml").write_text(
        "[plans]\n"
        "default = { rate = 1000000, burst = 1000000 }\n"
        "[models.toy]\n"
        'ood_data = "ood.npz"\n'
        'guards = { input = [{ guard = "ood", flag_at = 1.0, block_at = 1000000000.0 }] }\n'
    )
    with Store.open(Settings(home=home)) as store:
        audit = AuditLog(
            store.db,
            load_audit_key(store.home, None, create=True),
            load_signing_key(store.home, create=True),
        )
        with audit:
            registry = Registry(store, actor="setup", audit=audit)
            deploy_tiny_model(registry, "toy", folder=tmp / "model", signing_key=private)
            access = Access(store, audit=audit, password_params=TEST_PARAMS)
            tokens = {}
            for name in ("svc-a", "svc-b", "svc-c"):
                issued = access.issue_key(name, models=["toy"], plan="default", actor="setup")
                tokens[f"key:{issued.info.id}"] = issued.token
    return Home(home, tokens)


class Server:
    """``warden serve`` over a home, as a subprocess on free loopback ports."""

    def __init__(self, home: Path) -> None:
        self.port = _free_port()
        admin_port = _free_port()
        command = [
            sys.executable,
            "-c",
            "import typer; from warden.cli.serve import serve; typer.run(serve)",
            "--home", str(home),
            "--bind", f"127.0.0.1:{self.port}",
            "--admin-bind", f"127.0.0.1:{admin_port}",
        ]  # fmt: skip
        env = {k: v for k, v in os.environ.items() if not k.startswith("WARDEN_")}
        self.log = home.parent / f"serve-{self.port}.log"  # a file: a pipe could fill up
        with self.log.open("w") as stderr:
            self.proc = subprocess.Popen(
                command, stdout=subprocess.DEVNULL, stderr=stderr, text=True, env=env
            )
        self.base = f"http://127.0.0.1:{self.port}"

    @property
    def stderr(self) -> str:
        return self.log.read_text()

    def wait_ready(self) -> None:
        deadline = time.monotonic() + 60
        with httpx.Client(timeout=5) as c:
            while True:
                assert self.proc.poll() is None, self.stderr
                assert time.monotonic() < deadline, "warden serve did not come up"
                try:
                    if c.get(f"{self.base}/healthz").status_code == 200:
                        return
                except httpx.TransportError:
                    time.sleep(0.05)

    def stop(self) -> str:
        """SIGTERM (the audit log is flushed and checkpointed); its stderr."""
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=30)
        assert self.proc.returncode == 0, self.stderr
        return self.stderr


def _body(rng: np.random.Generator) -> bytes:
    return json.dumps({"inputs": rng.random((2, 4)).round(6).tolist()}).encode()


class Killer:
    """SIGKILLs the server once armed, right after the next 2xx answer arrives (the record of
    that answer has the least time of all to have been written)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.armed = threading.Event()
        self.done = threading.Event()
        self._lock = threading.Lock()

    def answered(self) -> None:
        if self.armed.is_set():
            with self._lock:
                if not self.done.is_set():
                    os.kill(self.pid, signal.SIGKILL)
                    self.done.set()


def _load(base: str, actor: str, token: str, seed: int, killer: Killer, served: list[str]) -> None:
    """Predict until the server is gone; the digest of every 2xx body in ``served`` (as the
    gateway computes it: SHA-256 of the request body)."""
    rng = np.random.default_rng(seed)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    with httpx.Client(base_url=base, headers=headers, timeout=10) as c:
        while not killer.done.is_set():
            body = _body(rng)
            try:
                response = c.post("/v1/models/toy/predict", content=body)
            except httpx.TransportError:
                return
            if 200 <= response.status_code < 300:
                served.append(f"{actor} sha256:{hashlib.sha256(body).hexdigest()}")
                killer.answered()


def _verify(home: Path) -> tuple[int, str]:
    root = typer.Typer()
    root.add_typer(audit_app, name="audit")
    result = CliRunner().invoke(
        root, ["audit", "verify", "--home", str(home)], env={"WARDEN_AUDIT_KEY": None}
    )
    return result.exit_code, result.output


def _sql(home: Path, *statements: object) -> None:
    with Store.open(Settings(home=home)) as store, store.db.engine.begin() as conn:
        for statement in statements:
            conn.execute(statement)  # type: ignore[call-overload]


def _crash_under_load(home: Home, servers: list[Server]) -> list[str]:
    """Load, SIGKILL, restart, one more answer, clean stop; the answered (actor, digest)s."""
    server = Server(home.path)
    servers.append(server)
    server.wait_ready()
    actor, token = next(iter(home.tokens.items()))
    with httpx.Client(headers={"Authorization": f"Bearer {token}"}) as c:  # load the model
        warm = c.post(f"{server.base}/v1/models/toy/predict", json={"inputs": [[0.5] * 4]})
    assert warm.status_code == 200, warm.text
    served: list[str] = [f"{actor} sha256:{hashlib.sha256(warm.request.content).hexdigest()}"]
    killer = Killer(server.proc.pid)
    actors = list(home.tokens.items())
    threads = [
        threading.Thread(
            target=_load,
            args=(server.base, *actors[i % len(actors)], i, killer, served),
            daemon=True,
        )
        for i in range(THREADS)
    ]
    for thread in threads:
        thread.start()
    time.sleep(LOAD_SECONDS)
    killer.armed.set()  # SIGKILL while the threads are still sending
    assert killer.done.wait(timeout=30), "no answer arrived after arming the kill"
    for thread in threads:
        thread.join(timeout=30)
    server.proc.wait(timeout=30)
    assert server.proc.returncode == -signal.SIGKILL
    again = Server(home.path)  # restart: it serves again and extends the same chain
    servers.append(again)
    again.wait_ready()
    with httpx.Client(headers={"Authorization": f"Bearer {token}"}) as c:
        after = c.post(f"{again.base}/v1/models/toy/predict", json={"inputs": [[0.25] * 4]})
    assert after.status_code == 200, after.text
    served.append(f"{actor} sha256:{hashlib.sha256(after.request.content).hexdigest()}")
    assert "stopped" in again.stop()
    return served


@pytest.fixture(scope="module")
def crashed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Home, Counter[str]]:
    """A home whose server was SIGKILLed under load, then restarted, used and stopped; and
    the (actor, digest) of every request that got a 2xx before the kill."""
    pytest.importorskip("torch", reason="the served model is a torch model")
    home = _build_home(tmp_path_factory.mktemp("crash"))
    servers: list[Server] = []
    try:
        served = _crash_under_load(home, servers)
    finally:
        for server in servers:  # whatever failed, leave no server running
            if server.proc.poll() is None:
                server.proc.kill()
                server.proc.wait(timeout=30)
    return home, Counter(served)


def test_every_2xx_before_a_sigkill_is_in_the_audit_log(
    crashed: tuple[Home, Counter[str]],
) -> None:
    home, served = crashed
    assert sum(served.values()) > 3 * THREADS, "the load produced too few answers to test"
    assert len({e.split()[0] for e in served}) == len(home.tokens)  # every actor was served
    with Store.open(Settings(home=home.path)) as store:
        records = Counter(
            f"{r.actor} {r.input_digest}"
            for r in iter_records(store.db)
            if r.action == "gateway.predict" and r.outcome in ("ok", "flagged")
        )
    missing = served - records
    assert not missing, f"{sum(missing.values())} answered request(s) have no record"
    for actor in home.tokens:  # counts per actor: at least every answered request
        answered = sum(n for e, n in served.items() if e.startswith(f"{actor} "))
        recorded = sum(n for e, n in records.items() if e.startswith(f"{actor} "))
        assert recorded >= answered > 0
    code, output = _verify(home.path)
    assert code == 0, output
    assert "audit log intact" in output


@pytest.mark.parametrize(
    ("damage", "expected"),
    [("edit", "modified"), ("delete", "deleted"), ("truncate", "truncated")],
)
def test_damage_after_the_crash_fails_verification(
    crashed: tuple[Home, Counter[str]], tmp_path: Path, damage: str, expected: str
) -> None:
    home = tmp_path / "home"
    shutil.copytree(crashed[0].path, home)
    with Store.open(Settings(home=home)) as store, store.db.engine.connect() as conn:
        predictions = [
            row.seq
            for row in conn.execute(
                select(RECORDS.c.seq, RECORDS.c.canonical).order_by(RECORDS.c.seq)
            )
            if "gateway.predict" in row.canonical
        ]
        last = conn.execute(select(func.max(RECORDS.c.seq))).scalar_one()
        checkpoint = conn.execute(select(func.max(CHECKPOINTS.c.count))).scalar_one()
    assert checkpoint == last  # the clean stop left a checkpoint over the whole log
    target = predictions[len(predictions) // 2]
    if damage == "edit":  # the answer's digest replaced by another
        _sql(
            home,
            update(RECORDS)
            .where(RECORDS.c.seq == target)
            .values(canonical=func.replace(RECORDS.c.canonical, "sha256:", "sha256:0")),
        )
    elif damage == "delete":
        _sql(home, delete(RECORDS).where(RECORDS.c.seq == target))
    else:  # the tail after `target` cut off, the head moved back to a consistent state
        with Store.open(Settings(home=home)) as store, store.db.engine.connect() as conn:
            digest = conn.execute(select(RECORDS.c.hash).where(RECORDS.c.seq == target)).scalar()
        _sql(
            home,
            delete(RECORDS).where(RECORDS.c.seq > target),
            update(HEAD).where(HEAD.c.id == 1).values(seq=target, hash=digest),
        )
        target += 1
    code, output = _verify(home)
    assert code == 1, output
    assert f"audit log DAMAGED: {expected} at record {target}" in output
