"""The whole generated corpus: every malicious sample flagged, no benign one, nothing executed.

The canary: every malicious payload would create ``marker`` if anything ran it. The scan runs
in a separate process (the CLI, as users run it) with a scratch working directory, and the
marker must never appear; the scanned tree must be byte-for-byte unchanged afterwards.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import pytest
from tests.supplychain import corpus

from warden.assess.finding import Severity
from warden.supplychain.scan import scan_paths


def _tree_digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def marker(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("canary") / "PWNED"


@pytest.fixture(scope="module")
def malicious_root(tmp_path_factory: pytest.TempPathFactory, marker: Path) -> Path:
    root = tmp_path_factory.mktemp("malicious")
    corpus.write(corpus.malicious(str(marker)), root)
    return root


@pytest.fixture(scope="module")
def benign_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("benign")
    corpus.write(corpus.benign(), root)
    return root


def test_corpus_is_substantial(marker: Path) -> None:
    assert len(corpus.samples(corpus.malicious(str(marker)), Path("."))) >= 50
    assert len(corpus.samples(corpus.benign(), Path("."))) >= 10


def test_every_malicious_sample_is_flagged(malicious_root: Path, marker: Path) -> None:
    missed = []
    for sample in corpus.samples(corpus.malicious(str(marker)), malicious_root):
        report = scan_paths([sample], workers=1)
        if not report.fails(Severity.MEDIUM):
            missed.append((sample.name, [f.id for f in report.findings]))
    assert missed == []


def test_no_benign_sample_is_flagged(benign_root: Path) -> None:
    flagged = []
    for sample in corpus.samples(corpus.benign(), benign_root):
        report = scan_paths([sample], workers=1)
        if report.findings:
            flagged.append((sample.name, [(f.id, f.title) for f in report.findings]))
    assert flagged == []


@pytest.mark.slow
def test_canary_cli_scan_executes_nothing_and_writes_nothing(
    malicious_root: Path, marker: Path, tmp_path: Path
) -> None:
    before = _tree_digest(malicious_root)
    proc = subprocess.run(
        [sys.executable, "-m", "warden.cli.app", "scan", str(malicious_root), "-f", "json"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    assert not marker.exists()
    assert _tree_digest(malicious_root) == before
    assert list(tmp_path.iterdir()) == []
