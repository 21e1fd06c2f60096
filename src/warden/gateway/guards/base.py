"""The runtime guard shapes: a per-request context, a verdict, input and output guards.

An input guard looks at a validated batch before the model and answers with a
:class:`Verdict` (``allow``, ``flag`` — serve but record — or ``block``). An output guard sees the
model's outputs and returns what the client may see (rounded, top-k, label only, …). Detectors
and output filters from the threat packages are wrapped as guards; neither protocol needs
inheriting from anything here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

from numpy.typing import NDArray

from warden.errors import ConfigError

__all__ = ["ACTIONS", "Action", "GuardContext", "InputGuard", "OutputGuard", "Verdict", "severity"]

Action = Literal["allow", "flag", "block"]
"""What a guard asks for: serve, serve and record, or refuse."""

ACTIONS: tuple[Action, ...] = ("allow", "flag", "block")
"""Actions from least to most severe."""


def severity(action: Action) -> int:
    """0 for allow, 1 for flag, 2 for block."""
    return ACTIONS.index(action)


@dataclass(frozen=True)
class GuardContext:
    """Who asks what, for guards that care (monitors per key, filters per clearance)."""

    model: str
    """Model name."""
    version: int | None = None
    """Model version number being served."""
    key_id: str | None = None
    """API key id (or session user) of the caller."""
    clearance: str = "default"
    """The caller's output clearance level (picks the output filters)."""
    extra: Mapping[str, Any] = field(default_factory=dict)
    """Anything else a custom guard needs (request id, client address, …)."""


@dataclass(frozen=True)
class Verdict:
    """One guard's answer about one batch."""

    action: Action
    """``allow``, ``flag`` or ``block``."""
    guard: str
    """Name of the guard that answered."""
    reason: str = ""
    """Why, in words (for the audit log; not sent to the client)."""
    score: float | None = None
    """The guard's score for the batch (higher is more suspicious), when it has one."""

    def __post_init__(self) -> None:
        if self.action not in ACTIONS:
            raise ConfigError(
                f"verdict of guard {self.guard!r}: action must be one of {ACTIONS}, "
                f"found {self.action!r}"
            )


@runtime_checkable
class InputGuard(Protocol):
    """Inspects a validated batch before the model runs."""

    @property
    def name(self) -> str:
        """Unique name (in verdicts, metrics and policies)."""
        ...

    def inspect(self, batch: NDArray[Any], ctx: GuardContext) -> Verdict: ...


@runtime_checkable
class OutputGuard(Protocol):
    """Turns the model's outputs (one row of scores per input) into what the client may see."""

    @property
    def name(self) -> str:
        """Name (in logs and config)."""
        ...

    def filter(self, outputs: NDArray[Any], ctx: GuardContext) -> NDArray[Any]: ...
