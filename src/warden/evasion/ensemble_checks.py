"""``evasion.autoattack`` (the AutoEvaluate ensemble) and ``evasion.sanity`` (can the
robustness numbers be trusted?)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from warden.assess.check import CheckContext, ProgressEvent, register_check
from warden.assess.finding import Finding, Severity
from warden.assess.options import Options
from warden.evasion.autoeval import AutoEvaluate
from warden.evasion.base import AttackResult
from warden.evasion.checks import ATLAS_IDS, OWASP, eps_unit, robustness_finding
from warden.evasion.pgd import PGD
from warden.evasion.registry import attack_names, create_attack
from warden.evasion.sanity import (
    blackbox_beats_whitebox,
    gradient_stats,
    output_randomness,
    saturation,
    to_probabilities,
)
from warden.models.base import predict_labels

__all__ = ["AutoAttackCheck", "SanityCheck"]

MASKING_REMEDIATION = (
    "The white-box numbers overstate robustness. Evaluate with attacks that do not rely on "
    "the model's gradients (Square, HopSkipJump, transfer), use BPDA or EOT for "
    "non-differentiable or random components, and fix the defense rather than the metric."
)


def _masking_finding(check: str, white: float, black: float, names: str, eps: float) -> Finding:
    return Finding(
        id=f"{check}.masking",
        check=check,
        title=f"Gradient masking suspected: black-box attacks beat white-box at eps={eps:.3g}",
        severity=Severity.HIGH,
        summary=(
            f"Black-box attacks ({names}) leave {black:.1%} robust accuracy while the best "
            f"white-box attack leaves {white:.1%}. An attack that sees less should never do "
            "better; the gradients are misleading the white-box attacks."
        ),
        metrics={"whitebox_robust_accuracy": white, "blackbox_robust_accuracy": black},
        owasp=OWASP,
        atlas=ATLAS_IDS,
        remediation=MASKING_REMEDIATION,
    )


@dataclass(frozen=True)
class AutoAttackCheck:
    """AutoEvaluate at the grading budget: per-attack and worst-case robust accuracy."""

    name: str
    version: str
    norm: str
    grade_epsilon: float
    scale: str = "range"
    examples: int = 4

    def run(self, ctx: CheckContext) -> Iterator[Finding]:
        """Run every member that applies; one finding, plus one if masking is suspected."""
        model, data = ctx.model, ctx.data
        unit = eps_unit(model, self.scale)
        if self.norm == "l2":
            unit *= float(np.sqrt(np.prod(model.input_shape)))
        eps = self.grade_epsilon * unit
        ensemble = AutoEvaluate(eps=eps, norm=self.norm, version=self.version, seed=ctx.seed)
        members, skipped = ensemble.members(model)
        done = 0

        def tick(name: str, result: AttackResult) -> None:
            nonlocal done
            done += 1
            ctx.progress(ProgressEvent(self.name, done, len(members), name))

        ctx.progress(ProgressEvent(self.name, 0, len(members), f"{self.version} ensemble"))
        x, y = np.asarray(data.x), np.asarray(data.y)
        res = ensemble.run(model, x, y, on_attack=tick)
        clean_pred = predict_labels(model, x)
        fooled = (clean_pred == y) & ~res.robust
        per_attack = {f"robust_accuracy[{k}]": v for k, v in res.per_attack.items()}
        labelled = "; ".join(f"{k} alone {v:.1%}" for k, v in res.per_attack.items())
        yield robustness_finding(
            check=self.name,
            fid=self.name,
            label=f"AutoEvaluate {self.version} (worst case)",
            norm=self.norm,
            data=data,
            model=model,
            clean_pred=clean_pred,
            epsilons=[eps],
            robust=[res.worst_case],
            grade_eps=eps,
            x_adv=res.x_adv,
            fooled=fooled,
            queries=sum(res.per_attack_queries.values()),
            metrics={
                "worst_case_robust_accuracy": res.worst_case,
                **per_attack,
                "members": ", ".join(res.per_attack),
                "skipped_members": ", ".join(skipped) or "none",
            },
            summary=(
                f"Per attack: {labelled}. Worst case per sample over all members: "
                f"{res.worst_case:.1%}. "
                + (f"Not run on this model: {', '.join(skipped)}. " if skipped else "")
            ),
            n_examples=self.examples,
        )
        white = [v for k, v in res.per_attack.items() if res.kinds[k] == "whitebox"]
        black = {k: v for k, v in res.per_attack.items() if res.kinds[k] != "whitebox"}
        if white and black and blackbox_beats_whitebox(min(white), min(black.values()), 0.02):
            yield _masking_finding(
                self.name, min(white), min(black.values()), ", ".join(black), eps
            )


@dataclass(frozen=True)
class SanityCheck:
    """AutoAttack-style checks that the robustness evaluation itself is trustworthy."""

    name: str
    grade_epsilon: float
    scale: str = "range"
    samples: int = 100
    """Inputs used by the probes."""
    square_queries: int = 300
    """Per-sample queries of the black-box probe."""
    masking_margin: float = 0.03
    """How much lower (absolute) the black-box probe's robust accuracy must be than the
    white-box probes' before masking is reported; 3 points is 3 of the default 100 samples,
    above the sampling noise of two honest attacks of similar strength."""

    def run(self, ctx: CheckContext) -> Iterator[Finding]:
        """Probe randomness, gradients, saturation and white- vs black-box strength."""
        from warden.models.torch import TorchModel

        model, data = ctx.model, ctx.data
        x = np.asarray(data.x[: self.samples])
        y = np.asarray(data.y[: self.samples])
        metrics: dict[str, Any] = {}
        found: list[Finding] = []
        ctx.progress(ProgressEvent(self.name, 0, 3, "randomness"))
        spread = output_randomness(model, x)
        metrics["output_spread_between_calls"] = spread
        if spread > 1e-5:
            found.append(
                self._finding(
                    "randomized",
                    "Outputs change between identical calls (randomised model or defense)",
                    Severity.MEDIUM,
                    f"Two identical calls differ by up to {spread:.3g}. Single-draw attacks "
                    "underestimate what an attacker averaging over the randomness achieves.",
                    "Evaluate with Expectation over Transformation (average gradients and "
                    "predictions over many draws); do not rely on randomness as a defense.",
                    {"max_difference": spread},
                )
            )
        scores = np.asarray(model(x))
        probs = to_probabilities(scores)
        returns_probs = bool(np.allclose(scores, probs, atol=1e-6))
        metrics["saturated_fraction"] = saturation(scores)
        ctx.progress(ProgressEvent(self.name, 1, 3, "gradients"))
        if isinstance(model, TorchModel):
            stats = gradient_stats(model, x, y)
            metrics["zero_gradient_fraction"] = stats.zero_fraction
            metrics["median_gradient_norm"] = stats.median_norm
            if stats.zero_fraction > 0.1:
                found.append(
                    self._finding(
                        "gradients",
                        f"Zero loss gradients on {stats.zero_fraction:.0%} of inputs",
                        Severity.HIGH,
                        "The loss gradient with respect to the input is exactly zero on "
                        f"{stats.zero_fraction:.0%} of the probed inputs (median norm "
                        f"{stats.median_norm:.3g}). Gradient attacks cannot move; their robust "
                        "accuracy is not evidence of robustness (shattered gradients).",
                        MASKING_REMEDIATION,
                        {"zero_gradient_fraction": stats.zero_fraction},
                    )
                )
            if returns_probs and metrics["saturated_fraction"] > 0.1:
                found.append(
                    self._finding(
                        "saturated",
                        "The network outputs saturated probabilities, not logits",
                        Severity.MEDIUM,
                        "The module ends in a softmax and "
                        f"{metrics['saturated_fraction']:.0%} of outputs are saturated "
                        "(top probability >= 1 - 1e-6): losses computed on them vanish and "
                        "gradient attacks stall.",
                        "Attack the logits: remove the final softmax from the module that "
                        "Warden evaluates (apply it outside).",
                        {"saturated_fraction": metrics["saturated_fraction"]},
                    )
                )
            ctx.progress(ProgressEvent(self.name, 2, 3, "white- vs black-box"))
            masking = self._masking_probe(ctx, x, y)
            if masking is not None:
                white, black = masking
                metrics["probe_whitebox_robust_accuracy"] = white
                metrics["probe_blackbox_robust_accuracy"] = black
                if blackbox_beats_whitebox(white, black, margin=self.masking_margin):
                    eps = self.grade_epsilon * eps_unit(model, self.scale)
                    found.append(_masking_finding(self.name, white, black, "square-linf", eps))
        ctx.progress(ProgressEvent(self.name, 3, 3, "done"))
        if found:
            yield from found
            return
        yield Finding(
            id=self.name,
            check=self.name,
            title="No sign of gradient masking or randomised outputs",
            severity=Severity.INFO,
            summary=(
                "Identical calls give identical outputs, gradients are non-zero and white-box "
                "attacks are at least as strong as a black-box probe at the grading budget."
            ),
            metrics=metrics,
            owasp=OWASP,
            atlas=ATLAS_IDS,
        )

    def _masking_probe(
        self, ctx: CheckContext, x: np.ndarray[Any, Any], y: np.ndarray[Any, Any]
    ) -> tuple[float, float] | None:
        if not {"square-linf", "apgd-ce"} <= set(attack_names()):
            return None
        eps = self.grade_epsilon * eps_unit(ctx.model, self.scale)
        # The white-box side is the per-sample worst case of two gradient attacks, as
        # AutoAttack compares Square with its whole white-box ensemble.
        fooled = PGD(eps=eps, steps=20, seed=ctx.seed).attack(ctx.model, x, y).success
        apgd = create_attack("apgd-ce", eps=eps, steps=50, seed=ctx.seed)
        fooled = fooled | apgd.attack(ctx.model, x, y).success
        black = create_attack(
            "square-linf", eps=eps, max_queries=self.square_queries, seed=ctx.seed
        ).attack(ctx.model, x, y)
        return 1.0 - float(fooled.mean()), black.robust_accuracy

    def _finding(
        self,
        aspect: str,
        title: str,
        severity: Severity,
        summary: str,
        remediation: str,
        metrics: Mapping[str, Any],
    ) -> Finding:
        return Finding(
            id=f"{self.name}.{aspect}",
            check=self.name,
            title=title,
            severity=severity,
            summary=summary,
            metrics=metrics,
            owasp=OWASP,
            atlas=ATLAS_IDS,
            remediation=remediation,
        )


def _autoattack_factory(raw: Mapping[str, Any]) -> AutoAttackCheck:
    opts = Options("evasion.autoattack", raw)
    check = AutoAttackCheck(
        name="evasion.autoattack",
        version=opts.choice("version", "standard", ("standard", "quick")),
        norm=opts.choice("norm", "linf", ("linf", "l2")),
        grade_epsilon=opts.number("grade_epsilon", 0.1),
        scale=opts.choice("scale", "range", ("range", "absolute")),
        examples=opts.integer("examples", 4),
    )
    opts.done()
    return check


def _sanity_factory(raw: Mapping[str, Any]) -> SanityCheck:
    opts = Options("evasion.sanity", raw)
    check = SanityCheck(
        name="evasion.sanity",
        grade_epsilon=opts.number("grade_epsilon", 0.1),
        scale=opts.choice("scale", "range", ("range", "absolute")),
        samples=opts.integer("samples", 100, minimum=1),
        square_queries=opts.integer("square_queries", 300, minimum=1),
        masking_margin=opts.number("masking_margin", 0.03),
    )
    opts.done()
    return check


register_check("evasion.autoattack", _autoattack_factory)
register_check("evasion.sanity", _sanity_factory)
