"""What the commands that use the Warden home share: the ``--home`` option and opening it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from warden.errors import StoreError

if TYPE_CHECKING:
    from warden.audit import AuditEvent, AuditLog
    from warden.store import Store

__all__ = ["AUDIT_KEY_ENV", "audit_event", "home_option", "open_audit", "open_store"]


def home_option() -> Any:
    """The ``--home`` option (default: ``WARDEN_HOME``, else ``./.warden``); declare it as
    ``home: Annotated[Path | None, home_option()] = None`` and pass it to :func:`open_store`."""
    return typer.Option(
        "--home",
        help="Warden home directory (default: $WARDEN_HOME, else ./.warden).",
        show_default=False,
    )


def open_store(home: Path | None, *, create: bool = True, extra_key: str | None = None) -> Store:
    """The store in ``home`` (or as ``WARDEN_HOME`` / ``WARDEN_DATABASE_URL`` /
    ``WARDEN_MASTER_KEY`` say); every failure is a ``WardenError`` for ``user_errors()``.

    ``extra_key`` (base64) is accepted for unwrapping besides an environment master key (the
    new key of an interrupted ``warden keys rotate``).
    """
    from dataclasses import replace

    from warden.config import load_settings
    from warden.store import Store

    settings = load_settings(home=home)
    if extra_key is not None and settings.master_key is not None:
        settings = replace(settings, master_key=f"{settings.master_key},{extra_key}")
    try:
        return Store.open(settings, create=create)
    except OSError as exc:
        raise StoreError(f"cannot open the Warden home {settings.home}: {exc}") from exc


AUDIT_KEY_ENV = "WARDEN_AUDIT_KEY"
"""The environment variable holding the audit HMAC key (base64), instead of HOME/audit.key."""


class _LazyAudit:
    """An audit sink that opens the store's log (and creates its keys) only when first used,
    so commands that only read leave the home untouched."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._log: AuditLog | None = None

    def _open(self) -> AuditLog:
        if self._log is None:
            import os

            from warden.audit import AuditLog, load_audit_key, load_signing_key

            home = self._store.home
            key = load_audit_key(home, os.environ.get(AUDIT_KEY_ENV) or None, create=True)
            self._log = AuditLog(self._store.db, key, load_signing_key(home, create=True))
        return self._log

    def record(self, event: AuditEvent) -> None:
        self._open().record(event)

    def close(self) -> None:
        if self._log is not None:
            self._log.close()


@contextmanager
def open_audit(store: Store) -> Iterator[_LazyAudit]:
    """The store's audit log as a sink (keys from ``WARDEN_AUDIT_KEY`` or the home, created on
    first use); flushed and checkpointed on exit."""
    sink = _LazyAudit(store)
    try:
        yield sink
    finally:
        sink.close()


def audit_event(store: Store, action: str, *, resource: str = "", **details: Any) -> None:
    """Record one CLI-level event (backup, key rotation …) durably in the store's audit log."""
    import getpass

    from warden.audit import AuditEvent

    try:
        actor = getpass.getuser()
    except (OSError, KeyError):
        actor = "cli"
    with open_audit(store) as sink:
        sink.record(AuditEvent(action, actor, resource=resource, outcome="ok", details=details))
