"""The lifecycle state machine, checked against the table in the issue (not against itself)."""

from __future__ import annotations

import itertools

import pytest

from warden.errors import LifecycleError
from warden.registry.lifecycle import MOVES, STATES, check_reason, next_state

EXPECTED = {
    ("registered", "approve"): "approved",
    ("registered", "quarantine"): "quarantined",
    ("registered", "retire"): "retired",
    ("approved", "deploy"): "deployed",
    ("approved", "quarantine"): "quarantined",
    ("approved", "retire"): "retired",
    ("deployed", "supersede"): "approved",
    ("deployed", "quarantine"): "quarantined",
    ("deployed", "retire"): "retired",
    ("quarantined", "release"): "registered",
    ("quarantined", "retire"): "retired",
}


def test_the_machine_knows_every_state_and_move() -> None:
    assert sorted(STATES) == ["approved", "deployed", "quarantined", "registered", "retired"]
    assert sorted(MOVES) == ["approve", "deploy", "quarantine", "release", "retire", "supersede"]


@pytest.mark.parametrize(("state", "move"), list(itertools.product(STATES, MOVES)))
def test_every_state_times_every_move(state: str, move: str) -> None:
    expected = EXPECTED.get((state, move))
    if expected is not None:
        assert next_state(state, move) == expected
        return
    with pytest.raises(LifecycleError, match=f"is {state}: cannot {move}; allowed from {state}: "):
        next_state(state, move, subject="m v1")


def test_retired_is_final() -> None:
    with pytest.raises(LifecycleError, match=r"allowed from retired: none \(retired is final\)"):
        next_state("retired", "release")


@pytest.mark.parametrize("move", ["quarantine", "release", "retire"])
def test_moves_that_need_a_reason(move: str) -> None:
    with pytest.raises(LifecycleError, match=f"{move} needs a reason"):
        check_reason(move, "  ")
    assert check_reason(move, " because ") == "because"


def test_optional_reasons() -> None:
    assert check_reason("approve", None) == ""
    assert check_reason("deploy", "") == ""
    with pytest.raises(LifecycleError, match="a rollback needs a reason"):
        check_reason("deploy", "", what="a rollback")
