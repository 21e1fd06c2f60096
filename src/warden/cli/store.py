"""``warden init``, ``warden keys rotate`` and ``warden store verify``: the Warden home.

Thin over :mod:`warden.store`. ``store verify`` exits 0 when every blob authenticates, 1 when
any is altered, swapped, truncated or missing, and 2 on usage errors (no home, wrong or
malformed master key).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from warden.cli._common import EXIT_FINDINGS, err, out, user_errors
from warden.cli._store import audit_event, home_option, open_store
from warden.errors import ConfigError

__all__ = ["init", "rotate", "store_app", "verify_store"]

NEW_KEY_ENV = "WARDEN_NEW_MASTER_KEY"


def init(home: Annotated[Path | None, home_option()] = None) -> None:
    """Create the Warden home (database, blob directory, master key); safe to run twice."""
    with user_errors():
        store = open_store(home, create=True)
        with store:
            rows = [
                ("home", str(store.home.resolve())),
                ("database", store.db.display_url),
                ("schema", store.db.revision() or "(none)"),
                ("blobs", str(store.blobs.root.resolve())),
                ("master key", store.key_source),
                ("master key id", store.keyring.current.key_id),
            ]
        width = max(len(name) for name, _ in rows)
        for name, value in rows:
            out.print(f"{name:<{width}}  {value}", highlight=False)


def rotate(
    home: Annotated[Path | None, home_option()] = None,
    new_key_env: Annotated[
        str | None,
        typer.Option(
            "--new-key-env",
            help=(
                f"Read the new master key (base64 of 32 bytes) from this variable [default: "
                f"{NEW_KEY_ENV} if set]. Required when the current key comes from "
                "WARDEN_MASTER_KEY; otherwise a new key is generated into HOME/master.key."
            ),
            show_default=False,
        ),
    ] = None,
) -> None:
    """Re-wrap every data key under a new master key (blobs are not re-encrypted).

    Safe to interrupt: run it again to finish.
    """
    from warden.store import MasterKey, rotate_master_key

    with user_errors():
        name = new_key_env or NEW_KEY_ENV
        text = os.environ.get(name) or None
        if new_key_env is not None and text is None:
            raise ConfigError(f"--new-key-env {new_key_env}: the variable is not set or empty")
        new_key = None if text is None else MasterKey.from_text(text, source=name)
        with open_store(home, create=False, extra_key=text) as store:
            result = rotate_master_key(store.db, store.home, store.keyring, new_key=new_key)
            audit_event(
                store,
                "keys.rotate",
                resource="master-key",
                old_key_id=result.old_key_id,
                new_key_id=result.new_key_id,
                rewrapped=result.rewrapped,
            )
        out.print(result.message, highlight=False)
        if result.switch_env:
            err.print(
                f"  set WARDEN_MASTER_KEY to the value of {name} before the next command",
                highlight=False,
            )


store_app = typer.Typer(
    name="store",
    help="Inspect the encrypted blob store.",
    no_args_is_help=True,
)


@store_app.command("verify")
def verify_store(home: Annotated[Path | None, home_option()] = None) -> None:
    """Authenticate every stored blob; exit 1 if any is altered, swapped or missing."""
    with user_errors():
        with open_store(home, create=False) as store:
            count = len(store.blobs.ids())
            problems = store.blobs.verify_all()
        for line in problems:
            out.print(line, highlight=False)
        if problems:
            err.print(f"{len(problems)} problem(s) in {count} blob(s)", highlight=False)
            raise typer.Exit(EXIT_FINDINGS)
        out.print(f"ok: {count} blob(s) authenticated", highlight=False)
