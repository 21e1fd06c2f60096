"""HTML report, read as text: self-contained, escaped, and with every section it promises."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

import pytest

from warden.assess.finding import Finding, Severity
from warden.assess.result import Assessment
from warden.report import render_html, write_html

EXTERNAL = re.compile(r"^\s*(https?:|//|ftp:|file:)", re.IGNORECASE)


@dataclass
class Page(HTMLParser):
    """Every start tag with its attributes, the text inside ids we care about, in order."""

    tags: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    text_by_id: dict[str, str] = field(default_factory=dict)
    _open: list[tuple[str, str | None]] = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__init__(convert_charrefs=True)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {k: v or "" for k, v in attrs}
        self.tags.append((tag, attributes))
        if tag not in {"meta", "br", "link", "img", "input", "path", "use", "image"}:
            self._open.append((tag, attributes.get("id")))

    def handle_endtag(self, tag: str) -> None:
        while self._open:
            name, _ = self._open.pop()
            if name == tag:
                break

    def handle_data(self, data: str) -> None:
        for _, ident in self._open:
            if ident:
                self.text_by_id[ident] = self.text_by_id.get(ident, "") + data


def parse(html: str) -> Page:
    page = Page()
    page.feed(html)
    page.close()
    return page


@pytest.fixture(scope="module")
def html(assessment: Assessment) -> str:
    return render_html(assessment)


def test_no_external_references(html: str) -> None:
    page = parse(html)
    assert page.tags, "the parser saw no tags"
    for tag, attrs in page.tags:
        for name in ("src", "href", "xlink:href", "action", "poster", "data"):
            value = attrs.get(name, "")
            assert not EXTERNAL.match(value), f"<{tag} {name}={value!r}> loads from outside"
        assert not (tag == "link" and "href" in attrs), f"<link> to {attrs['href']}"
        assert not (tag == "script" and "src" in attrs), "script loaded from a URL"
    assert not any(tag == "script" for tag, _ in page.tags), "the report needs no scripts"
    assert "url(http" not in html and "@import" not in html and "@font-face" not in html
    csp = next(a for t, a in page.tags if t == "meta" and a.get("http-equiv"))
    assert "default-src 'none'" in csp["content"]


def test_user_supplied_names_are_escaped(html: str, hostile_name: str) -> None:
    assert hostile_name not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_hostile_names_in_plots_are_escaped(
    base_findings: list[Finding], build_assessment: Callable[..., Assessment]
) -> None:
    pgd = base_findings[1]
    evidence = dict(pgd.evidence)
    evidence["curve"] = {**evidence["curve"], "series": "<img src=x onerror=alert(2)> $x$"}
    evidence["per_class"] = {**evidence["per_class"], "classes": ["<b>cat</b>", *"123456789"]}
    findings = [
        Finding(
            id=pgd.id,
            check=pgd.check,
            title=pgd.title,
            severity=pgd.severity,
            owasp=pgd.owasp,
            evidence=evidence,
        )
    ]
    html = render_html(build_assessment(findings))
    assert "<img src=x" not in html and "<b>cat</b>" not in html
    assert "&lt;img src=x onerror=alert(2)&gt; $x$" in html  # text, not TeX, not markup
    assert "&lt;b&gt;cat&lt;/b&gt;" in html


def test_grade_threats_and_subject(html: str, assessment: Assessment) -> None:
    page = parse(html)
    assert page.text_by_id["overall-grade"].strip() == assessment.scorecard.overall == "F"
    rows = [a for t, a in page.tags if t == "tr" and "data-threat" in a]
    assert [r["data-threat"] for r in rows] == [t.threat for t in assessment.scorecard.threats]
    assert assessment.dataset["fingerprint"] in page.text_by_id["dataset-summary"]
    assert "TorchModel" in page.text_by_id["model-summary"]


def test_plots_are_inline_svg_with_text_as_text(html: str) -> None:
    for ident in ("plot-robustness", "plot-per-class", "plot-examples"):
        start = html.index(f'id="{ident}"')
        end = html.index("</figure>" if ident == "plot-robustness" else "</section>", start)
        block = html[start:end]
        assert "<svg" in block, f"#{ident} has no svg"
        assert "<?xml" not in block and "<!DOCTYPE" not in block
    robustness = html[html.index('id="plot-robustness"') :]
    assert re.search(r"<text[^>]*>pgd</text>", robustness)  # legend entries are real text
    assert re.search(r"<text[^>]*>fgsm</text>", robustness)
    assert 'id="plot-curves-per-finding"' in html  # two curves: each also gets its own plot
    examples = html[html.index('id="plot-examples"') :]
    assert examples.count("data:image/png;base64,") == 12  # 6 clean + 6 adversarial


def test_findings_table_has_one_row_per_finding(html: str, assessment: Assessment) -> None:
    page = parse(html)
    rows = [a for t, a in page.tags if t == "tr" and "data-finding-id" in a]
    expected = sorted(assessment.findings, key=lambda f: -f.severity)
    assert [r["data-finding-id"] for r in rows] == [f.id for f in expected]
    assert [r["data-severity"] for r in rows] == [str(f.severity) for f in expected]
    table = page.text_by_id["findings"]
    for f in assessment.findings:
        assert f.title in table
        assert f.remediation in table
        for threat in (*f.owasp, *f.atlas):
            assert threat in table
    assert "robust accuracy" in table and "0.299" in table


def test_sections_without_evidence_are_left_out(
    build_assessment: Callable[..., Assessment],
) -> None:
    f = Finding(id="x.y", check="x", title="Only a number", severity=Severity.LOW, owasp=("ML05",))
    html = render_html(build_assessment([f]))
    for ident in ("plot-robustness", "plot-per-class", "plot-examples"):
        assert f'id="{ident}"' not in html
    assert parse(html).text_by_id["overall-grade"].strip() == "B"


def test_no_threat_means_grade_not_applicable(build_assessment: Callable[..., Assessment]) -> None:
    f = Finding(id="baseline", check="baseline", title="Clean accuracy", severity=Severity.INFO)
    page = parse(render_html(build_assessment([f])))
    assert page.text_by_id["overall-grade"].strip() == "N/A"


def test_malformed_evidence_is_reported_not_fatal(
    build_assessment: Callable[..., Assessment],
) -> None:
    bad = Finding(
        id="evasion.odd",
        check="evasion.odd",
        title="Odd evidence",
        severity=Severity.MEDIUM,
        owasp=("ML01",),
        evidence={
            "curve": {"x": [0.0, 1.0], "y": [1.0]},
            "examples": {"shape": [1, 2, 2], "clean": [[0, 0, 0, 0]], "adversarial": [[0, 0]]},
        },
    )
    page = parse(render_html(build_assessment([bad])))
    notes = page.text_by_id["report-notes"]
    assert "evasion.odd: evidence.curve was not plotted" in notes
    assert "curve.x has 2 points but curve.y has 1" in notes
    assert "evidence.examples was not plotted" in notes


def test_rendering_is_deterministic(assessment: Assessment) -> None:
    assert render_html(assessment) == render_html(assessment)


def test_write_html(assessment: Assessment, tmp_path: Path) -> None:
    path = write_html(assessment, tmp_path / "r.html")
    assert path.read_text(encoding="utf-8") == render_html(assessment)
