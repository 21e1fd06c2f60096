"""A model's guard pipeline: input guards with policy thresholds, output guards per clearance.

Input side: each :class:`GuardRule` runs its guard on the batch, in order. A rule without
thresholds keeps the guard's own action; a rule with ``flag_at`` / ``block_at`` decides from the
verdict's score instead (``score >= block_at`` blocks, else ``score >= flag_at`` flags, else
allows). The pipeline's action is the most severe verdict; the first ``block`` stops it.

**Fail closed**: a guard that raises, returns something that is not a :class:`Verdict`, or gives
no (finite) score where the rule's thresholds need one counts as ``block`` with the reason
recorded, and is logged. An output guard that raises withholds the response
(:class:`~warden.gateway.errors.GatewayError`, 500): unfiltered scores never leave. A pipeline
with no input guard is refused unless built with ``unsafe_allow_no_input_guards=True``, which
logs a warning.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from warden.errors import ConfigError
from warden.gateway.errors import GatewayError, GuardBlocked
from warden.gateway.guards.base import (
    Action,
    GuardContext,
    InputGuard,
    Verdict,
    severity,
)
from warden.gateway.guards.outputs import (
    DEFAULT_OUTPUT_POLICY,
    OutputPolicy,
    output_policy_from_config,
)

__all__ = ["GuardPipeline", "GuardRule", "PipelineVerdict", "pipeline_from_config"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GuardRule:
    """One input guard in a model's policy, with optional score thresholds."""

    guard: InputGuard
    """The guard to run."""
    flag_at: float | None = None
    """Flag when the verdict's score is at least this (replaces the guard's own action)."""
    block_at: float | None = None
    """Block when the verdict's score is at least this (replaces the guard's own action)."""

    def __post_init__(self) -> None:
        for name in ("flag_at", "block_at"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int | float) or math.isnan(value)):
                raise ConfigError(f"guard rule {self.guard.name!r}: {name} must be a number")
        if self.flag_at is not None and self.block_at is not None and self.flag_at > self.block_at:
            raise ConfigError(
                f"guard rule {self.guard.name!r}: flag_at ({self.flag_at}) is above "
                f"block_at ({self.block_at})"
            )

    @property
    def thresholded(self) -> bool:
        """Whether the rule decides from the score rather than the guard's action."""
        return self.flag_at is not None or self.block_at is not None

    def decide(self, verdict: Verdict) -> Verdict:
        """Apply the thresholds (if any) to the guard's verdict."""
        if not self.thresholded:
            return verdict
        score = verdict.score
        if score is None or not math.isfinite(score):
            return Verdict(
                "block",
                verdict.guard,
                f"guard gave no finite score ({score!r}) but the policy thresholds need one",
                score,
            )
        action: Action = "allow"
        if self.block_at is not None and score >= self.block_at:
            action = "block"
        elif self.flag_at is not None and score >= self.flag_at:
            action = "flag"
        if action == verdict.action:
            return verdict
        reason = verdict.reason or f"score {score:.4g}"
        return Verdict(action, verdict.guard, f"{reason} (policy: {action})", score)


@dataclass(frozen=True)
class PipelineVerdict:
    """Everything the input guards said about one batch."""

    action: Action
    """The most severe action (``allow`` when every guard allowed)."""
    verdicts: tuple[Verdict, ...]
    """Each guard's (policy-adjusted) verdict, in order; stops at the first block."""

    @property
    def blocked(self) -> bool:
        """Whether the request must be refused."""
        return self.action == "block"

    def raise_if_blocked(self) -> PipelineVerdict:
        """Raise :class:`GuardBlocked` (403, naming the guard only) when blocked; else self."""
        if self.blocked:
            guard = next(v.guard for v in self.verdicts if v.action == "block")
            raise GuardBlocked(f"the request was refused by input guard {guard!r}")
        return self


class GuardPipeline:
    """A model's input guards (with thresholds) and output policy; see the module docstring."""

    def __init__(
        self,
        rules: Sequence[GuardRule | InputGuard],
        outputs: OutputPolicy = DEFAULT_OUTPUT_POLICY,
        *,
        unsafe_allow_no_input_guards: bool = False,
    ) -> None:
        self.rules = tuple(r if isinstance(r, GuardRule) else GuardRule(r) for r in rules)
        names = [r.guard.name for r in self.rules]
        if len(set(names)) != len(names):
            raise ConfigError(f"guard pipeline: guard names must be unique, found {names}")
        if not self.rules:
            if not unsafe_allow_no_input_guards:
                raise ConfigError(
                    "guard pipeline: no input guard given; add one (e.g. an OODGuard) or pass "
                    "unsafe_allow_no_input_guards=True to serve unguarded"
                )
            log.warning("guard pipeline built without input guards: inputs are not inspected")
        self.outputs = outputs

    def inspect(self, batch: NDArray[Any], ctx: GuardContext) -> PipelineVerdict:
        """Run the input guards in order; the first block stops the pipeline."""
        verdicts: list[Verdict] = []
        worst: Action = "allow"
        for rule in self.rules:
            verdict = rule.decide(_run(rule.guard, batch, ctx))
            verdicts.append(verdict)
            if severity(verdict.action) > severity(worst):
                worst = verdict.action
            if worst == "block":
                break
        return PipelineVerdict(worst, tuple(verdicts))

    def filter(self, outputs: NDArray[Any], ctx: GuardContext) -> NDArray[Any]:
        """Apply the output guards for ``ctx.clearance``; raise (500) if one fails."""
        result: NDArray[Any] = np.asarray(outputs)
        for guard in self.outputs.filters_for(ctx.clearance):
            try:
                result = np.asarray(guard.filter(result, ctx))
            except Exception as exc:  # any failure withholds the response
                log.warning(
                    "output guard %r failed for model %r; response withheld",
                    guard.name,
                    ctx.model,
                    exc_info=True,
                )
                raise GatewayError(
                    "an output guard failed; the response was withheld", status_code=500
                ) from exc
        return result


def _run(guard: InputGuard, batch: NDArray[Any], ctx: GuardContext) -> Verdict:
    try:
        verdict = guard.inspect(batch, ctx)
    except Exception as exc:  # a failing guard blocks (fail closed)
        log.warning(
            "input guard %r failed for model %r; blocking", guard.name, ctx.model, exc_info=True
        )
        return Verdict("block", guard.name, f"guard failed: {type(exc).__name__}: {exc}")
    if not isinstance(verdict, Verdict):
        return Verdict(
            "block", guard.name, f"guard returned {type(verdict).__name__}, not a Verdict"
        )
    return verdict


def pipeline_from_config(
    config: Mapping[str, Any], guards: Mapping[str, InputGuard]
) -> GuardPipeline:
    """Build a model's pipeline from its policy table and the available guards by name::

        {"input": [{"guard": "ood", "flag_at": 1.0, "block_at": 3.0}],
         "outputs": {"full": [], "default": [{"filter": "round", "decimals": 2}]}}

    ``outputs`` is optional (default :data:`DEFAULT_OUTPUT_POLICY`); an unknown guard name or
    field is refused.
    """
    unknown = set(config) - {"input", "outputs"}
    if unknown:
        raise ConfigError(
            f"guard policy: unknown key(s) {sorted(unknown)}; expected input, outputs"
        )
    rules: list[GuardRule] = []
    for entry in config.get("input", []):
        if not isinstance(entry, Mapping) or "guard" not in entry:
            raise ConfigError(f"guard policy: expected {{'guard': NAME, ...}}, found {entry!r}")
        extra = set(entry) - {"guard", "flag_at", "block_at"}
        if extra:
            raise ConfigError(
                f"guard policy {entry['guard']!r}: unknown field(s) {sorted(extra)}; "
                "expected flag_at, block_at"
            )
        name = entry["guard"]
        if name not in guards:
            raise ConfigError(
                f"guard policy: no guard named {name!r}; available: {sorted(guards) or 'none'}"
            )
        rules.append(GuardRule(guards[name], entry.get("flag_at"), entry.get("block_at")))
    outputs = (
        output_policy_from_config(config["outputs"])
        if "outputs" in config
        else DEFAULT_OUTPUT_POLICY
    )
    return GuardPipeline(rules, outputs)
