"""The audit tables as typed SQLAlchemy Core tables (the writer and readers use Core)."""

from __future__ import annotations

from typing import cast

from sqlalchemy import Table

from warden.store.tables import AuditAnchor, AuditCheckpoint, AuditHead, AuditRecord

__all__ = ["ANCHORS", "CHECKPOINTS", "HEAD", "RECORDS"]

RECORDS = cast(Table, AuditRecord.__table__)
HEAD = cast(Table, AuditHead.__table__)
CHECKPOINTS = cast(Table, AuditCheckpoint.__table__)
ANCHORS = cast(Table, AuditAnchor.__table__)
