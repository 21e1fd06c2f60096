"""``warden assess``: run a suite against a model and write the reports."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from warden.assess import Assessment, Suite, run
from warden.cli._common import (
    EXIT_FINDINGS,
    err,
    fail_on_option,
    load_subject,
    out,
    parse_fail_on,
    progress_bars,
    user_errors,
)


class OutputFormat(StrEnum):
    """What ``assess`` prints on stdout."""

    table = "table"
    json = "json"
    sarif = "sarif"


def summary_table(a: Assessment) -> Table:
    """Per-threat grades and the findings, worst first, as a rich table."""
    table = Table(title=f"Warden assessment: suite {a.suite}, overall grade {a.scorecard.overall}")
    table.add_column("severity", no_wrap=True)
    table.add_column("finding", no_wrap=True)
    table.add_column("OWASP", no_wrap=True)
    table.add_column("title")
    colours = {
        "info": "green",
        "low": "cyan",
        "medium": "yellow",
        "high": "red",
        "critical": "bold red",
    }
    for f in sorted(a.findings, key=lambda f: -f.severity):
        sev = str(f.severity)
        table.add_row(f"[{colours[sev]}]{sev}[/]", f.id, " ".join(f.owasp) or "-", f.title)
    table.caption = (
        "  ".join(f"{t.threat} {t.name}: grade {t.grade}" for t in a.scorecard.threats)
        or "no threat was assessed (grade N/A)"
    )
    return table


def print_result(a: Assessment, fmt: OutputFormat) -> None:
    """Results to stdout in the chosen format."""
    from warden.report import assessment_to_dict, assessment_to_sarif

    if fmt is OutputFormat.json:
        out.print_json(json.dumps(assessment_to_dict(a)))
    elif fmt is OutputFormat.sarif:
        out.print_json(json.dumps(assessment_to_sarif(a)))
    else:
        out.print(summary_table(a))


def write_and_tell(a: Assessment, out_dir: Path) -> dict[str, Path]:
    """Write report.html/json/sarif under ``out_dir`` and say where on stderr."""
    from warden.report import write_reports

    paths = write_reports(a, out_dir)
    for kind, path in paths.items():
        err.print(f"  {kind:5s} report: {path}", highlight=False)
    return paths


def assess(
    model: Annotated[
        str, typer.Option("--model", "-m", help="Model spec (JSON/TOML), TorchScript or ONNX file.")
    ],
    data: Annotated[
        str,
        typer.Option("--data", "-d", help="Bundled dataset name or a .npz, .csv or image folder."),
    ],
    suite: Annotated[
        str, typer.Option(help="quick, standard, or a suite TOML/YAML file.")
    ] = "quick",
    out_dir: Annotated[
        Path, typer.Option("--out", "-o", help="Folder for report.html/json/sarif.")
    ] = Path("warden-report"),
    fmt: Annotated[
        OutputFormat, typer.Option("--format", "-f", help="What to print on stdout.")
    ] = OutputFormat.table,
    fail_on: Annotated[str, fail_on_option("a finding")] = "high",
    label_column: Annotated[str, typer.Option(help="Label column of a CSV dataset.")] = "label",
    unsafe_allow_pickle: Annotated[
        bool,
        typer.Option(
            "--unsafe-allow-pickle", help="Load pickle-based model files (runs their code!)."
        ),
    ] = False,
) -> None:
    """Assess a model: run the suite's checks and write HTML, JSON and SARIF reports."""
    with user_errors():
        threshold = parse_fail_on(fail_on)
        chosen = Suite.named(suite)
        loaded, dataset = load_subject(
            model, data, label_column=label_column, unsafe_allow_pickle=unsafe_allow_pickle
        )
        err.print(f"assessing {model} on {dataset.name} with suite {chosen.name}", highlight=False)
        with progress_bars() as progress:
            result = run(chosen, loaded, dataset, progress=progress, model_info={"source": model})
        write_and_tell(result, out_dir)
        print_result(result, fmt)
    if threshold is None:
        return
    if result.at_or_above(threshold):
        err.print(f"findings at or above {threshold}: exit {EXIT_FINDINGS}")
        raise typer.Exit(EXIT_FINDINGS)
    if not result.scorecard.threats:
        err.print(
            f"no threat could be assessed (grade N/A), which is not a pass: exit {EXIT_FINDINGS}"
        )
        raise typer.Exit(EXIT_FINDINGS)
