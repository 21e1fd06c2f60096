"""The attack table: every registered evasion attack, one shared set of promises.

On a small trained CNN: robust accuracy below clean accuracy, perturbations within budget and
bounds, the reported success and norms true, determinism under a seed, immutable features never
touched. A newly registered attack must be added to ``FAST`` or this test fails.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from warden.evasion.base import AttackResult, measure_norms
from warden.evasion.registry import attack_info, attack_names, create_attack

FAST: dict[str, dict[str, Any]] = {
    "fgsm": {},
    "pgd-linf": {"steps": 10},
    "pgd-l2": {"steps": 10},
    "apgd-ce": {"steps": 10},
    "apgd-ce-l2": {"steps": 10},
    "apgd-dlr": {"steps": 10},
    "apgd-dlr-l2": {"steps": 10},
    "apgd-t": {"steps": 10, "n_target_classes": 2},
    "apgd-t-l2": {"steps": 10, "n_target_classes": 2},
    "cw-l2": {"binary_search_steps": 3, "max_iterations": 60, "learning_rate": 0.1},
    "deepfool": {"steps": 20},
    "deepfool-linf": {"steps": 20},
    "fab-t-linf": {"steps": 15, "n_target_classes": 2},
    "fab-t-l2": {"steps": 15, "n_target_classes": 2},
    "square-linf": {"max_queries": 150},
    "square-l2": {"max_queries": 150},
    "hsj-l2": {"max_queries": 800, "steps": 6},
    "hsj-linf": {"max_queries": 800, "steps": 6},
}
EPS = {"linf": 0.15, "l2": 1.2}
N = 40


def test_every_registered_attack_is_in_the_table() -> None:
    assert sorted(FAST) == attack_names()


def _run(name: str, model: Any, x: Any, y: Any, **extra: Any) -> AttackResult:
    info = attack_info(name)
    attack = create_attack(name, eps=EPS[info.norm], seed=5, **FAST[name], **extra)
    assert attack.name == name and attack.norm == info.norm
    return attack.attack(model, x, y)


@pytest.mark.parametrize("name", sorted(FAST))
def test_attack_promises(name: str, digits_model: Any, digits_split: Any) -> None:
    x, y = np.asarray(digits_split[1].x[:N]), np.asarray(digits_split[1].y[:N])
    info = attack_info(name)
    clean_pred = digits_model(x).argmax(1)
    result = _run(name, digits_model, x, y)

    assert result.x_adv.shape == x.shape and result.x_adv.dtype == np.float32
    adv_pred = digits_model(result.x_adv).argmax(1)
    np.testing.assert_array_equal(result.success, adv_pred != y)
    assert result.robust_accuracy < float((clean_pred == y).mean())
    measured = measure_norms(result.x_adv - x, info.norm)
    assert measured.max() <= EPS[info.norm] + 1e-5
    np.testing.assert_allclose(result.norms, measured, atol=1e-5)
    assert digits_model.bounds.contains(result.x_adv, atol=1e-6).all()
    already_wrong = clean_pred != y
    np.testing.assert_array_equal(result.x_adv[already_wrong], x[already_wrong])
    assert result.queries >= len(x)

    again = _run(name, digits_model, x, y)
    np.testing.assert_array_equal(again.x_adv, result.x_adv)


@pytest.mark.parametrize("name", sorted(FAST))
def test_immutable_features_never_change(name: str, digits_model: Any, digits_split: Any) -> None:
    x, y = np.asarray(digits_split[1].x[:20]), np.asarray(digits_split[1].y[:20])
    frozen = tuple(range(0, 64, 2))
    result = _run(name, digits_model, x, y, immutable=frozen)
    flat_x, flat_adv = x.reshape(len(x), -1), result.x_adv.reshape(len(x), -1)
    np.testing.assert_array_equal(flat_adv[:, list(frozen)], flat_x[:, list(frozen)])
