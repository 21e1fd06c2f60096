"""``warden registry …`` from the outside: a real home, exit codes, one-line errors."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
from tests.cli._helpers import logging_app, one_line_error
from tests.registry._helpers import bad_pickle, npy_bytes, report
from typer.testing import CliRunner

from warden.cli.registry import registry_app
from warden.supplychain.keys import generate_key
from warden.supplychain.signing import sign as sign_model
from warden.supplychain.signing import verify as verify_model

runner = CliRunner()


@pytest.fixture
def app(restore_warden_logger: None) -> typer.Typer:
    app = logging_app()
    app.add_typer(registry_app, name="registry")
    return app


@pytest.fixture
def home(tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    for var in ("WARDEN_HOME", "WARDEN_MASTER_KEY", "WARDEN_POLICY", "WARDEN_DATABASE_URL"):
        monkeypatch.delenv(var, raising=False)
    if database_url.startswith("postgresql"):
        monkeypatch.setenv("WARDEN_DATABASE_URL", database_url)
    monkeypatch.setenv("USER", "carol")
    yield tmp_path / "home"


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    out = {}
    out["model"] = tmp_path / "weights.npy"
    out["model"].write_bytes(npy_bytes())
    generate_key("ed25519", tmp_path / "k", tmp_path / "k.pub")
    out["key"] = tmp_path / "k"
    out["policy"] = tmp_path / "policy.toml"
    out["policy"].write_text(
        '[signature]\ntrusted_keys = ["k.pub"]\n[assessment]\nmin_grade = "C"\n'
    )
    out["report"] = tmp_path / "report.json"
    out["report"].write_text(json.dumps(report(ML01="C")))
    return out


def run(app: typer.Typer, home: Path, *args: str, code: int = 0) -> Any:
    result = runner.invoke(app, ["registry", *args, "--home", str(home)])
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    return result


def as_json(app: typer.Typer, home: Path, *args: str) -> Any:
    return json.loads(run(app, home, *args, "--format", "json").stdout)


def test_the_whole_flow(
    app: typer.Typer, home: Path, files: dict[str, Path], tmp_path: Path
) -> None:
    assert "created model digits" in run(app, home, "create", "digits", "--owner", "ml").stdout
    spec = tmp_path / "spec.json"
    spec.write_text('{"shape": [16], "dtype": "float32"}')
    v = as_json(app, home, "register", "digits", str(files["model"]), "--input-spec", str(spec))
    assert (v["version"], v["state"], v["created_by"], v["input_spec"]["shape"]) == (
        1,
        "registered",
        "carol",
        [16],
    )
    assert [m["name"] for m in as_json(app, home, "models")] == ["digits"]
    assert [x["version"] for x in as_json(app, home, "versions", "digits")] == [1]
    assert "digits v1" in run(app, home, "show", "digits", "1").stdout

    assert "0 finding(s)" in run(app, home, "scan", "digits", "v1").stdout
    assert (
        "signed by key" in run(app, home, "sign", "digits", "v1", "--key", str(files["key"])).stdout
    )
    out = run(app, home, "attach-assessment", "digits", "v1", str(files["report"])).stdout
    assert "grade C" in out

    gates = run(app, home, "gates", "digits", "v1", "--format", "json", code=1)
    doc = json.loads(gates.stdout)
    assert doc["passed"] is False and doc["failures"] == [
        "signature: FAIL — no trusted keys in the policy — list public keys under [signature] "
        "trusted_keys"
    ]
    doc = as_json(app, home, "gates", "digits", "v1", "--policy", str(files["policy"]))
    assert doc["passed"] is True

    run(app, home, "approve", "digits", "v1", "--policy", str(files["policy"]), "-r", "ok")
    assert "approved -> deployed" in run(app, home, "deploy", "digits", "v1").stdout
    shown = as_json(app, home, "show", "digits", "champion")
    assert shown["state"] == "deployed" and shown["aliases"] == ["champion"]
    assert shown["latest_scan"]["clean"] is True and shown["latest_assessment"]["grade"] == "C"

    history = as_json(app, home, "history", "digits", "v1")
    assert [(h["to_state"], h["actor"]) for h in history] == [
        ("registered", "carol"),
        ("approved", "carol"),
        ("deployed", "carol"),
    ]
    assert "deployed" in run(app, home, "history", "digits").stdout

    run(app, home, "alias", "digits", "stable", "v1")
    assert as_json(app, home, "show", "digits", "stable")["version"] == 1
    run(app, home, "alias", "digits", "stable", "--delete")
    out = tmp_path / "exported"
    assert "exported" in run(app, home, "export", "digits", "v1", str(out)).stdout
    assert (out / "weights.npy").read_bytes() == files["model"].read_bytes()


def test_signatures_interoperate_with_warden_sign(
    app: typer.Typer, home: Path, files: dict[str, Path], tmp_path: Path
) -> None:
    model = tmp_path / "m"
    (model / "sub").mkdir(parents=True)
    (model / "sub" / "a.npy").write_bytes(npy_bytes(3))
    (model / "b.json").write_text("{}")
    bundle = sign_model(model, files["key"])  # model/model.sig: left out when registering
    run(app, home, "register", "m", str(model), "--create")
    pub = str(files["key"]) + ".pub"
    out = run(app, home, "attach-signature", "m", "1", str(bundle), "--public-key", pub).stdout
    assert "verified with key" in out and "2 file(s)" in out
    (model / "b.json").write_text('{"changed": 1}')
    run(app, home, "register", "m", str(model))
    bad = runner.invoke(
        app,
        [
            "registry",
            "attach-signature",
            "m",
            "2",
            str(bundle),
            "--public-key",
            pub,
            "--home",
            str(home),
        ],
    )
    one_line_error(bad, "does not match m v2: it signs other bytes for b.json")
    # and the other way: a registry signature verifies the exported files with `warden verify`
    run(app, home, "sign", "m", "2", "--key", str(files["key"]))
    exported = tmp_path / "exported"
    run(app, home, "export", "m", "2", str(exported))
    sig = tmp_path / "registry.sig"
    shown = as_json(app, home, "show", "m", "2")
    assert shown["latest_signature"]["key_id"]
    from warden.config import load_settings
    from warden.registry import Registry
    from warden.store import Store

    with Store.open(load_settings(home=home), create=False) as store:
        latest = Registry(store, actor="t").latest_signature("m", 2)
    assert latest is not None
    sig.write_text(latest.bundle)
    assert verify_model(exported, pub, signature=sig).ok


def test_refused_gates_exit_1_one_line_each(
    app: typer.Typer, home: Path, files: dict[str, Path]
) -> None:
    run(app, home, "register", "m", str(files["model"]), "--create")
    result = run(app, home, "approve", "m", "1", code=1)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines[0] == "refused: m 1 cannot be approved; 3 gate(s) failed:"
    assert [line.split(":")[0].strip() for line in lines[1:]] == ["scan", "signature", "assessment"]
    assert "no scan recorded — run `warden registry scan m v1`" in lines[1]


def test_override_gates(app: typer.Typer, home: Path, files: dict[str, Path]) -> None:
    run(app, home, "register", "m", str(files["model"]), "--create")
    result = run(app, home, "approve", "m", "1", "--override-gates", "hotfix for INC-9")
    assert "[OVERRIDE]: hotfix for INC-9" in result.stdout
    assert "OVERRIDING failed policy gates" in result.stderr
    last = as_json(app, home, "history", "m", "1")[-1]
    assert last["override"] is True and len(last["evidence"]["failures"]) == 3


def test_dirty_scan_exits_1(app: typer.Typer, home: Path, tmp_path: Path) -> None:
    evil = tmp_path / "evil.pkl"
    evil.write_bytes(bad_pickle(tmp_path))
    run(app, home, "register", "m", str(evil), "--create")
    result = run(app, home, "scan", "m", "1", code=1)
    assert "critical: evil.pkl: pickle calls os.system" in result.stdout
    doc = json.loads(run(app, home, "scan", "m", "1", "--fail-on", "none", "-f", "json").stdout)
    assert doc["max_severity"] == "critical" and doc["report"]["format"] == "warden-scan/1"


def test_datasets_lineage_notes(
    app: typer.Typer, home: Path, files: dict[str, Path], tmp_path: Path
) -> None:
    csv = tmp_path / "d.csv"
    csv.write_text("a,b,label\n1,2,0\n3,4,1\n")
    d = as_json(app, home, "dataset", "add", "train", "--file", str(csv), "--license", "CC0")
    assert d["n_rows"] == 2 and d["attributes"]["columns"] == ["a", "b"]
    run(
        app,
        home,
        "dataset",
        "add",
        "eval",
        "--fingerprint",
        "ab" * 32,
        "--rows",
        "10",
        "--column",
        "x",
        "--column",
        "y",
    )
    assert [x["name"] for x in as_json(app, home, "dataset", "list")] == ["eval", "train"]
    run(app, home, "register", "m", str(files["model"]), "--create")
    run(app, home, "register", "m", str(files["model"]))
    out = run(app, home, "lineage", "add", "m", "1", "--trained-on", "train").stdout
    assert "m v1 trained-on train@sha256:" in out
    run(app, home, "lineage", "add", "m", "1", "--evaluated-on", "eval@abab")
    run(app, home, "lineage", "add", "m", "2", "--derived-from", "v1")
    edges = as_json(app, home, "lineage", "show", "m", "2", "--recursive")
    assert [(e["version"], e["kind"]) for e in edges] == [
        (2, "derived-from"),
        (1, "trained-on"),
        (1, "evaluated-on"),
    ]
    bad = runner.invoke(app, ["registry", "lineage", "add", "m", "1", "--home", str(home)])
    one_line_error(bad, "give exactly one of --trained-on, --evaluated-on, --derived-from")
    cyc = runner.invoke(
        app, ["registry", "lineage", "add", "m", "1", "--derived-from", "v2", "--home", str(home)]
    )
    one_line_error(cyc, "would make a cycle")
    run(app, home, "note", "m", "model-wide note")
    run(app, home, "note", "m", "v2", "hardened with adversarial training")
    notes = as_json(app, home, "notes", "m")
    assert [(n["version"], n["author"]) for n in notes] == [(None, "carol"), (2, "carol")]
    assert [n["text"] for n in as_json(app, home, "notes", "m", "2")] == [
        "hardened with adversarial training"
    ]


def test_lifecycle_commands(app: typer.Typer, home: Path, files: dict[str, Path]) -> None:
    for _ in range(2):
        run(app, home, "register", "m", str(files["model"]), "--create")
        run(app, home, "approve", "m", "latest", "--override-gates", "test")
        run(app, home, "deploy", "m", "latest", "--actor", "dave")
    assert as_json(app, home, "history", "m", "2")[-1]["actor"] == "dave"
    out = run(app, home, "rollback", "m", "--reason", "v2 regressed", "--quarantine").stdout
    assert out.startswith("rolled back: m v1: approved -> deployed: v2 regressed")
    assert as_json(app, home, "show", "m", "2")["state"] == "quarantined"
    run(app, home, "release", "m", "2", "--reason", "false alarm")
    refused = runner.invoke(
        app, ["registry", "quarantine", "m", "1", "-r", "x", "--home", str(home)]
    )
    one_line_error(refused, "m v1 is the champion (deployed) and there is no approved previous")
    run(app, home, "quarantine", "m", "1", "-r", "incident", "--force")
    run(app, home, "retire", "m", "1", "-r", "done")
    bad = runner.invoke(app, ["registry", "deploy", "m", "1", "--home", str(home)])
    one_line_error(bad, "m v1 is retired: cannot deploy; allowed from retired: none")
    missing_reason = runner.invoke(app, ["registry", "retire", "m", "2", "--home", str(home)])
    assert missing_reason.exit_code == 2 and "--reason" in missing_reason.output


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("versions", "nope"), "no model named 'nope'"),
        (("show", "m", "v7"), "m has no version 7"),
        (("show", "m", "prod"), "m has no version or alias 'prod'"),
        (("gates", "m", "1", "--policy", "/nonexistent/policy.toml"), "policy file"),
        (("alias", "m", "champion", "1"), "managed by deploy and rollback"),
        (("attach-assessment", "m", "1", "/nonexistent.json"), "not a readable JSON report"),
        (("note", "m", "v1", "a", "b"), "expected TEXT or REF TEXT"),
    ],
)
def test_errors_are_one_line(
    app: typer.Typer, home: Path, files: dict[str, Path], args: tuple[str, ...], needle: str
) -> None:
    run(app, home, "register", "m", str(files["model"]), "--create")
    result = runner.invoke(app, ["registry", *args, "--home", str(home)])
    one_line_error(result, needle)


def test_reading_a_missing_home_does_not_create_it(app: typer.Typer, home: Path) -> None:
    result = runner.invoke(app, ["registry", "models", "--home", str(home)])
    one_line_error(result, "run `warden init`")
    assert not home.exists()
