"""``warden deps``: import an OSV database, audit Python dependencies against it (offline)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from warden.cli._common import EXIT_FINDINGS, err, fail_on_option, out, parse_fail_on, user_errors

deps_app = typer.Typer(
    name="deps",
    help="Audit Python dependencies against a local OSV vulnerability database.",
    no_args_is_help=True,
)


class AuditFormat(StrEnum):
    """What ``deps audit`` prints on stdout."""

    table = "table"
    json = "json"
    sarif = "sarif"


def default_db() -> Path:
    """``$WARDEN_HOME/osv``, or ``./.warden/osv`` when WARDEN_HOME is not set."""
    return Path(os.environ.get("WARDEN_HOME") or ".warden") / "osv"


_DB_HELP = "OSV database folder (default: $WARDEN_HOME/osv, else ./.warden/osv)."


@deps_app.command("update-db")
def update_db(
    source: Annotated[
        Path,
        typer.Option(
            "--from", help="OSV PyPI export: a zip of OSV JSON advisories (PyPI/all.zip)."
        ),
    ],
    db: Annotated[Path | None, typer.Option("--db", help=_DB_HELP)] = None,
) -> None:
    """Import an OSV PyPI export into the local database (atomic; nothing is downloaded)."""
    from warden.supplychain.osv_db import import_osv_zip

    folder = db or default_db()
    with user_errors():
        report = import_osv_zip(source, folder)
    err.print(
        f"imported {report.advisories} advisories for {report.packages} packages into "
        f"{report.database}",
        highlight=False,
    )
    skipped = (
        f"skipped: {report.malformed} malformed, {report.withdrawn} withdrawn, "
        f"{report.other_ecosystems} for other ecosystems, {report.duplicates} duplicate ids"
    )
    err.print(skipped, highlight=False)
    for problem in report.problems:
        err.print(f"  malformed: {problem}", highlight=False, markup=False)


def _table(title: str, rows: Sequence[tuple[str, ...]]) -> Table:
    table = Table(title=title)
    for column in ("severity", "package", "version", "advisory", "aliases", "fixed in", "summary"):
        table.add_column(column, no_wrap=column not in ("aliases", "summary"))
    colours = {"info": "green", "low": "cyan", "medium": "yellow", "high": "red"}
    for row in rows:
        sev = row[0]
        colour = colours.get(sev.rstrip("*"), "bold red")
        table.add_row(f"[{colour}]{escape(sev)}[/]", *(escape(c) for c in row[1:]))
    return table


@deps_app.command("audit")
def audit(
    requirements: Annotated[
        Path | None,
        typer.Option(
            "--requirements",
            "-r",
            help="Audit the pins of this requirements file instead of the installed packages.",
        ),
    ] = None,
    fmt: Annotated[
        AuditFormat, typer.Option("--format", "-f", help="What to print on stdout.")
    ] = AuditFormat.table,
    fail_on: Annotated[str, fail_on_option("a vulnerability")] = "low",
    db: Annotated[Path | None, typer.Option("--db", help=_DB_HELP)] = None,
    strict: Annotated[
        bool,
        typer.Option("--strict", help="Also exit 1 when some requirement could not be audited."),
    ] = False,
    out_file: Annotated[
        Path | None, typer.Option("--out", "-o", help="Also write the JSON or SARIF here.")
    ] = None,
) -> None:
    """Audit installed (or pinned) Python packages against the local OSV database."""
    from warden.report._io import dumps, write_text
    from warden.supplychain.deps import audit as run_audit
    from warden.supplychain.deps import (
        audit_to_dict,
        audit_to_sarif,
        installed_packages,
        read_requirements,
    )
    from warden.supplychain.osv_db import OsvDatabase

    with user_errors():
        threshold = parse_fail_on(fail_on)
        with OsvDatabase.open(db or default_db()) as database:
            packages = (
                read_requirements(requirements)
                if requirements is not None
                else installed_packages()
            )
            report = run_audit(packages, database)
        if fmt is AuditFormat.table:
            rows = [
                (
                    str(v.severity) + ("*" if v.severity_label == "unknown" else ""),
                    v.package.name,
                    v.package.version,
                    v.id,
                    ", ".join(v.aliases),
                    v.fixed_in or "no fix",
                    v.summary,
                )
                for v in report.vulnerabilities
            ]
            title = (
                f"Dependency audit of {report.source}: {len(rows)} known vulnerabilit"
                f"{'y' if len(rows) == 1 else 'ies'} in {report.packages} packages"
            )
            table = _table(title, rows)
            if any(v.severity_label == "unknown" for v in report.vulnerabilities):
                table.caption = "* the advisory gives no severity; counted as medium"
            out.print(table)
            text = None
        else:
            doc = audit_to_sarif(report) if fmt is AuditFormat.sarif else audit_to_dict(report)
            text = dumps(doc)
            typer.echo(text, nl=False)
        if out_file is not None:
            write_text(out_file, text if text is not None else dumps(audit_to_dict(report)))
            err.print(f"  audit written to {out_file}", highlight=False)
    for w in report.warnings:
        where = f"{w.location}: " if w.location else ""
        err.print(f"warning: {where}{w.message}", highlight=False, markup=False)
    db_info = report.database
    err.print(
        f"OSV database: {db_info.get('advisories', '?')} advisories from "
        f"{db_info.get('source', '?')}, imported {db_info.get('imported_at', '?')}",
        highlight=False,
    )
    if threshold is not None and report.at_or_above(threshold):
        err.print(
            f"{len(report.at_or_above(threshold))} vulnerabilities at or above {threshold}: "
            f"exit {EXIT_FINDINGS}"
        )
        raise typer.Exit(EXIT_FINDINGS)
    if strict and report.warnings:
        err.print(f"{len(report.warnings)} requirement(s) not audited (--strict): exit 1")
        raise typer.Exit(EXIT_FINDINGS)
