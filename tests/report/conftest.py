"""Fixtures for the report tests: a hand-built Assessment (no torch, no attack run)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from sklearn.datasets import load_digits

from warden.assess.finding import Finding, Severity
from warden.assess.result import Assessment
from warden.assess.scorecard import score

HOSTILE_NAME = "<script>alert(1)</script>"
"""A model name that would run script if the HTML report did not escape it."""

EPSILONS = [0.0, 0.5, 1.0, 2.0, 4.0]


def _examples(n: int = 6) -> dict[str, Any]:
    digits = load_digits()
    x = digits.images[:n].astype(float) / 16.0
    rng = np.random.default_rng(0)
    adv = np.clip(x + rng.uniform(-0.25, 0.25, size=x.shape), 0.0, 1.0)
    true = digits.target[:n].tolist()
    adv_pred = [(t + 3) % 10 for t in true]
    adv_pred[1] = true[1]  # one attack that did not flip the answer
    return {
        "shape": [1, 8, 8],
        "clean": np.round(x.reshape(n, -1), 4).tolist(),
        "adversarial": np.round(adv.reshape(n, -1), 4).tolist(),
        "true": true,
        "clean_pred": true,
        "adv_pred": adv_pred,
        "epsilon": 1.0,
    }


def make_findings() -> list[Finding]:
    """Five findings across severities, threats and evidence kinds."""
    classes = [str(c) for c in range(10)]
    clean_pc = [0.99, 0.97, 1.0, 0.95, 0.98, 0.96, 1.0, 0.97, 0.9, 0.94]
    adv_pc = [0.41, 0.2, 0.55, 0.12, 0.3, 0.25, 0.6, 0.33, 0.05, 0.18]
    return [
        Finding(
            id="baseline.accuracy",
            check="baseline",
            title="Clean accuracy is 96.6% on 200 samples",
            severity=Severity.INFO,
            summary="Accuracy on unmodified inputs; the reference for every attack.",
            metrics={"clean_accuracy": 0.966, "samples": 200},
        ),
        Finding(
            id="evasion.pgd",
            check="evasion.pgd",
            title="PGD at eps=1 leaves 29.9% robust accuracy (clean 96.6%)",
            severity=Severity.HIGH,
            summary="PGD (linf) was run on 200 samples at 5 budgets.",
            metrics={
                "clean_accuracy": 0.966,
                "robust_accuracy": 0.299,
                "grade_epsilon": 1.0,
                "attack_success_rate": 0.69,
                "queries": 4000,
                "epsilons": EPSILONS,
                "attack": {"steps": 20, "norm": "linf"},
            },
            owasp=("ML01",),
            atlas=("AML.T0015", "AML.T0043"),
            evidence={
                "curve": {
                    "series": "pgd",
                    "x": EPSILONS,
                    "y": [0.966, 0.61, 0.299, 0.08, 0.0],
                    "x_label": "epsilon (linf, input units)",
                    "y_label": "robust accuracy",
                    "clean_accuracy": 0.966,
                },
                "per_class": {
                    "classes": classes,
                    "clean": clean_pc,
                    "adversarial": adv_pc,
                    "epsilon": 1.0,
                },
                "examples": _examples(),
            },
            remediation="Harden the model with adversarial training (PGD-AT or TRADES).",
        ),
        Finding(
            id="evasion.fgsm",
            check="evasion.fgsm",
            title="FGSM at eps=1 leaves 52.0% robust accuracy (clean 96.6%)",
            severity=Severity.MEDIUM,
            summary="FGSM (linf) was run on 200 samples at 5 budgets.",
            metrics={"robust_accuracy": 0.52, "grade_epsilon": 1.0},
            owasp=("ML01",),
            atlas=("AML.T0043",),
            evidence={
                "curve": {
                    "series": "fgsm",
                    "x": EPSILONS,
                    "y": [0.966, 0.74, 0.52, 0.31, 0.12],
                    "x_label": "epsilon (linf, input units)",
                    "y_label": "robust accuracy",
                    "clean_accuracy": 0.966,
                }
            },
            remediation="Adversarial training also covers single-step attacks.",
        ),
        Finding(
            id="privacy.membership",
            check="privacy.membership",
            title="Membership inference advantage is 0.04",
            severity=Severity.LOW,
            metrics={"advantage": 0.04, "auc": 0.52},
            owasp=("ML04",),
            atlas=("AML.T0024",),
            remediation="Train with DP-SGD or filter confidence scores at the gateway.",
        ),
        Finding(
            id="supplychain.pickle",
            check="supplychain.pickle",
            title="Model file imports os.system when unpickled",
            severity=Severity.CRITICAL,
            summary="The pickle stream references a global that executes commands.",
            metrics={"unsafe_globals": 1, "global": "posix.system"},
            owasp=("ML06",),
            atlas=("AML.T0010", "AML.T0011"),
            remediation="Do not load the file; ask the publisher for safetensors weights.",
        ),
    ]


def make_assessment(
    findings: list[Finding] | None = None, model: dict[str, Any] | None = None
) -> Assessment:
    """An Assessment as ``warden.assess.run`` would return it."""
    fs = tuple(make_findings() if findings is None else findings)
    return Assessment(
        suite="standard",
        model=model
        if model is not None
        else {
            "name": HOSTILE_NAME,
            "kind": "TorchModel",
            "input_shape": [1, 8, 8],
            "n_classes": 10,
            "source": "models/digits cnn.pt",
        },
        dataset={
            "name": "digits",
            "n_samples": 200,
            "input_shape": [1, 8, 8],
            "n_classes": 10,
            "fingerprint": "sha256:9f2c4e1b7a5d3c8e0f6a2b4d8c1e3f5a7b9d0c2e4f6a8b0c",
            "class_names": None,
        },
        findings=fs,
        scorecard=score(fs),
        started_at="2025-01-02T03:04:05+00:00",
        finished_at="2025-01-02T03:05:17+00:00",
        duration_s=72.4,
        warden_version="0.1.0",
        settings={"seed": 0, "max_samples": 200, "checks": [{"name": "evasion.pgd"}]},
    )


@pytest.fixture(scope="session")
def assessment() -> Assessment:
    """The standard report fixture: five findings, overall grade F (frozen; do not edit)."""
    return make_assessment()


@pytest.fixture
def build_assessment() -> Any:
    """The Assessment factory, for tests that need other findings or another model."""
    return make_assessment


@pytest.fixture
def base_findings() -> list[Finding]:
    """The five findings of the standard fixture, to edit."""
    return make_findings()


@pytest.fixture
def hostile_name() -> str:
    """The script-tag model name of the standard fixture."""
    return HOSTILE_NAME
