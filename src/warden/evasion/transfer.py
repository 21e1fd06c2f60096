"""Transfer attack: craft adversarial examples on a surrogate, replay them on the target.

Papernot, McDaniel, Goodfellow. "Transferability in Machine Learning: from Phenomena to
Black-Box Attacks using Adversarial Samples", 2016. https://arxiv.org/abs/1605.07277

The attacker needs no gradient of, and only one query per sample to, the target: examples are
crafted on a white-box surrogate (a model they trained, e.g. by extraction, or any
``TorchModel``) and sent once. The transfer success rate is the fraction of samples the target
classified correctly that the replayed examples fool.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from warden.errors import AttackError
from warden.evasion.base import Attack, AttackResult, AttackSettings, finalize, prepare_inputs
from warden.models.base import Model, predict_labels

__all__ = ["TransferAttack", "transfer_success_rate"]


def transfer_success_rate(
    target_clean: NDArray[np.int64], target_adv: NDArray[np.int64], y: NDArray[np.int64]
) -> float:
    """Fraction of samples the target got right that it gets wrong on the transferred inputs."""
    correct = target_clean == y
    if not correct.any():
        return 0.0
    return float((target_adv[correct] != y[correct]).mean())


@dataclass(frozen=True, kw_only=True)
class TransferAttack(AttackSettings):
    """Run ``attack`` on ``surrogate`` and evaluate the resulting inputs on the target."""

    surrogate: Model
    """The model the examples are crafted on (a TorchModel for gradient attacks)."""
    attack_on_surrogate: Attack
    """Any Warden attack (a dataclass with an ``eps`` field)."""
    eps: float | None = None
    """When set, replaces the surrogate attack's budget (so ε sweeps work)."""

    @property
    def name(self) -> str:
        return f"transfer-{self.attack_on_surrogate.name}"

    @property
    def norm(self) -> str:
        return self.attack_on_surrogate.norm

    def attack(
        self,
        model: Model,
        x: NDArray[Any],
        y: NDArray[Any],
        *,
        targets: NDArray[Any] | None = None,
    ) -> AttackResult:
        """Craft on the surrogate, then one query per sample to the target."""
        xs, ys, ts = prepare_inputs(model, x, y, targets)
        if tuple(self.surrogate.input_shape) != tuple(model.input_shape):
            raise AttackError(
                f"surrogate input shape {tuple(self.surrogate.input_shape)} differs from the "
                f"target's {tuple(model.input_shape)}"
            )
        craft = self.attack_on_surrogate
        if self.eps is not None:
            craft = dataclasses.replace(craft, eps=self.eps)  # type: ignore[type-var]
        crafted = craft.attack(self.surrogate, xs, ys, targets=ts)
        # Inputs the target already gets wrong stay untouched (no perturbation needed).
        clean_pred = predict_labels(model, xs)
        already = clean_pred != ys if ts is None else clean_pred == ts
        adv = np.where(already.reshape((-1,) + (1,) * (xs.ndim - 1)), xs, crafted.x_adv)
        return finalize(
            model,
            xs,
            adv,
            ys,
            ts,
            norm=self.norm,
            eps=crafted.eps,
            queries=len(xs),
            mutable=self.mutable_mask(model.input_shape),
        )
