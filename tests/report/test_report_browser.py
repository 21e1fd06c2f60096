"""The HTML report in a real browser: headless Debian Chromium driven by Playwright.

It checks what a reader sees (grade, plots, findings), that the page asks for nothing but
itself, and saves a screenshot to ``tests/artifacts/report.png`` for a person to look at.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from warden.assess.result import Assessment
from warden.report import write_reports

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason=f"Debian chromium not installed at {CHROMIUM}: apt-get install chromium",
    ),
]

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")


@pytest.fixture(scope="module")
def browser() -> Iterator[sync_api.Browser]:
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield browser
        browser.close()


def test_report_renders_in_chromium(
    browser: sync_api.Browser, assessment: Assessment, tmp_path: Path
) -> None:
    paths = write_reports(assessment, tmp_path, formats=("html",))
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    page.goto(paths["html"].as_uri())

    assert page.locator("#overall-grade").inner_text().strip() == assessment.scorecard.overall
    assert page.locator("#plot-robustness svg").count() == 1
    assert page.locator("#plot-robustness svg").bounding_box() is not None
    assert page.locator("#plot-per-class svg").count() == 1
    assert page.locator("#plot-examples svg").count() == 1

    rows = page.locator("#findings tbody tr")
    assert rows.count() == len(assessment.findings)
    shown = [rows.nth(i).get_attribute("data-finding-id") for i in range(rows.count())]
    assert sorted(shown, key=str) == sorted(f.id for f in assessment.findings)
    pgd = page.locator('#findings tr[data-finding-id="evasion.pgd"]')
    assert "PGD at eps=1" in pgd.inner_text()
    assert "HIGH" in pgd.locator(".sev").inner_text().upper()

    # The hostile model name is shown as text, and no script ran to change the title.
    assert "<script>alert(1)</script>" in page.locator("h1").inner_text()
    assert page.title().startswith("Warden report")

    # Self-contained: the only request is the page itself.
    assert requested == [paths["html"].as_uri()]

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "report.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    page.close()
