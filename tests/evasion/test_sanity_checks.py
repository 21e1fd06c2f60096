"""AutoAttack-style sanity warnings: they fire on gradient masking and stay quiet otherwise."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from warden.assess import CheckSpec, Suite, run
from warden.evasion.sanity import (
    blackbox_beats_whitebox,
    output_randomness,
    saturation,
    to_probabilities,
)
from warden.models.torch import TorchModel


class Quantize(nn.Module):
    """Non-differentiable input quantisation: its gradient is zero almost everywhere."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.round(x * 4.0) / 4.0


class Noisy(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + 0.05 * torch.randn_like(x)


def _wrap(digits_model: Any, *front: nn.Module, softmax: bool = False) -> TorchModel:
    layers = [*front, digits_model.module] + ([nn.Softmax(dim=1)] if softmax else [])
    return TorchModel(nn.Sequential(*layers), input_shape=(1, 8, 8), n_classes=10)


SANITY = Suite("sanity", (CheckSpec("evasion.sanity", {"samples": 80}),), max_samples=80)


def _ids(model: Any, data: Any) -> set[str]:
    return {f.id for f in run(SANITY, model, data).findings}


def test_masking_warning_fires_on_quantised_inputs(digits_model: Any, digits_split: Any) -> None:
    ids = _ids(_wrap(digits_model, Quantize()), digits_split[1])
    assert "evasion.sanity.masking" in ids
    assert "evasion.sanity.gradients" in ids


def test_no_warning_on_the_plain_cnn(digits_model: Any, digits_split: Any) -> None:
    result = run(SANITY, digits_model, digits_split[1])
    (finding,) = result.findings
    assert finding.id == "evasion.sanity"
    assert finding.metrics["zero_gradient_fraction"] == 0.0
    assert (
        finding.metrics["probe_whitebox_robust_accuracy"]
        <= finding.metrics["probe_blackbox_robust_accuracy"]
    )


def test_randomised_and_saturated_models_are_flagged(digits_model: Any, digits_split: Any) -> None:
    assert "evasion.sanity.randomized" in _ids(_wrap(digits_model, Noisy()), digits_split[1])
    saturated = nn.Sequential(digits_model.module, _Scale(1000.0), nn.Softmax(dim=1))
    model = TorchModel(saturated, input_shape=(1, 8, 8), n_classes=10)
    assert "evasion.sanity.saturated" in _ids(model, digits_split[1])


class _Scale(nn.Module):
    def __init__(self, factor: float) -> None:
        super().__init__()
        self.factor = factor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.factor


def test_pure_measures() -> None:
    logits = np.array([[0.0, 100.0], [1.0, 1.0]])
    probs = to_probabilities(logits)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0)
    assert saturation(logits) == pytest.approx(0.5)
    assert np.array_equal(to_probabilities(probs), probs)
    assert blackbox_beats_whitebox(0.50, 0.40)
    assert not blackbox_beats_whitebox(0.40, 0.40)
    assert not blackbox_beats_whitebox(0.40, 0.395)

    class Deterministic:
        n_classes, input_shape = 2, (1,)

        def __call__(self, x: Any) -> Any:
            return np.hstack([x, -x])

    assert output_randomness(Deterministic(), np.ones((3, 1))) == 0.0  # type: ignore[arg-type]


def test_no_masking_warning_on_the_demo_model(digits_split: Any) -> None:
    """The demo's CNN (15 epochs, seed 0) once tripped a PGD-only probe: Square is nearly as
    strong as APGD on this small model, so the white-box side must be an ensemble."""
    from warden.models.zoo import TrainConfig, train_model

    model = train_model(digits_split[0], config=TrainConfig(seed=0))
    suite = Suite("s", (CheckSpec("evasion.sanity"),), max_samples=200)
    ids = [f.id for f in run(suite, model, digits_split[1]).findings]
    assert ids == ["evasion.sanity"]
