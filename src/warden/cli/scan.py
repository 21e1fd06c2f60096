"""``warden scan``: scan model artifacts by content without loading them."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from warden.assess.finding import Severity
from warden.cli._common import (
    EXIT_FINDINGS,
    err,
    fail_on_option,
    out,
    parse_fail_on,
    user_errors,
)
from warden.errors import ConfigError
from warden.report._io import dumps, write_text

if TYPE_CHECKING:
    from warden.supplychain.scan import ScanReport

_FORMATS = ("table", "json", "sarif")


def scan(
    paths: Annotated[
        list[Path],
        typer.Argument(help="Model files or directories (archives are opened recursively)."),
    ],
    fmt: Annotated[
        str, typer.Option("--format", "-f", help="Output format: table, json or sarif.")
    ] = "table",
    out_file: Annotated[
        Path | None, typer.Option("--out", "-o", help="Write the output to this file.")
    ] = None,
    fail_on: Annotated[str, fail_on_option("a finding")] = "low",
    max_seconds: Annotated[
        float, typer.Option(help="Time budget per file, in seconds (hitting it is a finding).")
    ] = 120.0,
    workers: Annotated[int, typer.Option(help="Files scanned in parallel.")] = 4,
    show_info: Annotated[
        bool, typer.Option("--show-info", help="List informational findings in the table too.")
    ] = False,
) -> None:
    """Scan model files and archives by content; nothing is loaded or executed.

    Formats: pickle, PyTorch, joblib, NumPy, Keras, TF SavedModel, ONNX, safetensors, GGUF,
    and zip/tar/7z/gzip/bzip2/xz archives (recursively).

    Exit code 0: nothing at or above --fail-on (`none`: never 1); 1: findings at or above
    it; 2: usage error.
    """
    from warden.supplychain.scan import scan_paths
    from warden.supplychain.scanner import ScanLimits
    from warden.supplychain.scanreport import scan_to_dict, scan_to_sarif

    with user_errors():
        if fmt not in _FORMATS:
            raise ConfigError(f"--format must be one of {', '.join(_FORMATS)}, got {fmt!r}")
        threshold = parse_fail_on(fail_on)
        limits = ScanLimits(max_seconds=max_seconds)
        report = scan_paths(paths, limits, workers=workers)
        if fmt == "table":
            _print_table(report, show_info)
            if out_file is not None:
                write_text(out_file, dumps(scan_to_dict(report)))
        else:
            document = scan_to_dict(report) if fmt == "json" else scan_to_sarif(report)
            if out_file is None:
                typer.echo(dumps(document), nl=False)
            else:
                write_text(out_file, dumps(document))
        counts = report.counts()
        summary = ", ".join(f"{n} {s}" for s, n in reversed(counts.items()) if n)
        err.print(
            f"scanned {len(report.files)} file(s), {report.bytes_scanned / 1e6:.1f} MB in "
            f"{report.seconds:.2f} s: {summary or 'no findings'}",
            highlight=False,
        )
    if threshold is not None and report.fails(threshold):
        raise typer.Exit(EXIT_FINDINGS)


def _print_table(report: ScanReport, show_info: bool) -> None:
    table = Table(title="Warden scan", title_justify="left")
    table.add_column("severity")
    table.add_column("finding", overflow="fold")
    table.add_column("where", overflow="fold")
    table.add_column("title", overflow="fold")
    shown = 0
    for fs in report.files:
        for f in sorted(fs.findings, key=lambda f: -f.severity):
            if f.severity == Severity.INFO and not show_info:
                continue
            table.add_row(str(f.severity), f.id, str(f.evidence.get("path", fs.path)), f.title)
            shown += 1
    if shown:
        out.print(table)
    else:
        out.print("No findings.", highlight=False)
