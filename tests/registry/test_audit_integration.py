"""Every registry change, refusal and override is a durable record in the audit log; the CLI
audits registry, backup and key-rotation commands."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from warden.audit import AuditLog, load_audit_key, load_signing_key, search, verify_log
from warden.errors import GateRefused, LifecycleError, StoreError
from warden.registry import Registry
from warden.store import Store


@pytest.fixture
def audited(store: Store, registry: Registry) -> Iterator[tuple[Registry, AuditLog]]:
    log = AuditLog(
        store.db,
        load_audit_key(store.home, None, create=True),
        load_signing_key(store.home, create=True),
    )
    registry.audit = log
    yield registry, log
    log.close()


def test_changes_refusals_and_overrides_are_recorded(
    audited: tuple[Registry, AuditLog], model_file: Path, keys: dict[str, Path], store: Store
) -> None:
    reg, log = audited
    v = reg.register_version("fraud", model_file, create_model=True)
    with pytest.raises(GateRefused):
        reg.approve("fraud", 1)
    with pytest.raises(LifecycleError):
        reg.deploy("fraud", 1)
    reg.approve("fraud", 1, override_reason="hotfix INC-9")
    reg.deploy("fraud", 1, reason="go")
    reg.sign_version("fraud", 1, keys["trusted"])
    log.flush()
    records = search(store.db, model="fraud")
    seen = [(r.action, r.outcome) for r in records]
    assert seen == [
        ("registry.version.register", "ok"),  # creating the model on the way is part of it
        ("registry.approve", "refused"),
        ("registry.deploy", "refused"),
        ("registry.approve", "ok"),
        ("registry.deploy", "ok"),
        ("registry.signature.sign", "ok"),
    ]
    assert {r.actor for r in records} == {"alice"}
    register = records[0]
    assert register.resource == "model:fraud@v1"
    assert register.input_digest == v.artifact_digest
    refused = records[1]
    assert any("scan" in f for f in refused.details["failures"])
    override = records[3]
    assert override.details["override"] is True
    assert override.details["reason"] == "hotfix INC-9"
    assert override.details["failures"]
    log.close()
    report_ = verify_log(
        store.db,
        load_audit_key(store.home, None, create=False),
        load_signing_key(store.home, create=False).public_key(),
    )
    assert report_.ok


def test_a_failing_audit_sink_fails_the_call_loudly(registry: Registry, model_file: Path) -> None:
    class Broken:
        def record(self, event: object) -> None:
            raise OSError("disk full")

    registry.audit = Broken()
    with pytest.raises(StoreError, match="change was made but its audit record could not"):
        registry.create_model("m")
    assert registry.get_model("m").name == "m"  # the change itself is there, and said so
