"""``warden registry card | compliance | sbom``: governance documents from registry facts.

Thin over :mod:`warden.registry.modelcard` and :mod:`warden.registry.compliance`. Documents
go to ``--out`` (format from its suffix unless ``--format`` says) or to stdout.
``compliance --fail-on-gaps`` exits 1 when any gap is listed (for CI gates).
"""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from warden.cli._common import EXIT_FINDINGS, err, out, user_errors
from warden.cli.registry import Actor, Home, ModelArg, PolicyOpt, _policy, _registry

__all__ = ["card", "compliance", "mlbom"]


class DocFormat(StrEnum):
    """Document formats."""

    markdown = "markdown"
    html = "html"
    json = "json"


RefOpt = Annotated[
    str,
    typer.Argument(help="Version: number, vN, latest, or an alias.", show_default=True),
]
OutOpt = Annotated[
    Path | None,
    typer.Option("--out", "-o", help="File to write (.md, .html or .json); default stdout."),
]
FormatOpt = Annotated[
    DocFormat | None,
    typer.Option("--format", "-f", help="Format [default: from --out's suffix, else markdown]."),
]


def _pick(fmt: DocFormat | None, path: Path | None) -> DocFormat:
    if fmt is not None:
        return fmt
    if path is not None:
        suffix = path.suffix.lower()
        if suffix in (".html", ".htm"):
            return DocFormat.html
        if suffix == ".json":
            return DocFormat.json
    return DocFormat.markdown


def _emit(text: str, path: Path | None) -> None:
    from warden.report._io import write_text

    if path is None:
        out.file.write(text)
        return
    write_text(path, text)
    err.print(f"wrote {path}", highlight=False)


def card(
    model: ModelArg,
    ref: RefOpt = "latest",
    out_path: OutOpt = None,
    fmt: FormatOpt = None,
    intended_use: Annotated[
        str | None, typer.Option(help="Intended use for this card (default: the model's).")
    ] = None,
    limitations: Annotated[
        str | None, typer.Option(help="Limitations for this card (default: the model's).")
    ] = None,
    home: Home = None,
    actor: Actor = None,
) -> None:
    """Write a version's model card (Markdown, HTML or JSON) from registry facts."""
    from warden.registry.modelcard import build_model_card

    with user_errors(), _registry(home, actor) as registry:
        made = build_model_card(
            registry, model, ref, intended_use=intended_use, limitations=limitations
        )
        kind = _pick(fmt, out_path)
        if kind is DocFormat.json:
            text = json.dumps(made.to_dict(), indent=2, ensure_ascii=False) + "\n"
        elif kind is DocFormat.html:
            text = made.to_html()
        else:
            text = made.to_markdown()
        _emit(text, out_path)


def compliance(
    model: ModelArg,
    ref: RefOpt = "latest",
    out_path: OutOpt = None,
    fmt: FormatOpt = None,
    policy: PolicyOpt = None,
    fail_on_gaps: Annotated[
        bool, typer.Option("--fail-on-gaps", help="Exit 1 when any gap is listed.")
    ] = False,
    home: Home = None,
    actor: Actor = None,
) -> None:
    """Write the compliance report: evidence per OWASP ML Top 10 risk and NIST AI RMF function."""
    from warden.registry.compliance import compliance_report

    with user_errors(), _registry(home, actor) as registry:
        report = compliance_report(registry, model, ref, policy=_policy(policy))
        kind = _pick(fmt, out_path)
        if kind is DocFormat.json:
            text = json.dumps(report.to_dict(), indent=2, ensure_ascii=False) + "\n"
        elif kind is DocFormat.html:
            text = report.to_html()
        else:
            text = report.to_markdown()
        _emit(text, out_path)
    gaps = report.gap_count
    err.print(
        f"{sum(1 for i in report.items if i.status == 'evidence')} item(s) with evidence, "
        f"{gaps} gap(s)",
        highlight=False,
    )
    if fail_on_gaps and gaps:
        raise typer.Exit(EXIT_FINDINGS)


def mlbom(
    model: ModelArg,
    ref: RefOpt = "latest",
    out_path: Annotated[
        Path | None, typer.Option("--out", "-o", help="File to write; default stdout.")
    ] = None,
    libraries: Annotated[
        bool,
        typer.Option("--libraries/--no-libraries", help="List the installed Python dependencies."),
    ] = True,
    home: Home = None,
    actor: Actor = None,
) -> None:
    """Write the version's CycloneDX 1.6 ML-BOM with the registry's model card."""
    from warden.registry.modelcard import model_card_sbom
    from warden.supplychain.sbom import validate_sbom

    with user_errors(), _registry(home, actor) as registry:
        bom = model_card_sbom(registry, model, ref, include_libraries=libraries)
        problems = validate_sbom(bom)
        if problems:  # pragma: no cover - build_sbom's output is validated in its own tests
            raise typer.BadParameter("; ".join(problems[:3]))
        _emit(json.dumps(bom, indent=2, ensure_ascii=False) + "\n", out_path)
