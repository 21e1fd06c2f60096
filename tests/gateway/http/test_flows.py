"""Login, lockout, MFA enrolment and API-key rotation, driven over HTTP."""

from __future__ import annotations

from datetime import timedelta

import pyotp
from tests.gateway.http.conftest import PASSWORD, World

ROW = [0.1, 0.2, 0.3, 0.4]


def test_lockout_over_http(world: World) -> None:
    world.access.create_user("locky", PASSWORD, roles=["client"], actor="setup")
    with world.client() as c:
        assert c.post("/v1/login", json={"name": "locky", "password": PASSWORD}).status_code == 200
        for _ in range(5):
            wrong = c.post("/v1/login", json={"name": "locky", "password": "wrong-password-1"})
            assert wrong.status_code == 401
        locked = c.post("/v1/login", json={"name": "locky", "password": PASSWORD})
        unknown = c.post("/v1/login", json={"name": "nobody-here", "password": PASSWORD})
    assert locked.status_code == 401 and unknown.status_code == 401
    assert locked.json() == unknown.json()  # no enumeration: locked reads as unknown
    assert locked.headers["www-authenticate"] == 'Bearer realm="warden"'
    assert world.access.get_user("locky").locked_until is not None
    world.clock.offset += timedelta(minutes=2)  # the first lockout lasts one minute
    with world.client() as c:
        assert c.post("/v1/login", json={"name": "locky", "password": PASSWORD}).status_code == 200


def test_admin_mfa_enrolment_over_http(world: World) -> None:
    world.access.create_user("ops", PASSWORD, roles=["admin"], actor="setup")
    with world.client(admin=True) as c:
        first = c.post("/v1/login", json={"name": "ops", "password": PASSWORD}).json()
    assert first["status"] == "mfa-enrolment-required" and first["restricted"] is True
    with world.client(first["token"], admin=True) as c:
        assert c.get("/v1/users").status_code == 403  # restricted: nothing but enrolment
        assert c.get("/v1/me").json()["restricted"] is True
        secret = c.post("/v1/me/mfa/enrol").json()["secret"]
        assert c.post("/v1/me/mfa/confirm", json={"code": "000000"}).status_code == 400
        code = pyotp.TOTP(secret).at(world.clock())
        codes = c.post("/v1/me/mfa/confirm", json={"code": code}).json()["recovery_codes"]
        assert len(codes) == 10
        assert c.get("/v1/me").status_code == 401  # the restricted session ended
    world.clock.offset += timedelta(seconds=31)
    with world.client(admin=True) as c:
        asked = c.post("/v1/login", json={"name": "ops", "password": PASSWORD}).json()
        assert asked == {"status": "mfa-required", "token": None, "expires_at": None,
                         "restricted": False}  # fmt: skip
        bad = c.post("/v1/login", json={"name": "ops", "password": PASSWORD, "totp": "123456"})
        assert bad.status_code == 401
        code = pyotp.TOTP(secret).at(world.clock())
        ok = c.post("/v1/login", json={"name": "ops", "password": PASSWORD, "totp": code}).json()
        replay = c.post("/v1/login", json={"name": "ops", "password": PASSWORD, "totp": code})
        assert replay.status_code == 401  # each code works once
        recovery = c.post(
            "/v1/login",
            json={"name": "ops", "password": PASSWORD, "recovery_code": codes[0]},
        ).json()
    assert ok["status"] == "ok" and recovery["status"] == "ok"
    with world.client(ok["token"], admin=True) as c:
        assert c.get("/v1/users").status_code == 200
        assert c.post("/v1/logout").json() == {"revoked": True}
        assert c.get("/v1/users").status_code == 401


def test_key_rotation_grace_over_http(world: World) -> None:
    with world.client(world.tokens["admin"], admin=True) as admin:
        issued = admin.post(
            "/v1/keys", json={"name": "rotating", "models": ["toy"], "plan": "default"}
        ).json()
        old, key_id = issued["token"], issued["key"]["id"]
        rotated = admin.post(f"/v1/keys/{key_id}/rotate", json={"grace_s": 3600}).json()
        new = rotated["token"]
        assert rotated["key"]["models"] == ["toy"] and new != old
        with world.client(old) as c:
            assert c.post("/v1/models/toy/predict", json={"inputs": [ROW]}).status_code == 200
        with world.client(new) as c:
            assert c.post("/v1/models/toy/predict", json={"inputs": [ROW]}).status_code == 200
        jump = timedelta(hours=1, seconds=1)
        world.clock.offset += jump  # the grace period is over
        try:
            with world.client(old) as c:
                assert c.post("/v1/models/toy/predict", json={"inputs": [ROW]}).status_code == 401
            with world.client(new) as c:
                assert c.post("/v1/models/toy/predict", json={"inputs": [ROW]}).status_code == 200
        finally:
            world.clock.offset -= jump  # the other tests' sessions must not idle out
        new_id = rotated["key"]["id"]
        assert admin.post(f"/v1/keys/{new_id}/revoke").json()["revoked_at"] is not None
    with world.client(new) as c:
        assert c.post("/v1/models/toy/predict", json={"inputs": [ROW]}).status_code == 401
