"""``warden backup create | verify | restore`` from the outside."""

from __future__ import annotations

import stat
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.cli._helpers import logging_app, one_line_error
from typer.testing import CliRunner

from warden.cli.backup import backup_app
from warden.config import Settings
from warden.store import MasterKey, Store
from warden.store.tables import Model

app = logging_app()
app.add_typer(backup_app, name="backup")
runner = CliRunner()

pytestmark = pytest.mark.usefixtures("restore_warden_logger")


@pytest.fixture(autouse=True)
def _no_env_key(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("WARDEN_MASTER_KEY", "WARDEN_HOME", "WARDEN_DATABASE_URL", "WARDEN_POLICY"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Path]:
    """A Warden home with a model row and two blobs; its key in ``home/master.key``."""
    root = tmp_path / "home"
    with Store.open(Settings(home=root)) as store:
        store.blobs.put_bytes(b"weights " * 5000)
        store.blobs.put_bytes(b"config")
        with store.db.session() as s:
            s.add(Model(name="digits", created_by="cli-test"))
    yield root


def test_create_verify_restore(home: Path, tmp_path: Path) -> None:
    file = tmp_path / "b.wbak"
    created = runner.invoke(app, ["backup", "create", str(file), "--home", str(home)])
    assert created.exit_code == 0, created.output
    assert created.stdout.startswith(f"backup written: {file}") and "2 blobs" in created.stdout
    key_id = MasterKey.from_text((home / "master.key").read_text()).key_id
    assert key_id in created.stderr and "not in the backup" in created.stderr
    assert stat.S_IMODE(file.stat().st_mode) == 0o600

    full = runner.invoke(app, ["backup", "verify", str(file), "--home", str(home)])
    assert full.exit_code == 0, full.output
    assert "manifest HMAC, every blob decrypted" in full.stdout
    fast = runner.invoke(app, ["backup", "verify", str(file), "--home", str(home), "--no-decrypt"])
    assert fast.exit_code == 0, fast.output
    assert "manifest HMAC)" in fast.stdout and "not decrypted" in fast.stderr
    keyless = runner.invoke(app, ["backup", "verify", str(file), "--home", str(tmp_path / "none")])
    assert keyless.exit_code == 0, keyless.output
    assert "checked: hashes)" in keyless.stdout and "HMAC was not checked" in keyless.stderr

    target = tmp_path / "restored"
    restored = runner.invoke(
        app,
        ["backup", "restore", str(file), "--into", str(target), "--master-key-file",
         str(home / "master.key")],
    )  # fmt: skip
    assert restored.exit_code == 0, restored.output
    assert "2 blobs authenticated" in restored.stdout
    assert stat.S_IMODE((target / "master.key").stat().st_mode) == 0o600
    assert (target / "master.key").read_text() == (home / "master.key").read_text()
    with Store.open(Settings(home=target), create=False) as store:
        assert store.blobs.read_bytes(store.blobs.ids()[0]) in {b"weights " * 5000, b"config"}
        with store.db.session() as s:
            assert s.query(Model.name).scalar() == "digits"


def test_verify_exits_1_on_damage(home: Path, tmp_path: Path) -> None:
    file = tmp_path / "b.wbak"
    assert runner.invoke(app, ["backup", "create", str(file), "--home", str(home)]).exit_code == 0
    with tarfile.open(file) as tar:
        offset = tar.getmember("tables/models.jsonl").offset_data
    data = bytearray(file.read_bytes())
    data[offset + 3] ^= 0x20
    file.write_bytes(bytes(data))
    result = runner.invoke(app, ["backup", "verify", str(file), "--home", str(home)])
    assert result.exit_code == 1, result.output
    assert "member tables/models.jsonl: SHA-256" in result.stdout
    assert "DAMAGED" in result.stderr


def test_usage_errors_are_one_line_exit_2(home: Path, tmp_path: Path) -> None:
    file = tmp_path / "b.wbak"
    missing = runner.invoke(app, ["backup", "verify", str(tmp_path / "absent.wbak")])
    one_line_error(missing, "does not exist")
    no_home = runner.invoke(app, ["backup", "create", str(file), "--home", str(tmp_path / "x")])
    one_line_error(no_home, "no Warden home")
    assert runner.invoke(app, ["backup", "create", str(file), "--home", str(home)]).exit_code == 0
    again = runner.invoke(app, ["backup", "create", str(file), "--home", str(home)])
    one_line_error(again, "already exists")
    forced = runner.invoke(app, ["backup", "create", str(file), "--home", str(home), "--force"])
    assert forced.exit_code == 0, forced.output

    no_key = runner.invoke(app, ["backup", "restore", str(file), "--into", str(tmp_path / "r")])
    one_line_error(no_key, "restoring needs the master key")
    wrong = tmp_path / "wrong.key"
    wrong.write_text(MasterKey.generate().to_text())
    bad = runner.invoke(
        app,
        ["backup", "restore", str(file), "--into", str(tmp_path / "r"), "--master-key-file",
         str(wrong)],
    )  # fmt: skip
    one_line_error(bad, "wrapped by master key")
    assert not (tmp_path / "r").exists()
    both = runner.invoke(
        app,
        ["backup", "restore", str(file), "--into", str(tmp_path / "r"), "--master-key-file",
         str(home / "master.key")],
        env={"WARDEN_MASTER_KEY": (home / "master.key").read_text().strip()},
    )  # fmt: skip
    one_line_error(both, "give the master key one way")
    into_self = runner.invoke(
        app,
        ["backup", "restore", str(file), "--into", str(home)],
    )
    one_line_error(into_self, "is not empty")
