"""Model cards from registry facts (Markdown, HTML, CycloneDX modelCard) and the compliance
report (OWASP ML Top 10 and NIST AI RMF evidence with gaps)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.registry._helpers import full_report

from warden.errors import ConfigError
from warden.registry import Registry
from warden.registry.compliance import compliance_report
from warden.registry.document import Document, Section, md_escape, write_document
from warden.registry.modelcard import build_model_card, model_card_sbom
from warden.registry.policy import parse_policy
from warden.supplychain.sbom import validate_sbom

FP_TRAIN = "sha256:" + "a" * 64
FP_EVAL = "sha256:" + "b" * 64
SCRIPT = "<script>alert(1)</script>"


@pytest.fixture
def documented(registry: Registry, model_file: Path, keys: dict[str, Path]) -> Registry:
    """A model with text, datasets, lineage, scan, signature, assessment, approval, notes."""
    registry.create_model(
        "fraud",
        description="Scores card transactions.",
        intended_use=f"Rank transactions for review {SCRIPT}",
        limitations="Not for credit decisions.\n# not a heading",
        owner="risk-team",
    )
    registry.register_version("fraud", model_file, framework="numpy")
    registry.register_dataset(
        "tx-2025", fingerprint=FP_TRAIN, source="warehouse export", license="internal", n_rows=1000
    )
    registry.register_dataset("tx-holdout", fingerprint=FP_EVAL)
    registry.add_lineage("fraud", 1, "trained-on", dataset="tx-2025")
    registry.add_lineage("fraud", 1, "evaluated-on", dataset="tx-holdout")
    registry.scan_version("fraud", 1)
    registry.sign_version("fraud", 1, keys["trusted"])
    registry.attach_assessment("fraud", 1, full_report(ML01="B", ML05="C"))
    registry.approve("fraud", 1, reason="passes review")
    registry.add_note("fraud", "model note")
    registry.add_note("fraud", "version note", ref=1)
    return registry


def test_card_gathers_every_registry_fact(documented: Registry) -> None:
    card = build_model_card(documented, "fraud", 1)
    assert card.version.state == "approved"
    assert {e.kind for e in card.lineage} == {"trained-on", "evaluated-on"}
    assert card.scan is not None and card.scan.clean
    assert card.signature is not None and card.signature.verified
    assert card.assessment is not None and card.assessment.threat_grades == {
        "ML01": "B",
        "ML05": "C",
    }
    assert [n.text for n in card.notes] == ["model note", "version note"]
    md = card.to_markdown()
    for expected in (
        "# Model card: fraud v1",
        "risk-team",
        "tx-2025",
        FP_TRAIN,
        "warehouse export",
        "internal",
        "| ML05 | Model Theft | C |",
        "passes review",
        "version note",
        card.version.artifact_digest,
    ):
        assert expected in md, expected
    assert json.loads(json.dumps(card.to_dict()))["version"]["version"] == 1


def test_card_escapes_user_text_in_markdown_and_html(documented: Registry) -> None:
    card = build_model_card(documented, "fraud", 1)
    md, page = card.to_markdown(), card.to_html()
    assert SCRIPT not in md and SCRIPT not in page
    assert "&lt;script&gt;" in md and "&lt;script&gt;" in page
    assert "\n# not a heading" not in md  # user text cannot add headings
    assert "<script" not in page.lower()
    assert "default-src 'none'" in page


def test_card_says_what_is_missing(registry: Registry, model_file: Path) -> None:
    registry.register_version("bare", model_file, create_model=True)
    md = build_model_card(registry, "bare", 1).to_markdown()
    for missing in (
        "Not recorded: set the model's intended use.",
        "No training or evaluation data recorded.",
        "No assessment recorded for this version.",
        "no scan recorded",
        "no signature recorded",
    ):
        assert missing in md


def test_card_text_given_for_the_card_replaces_recorded_text(documented: Registry) -> None:
    card = build_model_card(documented, "fraud", 1, intended_use="Only for audits.")
    assert card.intended_use == "Only for audits."
    assert "Only for audits." in card.to_markdown()


def test_model_card_goes_into_a_valid_cyclonedx_ml_bom(documented: Registry) -> None:
    bom = model_card_sbom(documented, "fraud", 1, include_libraries=False)
    assert validate_sbom(bom) == []
    model = bom["components"][0]
    assert model["type"] == "machine-learning-model"
    assert model["name"] == "fraud" and model["version"] == "1"
    card = model["modelCard"]
    considerations = card["considerations"]
    assert any("Rank transactions" in u for u in considerations["useCases"])
    assert considerations["technicalLimitations"][0].startswith("Not for credit")
    assert any("ML05" in r["name"] for r in considerations["ethicalConsiderations"])
    data = {c["name"]: c for c in bom["components"] if c["type"] == "data"}
    assert set(data) == {"tx-2025", "tx-holdout"}
    props = {p["name"]: p["value"] for p in data["tx-2025"]["properties"]}
    assert props["warden:dataset:fingerprint"] == FP_TRAIN
    assert props["warden:dataset:role"] == "trained-on"
    assert props["warden:dataset:license"] == "internal"
    refs = {d["ref"] for d in card["modelParameters"]["datasets"]}
    assert refs == {data["tx-2025"]["bom-ref"], data["tx-holdout"]["bom-ref"]}


def test_compliance_lists_evidence_and_gaps(documented: Registry, tmp_path: Path) -> None:
    stricter = parse_policy(
        {
            "signature": {"trusted_keys": ["keys/trusted.pub"]},
            "assessment": {"min_grade": "C", "threats": {"ML05": "B"}},
        },
        base=tmp_path,
        where="stricter",
    )
    report = compliance_report(documented, "fraud", 1, policy=stricter)
    items = {i.id: i for i in report.items}
    assert list(items) == [f"ML{n:02d}" for n in range(1, 11)] + [
        "GOVERN",
        "MAP",
        "MEASURE",
        "MANAGE",
    ]
    assert items["ML01"].status == "evidence"
    # ML05 graded C: evidence of assessment; the stricter policy's minimum B makes it a gap
    assert items["ML05"].status == "partial"
    assert any("below the policy minimum B" in g for g in items["ML05"].gaps)
    assert any("assessment gate fails now" in g for g in items["MEASURE"].gaps)
    # Not evaluated at all by the assessment: a gap
    assert items["ML03"].status == "gap"
    assert items["ML06"].status == "partial"  # assessment did not cover ML06
    assert any("signature gate passes now" in e for e in items["ML06"].evidence)
    assert items["MAP"].status == "evidence"  # text, sourced and licensed training data
    assert items["GOVERN"].evidence and any("approved" in e for e in items["GOVERN"].evidence)
    doc = report.to_dict()
    assert doc["format"] == "warden-compliance/1"
    assert sum(doc["summary"].values()) == 14
    md = report.to_markdown()
    assert "GAP: not evaluated by the latest assessment" in md
    assert "NIST AI Risk Management Framework" in md


def test_compliance_reflects_tampered_bytes_as_a_gap(documented: Registry) -> None:
    version = documented.get_version("fraud", 1)
    blob = documented.store.blobs.path_of(version.files[0].blob_id)
    data = bytearray(blob.read_bytes())
    data[-20] ^= 0x01
    blob.write_bytes(bytes(data))
    report = compliance_report(documented, "fraud", 1)
    items = {i.id: i for i in report.items}
    assert any("artifact gate fails now" in g for g in items["ML06"].gaps)
    assert any("artifact gate fails now" in g for g in items["ML10"].gaps)
    assert any(g.startswith("gate artifact") for g in items["MANAGE"].gaps)


def test_compliance_of_an_unevidenced_version_is_all_gaps(
    registry: Registry, model_file: Path
) -> None:
    registry.register_version("bare", model_file, create_model=True)
    report = compliance_report(registry, "bare", 1)
    items = {i.id: i for i in report.items}
    for threat in ("ML01", "ML02", "ML03", "ML04", "ML05", "ML08"):
        assert items[threat].status == "gap", threat
    assert any("no training data recorded" in g for g in items["ML02"].gaps)
    assert any("has not been approved" in g for g in items["GOVERN"].gaps)
    assert any("scan gate fails now" in g for g in items["ML06"].gaps)


def test_override_is_reported_as_a_governance_gap(registry: Registry, model_file: Path) -> None:
    registry.register_version("m", model_file, create_model=True)
    registry.approve("m", 1, override_reason="incident hotfix INC-7")
    govern = {i.id: i for i in compliance_report(registry, "m", 1).items}["GOVERN"]
    assert any("overridden" in g and "INC-7" in g for g in govern.gaps)


def test_markdown_escaping_and_writer(tmp_path: Path) -> None:
    assert md_escape("a|b <i>") == "a\\|b &lt;i&gt;"
    assert md_escape("# head\n- item\n1. one") == "\\# head\n\\- item\n\\1. one"
    doc = Document("T", sections=(Section("S", rows=(("k", "v|w"),)),))
    assert "| k | v\\|w |" in doc.to_markdown()
    assert write_document(doc, tmp_path / "x.md").read_text().startswith("# T")
    assert "<h1>T</h1>" in write_document(doc, tmp_path / "x.html").read_text()
    with pytest.raises(ConfigError, match=r"expected a \.md or \.html"):
        write_document(doc, tmp_path / "x.txt")


def test_register_dataset_from_a_dataset_object_uses_its_fingerprint(registry: Registry) -> None:
    from warden.data.bundled import load_breast_cancer

    data = load_breast_cancer()
    info = registry.register_dataset_from("bc", data, license="CC BY 4.0")
    assert info.fingerprint == data.fingerprint
    assert info.n_rows == len(data)
    assert info.license == "CC BY 4.0"
    assert info.source
