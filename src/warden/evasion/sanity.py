"""Signs that a robustness evaluation cannot be trusted, in the spirit of AutoAttack's checks.

Croce & Hein (2020) and Athalye, Carlini, Wagner (2018, "Obfuscated Gradients Give a False
Sense of Security", https://arxiv.org/abs/1802.00420) list the usual ways a model looks robust
to gradient attacks without being robust: randomised outputs, zero or vanishing gradients,
saturated softmax outputs, and black-box attacks doing better than white-box ones. Each
measure here is a pure function; :mod:`warden.evasion.checks` turns them into findings.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from warden.models.base import Model

__all__ = [
    "GradientStats",
    "blackbox_beats_whitebox",
    "gradient_stats",
    "output_randomness",
    "saturation",
    "to_probabilities",
]


def to_probabilities(scores: NDArray[Any]) -> NDArray[np.float64]:
    """Scores as probabilities: used as they are if rows are non-negative and sum to 1, else
    a numerically stable softmax of them (they are logits)."""
    s = np.asarray(scores, np.float64)
    if np.all(s >= 0) and np.allclose(s.sum(axis=1), 1.0, atol=1e-4):
        return s
    z = s - s.max(axis=1, keepdims=True)
    e = np.exp(z)
    return np.asarray(e / e.sum(axis=1, keepdims=True))


def output_randomness(model: Model, x: NDArray[Any]) -> float:
    """Largest absolute difference between two identical calls (0 for a deterministic model)."""
    a = np.asarray(model(x), np.float64)
    b = np.asarray(model(x), np.float64)
    return float(np.abs(a - b).max()) if a.size else 0.0


def saturation(scores: NDArray[Any], threshold: float = 1.0 - 1e-6) -> float:
    """Fraction of inputs whose top class probability is at least ``threshold``."""
    p = to_probabilities(scores)
    return float((p.max(axis=1) >= threshold).mean()) if len(p) else 0.0


@dataclass(frozen=True)
class GradientStats:
    """Input-gradient magnitudes of the loss over a batch."""

    zero_fraction: float
    """Fraction of inputs whose loss gradient is exactly zero (or below 1e-12 in L2)."""
    median_norm: float
    """Median L2 norm of the per-input loss gradient."""


def gradient_stats(model: Any, x: NDArray[Any], y: NDArray[Any]) -> GradientStats:
    """Loss-gradient magnitudes of a :class:`~warden.models.torch.TorchModel` at ``x``."""
    import torch
    import torch.nn.functional as F

    xt = model.to_tensor(x).requires_grad_(True)
    with torch.enable_grad():
        labels = torch.from_numpy(np.array(y, dtype=np.int64))
        loss = F.cross_entropy(model.logits(xt), labels)
        (grad,) = torch.autograd.grad(loss * len(xt), xt)
    norms = grad.detach().flatten(1).norm(dim=1).cpu().numpy().astype(np.float64)
    return GradientStats(
        zero_fraction=float((norms < 1e-12).mean()) if len(norms) else 0.0,
        median_norm=float(np.median(norms)) if len(norms) else 0.0,
    )


def blackbox_beats_whitebox(
    whitebox_robust: float, blackbox_robust: float, margin: float = 0.01
) -> bool:
    """A score- or decision-based attack leaving *lower* robust accuracy than the white-box
    ones at the same budget means the gradients mislead: a sign of gradient masking."""
    return blackbox_robust < whitebox_robust - margin
