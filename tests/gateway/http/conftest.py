"""A live gateway for the HTTP tests: both listeners on 127.0.0.1, a real store and audit log,
users of every role, API keys, and tiny real torch models that went through the whole
registry path (registered with an input spec, scanned, signed by a trusted key, assessed,
approved, deployed).

One world per test session (SQLite; these tests are about the gateway, not the database).
Tests that change shared state use their own models or users.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pyotp
import pytest
from tests.registry._helpers import report

from warden.access import Access, AccessPolicy, PasswordParams
from warden.audit import AuditLog, load_audit_key, load_signing_key
from warden.config import Settings
from warden.gateway.app import (
    Gateway,
    GatewaySettings,
    Listener,
    create_admin_app,
    create_app,
    serve_listeners,
    uvicorn_server,
)
from warden.gateway.guards import (
    GuardContext,
    GuardPipeline,
    GuardRule,
    OODDetector,
    OODGuard,
    Verdict,
)
from warden.gateway.ratelimit import RatePlan
from warden.registry import Registry
from warden.registry.policy import Policy, parse_policy
from warden.store import Store
from warden.supplychain.keys import generate_key

TEST_PARAMS = PasswordParams(time_cost=1, memory_kib=64, parallelism=1, unsafe_allow_weak=True)
PASSWORD = "violet-harbour-lantern-42"
INPUT_SPEC = {"shape": [4], "dtype": "float32", "min": 0, "max": 1, "max_batch": 64}
CANARY = 0.123
"""An input whose first feature is exactly this is blocked by the canary guard."""


class Clock:
    """Real time plus an offset the tests may move (sessions, TOTP steps)."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset


@dataclass(frozen=True)
class CanaryGuard:
    """Blocks a batch holding an input whose first feature is :data:`CANARY`."""

    name: str = "canary"

    def inspect(self, batch: np.ndarray[Any, Any], ctx: GuardContext) -> Verdict:
        if np.any(np.isclose(batch[:, 0], CANARY)):
            return Verdict("block", self.name, "canary input")
        return Verdict("allow", self.name)


@dataclass
class World:
    """The running gateway and everything the tests need to talk to it."""

    store: Store
    gateway: Gateway
    access: Access
    registry: Registry
    policy: Policy
    clock: Clock
    base: str
    admin_base: str
    signing_key: Path
    tmp: Path
    tokens: dict[str, str] = field(default_factory=dict)
    totp: dict[str, str] = field(default_factory=dict)

    def client(self, token: str | None = None, *, admin: bool = False) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(
            base_url=self.admin_base if admin else self.base, headers=headers, timeout=30
        )

    def totp_login(self, name: str) -> str:
        """A fresh full session for a user with MFA (the clock moves a TOTP step on first)."""
        self.clock.offset += timedelta(seconds=31)
        code = pyotp.TOTP(self.totp[name]).at(self.clock())
        result = self.access.login(name, PASSWORD, code)
        assert result.status == "ok" and result.token is not None
        return result.token

    def login(self, name: str) -> str:
        result = self.access.login(name, PASSWORD)
        assert result.token is not None
        return result.token

    def deploy_model(self, name: str, *, seed: int = 0) -> int:
        """Register, scan, sign, assess, approve and deploy a tiny torch model; its version."""
        folder = self.tmp / f"model-{name}-{seed}"
        return deploy_tiny_model(
            self.registry, name, folder=folder, signing_key=self.signing_key, seed=seed
        )


def deploy_tiny_model(
    registry: Registry, name: str, *, folder: Path, signing_key: Path, seed: int = 0
) -> int:
    """Register (with :data:`INPUT_SPEC`), scan, sign, assess, approve and deploy a tiny torch
    model saved in ``folder``; its version number."""
    import torch

    from warden.models.loading import save_torch_model
    from warden.models.torch import TorchModel
    from warden.models.zoo import build_architecture

    torch.manual_seed(seed)
    arguments = {"n_features": 4, "n_classes": 3, "hidden": [8]}
    module = build_architecture("tabular-mlp", **arguments)
    model = TorchModel(
        module,
        input_shape=(4,),
        n_classes=3,
        spec={"architecture": "tabular-mlp", "arguments": arguments},
    )
    save_torch_model(model, folder)
    v = registry.register_version(
        name, folder, framework="torch", input_spec=INPUT_SPEC, create_model=True
    )
    registry.scan_version(name, v.number)
    registry.sign_version(name, v.number, signing_key)
    registry.attach_assessment(name, v.number, report(ML01="B"))
    registry.approve(name, v.number, reason="tests")
    registry.deploy(name, v.number)
    return v.number


def _pipeline(rng: np.random.Generator) -> GuardPipeline:
    detector = OODDetector().fit(rng.random((200, 4)))
    return GuardPipeline([GuardRule(OODGuard(detector), flag_at=1.0, block_at=1e9), CanaryGuard()])


def _start(gateway: Gateway) -> tuple[list[Any], threading.Thread]:
    servers = [
        uvicorn_server(Listener(create_app(gateway), "127.0.0.1", 0)),
        uvicorn_server(Listener(create_admin_app(gateway), "127.0.0.1", 0)),
    ]
    thread = threading.Thread(
        target=lambda: asyncio.run(serve_listeners(servers)), name="gateway", daemon=True
    )
    thread.start()
    deadline = time.monotonic() + 30
    while not all(s.started for s in servers):
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the gateway did not start")
        time.sleep(0.02)
    return servers, thread


def port_of(server: Any) -> int:
    return int(server.servers[0].sockets[0].getsockname()[1])


@pytest.fixture(scope="session")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with running_world(tmp_path_factory.mktemp("gateway-http")) as w:
        yield w


@contextmanager
def running_world(tmp: Path) -> Iterator[World]:
    """A gateway serving both listeners on 127.0.0.1 over a fresh home in ``tmp``, with the
    ``toy`` model deployed and the users, grants and keys of :func:`_people`."""
    private = tmp / "keys" / "release"
    generate_key("ed25519", private, private.with_suffix(".pub"))
    policy = parse_policy(
        {"signature": {"trusted_keys": ["keys/release.pub"]}}, base=tmp, where="test-policy"
    )
    store = Store.open(Settings(home=tmp / "home"))
    key = load_audit_key(store.home, None, create=True)
    signer = load_signing_key(store.home, create=True)
    audit = AuditLog(store.db, key, signer)
    clock = Clock()
    access = Access(
        store, audit=audit, clock=clock, policy=AccessPolicy(), password_params=TEST_PARAMS
    )
    settings = GatewaySettings(
        plans={"default": RatePlan(rate=1000, burst=1000), "tiny": RatePlan(rate=0.001, burst=2)},
        default_guards=_pipeline(np.random.default_rng(0)),
        refusal_ttl_s=3600,
    )
    gateway = Gateway(
        store,
        audit=audit,
        audit_key=key,
        audit_public_key=signer.public_key(),
        settings=settings,
        access=access,
        policy=policy,
    )
    registry = Registry(store, actor="setup", policy=policy, audit=audit)
    servers, thread = _start(gateway)
    w = World(
        store=store,
        gateway=gateway,
        access=access,
        registry=registry,
        policy=policy,
        clock=clock,
        base=f"http://127.0.0.1:{port_of(servers[0])}",
        admin_base=f"http://127.0.0.1:{port_of(servers[1])}",
        signing_key=private,
        tmp=tmp,
    )
    w.deploy_model("toy")
    _people(w)
    try:
        yield w
    finally:
        for server in servers:
            server.should_exit = True
        thread.join(timeout=30)
        audit.close()
        store.close()


def _people(w: World) -> None:
    """Users of every role (the admin with MFA), grants and API keys."""
    a = w.access
    a.create_user("root", PASSWORD, roles=["admin"], actor="setup")
    enrolment = a.enrol_totp("root", actor="setup")
    a.confirm_totp("root", pyotp.TOTP(enrolment.secret).at(w.clock()), actor="setup")
    w.totp["root"] = enrolment.secret
    a.create_user("eng", PASSWORD, roles=["ml-engineer"], actor="setup")
    a.create_user("aud", PASSWORD, roles=["auditor"], actor="setup")
    a.create_user("cli", PASSWORD, roles=["client"], actor="setup")
    a.create_user("newadmin", PASSWORD, roles=["admin"], actor="setup")  # no MFA: restricted
    for user in ("eng", "cli"):
        a.grant(user, "toy", actor="setup")
    w.tokens["admin"] = w.totp_login("root")
    for user, role in (("eng", "ml-engineer"), ("aud", "auditor"), ("cli", "client")):
        w.tokens[role] = w.login(user)
    restricted = a.login("newadmin", PASSWORD)
    assert restricted.status == "mfa-enrolment-required" and restricted.token is not None
    w.tokens["admin-restricted"] = restricted.token
    w.tokens["key"] = a.issue_key("svc", models=["toy"], plan="default", actor="setup").token
    w.tokens["key-no-grant"] = a.issue_key(
        "svc-other", models=["other"], plan="default", actor="setup"
    ).token
    revoked = a.issue_key("svc-revoked", models=["toy"], plan="default", actor="setup")
    a.revoke_key(revoked.info.id, actor="setup")
    w.tokens["revoked-key"] = revoked.token
    w.clock.offset -= timedelta(hours=13)
    w.tokens["expired-session"] = w.login("cli")
    w.clock.offset += timedelta(hours=13)
