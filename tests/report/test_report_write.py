"""write_reports: the three files, format validation before writing, and I/O errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from warden.assess.result import Assessment
from warden.errors import ReportError
from warden.report import FORMATS, write_json, write_reports


def test_writes_the_three_reports(assessment: Assessment, tmp_path: Path) -> None:
    out = tmp_path / "new" / "folder"
    paths = write_reports(assessment, out)
    assert paths == {
        "html": out / "report.html",
        "json": out / "report.json",
        "sarif": out / "report.sarif",
    }
    assert sorted(p.name for p in out.iterdir()) == ["report.html", "report.json", "report.sarif"]
    assert json.loads(paths["json"].read_text(encoding="utf-8"))["schema_version"] == "1.0"
    assert json.loads(paths["sarif"].read_text(encoding="utf-8"))["version"] == "2.1.0"
    assert paths["html"].read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


def test_writes_only_the_formats_asked_for(assessment: Assessment, tmp_path: Path) -> None:
    paths = write_reports(assessment, tmp_path, formats=["SARIF", "json", "json"])
    assert list(paths) == ["sarif", "json"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.json", "report.sarif"]


def test_a_single_format_may_be_a_string(assessment: Assessment, tmp_path: Path) -> None:
    assert list(write_reports(assessment, tmp_path, formats="json")) == ["json"]


def test_unknown_format_names_the_valid_ones(assessment: Assessment, tmp_path: Path) -> None:
    assert FORMATS == ("html", "json", "sarif")
    with pytest.raises(ReportError, match=r"unknown report format 'pdf'.*html, json, sarif"):
        write_reports(assessment, tmp_path / "out", formats=("json", "pdf"))
    assert not (tmp_path / "out").exists()  # checked before anything was written


def test_no_format_is_an_error(assessment: Assessment, tmp_path: Path) -> None:
    with pytest.raises(ReportError, match=r"no format.*html, json, sarif"):
        write_reports(assessment, tmp_path, formats=())


def test_unwritable_folder_is_a_report_error(assessment: Assessment, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder", encoding="utf-8")
    with pytest.raises(ReportError, match=r"cannot create report folder .*a-file"):
        write_reports(assessment, blocker, formats=("json",))
    with pytest.raises(ReportError, match=r"cannot create report folder .*a-file/sub"):
        write_reports(assessment, blocker / "sub", formats=("json",))
    with pytest.raises(ReportError, match=r"cannot write report .*a-file/x\.json"):
        write_json(assessment, blocker / "x.json")


def test_unwritable_file_is_a_report_error(assessment: Assessment, tmp_path: Path) -> None:
    (tmp_path / "report.json").mkdir()  # a folder where the file should go
    with pytest.raises(ReportError, match=r"cannot write report .*report\.json"):
        write_reports(assessment, tmp_path, formats=("json",))
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]  # no temp file left behind
