"""``WhiteBoxAttack``: what every gradient attack does around its own algorithm.

Subclasses implement :meth:`WhiteBoxAttack._attack_batch` (the algorithm on one batch of
tensors' worth of inputs); the template checks the model exposes gradients, validates inputs
and targets, batches, and ends in :func:`~warden.evasion.base.finalize`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
from numpy.typing import NDArray

from warden.errors import AttackError
from warden.evasion.base import AttackResult, AttackSettings, finalize, prepare_inputs
from warden.models.base import Model

if TYPE_CHECKING:
    from warden.models.torch import TorchModel

__all__ = ["WhiteBoxAttack"]


class WhiteBoxAttack(AttackSettings, ABC):
    """Template of a white-box attack (a frozen, keyword-only dataclass in subclasses)."""

    targets_hint: ClassVar[str | None] = None
    """When set, the attack refuses caller-given targets and this says what to use instead."""

    @property
    @abstractmethod
    def name(self) -> str:
        """Registry name."""

    @property
    @abstractmethod
    def norm(self) -> str:
        """``linf`` or ``l2``."""

    def _budget(self) -> float | None:
        """The ε results are held to (``None``: unbounded)."""
        eps: float | None = getattr(self, "eps", None)
        return eps

    def _check_model(self, model: TorchModel, targeted: bool) -> None:
        """Refuse models the algorithm cannot handle (e.g. too few classes)."""

    @abstractmethod
    def _attack_batch(
        self,
        model: TorchModel,
        x: NDArray[np.float32],
        y: NDArray[np.int64],
        targets: NDArray[np.int64] | None,
        offset: int,
        mutable: NDArray[np.float32],
    ) -> tuple[NDArray[np.float32], int]:
        """Adversarial inputs for one batch (``offset``: index of its first row, for seeding)
        and the model evaluations spent."""

    def attack(
        self,
        model: Model,
        x: NDArray[Any],
        y: NDArray[Any],
        *,
        targets: NDArray[Any] | None = None,
    ) -> AttackResult:
        """Run the attack on ``model`` (a :class:`~warden.models.torch.TorchModel`)."""
        from warden.models.torch import TorchModel

        if not isinstance(model, TorchModel):
            raise AttackError(
                f"{self.name} needs gradients: wrap the model as a TorchModel "
                f"(got {type(model).__name__}); black-box attacks work on any model"
            )
        if targets is not None and self.targets_hint is not None:
            raise AttackError(f"{self.name} does not take targets: {self.targets_hint}")
        xs, ys, ts = prepare_inputs(model, x, y, targets)
        self._check_model(model, ts is not None)
        mutable = self.mutable_mask(model.input_shape)
        adv, queries = np.array(xs, copy=True), 0
        for start in range(0, len(xs), self.batch_size):
            part = slice(start, start + self.batch_size)
            adv[part], spent = self._attack_batch(
                model, xs[part], ys[part], None if ts is None else ts[part], start, mutable
            )
            queries += spent
        return finalize(
            model,
            xs,
            adv,
            ys,
            ts,
            norm=self.norm,
            eps=self._budget(),
            queries=queries,
            mutable=mutable,
        )
