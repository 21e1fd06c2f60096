"""The README's Python examples run as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_python_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text("utf-8"), re.S)
    assert blocks, "README has no python example"
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {}
    for block in blocks:  # later examples build on the first one's names
        exec(compile(block, str(README), "exec"), namespace)  # noqa: S102 - our own README
    assert {p.name for p in (tmp_path / "out").iterdir()} == {
        "report.html",
        "report.json",
        "report.sarif",
        "model",
        "keys",
        "home",
        "backup.tar",
    }
    assert namespace["report"].findings == []  # type: ignore[attr-defined]
    assert namespace["check"].ok  # type: ignore[attr-defined]
    assert (tmp_path / "out" / "model" / "model.sig").is_file()
    assert namespace["bom"]["specVersion"] == "1.6"  # type: ignore[index]
    assert namespace["v"].number == 1  # type: ignore[attr-defined]
    assert namespace["card"].version.state == "deployed"  # type: ignore[attr-defined]
    assert isinstance(namespace["gaps"], int)
    assert namespace["assessment"].scorecard.overall in {"A", "B", "C", "D", "F"}  # type: ignore[attr-defined]
