"""``warden sign``, ``warden verify`` and ``warden keys generate`` from the outside."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from warden.cli.sign import keys_app, sign, verify

app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
app.command()(sign)
app.command()(verify)
app.add_typer(keys_app, name="keys")
runner = CliRunner()


@pytest.fixture
def model(tmp_path: Path) -> Path:
    root = tmp_path / "model"
    (root / "weights").mkdir(parents=True)
    (root / "weights" / "w.bin").write_bytes(b"\x01" * 5000)
    (root / "config.json").write_text('{"a": 1}')
    return root


@pytest.fixture(params=["ed25519", "ecdsa-p256"])
def key(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    prefix = tmp_path / "keys" / "signer"
    prefix.parent.mkdir()
    result = runner.invoke(app, ["keys", "generate", "--kind", request.param, "--out", str(prefix)])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"{request.param} key ")
    assert stat.S_IMODE(prefix.stat().st_mode) == 0o600
    return prefix


def test_sign_then_verify_table_and_json(model: Path, key: Path) -> None:
    signed = runner.invoke(app, ["sign", str(model), "--key", str(key)])
    assert signed.exit_code == 0, signed.output
    assert (model / "model.sig").is_file() and "model.sig" in signed.stdout
    table = runner.invoke(app, ["verify", str(model), "--key", f"{key}.pub"])
    assert table.exit_code == 0, table.output
    assert "verified" in table.stdout and "NOT" not in table.stdout
    as_json = runner.invoke(app, ["verify", str(model), "-k", f"{key}.pub", "--format", "json"])
    assert as_json.exit_code == 0, as_json.output
    doc = json.loads(as_json.stdout)
    assert doc["verified"] is True and doc["signed_files"] == 2 and doc["model_name"] == "model"


def test_tampered_model_exits_1_and_names_files(model: Path, key: Path) -> None:
    assert runner.invoke(app, ["sign", str(model), "-k", str(key)]).exit_code == 0
    (model / "weights" / "w.bin").write_bytes(b"\x02" * 5000)
    (model / "config.json").unlink()
    (model / "notes.txt").write_text("added")
    result = runner.invoke(app, ["verify", str(model), "-k", f"{key}.pub", "-f", "json"])
    assert result.exit_code == 1, result.output
    doc = json.loads(result.stdout)
    assert doc["verified"] is False
    assert (doc["modified"], doc["missing"], doc["extra"]) == (
        ["weights/w.bin"],
        ["config.json"],
        ["notes.txt"],
    )
    table = runner.invoke(app, ["verify", str(model), "-k", f"{key}.pub"])
    assert table.exit_code == 1
    assert "weights/w.bin" in table.stdout and "NOT verified" in table.stdout
    assert "1 modified, 1 missing, 1 extra" in table.stderr


def test_bad_signature_exits_1(model: Path, key: Path, tmp_path: Path) -> None:
    sig = tmp_path / "detached.sig"
    assert (
        runner.invoke(app, ["sign", str(model), "-k", str(key), "--out", str(sig)]).exit_code == 0
    )
    other = tmp_path / "other"
    assert runner.invoke(app, ["keys", "generate", "--out", str(other)]).exit_code == 0
    wrong = runner.invoke(
        app, ["verify", str(model), "-k", f"{other}.pub", "-s", str(sig), "-f", "json"]
    )
    assert wrong.exit_code == 1, wrong.output
    assert "wrong public key" in json.loads(wrong.stdout)["error"]
    sig.write_text(sig.read_text()[:40])
    truncated = runner.invoke(app, ["verify", str(model), "-k", f"{key}.pub", "-s", str(sig)])
    assert truncated.exit_code == 1
    assert "not valid JSON" in truncated.stderr


def test_password_env(model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    prefix = tmp_path / "enc"
    monkeypatch.setenv("WARDEN_TEST_PW", "correct horse")
    made = runner.invoke(
        app, ["keys", "generate", "--out", str(prefix), "--password-env", "WARDEN_TEST_PW"]
    )
    assert made.exit_code == 0, made.output
    no_pw = runner.invoke(app, ["sign", str(model), "-k", str(prefix)])
    assert no_pw.exit_code == 2 and "encrypted" in no_pw.stderr
    unset = runner.invoke(app, ["sign", str(model), "-k", str(prefix), "--password-env", "NOPE_X"])
    assert unset.exit_code == 2 and "NOPE_X" in unset.stderr
    ok = runner.invoke(
        app, ["sign", str(model), "-k", str(prefix), "--password-env", "WARDEN_TEST_PW"]
    )
    assert ok.exit_code == 0, ok.output
    assert runner.invoke(app, ["verify", str(model), "-k", f"{prefix}.pub"]).exit_code == 0


def test_usage_and_input_errors_exit_2(model: Path, key: Path, tmp_path: Path) -> None:
    cases = [
        (["verify", str(model), "-k", f"{key}.pub"], "no signature at"),
        (["verify", str(tmp_path / "nope"), "-k", f"{key}.pub"], "not found"),
        (["sign", str(model), "-k", str(tmp_path / "missing.key")], "not found"),
        (["verify", str(model), "-k", str(key), "-s", str(key)], "this is a private key"),
        (["keys", "generate", "--out", str(key)], "already exists"),
    ]
    for args, needle in cases:
        result = runner.invoke(app, args)
        assert result.exit_code == 2, (args, result.output)
        lines = [ln for ln in result.stderr.splitlines() if ln.startswith("error:")]
        assert len(lines) == 1 and needle in lines[0], (args, result.stderr)
    bad_format = runner.invoke(app, ["verify", str(model), "-k", f"{key}.pub", "-f", "xml"])
    assert bad_format.exit_code == 2
    bad_kind = runner.invoke(app, ["keys", "generate", "--kind", "rsa", "--out", "x"])
    assert bad_kind.exit_code == 2
