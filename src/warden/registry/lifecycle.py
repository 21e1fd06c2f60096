"""The model-version lifecycle as a pure state machine.

::

                 approve (policy gates)        deploy
    registered ─────────────────────▶ approved ───────▶ deployed
        ▲                              ▲    ◀─────────────┘  supersede (another version
        │ release (reason)             │                      deployed, or a rollback)
        │                              │
    quarantined ◀── quarantine (reason) from registered, approved or deployed
        │
        └────────▶ retired ◀── retire (reason) from any state but retired (terminal)

``deploy`` and ``supersede`` happen through :meth:`Registry.deploy` and
:meth:`Registry.rollback`, which keep the invariant *exactly the ``champion`` alias's version is
deployed*. A released version goes back to ``registered`` and must pass the gates again.
Everything else is a :class:`~warden.errors.LifecycleError` naming the current state and the
moves it allows.
"""

from __future__ import annotations

from enum import StrEnum
from types import MappingProxyType
from typing import Final

from warden.errors import LifecycleError

__all__ = [
    "MOVES",
    "REASON_REQUIRED",
    "STATES",
    "TRANSITIONS",
    "Move",
    "State",
    "allowed_moves",
    "check_reason",
    "next_state",
]


class State(StrEnum):
    """Where a model version is in its life."""

    REGISTERED = "registered"
    APPROVED = "approved"
    DEPLOYED = "deployed"
    QUARANTINED = "quarantined"
    RETIRED = "retired"


class Move(StrEnum):
    """A lifecycle change."""

    APPROVE = "approve"
    DEPLOY = "deploy"
    SUPERSEDE = "supersede"
    QUARANTINE = "quarantine"
    RELEASE = "release"
    RETIRE = "retire"


STATES: Final = tuple(State)
MOVES: Final = tuple(Move)

TRANSITIONS: Final = MappingProxyType(
    {
        State.REGISTERED: {
            Move.APPROVE: State.APPROVED,
            Move.QUARANTINE: State.QUARANTINED,
            Move.RETIRE: State.RETIRED,
        },
        State.APPROVED: {
            Move.DEPLOY: State.DEPLOYED,
            Move.QUARANTINE: State.QUARANTINED,
            Move.RETIRE: State.RETIRED,
        },
        State.DEPLOYED: {
            Move.SUPERSEDE: State.APPROVED,
            Move.QUARANTINE: State.QUARANTINED,
            Move.RETIRE: State.RETIRED,
        },
        State.QUARANTINED: {
            Move.RELEASE: State.REGISTERED,
            Move.RETIRE: State.RETIRED,
        },
        State.RETIRED: {},
    }
)
"""State → {move → new state}; a move not listed is refused."""

REASON_REQUIRED: Final = frozenset({Move.QUARANTINE, Move.RELEASE, Move.RETIRE})
"""Moves that need a non-empty reason (so do gate overrides and rollbacks)."""


def allowed_moves(state: str) -> tuple[Move, ...]:
    """The moves allowed from ``state``."""
    return tuple(TRANSITIONS[State(state)])


def next_state(state: str, move: str, *, subject: str = "the version") -> State:
    """The state ``move`` leads to from ``state``; :class:`LifecycleError` if not allowed."""
    try:
        current, wanted = State(state), Move(move)
    except ValueError as exc:
        raise LifecycleError(f"{subject}: {exc}") from None
    target = TRANSITIONS[current].get(wanted)
    if target is None:
        moves = ", ".join(allowed_moves(current)) or "none (retired is final)"
        raise LifecycleError(
            f"{subject} is {current}: cannot {wanted}; allowed from {current}: {moves}"
        )
    return target


def check_reason(move: str, reason: str | None, *, what: str | None = None) -> str:
    """The reason, stripped; :class:`LifecycleError` if ``move`` needs one and it is empty."""
    text = (reason or "").strip()
    if not text and (what is not None or Move(move) in REASON_REQUIRED):
        raise LifecycleError(f"{what or move} needs a reason: say why (--reason TEXT)")
    return text
