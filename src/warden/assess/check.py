"""The ``Check`` protocol, the context a check runs in, progress events, and the registry."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from warden.assess.finding import Finding
from warden.data.dataset import Dataset
from warden.errors import RegistryError
from warden.models.base import Model

__all__ = [
    "Check",
    "CheckSkipped",
    "CheckContext",
    "CheckFactory",
    "ProgressEvent",
    "check_names",
    "create_check",
    "register_check",
]

logger = logging.getLogger(__name__)


class CheckSkipped(Exception):
    """Raised by a check that does not apply to this model or data (e.g. needs gradients).

    The runner records a skipped finding *without* threat ids, so the threat stays ungraded
    (``N/A``) rather than passing.
    """


@dataclass(frozen=True)
class ProgressEvent:
    """A step of work done; the CLI draws these as progress bars."""

    check: str
    """Name of the check reporting."""
    completed: int
    """Steps done so far."""
    total: int
    """Steps in all (for this check)."""
    message: str = ""
    """What is happening, e.g. ``"PGD eps=0.1"``."""


ProgressCallback = Callable[[ProgressEvent], None]


def _no_progress(event: ProgressEvent) -> None:
    logger.debug("%s: %d/%d %s", event.check, event.completed, event.total, event.message)


@dataclass(frozen=True)
class CheckContext:
    """What a check needs: the model under test, the evaluation data, a seed and a progress sink."""

    model: Model
    """The model under test."""
    data: Dataset
    """Evaluation data (already subsampled to the suite's ``max_samples``)."""
    seed: int = 0
    """Seed every random choice derives from."""
    progress: ProgressCallback = field(default=_no_progress)
    """Called as work advances."""


@runtime_checkable
class Check(Protocol):
    """An assessment step: runs its attacks/measurements and yields findings."""

    @property
    def name(self) -> str:
        """Registered name, e.g. ``evasion.pgd``."""
        ...

    def run(self, ctx: CheckContext) -> Iterator[Finding]:
        """Yield findings as they are measured; at least one."""
        ...


CheckFactory = Callable[[Mapping[str, Any]], Check]
"""Builds a check from its suite options (unknown options must be refused)."""

_CHECKS: dict[str, CheckFactory] = {}


def register_check(name: str, factory: CheckFactory) -> None:
    """Register a check factory under ``name``; duplicate names are refused."""
    if name in _CHECKS:
        raise RegistryError(f"check {name!r} is already registered")
    _CHECKS[name] = factory


def _load_builtin_checks() -> None:
    # Each threat package registers its checks when imported; import them on first use.
    import warden.assess.baseline
    import warden.evasion.checks
    import warden.evasion.ensemble_checks
    import warden.evasion.minimal_checks  # noqa: F401


def check_names() -> list[str]:
    """Registered check names, sorted."""
    _load_builtin_checks()
    return sorted(_CHECKS)


def create_check(name: str, options: Mapping[str, Any] | None = None) -> Check:
    """A check instance from the registry, configured with ``options``."""
    _load_builtin_checks()
    try:
        factory = _CHECKS[name]
    except KeyError:
        raise RegistryError(
            f"unknown check {name!r}; registered: {', '.join(sorted(_CHECKS))}"
        ) from None
    return factory(dict(options or {}))
