"""Every gradient attack in one table: it lowers accuracy and stays inside its budget and bounds."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from warden.errors import AttackError, InputShapeError
from warden.evasion import FGSM, L2PGD, PGD, AttackResult, GradientAttack

ATTACKS = [
    pytest.param(FGSM(eps=0.1), id="fgsm"),
    pytest.param(PGD(eps=0.1, steps=10), id="pgd-linf"),
    pytest.param(PGD(eps=0.1, steps=10, restarts=2, seed=3), id="pgd-linf-restarts"),
    pytest.param(L2PGD(eps=1.0, steps=10), id="pgd-l2"),
]


def _norms(delta: np.ndarray[Any, Any], norm: str) -> np.ndarray[Any, Any]:
    flat = delta.reshape(len(delta), -1).astype(np.float64)
    return np.abs(flat).max(axis=1) if norm == "linf" else np.linalg.norm(flat, axis=1)


@pytest.mark.parametrize("attack", ATTACKS)
def test_attack_lowers_accuracy_within_budget_and_bounds(
    attack: GradientAttack, digits_model: Any, digits_split: Any
) -> None:
    test = digits_split[1]
    x, y = np.asarray(test.x[:200]), np.asarray(test.y[:200])
    clean = float((digits_model(x).argmax(1) == y).mean())
    result = attack.attack(digits_model, x, y)

    assert isinstance(result, AttackResult)
    assert result.x_adv.shape == x.shape and result.x_adv.dtype == np.float32
    robust = float((digits_model(result.x_adv).argmax(1) == y).mean())
    assert robust < clean
    assert result.robust_accuracy == pytest.approx(robust)
    measured = _norms(result.x_adv - x, attack.norm)
    assert measured.max() <= attack.eps + 1e-6
    np.testing.assert_allclose(result.norms, measured, atol=1e-5)
    assert digits_model.bounds.contains(result.x_adv, atol=1e-6).all()
    assert result.queries >= len(x)


@pytest.mark.parametrize("attack", ATTACKS)
def test_attack_is_deterministic(
    attack: GradientAttack, digits_model: Any, digits_split: Any
) -> None:
    x, y = np.asarray(digits_split[1].x[:64]), np.asarray(digits_split[1].y[:64])
    a = attack.attack(digits_model, x, y)
    b = attack.attack(digits_model, x, y)
    np.testing.assert_array_equal(a.x_adv, b.x_adv)
    np.testing.assert_array_equal(a.success, b.success)


def test_misclassified_inputs_are_left_alone_and_cost_no_gradient(
    digits_model: Any, digits_split: Any
) -> None:
    x = np.asarray(digits_split[1].x[:50])
    wrong = (digits_model(x).argmax(1) + 1) % 10  # every label wrong: all already "fooled"
    result = PGD(eps=0.1, steps=10).attack(digits_model, x, wrong)
    assert result.success.all()
    np.testing.assert_array_equal(result.x_adv, x)
    assert result.queries == 2 * len(x)  # one look to find them fooled, one to verify


def test_zero_budget_changes_nothing(digits_model: Any, digits_split: Any) -> None:
    x, y = np.asarray(digits_split[1].x[:50]), np.asarray(digits_split[1].y[:50])
    result = PGD(eps=0.0).attack(digits_model, x, y)
    np.testing.assert_array_equal(result.x_adv, x)
    assert result.robust_accuracy == pytest.approx(float((digits_model(x).argmax(1) == y).mean()))


def test_targeted_pgd_reaches_targets(digits_model: Any, digits_split: Any) -> None:
    x, y = np.asarray(digits_split[1].x[:100]), np.asarray(digits_split[1].y[:100])
    targets = (y + 1) % 10
    result = PGD(eps=0.3, steps=40).attack(digits_model, x, y, targets=targets)
    hit = digits_model(result.x_adv).argmax(1) == targets
    np.testing.assert_array_equal(hit, result.success)
    assert hit.mean() > 0.5


def test_more_steps_never_hurt(digits_model: Any, digits_split: Any) -> None:
    x, y = np.asarray(digits_split[1].x[:200]), np.asarray(digits_split[1].y[:200])
    weak = PGD(eps=0.08, steps=2).attack(digits_model, x, y)
    strong = PGD(eps=0.08, steps=30, restarts=2).attack(digits_model, x, y)
    fgsm = FGSM(eps=0.08).attack(digits_model, x, y)
    assert strong.robust_accuracy <= weak.robust_accuracy
    assert strong.robust_accuracy <= fgsm.robust_accuracy


def test_bad_settings_and_inputs_are_refused(
    digits_model: Any, digits_split: Any, fake_model: Any
) -> None:
    with pytest.raises(AttackError, match="eps"):
        PGD(eps=-1.0)
    with pytest.raises(AttackError, match="eps"):
        PGD(eps=float("nan"))
    with pytest.raises(AttackError, match="at least 1"):
        PGD(eps=0.1, steps=0)
    x, y = np.asarray(digits_split[1].x[:4]), np.asarray(digits_split[1].y[:4])
    with pytest.raises(InputShapeError, match="outside the model's bounds"):
        PGD(eps=0.1).attack(digits_model, x + 2.0, y)
    with pytest.raises(InputShapeError, match="labels"):
        PGD(eps=0.1).attack(digits_model, x, y[:2])
    with pytest.raises(InputShapeError, match="shape"):
        PGD(eps=0.1).attack(digits_model, x[:, 0], y)
    with pytest.raises(AttackError, match="needs gradients"):
        PGD(eps=0.1).attack(fake_model, np.zeros((2, 4), np.float32), np.array([0, 1]))
