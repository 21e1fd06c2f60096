"""Tamper-evident, durable audit log: HMAC hash chain, signed checkpoints, verify, export.

::

    from warden.audit import AuditEvent, AuditLog, load_audit_key, load_signing_key

    with AuditLog(store.db, load_audit_key(home, None, create=True),
                  load_signing_key(home, create=True)) as audit:
        receipt = audit.append(AuditEvent("registry.approve", actor="alice",
                                          resource=model_resource("iris", 3)))

Packages that only emit events accept an :class:`AuditSink` (``record(event)``) and default
to :class:`NullSink`; they need not import the writer.
"""

from warden.audit.archive import ArchiveResult, archive_before, verify_archive
from warden.audit.checkpoints import Checkpoint, read_checkpoint_file, write_checkpoint_file
from warden.audit.events import (
    AuditEvent,
    AuditReceipt,
    AuditRecord,
    AuditSink,
    NullSink,
    model_resource,
)
from warden.audit.keys import (
    AuditKey,
    load_audit_key,
    load_public_key,
    load_signing_key,
    public_key_id,
    public_key_pem,
)
from warden.audit.query import check_export_line, export_jsonl, iter_records, search
from warden.audit.verify import Damage, Problem, VerifyReport, verify_log
from warden.audit.writer import AuditLog

__all__ = [
    "ArchiveResult",
    "AuditEvent",
    "AuditKey",
    "AuditLog",
    "AuditReceipt",
    "AuditRecord",
    "AuditSink",
    "Checkpoint",
    "Damage",
    "NullSink",
    "Problem",
    "VerifyReport",
    "archive_before",
    "check_export_line",
    "export_jsonl",
    "iter_records",
    "load_audit_key",
    "load_public_key",
    "load_signing_key",
    "model_resource",
    "public_key_id",
    "public_key_pem",
    "read_checkpoint_file",
    "search",
    "verify_archive",
    "verify_log",
    "write_checkpoint_file",
]
