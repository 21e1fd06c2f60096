"""The model registry: models, versions, datasets, lineage, evidence, a gated lifecycle.

- :class:`Registry` (:mod:`warden.registry.core`) — the API over a :class:`~warden.store.Store`.
- :mod:`warden.registry.records` — the frozen records it returns.
- :mod:`warden.registry.lifecycle` — the state machine (registered → approved → deployed …).
- :mod:`warden.registry.policy` — the approval policy file; :mod:`warden.registry.gates` — the
  gates that enforce it.

Importing this package opens nothing.
"""

from warden.registry.core import CHAMPION, PREVIOUS, GateReport, Registry
from warden.registry.gates import GateResult
from warden.registry.lifecycle import Move, State
from warden.registry.policy import Policy, default_policy, load_policy
from warden.registry.records import (
    AliasInfo,
    AssessmentInfo,
    DatasetInfo,
    FileInfo,
    LineageInfo,
    ModelInfo,
    NoteInfo,
    ScanInfo,
    SignatureInfo,
    TransitionInfo,
    VersionInfo,
)

__all__ = [
    "CHAMPION",
    "PREVIOUS",
    "AliasInfo",
    "AssessmentInfo",
    "DatasetInfo",
    "FileInfo",
    "GateReport",
    "GateResult",
    "LineageInfo",
    "ModelInfo",
    "Move",
    "NoteInfo",
    "Policy",
    "Registry",
    "ScanInfo",
    "SignatureInfo",
    "State",
    "TransitionInfo",
    "VersionInfo",
    "default_policy",
    "load_policy",
]
