"""The minimal-perturbation histogram: drawn when a finding carries ``evidence["histogram"]``."""

from __future__ import annotations

import json
from typing import Any

import jsonschema

from warden.assess import Finding, Severity
from warden.report import assessment_to_dict, load_schema, render_html


def _finding(values: list[float]) -> Finding:
    return Finding(
        id="evasion.minimal_perturbation",
        check="evasion.minimal_perturbation",
        title="DeepFool minimal perturbations",
        severity=Severity.HIGH,
        owasp=("ML01",),
        evidence={
            "histogram": {
                "values": values,
                "x_label": "smallest l2 perturbation that flips the input",
                "series": "deepfool",
                "grade_epsilon": 0.8,
            }
        },
    )


def test_histogram_is_plotted_and_valid(build_assessment: Any) -> None:
    a = build_assessment([_finding([0.1 * i for i in range(1, 40)])])
    html = render_html(a)
    start = html.index('id="plot-minimal-perturbation"')
    section = html[start : html.index("</section>", start)]
    assert section.count("<svg") == 1
    assert "smallest l2 perturbation" in section
    jsonschema.Draft202012Validator(load_schema()).validate(
        json.loads(json.dumps(assessment_to_dict(a)))
    )


def test_no_histogram_section_without_the_evidence(assessment: Any) -> None:
    assert 'id="plot-minimal-perturbation"' not in render_html(assessment)


def test_bad_histogram_is_a_note_not_a_crash(build_assessment: Any) -> None:
    bad = Finding(
        id="evasion.odd",
        check="evasion.odd",
        title="odd",
        severity=Severity.LOW,
        evidence={"histogram": {"values": "lots"}},
    )
    html = render_html(build_assessment([bad]))
    assert 'id="plot-minimal-perturbation"' not in html
    assert "evidence.histogram was not plotted" in html


def _curve_finding(fid: str, x_label: str, xs: list[float]) -> Finding:
    return Finding(
        id=fid,
        check="evasion.x",
        title=fid,
        severity=Severity.MEDIUM,
        owasp=("ML01",),
        evidence={
            "curve": {"x": xs, "y": [0.9 - 0.1 * i for i in range(len(xs))], "x_label": x_label}
        },
    )


def test_budgets_of_different_norms_get_separate_plots(build_assessment: Any) -> None:
    a = build_assessment(
        [
            _curve_finding("evasion.a", "epsilon (linf, input units)", [0.05, 0.1]),
            _curve_finding("evasion.b", "epsilon (l2, input units)", [0.5, 1.0, 2.0]),
            _curve_finding("evasion.c", "epsilon (linf, input units)", [0.1]),
        ]
    )
    html = render_html(a)
    start = html.index("<h2>Robustness</h2>")
    section = html[start : html.index("</section>", start)]
    per_finding = section[section.index('id="plot-curves-per-finding"') :]
    combined = section[: section.index('id="plot-curves-per-finding"')]
    assert combined.count("<svg") == 2  # one per norm
    assert per_finding.count("<svg") == 2  # the single-budget curve is not drawn alone
