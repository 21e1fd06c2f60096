"""Guard pipeline policy and fail-closed rules, the OOD guard, output filters per clearance."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray

from warden.errors import ConfigError, InputShapeError, NotFittedError
from warden.gateway.errors import GatewayError, GuardBlocked
from warden.gateway.guards import (
    DEFAULT_OUTPUT_POLICY,
    GuardContext,
    GuardPipeline,
    GuardRule,
    InputGuard,
    LabelOnly,
    OODDetector,
    OODGuard,
    OutputGuard,
    OutputPolicy,
    Round,
    TopK,
    Verdict,
    label_only,
    output_policy_from_config,
    pipeline_from_config,
    round_scores,
    top_k,
)

CTX = GuardContext(model="m", version=1, key_id="k1", clearance="default")


@dataclass(frozen=True)
class Fixed:
    """An input guard that always answers the same verdict (or raises)."""

    name: str
    action: str = "allow"
    score: float | None = None
    error: Exception | None = None

    def inspect(self, batch: NDArray[Any], ctx: GuardContext) -> Verdict:
        if self.error is not None:
            raise self.error
        return Verdict(self.action, self.name, f"fixed {self.action}", self.score)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def train() -> NDArray[np.float64]:
    return np.random.default_rng(0).normal(size=(3000, 16))


# --- OOD detector -------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["mahalanobis", "zscore"])
def test_ood_flags_shifted_data_and_few_in_distribution(
    train: NDArray[np.float64], method: str
) -> None:
    det = OODDetector(method, quantile=0.99).fit(train)  # type: ignore[arg-type]
    fresh = np.random.default_rng(1).normal(size=(2000, 16))
    assert 0.003 < det.flag(fresh).mean() < 0.03
    assert det.flag(fresh + 4.0).all()
    assert det.score(train).shape == (3000,)


def test_ood_mahalanobis_sees_broken_correlations() -> None:
    rng = np.random.default_rng(2)
    a = rng.normal(size=(4000, 1))
    train = np.hstack([a, a + 0.05 * rng.normal(size=(4000, 1))])  # two features move together
    odd = np.array([[1.5, -1.5]])  # each feature ordinary, the pair impossible
    assert OODDetector("mahalanobis").fit(train).flag(odd).all()
    assert not OODDetector("zscore").fit(train).flag(odd).any()


def test_ood_mahalanobis_matches_the_formula(train: NDArray[np.float64]) -> None:
    det = OODDetector("mahalanobis", shrinkage=0.2).fit(train)
    z = (train - train.mean(0)) / train.std(0)
    cov = 0.8 * np.cov(z, rowvar=False) + 0.2 * np.eye(16)
    x = train[:5] * 1.5
    zx = (x - train.mean(0)) / train.std(0)
    want = np.sqrt(np.einsum("ij,jk,ik->i", zx, np.linalg.inv(cov), zx))
    np.testing.assert_allclose(det.score(x), want, rtol=1e-10)


def test_ood_constant_features_do_not_divide_by_zero() -> None:
    train = np.random.default_rng(3).normal(size=(500, 4))
    train[:, 0] = 0.0
    det = OODDetector().fit(train)
    assert np.isfinite(det.score(train)).all()
    probe = np.zeros((1, 4))
    probe[0, 0] = 5.0  # a value never seen in a constant feature
    assert det.flag(probe).all()


def test_ood_before_fit_and_bad_inputs() -> None:
    with pytest.raises(NotFittedError, match="call fit"):
        OODDetector().score(np.zeros((1, 2)))
    with pytest.raises(NotFittedError, match="not fitted"):
        OODGuard(OODDetector())
    with pytest.raises(ConfigError, match="quantile must be in"):
        OODDetector(quantile=1.0).fit(np.zeros((5, 2)))
    with pytest.raises(InputShapeError, match="at least 2 training inputs"):
        OODDetector().fit(np.zeros((1, 2)))
    with pytest.raises(InputShapeError, match="must be finite"):
        OODDetector().fit(np.array([[0.0, np.nan], [1.0, 2.0]]))
    det = OODDetector().fit(np.random.default_rng(0).normal(size=(20, 3)))
    with pytest.raises(InputShapeError, match="expected inputs with 3 features, found 4"):
        det.score(np.zeros((1, 4)))


def test_ood_guard_verdicts(train: NDArray[np.float64]) -> None:
    guard = OODGuard(OODDetector().fit(train), action="block")
    assert isinstance(guard, InputGuard)
    calm = guard.inspect(train[:3] * 0.1, CTX)
    assert calm.action == "allow" and calm.score is not None and calm.score < 1.0
    batch = np.vstack([train[:3] * 0.1, train[:2] + 6.0])
    hot = guard.inspect(batch, CTX)
    assert (hot.action, hot.guard) == ("block", "ood") and hot.score is not None
    assert hot.score > 1.0 and hot.reason.startswith("2 of 5 input(s) beyond the OOD threshold")


# --- pipeline -----------------------------------------------------------------------------


def test_most_severe_verdict_wins_and_block_stops() -> None:
    pipe = GuardPipeline([Fixed("a"), Fixed("b", "flag"), Fixed("c", "block"), Fixed("d")])
    result = pipe.inspect(np.zeros((1, 2)), CTX)
    assert result.action == "block" and [v.guard for v in result.verdicts] == ["a", "b", "c"]
    with pytest.raises(GuardBlocked, match="refused by input guard 'c'") as info:
        result.raise_if_blocked()
    assert info.value.status_code == 403
    flagged = GuardPipeline([Fixed("a"), Fixed("b", "flag")]).inspect(np.zeros((1, 2)), CTX)
    assert flagged.action == "flag" and flagged.raise_if_blocked() is flagged


@pytest.mark.parametrize(
    ("score", "action"), [(0.5, "allow"), (1.0, "flag"), (2.9, "flag"), (3.0, "block")]
)
def test_thresholds_replace_the_guards_action(score: float, action: str) -> None:
    rule = GuardRule(Fixed("s", "block", score), flag_at=1.0, block_at=3.0)
    assert GuardPipeline([rule]).inspect(np.zeros((1, 1)), CTX).action == action


def test_guard_that_raises_blocks(caplog: pytest.LogCaptureFixture) -> None:
    pipe = GuardPipeline([Fixed("boom", error=RuntimeError("detector crashed"))])
    with caplog.at_level(logging.WARNING, logger="warden.gateway.guards.pipeline"):
        result = pipe.inspect(np.zeros((1, 1)), CTX)
    assert result.action == "block"
    assert result.verdicts[0].reason == "guard failed: RuntimeError: detector crashed"
    assert "input guard 'boom' failed" in caplog.text


def test_guard_answering_garbage_blocks() -> None:
    class Liar:
        name = "liar"

        def inspect(self, batch: NDArray[Any], ctx: GuardContext) -> Any:
            return "allow"

    result = GuardPipeline([Liar()]).inspect(np.zeros((1, 1)), CTX)
    assert result.action == "block" and "not a Verdict" in result.verdicts[0].reason


@pytest.mark.parametrize("score", [None, float("nan")])
def test_missing_score_under_thresholds_blocks(score: float | None) -> None:
    rule = GuardRule(Fixed("s", "allow", score), flag_at=1.0)
    result = GuardPipeline([rule]).inspect(np.zeros((1, 1)), CTX)
    assert result.action == "block" and "no finite score" in result.verdicts[0].reason


def test_empty_pipeline_needs_unsafe_flag(caplog: pytest.LogCaptureFixture) -> None:
    with pytest.raises(ConfigError, match="no input guard given"):
        GuardPipeline([])
    with caplog.at_level(logging.WARNING):
        pipe = GuardPipeline([], unsafe_allow_no_input_guards=True)
    assert "without input guards" in caplog.text
    assert pipe.inspect(np.zeros((1, 1)), CTX).action == "allow"


def test_rule_and_pipeline_validation() -> None:
    with pytest.raises(ConfigError, match=r"flag_at \(3.0\) is above block_at \(1.0\)"):
        GuardRule(Fixed("a"), flag_at=3.0, block_at=1.0)
    with pytest.raises(ConfigError, match="guard names must be unique"):
        GuardPipeline([Fixed("a"), Fixed("a")])
    with pytest.raises(ConfigError, match="action must be one of"):
        Verdict("deny", "a")  # type: ignore[arg-type]


def test_pipeline_from_config(train: NDArray[np.float64]) -> None:
    guards = {"ood": OODGuard(OODDetector().fit(train))}
    pipe = pipeline_from_config(
        {
            "input": [{"guard": "ood", "flag_at": 1.0, "block_at": 2.0}],
            "outputs": {"gold": [], "bronze": [{"filter": "label_only"}]},
        },
        guards,
    )
    assert pipe.inspect(train[:1] + 10.0, CTX).action == "block"
    assert pipe.outputs.filters_for("gold") == ()
    with pytest.raises(ConfigError, match="no guard named 'strip'; available: \\['ood'\\]"):
        pipeline_from_config({"input": [{"guard": "strip"}]}, guards)
    with pytest.raises(ConfigError, match=r"unknown field\(s\) \['block'\]"):
        pipeline_from_config({"input": [{"guard": "ood", "block": 2}]}, guards)
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['inputs'\]"):
        pipeline_from_config({"inputs": []}, guards)
    with pytest.raises(ConfigError, match="no input guard given"):
        pipeline_from_config({}, guards)


# --- output filters -------------------------------------------------------------------------

SCORES = np.array([[0.1, 0.6, 0.3], [0.333333, 0.333333, 0.333334]])


def test_filter_math() -> None:
    np.testing.assert_array_equal(top_k(SCORES, 1), [[0, 0.6, 0], [0, 0, 0.333334]])
    np.testing.assert_array_equal(top_k(SCORES, 2), [[0, 0.6, 0.3], [0.333333, 0, 0.333334]])
    np.testing.assert_array_equal(top_k(SCORES, 5), SCORES)
    np.testing.assert_array_equal(round_scores(SCORES, 2), [[0.1, 0.6, 0.3], [0.33, 0.33, 0.33]])
    np.testing.assert_array_equal(label_only(SCORES), [[0, 1, 0], [0, 0, 1]])
    np.testing.assert_array_equal(label_only(np.array([[0.5, 0.5]])), [[1, 0]])  # lowest index
    with pytest.raises(ConfigError, match="2-D"):
        top_k(np.zeros(3), 1)


def test_filters_per_clearance(caplog: pytest.LogCaptureFixture) -> None:
    pipe = GuardPipeline([Fixed("a")], OutputPolicy({"full": (), "default": (TopK(2), Round(1))}))
    full = pipe.filter(SCORES, GuardContext("m", clearance="full"))
    np.testing.assert_array_equal(full, SCORES)
    np.testing.assert_array_equal(pipe.filter(SCORES, CTX), [[0, 0.6, 0.3], [0.3, 0, 0.3]])
    with caplog.at_level(logging.WARNING):
        unknown = pipe.filter(SCORES, GuardContext("m", clearance="platinum"))
    np.testing.assert_array_equal(unknown, [[0, 1, 0], [0, 0, 1]])  # fail closed: label only
    assert "'platinum' is not in the output policy" in caplog.text


def test_failing_output_guard_withholds_the_response() -> None:
    @dataclass(frozen=True)
    class Broken:
        name: str = "broken"

        def filter(self, outputs: NDArray[Any], ctx: GuardContext) -> NDArray[Any]:
            raise ValueError("oops")

    assert isinstance(Broken(), OutputGuard)
    pipe = GuardPipeline([Fixed("a")], OutputPolicy({"default": (Broken(),)}))
    with pytest.raises(GatewayError, match="output guard failed; the response was withheld") as e:
        pipe.filter(SCORES, CTX)
    assert e.value.status_code == 500


def test_output_policy_config() -> None:
    policy = output_policy_from_config(
        {"std": [{"filter": "top_k", "k": 3}, {"filter": "round", "decimals": 2}]}
    )
    assert policy.filters_for("std") == (TopK(3), Round(2))
    assert DEFAULT_OUTPUT_POLICY.filters_for("label") == (LabelOnly(),)
    with pytest.raises(ConfigError, match="'blur' is unknown"):
        output_policy_from_config({"x": [{"filter": "blur"}]})
    with pytest.raises(ConfigError, match=r"expected option\(s\) \['k'\], found \[\]"):
        output_policy_from_config({"x": [{"filter": "top_k"}]})
    with pytest.raises(ConfigError, match="k must be an integer >= 1"):
        output_policy_from_config({"x": [{"filter": "top_k", "k": 0}]})
    with pytest.raises(ConfigError, match=r"decimals must be an integer 0\.\.15"):
        Round(-1)
    with pytest.raises(ConfigError, match="at least one clearance"):
        OutputPolicy({})
