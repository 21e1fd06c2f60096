"""``warden access …`` from the outside: bootstrap, MFA, keys, grants, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyotp
import pytest
import typer
from tests.cli._helpers import one_line_error
from typer.testing import CliRunner

from warden.access import Access, AuthenticationError
from warden.audit import search
from warden.cli._store import open_store
from warden.cli.access import access_app, parse_duration

app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
app.add_typer(access_app, name="access")
runner = CliRunner()

PASSWORD = "granite-meadow-orbit-77"


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("WARDEN_HOME", "WARDEN_DATABASE_URL", "WARDEN_MASTER_KEY", "WARDEN_AUDIT_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("WARDEN_TEST_PW", PASSWORD)
    return tmp_path / "home"


def _run(home: Path, *args: str, input: str | None = None) -> Any:
    """Run a command; changes (every command but the listings) act as ``ops``."""
    reads = args[:2] in {("key", "list"), ("user", "list")} or args[:1] == ("grants",)
    actor = [] if reads else ["--actor", "ops"]
    return runner.invoke(app, ["access", *args, "--home", str(home), *actor], input=input)


def _ok(result: Any) -> Any:
    assert result.exit_code == 0, (result.stdout, result.stderr)
    return result


def test_bootstrap_admin_with_mfa_keys_and_grants(home: Path) -> None:
    created = _ok(
        _run(home, "user", "add", "root", "--role", "admin", "--password-env", "WARDEN_TEST_PW")
    )
    assert "created user root: roles admin; mfa none; enabled" in created.stdout
    assert "requires MFA" in created.stderr
    enrol = _ok(_run(home, "mfa", "enrol", "root"))
    secret = enrol.stdout.split("secret: ")[1].split()[0]
    assert "otpauth://totp/Warden%3Aroot?" in enrol.stdout
    confirm = _ok(_run(home, "mfa", "confirm", "root", pyotp.TOTP(secret).now()))
    codes = confirm.stdout.split()
    assert len(codes) == 10 and all(len(c) == 19 for c in codes)

    issued = _ok(
        _run(
            home,
            "key",
            "issue",
            "--name",
            "scoring",
            "--model",
            "fraud",
            "--model",
            "churn",
            "--plan",
            "gold",
            "--expires",
            "30d",
        )
    )
    token = issued.stdout.strip()
    assert token.startswith("wdn_") and "\n" not in token
    assert "shown only this once" in issued.stderr
    key_id = token.split("_")[1]

    listed = json.loads(_ok(_run(home, "key", "list", "--format", "json")).stdout)
    assert [(k["id"], k["models"], k["plan"], k["status"]) for k in listed] == [
        (key_id, ["churn", "fraud"], "gold", "active")
    ]
    assert token.split("_", 2)[2] not in json.dumps(listed)

    rotated = _ok(_run(home, "key", "rotate", key_id, "--grace", "1h"))
    new_token = rotated.stdout.strip()
    assert new_token != token and "works until" in rotated.stderr
    new_key_id = new_token.split("_")[1]
    _ok(_run(home, "key", "revoke", new_key_id))

    _ok(_run(home, "user", "add", "alice", "--password-env", "WARDEN_TEST_PW"))
    _ok(_run(home, "grant", "alice", "fraud"))
    _ok(_run(home, "grant", f"key:{key_id}", "wine"))
    grants = json.loads(_ok(_run(home, "grants", "--format", "json")).stdout)
    assert {(g["subject"], g["model"]) for g in grants} == {
        ("user:alice", "fraud"),
        (f"key:{key_id}", "churn"),
        (f"key:{key_id}", "fraud"),
        (f"key:{key_id}", "wine"),
        (f"key:{new_key_id}", "churn"),  # the rotated-in key (now revoked) got the same scope
        (f"key:{new_key_id}", "fraud"),
    }
    _ok(_run(home, "revoke", "alice", "fraud"))
    _ok(_run(home, "user", "roles", "alice", "ml-engineer", "auditor"))
    users = json.loads(_ok(_run(home, "user", "list", "--format", "json")).stdout)
    assert [(u["name"], u["roles"], u["mfa"]) for u in users] == [
        ("alice", ["auditor", "ml-engineer"], "none"),
        ("root", ["admin"], "enrolled"),
    ]
    table = _ok(_run(home, "user", "list")).stdout
    assert "root" in table and "alice" in table  # (narrow test terminal: columns fold)
    _ok(_run(home, "user", "disable", "alice"))
    _ok(_run(home, "user", "enable", "alice"))
    _ok(_run(home, "user", "logout", "alice"))
    _ok(_run(home, "user", "unlock", "alice"))
    _ok(_run(home, "mfa", "reset", "root"))

    with open_store(home, create=False) as store:
        access = Access(store)
        old = access.authenticate_key(token)  # still in its grace hour
        assert old.models == {"churn", "fraud", "wine"}
        with pytest.raises(AuthenticationError):
            access.authenticate_key(new_token)  # revoked
        assert access.login("root", PASSWORD).status == "mfa-enrolment-required"
        actions = [(r.action, r.actor, r.outcome) for r in search(store.db, action="access.*")]
    assert actions[:4] == [
        ("access.user.create", "ops", "ok"),
        ("access.mfa.enrol", "ops", "ok"),
        ("access.mfa.confirm", "ops", "ok"),
        ("access.key.issue", "ops", "ok"),
    ]
    assert ("access.mfa.reset", "ops", "ok") in actions


@pytest.mark.filterwarnings("ignore:Can not control echo")
def test_password_prompt_asks_twice_on_stderr(home: Path) -> None:
    result = _ok(_run(home, "user", "add", "bob", input=f"{PASSWORD}\n{PASSWORD}\n"))
    assert "Password for bob" in result.stderr
    assert PASSWORD not in result.stdout + result.stderr
    mismatch = _run(
        home, "user", "add", "carol", input=f"{PASSWORD}\nother\n{PASSWORD}\n{PASSWORD}\n"
    )
    assert mismatch.exit_code == 0, mismatch.stderr
    assert "do not match" in mismatch.stderr
    with open_store(home, create=False) as store:
        assert [u.name for u in Access(store).list_users()] == ["bob", "carol"]


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("user", "add", "bob", "--password-env", "NOPE_NOT_SET"), "NOPE_NOT_SET"),
        (("user", "disable", "ghost"), "no user named 'ghost'"),
        (("user", "roles", "ghost", "wizard"), "expected one or more of admin"),
        (
            ("key", "issue", "--name", "s", "--model", "m", "--plan", "p", "--expires", "soon"),
            "duration 'soon'",
        ),
        (
            ("key", "issue", "--name", "s", "--model", "m", "--plan", "p", "--role", "admin"),
            "API key role 'admin'",
        ),
        (("key", "revoke", "0123456789abcdef"), "no API key"),
        (("grant", "ghost", "fraud"), "no user named"),
    ],
)
def test_errors_are_one_line(home: Path, args: tuple[str, ...], needle: str) -> None:
    _ok(_run(home, "user", "add", "root", "--role", "admin", "--password-env", "WARDEN_TEST_PW"))
    one_line_error(_run(home, *args), needle)


def test_weak_password_is_refused_with_the_reason(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WEAK_PW", "Password1234")
    one_line_error(_run(home, "user", "add", "bob", "--password-env", "WEAK_PW"), "commonly used")


def test_parse_duration() -> None:
    from datetime import timedelta

    assert parse_duration("30d") == timedelta(days=30)
    assert parse_duration(" 12h ") == timedelta(hours=12)
    assert parse_duration("2w") == timedelta(weeks=2)
    assert parse_duration("never", allow_never=True) is None
    with pytest.raises(Exception, match="expected a number and a unit"):
        parse_duration("never")
