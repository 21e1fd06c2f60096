"""Checks built on minimal-perturbation attacks, and the transfer check.

* ``evasion.decision`` — HopSkipJump from labels alone (any model, HTTP included). One
  unbounded run gives every sample's smallest perturbation found, hence the whole
  robust-accuracy curve: a sample is robust at ε when no adversarial within ε was found.
* ``evasion.minimal_perturbation`` — the distribution of the smallest perturbation that flips
  each input (DeepFool, C&W or FAB-T with gradients; HopSkipJump without), as a histogram.
* ``evasion.transfer`` — examples crafted on a surrogate the check trains from the target's
  own answers (as an attacker with query access would), replayed on the target.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from warden.assess.check import CheckContext, ProgressEvent, register_check
from warden.assess.finding import Finding
from warden.assess.options import Options
from warden.evasion.base import Attack, AttackResult
from warden.evasion.checks import eps_unit, require_gradients, robustness_finding, sweep_options
from warden.evasion.registry import attack_info, create_attack
from warden.evasion.transfer import TransferAttack, transfer_success_rate
from warden.models.base import predict_labels

__all__ = ["MinimalPerturbation", "TransferCheck"]


def _curve_from_minimal(
    result: AttackResult, correct: np.ndarray[Any, Any], eps_abs: list[float]
) -> list[float]:
    flipped = result.success & correct
    return [float((correct & ~(flipped & (result.norms <= e + 1e-6))).mean()) for e in eps_abs]


@dataclass(frozen=True)
class MinimalPerturbation:
    """Run a minimal-norm attack once, unbounded; grade at ``grade_epsilon``; histogram."""

    name: str
    attack_name: str | None
    """Registered minimal-norm attack; ``None`` picks DeepFool with gradients, HSJ without."""
    settings: Mapping[str, Any]
    """Settings for the attack (without ``eps``)."""
    epsilons: tuple[float, ...]
    grade_epsilon: float
    scale: str = "range"
    examples: int = 4
    norm: str = "l2"
    histogram: bool = True
    """Attach the minimal-perturbation histogram to the finding."""

    def _attack(self, ctx: CheckContext) -> Attack:
        from warden.models.torch import TorchModel

        name = self.attack_name
        if name is None:
            gradients = isinstance(ctx.model, TorchModel)
            name = ("deepfool" if gradients else "hsj") + ("-linf" if self.norm == "linf" else "")
            name = name if name != "hsj" else "hsj-l2"
        if attack_info(name).kind == "whitebox":
            require_gradients(ctx.model, name)
        return create_attack(name, eps=None, seed=ctx.seed, **dict(self.settings))

    def run(self, ctx: CheckContext) -> Iterator[Finding]:
        """One unbounded run; the curve and histogram follow from the per-sample norms."""
        model, data = ctx.model, ctx.data
        attack = self._attack(ctx)
        unit = eps_unit(model, self.scale)
        if attack.norm == "l2":  # an L2 budget of ε·range per feature, over all features
            unit *= float(np.sqrt(np.prod(model.input_shape)))
        rel = tuple(sorted(set(self.epsilons) | {self.grade_epsilon}))
        eps_abs = [e * unit for e in rel]
        grade_abs = self.grade_epsilon * unit
        x, y = np.asarray(data.x), np.asarray(data.y)
        clean_pred = predict_labels(model, x)
        correct = clean_pred == y
        ctx.progress(ProgressEvent(self.name, 0, 1, attack.name))
        result = attack.attack(model, x, y)
        ctx.progress(ProgressEvent(self.name, 1, 1, attack.name))
        flipped = result.success & correct
        within = flipped & (result.norms <= grade_abs + 1e-6)
        x_adv = np.where(within.reshape((-1,) + (1,) * (x.ndim - 1)), result.x_adv, x)
        norms = result.norms[flipped]
        finding = robustness_finding(
            check=self.name,
            fid=self.name,
            label=attack.name,
            norm=attack.norm,
            data=data,
            model=model,
            clean_pred=clean_pred,
            epsilons=eps_abs,
            robust=_curve_from_minimal(result, correct, eps_abs),
            grade_eps=grade_abs,
            x_adv=x_adv.astype(np.float32),
            fooled=within,
            norms=result.norms,
            queries=result.queries,
            metrics={
                "flipped_unbounded": float(flipped.sum() / max(int(correct.sum()), 1)),
                "minimal_norm_median": float(np.median(norms)) if len(norms) else 0.0,
                "minimal_norm_p10": float(np.percentile(norms, 10)) if len(norms) else 0.0,
                "budget_exhausted": result.budget_exhausted,
            },
            summary=(
                f"{attack.name} searched, per sample and without a budget, for the smallest "
                f"{attack.norm} perturbation that changes the answer; it found one for "
                f"{int(flipped.sum())} of {int(correct.sum())} correctly classified samples "
                f"(median {float(np.median(norms)) if len(norms) else 0.0:.4g}). "
            ),
            n_examples=self.examples,
        )
        if self.histogram:
            evidence = dict(finding.evidence)
            evidence["histogram"] = {
                "values": [round(float(v), 6) for v in norms],
                "x_label": f"smallest {attack.norm} perturbation that flips the input",
                "series": attack.name,
                "grade_epsilon": grade_abs,
            }
            finding = dataclasses.replace(finding, evidence=evidence)
        yield finding


@dataclass(frozen=True)
class TransferCheck:
    """Train a surrogate on half the data labelled by the target; attack the other half."""

    name: str
    epsilons: tuple[float, ...]
    grade_epsilon: float
    scale: str = "range"
    examples: int = 4
    steps: int = 20
    """PGD steps on the surrogate."""
    epochs: int = 30
    """Surrogate training epochs."""

    def run(self, ctx: CheckContext) -> Iterator[Finding]:
        """Label with the target, train the surrogate, transfer PGD at each ε."""
        from warden.evasion.checks import robustness_curve
        from warden.models.zoo import TrainConfig, default_architecture, train_model

        model, data = ctx.model, ctx.data
        fit_part, eval_part = data.split(0.5, seed=ctx.seed)
        stolen = dataclasses.replace(fit_part, y=predict_labels(model, np.asarray(fit_part.x)))
        arch, arguments = default_architecture(data)
        arguments["n_classes"] = model.n_classes
        ctx.progress(ProgressEvent(self.name, 0, 2, f"training surrogate {arch}"))
        surrogate = train_model(
            stolen, arch, TrainConfig(epochs=self.epochs, seed=ctx.seed + 1), **arguments
        )
        ctx.progress(ProgressEvent(self.name, 1, 2, "transferring PGD"))
        craft = create_attack("pgd-linf", eps=0.0, steps=self.steps, seed=ctx.seed)
        transfer = TransferAttack(surrogate=surrogate, attack_on_surrogate=craft, seed=ctx.seed)
        unit = eps_unit(model, self.scale)
        rel = tuple(sorted(set(self.epsilons) | {self.grade_epsilon}))
        eps_abs = [e * unit for e in rel]
        grade_abs = self.grade_epsilon * unit
        x, y = np.asarray(eval_part.x), np.asarray(eval_part.y)
        points = robustness_curve(transfer, model, x, y, eps_abs)
        ctx.progress(ProgressEvent(self.name, 2, 2, "done"))
        clean_pred = predict_labels(model, x)
        graded = next(p for p in points if p.eps == grade_abs).result
        rate = transfer_success_rate(clean_pred, predict_labels(model, graded.x_adv), y)
        agreement = float((predict_labels(surrogate, x) == clean_pred).mean())
        yield robustness_finding(
            check=self.name,
            fid=self.name,
            label="transfer from surrogate",
            norm="linf",
            data=eval_part,
            model=model,
            clean_pred=clean_pred,
            epsilons=eps_abs,
            robust=[p.robust_accuracy for p in points],
            grade_eps=grade_abs,
            x_adv=graded.x_adv,
            fooled=graded.success & (clean_pred == y),
            norms=graded.norms,
            queries=sum(p.result.queries for p in points) + len(fit_part),
            metrics={
                "transfer_success_rate": rate,
                "surrogate_agreement": agreement,
                "surrogate_training_queries": len(fit_part),
            },
            summary=(
                f"A {arch} surrogate was trained on {len(fit_part)} inputs labelled by the "
                f"target (agreement {agreement:.0%} on held-out inputs); PGD examples crafted "
                f"on it fool the target on {rate:.1%} of the samples it classified correctly. "
            ),
            n_examples=self.examples,
        )


def _minimal_factory(name: str, default_attack: str | None) -> Any:
    def factory(raw: Mapping[str, Any]) -> MinimalPerturbation:
        opts = Options(name, raw)
        attack_name = opts.text("attack", default_attack)
        settings: dict[str, Any] = {}
        if "max_queries" in raw:
            settings["max_queries"] = opts.integer("max_queries", 1000, minimum=1)
        if "steps" in raw:
            settings["steps"] = opts.integer("steps", 50, minimum=1)
        norm = opts.choice("norm", "l2", ("l2", "linf"))
        common = sweep_options(opts)
        check = MinimalPerturbation(
            name=name,
            attack_name=None if attack_name is None else str(attack_name),
            settings=settings,
            norm=norm,
            **common,
        )
        opts.done()
        if check.attack_name is not None:
            attack_info(check.attack_name)  # unknown names fail when the suite is built
        return check

    return factory


def _transfer_factory(raw: Mapping[str, Any]) -> TransferCheck:
    opts = Options("evasion.transfer", raw)
    check = TransferCheck(
        name="evasion.transfer",
        steps=opts.integer("steps", 20, minimum=1),
        epochs=opts.integer("epochs", 30, minimum=1),
        **sweep_options(opts),
    )
    opts.done()
    return check


register_check("evasion.decision", _minimal_factory("evasion.decision", "hsj-l2"))
register_check(
    "evasion.minimal_perturbation", _minimal_factory("evasion.minimal_perturbation", None)
)
register_check("evasion.transfer", _transfer_factory)
