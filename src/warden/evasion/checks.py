"""Evasion checks for the assessment suite (OWASP ML01, ATLAS AML.T0043 / AML.T0015).

Registered checks:

* ``evasion.fgsm``, ``evasion.pgd`` — one gradient attack swept over ε.
* ``evasion.whitebox`` — APGD-CE and APGD-T swept over ε, one finding per attack plus the
  per-sample worst case (TorchModel only).
* ``evasion.blackbox`` — Square (score-based), any model.
* ``evasion.decision``, ``evasion.minimal_perturbation``, ``evasion.transfer`` —
  :mod:`warden.evasion.minimal_checks`.
* ``evasion.autoattack``, ``evasion.sanity`` — :mod:`warden.evasion.ensemble_checks`.

ε is given in units of the data's median feature range by default (``scale = "range"``), so
the same suite means the same thing for images in [0, 1] and standardised tabular data;
``scale = "absolute"`` takes ε in raw input units.

Severity comes from the *relative robust accuracy* ``r = robust / clean`` at ``grade_epsilon``
(both measured on the same samples): r ≥ 0.9 info, ≥ 0.7 low, ≥ 0.4 medium, ≥ 0.1 high,
below 0.1 critical.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from warden.assess.baseline import per_class_accuracy
from warden.assess.check import CheckContext, CheckSkipped, ProgressEvent, register_check
from warden.assess.finding import Finding, Severity
from warden.assess.options import Options
from warden.data.dataset import Dataset
from warden.errors import AttackError
from warden.evasion.base import Attack, AttackResult
from warden.evasion.registry import attack_info, create_attack
from warden.models.base import Model, predict_labels

__all__ = [
    "ATLAS_IDS",
    "EvasionSweep",
    "OWASP",
    "RobustPoint",
    "eps_unit",
    "relative_robustness_severity",
    "robustness_curve",
    "robustness_finding",
]

OWASP = ("ML01",)
ATLAS_IDS = ("AML.T0043", "AML.T0015")
SEVERITY_STEPS: tuple[tuple[float, Severity], ...] = (
    (0.9, Severity.INFO),
    (0.7, Severity.LOW),
    (0.4, Severity.MEDIUM),
    (0.1, Severity.HIGH),
)
REMEDIATION = (
    "Small input changes flip the model's answers. Harden it with adversarial training "
    "(PGD-AT or TRADES), add an input detector in front of it, and limit who can query it; "
    "re-assess after each change."
)


def relative_robustness_severity(robust: float, clean: float) -> Severity:
    """Severity from robust accuracy relative to clean accuracy (module docstring rule)."""
    r = robust / clean if clean > 0 else 0.0
    for threshold, severity in SEVERITY_STEPS:
        if r >= threshold:
            return severity
    return Severity.CRITICAL


def eps_unit(model: Model, scale: str) -> float:
    """Input units per ε unit: 1 for ``absolute``, the median feature range for ``range``."""
    if scale == "absolute":
        return 1.0
    b = model.bounds
    return float(np.median(np.asarray(b.upper) - np.asarray(b.lower))) or 1.0


def require_gradients(model: Model, what: str) -> None:
    """Skip (ungraded) when ``model`` exposes no gradients."""
    from warden.models.torch import TorchModel

    if not isinstance(model, TorchModel):
        raise CheckSkipped(
            f"{what} needs gradients, which a {type(model).__name__} does not expose "
            "(wrap the network as a TorchModel)"
        )


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
    attack: Attack,
    model: Model,
    x: NDArray[Any],
    y: NDArray[Any],
    epsilons: Sequence[float],
    on_point: Callable[[RobustPoint], None] | None = None,
) -> list[RobustPoint]:
    """Run ``attack`` (a dataclass with an ``eps`` field) at each ε, ascending."""
    points = []
    for eps in sorted(epsilons):
        result = dataclasses.replace(attack, eps=eps).attack(model, x, y)  # type: ignore[type-var]
        point = RobustPoint(eps, result.robust_accuracy, result)
        points.append(point)
        if on_point is not None:
            on_point(point)
    return points


def robustness_finding(
    *,
    check: str,
    fid: str,
    label: str,
    norm: str,
    data: Dataset,
    model: Model,
    clean_pred: NDArray[np.int64],
    epsilons: Sequence[float],
    robust: Sequence[float],
    grade_eps: float,
    x_adv: NDArray[np.float32],
    fooled: NDArray[np.bool_],
    norms: NDArray[np.float32] | None = None,
    queries: int = 0,
    metrics: Mapping[str, Any] | None = None,
    summary: str = "",
    n_examples: int = 4,
) -> Finding:
    """One ML01 finding from a robust-accuracy curve and the result at the grading budget.

    ``fooled`` marks samples the attack flipped at ``grade_eps`` (correct before, wrong after),
    ``x_adv`` holds the inputs at ``grade_eps``. Evidence: the curve, per-class accuracy under
    attack and, for image data, a few clean/adversarial pairs.
    """
    x, y = np.asarray(data.x), np.asarray(data.y)
    clean_acc = float((clean_pred == y).mean())
    graded = float(((clean_pred == y) & ~fooled).mean())
    adv_pred = np.where(fooled, -1, clean_pred)
    if fooled.any():
        adv_pred[fooled] = predict_labels(model, x_adv[fooled])
    severity = relative_robustness_severity(graded, clean_acc)
    ratio = graded / clean_acc if clean_acc else 0.0
    evidence: dict[str, Any] = {
        "curve": {
            "series": label,
            "x": list(epsilons),
            "y": list(robust),
            "x_label": f"epsilon ({norm}, input units)",
            "y_label": "robust accuracy",
            "clean_accuracy": clean_acc,
        },
        "per_class": {
            "classes": list(data.class_names or [str(c) for c in range(model.n_classes)]),
            "clean": per_class_accuracy(y, clean_pred, model.n_classes),
            "adversarial": per_class_accuracy(y, adv_pred, model.n_classes),
            "epsilon": grade_eps,
        },
    }
    if data.metadata.get("kind") == "image" and fooled.any():
        idx = np.flatnonzero(fooled)[:n_examples]
        evidence["examples"] = {
            "shape": list(data.input_shape),
            "clean": np.round(x[idx].reshape(len(idx), -1), 4).tolist(),
            "adversarial": np.round(x_adv[idx].reshape(len(idx), -1), 4).tolist(),
            "true": y[idx].tolist(),
            "clean_pred": clean_pred[idx].tolist(),
            "adv_pred": adv_pred[idx].tolist(),
            "epsilon": grade_eps,
        }
    flipped_norms = norms[fooled] if norms is not None else np.zeros(0, np.float32)
    return Finding(
        id=fid,
        check=check,
        title=(
            f"{label} at eps={grade_eps:.3g} ({norm}) leaves {graded:.1%} robust accuracy "
            f"(clean {clean_acc:.1%})"
        ),
        severity=severity,
        summary=(
            f"{summary}At the grading budget eps={grade_eps:.4g} ({norm}, input units) robust "
            f"accuracy is {graded:.1%} on {len(y)} samples, {ratio:.0%} of clean accuracy."
        ),
        metrics={
            "clean_accuracy": clean_acc,
            "grade_epsilon": grade_eps,
            "robust_accuracy": graded,
            "relative_robustness": ratio,
            "attack_success_rate": float(fooled.mean()),
            "median_perturbation": float(np.median(flipped_norms)) if len(flipped_norms) else 0.0,
            "queries": int(queries),
            "epsilons": list(epsilons),
            "robust_accuracy_curve": list(robust),
            **dict(metrics or {}),
        },
        owasp=OWASP,
        atlas=ATLAS_IDS,
        evidence=evidence,
        remediation=REMEDIATION
        if severity >= Severity.LOW
        else "Robust at this budget; keep assessing with stronger attacks and budgets.",
    )


@dataclass(frozen=True)
class EvasionSweep:
    """Sweep one or more attacks over ε; grade each and, for several, the worst case."""

    name: str
    attacks: tuple[Attack, ...]
    """Template attacks (dataclasses with ``eps`` and ``seed``); ``eps`` is swept."""
    epsilons: tuple[float, ...]
    """Sweep values, in units given by ``scale``."""
    grade_epsilon: float
    """The ε the severity is decided at (added to the sweep if missing)."""
    scale: str = "range"
    """``range``: ε × median feature range of the model's bounds; ``absolute``: input units."""
    examples: int = 4
    """How many clean/adversarial image pairs to keep as evidence."""

    def run(self, ctx: CheckContext) -> Iterator[Finding]:
        """Attack at each ε; yield a finding per attack, then the worst case."""
        model, data = ctx.model, ctx.data
        for attack in self.attacks:
            if attack_info(attack.name).kind == "whitebox":
                require_gradients(model, attack.name)
        usable = tuple(
            a for a in self.attacks if attack_info(a.name).min_classes <= model.n_classes
        )
        if not usable:
            raise CheckSkipped(
                f"{', '.join(a.name for a in self.attacks)} need more than "
                f"{model.n_classes} classes"
            )
        skipped = [a.name for a in self.attacks if a not in usable]
        unit = eps_unit(model, self.scale)
        rel = tuple(sorted(set(self.epsilons) | {self.grade_epsilon}))
        eps_abs = [e * unit for e in rel]
        grade_abs = self.grade_epsilon * unit
        x, y = np.asarray(data.x), np.asarray(data.y)
        clean_pred = predict_labels(model, x)
        correct = clean_pred == y
        total, done = len(rel) * len(usable), 0
        fooled_any = {e: np.zeros(len(y), bool) for e in eps_abs}
        worst_adv = np.array(x, copy=True)
        queries = 0
        for template in usable:
            attack = dataclasses.replace(template, seed=ctx.seed)  # type: ignore[type-var]

            def tick(point: RobustPoint, attack: Attack = attack) -> None:
                nonlocal done
                done += 1
                ctx.progress(
                    ProgressEvent(self.name, done, total, f"{attack.name} eps={point.eps:.4g}")
                )

            points = robustness_curve(attack, model, x, y, eps_abs, tick)
            before = fooled_any[grade_abs].copy()
            for p in points:
                fooled_any[p.eps] |= p.result.success & correct
            graded = next(p for p in points if p.eps == grade_abs)
            fooled = graded.result.success & correct
            first = fooled & ~before  # keep the first attack's example for each sample
            worst_adv[first] = graded.result.x_adv[first]
            queries += sum(p.result.queries for p in points)
            fid = self.name if len(self.attacks) == 1 else f"{self.name}.{attack.name}"
            yield robustness_finding(
                check=self.name,
                fid=fid,
                label=attack.name,
                norm=attack.norm,
                data=data,
                model=model,
                clean_pred=clean_pred,
                epsilons=eps_abs,
                robust=[p.robust_accuracy for p in points],
                grade_eps=grade_abs,
                x_adv=graded.result.x_adv,
                fooled=fooled,
                norms=graded.result.norms,
                queries=sum(p.result.queries for p in points),
                metrics={"attack": _settings(attack)},
                summary=f"{attack.name} ({attack.norm}) ran at {len(points)} budgets. ",
                n_examples=self.examples,
            )
        if len(usable) > 1:
            names = ", ".join(a.name for a in usable)
            yield robustness_finding(
                check=self.name,
                fid=f"{self.name}.worst-case",
                label="worst case",
                norm=usable[0].norm,
                data=data,
                model=model,
                clean_pred=clean_pred,
                epsilons=eps_abs,
                robust=[float((correct & ~fooled_any[e]).mean()) for e in eps_abs],
                grade_eps=grade_abs,
                x_adv=worst_adv,
                fooled=fooled_any[grade_abs],
                queries=queries,
                summary=(
                    f"Worst case per sample over {names}: a sample counts as robust only if "
                    "every attack failed on it. "
                    + (
                        f"Not run ({model.n_classes} classes): {', '.join(skipped)}. "
                        if skipped
                        else ""
                    )
                ),
                n_examples=self.examples,
            )


def _settings(attack: Attack) -> dict[str, Any]:
    """An attack's settings for the report (JSON-able scalars only)."""
    if not dataclasses.is_dataclass(attack):
        return {}
    return {
        f.name: getattr(attack, f.name)
        for f in dataclasses.fields(attack)
        if f.name not in ("eps", "batch_size", "immutable")
        and isinstance(getattr(attack, f.name), (int, float, str, bool))
    }


def sweep_options(opts: Options) -> dict[str, Any]:
    """The ε-sweep options every sweep-style check shares."""
    return {
        "epsilons": opts.numbers("epsilons", (0.02, 0.05, 0.1, 0.2)),
        "grade_epsilon": opts.number("grade_epsilon", 0.1),
        "scale": opts.choice("scale", "range", ("range", "absolute")),
        "examples": opts.integer("examples", 4),
    }


def _attack(name: str, opts: Options, **settings: Any) -> Attack:
    try:
        return create_attack(name, eps=0.0, **settings)
    except AttackError as exc:
        raise AttackError(f"{opts.check}: {exc}") from exc


def _sweep_factory(
    name: str, build: Callable[[Options], tuple[Attack, ...]]
) -> Callable[[Mapping[str, Any]], EvasionSweep]:
    def factory(raw: Mapping[str, Any]) -> EvasionSweep:
        opts = Options(name, raw)
        attacks = build(opts)
        check = EvasionSweep(name=name, attacks=attacks, **sweep_options(opts))
        opts.done()
        return check

    return factory


def _common(opts: Options) -> dict[str, Any]:
    return {"batch_size": opts.integer("batch_size", 256, minimum=1)}


def _fgsm(opts: Options) -> tuple[Attack, ...]:
    return (_attack("fgsm", opts, **_common(opts)),)


def _pgd(opts: Options) -> tuple[Attack, ...]:
    return (
        _attack(
            "pgd-linf",
            opts,
            steps=opts.integer("steps", 20, minimum=1),
            restarts=opts.integer("restarts", 1, minimum=1),
            **_common(opts),
        ),
    )


def _whitebox(opts: Options) -> tuple[Attack, ...]:
    norm = opts.choice("norm", "linf", ("linf", "l2"))
    steps = opts.integer("steps", 50, minimum=1)
    targets = opts.integer("n_target_classes", 9, minimum=1)
    suffix = "" if norm == "linf" else "-l2"
    common = _common(opts)
    return (
        _attack(f"apgd-ce{suffix}", opts, steps=steps, **common),
        _attack(f"apgd-t{suffix}", opts, steps=steps, n_target_classes=targets, **common),
    )


def _blackbox(opts: Options) -> tuple[Attack, ...]:
    norm = opts.choice("norm", "linf", ("linf", "l2"))
    queries = opts.integer("max_queries", 1000, minimum=1)
    return (_attack(f"square-{norm}", opts, max_queries=queries, **_common(opts)),)


register_check("evasion.fgsm", _sweep_factory("evasion.fgsm", _fgsm))
register_check("evasion.pgd", _sweep_factory("evasion.pgd", _pgd))
register_check("evasion.whitebox", _sweep_factory("evasion.whitebox", _whitebox))
register_check("evasion.blackbox", _sweep_factory("evasion.blackbox", _blackbox))
