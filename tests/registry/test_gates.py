"""Approval gates: each refuses when its evidence is missing, failing or stale; overrides."""

from __future__ import annotations

import json
import logging
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import update
from tests.registry._helpers import bad_pickle, report

from warden.errors import GateRefused, LifecycleError, SignatureError
from warden.registry import Registry
from warden.registry.policy import Policy, parse_policy
from warden.store import Store
from warden.store.tables import Assessment, Scan, Signature, VersionFile, utcnow
from warden.supplychain.keys import load_private_key
from warden.supplychain.signing import FileDigest, Manifest, make_bundle


def evidence(registry: Registry, keys: dict[str, Path], model: str = "m", ref: int = 1) -> None:
    registry.scan_version(model, ref)
    registry.sign_version(model, ref, keys["trusted"])
    registry.attach_assessment(model, ref, report(ML01="C", ML05="B"))


@pytest.fixture
def v1(registry: Registry, model_file: Path) -> int:
    return registry.register_version("m", model_file, create_model=True).number


def failing(registry: Registry, gate: str, **kw: object) -> str:
    results = {r.name: r for r in registry.gates("m", 1, **kw).results}  # type: ignore[arg-type]
    assert not results[gate].passed, results[gate]
    return results[gate].detail


def test_all_gates_pass_and_approval_records_them(
    registry: Registry, keys: dict[str, Path], v1: int
) -> None:
    evidence(registry, keys)
    report_ = registry.gates("m", 1)
    assert report_.passed and report_.failures == ()
    assert [r.name for r in report_.results] == ["artifact", "scan", "signature", "assessment"]
    assert [r.evidence for r in report_.results] == [
        (),
        ("scan:1",),
        ("signature:1",),
        ("assessment:1",),
    ]
    t = registry.approve("m", 1, reason="release 1")
    assert (t.from_state, t.to_state, t.override, t.reason, t.actor) == (
        "registered",
        "approved",
        False,
        "release 1",
        "alice",
    )
    assert t.evidence["passed"] is True and t.evidence["failures"] == []
    assert [g["gate"] for g in t.evidence["gates"]] == [
        "artifact",
        "scan",
        "signature",
        "assessment",
    ]
    assert t.evidence["policy"]["source"] == "test-policy"
    assert registry.get_version("m", 1).state == "approved"
    assert registry.history("m", 1)[-1] == t
    json.dumps(t.to_dict())


def test_missing_evidence_is_refused_all_at_once(registry: Registry, v1: int) -> None:
    with pytest.raises(GateRefused, match="3 policy gate") as info:
        registry.approve("m", 1)
    lines = info.value.failures
    assert len(lines) == 3
    assert lines[0] == "scan: FAIL — no scan recorded — run `warden registry scan m v1`"
    assert lines[1].startswith("signature: FAIL — no signature recorded — sign it")
    assert lines[2].startswith("assessment: FAIL — no assessment recorded — attach one")
    assert registry.get_version("m", 1).state == "registered"
    assert [t.to_state for t in registry.history("m", 1)] == ["registered"]


def test_dirty_scan_fails(registry: Registry, keys: dict[str, Path], tmp_path: Path) -> None:
    bad = tmp_path / "bad.pkl"
    bad.write_bytes(bad_pickle(tmp_path))
    registry.register_version("m", bad, create_model=True)
    evidence(registry, keys)
    scan = registry.latest_scan("m", 1)
    assert scan is not None and not scan.clean and scan.max_severity == "critical"
    assert scan.report["files"][0]["path"] == "bad.pkl", "paths are relative to the artifact"
    assert not (tmp_path / "marker").exists(), "scanning never loads the pickle"
    detail = failing(registry, "scan")
    assert detail.startswith("1 finding(s) at or above low (worst: critical)")


def test_latest_scan_counts_not_an_earlier_clean_one(
    registry: Registry, store: Store, keys: dict[str, Path], v1: int
) -> None:
    evidence(registry, keys)
    registry.scan_version("m", 1)
    with store.db.session() as s:
        s.execute(update(Scan).where(Scan.id == 2).values(max_severity="high", clean=False))
    assert "worst: high" in failing(registry, "scan")


@pytest.mark.parametrize(
    ("column", "value", "needle"),
    [
        ("artifact_digest", "sha256:" + "0" * 64, "stale: the latest scan is of other bytes"),
        ("scanner_version", "0.0.1", "stale: scanned by an older scanner (Warden 0.0.1"),
    ],
)
def test_stale_scan_record(
    registry: Registry,
    store: Store,
    keys: dict[str, Path],
    v1: int,
    column: str,
    value: str,
    needle: str,
) -> None:
    evidence(registry, keys)
    with store.db.session() as s:
        s.execute(update(Scan).values({column: value}))
    assert needle in failing(registry, "scan")


def test_old_evidence_is_stale(
    store: Store, keys: dict[str, Path], tmp_path: Path, v1: int
) -> None:
    policy = parse_policy(
        {
            "scan": {"max_age_days": 7},
            "signature": {"trusted_keys": ["keys/trusted.pub"]},
            "assessment": {"max_age_days": 30},
        },
        base=tmp_path,
    )
    now = Registry(store, actor="alice", policy=policy)
    evidence(now, keys)
    assert now.gates("m", 1).passed
    later = Registry(store, actor="bob", policy=policy, clock=lambda: utcnow() + timedelta(days=10))
    lines = later.gates("m", 1).failures
    assert (
        len(lines) == 1 and "stale: the latest scan is 10.0 days old (policy allows 7)" in lines[0]
    )
    with store.db.session() as s:  # or: the record itself says it is old
        s.execute(update(Assessment).values(created_at=utcnow() - timedelta(days=45)))
    assert "stale: the latest assessment is 45.0 days old (policy allows 30)" in failing(
        now, "assessment"
    )


def test_untrusted_signature_fails(registry: Registry, keys: dict[str, Path], v1: int) -> None:
    registry.scan_version("m", 1)
    registry.sign_version("m", 1, keys["other"])
    registry.attach_assessment("m", 1, report(ML01="A"))
    assert "which the policy does not trust" in failing(registry, "signature")
    registry.sign_version("m", 1, keys["trusted"])  # a trusted one later: passes
    assert registry.gates("m", 1).passed


def test_tampered_bundle_fails(
    registry: Registry, store: Store, keys: dict[str, Path], v1: int
) -> None:
    evidence(registry, keys)
    sig = registry.latest_signature("m", 1)
    assert sig is not None
    doc = json.loads(sig.bundle)
    raw = bytearray(doc["dsseEnvelope"]["signatures"][0]["sig"].encode())
    raw[5] = ord("A") if raw[5] != ord("A") else ord("B")
    doc["dsseEnvelope"]["signatures"][0]["sig"] = raw.decode()
    with store.db.session() as s:
        s.execute(update(Signature).values(bundle=json.dumps(doc)))
    assert "does not verify" in failing(registry, "signature")


def test_signature_of_other_files_fails(
    registry: Registry, store: Store, keys: dict[str, Path], v1: int
) -> None:
    evidence(registry, keys)
    other = Manifest("x", (FileDigest(".", "ab" * 32),))
    payload = json.dumps(other.statement()).encode()
    forged = json.dumps(make_bundle(payload, load_private_key(keys["trusted"])))
    with pytest.raises(SignatureError, match=r"does not match m v1: it signs other bytes for \."):
        registry.attach_signature("m", 1, forged, keys["trusted"].with_suffix(".pub"))
    with store.db.session() as s:  # a record that lies about what it signed
        s.execute(update(Signature).values(bundle=forged))
    assert "signs other bytes for ." in failing(registry, "signature")


def test_no_trusted_keys_fails_closed(store: Store, keys: dict[str, Path], v1: int) -> None:
    reg = Registry(store, actor="alice")  # no policy file in the home: the default policy
    evidence(reg, keys)
    assert reg.policy().source == "<default policy>"
    assert failing(reg, "signature").startswith("no trusted keys in the policy")


def test_policy_file_in_the_home_is_used(store: Store, keys: dict[str, Path], v1: int) -> None:
    (store.home / "policy.toml").write_text(
        f'[signature]\ntrusted_keys = ["{keys["trusted"]}.pub"]\n[assessment]\nmin_grade = "A"\n'
    )
    reg = Registry(store, actor="alice")
    evidence(reg, keys)
    assert failing(reg, "assessment") == "overall grade C is below A"
    assert reg.gates("m", 1, policy=Policy()).failures[0].startswith("signature: FAIL — no trusted")


@pytest.mark.parametrize(
    ("grades", "needle"),
    [
        ({"ML01": "D"}, "overall grade D is below C; ML01 grade D is below C"),
        ({"ML05": "B"}, "ML01 required (C) but not evaluated"),
        ({}, "overall grade N/A is below C; ML01 required (C) but not evaluated"),
    ],
)
def test_assessment_thresholds(
    registry: Registry, keys: dict[str, Path], v1: int, grades: dict[str, str], needle: str
) -> None:
    registry.scan_version("m", 1)
    registry.sign_version("m", 1, keys["trusted"])
    registry.attach_assessment("m", 1, report(**grades))
    assert failing(registry, "assessment") == needle


def test_assessment_of_other_bytes_is_stale(
    registry: Registry, store: Store, keys: dict[str, Path], v1: int
) -> None:
    evidence(registry, keys)
    with store.db.session() as s:
        s.execute(update(Assessment).values(artifact_digest="sha256:" + "1" * 64))
    assert "stale: the latest assessment is of other bytes" in failing(registry, "assessment")


def test_tampered_blob_fails_the_artifact_gate(
    registry: Registry, store: Store, keys: dict[str, Path], v1: int
) -> None:
    evidence(registry, keys)
    assert registry.verify_version("m", 1) == []
    blob = registry.get_version("m", 1).files[0].blob_id
    path = store.blobs.path_of(blob)
    data = bytearray(path.read_bytes())
    data[40] ^= 0x10
    path.write_bytes(bytes(data))
    assert "stored bytes fail authentication" in failing(registry, "artifact")
    (problem,) = registry.verify_version("m", 1)
    assert problem.startswith("m v1: stored bytes fail authentication: weights.npy: blob ")


def test_altered_file_records_fail_the_artifact_gate(
    registry: Registry, store: Store, keys: dict[str, Path], model_dir: Path, v1: int
) -> None:
    other = registry.register_version("m", model_dir).files[0]
    evidence(registry, keys)
    with store.db.session() as s:
        s.execute(
            update(VersionFile)
            .where(VersionFile.version_id == 1)
            .values(blob_id=other.blob_id, size=other.size)
        )
    assert "the registry's records were altered" in failing(registry, "artifact")


def test_override_is_recorded_and_warned(
    registry: Registry, v1: int, caplog: pytest.LogCaptureFixture
) -> None:
    with pytest.raises(LifecycleError, match="overriding the policy gates needs a reason"):
        registry.approve("m", 1, override_reason="  ")
    with caplog.at_level(logging.WARNING, logger="warden.registry"):
        t = registry.approve("m", 1, reason="ticket 42", override_reason="emergency fix")
    assert t.override is True and t.to_state == "approved"
    assert t.reason == "emergency fix — ticket 42"
    assert len(t.evidence["failures"]) == 3 and t.evidence["passed"] is False
    assert any(
        "OVERRIDING failed policy gates (emergency fix)" in r.message for r in caplog.records
    )
    assert registry.history("m", 1)[-1].override is True


def test_override_not_needed_is_not_an_override(
    registry: Registry, keys: dict[str, Path], v1: int
) -> None:
    evidence(registry, keys)
    t = registry.approve("m", 1, override_reason="just in case")
    assert t.override is False and t.reason == ""


def test_wrong_state_is_refused_before_the_gates(registry: Registry, v1: int) -> None:
    registry.quarantine("m", 1, reason="suspicious")
    with pytest.raises(LifecycleError, match="m v1 is quarantined: cannot approve") as info:
        registry.approve("m", 1, override_reason="x")
    assert not isinstance(info.value, GateRefused)
