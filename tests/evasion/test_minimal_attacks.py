"""Minimal-perturbation attacks: C&W L2, DeepFool (L2, L∞) and FAB-T, against known answers."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import pytest
import torch
from scipy.optimize import linprog

from warden.errors import AttackError
from warden.evasion.base import AttackResult
from warden.evasion.cw import CarliniWagnerL2
from warden.evasion.deepfool import DeepFool
from warden.evasion.fab import FAB, project_hyperplane_box
from warden.models.base import Bounds
from warden.models.torch import TorchModel

N = 100
CW = CarliniWagnerL2(
    max_iterations=100, binary_search_steps=5, initial_const=1.0, learning_rate=0.1
)
ATTACKS = {
    "cw-l2": CW,
    "deepfool": DeepFool(),
    "deepfool-linf": DeepFool(norm="linf"),
    "fab-t-linf": FAB(steps=30, n_target_classes=3),
}


def _digits(split: Any, n: int = N) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    return np.asarray(split[1].x[:n]), np.asarray(split[1].y[:n])


@pytest.fixture(scope="module")
def runs(digits_model: Any, digits_split: Any) -> dict[str, AttackResult]:
    """Each attack once on the first 100 test digits, shared by the tests below."""
    x, y = _digits(digits_split)
    return {name: attack.attack(digits_model, x, y) for name, attack in ATTACKS.items()}


def _median_norm(result: AttackResult, correct: np.ndarray[Any, Any]) -> float:
    return float(np.median(result.norms[result.success & correct]))


@pytest.mark.parametrize("name", list(ATTACKS))
def test_attack_fools_nearly_every_digit_inside_the_bounds(
    name: str, runs: dict[str, AttackResult], digits_model: Any, digits_split: Any
) -> None:
    x, y = _digits(digits_split)
    result = runs[name]
    correct = digits_model(x).argmax(1) == y
    assert correct.mean() > 0.9
    assert result.success[correct].mean() >= 0.9
    assert result.eps == np.inf and result.norm == ATTACKS[name].norm
    pred = digits_model(result.x_adv).argmax(1)
    assert (pred[result.success] != y[result.success]).all()
    assert digits_model.bounds.contains(result.x_adv, atol=1e-6).all()
    flat = (result.x_adv - x).reshape(len(x), -1).astype(np.float64)
    measured = np.abs(flat).max(1) if result.norm == "linf" else np.linalg.norm(flat, axis=1)
    np.testing.assert_allclose(result.norms, measured, atol=1e-5)
    np.testing.assert_array_equal(result.x_adv[~correct], x[~correct])  # already wrong: kept
    assert (result.norms[~correct] == 0).all()
    assert result.queries > len(x)


def test_cw_finds_perturbations_no_larger_than_deepfool(
    runs: dict[str, AttackResult], digits_model: Any, digits_split: Any
) -> None:
    x, y = _digits(digits_split)
    correct = digits_model(x).argmax(1) == y
    cw, deepfool = _median_norm(runs["cw-l2"], correct), _median_norm(runs["deepfool"], correct)
    assert 0 < cw <= 1.1 * deepfool


def test_fab_finds_linf_perturbations_no_larger_than_deepfool(
    runs: dict[str, AttackResult], digits_model: Any, digits_split: Any
) -> None:
    x, y = _digits(digits_split)
    correct = digits_model(x).argmax(1) == y
    fab = _median_norm(runs["fab-t-linf"], correct)
    assert 0 < fab <= _median_norm(runs["deepfool-linf"], correct)


SMALL = [
    pytest.param(
        CarliniWagnerL2(
            max_iterations=30, binary_search_steps=3, initial_const=1.0, learning_rate=0.1
        ),
        id="cw",
    ),
    pytest.param(DeepFool(), id="deepfool"),
    pytest.param(DeepFool(norm="linf"), id="deepfool-linf"),
    pytest.param(FAB(steps=15, n_target_classes=2, restarts=2, seed=4), id="fab-linf"),
    pytest.param(FAB(norm="l2", steps=15, n_target_classes=2), id="fab-l2"),
]


@pytest.mark.parametrize("attack", SMALL)
def test_eps_caps_every_success(attack: Any, digits_model: Any, digits_split: Any) -> None:
    x, y = _digits(digits_split, 40)
    free = attack.attack(digits_model, x, y)
    eps = float(np.median(free.norms[free.success & (free.norms > 0)]))
    capped = replace(attack, eps=eps).attack(digits_model, x, y)
    assert capped.eps == pytest.approx(eps)
    assert (capped.norms[capped.success] <= eps + 1e-6).all()
    assert 0 < capped.success.mean() < free.success.mean()
    pred = digits_model(capped.x_adv).argmax(1)
    assert (pred[capped.success] != y[capped.success]).all()


@pytest.mark.parametrize("attack", SMALL)
def test_attack_is_deterministic(attack: Any, digits_model: Any, digits_split: Any) -> None:
    x, y = _digits(digits_split, 20)
    a, b = attack.attack(digits_model, x, y), attack.attack(digits_model, x, y)
    np.testing.assert_array_equal(a.x_adv, b.x_adv)
    np.testing.assert_array_equal(a.success, b.success)
    assert a.queries == b.queries


@pytest.mark.parametrize("attack", SMALL)
def test_immutable_features_never_change(attack: Any, digits_model: Any, digits_split: Any) -> None:
    x, y = _digits(digits_split, 20)
    frozen = tuple(range(16, 48))  # the middle four rows of each 8x8 digit
    result = replace(attack, immutable=frozen).attack(digits_model, x, y)
    flat_adv, flat_x = result.x_adv.reshape(len(x), -1), x.reshape(len(x), -1)
    np.testing.assert_array_equal(flat_adv[:, list(frozen)], flat_x[:, list(frozen)])
    assert result.success.any()  # the other features still move


@pytest.mark.parametrize(
    "attack",
    [
        pytest.param(
            CarliniWagnerL2(
                max_iterations=100, binary_search_steps=4, initial_const=1.0, learning_rate=0.1
            ),
            id="cw",
        ),
        pytest.param(FAB(steps=30), id="fab"),
    ],
)
def test_targeted_attack_reaches_the_targets(
    attack: Any, digits_model: Any, digits_split: Any
) -> None:
    x, y = _digits(digits_split, 30)
    targets = (y + 1) % 10
    result = attack.attack(digits_model, x, y, targets=targets)
    hit = digits_model(result.x_adv).argmax(1) == targets
    assert result.success.mean() >= 0.9
    np.testing.assert_array_equal(result.success, hit)


def test_deepfool_refuses_targets(digits_model: Any, digits_split: Any) -> None:
    x, y = _digits(digits_split, 5)
    with pytest.raises(AttackError, match="untargeted"):
        DeepFool().attack(digits_model, x, y, targets=(y + 1) % 10)


@pytest.mark.parametrize("attack", [CW, DeepFool(), FAB()], ids=["cw", "deepfool", "fab"])
def test_whitebox_attacks_need_a_torch_model(attack: Any, fake_model: Any) -> None:
    x = np.zeros((3, 4), np.float32)
    with pytest.raises(AttackError, match="TorchModel"):
        attack.attack(fake_model, x, np.zeros(3, np.int64))


@pytest.mark.parametrize(
    ("cls", "settings", "match"),
    [
        (CarliniWagnerL2, {"binary_search_steps": 0}, "at least 1"),
        (CarliniWagnerL2, {"max_iterations": 0}, "at least 1"),
        (CarliniWagnerL2, {"learning_rate": 0.0}, "learning_rate"),
        (CarliniWagnerL2, {"initial_const": -1.0}, "initial_const"),
        (CarliniWagnerL2, {"confidence": -1.0}, "confidence"),
        (CarliniWagnerL2, {"eps": -1.0}, "eps"),
        (CarliniWagnerL2, {"batch_size": 0}, "batch_size"),
        (DeepFool, {"norm": "l1"}, "norm"),
        (DeepFool, {"steps": 0}, "steps"),
        (DeepFool, {"candidates": 1}, "candidates"),
        (DeepFool, {"overshoot": -0.1}, "overshoot"),
        (DeepFool, {"eps": float("nan")}, "eps"),
        (FAB, {"norm": "l0"}, "norm"),
        (FAB, {"n_target_classes": 0}, "at least 1"),
        (FAB, {"restarts": 0}, "at least 1"),
        (FAB, {"alpha_max": 1.5}, "alpha_max"),
        (FAB, {"eta": 0.5}, "eta"),
        (FAB, {"beta": 1.0}, "beta"),
        (FAB, {"eps": -0.1}, "eps"),
    ],
)
def test_bad_settings_are_refused(cls: Any, settings: dict[str, Any], match: str) -> None:
    with pytest.raises(AttackError, match=match):
        cls(**settings)


def test_names_and_norms() -> None:
    assert (CW.name, CW.norm) == ("cw-l2", "l2")
    assert (DeepFool().name, DeepFool().norm) == ("deepfool", "l2")
    assert (DeepFool(norm="linf").name, DeepFool(norm="linf").norm) == ("deepfool-linf", "linf")
    assert (FAB().name, FAB(norm="l2").name) == ("fab-t-linf", "fab-t-l2")


# --- Known answers on affine classifiers (DeepFool is exact there, paper Section 2) ---------


def _linear_model(weight: np.ndarray[Any, Any], bias: np.ndarray[Any, Any]) -> TorchModel:
    layer = torch.nn.Linear(weight.shape[1], weight.shape[0])
    with torch.no_grad():
        layer.weight.copy_(torch.from_numpy(weight))
        layer.bias.copy_(torch.from_numpy(bias))
    d = weight.shape[1]
    return TorchModel(
        layer, input_shape=(d,), n_classes=weight.shape[0], bounds=Bounds.uniform(-50, 50, (d,))
    )


@pytest.mark.parametrize("n_classes", [2, 5])
@pytest.mark.parametrize(("norm", "dual"), [("l2", 2.0), ("linf", 1.0)])
def test_deepfool_on_an_affine_classifier_is_the_closed_form(
    n_classes: int, norm: str, dual: float
) -> None:
    rng = np.random.default_rng(n_classes)
    weight = rng.normal(size=(n_classes, 6)).astype(np.float32)
    bias = rng.normal(size=n_classes).astype(np.float32)
    model = _linear_model(weight, bias)
    x = rng.normal(size=(25, 6)).astype(np.float32)
    y = model(x).argmax(1)
    result = DeepFool(norm=norm, overshoot=0.02).attack(model, x, y)
    assert result.success.all()
    z = x.astype(np.float64) @ weight.T.astype(np.float64) + bias
    expected = np.full(len(x), np.inf)
    for k in range(n_classes):  # distance to the closest boundary between y and another class
        w_k = weight[k].astype(np.float64) - weight[y].astype(np.float64)
        gap = np.abs(z[np.arange(len(x)), k] - z[np.arange(len(x)), y])
        dist = gap / np.linalg.norm(w_k, ord=dual, axis=1).clip(1e-12)
        expected = np.where(k == y, expected, np.minimum(expected, dist))
    np.testing.assert_allclose(result.norms, expected * 1.02, atol=1e-3)


def test_deepfool_with_no_overshoot_lands_on_the_boundary() -> None:
    weight = np.array([[0.0, 0.0], [3.0, 4.0]], np.float32)  # f = 3a + 4b - 1, ‖w‖ = 5
    model = _linear_model(weight, np.array([0.0, -1.0], np.float32))
    x = np.array([[-1.0, -2.0]], np.float32)  # f = -12: distance 12 / 5
    result = DeepFool(overshoot=0.0).attack(model, x, np.array([0]))
    assert result.success.all()
    assert result.norms[0] == pytest.approx(2.4, abs=1e-3)
    np.testing.assert_allclose(result.x_adv[0], x[0] + 2.4 * np.array([0.6, 0.8]), atol=1e-3)


# --- The box-constrained hyperplane projection against reference solvers ------------------


def _problem(seed: int) -> tuple[np.ndarray[Any, Any], ...]:
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 1, (30, 7))
    x[:, 0] = 0.0  # on the lower bound
    w = rng.normal(size=(30, 7))
    w[:, 1] = 0.0  # a feature the hyperplane ignores
    c = rng.normal(size=30) * 0.6
    return x, w, c


def _project(x: Any, w: Any, c: Any, norm: str) -> np.ndarray[Any, Any]:
    t = [torch.from_numpy(a) for a in (x, w, c, np.zeros(7), np.ones(7))]
    return project_hyperplane_box(*t, norm).numpy()


def test_linf_projection_matches_a_linear_program() -> None:
    x, w, c = _problem(0)
    d = _project(x, w, c, "linf")
    m = x.shape[1]
    bounded = np.block([[np.eye(m), -np.ones((m, 1))], [-np.eye(m), -np.ones((m, 1))]])
    solved = 0
    for i in range(len(x)):
        res = linprog(
            np.r_[np.zeros(m), 1.0],
            A_ub=bounded,
            b_ub=np.zeros(2 * m),
            A_eq=np.r_[w[i], 0.0][None],
            b_eq=[c[i]],
            bounds=[*zip(-x[i], 1 - x[i], strict=True), (0, None)],
        )
        if res.status == 2:  # the box misses the hyperplane: the closest corner instead
            assert abs(w[i] @ d[i]) < abs(c[i])
            np.testing.assert_allclose(
                w[i] @ d[i],
                np.sign(c[i])
                * np.sum(np.abs(w[i]) * np.where(np.sign(w[i] * c[i]) > 0, 1 - x[i], x[i])),
            )
            continue
        solved += 1
        assert np.abs(d[i]).max() == pytest.approx(res.fun, abs=1e-9)
        assert w[i] @ d[i] == pytest.approx(c[i], abs=1e-9)
    assert solved >= 20
    assert (x + d >= -1e-12).all() and (x + d <= 1 + 1e-12).all()
    assert (d[:, 1] == 0).all()


def test_l2_projection_matches_the_kkt_solution() -> None:
    x, w, c = _problem(1)
    d = _project(x, w, c, "l2")
    for i in range(len(x)):
        # KKT: d = clip(λ w, box) with w·d = c; find λ by bisection (w·d is increasing in λ).
        def reach(lam: float, i: int = i) -> float:
            return float(w[i] @ np.clip(lam * w[i], -x[i], 1 - x[i]))

        lo_l, hi_l = -1e6, 1e6
        for _ in range(200):
            mid = (lo_l + hi_l) / 2
            lo_l, hi_l = (mid, hi_l) if reach(mid) < c[i] else (lo_l, mid)
        expected = np.clip(hi_l * w[i], -x[i], 1 - x[i])
        np.testing.assert_allclose(d[i], expected, atol=1e-7)
    assert (d[:, 1] == 0).all()
