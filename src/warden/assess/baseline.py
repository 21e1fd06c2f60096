"""``baseline.accuracy``: clean accuracy of the model on the evaluation data, per class too."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from warden.assess.check import CheckContext, ProgressEvent, register_check
from warden.assess.finding import Finding, Severity
from warden.assess.options import Options
from warden.models.base import predict_labels

__all__ = ["AccuracyBaseline", "per_class_accuracy"]


def per_class_accuracy(
    y: NDArray[np.int64], pred: NDArray[np.int64], n_classes: int
) -> list[float | None]:
    """Accuracy on each class; ``None`` for a class with no samples."""
    out: list[float | None] = []
    for c in range(n_classes):
        mask = y == c
        out.append(float((pred[mask] == c).mean()) if mask.any() else None)
    return out


@dataclass(frozen=True)
class AccuracyBaseline:
    """Clean accuracy: the reference every attack's robust accuracy is compared with."""

    name: str = "baseline.accuracy"
    min_accuracy: float = 0.0
    """Below this the finding is medium severity: a model this inaccurate is not worth attacking."""

    def run(self, ctx: CheckContext) -> Iterator[Finding]:
        """Measure accuracy on ``ctx.data``."""
        data = ctx.data
        pred = predict_labels(ctx.model, np.asarray(data.x))
        acc = float((pred == data.y).mean())
        per_class = per_class_accuracy(data.y, pred, ctx.model.n_classes)
        ctx.progress(ProgressEvent(self.name, 1, 1, "clean accuracy"))
        low = acc < self.min_accuracy
        yield Finding(
            id=self.name,
            check=self.name,
            title=f"Clean accuracy {acc:.1%} on {len(data)} samples",
            severity=Severity.MEDIUM if low else Severity.INFO,
            summary=(
                f"The model classifies {acc:.1%} of {len(data)} evaluation samples correctly "
                "without any attack. Robust accuracies below are measured against this."
            ),
            metrics={"accuracy": acc, "n_samples": len(data), "per_class_accuracy": per_class},
            remediation=(
                f"Accuracy is under the suite's minimum of {self.min_accuracy:.0%}; check the "
                "data and model match before reading the attack results."
                if low
                else ""
            ),
        )


def _factory(raw: Mapping[str, Any]) -> AccuracyBaseline:
    opts = Options("baseline.accuracy", raw)
    check = AccuracyBaseline(min_accuracy=opts.number("min_accuracy", 0.0))
    opts.done()
    return check


register_check("baseline.accuracy", _factory)
