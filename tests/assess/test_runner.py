from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from tests.conftest import FakeCheck, make_finding

from warden.assess import CheckSpec, ProgressEvent, Severity, Suite, iter_findings, run
from warden.errors import AttackError, InputShapeError


def test_failing_check_grades_its_threat_as_failing(fake_model: Any, fake_data: Any) -> None:
    check = FakeCheck(
        name="evasion.fake", findings=(make_finding(Severity.INFO),), error=AttackError("boom")
    )
    findings = list(iter_findings([check], fake_model, fake_data))
    assert [f.id for f in findings] == ["fake.f", "evasion.fake.error"]
    assert findings[1].severity is Severity.HIGH
    assert findings[1].owasp == ("ML01",)
    assert "boom" in findings[1].summary


def test_check_that_yields_nothing_is_a_failure(fake_model: Any, fake_data: Any) -> None:
    (finding,) = iter_findings([FakeCheck(name="evasion.silent")], fake_model, fake_data)
    assert finding.severity is Severity.HIGH and "no finding" in finding.summary


def test_gradient_checks_skip_black_box_models_without_grading(
    fake_model: Any, fake_data: Any
) -> None:
    suite = Suite("t", (CheckSpec("baseline.accuracy"), CheckSpec("evasion.pgd")), max_samples=30)
    result = run(suite, fake_model, fake_data)
    assert [f.id for f in result.findings] == ["baseline.accuracy", "evasion.pgd.skipped"]
    assert result.scorecard.overall == "N/A"
    assert result.findings[0].metrics["accuracy"] == pytest.approx(1.0)
    assert result.dataset["n_samples"] == 30


def test_quick_suite_on_a_trained_cnn(digits_model: Any, digits_split: Any) -> None:
    events: list[ProgressEvent] = []
    result = run(Suite.named("quick"), digits_model, digits_split[1], progress=events.append)
    ids = [f.id for f in result.findings]
    assert ids == [
        "baseline.accuracy",
        "evasion.fgsm",
        "evasion.pgd",
        "evasion.autoattack",
        "evasion.sanity",
    ]
    clean = result.findings[0].metrics["accuracy"]
    fgsm, pgd, auto = result.findings[1], result.findings[2], result.findings[3]
    assert auto.metrics["worst_case_robust_accuracy"] <= pgd.metrics["robust_accuracy"] + 0.02
    for f in (fgsm, pgd):
        curve = f.evidence["curve"]
        assert curve["x"] == sorted(curve["x"])
        assert all(r <= clean + 1e-9 for r in curve["y"])
        assert curve["y"][-1] < clean
        assert f.owasp == ("ML01",) and "AML.T0043" in f.atlas
        assert "examples" in f.evidence
    # PGD is at least as strong as FGSM at every budget of the sweep.
    assert all(
        p <= q + 1e-9
        for p, q in zip(pgd.evidence["curve"]["y"], fgsm.evidence["curve"]["y"], strict=True)
    )
    assert result.scorecard.threats[0].threat == "ML01"
    assert {e.check for e in events} == set(ids)
    assert events[-1].completed == events[-1].total


def test_model_and_data_must_fit(fake_model: Any, digits_split: Any) -> None:
    with pytest.raises(InputShapeError, match="shape"):
        run(Suite.named("quick"), fake_model, digits_split[1])


def test_findings_stream_before_later_checks_run(fake_model: Any, fake_data: Any) -> None:
    first = FakeCheck(name="a.first", findings=(make_finding(Severity.LOW, fid="a.one"),))
    later = FakeCheck(name="b.later", error=RuntimeError("not reached yet"))
    stream = iter_findings([first, later], fake_model, fake_data)
    assert next(stream).id == "a.one"
    assert np.isfinite(fake_model(np.zeros((1, 4), np.float32))).all()


def test_data_outside_model_bounds_is_refused_up_front(fake_model: Any, fake_data: Any) -> None:
    from warden.data.dataset import Dataset

    wide = Dataset(np.asarray(fake_data.x) * 10, fake_data.y, "wide")
    with pytest.raises(InputShapeError, match=r"row \d+ lies outside the model's input bounds"):
        run(Suite.named("quick"), fake_model, wide)
