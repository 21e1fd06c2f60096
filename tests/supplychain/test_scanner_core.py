"""The scanner framework: dispatch, fail-closed error handling, limits, walking, reports."""

from __future__ import annotations

import io
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

import pytest

from warden.assess.finding import Finding, Severity
from warden.errors import ConfigError, RegistryError
from warden.supplychain import scanner as scanner_mod
from warden.supplychain.scan import scan_paths
from warden.supplychain.scanner import (
    FormatScanner,
    ScanContext,
    ScanLimits,
    format_names,
    register_format,
    scan_bytes,
    scan_file,
    unregister_format,
)
from warden.supplychain.scanreport import scan_to_dict, scan_to_sarif


class _Boom:
    """A format scanner that raises after yielding one finding."""

    name = "test-boom"

    def sniff(self, head: bytes) -> bool:
        return head.startswith(b"BOOM")

    def scan(self, stream: BinaryIO, ctx: ScanContext) -> Iterator[Finding]:
        yield ctx.finding("test.seen", Severity.LOW, "seen")
        raise ValueError("exploded on purpose")


class _Nest:
    """A toy container: ``NEST`` + payload, the payload being one member."""

    name = "test-nest"

    def sniff(self, head: bytes) -> bool:
        return head.startswith(b"NEST")

    def scan(self, stream: BinaryIO, ctx: ScanContext) -> Iterator[Finding]:
        stream.seek(4)
        yield from ctx.scan_member("inner", io.BytesIO(stream.read()))


class _Slow:
    name = "test-slow"

    def sniff(self, head: bytes) -> bool:
        return head.startswith(b"SLOW")

    def scan(self, stream: BinaryIO, ctx: ScanContext) -> Iterator[Finding]:
        while True:
            ctx.check_time()
            yield from ()


@pytest.fixture
def toy_formats() -> Iterator[None]:
    format_names()  # load the built-ins first
    added = [_Boom(), _Nest(), _Slow()]
    for s in added:
        register_format(s)
    yield
    for s in added:
        unregister_format(s.name)


def test_builtin_formats_are_registered_in_dispatch_order() -> None:
    names = format_names()
    assert "pickle" in names
    assert names.index("zip") < names.index("pickle")


def test_duplicate_and_invalid_registrations_are_refused() -> None:
    with pytest.raises(RegistryError, match="already registered"):
        register_format(scanner_mod._formats()[0])
    with pytest.raises(RegistryError, match="not a FormatScanner"):
        register_format(object())  # type: ignore[arg-type]


def test_a_crashing_format_scanner_becomes_a_finding(toy_formats: None) -> None:
    result = scan_bytes(b"BOOM and then some")
    ids = [f.id for f in result.findings]
    assert ids == ["scan.test.seen", "scan.error"]
    error = result.findings[1]
    assert error.severity >= Severity.MEDIUM
    assert "exploded on purpose" in error.title
    assert ("<bytes>", "test-boom") in result.formats


def test_members_are_dispatched_by_content_with_nested_paths(toy_formats: None) -> None:
    result = scan_bytes(b"NEST" + b"BOOM", name="outer")
    paths = {str(f.evidence["path"]) for f in result.findings}
    assert paths == {"outer!inner"}


def test_nesting_beyond_max_depth_is_a_finding(toy_formats: None) -> None:
    limits = ScanLimits(max_depth=3)
    result = scan_bytes(b"NEST" * 6 + b"BOOM", limits=limits)
    assert [f.id for f in result.findings] == ["scan.limit.depth"]
    assert str(result.findings[0].evidence["path"]).count("!") == 4


def test_time_budget_is_a_finding(toy_formats: None) -> None:
    result = scan_bytes(b"SLOW", limits=ScanLimits(max_seconds=0.05))
    assert [f.id for f in result.findings] == ["scan.limit.time"]


def test_limits_validate_and_replace() -> None:
    with pytest.raises(ConfigError, match="max_depth"):
        ScanLimits(max_depth=0)
    with pytest.raises(ConfigError, match="unknown scan limit"):
        ScanLimits().replace(max_dpth=3)
    assert ScanLimits().replace(max_depth=2).max_depth == 2


def test_unregister_unknown_format_is_refused() -> None:
    with pytest.raises(RegistryError, match="no format scanner"):
        unregister_format("no-such-format")


def test_user_scanner_is_a_protocol_not_a_base_class() -> None:
    assert isinstance(_Boom(), FormatScanner)


def test_unreadable_file_is_a_finding(tmp_path: Path) -> None:
    result = scan_file(tmp_path / "missing.bin")
    assert [f.id for f in result.findings] == ["scan.error"]


def test_text_files_produce_no_findings(tmp_path: Path) -> None:
    (tmp_path / "README.md").write_text("# A model\n\nTrained on digits.\n")
    (tmp_path / "config.json").write_text(json.dumps({"hidden": 64, "layers": 2}))
    (tmp_path / "vocab.txt").write_text("hello\nworld\n")
    report = scan_paths([tmp_path], workers=2)
    assert len(report.files) == 3
    assert report.findings == []
    assert report.worst is None
    assert not report.fails(Severity.INFO)


def test_walk_reports_symlinks_without_following_them(tmp_path: Path) -> None:
    model = tmp_path / "model"
    model.mkdir()
    (model / "weights.txt").write_text("ok")
    outside = tmp_path / "secret.txt"
    outside.write_text("not part of the model")
    os.symlink(outside, model / "link-out")
    os.symlink(model / "weights.txt", model / "link-in")
    report = scan_paths([model])
    by_path = {Path(fs.path).name: fs for fs in report.files}
    assert by_path["link-out"].findings[0].id == "scan.path.symlink"
    assert by_path["link-out"].findings[0].severity == Severity.HIGH
    assert by_path["link-in"].findings[0].severity == Severity.LOW


def test_missing_and_empty_paths_are_usage_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        scan_paths([tmp_path / "nope"])
    with pytest.raises(ConfigError, match="no files to scan"):
        scan_paths([tmp_path])
    with pytest.raises(ConfigError, match="nothing to scan"):
        scan_paths([])


def test_reports_are_valid_json_and_sarif(
    tmp_path: Path, toy_formats: None, sarif_validator: Any
) -> None:
    (tmp_path / "a.bin").write_bytes(b"NESTBOOM")
    (tmp_path / "b.txt").write_text("fine")
    report = scan_paths([tmp_path], workers=1)
    doc = scan_to_dict(report)
    assert doc["summary"]["files"] == 2
    assert doc["summary"]["by_severity"]["medium"] == 1
    assert doc["files"][0]["findings"][0]["evidence"]["path"].endswith("a.bin!inner")
    log = scan_to_sarif(report)
    errors = [e.message for e in sarif_validator.iter_errors(log)]
    assert errors == []
    results = log["runs"][0]["results"]
    assert {r["ruleId"] for r in results} == {"scan.test.seen", "scan.error"}
    assert results[0]["locations"][0]["logicalLocations"][0]["name"] == "inner"


def test_parallel_scans_run_each_scanner_once_per_stream(tmp_path: Path) -> None:
    payload = b"\x80\x02cos\nsystem\nX\x04\x00\x00\x00trueq\x85R."
    for i in range(16):
        (tmp_path / f"m{i}.pkl").write_bytes(payload)
    for _ in range(5):
        scanner_mod._reset_order()  # every worker races to build the dispatch order
        report = scan_paths([tmp_path], workers=8)
        assert [len(fs.findings) for fs in report.files] == [1] * 16
        assert all(fs.formats == ((fs.path, "pickle"),) for fs in report.files)
