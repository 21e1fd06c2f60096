"""The ``warden`` command from the outside: exit codes, one-line errors, files written."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from tests.cli._helpers import one_line_error
from typer.testing import CliRunner

from warden.cli.app import app
from warden.models.loading import save_torch_model

runner = CliRunner()


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory: pytest.TempPathFactory, digits_model: Any) -> Path:
    return save_torch_model(digits_model, tmp_path_factory.mktemp("model"))


def test_version() -> None:
    result = runner.invoke(app, ["version"])
    assert result.exit_code == 0
    assert result.stdout.startswith("warden 0.")


def test_demo_end_to_end_via_console_script(tmp_path: Path) -> None:
    exe = Path(sys.executable).with_name("warden")
    proc = subprocess.run(
        [str(exe), "demo", "--out", str(tmp_path)], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    for name in ("report.html", "report.json", "report.sarif"):
        assert (tmp_path / name).stat().st_size > 0
    assert (tmp_path / "model" / "model.json").is_file()
    assert (tmp_path / "model" / "model.safetensors").is_file()
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["scorecard"]["overall"] in "ABCDF"
    assert "overall grade" in proc.stdout
    assert "Traceback" not in proc.stderr


def test_assess_writes_reports_and_gates_on_severity(saved_model: Path, tmp_path: Path) -> None:
    args = ["assess", "--model", str(saved_model), "--data", "digits", "--out", str(tmp_path)]
    lenient = runner.invoke(app, [*args, "--fail-on", "none", "--format", "json"])
    assert lenient.exit_code == 0, lenient.output
    doc = json.loads(lenient.stdout)
    assert [f["id"] for f in doc["findings"]][:3] == [
        "baseline.accuracy",
        "evasion.fgsm",
        "evasion.pgd",
    ]
    assert {p.name for p in tmp_path.iterdir()} == {"report.html", "report.json", "report.sarif"}
    strict = runner.invoke(app, [*args, "--fail-on", "info"])
    assert strict.exit_code == 1
    assert "overall grade" in strict.stdout


def test_assess_sarif_on_stdout(saved_model: Path, tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        ["assess", "-m", str(saved_model), "-d", "digits", "-o", str(tmp_path), "-f", "sarif",
         "--fail-on", "none", "--suite", str(_tiny_suite(tmp_path))],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    sarif = json.loads(result.stdout)
    assert sarif["version"] == "2.1.0"


def _tiny_suite(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.toml"
    path.write_text(
        'name = "tiny"\nmax_samples = 40\n[[checks]]\nname = "evasion.fgsm"\nepsilons = [0.1]\n'
    )
    return path


def test_missing_model_file(tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["assess", "--model", str(tmp_path / "nope.json"), "--data", "digits"]
    )
    one_line_error(result, "not found")


def test_unknown_dataset(saved_model: Path) -> None:
    result = runner.invoke(app, ["assess", "--model", str(saved_model), "--data", "mnist-9"])
    one_line_error(result, "unknown dataset 'mnist-9'")


def test_bad_fail_on_and_suite(saved_model: Path) -> None:
    base = ["assess", "--model", str(saved_model), "--data", "digits"]
    one_line_error(runner.invoke(app, [*base, "--fail-on", "severe"]), "unknown severity")
    one_line_error(runner.invoke(app, [*base, "--suite", "turbo"]), "unknown suite 'turbo'")


def test_pickle_model_refused_without_flag(digits_model: Any, tmp_path: Path) -> None:
    import torch

    path = tmp_path / "model.pt"
    torch.save(digits_model.module, path)
    base = ["assess", "--model", str(path), "--data", "digits", "-o", str(tmp_path / "r")]
    one_line_error(runner.invoke(app, base), "refusing to load a pickle-based file")
    allowed = runner.invoke(
        app,
        [
            *base,
            "--unsafe-allow-pickle",
            "--fail-on",
            "none",
            "--suite",
            str(_tiny_suite(tmp_path)),
        ],
    )
    assert allowed.exit_code == 0, allowed.output
    assert "unsafe_allow_pickle" in allowed.stderr


def test_plain_pickle_named_like_a_spec_is_still_refused(tmp_path: Path) -> None:
    path = tmp_path / "model.json"
    path.write_bytes(pickle.dumps({"not": "a model"}))
    result = runner.invoke(app, ["assess", "--model", str(path), "--data", "digits"])
    one_line_error(result, "pickle")


def test_shape_mismatch_is_a_clean_error(saved_model: Path) -> None:
    result = runner.invoke(app, ["assess", "--model", str(saved_model), "--data", "breast-cancer"])
    one_line_error(result, "shape")


def test_model_without_gradients_is_not_a_silent_pass(digits_model: Any, tmp_path: Path) -> None:
    from warden.models.export import export_onnx

    onnx_path = export_onnx(digits_model, tmp_path / "digits.bin")
    suite = tmp_path / "whitebox.toml"
    suite.write_text(
        'name = "wb"\nmax_samples = 40\n[[checks]]\nname = "baseline.accuracy"\n'
        '[[checks]]\nname = "evasion.fgsm"\n[[checks]]\nname = "evasion.pgd"\n'
    )
    base = ["assess", "--model", str(onnx_path), "--data", "digits", "-o", str(tmp_path / "r"),
            "--suite", str(suite)]  # fmt: skip
    gated = runner.invoke(app, base)
    assert gated.exit_code == 1, gated.output
    assert "no threat could be assessed" in gated.stderr
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    assert report["scorecard"]["overall"] == "N/A"
    assert [f["id"] for f in report["findings"]][1:] == [
        "evasion.fgsm.skipped",
        "evasion.pgd.skipped",
    ]
    assert runner.invoke(app, [*base, "--fail-on", "none"]).exit_code == 0


def test_quick_suite_grades_an_onnx_model_with_black_box_members(
    digits_model: Any, tmp_path: Path
) -> None:
    from warden.models.export import export_onnx

    onnx_path = export_onnx(digits_model, tmp_path / "digits.onnx")
    out = tmp_path / "r"
    result = runner.invoke(
        app, ["assess", "-m", str(onnx_path), "-d", "digits", "-o", str(out), "--fail-on", "none"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    auto = next(f for f in report["findings"] if f["id"] == "evasion.autoattack")
    assert "apgd-ce" in auto["metrics"]["skipped_members"]
    assert "robust_accuracy[square-linf]" in auto["metrics"]
    assert report["scorecard"]["overall"] in "BCDF"
