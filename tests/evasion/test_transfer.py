from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from warden.errors import AttackError
from warden.evasion import PGD
from warden.evasion.transfer import TransferAttack, transfer_success_rate
from warden.models.zoo import TrainConfig, train_model


@pytest.fixture(scope="module")
def surrogate(digits_split: Any) -> Any:
    return train_model(digits_split[0], config=TrainConfig(epochs=6, seed=11))


def test_transfer_fools_the_target_within_budget(
    digits_model: Any, digits_split: Any, surrogate: Any
) -> None:
    x, y = np.asarray(digits_split[1].x[:200]), np.asarray(digits_split[1].y[:200])
    attack = TransferAttack(surrogate=surrogate, attack_on_surrogate=PGD(eps=0.15, steps=20))
    result = attack.attack(digits_model, x, y)
    clean = digits_model(x).argmax(1)
    adv = digits_model(result.x_adv).argmax(1)
    rate = transfer_success_rate(clean, adv, y)
    assert 0.1 < rate <= 1.0
    assert result.robust_accuracy == pytest.approx(float((adv == y).mean()))
    assert np.abs(result.x_adv - x).max() <= 0.15 + 1e-6
    # The target was queried once per sample (plus finalize's verification), never for gradients.
    assert result.queries == 2 * len(x)
    # White-box on the target itself is at least as strong as transfer.
    direct = PGD(eps=0.15, steps=20).attack(digits_model, x, y)
    assert direct.robust_accuracy <= result.robust_accuracy


def test_transfer_rate_counts_only_initially_correct_samples() -> None:
    y = np.array([0, 1, 2, 3])
    clean = np.array([0, 1, 0, 0])  # last two already wrong
    adv = np.array([1, 1, 2, 3])
    assert transfer_success_rate(clean, adv, y) == pytest.approx(0.5)
    assert transfer_success_rate(np.array([1]), np.array([1]), np.array([0])) == 0.0


def test_surrogate_shape_must_match(fake_model: Any, surrogate: Any) -> None:
    attack = TransferAttack(surrogate=surrogate, attack_on_surrogate=PGD(eps=0.1))
    with pytest.raises(AttackError, match="surrogate input shape"):
        attack.attack(fake_model, np.zeros((2, 4), np.float32), np.array([0, 1]))
