"""The ML01 checks through the suite runner, on a CNN and on a scikit-learn model."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from warden.assess import CheckSpec, Severity, Suite, run
from warden.data.bundled import load_breast_cancer
from warden.errors import ConfigError
from warden.models.sklearn import SklearnModel

EPS = [0.05, 0.1, 0.2]


def _suite(*checks: CheckSpec, n: int = 60) -> Suite:
    return Suite("t", checks, max_samples=n)


@pytest.fixture(scope="module")
def cancer() -> Any:
    return load_breast_cancer().split(0.3, seed=0)


@pytest.fixture(scope="module")
def sk_model(cancer: Any) -> SklearnModel:
    clf = LogisticRegression(max_iter=500).fit(cancer[0].x, cancer[0].y)
    return SklearnModel(clf, bounds=cancer[0].bounds)


def test_whitebox_reports_each_attack_and_the_worst_case(
    digits_model: Any, digits_split: Any
) -> None:
    spec = CheckSpec("evasion.whitebox", {"epsilons": EPS, "steps": 10, "n_target_classes": 3})
    findings = run(_suite(spec), digits_model, digits_split[1]).findings
    ids = [f.id for f in findings]
    assert ids == [
        "evasion.whitebox.apgd-ce",
        "evasion.whitebox.apgd-t",
        "evasion.whitebox.worst-case",
    ]
    curves = {f.id: f.evidence["curve"]["y"] for f in findings}
    worst = curves["evasion.whitebox.worst-case"]
    for fid, curve in curves.items():
        assert all(w <= c + 1e-9 for w, c in zip(worst, curve, strict=True)), fid
    assert findings[-1].metrics["robust_accuracy"] < findings[-1].metrics["clean_accuracy"]


def test_blackbox_and_decision_run_on_sklearn(sk_model: SklearnModel, cancer: Any) -> None:
    suite = _suite(
        CheckSpec("evasion.blackbox", {"epsilons": [0.1, 0.2], "max_queries": 200}),
        CheckSpec("evasion.decision", {"epsilons": [0.1, 0.2], "max_queries": 1500}),
        n=40,
    )
    result = run(suite, sk_model, cancer[1])
    blackbox, decision = result.findings
    assert blackbox.id == "evasion.blackbox" and decision.id == "evasion.decision"
    for f in (blackbox, decision):
        assert f.metrics["robust_accuracy"] < f.metrics["clean_accuracy"]
        assert f.owasp == ("ML01",)
    assert result.scorecard.threats[0].threat == "ML01"


def test_whitebox_checks_skip_sklearn_models(sk_model: SklearnModel, cancer: Any) -> None:
    result = run(_suite(CheckSpec("evasion.whitebox", {"steps": 2})), sk_model, cancer[1])
    assert [f.id for f in result.findings] == ["evasion.whitebox.skipped"]
    assert result.scorecard.overall == "N/A"


def test_minimal_perturbation_histogram(digits_model: Any, digits_split: Any) -> None:
    spec = CheckSpec("evasion.minimal_perturbation", {"epsilons": EPS, "steps": 20})
    (finding,) = run(_suite(spec), digits_model, digits_split[1]).findings
    hist = finding.evidence["histogram"]
    assert len(hist["values"]) >= 50
    assert finding.metrics["minimal_norm_median"] == pytest.approx(
        np.median(hist["values"]), rel=1e-4
    )
    # The curve is monotone: more budget, fewer robust samples.
    curve = finding.evidence["curve"]["y"]
    assert curve == sorted(curve, reverse=True)


def test_transfer_check(digits_model: Any, digits_split: Any) -> None:
    spec = CheckSpec("evasion.transfer", {"epsilons": EPS, "epochs": 20, "steps": 10})
    (finding,) = run(_suite(spec, n=160), digits_model, digits_split[1]).findings
    assert 0.0 < finding.metrics["transfer_success_rate"] <= 1.0
    assert finding.metrics["surrogate_agreement"] > 0.5
    assert finding.severity >= Severity.INFO


def test_autoattack_quick_reports_per_attack_and_worst_case(
    digits_model: Any, digits_split: Any
) -> None:
    spec = CheckSpec("evasion.autoattack", {"version": "quick"})
    findings = run(_suite(spec), digits_model, digits_split[1]).findings
    main = findings[0]
    assert main.id == "evasion.autoattack"
    per_attack = {k: v for k, v in main.metrics.items() if k.startswith("robust_accuracy[")}
    assert set(per_attack) == {
        "robust_accuracy[apgd-ce]",
        "robust_accuracy[apgd-t]",
        "robust_accuracy[square-linf]",
    }
    assert main.metrics["worst_case_robust_accuracy"] <= min(per_attack.values()) + 1e-9
    assert [f.id for f in findings[1:]] == []  # honest gradients: no masking warning


def test_autoattack_on_black_box_model_runs_only_square(
    sk_model: SklearnModel, cancer: Any
) -> None:
    spec = CheckSpec("evasion.autoattack", {"version": "quick"})
    (finding,) = run(_suite(spec, n=30), sk_model, cancer[1]).findings
    assert "apgd-ce" in finding.metrics["skipped_members"]
    assert "robust_accuracy[square-linf]" in finding.metrics


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (CheckSpec("evasion.whitebox", {"norm": "l3"}), "norm"),
        (CheckSpec("evasion.blackbox", {"max_queries": 0}), "max_queries"),
        (CheckSpec("evasion.decision", {"attack": "nope"}), "unknown attack"),
        (CheckSpec("evasion.autoattack", {"version": "turbo"}), "version"),
        (CheckSpec("evasion.sanity", {"sample": 3}), "unknown option"),
    ],
)
def test_bad_check_options(spec: CheckSpec, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Suite.from_dict({"checks": [{"name": spec.name, **spec.options}]})
