"""Deny by default: every route of both listeners declares the permission it needs.

The walk reads the declarations FastAPI will run (the route's dependency tree), so a route
added without ``Requires(...)`` or ``PUBLIC`` fails here before it can be served.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import Depends, FastAPI

from warden.access.roles import ALL_PERMISSIONS, MODELS_PREDICT, MODELS_READ
from warden.config import Settings
from warden.errors import (
    AuthenticationError,
    ConfigError,
    GatewayError,
    LifecycleError,
    PermissionDenied,
    RegistryError,
    StoreError,
)
from warden.gateway.app import (
    Gateway,
    GatewaySettings,
    create_admin_app,
    create_app,
    settings_from_config,
    status_of,
)
from warden.gateway.auth import AUTHENTICATED, PUBLIC, Requires, route_requirements
from warden.gateway.ratelimit import RatePlan
from warden.store import Store

PUBLIC_INFERENCE = {("GET", "/healthz"), ("GET", "/openapi.json"), ("POST", "/v1/login")}
PUBLIC_ADMIN = PUBLIC_INFERENCE


@pytest.fixture(scope="module")
def apps(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[FastAPI, FastAPI]]:
    home = tmp_path_factory.mktemp("routes") / "home"
    with Store.open(Settings(home=home)) as store:
        gateway = Gateway.open(store)
        yield create_app(gateway), create_admin_app(gateway)
        gateway.close()


@pytest.mark.parametrize("which", ["inference", "admin"])
def test_every_route_declares_a_permission(apps: tuple[FastAPI, FastAPI], which: str) -> None:
    app = apps[0] if which == "inference" else apps[1]
    requirements = route_requirements(app.routes)  # raises for an undeclared route
    assert len(requirements) >= len(app.routes)
    public = {(r.method, r.path) for r in requirements if r.permission is None}
    assert public == (PUBLIC_INFERENCE if which == "inference" else PUBLIC_ADMIN)
    for r in requirements:
        assert r.permission is None or r.permission in ALL_PERMISSIONS | {AUTHENTICATED}


def test_the_listeners_split_the_api(apps: tuple[FastAPI, FastAPI]) -> None:
    inference = {(r.method, r.path) for r in route_requirements(apps[0].routes)}
    admin = {(r.method, r.path) for r in route_requirements(apps[1].routes)}
    assert ("POST", "/v1/models/{name}/predict") in inference - admin
    assert {("GET", "/metrics"), ("POST", "/v1/keys"), ("GET", "/v1/audit/verify")} <= admin
    assert not any(path.startswith(("/v1/users", "/v1/keys", "/v1/audit")) for _, path in inference)
    predict = next(r for r in route_requirements(apps[0].routes) if r.name == "predict")
    assert (predict.permission, predict.model_param) == (MODELS_PREDICT, "name")


def test_a_route_without_a_declaration_is_refused() -> None:
    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)

    @app.get("/declared", dependencies=[Depends(Requires(MODELS_READ))])
    def declared() -> None: ...

    @app.get("/open", dependencies=[Depends(PUBLIC)])
    def open_() -> None: ...

    assert [r.path for r in route_requirements(app.routes)] == ["/declared", "/open"]

    @app.get("/forgotten")
    def forgotten() -> None: ...

    with pytest.raises(ConfigError, match="/forgotten declares 0 access requirements"):
        route_requirements(app.routes)


def test_two_declarations_and_plain_routes_are_refused() -> None:
    app = FastAPI(openapi_url=None)

    @app.get("/both", dependencies=[Depends(PUBLIC), Depends(Requires(MODELS_READ))])
    def both() -> None: ...

    with pytest.raises(ConfigError, match="declares 2 access requirements"):
        route_requirements(app.routes)
    with pytest.raises(ConfigError, match="not an APIRoute"):
        route_requirements(FastAPI().routes)  # the default /openapi.json, /docs routes


def test_unknown_permissions_cannot_be_declared() -> None:
    with pytest.raises(ConfigError, match="route permission 'models:steal'"):
        Requires("models:steal")
    with pytest.raises(ConfigError, match="cannot also require a model grant"):
        Requires(AUTHENTICATED, model_param="name")


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (GatewayError("x", status_code=429), 429),
        (AuthenticationError("x"), 401),
        (PermissionDenied("x"), 403),
        (ConfigError("x"), 400),
        (LifecycleError("x"), 409),
        (RegistryError("x"), 404),
        (StoreError("x"), 503),
    ],
)
def test_errors_map_to_statuses(error: Exception, status: int) -> None:
    assert status_of(error) == status  # type: ignore[arg-type]


def test_settings_refuse_what_cannot_work() -> None:
    with pytest.raises(ConfigError, match="name at least one rate plan"):
        GatewaySettings(plans={})
    with pytest.raises(ConfigError, match="unknown role"):
        GatewaySettings(clearances={"root": "full"})
    with pytest.raises(ConfigError, match="max_body_bytes must be >= 1024"):
        GatewaySettings(max_body_bytes=10)


def test_settings_from_config(tmp_path: Path) -> None:
    import numpy as np

    np.savez(tmp_path / "train.npz", x=np.random.default_rng(0).random((50, 4)), y=np.zeros(50))
    settings = settings_from_config(
        {
            "plans": {"free": {"rate": 1, "burst": 10, "daily_quota": 100}},
            "clearances": {"client": "label"},
            "models": {
                "toy": {
                    "ood_data": "train.npz",
                    "guards": {"input": [{"guard": "ood", "flag_at": 1.0, "block_at": 3.0}]},
                }
            },
        },
        base=tmp_path,
    )
    assert settings.plans == {"free": RatePlan(rate=1, burst=10, daily_quota=100)}
    assert settings.clearances == {"client": "label"}
    assert [r.guard.name for r in settings.guards["toy"].rules] == ["ood"]
    assert settings.default_guards is None
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['gaurds'\]"):
        settings_from_config({"models": {"toy": {"gaurds": {}}}}, base=tmp_path)
    with pytest.raises(ConfigError, match="no guard named 'ood'"):
        settings_from_config(
            {"models": {"toy": {"guards": {"input": [{"guard": "ood"}]}}}}, base=tmp_path
        )
    unsafe = settings_from_config({}, base=tmp_path, unsafe_no_input_guards=True)
    assert unsafe.default_guards is not None and unsafe.default_guards.rules == ()
