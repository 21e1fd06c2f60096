"""Helpers shared by the CLI tests."""

from __future__ import annotations

from typing import Any

import typer

from warden.cli._common import setup_logging

__all__ = ["logging_app", "one_line_error"]


def logging_app() -> typer.Typer:
    """An empty app whose root callback sets up logging as ``warden.cli.app``'s does; add the
    commands under test to it. Use the ``restore_warden_logger`` fixture with it."""
    app = typer.Typer()

    @app.callback()
    def _root() -> None:
        setup_logging(False)

    return app


def one_line_error(result: Any, needle: str) -> None:
    """The command failed with exit code 2 and one ``error: …`` line naming ``needle``."""
    assert result.exit_code == 2, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert needle in lines[0]
    assert "Traceback" not in result.output
