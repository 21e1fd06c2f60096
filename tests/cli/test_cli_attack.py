"""``warden attack`` from the outside."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from warden.cli.app import app
from warden.models.loading import save_torch_model

runner = CliRunner()


@pytest.fixture(scope="module")
def spec(tmp_path_factory: pytest.TempPathFactory, digits_model: Any) -> Path:
    return save_torch_model(digits_model, tmp_path_factory.mktemp("m"))


def test_attack_sweep_saves_examples(spec: Path, tmp_path: Path) -> None:
    out = tmp_path / "adv" / "pgd.npz"
    result = runner.invoke(
        app,
        ["attack", "pgd-linf", "-m", str(spec), "-d", "digits", "--eps", "0.1", "--eps", "0.05",
         "--max-samples", "60", "--set", "steps=10", "--save", str(out), "--json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert [r["eps"] for r in doc["results"]] == [0.05, 0.1]
    assert doc["results"][1]["robust_accuracy"] <= doc["results"][0]["robust_accuracy"]
    with np.load(out, allow_pickle=False) as saved:
        assert saved["x_adv"].shape == (2, 60, 1, 8, 8)
        assert saved["eps"].tolist() == [0.05, 0.1]
        delta = np.abs(saved["x_adv"] - saved["x"][None]).reshape(2, 60, -1).max(axis=2)
        assert (delta <= saved["eps"][:, None] + 1e-6).all()
        recheck = 1.0 - saved["success"][1].mean()
        assert recheck == pytest.approx(doc["results"][1]["robust_accuracy"])


def test_immutable_features_stay_put(spec: Path, tmp_path: Path) -> None:
    out = tmp_path / "a.npz"
    result = runner.invoke(
        app,
        ["attack", "pgd-linf", "-m", str(spec), "-d", "digits", "--eps", "0.2",
         "--max-samples", "30", "--immutable", "0-31", "--save", str(out)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    with np.load(out) as saved:
        flat_x = saved["x"].reshape(30, -1)
        flat_adv = saved["x_adv"][0].reshape(30, -1)
        np.testing.assert_array_equal(flat_adv[:, :32], flat_x[:, :32])
        assert (flat_adv[:, 32:] != flat_x[:, 32:]).any()


def test_list_and_errors(spec: Path) -> None:
    listed = runner.invoke(app, ["attack", "--list"])
    assert listed.exit_code == 0 and "pgd-linf" in listed.stdout
    base = ["attack", "pgd-linf", "-m", str(spec), "-d", "digits"]
    for args, needle in [
        (["attack", "nope", "-m", str(spec), "-d", "digits", "--eps", "0.1"], "unknown attack"),
        (base, "needs --eps"),
        ([*base, "--eps", "0.1", "--set", "stepz=3"], "stepz"),
        ([*base, "--eps", "0.1", "--immutable", "a"], "--immutable"),
        ([*base, "--eps", "0.1", "--immutable", "999"], "does not exist"),
    ]:
        result = runner.invoke(app, args)
        assert result.exit_code == 2, (args, result.output)
        lines = [ln for ln in result.stderr.splitlines() if ln.startswith("error:")]
        assert len(lines) == 1 and needle in lines[0], result.stderr
