"""Square Attack and HopSkipJump on models they can only query: scikit-learn and the digits CNN."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from warden.data.bundled import load_breast_cancer, load_digits
from warden.errors import AttackError
from warden.evasion.budget import QueryCounter
from warden.evasion.hopskipjump import HopSkipJump
from warden.evasion.square import SquareAttack, p_schedule, square_loss
from warden.models.base import Bounds
from warden.models.sklearn import SklearnModel

Arr = np.ndarray[Any, Any]


class CountingModel:
    """Any model, with the rows it was asked about counted."""

    def __init__(self, model: Any) -> None:
        self.model, self.rows = model, 0
        self.n_classes, self.input_shape, self.bounds = (
            model.n_classes,
            model.input_shape,
            model.bounds,
        )

    def __call__(self, x: Arr) -> Arr:
        self.rows += len(x)
        return np.asarray(self.model(x))


@pytest.fixture(scope="module")
def cancer() -> tuple[SklearnModel, Arr, Arr]:
    """Logistic regression on breast cancer (30 standardised features, per-feature bounds)."""
    data = load_breast_cancer()
    train, test = data.split(0.3, seed=0)
    clf = LogisticRegression(max_iter=1000).fit(train.x, train.y)
    return SklearnModel(clf, bounds=data.bounds), np.asarray(test.x[:60]), np.asarray(test.y[:60])


@pytest.fixture(scope="module")
def digits_sk() -> tuple[SklearnModel, Arr, Arr]:
    """Logistic regression on flattened digits, wrapped to take (1, 8, 8) images."""
    train, test = load_digits().split(0.25, seed=0)
    clf = LogisticRegression(max_iter=300).fit(train.x.reshape(len(train.x), -1), train.y)
    model = SklearnModel(clf, input_shape=(1, 8, 8), bounds=Bounds.uniform(0.0, 1.0, (1, 8, 8)))
    return model, np.asarray(test.x[:20]), np.asarray(test.y[:20])


ATTACKS = [
    pytest.param(SquareAttack(eps=0.3, max_queries=300), id="square-linf"),
    pytest.param(SquareAttack(eps=1.5, norm="l2", max_queries=300), id="square-l2"),
    pytest.param(HopSkipJump(eps=1.5, steps=8, max_queries=2500), id="hsj-l2"),
    pytest.param(HopSkipJump(eps=0.3, norm="linf", steps=8, max_queries=2500), id="hsj-linf"),
]


def _norms(delta: Arr, norm: str) -> Arr:
    flat = delta.reshape(len(delta), -1).astype(np.float64)
    return np.abs(flat).max(axis=1) if norm == "linf" else np.linalg.norm(flat, axis=1)


def _accuracy(model: Any, x: Arr, y: Arr) -> float:
    return float((np.asarray(model(x)).argmax(1) == y).mean())


@pytest.mark.parametrize("attack", ATTACKS)
def test_attack_fools_sklearn_within_budget_and_bounds(attack: Any, cancer: Any) -> None:
    model, x, y = cancer
    counted = CountingModel(model)
    clean = _accuracy(model, x, y)
    result = attack.attack(counted, x, y)

    robust = _accuracy(model, result.x_adv, y)
    assert robust < clean - 0.2
    assert result.robust_accuracy == pytest.approx(robust)
    assert result.x_adv.shape == x.shape and result.x_adv.dtype == np.float32
    measured = _norms(result.x_adv - x, attack.norm)
    assert measured.max() <= attack.eps + 1e-6
    np.testing.assert_allclose(result.norms, measured, atol=1e-5)
    assert model.bounds.contains(result.x_adv, atol=0.0).all()
    assert len(x) <= result.queries <= attack.max_queries * len(x)
    assert result.queries == counted.rows  # rows actually sent, no verification pass
    assert not result.budget_exhausted
    assert attack.name == f"{attack.name.split('-')[0]}-{attack.norm}"


@pytest.mark.parametrize("attack", ATTACKS)
def test_attack_is_deterministic_under_its_seed(attack: Any, cancer: Any) -> None:
    model, x, y = cancer
    a, b = attack.attack(model, x[:20], y[:20]), attack.attack(model, x[:20], y[:20])
    np.testing.assert_array_equal(a.x_adv, b.x_adv)
    np.testing.assert_array_equal(a.success, b.success)
    assert a.queries == b.queries


@pytest.mark.parametrize("attack", ATTACKS)
def test_immutable_features_never_change(attack: Any, cancer: Any) -> None:
    model, x, y = cancer
    fixed = replace(attack, immutable=tuple(range(10)))
    result = fixed.attack(model, x, y)
    np.testing.assert_array_equal(result.x_adv[:, :10], x[:, :10])
    assert result.success.any()
    assert result.robust_accuracy < _accuracy(model, x, y)


@pytest.mark.parametrize("attack", ATTACKS)
def test_misclassified_inputs_are_left_alone(attack: Any, cancer: Any) -> None:
    model, x, _ = cancer
    wrong = 1 - np.asarray(model(x[:15])).argmax(1)  # every label wrong: all already fooled
    result = attack.attack(model, x[:15], wrong)
    assert result.success.all()
    np.testing.assert_array_equal(result.x_adv, x[:15])
    assert result.queries == 15  # the clean look only


@pytest.mark.parametrize("attack", ATTACKS)
def test_budgeted_model_stops_the_attack_with_a_valid_result(attack: Any, cancer: Any) -> None:
    model, x, y = cancer
    budgeted = QueryCounter(model, max_queries=250)
    result = attack.attack(budgeted, x[:20], y[:20])
    assert result.budget_exhausted
    assert budgeted.used <= 250 and result.queries == budgeted.used
    assert model.bounds.contains(result.x_adv, atol=0.0).all()
    assert (_norms(result.x_adv - x[:20], attack.norm) <= attack.eps + 1e-6).all()
    # What is reported as fooled really is, and nothing was queried after the budget ran out.
    fooled = np.asarray(model(result.x_adv)).argmax(1) != y[:20]
    np.testing.assert_array_equal(result.success, fooled)


@pytest.mark.parametrize(
    "attack",
    [
        pytest.param(SquareAttack(eps=0.3, max_queries=400), id="square-linf"),
        pytest.param(SquareAttack(eps=3.0, norm="l2", max_queries=400), id="square-l2"),
        pytest.param(HopSkipJump(eps=3.0, steps=5, max_queries=1500), id="hsj-l2"),
        pytest.param(HopSkipJump(eps=0.3, norm="linf", steps=5, max_queries=1500), id="hsj-linf"),
    ],
)
def test_targeted_attack_on_images_reaches_targets(attack: Any, digits_sk: Any) -> None:
    model, x, y = digits_sk
    targets = (y + 1) % 10
    result = attack.attack(model, x, y, targets=targets)
    hit = np.asarray(model(result.x_adv)).argmax(1) == targets
    np.testing.assert_array_equal(result.success, hit)
    assert hit.mean() >= 0.5
    assert (_norms(result.x_adv - x, attack.norm) <= attack.eps + 1e-6).all()
    assert model.bounds.contains(result.x_adv, atol=0.0).all()


def test_square_fools_the_digits_cnn(digits_model: Any, digits_split: Any) -> None:
    test = digits_split[1]
    x, y = np.asarray(test.x[:40]), np.asarray(test.y[:40])
    result = SquareAttack(eps=0.1, max_queries=500).attack(digits_model, x, y)
    assert _accuracy(digits_model, result.x_adv, y) < _accuracy(digits_model, x, y)
    assert np.abs(result.x_adv - x).max() <= 0.1 + 1e-6
    assert digits_model.bounds.contains(result.x_adv, atol=0.0).all()
    assert result.queries <= 500 * len(x)


def test_p_schedule_halves_on_the_reference_iterations() -> None:
    assert p_schedule(0.8, 0, 10000) == 0.8
    assert p_schedule(0.8, 10, 10000) == 0.8
    assert p_schedule(0.8, 11, 10000) == 0.4
    assert p_schedule(0.8, 201, 10000) == pytest.approx(0.8 / 8)
    assert p_schedule(0.8, 9999, 10000) == pytest.approx(0.8 / 512)
    assert p_schedule(0.8, 6, 1000) == pytest.approx(0.2)  # 60 of 10 000 when rescaled


def test_square_loss_known_values() -> None:
    z = np.array([[2.0, 0.5, 1.0], [0.0, 3.0, 1.0]])
    y = np.array([0, 0])
    np.testing.assert_allclose(square_loss(z, y, None), [1.0, -3.0])
    t = np.array([2, 1])
    lse = np.log(np.exp(z).sum(axis=1))
    np.testing.assert_allclose(square_loss(z, y, t), lse - np.array([1.0, 3.0]))


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: SquareAttack(eps=0.1, norm="l1"), "norm"),
        (lambda: SquareAttack(eps=-1.0), "eps"),
        (lambda: SquareAttack(eps=float("nan")), "eps"),
        (lambda: SquareAttack(eps=0.1, max_queries=1), "max_queries"),
        (lambda: SquareAttack(eps=0.1, p_init=0.0), "p_init"),
        (lambda: SquareAttack(eps=0.1, batch_size=0), "batch_size"),
        (lambda: HopSkipJump(norm="l1"), "norm"),
        (lambda: HopSkipJump(eps=-0.5), "eps"),
        (lambda: HopSkipJump(steps=0), "steps"),
        (lambda: HopSkipJump(init_evals=200, max_evals=100), "max_evals"),
        (lambda: HopSkipJump(gamma=0.0), "gamma"),
    ],
)
def test_bad_settings_are_refused(make: Any, match: str) -> None:
    with pytest.raises(AttackError, match=match):
        make()


def test_names_and_norms() -> None:
    assert SquareAttack(eps=0.1).name == "square-linf"
    assert SquareAttack(eps=0.1, norm="l2").name == "square-l2"
    assert HopSkipJump().name == "hsj-l2" and HopSkipJump().norm == "l2"
    assert HopSkipJump(norm="linf").name == "hsj-linf"
