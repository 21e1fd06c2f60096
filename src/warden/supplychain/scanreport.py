"""Scan reports as JSON (``warden-scan`` document) and SARIF 2.1.0."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from warden import __version__
from warden.assess.finding import Finding
from warden.report._io import dumps, write_text
from warden.report.sarif import (
    sarif_document,
    sarif_properties,
    sarif_result,
    sarif_rules,
    sarif_uri,
)
from warden.supplychain.scan import ScanReport
from warden.supplychain.scanner import FileScan

__all__ = ["SCAN_FORMAT", "scan_to_dict", "scan_to_sarif", "write_scan_json", "write_scan_sarif"]

SCAN_FORMAT = "warden-scan/1"
"""The ``format`` value of the JSON scan document."""


def _file_dict(fs: FileScan) -> dict[str, Any]:
    worst = fs.worst
    return {
        "path": fs.path,
        "size": fs.size,
        "seconds": round(fs.seconds, 6),
        "formats": [{"path": p, "format": name} for p, name in fs.formats],
        "worst": None if worst is None else str(worst),
        "findings": [f.to_dict() for f in fs.findings],
    }


def scan_to_dict(report: ScanReport) -> dict[str, Any]:
    """The JSON document of a scan: tool, summary counts, then one entry per file."""
    worst = report.worst
    return {
        "format": SCAN_FORMAT,
        "tool": {"name": "warden", "version": __version__},
        "started_at": report.started_at,
        "seconds": round(report.seconds, 6),
        "roots": list(report.roots),
        "summary": {
            "files": len(report.files),
            "bytes": report.bytes_scanned,
            "findings": len(report.findings),
            "by_severity": report.counts(),
            "worst": None if worst is None else str(worst),
        },
        "files": [_file_dict(fs) for fs in report.files],
    }


def _result(f: Finding, index: int, fs: FileScan) -> dict[str, Any]:
    member = str(f.evidence.get("path", fs.path))
    location: dict[str, Any] = {
        "physicalLocation": {"artifactLocation": {"uri": sarif_uri(fs.path)}}
    }
    if member != fs.path:
        location["logicalLocations"] = [
            {"name": member.rsplit("!", 1)[-1], "fullyQualifiedName": member, "kind": "member"}
        ]
    properties = {**sarif_properties(f), "evidence": dict(f.evidence)}
    return sarif_result(f, index, location, f"{f.id}\0{member}\0{f.title}", properties)


def scan_to_sarif(report: ScanReport) -> dict[str, Any]:
    """The SARIF 2.1.0 log of a scan: one rule per finding id, one result per finding."""
    rules, index = sarif_rules(report.findings)
    results = [_result(f, index[f.id], fs) for fs in report.files for f in fs.findings]
    summary = scan_to_dict(report)["summary"]
    return sarif_document(
        rules,
        results,
        automation_id="warden/scan/",
        invocation={"executionSuccessful": True},
        properties={"summary": summary, "roots": list(report.roots)},
        version=__version__,
    )


def write_scan_json(report: ScanReport, path: str | os.PathLike[str]) -> Path:
    """Write the JSON scan document; return the path."""
    return write_text(path, dumps(scan_to_dict(report)))


def write_scan_sarif(report: ScanReport, path: str | os.PathLike[str]) -> Path:
    """Write the SARIF log of a scan; return the path."""
    return write_text(path, dumps(scan_to_sarif(report)))
