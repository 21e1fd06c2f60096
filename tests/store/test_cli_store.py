"""``warden init``, ``warden keys rotate`` and ``warden store verify`` from the outside."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
import typer
from tests.cli._helpers import one_line_error
from typer.testing import CliRunner

from warden.cli.store import init, rotate, store_app
from warden.config import Settings
from warden.store import MasterKey, Store

app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
app.command()(init)
keys = typer.Typer(no_args_is_help=True)  # warden.cli.app adds rotate to the real `keys` group
keys.command("rotate")(rotate)
app.add_typer(keys, name="keys")
app.add_typer(store_app, name="store")
runner = CliRunner()

CLEAN_ENV = {
    "WARDEN_HOME": None,
    "WARDEN_MASTER_KEY": None,
    "WARDEN_NEW_MASTER_KEY": None,
    "WARDEN_DATABASE_URL": None,
}


@pytest.fixture
def env(database_url: str) -> dict[str, str | None]:
    """The environment of a command: no stray WARDEN_* variables; PostgreSQL when asked."""
    if database_url.startswith("postgresql"):
        return {**CLEAN_ENV, "WARDEN_DATABASE_URL": database_url}
    return dict(CLEAN_ENV)


def settings_for(home: Path, env: dict[str, str | None]) -> Settings:
    return Settings(
        home=home,
        database_url=env.get("WARDEN_DATABASE_URL"),
        master_key=env.get("WARDEN_MASTER_KEY"),
    )


def put(home: Path, env: dict[str, str | None], *contents: bytes) -> list[str]:
    with Store.open(settings_for(home, env), create=False) as store:
        return [store.blobs.put_bytes(c).id for c in contents]


def key_id_of(home: Path) -> str:
    return MasterKey.from_text((home / "master.key").read_text()).key_id


def test_init_creates_a_private_home_and_is_idempotent(
    tmp_path: Path, env: dict[str, str | None]
) -> None:
    home = tmp_path / "home"
    first = runner.invoke(app, ["init", "--home", str(home)], env=env)
    assert first.exit_code == 0, first.output
    key_id = key_id_of(home)
    assert f"master key id  {key_id}" in first.stdout
    assert str(home.resolve()) in first.stdout and "database" in first.stdout
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    assert stat.S_IMODE((home / "master.key").stat().st_mode) == 0o600
    assert stat.S_IMODE((home / "blobs").stat().st_mode) == 0o700
    second = runner.invoke(app, ["init"], env={**env, "WARDEN_HOME": str(home)})
    assert second.exit_code == 0, second.output
    assert key_id_of(home) == key_id and key_id in second.stdout


def test_keys_rotate(tmp_path: Path, env: dict[str, str | None]) -> None:
    home = tmp_path / "home"
    assert runner.invoke(app, ["init", "--home", str(home)], env=env).exit_code == 0
    ids = put(home, env, b"one", b"two")
    old = key_id_of(home)
    result = runner.invoke(app, ["keys", "rotate", "--home", str(home)], env=env)
    assert result.exit_code == 0, result.output
    new = key_id_of(home)
    assert new != old
    assert f"master key rotated {old} -> {new}: 2 data key(s) re-wrapped" in result.stdout
    with Store.open(settings_for(home, env), create=False) as store:
        assert [store.blobs.read_bytes(i) for i in ids] == [b"one", b"two"]
    verify = runner.invoke(app, ["store", "verify", "--home", str(home)], env=env)
    assert verify.exit_code == 0 and "ok: 2 blob(s)" in verify.stdout


def test_keys_rotate_with_an_environment_key(tmp_path: Path, env: dict[str, str | None]) -> None:
    home = tmp_path / "home"
    old, new = MasterKey.generate(), MasterKey.generate()
    env = {**env, "WARDEN_MASTER_KEY": old.to_text()}
    assert runner.invoke(app, ["init", "--home", str(home)], env=env).exit_code == 0
    assert not (home / "master.key").exists()
    put(home, env, b"weights")
    refused = runner.invoke(app, ["keys", "rotate", "--home", str(home)], env=env)
    one_line_error(refused, "WARDEN_NEW_MASTER_KEY")
    unset = runner.invoke(
        app, ["keys", "rotate", "--home", str(home), "--new-key-env", "NEXT_KEY"], env=env
    )
    one_line_error(unset, "--new-key-env NEXT_KEY: the variable is not set")
    done = runner.invoke(
        app,
        ["keys", "rotate", "--home", str(home), "--new-key-env", "NEXT_KEY"],
        env={**env, "NEXT_KEY": new.to_text()},
    )
    assert done.exit_code == 0, done.output
    assert f"{old.key_id} -> {new.key_id}: 1 data key(s)" in done.stdout
    assert "set WARDEN_MASTER_KEY to the value of NEXT_KEY" in done.stderr
    switched = {**env, "WARDEN_MASTER_KEY": new.to_text()}
    ok = runner.invoke(app, ["store", "verify", "--home", str(home)], env=switched)
    assert ok.exit_code == 0, ok.output
    stale = runner.invoke(app, ["store", "verify", "--home", str(home)], env=env)
    one_line_error(stale, f"wrapped by master key {new.key_id}")


def test_store_verify_exit_codes(tmp_path: Path, env: dict[str, str | None]) -> None:
    home = tmp_path / "home"
    assert runner.invoke(app, ["init", "--home", str(home)], env=env).exit_code == 0
    empty = runner.invoke(app, ["store", "verify", "--home", str(home)], env=env)
    assert empty.exit_code == 0 and "ok: 0 blob(s)" in empty.stdout
    good, bad = put(home, env, b"good" * 100, b"bad" * 100)
    path = home / "blobs" / bad[:2] / bad
    data = bytearray(path.read_bytes())
    data[-1] ^= 0x01
    path.write_bytes(bytes(data))
    result = runner.invoke(app, ["store", "verify", "--home", str(home)], env=env)
    assert result.exit_code == 1, result.output
    lines = result.stdout.splitlines()
    assert len(lines) == 1 and f"blob {bad}: chunk 1 of 1" in lines[0] and good not in lines[0]
    assert "1 problem(s) in 2 blob(s)" in result.stderr


def test_malformed_environment_key_is_one_line_exit_2(tmp_path: Path) -> None:
    env = {**CLEAN_ENV, "WARDEN_MASTER_KEY": "not-a-key"}
    result = runner.invoke(app, ["init", "--home", str(tmp_path / "home")], env=env)
    one_line_error(result, "WARDEN_MASTER_KEY")


def test_verify_without_a_home_is_one_line_exit_2(tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["store", "verify", "--home", str(tmp_path / "none")], env=CLEAN_ENV
    )
    one_line_error(result, "no Warden home at")
    assert not (tmp_path / "none").exists()
    rotate_result = runner.invoke(
        app, ["keys", "rotate", "--home", str(tmp_path / "none")], env=CLEAN_ENV
    )
    one_line_error(rotate_result, "run `warden init`")
