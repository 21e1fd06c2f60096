"""``warden audit``: verify, export, search, archive, checkpoint, public-key.

Thin over :mod:`warden.audit`. ``verify`` exits 0 when the log is intact, 1 when it finds
damage (the first bad record and the kind are printed), 2 on usage errors. The audit key is
``WARDEN_AUDIT_KEY`` (base64) or ``HOME/audit.key``; checkpoints are checked with the public
half of ``HOME/audit-signing.pem`` or the key given with ``--public-key``.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from warden.cli._common import EXIT_FINDINGS, err, out, user_errors
from warden.cli._store import AUDIT_KEY_ENV, home_option, open_store
from warden.errors import ConfigError

if TYPE_CHECKING:
    from warden.audit import AuditKey
    from warden.store import Store

__all__ = ["audit_app"]


audit_app = typer.Typer(
    help="The tamper-evident audit log: verify it, export, search, archive, checkpoint.",
    no_args_is_help=True,
)


def _when(text: str | None, option: str) -> datetime | None:
    """An ISO 8601 date or time; without a zone it is UTC."""
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ConfigError(
            f"{option} {text!r}: expected an ISO 8601 date or time (2026-01-31, "
            "2026-01-31T12:00:00Z)"
        ) from None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def _audit_key(store: Store) -> AuditKey:
    from warden.audit import load_audit_key

    return load_audit_key(store.home, os.environ.get(AUDIT_KEY_ENV) or None, create=False)


_SINCE = typer.Option("--since", help="Only records written at or after this time (ISO 8601).")
_UNTIL = typer.Option("--until", help="Only records written before this time (ISO 8601).")


@audit_app.command("verify")
def verify(
    home: Annotated[Path | None, home_option()] = None,
    from_checkpoint: Annotated[
        Path | None,
        typer.Option(
            "--from-checkpoint",
            help="Also check against a checkpoint file kept outside the database.",
        ),
    ] = None,
    public_key: Annotated[
        Path | None,
        typer.Option(
            "--public-key", help="Check signatures with this public key (default: the home's)."
        ),
    ] = None,
    workers: Annotated[
        int | None, typer.Option("--workers", min=1, help="Processes for the chain pass.")
    ] = None,
    fmt: Annotated[str, typer.Option("--format", "-f", help="table or json.")] = "table",
) -> None:
    """Recompute the chain and the checkpoints; report the first bad record (exit 1)."""
    from warden.audit import load_public_key, load_signing_key, read_checkpoint_file, verify_log

    with user_errors():
        if fmt not in ("table", "json"):
            raise ConfigError(f"--format {fmt!r}: expected table or json")
        with open_store(home, create=False) as store:
            key = _audit_key(store)
            public = (
                load_public_key(public_key)
                if public_key is not None
                else load_signing_key(store.home, create=False).public_key()
            )
            external = (
                read_checkpoint_file(from_checkpoint, public)
                if from_checkpoint is not None
                else None
            )
            report = verify_log(store.db, key, public, external=external, workers=workers)
    if fmt == "json":
        doc: dict[str, Any] = {
            "ok": report.ok,
            "records": report.records,
            "first_seq": report.first_seq,
            "last_seq": report.last_seq,
            "checkpoints": report.checkpoints,
            "anchors": report.anchors,
            "head": report.head,
            "seconds": round(report.seconds, 6),
            "problems": [
                {"kind": str(p.kind), "seq": p.seq, "message": p.message} for p in report.problems
            ],
        }
        out.print_json(json.dumps(doc))
    elif report.ok:
        out.print(
            f"audit log intact: {report.records} record(s)"
            + (f" ({report.first_seq}..{report.last_seq})" if report.records else "")
            + f", {report.checkpoints} checkpoint(s), {report.anchors} archive anchor(s); "
            f"{report.records_per_second:,.0f} records/s",
            highlight=False,
        )
    else:
        first = report.problem
        assert first is not None
        out.print(
            f"audit log DAMAGED: {first.kind} at record {first.seq}: {first.message}",
            highlight=False,
        )
        for other in report.problems[1:]:
            line = f"  also: {other.kind} at record {other.seq}: {other.message}"
            out.print(line, highlight=False)
    if not report.ok:
        raise typer.Exit(EXIT_FINDINGS)


@audit_app.command("export")
def export(
    home: Annotated[Path | None, home_option()] = None,
    since: Annotated[str | None, _SINCE] = None,
    until: Annotated[str | None, _UNTIL] = None,
    fmt: Annotated[str, typer.Option("--format", "-f", help="jsonl (one record per line).")] = (
        "jsonl"
    ),
    out_path: Annotated[
        Path | None, typer.Option("--out", "-o", help="Write here instead of stdout.")
    ] = None,
) -> None:
    """Export records as JSON lines for a SIEM; each line carries its chain fields."""
    import sys

    from warden.audit import export_jsonl

    with user_errors():
        if fmt != "jsonl":
            raise ConfigError(f"--format {fmt!r}: expected jsonl")
        start, end = _when(since, "--since"), _when(until, "--until")
        with open_store(home, create=False) as store:
            if out_path is None:
                n = export_jsonl(store.db, sys.stdout, since=start, until=end)
            else:
                try:
                    with open(out_path, "w", encoding="utf-8") as handle:
                        n = export_jsonl(store.db, handle, since=start, until=end)
                except OSError as exc:
                    raise ConfigError(f"cannot write {out_path}: {exc.strerror}") from exc
        err.print(f"exported {n} record(s)", highlight=False)


@audit_app.command("search")
def search(
    home: Annotated[Path | None, home_option()] = None,
    actor: Annotated[str | None, typer.Option("--actor", help="Exactly this actor.")] = None,
    action: Annotated[
        str | None, typer.Option("--action", help="This action, or a prefix ending in *.")
    ] = None,
    model: Annotated[
        str | None, typer.Option("--model", help="Records about this model or its versions.")
    ] = None,
    since: Annotated[str | None, _SINCE] = None,
    until: Annotated[str | None, _UNTIL] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="At most this many.")] = 1000,
    fmt: Annotated[str, typer.Option("--format", "-f", help="table or json.")] = "table",
) -> None:
    """Find records by actor, action, model and time (oldest first)."""
    from rich.table import Table

    from warden.audit import search as find

    with user_errors():
        if fmt not in ("table", "json"):
            raise ConfigError(f"--format {fmt!r}: expected table or json")
        start, end = _when(since, "--since"), _when(until, "--until")
        with open_store(home, create=False) as store:
            found = find(
                store.db,
                actor=actor,
                action=action,
                model=model,
                since=start,
                until=end,
                limit=limit,
            )
    if fmt == "json":
        out.print_json(json.dumps([r.to_json() for r in found]))
        return
    table = Table("seq", "time (UTC)", "actor", "action", "resource", "outcome", "source")
    for r in found:
        table.add_row(
            str(r.seq),
            r.time.strftime("%Y-%m-%d %H:%M:%S.%f"),
            r.actor,
            r.action,
            r.resource,
            r.outcome,
            r.source,
        )
    out.print(table)
    err.print(f"{len(found)} record(s)", highlight=False)


@audit_app.command("archive")
def archive(
    file: Annotated[Path, typer.Argument(help="The archive file to write (must not exist).")],
    before: Annotated[
        str, typer.Option("--before", help="Archive records written before this time.")
    ],
    home: Annotated[Path | None, home_option()] = None,
) -> None:
    """Move old records to a signed archive FILE; the live chain stays verifiable."""
    from warden.audit import archive_before, load_signing_key

    with user_errors():
        cutoff = _when(before, "--before")
        assert cutoff is not None
        with open_store(home, create=False) as store:
            result = archive_before(
                store.db,
                _audit_key(store),
                load_signing_key(store.home, create=False),
                cutoff,
                file,
            )
    if result.records == 0:
        out.print(f"nothing to archive: no record is older than {cutoff.isoformat()}")
        return
    out.print(
        f"archived records {result.first_seq}..{result.last_seq} ({result.records}) to {file} "
        f"(sha256 {result.sha256})",
        highlight=False,
    )


@audit_app.command("checkpoint")
def checkpoint(
    home: Annotated[Path | None, home_option()] = None,
    external_dir: Annotated[
        Path | None,
        typer.Option("--external-dir", help="Also copy the checkpoint to this directory."),
    ] = None,
) -> None:
    """Sign a checkpoint over the end of the chain now."""
    from warden.audit import AuditLog, load_signing_key

    with user_errors():
        with open_store(home, create=False) as store:
            log = AuditLog(
                store.db,
                _audit_key(store),
                load_signing_key(store.home, create=True),
                external_dir=external_dir,
            )
            made = log.checkpoint()
            log.close()
        if made is None:
            out.print("the audit log is empty: nothing to checkpoint")
            return
        out.print(
            f"checkpoint: {made.count} record(s), head {made.head}, {made.time.isoformat()}",
            highlight=False,
        )


@audit_app.command("public-key")
def public_key(
    home: Annotated[Path | None, home_option()] = None,
    out_path: Annotated[
        Path | None, typer.Option("--out", "-o", help="Write the PEM here instead of stdout.")
    ] = None,
) -> None:
    """Print the checkpoint public key (PEM): verifiers need it, not the private key."""
    from warden.audit import load_signing_key, public_key_id, public_key_pem

    with user_errors():
        with open_store(home, create=True) as store:
            key = load_signing_key(store.home, create=True)
        pem = public_key_pem(key)
        if out_path is None:
            out.print(pem, end="", highlight=False)
        else:
            try:
                out_path.write_text(pem, encoding="ascii")
            except OSError as exc:
                raise ConfigError(f"cannot write {out_path}: {exc.strerror}") from exc
            err.print(f"wrote public key {public_key_id(key)[:16]} to {out_path}")
