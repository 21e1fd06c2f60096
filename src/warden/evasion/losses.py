"""Per-sample attack losses on logits: cross-entropy, logit margin and the DLR losses of APGD.

Croce & Hein. "Reliable evaluation of adversarial robustness with an ensemble of diverse
parameter-free attacks", ICML 2020. https://arxiv.org/abs/2003.01690 (Section 4, Eqs. 6-7).

Every function takes logits ``z`` of shape ``(n, classes)`` and integer labels of shape ``(n,)``
and returns one value per sample (shape ``(n,)``), larger meaning more adversarial, so an attack
ascends their sum. ``z_π1 ≥ z_π2 ≥ …`` are a sample's logits sorted in decreasing order.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from warden.errors import AttackError

if TYPE_CHECKING:
    import torch

__all__ = [
    "DLR_EPS",
    "cross_entropy",
    "dlr_loss",
    "logit_margin",
    "targeted_cross_entropy",
    "targeted_dlr_loss",
]

DLR_EPS = 1e-12
"""Added to the DLR denominators so that equal top logits do not divide by zero."""


def _pick(z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    out: torch.Tensor = z.gather(1, labels.long().view(-1, 1)).squeeze(1)
    return out


def _sorted_desc(z: torch.Tensor, need: int) -> torch.Tensor:
    if z.shape[1] < need:
        raise AttackError(f"this loss needs at least {need} classes, got {z.shape[1]}")
    out: torch.Tensor = z.sort(dim=1, descending=True).values
    return out


def cross_entropy(z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``-log softmax(z)_y``: the untargeted cross-entropy loss."""
    return -_pick(z.log_softmax(dim=1), y)


def targeted_cross_entropy(z: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """``log softmax(z)_t``: ascending it moves the prediction toward the target ``t``."""
    return _pick(z.log_softmax(dim=1), t)


def logit_margin(z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``z_y - max_{i≠y} z_i``: positive exactly when ``y`` is the unique top class."""
    others = z.scatter(1, y.long().view(-1, 1), float("-inf"))
    return _pick(z, y) - others.amax(dim=1)


def dlr_loss(z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Difference of Logits Ratio: ``-(z_y - max_{i≠y} z_i) / (z_π1 - z_π3 + 1e-12)``.

    Invariant to shifting and (positively) rescaling the logits; needs at least 3 classes.
    """
    s = _sorted_desc(z, 3)
    return -logit_margin(z, y) / (s[:, 0] - s[:, 2] + DLR_EPS)


def targeted_dlr_loss(z: torch.Tensor, y: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Targeted DLR: ``-(z_y - z_t) / (z_π1 - (z_π3 + z_π4) / 2 + 1e-12)``; needs 4 classes."""
    s = _sorted_desc(z, 4)
    return -(_pick(z, y) - _pick(z, t)) / (s[:, 0] - 0.5 * (s[:, 2] + s[:, 3]) + DLR_EPS)
