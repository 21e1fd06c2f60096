"""Compliance report: for one model version, the evidence per OWASP ML Top 10 risk and per NIST
AI RMF function, with every gap named as a gap.

Evidence comes only from registry records and from re-evaluating the approval gates now (which
authenticates the stored artifact and re-verifies its signature), so the report cannot claim a
control that is not in place. Each item has a status:

- ``evidence`` — evidence is recorded and nothing is missing;
- ``partial`` — some evidence, and at least one gap;
- ``gap`` — no evidence at all.

The mapping from records to risks:

==========  ===============================================================================
risk        evidence looked at (besides the latest assessment's grade for the risk)
==========  ===============================================================================
ML02        training datasets (``trained-on`` lineage) with fingerprint, source and licence
ML06        the artifact, scan and signature gates (authenticated bytes, a clean and fresh
            scan by the running scanner, a signature by a trusted key over exactly the files)
ML07        ``derived-from`` lineage (the base model a version was fine-tuned from)
ML09, ML10  the artifact and signature gates (the served bytes are the approved bytes)
==========  ===============================================================================

NIST AI RMF 1.0 functions: **Govern** (owner, policy in force, approvals with actor and reason,
overrides), **Map** (intended use, limitations, data sources and licences, lineage),
**Measure** (assessment present, fresh and meeting the policy, scan), **Manage** (lifecycle
state, rollback target, quarantine history, gates passing now).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from warden.assess.finding import OWASP_ML_TOP10
from warden.registry.document import Document, Section, rows
from warden.store.tables import utcnow

if TYPE_CHECKING:
    from warden.registry.core import GateReport, Registry
    from warden.registry.modelcard import ModelCard
    from warden.registry.policy import Policy

__all__ = ["NIST_AI_RMF", "ComplianceItem", "ComplianceReport", "compliance_report"]

OWASP_FRAMEWORK = "OWASP Machine Learning Security Top 10 (2023)"
NIST_FRAMEWORK = "NIST AI Risk Management Framework 1.0"

NIST_AI_RMF = {
    "GOVERN": "Govern: a culture of risk management is cultivated and present",
    "MAP": "Map: context is recognised and risks related to context are identified",
    "MEASURE": "Measure: identified risks are assessed, analysed or tracked",
    "MANAGE": "Manage: risks are prioritised and acted upon based on projected impact",
}
"""The four functions of the NIST AI RMF core."""

_GRADES = "ABCDF"


@dataclass(frozen=True)
class ComplianceItem:
    """The evidence and gaps for one risk or one function."""

    framework: str
    """Which framework the item belongs to."""
    id: str
    """``ML01`` … ``ML10`` or ``GOVERN``, ``MAP``, ``MEASURE``, ``MANAGE``."""
    name: str
    """The risk's or function's name."""
    evidence: tuple[str, ...]
    """What is recorded, one line each."""
    gaps: tuple[str, ...]
    """What is missing, failing or stale, one line each."""

    @property
    def status(self) -> str:
        """``evidence``, ``partial`` or ``gap``."""
        if not self.evidence:
            return "gap"
        return "partial" if self.gaps else "evidence"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "framework": self.framework,
            "id": self.id,
            "name": self.name,
            "status": self.status,
            "evidence": list(self.evidence),
            "gaps": list(self.gaps),
        }


@dataclass(frozen=True)
class ComplianceReport:
    """The compliance evidence for one model version."""

    card: ModelCard
    """The registry facts the report was built from."""
    gates: GateReport
    """The approval gates, evaluated when the report was made."""
    items: tuple[ComplianceItem, ...]
    """Ten OWASP ML Top 10 items, then the four NIST AI RMF functions."""
    generated_at: datetime
    """When the report was made (UTC)."""

    @property
    def gap_count(self) -> int:
        """How many gaps are listed in all."""
        return sum(len(i.gaps) + (0 if i.evidence else 1) for i in self.items)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (``warden-compliance/1``)."""
        v = self.card.version
        return {
            "format": "warden-compliance/1",
            "generated_at": self.generated_at.isoformat(),
            "model": v.model,
            "version": v.number,
            "state": v.state,
            "artifact_digest": v.artifact_digest,
            "policy": self.gates.policy.source,
            "gates": self.gates.to_dict(),
            "summary": {
                status: sum(1 for i in self.items if i.status == status)
                for status in ("evidence", "partial", "gap")
            },
            "items": [i.to_dict() for i in self.items],
        }

    def document(self) -> Document:
        """The report as a :class:`~warden.registry.document.Document`."""
        v = self.card.version
        overview = Section(
            "Overview",
            rows=rows(
                ("Model", v.model),
                ("Version", str(v.number)),
                ("State", v.state),
                ("Artifact digest", v.artifact_digest),
                ("Policy", self.gates.policy.source),
                ("Generated", self.generated_at.strftime("%Y-%m-%d %H:%M UTC")),
                (
                    "Status counts",
                    ", ".join(
                        f"{s}: {sum(1 for i in self.items if i.status == s)}"
                        for s in ("evidence", "partial", "gap")
                    ),
                ),
            ),
            table=(
                ("Gate", "Result", "Detail"),
                *(
                    (r.name, "passed" if r.passed else "FAILED", r.detail)
                    for r in self.gates.results
                ),
            ),
        )
        groups = []
        for framework in (OWASP_FRAMEWORK, NIST_FRAMEWORK):
            subs = tuple(
                Section(
                    f"{i.id} — {i.name}",
                    status=i.status,
                    bullets=(
                        *(f"evidence: {e}" for e in i.evidence),
                        *(f"GAP: {g}" for g in i.gaps),
                        *(() if i.evidence else ("GAP: no evidence recorded",)),
                    ),
                )
                for i in self.items
                if i.framework == framework
            )
            groups.append(Section(framework, subsections=subs))
        return Document(
            title=f"Compliance report: {v.model} v{v.number}",
            subtitle="Evidence per OWASP ML Top 10 risk and NIST AI RMF function, from "
            "Warden's registry; gaps are listed as gaps.",
            sections=(overview, *groups),
        )

    def to_markdown(self) -> str:
        """The report as Markdown."""
        return self.document().to_markdown()

    def to_html(self) -> str:
        """The report as one self-contained HTML page."""
        return self.document().to_html()


def _age_days(then: datetime, now: datetime) -> float:
    return (now - then).total_seconds() / 86400.0


def _worse(grade: str, minimum: str) -> bool:
    return grade in _GRADES and minimum in _GRADES and _GRADES.index(grade) > _GRADES.index(minimum)


class _Builder:
    def __init__(self, card: ModelCard, gates: GateReport, policy: Policy, now: datetime):
        self.card, self.gates, self.policy, self.now = card, gates, policy, now
        self.gate = {r.name: r for r in gates.results}

    def gate_line(self, name: str, ev: list[str], gaps: list[str]) -> None:
        result = self.gate.get(name)
        if result is None:
            gaps.append(f"{name} gate not evaluated")
        elif result.passed:
            ev.append(f"{name} gate passes now: {result.detail}")
        else:
            gaps.append(f"{name} gate fails now: {result.detail}")

    def assessed(self, threat: str, ev: list[str], gaps: list[str]) -> None:
        a = self.card.assessment
        if a is None:
            gaps.append("no assessment recorded (`warden registry attach-assessment`)")
            return
        grade = a.threat_grades.get(threat)
        if grade is None:
            gaps.append(f"not evaluated by the latest assessment (#{a.id})")
            return
        ev.append(f"assessment #{a.id} ({a.created_at:%Y-%m-%d}): {threat} grade {grade}")
        minimum = self.policy.assessment.threats.get(threat) or self.policy.assessment.min_grade
        if minimum and _worse(grade, minimum):
            gaps.append(f"grade {grade} is below the policy minimum {minimum}")
        max_age = self.policy.assessment.max_age_days
        if max_age is not None and _age_days(a.created_at, self.now) > max_age:
            gaps.append(f"the assessment is older than the policy's {max_age:g} days")
        if a.artifact_digest != self.card.version.artifact_digest:
            gaps.append("the assessment was made for other bytes than this version's")

    def training_data(self, ev: list[str], gaps: list[str]) -> None:
        trained = [e for e in self.card.lineage if e.kind == "trained-on" and e.dataset]
        if not trained:
            gaps.append("no training data recorded (`warden registry lineage add --trained-on`)")
        for e in trained:
            d = e.dataset
            assert d is not None
            ev.append(f"trained on {d.name} (fingerprint {d.fingerprint[:23]}…)")
            if not d.source:
                gaps.append(f"dataset {d.name}: source not recorded")
            if not d.license:
                gaps.append(f"dataset {d.name}: licence not recorded")

    def owasp(self, threat: str) -> ComplianceItem:
        ev: list[str] = []
        gaps: list[str] = []
        self.assessed(threat, ev, gaps)
        if threat == "ML02":
            self.training_data(ev, gaps)
        elif threat == "ML06":
            for gate in ("artifact", "scan", "signature"):
                self.gate_line(gate, ev, gaps)
        elif threat == "ML07":
            parents = [e for e in self.card.lineage if e.kind == "derived-from"]
            ev += [f"derived from {e.parent_model} v{e.parent_version}" for e in parents]
            if not parents:
                ev.append("no base model recorded (trained from scratch, or not recorded)")
        elif threat in ("ML09", "ML10"):
            for gate in ("artifact", "signature"):
                self.gate_line(gate, ev, gaps)
        return ComplianceItem(
            OWASP_FRAMEWORK, threat, OWASP_ML_TOP10[threat], tuple(ev), tuple(gaps)
        )

    def govern(self) -> ComplianceItem:
        ev: list[str] = []
        gaps: list[str] = []
        m = self.card.model
        (ev if m.owner else gaps).append(
            f"owner: {m.owner}" if m.owner else "no owner recorded for the model"
        )
        ev.append(f"approval policy: {self.policy.source}")
        keys = self.policy.signature.trusted_keys
        if keys:
            ev.append(f"{len(keys)} trusted signing key(s) in the policy")
        else:
            gaps.append("the policy names no trusted signing keys")
        approvals = [
            t
            for t in self.card.history
            if t.to_state == "approved" and t.from_state not in (None, "deployed")
        ]
        for t in approvals:
            ev.append(
                f"approved {t.at:%Y-%m-%d} by {t.actor}" + (f": {t.reason}" if t.reason else "")
            )
        for t in self.card.history:
            if t.override:
                gaps.append(f"gates overridden {t.at:%Y-%m-%d} by {t.actor}: {t.reason}")
        if not approvals:
            gaps.append("the version has not been approved")
        return ComplianceItem(
            NIST_FRAMEWORK, "GOVERN", NIST_AI_RMF["GOVERN"], tuple(ev), tuple(gaps)
        )

    def map(self) -> ComplianceItem:
        ev: list[str] = []
        gaps: list[str] = []
        for label, text in (
            ("intended use", self.card.intended_use),
            ("limitations", self.card.limitations),
        ):
            if text.strip():
                ev.append(f"{label} recorded")
            else:
                gaps.append(f"no {label} recorded")
        self.training_data(ev, gaps)
        evaluated = [e for e in self.card.lineage if e.kind == "evaluated-on" and e.dataset]
        ev += [f"evaluated on {e.dataset.name}" for e in evaluated if e.dataset]
        return ComplianceItem(NIST_FRAMEWORK, "MAP", NIST_AI_RMF["MAP"], tuple(ev), tuple(gaps))

    def measure(self) -> ComplianceItem:
        ev: list[str] = []
        gaps: list[str] = []
        self.gate_line("assessment", ev, gaps)
        self.gate_line("scan", ev, gaps)
        a = self.card.assessment
        if a is not None:
            findings = a.report.get("findings", []) if isinstance(a.report, Mapping) else []
            ev.append(f"latest assessment: overall grade {a.grade}, {len(findings)} finding(s)")
        return ComplianceItem(
            NIST_FRAMEWORK, "MEASURE", NIST_AI_RMF["MEASURE"], tuple(ev), tuple(gaps)
        )

    def manage(self) -> ComplianceItem:
        ev: list[str] = []
        gaps: list[str] = []
        v = self.card.version
        ev.append(f"lifecycle state: {v.state}")
        if v.state in ("quarantined", "retired"):
            gaps.append(f"the version is {v.state}")
        if self.gates.passed:
            ev.append("every approval gate passes now")
        else:
            gaps += [f"gate {line}" for line in self.gates.failures]
        if "champion" in v.aliases:
            if "previous" in self.card.model.aliases:
                ev.append(
                    f"rollback target: v{self.card.model.aliases['previous']} (alias previous)"
                )
            else:
                gaps.append("no rollback target (alias `previous`) for the deployed champion")
        quarantines = [t for t in self.card.history if t.to_state == "quarantined"]
        ev += [f"quarantined {t.at:%Y-%m-%d} by {t.actor}: {t.reason}" for t in quarantines]
        return ComplianceItem(
            NIST_FRAMEWORK, "MANAGE", NIST_AI_RMF["MANAGE"], tuple(ev), tuple(gaps)
        )


def compliance_report(
    registry: Registry,
    model: str,
    ref: int | str = "latest",
    *,
    policy: Policy | None = None,
    now: datetime | None = None,
) -> ComplianceReport:
    """The compliance evidence for ``model`` version ``ref`` (re-evaluates the gates now)."""
    from warden.registry.modelcard import build_model_card

    card = build_model_card(registry, model, ref)
    policy = policy or registry.policy()
    gates = registry.gates(model, card.version.number, policy=policy)
    when = now or utcnow()
    b = _Builder(card, gates, policy, when)
    items = [b.owasp(t) for t in OWASP_ML_TOP10]
    items += [b.govern(), b.map(), b.measure(), b.manage()]
    return ComplianceReport(card=card, gates=gates, items=tuple(items), generated_at=when)
