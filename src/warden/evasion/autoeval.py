"""``AutoEvaluate``: an ensemble in the configuration of AutoAttack's "standard" version.

Croce & Hein. "Reliable evaluation of adversarial robustness with an ensemble of diverse
parameter-free attacks", ICML 2020. https://arxiv.org/abs/2003.01690

``standard``: APGD-CE (100 steps), APGD-T (100 steps, 9 target classes), FAB-T (100 steps,
9 target classes) and Square (5000 queries). ``quick`` (for CI): APGD-CE (20 steps), APGD-T
(20 steps, 3 target classes) and Square (500 queries). Every attack runs on every input the
model classifies correctly, so each reports its own robust accuracy; a sample counts as robust
in the worst case only if it survives all of them. On a model without gradients only the
score-based member runs, and the result says so.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from warden.errors import AttackError
from warden.evasion.base import Attack, AttackResult
from warden.evasion.registry import attack_info, attack_names, create_attack
from warden.models.base import Model, predict_labels

__all__ = ["AutoEvalResult", "AutoEvaluate", "VERSIONS"]

# Members per version: registry name for L-inf, for L2, and settings. Target counts are capped
# at n_classes - 1 when the attacks are built.
VERSIONS: dict[str, tuple[tuple[str, str, dict[str, Any]], ...]] = {
    "standard": (
        ("apgd-ce", "apgd-ce-l2", {"steps": 100}),
        ("apgd-t", "apgd-t-l2", {"steps": 100, "n_target_classes": 9}),
        ("fab-t-linf", "fab-t-l2", {"steps": 100, "n_target_classes": 9}),
        ("square-linf", "square-l2", {"max_queries": 5000}),
    ),
    "quick": (
        ("apgd-ce", "apgd-ce-l2", {"steps": 20}),
        ("apgd-t", "apgd-t-l2", {"steps": 20, "n_target_classes": 3}),
        ("square-linf", "square-l2", {"max_queries": 500}),
    ),
}


@dataclass(frozen=True)
class AutoEvalResult:
    """Per-attack and worst-case robust accuracy of one ensemble run."""

    eps: float
    """Budget, input units."""
    norm: str
    """``linf`` or ``l2``."""
    clean_accuracy: float
    """Accuracy without attack on the same inputs."""
    per_attack: dict[str, float]
    """Robust accuracy each attack leaves on its own (attack name → accuracy)."""
    per_attack_queries: dict[str, int]
    """Model evaluations each attack spent."""
    worst_case: float
    """Robust accuracy when, per sample, the strongest attack is taken."""
    robust: NDArray[np.bool_]
    """Per sample: correctly classified and not fooled by any attack."""
    x_adv: NDArray[np.float32]
    """Per sample: the first successful adversarial input found (the clean input if none)."""
    kinds: dict[str, str] = field(default_factory=dict)
    """Attack name → kind (``whitebox``/``score``/``decision``)."""
    skipped: tuple[str, ...] = ()
    """Members that could not run on this model (e.g. white-box ones without gradients)."""


@dataclass(frozen=True)
class AutoEvaluate:
    """Run the ensemble at one budget."""

    eps: float
    """Budget in input units."""
    norm: str = "linf"
    """``linf`` or ``l2``."""
    version: str = "standard"
    """``standard`` (AutoAttack's configuration) or ``quick``."""
    seed: int = 0
    """Seed for every member."""
    batch_size: int = 256
    """Inputs attacked at once."""
    immutable: tuple[int, ...] = ()
    """Feature indices no member may change."""

    def __post_init__(self) -> None:
        if self.version not in VERSIONS:
            raise AttackError(f"unknown version {self.version!r}; expected standard or quick")
        if self.norm not in ("linf", "l2"):
            raise AttackError(f"norm must be linf or l2, got {self.norm!r}")

    def members(self, model: Model) -> tuple[list[Attack], list[str]]:
        """The attacks that can run on ``model``, and the names of those that cannot."""
        from warden.models.torch import TorchModel

        attacks, skipped = [], []
        for linf_name, l2_name, settings in VERSIONS[self.version]:
            name = linf_name if self.norm == "linf" else l2_name
            if name not in attack_names():
                skipped.append(name)
                continue
            info = attack_info(name)
            if model.n_classes < info.min_classes or (
                info.kind == "whitebox" and not isinstance(model, TorchModel)
            ):
                skipped.append(name)
                continue
            opts = dict(settings)
            if "n_target_classes" in opts:
                opts["n_target_classes"] = min(int(opts["n_target_classes"]), model.n_classes - 1)
            attacks.append(
                create_attack(
                    name,
                    eps=self.eps,
                    seed=self.seed,
                    batch_size=self.batch_size,
                    immutable=self.immutable,
                    **opts,
                )
            )
        return attacks, skipped

    def run(
        self,
        model: Model,
        x: NDArray[Any],
        y: NDArray[Any],
        on_attack: Callable[[str, AttackResult], None] | None = None,
    ) -> AutoEvalResult:
        """Attack ``x`` with every member; combine per sample."""
        attacks, skipped = self.members(model)
        if not attacks:
            raise AttackError("no member of the ensemble can run on this model")
        xs, ys = np.asarray(x, np.float32), np.asarray(y, np.int64)
        correct = predict_labels(model, xs) == ys
        robust = correct.copy()
        x_adv = xs.copy()
        per_attack: dict[str, float] = {}
        queries: dict[str, int] = {}
        kinds: dict[str, str] = {}
        idx = np.flatnonzero(correct)
        for attack in attacks:
            result = attack.attack(model, xs[idx], ys[idx])
            fooled = np.zeros(len(xs), bool)
            fooled[idx] = result.success
            per_attack[attack.name] = float((correct & ~fooled).mean())
            queries[attack.name] = result.queries
            kinds[attack.name] = attack_info(attack.name).kind
            first = fooled & robust
            x_adv[first] = result.x_adv[first[idx]]
            robust &= ~fooled
            if on_attack is not None:
                on_attack(attack.name, result)
        return AutoEvalResult(
            eps=self.eps,
            norm=self.norm,
            clean_accuracy=float(correct.mean()),
            per_attack=per_attack,
            per_attack_queries=queries,
            worst_case=float(robust.mean()),
            robust=robust,
            x_adv=x_adv,
            kinds=kinds,
            skipped=tuple(skipped),
        )
