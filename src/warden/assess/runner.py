"""Run a suite: checks stream findings, which are graded into a scorecard."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

import numpy as np

from warden.assess.check import Check, CheckContext, CheckSkipped, ProgressCallback, _no_progress
from warden.assess.finding import Finding, Severity
from warden.assess.result import Assessment
from warden.assess.scorecard import score
from warden.assess.suite import Suite
from warden.data.dataset import Dataset
from warden.errors import InputShapeError, WardenError
from warden.models.base import Model

__all__ = ["check_compatible", "describe_model", "iter_findings", "run"]

logger = logging.getLogger(__name__)

_CHECK_THREATS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "evasion": (("ML01",), ("AML.T0043", "AML.T0015")),
}
"""Threat ids a failing check's package stands for, so a crash grades as a failure (fail closed)."""


def describe_model(model: Model, **extra: Any) -> dict[str, Any]:
    """JSON-friendly description of a model for reports."""
    return {
        "kind": type(model).__name__,
        "input_shape": list(model.input_shape),
        "n_classes": model.n_classes,
        "bounds": model.bounds.to_dict(),
        **extra,
    }


def check_compatible(model: Model, data: Dataset) -> None:
    """Refuse a model and dataset whose input shapes or classes do not fit together."""
    if tuple(model.input_shape) != tuple(data.input_shape):
        raise InputShapeError(
            f"model expects inputs of shape {tuple(model.input_shape)} but dataset "
            f"{data.name!r} has shape {data.input_shape}"
        )
    if int(data.y.max()) >= model.n_classes:
        raise InputShapeError(
            f"dataset {data.name!r} has label {int(data.y.max())} but the model has only "
            f"{model.n_classes} classes"
        )
    outside = ~model.bounds.contains(np.asarray(data.x), atol=1e-5)
    if outside.any():
        raise InputShapeError(
            f"dataset {data.name!r} row {int(np.flatnonzero(outside)[0])} lies outside the "
            "model's input bounds; clip the data or record bounds that cover it in the model spec"
        )


def _failure(check: Check, exc: BaseException) -> Finding:
    owasp, atlas = _CHECK_THREATS.get(check.name.split(".")[0], ((), ()))
    return Finding(
        id=f"{check.name}.error",
        check=check.name,
        title=f"Check {check.name} could not run: {type(exc).__name__}",
        severity=Severity.HIGH,
        summary=f"{exc}",
        owasp=owasp,
        atlas=atlas,
        remediation=(
            "Fix the cause and re-run; until then the threat counts as assessed and failing."
        ),
    )


def _skipped(check: Check, exc: CheckSkipped) -> Finding:
    return Finding(
        id=f"{check.name}.skipped",
        check=check.name,
        title=f"Skipped: {exc}",
        severity=Severity.INFO,
        summary=f"{check.name} does not apply to this model: {exc}. Its threat is not graded.",
    )


def iter_findings(
    checks: list[Check],
    model: Model,
    data: Dataset,
    *,
    seed: int = 0,
    progress: ProgressCallback | None = None,
) -> Iterator[Finding]:
    """Run ``checks`` in order and yield findings as they are produced.

    A check that raises yields a high-severity ``<check>.error`` finding for its threat
    (fail closed); one that raises :class:`CheckSkipped` yields an ungraded skipped finding.
    """
    ctx = CheckContext(model=model, data=data, seed=seed, progress=progress or _no_progress)
    for check in checks:
        logger.info("running check %s", check.name)
        produced = 0
        try:
            for finding in check.run(ctx):
                produced += 1
                yield finding
        except CheckSkipped as exc:
            yield _skipped(check, exc)
            continue
        except (WardenError, ArithmeticError, ValueError, RuntimeError) as exc:
            logger.warning("check %s failed: %s", check.name, exc, exc_info=True)
            yield _failure(check, exc)
            continue
        if produced == 0:
            yield _failure(check, RuntimeError("the check produced no finding"))


def run(
    suite: Suite,
    model: Model,
    data: Dataset,
    *,
    progress: ProgressCallback | None = None,
    model_info: Mapping[str, Any] | None = None,
) -> Assessment:
    """Run ``suite`` against ``model`` on (a seeded sample of) ``data`` and grade it."""
    check_compatible(model, data)
    checks = suite.build()
    sample = data.sample(suite.max_samples, seed=suite.seed)
    started = datetime.now(UTC)
    t0 = time.perf_counter()
    findings = tuple(iter_findings(checks, model, sample, seed=suite.seed, progress=progress))
    duration = time.perf_counter() - t0
    from warden import __version__

    return Assessment(
        suite=suite.name,
        model=describe_model(model, **dict(model_info or {})),
        dataset={
            **sample.describe(),
            "source_samples": len(data),
            "source_fingerprint": data.fingerprint,
        },
        findings=findings,
        scorecard=score(findings),
        started_at=started.isoformat(timespec="seconds"),
        finished_at=datetime.now(UTC).isoformat(timespec="seconds"),
        duration_s=round(duration, 3),
        warden_version=__version__,
        settings=suite.to_dict(),
    )
