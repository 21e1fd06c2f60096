"""Access-control matrix over real HTTP: every route of both listeners × every kind of caller.

The expected answer of each cell is computed from the route's declared permission
(:func:`route_requirements`) and the role table (``ROLE_PERMISSIONS``) plus the caller's
grants — not copied from observed results:

* public route → its fixed answer, whatever the credentials;
* no credentials, a bad token, an expired session, a revoked key → 401 with
  ``WWW-Authenticate``;
* a permission the caller's roles lack (a restricted admin session holds none), or a
  model-scoped route for a model the caller has no grant for → 403;
* otherwise the request gets past access control: any answer but 401/403, and never 5xx.

Each route has a probe (path values and a body) chosen so that an authorized request changes
nothing: an invalid body (422), an unknown user or key (400), an unknown model (404). A route
without a probe fails the test, so a new route cannot skip the matrix.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from tests.gateway.http.conftest import World

from warden.access.roles import ALL_MODELS, ROLE_PERMISSIONS
from warden.gateway.app import create_admin_app, create_app
from warden.gateway.auth import AUTHENTICATED, Requirement, route_requirements


@dataclass(frozen=True)
class Probe:
    params: dict[str, str] = field(default_factory=dict)
    body: Any = None
    public_status: int | None = None
    """The answer of a public route (the same for every caller)."""
    fresh: bool = False
    """The request ends the credential (logout): use a fresh one for each caller."""


NOBODY = "nobody-at-all"
NO_KEY = "0000000000000000"
NO_MODEL = "no-such-model"

PROBES: dict[tuple[str, str], Probe] = {
    ("GET", "/openapi.json"): Probe(public_status=200),
    ("GET", "/healthz"): Probe(public_status=200),
    ("POST", "/v1/login"): Probe(body={"name": NOBODY, "password": "wrong"}, public_status=401),
    ("POST", "/v1/logout"): Probe(fresh=True),
    ("GET", "/v1/me"): Probe(),
    ("POST", "/v1/me/mfa/enrol"): Probe(),
    ("POST", "/v1/me/mfa/confirm"): Probe(body={}),
    ("GET", "/v1/models"): Probe(),
    ("POST", "/v1/models/{name}/predict"): Probe(
        params={"name": "toy"}, body={"inputs": [[0.1, 0.2, 0.3, 0.4]]}
    ),
    ("GET", "/v1/users"): Probe(),
    ("POST", "/v1/users"): Probe(body={}),
    ("GET", "/v1/users/{name}"): Probe(params={"name": NOBODY}),
    ("PUT", "/v1/users/{name}/roles"): Probe(params={"name": NOBODY}, body={}),
    ("POST", "/v1/users/{name}/password"): Probe(params={"name": NOBODY}, body={}),
    ("POST", "/v1/users/{name}/disable"): Probe(params={"name": NOBODY}),
    ("POST", "/v1/users/{name}/enable"): Probe(params={"name": NOBODY}),
    ("POST", "/v1/users/{name}/unlock"): Probe(params={"name": NOBODY}),
    ("POST", "/v1/users/{name}/mfa/reset"): Probe(params={"name": NOBODY}),
    ("POST", "/v1/users/{name}/sessions/revoke"): Probe(params={"name": NOBODY}),
    ("GET", "/v1/grants"): Probe(),
    ("POST", "/v1/grants"): Probe(body={}),
    ("POST", "/v1/grants/revoke"): Probe(body={}),
    ("GET", "/v1/keys"): Probe(),
    ("POST", "/v1/keys"): Probe(body={}),
    ("POST", "/v1/keys/{key_id}/rotate"): Probe(params={"key_id": NO_KEY}, body={}),
    ("POST", "/v1/keys/{key_id}/revoke"): Probe(params={"key_id": NO_KEY}),
    ("GET", "/v1/registry/models"): Probe(),
    ("GET", "/v1/registry/models/{model}/versions"): Probe(params={"model": NO_MODEL}),
    ("POST", "/v1/registry/models/{model}/versions/{ref}/deploy"): Probe(
        params={"model": NO_MODEL, "ref": "1"}, body={}
    ),
    ("POST", "/v1/registry/models/{model}/versions/{ref}/quarantine"): Probe(
        params={"model": NO_MODEL, "ref": "1"}, body={}
    ),
    ("POST", "/v1/registry/models/{model}/rollback"): Probe(params={"model": NO_MODEL}, body={}),
    ("GET", "/v1/audit/search"): Probe(),
    ("GET", "/v1/audit/export"): Probe(),
    ("GET", "/v1/audit/verify"): Probe(),
    ("GET", "/metrics"): Probe(),
}


@dataclass(frozen=True)
class Caller:
    name: str
    """Key into ``world.tokens`` (``None``: no Authorization header)."""
    roles: frozenset[str] = frozenset()
    models: frozenset[str] = frozenset()
    live: bool = True
    restricted: bool = False


CALLERS = [
    Caller("admin", frozenset({"admin"}), frozenset({ALL_MODELS})),
    Caller("ml-engineer", frozenset({"ml-engineer"}), frozenset({"toy"})),
    Caller("auditor", frozenset({"auditor"})),
    Caller("client", frozenset({"client"}), frozenset({"toy"})),
    Caller("key", frozenset({"client"}), frozenset({"toy"})),
    Caller("key-no-grant", frozenset({"client"}), frozenset({"other"})),
    Caller("admin-restricted", frozenset({"admin"}), frozenset({ALL_MODELS}), restricted=True),
    Caller("no-credentials", live=False),
    Caller("bad-token", live=False),
    Caller("expired-session", live=False),
    Caller("revoked-key", live=False),
]


def expected(req: Requirement, probe: Probe, caller: Caller) -> int | str:
    """A status, or ``"allowed"`` (past access control)."""
    if req.permission is None:
        assert probe.public_status is not None
        return probe.public_status
    if not caller.live:
        return 401
    if req.permission == AUTHENTICATED:
        return "allowed"
    permissions = set().union(*(ROLE_PERMISSIONS[r] for r in caller.roles))
    if caller.restricted or req.permission not in permissions:
        return 403
    if req.model_param is not None:
        model = probe.params[req.model_param]
        if ALL_MODELS not in caller.models and model not in caller.models:
            return 403
    return "allowed"


def _token(world: World, caller: Caller, probe: Probe) -> str | None:
    if caller.name == "no-credentials":
        return None
    if caller.name == "bad-token":
        return "not-a-real-token"
    if probe.fresh and caller.live and caller.name not in ("key", "key-no-grant"):
        if caller.name == "admin":
            return world.totp_login("root")
        if caller.name == "admin-restricted":
            result = world.access.login("newadmin", "violet-harbour-lantern-42")
            assert result.token is not None
            return result.token
        user = {"ml-engineer": "eng", "auditor": "aud", "client": "cli"}[caller.name]
        return world.login(user)
    return world.tokens[caller.name]


@pytest.mark.parametrize("listener", ["inference", "admin"])
def test_access_matrix(world: World, listener: str) -> None:
    app = create_app(world.gateway) if listener == "inference" else create_admin_app(world.gateway)
    requirements = route_requirements(app.routes)
    missing = {(r.method, r.path) for r in requirements} - set(PROBES)
    assert not missing, f"routes without a probe in the matrix: {sorted(missing)}"
    failures: list[str] = []
    cells = 0
    base = world.admin_base if listener == "admin" else world.base
    client = httpx.Client(base_url=base, timeout=30)
    for req in requirements:
        probe = PROBES[(req.method, req.path)]
        path = req.path.format(**probe.params)
        for caller in CALLERS:
            token = _token(world, caller, probe)
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            response = client.request(
                req.method,
                path,
                headers=headers,
                json=probe.body if probe.body is not None else None,
                timeout=30,
            )
            cells += 1
            want = expected(req, probe, caller)
            got = response.status_code
            ok = got < 500 and (got not in (401, 403) if want == "allowed" else got == want)
            if got == 401 and response.headers.get("www-authenticate", "") != (
                'Bearer realm="warden"'
            ):
                ok = False
            if not ok:
                failures.append(
                    f"{req.method} {path} as {caller.name}: expected {want}, got {got} "
                    f"{response.text[:120]}"
                )
    client.close()
    assert not failures, "\n".join(failures)
    assert cells == len(requirements) * len(CALLERS)


def test_auth_failures_are_counted(world: World) -> None:
    with world.client("bad-token") as c:
        assert c.get("/v1/models").status_code == 401
    with world.client() as c:
        assert c.get("/v1/models").status_code == 401
    with world.client(world.tokens["auditor"]) as c:
        assert c.post("/v1/models/toy/predict", json={"inputs": [[0, 0, 0, 0]]}).status_code == 403
    with world.client(world.tokens["admin"], admin=True) as c:
        text = c.get("/metrics").text
    counts = {
        line.split('"')[1]: float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("warden_gateway_auth_failures_total{")
    }
    for reason in ("bad_credentials", "missing_credentials", "forbidden"):
        assert counts.get(reason, 0) >= 1, reason


def test_one_message_for_every_401(world: World) -> None:
    details = set()
    for name in ("bad-token", "expired-session", "revoked-key"):
        with world.client(world.tokens.get(name, name)) as c:
            response = c.get("/v1/models")
        assert response.status_code == 401
        details.add(response.json()["detail"])
    with world.client() as c:
        details.add(c.get("/v1/models").json()["detail"])
    assert len(details) == 1
