"""Model cards generated from registry facts, as Markdown, HTML and a CycloneDX ``modelCard``.

A card is assembled only from what the registry records — the model's description, owner,
intended use and limitations (user-provided text), the version's artifact and state, its
datasets and lineage, the latest scan, signature and assessment, lifecycle history and notes —
so it can be regenerated at any time and never claims more than the evidence shows. Missing
evidence is printed as missing ("no assessment recorded"), not left out.

The same facts go into the CycloneDX 1.6 ML-BOM (:func:`model_card_sbom`): the version's files
are exported to a private temporary folder, :func:`warden.supplychain.sbom.build_sbom` reads
them, and the registry's datasets, assessment and text are merged into its ``modelCard``.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from warden.assess.finding import OWASP_ML_TOP10
from warden.registry.document import Document, Section, join, rows

if TYPE_CHECKING:
    from warden.registry.core import Registry
    from warden.registry.records import (
        AssessmentInfo,
        LineageInfo,
        ModelInfo,
        NoteInfo,
        ScanInfo,
        SignatureInfo,
        TransitionInfo,
        VersionInfo,
    )

__all__ = ["ModelCard", "build_model_card", "model_card_sbom"]


def _when(t: Any) -> str:
    return t.strftime("%Y-%m-%d %H:%M UTC") if t is not None else ""


@dataclass(frozen=True)
class ModelCard:
    """Everything a model card shows for one version, gathered from the registry."""

    model: ModelInfo
    """The model (name, description, owner, intended use, limitations)."""
    version: VersionInfo
    """The version the card describes."""
    intended_use: str
    """Intended use: the text given for this card, else the model's recorded text."""
    limitations: str
    """Limitations: the text given for this card, else the model's recorded text."""
    lineage: tuple[LineageInfo, ...]
    """Datasets and parent versions, including inherited (ancestor) edges."""
    scan: ScanInfo | None
    """The latest scan of the version, if any."""
    signature: SignatureInfo | None
    """The latest signature recorded for the version, if any."""
    assessment: AssessmentInfo | None
    """The latest assessment of the version, if any."""
    history: tuple[TransitionInfo, ...]
    """The version's lifecycle transitions, oldest first."""
    notes: tuple[NoteInfo, ...]
    """Notes on the version and on the model as a whole."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "model": self.model.to_dict(),
            "version": self.version.to_dict(),
            "intended_use": self.intended_use,
            "limitations": self.limitations,
            "lineage": [e.to_dict() for e in self.lineage],
            "scan": None if self.scan is None else self.scan.to_dict(),
            "signature": None if self.signature is None else self.signature.to_dict(),
            "assessment": None if self.assessment is None else self.assessment.to_dict(),
            "history": [t.to_dict() for t in self.history],
            "notes": [n.to_dict() for n in self.notes],
        }

    def document(self) -> Document:
        """The card as a :class:`~warden.registry.document.Document`."""
        v, m = self.version, self.model
        details = Section(
            "Model details",
            rows=rows(
                ("Model", m.name),
                ("Version", str(v.number)),
                ("State", v.state),
                ("Aliases", join(v.aliases, "")),
                ("Owner", m.owner),
                ("Framework", v.framework),
                ("Artifact", f"{v.artifact_name} ({v.artifact_kind}, {v.size:,} bytes)"),
                ("Artifact digest", v.artifact_digest),
                ("Files", str(len(v.files))),
                ("Registered", f"{_when(v.created_at)} by {v.created_by}"),
            ),
            text=m.description,
        )
        use = Section(
            "Intended use", text=self.intended_use or "Not recorded: set the model's intended use."
        )
        limits = Section(
            "Limitations", text=self.limitations or "Not recorded: set the model's limitations."
        )
        sections = [details, use, limits, self._data_section(), self._evaluation_section()]
        sections += [self._security_section(), self._history_section()]
        if self.notes:
            sections.append(
                Section(
                    "Notes",
                    table=(
                        ("When", "Author", "Scope", "Note"),
                        *(
                            (
                                _when(n.created_at),
                                n.author,
                                "model" if n.version is None else f"v{n.version}",
                                n.text,
                            )
                            for n in self.notes
                        ),
                    ),
                )
            )
        return Document(
            title=f"Model card: {m.name} v{v.number}",
            subtitle="Generated by Warden from registry records.",
            sections=tuple(sections),
        )

    def _data_section(self) -> Section:
        datasets = [e for e in self.lineage if e.dataset is not None]
        parents = [e for e in self.lineage if e.dataset is None]
        table: tuple[tuple[str, ...], ...] = ()
        if datasets:
            table = (
                ("Role", "Dataset", "Fingerprint", "Source", "Licence", "Rows", "Recorded for"),
                *(
                    (
                        e.kind,
                        e.dataset.name,
                        e.dataset.fingerprint,
                        e.dataset.source or "not recorded",
                        e.dataset.license or "not recorded",
                        "" if e.dataset.n_rows is None else f"{e.dataset.n_rows:,}",
                        f"{e.model} v{e.version}",
                    )
                    for e in datasets
                    if e.dataset is not None
                ),
            )
        bullets = tuple(f"derived from {e.parent_model} v{e.parent_version}" for e in parents)
        text = "" if datasets else "No training or evaluation data recorded."
        return Section("Data and lineage", table=table, bullets=bullets, text=text)

    def _evaluation_section(self) -> Section:
        a = self.assessment
        if a is None:
            return Section("Evaluation", text="No assessment recorded for this version.")
        threats = a.threat_grades
        table = (
            ("Threat", "Name", "Grade"),
            *((t, OWASP_ML_TOP10.get(t, ""), g) for t, g in sorted(threats.items())),
        )
        metrics = []
        for f in a.report.get("findings", []) if isinstance(a.report, Mapping) else []:
            if isinstance(f, Mapping) and isinstance(f.get("title"), str):
                metrics.append(f"{f.get('severity', '?')}: {f['title']}")
        return Section(
            "Evaluation",
            rows=rows(
                ("Overall grade", a.grade),
                ("Assessed", f"{_when(a.created_at)} by {a.created_by}"),
                ("Suite", str(a.report.get("suite", ""))),
                ("Artifact digest", a.artifact_digest),
            ),
            table=table if threats else (),
            bullets=tuple(metrics[:50]),
        )

    def _security_section(self) -> Section:
        s, sig = self.scan, self.signature
        scan_text = (
            "no scan recorded"
            if s is None
            else (
                f"{'clean' if s.clean else 'NOT clean'}: {s.finding_count} finding(s)"
                f"{'' if s.max_severity is None else f', worst {s.max_severity}'}"
                f"; Warden {s.scanner_version}, {_when(s.created_at)}"
            )
        )
        sig_text = (
            "no signature recorded"
            if sig is None
            else (
                f"{'verified' if sig.verified else 'DID NOT VERIFY'} with key "
                f"{sig.key_id[:16]}, {_when(sig.created_at)}"
            )
        )
        return Section(
            "Security",
            rows=(("Artifact scan", scan_text), ("Signature", sig_text)),
        )

    def _history_section(self) -> Section:
        if not self.history:
            return Section("Lifecycle", text="No transitions recorded yet.")
        return Section(
            "Lifecycle",
            table=(
                ("When", "From", "To", "Who", "Why", "Override"),
                *(
                    (
                        _when(t.at),
                        t.from_state or "",
                        t.to_state,
                        t.actor,
                        t.reason,
                        "yes" if t.override else "",
                    )
                    for t in self.history
                ),
            ),
        )

    def to_markdown(self) -> str:
        """The card as Markdown."""
        return self.document().to_markdown()

    def to_html(self) -> str:
        """The card as one self-contained HTML page."""
        return self.document().to_html()


def build_model_card(
    registry: Registry,
    model: str,
    ref: int | str = "latest",
    *,
    intended_use: str | None = None,
    limitations: str | None = None,
) -> ModelCard:
    """The model card of ``model`` version ``ref`` from what ``registry`` records.

    ``intended_use`` and ``limitations`` replace the model's recorded text for this card.
    """
    m = registry.get_model(model)
    v = registry.get_version(model, ref)
    notes = [n for n in registry.notes(model) if n.version in (None, v.number)]
    return ModelCard(
        model=m,
        version=v,
        intended_use=m.intended_use if intended_use is None else intended_use,
        limitations=m.limitations if limitations is None else limitations,
        lineage=tuple(registry.lineage(model, v.number, recursive=True)),
        scan=registry.latest_scan(model, v.number),
        signature=registry.latest_signature(model, v.number),
        assessment=registry.latest_assessment(model, v.number),
        history=tuple(registry.history(model, v.number)),
        notes=tuple(notes),
    )


def model_card_sbom(
    registry: Registry,
    model: str,
    ref: int | str = "latest",
    *,
    intended_use: str | None = None,
    limitations: str | None = None,
    include_libraries: bool = True,
) -> dict[str, Any]:
    """The version's CycloneDX 1.6 ML-BOM with the registry's model card in ``modelCard``."""
    from warden.supplychain.sbom import (
        DatasetFacts,
        ModelCardFacts,
        PerformanceMetric,
        Risk,
        build_sbom,
    )

    card = build_model_card(
        registry, model, ref, intended_use=intended_use, limitations=limitations
    )
    v = card.version
    datasets = []
    for e in card.lineage:
        if e.dataset is None:
            continue
        d = e.dataset
        props = [("warden:dataset:role", e.kind)]
        props += [
            (f"warden:dataset:{k}", val)
            for k, val in (("source", d.source), ("license", d.license))
            if val
        ]
        if d.n_rows is not None:
            props.append(("warden:dataset:samples", str(d.n_rows)))
        datasets.append(DatasetFacts(d.name, d.fingerprint, tuple(props)))
    properties = [
        ("warden:registry:state", v.state),
        ("warden:registry:artifact-digest", v.artifact_digest),
    ]
    if card.scan is not None:
        properties.append(("warden:registry:scan", "clean" if card.scan.clean else "not clean"))
    if card.signature is not None:
        properties.append(("warden:registry:signature-key", card.signature.key_id))
    risks: tuple[Risk, ...] = ()
    metrics: tuple[PerformanceMetric, ...] = ()
    full_report = None
    if card.assessment is not None:
        a = card.assessment
        risks = tuple(
            Risk(f"{t} ({OWASP_ML_TOP10.get(t, t)}): grade {g}")
            for t, g in sorted(a.threat_grades.items())
            if g not in ("A", "B")
        )
        if "schema_version" in a.report:
            full_report = a.report  # a whole `warden assess` report: build_sbom reads it all
        else:  # only a scorecard was recorded: its grades are the metrics
            metrics = (
                PerformanceMetric("grade", a.grade, "overall"),
                *(PerformanceMetric("grade", g, t) for t, g in sorted(a.threat_grades.items())),
            )
    facts = ModelCardFacts(
        use_cases=(card.intended_use,) if card.intended_use else (),
        limitations=(card.limitations,) if card.limitations else (),
        risks=risks,
        metrics=metrics,
        properties=tuple(properties),
    )
    tmp = Path(tempfile.mkdtemp(prefix="warden-sbom-"))
    try:
        return build_sbom(
            registry.export_version(model, v.number, tmp / "model"),
            assessment=full_report,
            datasets=datasets,
            name=card.model.name,
            version=str(v.number),
            facts=facts,
            include_libraries=include_libraries,
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
