"""PGD agrees with an independent PGD written here from the paper (Madry et al. 2018)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from warden.evasion import PGD


def reference_linf_pgd(
    module: torch.nn.Module,
    x: np.ndarray[Any, Any],
    y: np.ndarray[Any, Any],
    *,
    eps: float,
    steps: int,
    step_size: float,
    seed: int,
) -> np.ndarray[Any, Any]:
    """Textbook L-inf PGD: uniform random start, sign steps, clip to the eps-box and [0, 1]."""
    gen = torch.Generator().manual_seed(seed)
    x0 = torch.tensor(x)
    target = torch.tensor(y)
    x_adv = (x0 + torch.empty_like(x0).uniform_(-eps, eps, generator=gen)).clamp(0.0, 1.0)
    for _ in range(steps):
        x_adv.requires_grad_(True)
        loss = F.cross_entropy(module(x_adv), target)
        (grad,) = torch.autograd.grad(loss, x_adv)
        with torch.no_grad():
            x_adv = x_adv + step_size * grad.sign()
            x_adv = torch.min(torch.max(x_adv, x0 - eps), x0 + eps).clamp(0.0, 1.0)
    with torch.no_grad():
        return (module(x_adv).argmax(1) == target).numpy()


@pytest.mark.parametrize("eps", [0.05, 0.1])
def test_pgd_matches_reference_within_one_point(
    eps: float, digits_model: Any, digits_split: Any
) -> None:
    test = digits_split[1]
    x, y = np.asarray(test.x), np.asarray(test.y)
    steps, step_size, seed = 20, 2.5 * eps / 20, 7
    ours = PGD(eps=eps, steps=steps, step_size=step_size, seed=seed).attack(digits_model, x, y)
    ref_correct = reference_linf_pgd(
        digits_model.module, x, y, eps=eps, steps=steps, step_size=step_size, seed=seed
    )
    assert abs(ours.robust_accuracy - float(ref_correct.mean())) <= 0.01
