"""The archive corpus part: each hostile container gives its findings, benign ones give none.

The end-to-end tests (the malicious pickle inside each container is flagged CRITICAL) need the
pickle analyser; the archive-level ones do not.
"""

from __future__ import annotations

import pickletools
from pathlib import Path

import pytest
from tests.supplychain.corpus import archives

from warden.assess.finding import Severity
from warden.supplychain.scanner import FileScan, scan_bytes

MARKER = Path("/nonexistent-warden-canary/archives-PWNED")


@pytest.fixture(scope="module")
def malicious() -> dict[str, bytes]:
    return archives.malicious(str(MARKER))


@pytest.fixture(scope="module")
def benign() -> dict[str, bytes]:
    return archives.benign()


@pytest.fixture(scope="module")
def scans(malicious: dict[str, bytes]) -> dict[str, FileScan]:
    return {name: scan_bytes(data, name) for name, data in malicious.items()}


def test_the_corpus_part_is_complete(malicious: dict[str, bytes], benign: dict[str, bytes]) -> None:
    assert set(malicious) == set(archives.EXPECTED)
    assert len(malicious) >= 15
    assert len(benign) >= 5
    assert all("/" not in key for key in (*malicious, *benign))


def test_the_payload_is_the_classic_reduce_of_os_system() -> None:
    ops = [(op.name, arg) for op, arg, _pos in pickletools.genops(archives.evil_pickle("/m"))]
    assert ("GLOBAL", "os system") in ops
    assert ("BINUNICODE", "touch /m") in ops
    assert ops[-2:] == [("BINPUT", 3), ("STOP", None)]
    assert "REDUCE" in [name for name, _arg in ops]


@pytest.mark.parametrize("name", sorted(archives.EXPECTED))
def test_malicious_sample_yields_its_archive_findings(
    name: str, scans: dict[str, FileScan]
) -> None:
    ids = {f.id for f in scans[name].findings}
    assert archives.EXPECTED[name] <= ids
    assert "scan.error" not in ids
    assert not MARKER.exists()


@pytest.mark.parametrize("name", sorted(archives.EXPECTED))
def test_every_malicious_sample_is_flagged(name: str, scans: dict[str, FileScan]) -> None:
    worst = scans[name].worst
    assert worst is not None and worst >= Severity.MEDIUM


@pytest.mark.parametrize("name", sorted(archives.PICKLE_REACHABLE))
def test_the_pickle_inside_is_reached_and_flagged_critical(
    name: str, scans: dict[str, FileScan]
) -> None:
    critical = [
        f
        for f in scans[name].findings
        if f.id.startswith("scan.pickle.") and f.severity == Severity.CRITICAL
    ]
    assert critical, [f.id for f in scans[name].findings]
    if name != "polyglot.pkl":  # there the top-level stream is itself the pickle
        assert any("!" in str(f.evidence["path"]) for f in critical)


@pytest.mark.parametrize("name", sorted(archives.benign()))
def test_benign_sample_yields_no_findings(name: str, benign: dict[str, bytes]) -> None:
    result = scan_bytes(benign[name], name)
    assert [(f.id, f.title) for f in result.findings] == []
    if name != "empty.zip":  # the container and at least one member were reached
        assert len(result.formats) >= 2
