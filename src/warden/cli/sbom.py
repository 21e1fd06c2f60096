"""``warden sbom``: write the CycloneDX 1.6 ML-BOM of a model."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Annotated

import typer

from warden.cli._common import err, user_errors
from warden.errors import ReportError


def sbom(
    model: Annotated[
        Path,
        typer.Argument(
            help="Model spec (JSON/TOML), model folder, or ONNX/TorchScript/safetensors file."
        ),
    ],
    assessment: Annotated[
        Path | None,
        typer.Option("--assessment", "-a", help="report.json from `warden assess`."),
    ] = None,
    dataset: Annotated[
        list[str] | None,
        typer.Option("--dataset", "-d", help="Bundled dataset name or dataset path (repeatable)."),
    ] = None,
    name: Annotated[str | None, typer.Option(help="Model name (default: file name).")] = None,
    version: Annotated[str | None, typer.Option("--version", help="Model version.")] = None,
    intended_use: Annotated[
        list[str] | None,
        typer.Option("--intended-use", help="An intended use of the model (repeatable)."),
    ] = None,
    limitations: Annotated[
        list[str] | None,
        typer.Option("--limitations", help="A known technical limitation (repeatable)."),
    ] = None,
    requirements: Annotated[
        Path | None,
        typer.Option(
            "--requirements", "-r", help="List the pins of this requirements file as libraries."
        ),
    ] = None,
    no_libraries: Annotated[
        bool, typer.Option("--no-libraries", help="Leave Python libraries out of the BOM.")
    ] = False,
    out_file: Annotated[
        Path | None, typer.Option("--out", "-o", help="Write the BOM here (default: stdout).")
    ] = None,
    validate: Annotated[
        bool,
        typer.Option(
            "--validate/--no-validate", help="Check the BOM against the CycloneDX 1.6 schema."
        ),
    ] = True,
) -> None:
    """Write a CycloneDX 1.6 ML-BOM: model hashes and card, datasets, libraries, dependencies."""
    from warden.report._io import dumps
    from warden.supplychain.sbom import build_sbom, validate_sbom, write_sbom

    with user_errors():
        bom = build_sbom(
            model,
            assessment=assessment,
            datasets=tuple(dataset or ()),
            name=name,
            version=version,
            intended_use=tuple(intended_use or ()),
            limitations=tuple(limitations or ()),
            requirements=requirements,
            include_libraries=not no_libraries,
        )
        if validate and importlib.util.find_spec("jsonschema") is None:
            err.print("warning: jsonschema is not installed; the BOM was not validated")
        elif validate:
            problems = validate_sbom(bom)
            if problems:
                raise ReportError(
                    f"the BOM does not validate against CycloneDX 1.6 ({len(problems)} "
                    f"problem(s)); first: {problems[0]}. Please report this as a Warden bug"
                )
        count = len(bom["components"])
        if out_file is None:
            typer.echo(dumps(bom), nl=False)
        else:
            write_sbom(bom, out_file)
            err.print(f"wrote CycloneDX 1.6 ML-BOM ({count} components) to {out_file}")
