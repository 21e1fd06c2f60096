"""Output hardening: what a client sees of the model's scores, chosen by its clearance.

Three filters (pure functions, and output guards wrapping them) cut what a client can learn from
a response — the confidence scores that membership inference, model inversion and extraction
feed on:

* :class:`TopK` keeps each row's ``k`` highest scores and zeroes the rest;
* :class:`Round` rounds scores to ``decimals`` places;
* :class:`LabelOnly` answers a one-hot row for the predicted class only.

An :class:`OutputPolicy` maps clearance levels to a chain of filters. A clearance the policy
does not name gets :class:`LabelOnly` (the least revealing answer) and a warning: fail closed.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from warden.errors import ConfigError
from warden.gateway.guards.base import GuardContext, OutputGuard

__all__ = [
    "DEFAULT_OUTPUT_POLICY",
    "LabelOnly",
    "OutputPolicy",
    "Round",
    "TopK",
    "label_only",
    "output_filter_from_config",
    "output_policy_from_config",
    "round_scores",
    "top_k",
]

log = logging.getLogger(__name__)

FloatArray = NDArray[np.floating[Any]]


def _rows(outputs: NDArray[Any]) -> FloatArray:
    arr = np.asarray(outputs, dtype=np.float64)
    if arr.ndim != 2:
        raise ConfigError(
            f"output filter: expected one row of scores per input (2-D), found shape {arr.shape}"
        )
    return arr


def top_k(outputs: NDArray[Any], k: int) -> FloatArray:
    """Keep each row's ``k`` highest scores (ties broken by lowest index); zero the others."""
    arr = _rows(outputs)
    if k >= arr.shape[1]:
        return arr.copy()
    order = np.argsort(-arr, axis=1, kind="stable")[:, :k]
    out = np.zeros_like(arr)
    np.put_along_axis(out, order, np.take_along_axis(arr, order, axis=1), axis=1)
    return out


def round_scores(outputs: NDArray[Any], decimals: int) -> FloatArray:
    """Round every score to ``decimals`` places."""
    return np.round(_rows(outputs), decimals)


def label_only(outputs: NDArray[Any]) -> FloatArray:
    """A one-hot row for each row's highest score (lowest index on ties)."""
    arr = _rows(outputs)
    out = np.zeros_like(arr)
    out[np.arange(arr.shape[0]), np.argmax(arr, axis=1)] = 1.0
    return out


@dataclass(frozen=True)
class TopK:
    """Output guard: keep the ``k`` highest scores per row."""

    k: int
    """How many scores each row keeps; >= 1."""
    name: str = "top_k"
    """Guard name (in verdicts and config)."""

    def __post_init__(self) -> None:
        if not isinstance(self.k, int) or isinstance(self.k, bool) or self.k < 1:
            raise ConfigError(f"top_k filter: k must be an integer >= 1, found {self.k!r}")

    def filter(self, outputs: NDArray[Any], ctx: GuardContext) -> FloatArray:
        return top_k(outputs, self.k)


@dataclass(frozen=True)
class Round:
    """Output guard: round scores to ``decimals`` places."""

    decimals: int
    """Decimal places kept; 0 to 15."""
    name: str = "round"
    """Guard name (in verdicts and config)."""

    def __post_init__(self) -> None:
        d = self.decimals
        if not isinstance(d, int) or isinstance(d, bool) or not 0 <= d <= 15:
            raise ConfigError(f"round filter: decimals must be an integer 0..15, found {d!r}")

    def filter(self, outputs: NDArray[Any], ctx: GuardContext) -> FloatArray:
        return round_scores(outputs, self.decimals)


@dataclass(frozen=True)
class LabelOnly:
    """Output guard: only the predicted label, as a one-hot row."""

    name: str = "label_only"
    """Guard name (in verdicts and config)."""

    def filter(self, outputs: NDArray[Any], ctx: GuardContext) -> FloatArray:
        return label_only(outputs)


@dataclass(frozen=True)
class OutputPolicy:
    """Which output guards apply, in order, for each clearance level."""

    by_clearance: Mapping[str, tuple[OutputGuard, ...]]
    """Clearance name → filters applied in order (an empty tuple serves raw scores)."""

    def __post_init__(self) -> None:
        if not self.by_clearance:
            raise ConfigError("output policy: name at least one clearance level")
        object.__setattr__(
            self, "by_clearance", {str(k): tuple(v) for k, v in self.by_clearance.items()}
        )

    def filters_for(self, clearance: str) -> tuple[OutputGuard, ...]:
        """The chain for ``clearance``; an unknown clearance gets label-only (fail closed)."""
        chain = self.by_clearance.get(clearance)
        if chain is None:
            log.warning(
                "clearance %r is not in the output policy (%s); answering labels only",
                clearance,
                ", ".join(sorted(self.by_clearance)),
            )
            return (LabelOnly(),)
        return chain


DEFAULT_OUTPUT_POLICY = OutputPolicy(
    {"full": (), "default": (TopK(3), Round(2)), "label": (LabelOnly(),)}
)
"""``full``: raw scores; ``default``: top 3 scores to 2 decimals; ``label``: label only."""

_FILTERS: dict[str, tuple[type[Any], set[str]]] = {
    "top_k": (TopK, {"k"}),
    "round": (Round, {"decimals"}),
    "label_only": (LabelOnly, set()),
}


def output_filter_from_config(entry: Mapping[str, Any]) -> OutputGuard:
    """``{"filter": "top_k", "k": 3}``, ``{"filter": "round", "decimals": 2}`` or
    ``{"filter": "label_only"}``."""
    if not isinstance(entry, Mapping) or "filter" not in entry:
        raise ConfigError(f"output filter: expected {{'filter': NAME, ...}}, found {entry!r}")
    name = entry["filter"]
    if name not in _FILTERS:
        raise ConfigError(f"output filter {name!r} is unknown; expected one of {sorted(_FILTERS)}")
    cls, fields = _FILTERS[name]
    options = {k: v for k, v in entry.items() if k != "filter"}
    if set(options) != fields:
        raise ConfigError(
            f"output filter {name!r}: expected option(s) {sorted(fields)}, found {sorted(options)}"
        )
    guard: OutputGuard = cls(**options)
    return guard


def output_policy_from_config(config: Mapping[str, Sequence[Mapping[str, Any]]]) -> OutputPolicy:
    """``{"full": [], "default": [{"filter": "round", "decimals": 2}], ...}``."""
    if not isinstance(config, Mapping):
        raise ConfigError(f"output policy: expected a table of clearances, found {config!r}")
    chains: dict[str, tuple[OutputGuard, ...]] = {}
    for clearance, entries in config.items():
        if not isinstance(entries, Sequence) or isinstance(entries, str):
            raise ConfigError(
                f"output policy {clearance!r}: expected a list of filters, found {entries!r}"
            )
        chains[clearance] = tuple(output_filter_from_config(e) for e in entries)
    return OutputPolicy(chains)
