"""What the commands that use the Warden home share: the ``--home`` option and opening it."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from warden.errors import StoreError

if TYPE_CHECKING:
    from warden.store import Store

__all__ = ["home_option", "open_store"]


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
