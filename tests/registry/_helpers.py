"""Evidence makers for the registry tests: model files, scorecards, keys, a concurrency worker."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
from tests.conftest import make_finding
from tests.supplychain.corpus.pickles import malicious

from warden.assess.finding import Severity
from warden.assess.result import Assessment
from warden.assess.scorecard import score
from warden.report.json import assessment_to_dict

__all__ = [
    "GRADE_SEVERITY",
    "bad_pickle",
    "full_report",
    "npy_bytes",
    "report",
    "scorecard",
]

GRADE_SEVERITY = {
    "A": Severity.INFO,
    "B": Severity.LOW,
    "C": Severity.MEDIUM,
    "D": Severity.HIGH,
    "F": Severity.CRITICAL,
}


def npy_bytes(seed: int = 0, n: int = 16) -> bytes:
    """A small float32 ``.npy`` file: scans clean."""
    buf = io.BytesIO()
    np.save(buf, np.random.default_rng(seed).normal(size=n).astype(np.float32))
    return buf.getvalue()


def bad_pickle(tmp: Path) -> bytes:
    """A pickle that calls ``os.system`` (bytes only; never loaded): scans critical."""
    return malicious(str(tmp / "marker"))["pickle-os-system.pkl"]


def _findings(grades: dict[str, str]) -> list[Any]:
    return [
        make_finding(GRADE_SEVERITY[g], (t,), fid=f"fake.{t.lower()}") for t, g in grades.items()
    ]


def scorecard(**grades: str) -> dict[str, Any]:
    """A real scorecard document with the given grade per threat (``ML01="C"``)."""
    return score(_findings(grades)).to_dict()


def report(**grades: str) -> dict[str, Any]:
    """The smallest accepted assessment document: ``{"scorecard": ...}``."""
    return {"scorecard": scorecard(**grades)}


def full_report(**grades: str) -> dict[str, Any]:
    """A whole ``warden assess`` JSON report (it names the schema, so all of it is checked)."""
    findings = tuple(_findings(grades))
    a = Assessment(
        suite="test",
        model={"kind": "fake"},
        dataset={"name": "fake"},
        findings=findings,
        scorecard=score(findings),
        started_at="2025-01-01T00:00:00+00:00",
        finished_at="2025-01-01T00:00:01+00:00",
        duration_s=1.0,
        warden_version="0.1.0",
    )
    return assessment_to_dict(a)
