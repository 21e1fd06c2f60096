"""The ``warden`` command. Thin over the library; the only code that prints."""

from __future__ import annotations

from typing import Annotated

import typer

from warden.cli._common import out, setup_logging
from warden.cli.access import access_app
from warden.cli.assess import assess
from warden.cli.attack import attack
from warden.cli.audit import audit_app
from warden.cli.backup import backup_app
from warden.cli.demo import demo
from warden.cli.deps import deps_app
from warden.cli.governance import card, compliance, mlbom
from warden.cli.registry import registry_app
from warden.cli.sbom import sbom
from warden.cli.scan import scan
from warden.cli.serve import certs_app, serve
from warden.cli.sign import keys_app, sign, verify
from warden.cli.store import init, rotate, store_app

app = typer.Typer(
    name="warden",
    help="Warden: scan, red-team and harden machine-learning models.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def _root(
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Log progress details to stderr.")
    ] = False,
) -> None:
    setup_logging(verbose)


@app.command()
def version() -> None:
    """Print Warden's version."""
    from warden import __version__

    out.print(f"warden {__version__}", highlight=False)


app.command()(init)
app.command()(assess)
app.command()(attack)
app.command()(demo)
app.command()(scan)
app.command()(sbom)
app.command()(sign)
app.command()(verify)
app.command()(serve)
keys_app.command("rotate")(rotate)
app.add_typer(keys_app, name="keys")
app.add_typer(store_app, name="store")
registry_app.command("card")(card)
registry_app.command("compliance")(compliance)
registry_app.command("sbom")(mlbom)
app.add_typer(registry_app, name="registry")
app.add_typer(backup_app, name="backup")
app.add_typer(audit_app, name="audit")
app.add_typer(access_app, name="access")
app.add_typer(certs_app, name="certs")
app.add_typer(deps_app, name="deps")


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
