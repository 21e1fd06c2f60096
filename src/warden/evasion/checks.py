"""Evasion checks for the assessment suite (OWASP ML01, ATLAS AML.T0043 / AML.T0015).

``evasion.fgsm`` and ``evasion.pgd`` sweep a list of ε and report the robust-accuracy curve.
ε is given in units of the data's median feature range by default (``scale = "range"``), so
the same suite means the same thing for images in [0, 1] and standardised tabular data;
``scale = "absolute"`` takes ε in raw input units.

Severity comes from the *relative robust accuracy* ``r = robust / clean`` at ``grade_epsilon``
(both measured on the same samples): r ≥ 0.9 info, ≥ 0.7 low, ≥ 0.4 medium, ≥ 0.1 high,
below 0.1 critical.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from warden.assess.baseline import per_class_accuracy
from warden.assess.check import CheckContext, CheckSkipped, ProgressEvent, register_check
from warden.assess.finding import Finding, Severity
from warden.assess.options import Options
from warden.errors import AttackError
from warden.evasion.base import AttackResult
from warden.evasion.fgsm import FGSM
from warden.evasion.gradient import GradientAttack
from warden.evasion.pgd import PGD
from warden.models.base import Model, predict_labels

__all__ = ["EvasionSweep", "RobustPoint", "relative_robustness_severity", "robustness_curve"]

OWASP = ("ML01",)
ATLAS_IDS = ("AML.T0043", "AML.T0015")
SEVERITY_STEPS: tuple[tuple[float, Severity], ...] = (
    (0.9, Severity.INFO),
    (0.7, Severity.LOW),
    (0.4, Severity.MEDIUM),
    (0.1, Severity.HIGH),
)


def relative_robustness_severity(robust: float, clean: float) -> Severity:
    """Severity from robust accuracy relative to clean accuracy (module docstring rule)."""
    r = robust / clean if clean > 0 else 0.0
    for threshold, severity in SEVERITY_STEPS:
        if r >= threshold:
            return severity
    return Severity.CRITICAL


@dataclass(frozen=True)
class RobustPoint:
    """Robust accuracy of one attack at one ε."""

    eps: float
    """Budget in input units."""
    robust_accuracy: float
    """Fraction of samples still classified correctly."""
    result: AttackResult
    """The attack's full result."""


def robustness_curve(
    attack: GradientAttack,
    model: Model,
    x: np.ndarray[Any, Any],
    y: np.ndarray[Any, Any],
    epsilons: tuple[float, ...],
    on_point: Callable[[RobustPoint], None] | None = None,
) -> list[RobustPoint]:
    """Run ``attack`` at each ε (sorted ascending) and return the robust-accuracy curve."""
    points = []
    for eps in sorted(epsilons):
        result = dataclasses.replace(attack, eps=eps).attack(model, x, y)
        point = RobustPoint(eps, result.robust_accuracy, result)
        points.append(point)
        if on_point is not None:
            on_point(point)
    return points


@dataclass(frozen=True)
class EvasionSweep:
    """Sweep one gradient attack over ε and grade the model at ``grade_epsilon``."""

    name: str
    attack: GradientAttack
    """Template attack; its ``eps`` is replaced by each sweep value."""
    epsilons: tuple[float, ...]
    """Sweep values, in units given by ``scale``."""
    grade_epsilon: float
    """The ε the severity is decided at (added to the sweep if missing)."""
    scale: str = "range"
    """``range``: ε × median feature range of the data; ``absolute``: raw input units."""
    examples: int = 4
    """How many clean/adversarial image pairs to keep as evidence."""

    def _unit(self, ctx: CheckContext) -> float:
        if self.scale == "absolute":
            return 1.0
        b = ctx.model.bounds
        return float(np.median(np.asarray(b.upper) - np.asarray(b.lower))) or 1.0

    def run(self, ctx: CheckContext) -> Iterator[Finding]:
        """Attack at each ε, then yield one finding with the curve and the grade."""
        from warden.models.torch import TorchModel

        model, data = ctx.model, ctx.data
        if not isinstance(model, TorchModel):
            raise CheckSkipped(
                f"{self.attack.name} needs gradients, which a {type(model).__name__} "
                "does not expose (wrap the network as a TorchModel)"
            )
        unit = self._unit(ctx)
        rel_eps = tuple(sorted(set(self.epsilons) | {self.grade_epsilon}))
        x, y = np.asarray(data.x), np.asarray(data.y)
        clean_pred = predict_labels(model, x)
        clean_acc = float((clean_pred == y).mean())
        attack = dataclasses.replace(self.attack, seed=ctx.seed)
        done = 0

        def tick(point: RobustPoint) -> None:
            nonlocal done
            done += 1
            ctx.progress(
                ProgressEvent(self.name, done, len(rel_eps), f"{attack.name} eps={point.eps:.4g}")
            )

        ctx.progress(ProgressEvent(self.name, 0, len(rel_eps), attack.name))
        points = robustness_curve(attack, model, x, y, tuple(e * unit for e in rel_eps), tick)
        by_rel = dict(zip(rel_eps, points, strict=True))
        graded = by_rel[self.grade_epsilon]
        severity = relative_robustness_severity(graded.robust_accuracy, clean_acc)
        adv_pred = predict_labels(model, graded.result.x_adv)
        fooled = graded.result.success & (clean_pred == y)
        norms = graded.result.norms[fooled]
        evidence: dict[str, Any] = {
            "curve": {
                "series": attack.name,
                "x": [p.eps for p in points],
                "y": [p.robust_accuracy for p in points],
                "x_label": f"epsilon ({attack.norm}, input units)",
                "y_label": "robust accuracy",
                "clean_accuracy": clean_acc,
            },
            "per_class": {
                "classes": list(data.class_names or [str(c) for c in range(model.n_classes)]),
                "clean": per_class_accuracy(y, clean_pred, model.n_classes),
                "adversarial": per_class_accuracy(y, adv_pred, model.n_classes),
                "epsilon": graded.eps,
            },
        }
        if data.metadata.get("kind") == "image" and fooled.any():
            idx = np.flatnonzero(fooled)[: self.examples]
            evidence["examples"] = {
                "shape": list(data.input_shape),
                "clean": np.round(x[idx].reshape(len(idx), -1), 4).tolist(),
                "adversarial": np.round(graded.result.x_adv[idx].reshape(len(idx), -1), 4).tolist(),
                "true": y[idx].tolist(),
                "clean_pred": clean_pred[idx].tolist(),
                "adv_pred": adv_pred[idx].tolist(),
                "epsilon": graded.eps,
            }
        ratio = graded.robust_accuracy / clean_acc if clean_acc else 0.0
        unit_name = "median feature range" if self.scale == "range" else "input units"
        yield Finding(
            id=self.name,
            check=self.name,
            title=(
                f"{attack.name.upper()} at eps={graded.eps:.3g} leaves "
                f"{graded.robust_accuracy:.1%} robust accuracy (clean {clean_acc:.1%})"
            ),
            severity=severity,
            summary=(
                f"{attack.name} ({attack.norm}) was run on {len(x)} samples at "
                f"{len(points)} budgets. At the grading budget eps={graded.eps:.4g} "
                f"({self.grade_epsilon:g} x {unit_name}), robust accuracy is "
                f"{graded.robust_accuracy:.1%}, {ratio:.0%} of clean accuracy."
            ),
            metrics={
                "clean_accuracy": clean_acc,
                "grade_epsilon": graded.eps,
                "robust_accuracy": graded.robust_accuracy,
                "relative_robustness": ratio,
                "attack_success_rate": graded.result.success_rate,
                "median_perturbation": float(np.median(norms)) if len(norms) else 0.0,
                "queries": int(sum(p.result.queries for p in points)),
                "epsilons": [p.eps for p in points],
                "robust_accuracy_curve": [p.robust_accuracy for p in points],
                "attack": {
                    k: v
                    for k, v in dataclasses.asdict(attack).items()
                    if k not in ("eps", "batch_size")
                },
            },
            owasp=OWASP,
            atlas=ATLAS_IDS,
            evidence=evidence,
            remediation=(
                "Small input changes flip the model's answers. Harden it with adversarial "
                "training (PGD-AT or TRADES), add an input detector in front of it, and limit "
                "who can query it; re-assess after each change."
                if severity >= Severity.LOW
                else "Robust at this budget; keep assessing with stronger attacks and budgets."
            ),
        )


def _sweep_factory(
    name: str, build: Callable[[Options], GradientAttack]
) -> Callable[[Mapping[str, Any]], EvasionSweep]:
    def factory(raw: Mapping[str, Any]) -> EvasionSweep:
        opts = Options(name, raw)
        try:
            attack = build(opts)
        except AttackError as exc:
            raise AttackError(f"{name}: {exc}") from exc
        check = EvasionSweep(
            name=name,
            attack=attack,
            epsilons=opts.numbers("epsilons", (0.02, 0.05, 0.1, 0.2)),
            grade_epsilon=opts.number("grade_epsilon", 0.1),
            scale=opts.choice("scale", "range", ("range", "absolute")),
            examples=opts.integer("examples", 4),
        )
        opts.done()
        return check

    return factory


def _fgsm(opts: Options) -> GradientAttack:
    return FGSM(eps=0.0, batch_size=opts.integer("batch_size", 256, minimum=1))


def _pgd(opts: Options) -> GradientAttack:
    return PGD(
        eps=0.0,
        steps=opts.integer("steps", 20, minimum=1),
        restarts=opts.integer("restarts", 1, minimum=1),
        batch_size=opts.integer("batch_size", 256, minimum=1),
    )


register_check("evasion.fgsm", _sweep_factory("evasion.fgsm", _fgsm))
register_check("evasion.pgd", _sweep_factory("evasion.pgd", _pgd))
