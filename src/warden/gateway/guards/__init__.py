"""Runtime guards: input guards with per-model policies, output guards per client clearance.

See :mod:`.base` (shapes), :mod:`.pipeline` (policy, fail-closed rules), :mod:`.ood` (the
out-of-distribution guard) and :mod:`.outputs` (output hardening).
"""

from warden.gateway.guards.base import (
    ACTIONS,
    Action,
    GuardContext,
    InputGuard,
    OutputGuard,
    Verdict,
    severity,
)
from warden.gateway.guards.ood import OODDetector, OODGuard
from warden.gateway.guards.outputs import (
    DEFAULT_OUTPUT_POLICY,
    LabelOnly,
    OutputPolicy,
    Round,
    TopK,
    label_only,
    output_filter_from_config,
    output_policy_from_config,
    round_scores,
    top_k,
)
from warden.gateway.guards.pipeline import (
    GuardPipeline,
    GuardRule,
    PipelineVerdict,
    pipeline_from_config,
)

__all__ = [
    "ACTIONS",
    "DEFAULT_OUTPUT_POLICY",
    "Action",
    "GuardContext",
    "GuardPipeline",
    "GuardRule",
    "InputGuard",
    "LabelOnly",
    "OODDetector",
    "OODGuard",
    "OutputGuard",
    "OutputPolicy",
    "PipelineVerdict",
    "Round",
    "TopK",
    "Verdict",
    "label_only",
    "output_filter_from_config",
    "output_policy_from_config",
    "pipeline_from_config",
    "round_scores",
    "severity",
    "top_k",
]
