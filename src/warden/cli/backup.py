"""``warden backup create | verify | restore``: one-file backups of the Warden home.

Thin over :mod:`warden.registry.backup`. ``backup verify`` exits 0 when the backup is intact,
1 when it is damaged or altered, and 2 on usage errors (no such file, wrong master key).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from warden.cli._common import EXIT_FINDINGS, err, out, user_errors
from warden.cli._store import AUDIT_KEY_ENV, audit_event, home_option, open_store

if TYPE_CHECKING:
    from warden.store.keys import Keyring

__all__ = ["backup_app", "create", "restore", "verify"]

backup_app = typer.Typer(
    name="backup",
    help="Back up, verify and restore the Warden home (database + encrypted blobs).",
    no_args_is_help=True,
)

_FILE = typer.Argument(help="The backup file.", show_default=False)


def _master_key_option(what: str) -> Any:
    return typer.Option(
        "--master-key-file",
        help=f"A file holding the master key (base64) {what}.",
        show_default=False,
    )


def _key_from_file(path: Path) -> Keyring:
    from warden.errors import MasterKeyError
    from warden.store.keys import Keyring, MasterKey

    try:
        text = path.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as exc:
        raise MasterKeyError(f"cannot read master key file {path}: {exc}") from exc
    key = MasterKey.from_text(text, source=f"master key file {path}")
    return Keyring(key, source=str(path))


@backup_app.command("create")
def create(
    file: Annotated[Path, _FILE],
    home: Annotated[Path | None, home_option()] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace FILE if it exists.")] = False,
) -> None:
    """Write the database, the encrypted blobs and their wrapped keys to FILE (mode 0600).

    The master key is never in the backup: keep it separately, restoring needs it.
    """
    from warden.registry.backup import create_backup

    with user_errors():
        with open_store(home, create=False) as store:
            manifest = create_backup(store, file, overwrite=force)
            audit_event(
                store,
                "backup.create",
                resource=f"backup:{file}",
                tables=len(manifest.tables),
                rows=manifest.rows,
                blobs=len(manifest.blobs),
                schema=manifest.schema_revision,
            )
        out.print(
            f"backup written: {file} ({len(manifest.tables)} tables, {manifest.rows} rows, "
            f"{len(manifest.blobs)} blobs, schema {manifest.schema_revision})",
            highlight=False,
        )
        err.print(
            f"  restoring needs master key {manifest.hmac_key_id}; it is not in the backup",
            highlight=False,
        )


@backup_app.command("verify")
def verify(
    file: Annotated[Path, _FILE],
    home: Annotated[Path | None, home_option()] = None,
    no_decrypt: Annotated[
        bool,
        typer.Option(
            "--no-decrypt",
            help="Check hashes and the manifest HMAC but do not decrypt every blob (faster).",
        ),
    ] = False,
    master_key_file: Annotated[
        Path | None, _master_key_option("to check with, instead of the home's key")
    ] = None,
) -> None:
    """Check FILE: structure, every member's SHA-256, the manifest HMAC and every blob.

    With no master key available (WARDEN_MASTER_KEY, HOME/master.key or --master-key-file) only
    structure and hashes are checked. Exit 0 intact, 1 damaged, 2 usage error.
    """
    from warden.config import load_settings
    from warden.registry.backup import verify_backup
    from warden.store.keys import KEY_FILE, NEXT_KEY_FILE, load_keyring

    with user_errors():
        keyring: Keyring | None
        if master_key_file is not None:
            keyring = _key_from_file(master_key_file)
        else:
            settings = load_settings(home=home)
            has_file = any((settings.home / n).exists() for n in (KEY_FILE, NEXT_KEY_FILE))
            keyring = (
                load_keyring(settings.home, settings.master_key, create=False)
                if settings.master_key is not None or has_file
                else None
            )
        check = verify_backup(file, keyring, decrypt=not no_decrypt)
    for line in check.problems:
        out.print(line, highlight=False)
    if not check.hmac_checked:
        err.print(
            "  no master key: the manifest HMAC was not checked and no blob was decrypted "
            "(a deliberate edit that recomputed the hashes would pass)",
            highlight=False,
        )
    elif not check.blobs_authenticated and check.ok:
        err.print("  --no-decrypt: blobs were not decrypted", highlight=False)
    if not check.ok:
        err.print(f"{file}: DAMAGED, {len(check.problems)} problem(s)", highlight=False)
        raise typer.Exit(EXIT_FINDINGS)
    manifest = check.manifest
    assert manifest is not None
    checks = ["hashes"]
    if check.hmac_checked:
        checks.append("manifest HMAC")
    if check.blobs_authenticated:
        checks.append("every blob decrypted")
    out.print(
        f"ok: {file} ({len(manifest.tables)} tables, {manifest.rows} rows, "
        f"{len(manifest.blobs)} blobs; checked: {', '.join(checks)})",
        highlight=False,
    )


@backup_app.command("restore")
def restore(
    file: Annotated[Path, _FILE],
    into: Annotated[
        Path,
        typer.Option(
            "--into",
            help="The new Warden home (must be empty; WARDEN_DATABASE_URL or its warden.toml "
            "may name an empty PostgreSQL database).",
            show_default=False,
        ),
    ],
    master_key_file: Annotated[
        Path | None,
        _master_key_option("the backup was made with; copied into the new home as master.key"),
    ] = None,
) -> None:
    """Restore FILE into an empty home; every blob is authenticated before it counts as done.

    The master key comes from WARDEN_MASTER_KEY, INTO/master.key or --master-key-file.
    """
    from warden.config import load_settings
    from warden.errors import ConfigError
    from warden.registry.backup import restore_backup

    with user_errors():
        settings = load_settings(home=into)
        keyring: Keyring | None = None
        if master_key_file is not None:
            if settings.master_key is not None:
                raise ConfigError(
                    "both WARDEN_MASTER_KEY and --master-key-file are given; give the master "
                    "key one way"
                )
            keyring = _key_from_file(master_key_file)
        result = restore_backup(
            file, settings, keyring=keyring, write_key_file_to_home=master_key_file is not None
        )
        _audit_restore(result.home, file, result.rows, result.blobs)
    out.print(
        f"restored {file} into {result.home} ({result.database}): {len(result.tables)} tables, "
        f"{result.rows} rows, {result.blobs} blobs authenticated, schema "
        f"{result.backup_revision} -> {result.revision}",
        highlight=False,
    )
    if result.key_file_written:
        err.print(f"  master key written to {result.home / 'master.key'} (0600)", highlight=False)


def _audit_restore(home: Path, file: Path, rows: int, blobs: int) -> None:
    """Record the restore in the restored home's audit log, when its audit key is there (the
    key is never in a backup: without it the restored chain cannot be extended)."""
    if not os.environ.get(AUDIT_KEY_ENV) and not (home / "audit.key").exists():
        err.print(
            f"  not audited: copy the old home's audit.key (and audit-signing.pem) into {home} "
            f"or set {AUDIT_KEY_ENV}, then run `warden audit verify`",
            highlight=False,
        )
        return
    with open_store(home, create=False) as store:
        audit_event(store, "backup.restore", resource=f"backup:{file}", rows=rows, blobs=blobs)
