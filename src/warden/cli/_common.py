"""What every command shares: consoles, error translation, progress bars."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from warden.assess.check import ProgressCallback, ProgressEvent
from warden.errors import WardenError

out = Console(soft_wrap=True)
"""Results go to stdout."""
err = Console(stderr=True, soft_wrap=True)
"""Progress and messages go to stderr."""

EXIT_FINDINGS = 1
EXIT_USAGE = 2


class _CliLogHandler(logging.Handler):
    """One line per record to whatever ``sys.stderr`` is at emit time (test runners swap it)."""

    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(logging.Formatter("warden: %(levelname)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stderr.write(self.format(record) + "\n")
        except (OSError, ValueError):
            self.handleError(record)


def setup_logging(verbose: bool) -> None:
    """Send Warden's warnings (and info with ``--verbose``) to stderr, one line each.

    Only the ``warden`` logger is touched, and only by the CLI: the library never configures
    logging.
    """
    log = logging.getLogger("warden")
    for handler in [h for h in log.handlers if isinstance(h, _CliLogHandler)]:
        log.removeHandler(handler)
    log.addHandler(_CliLogHandler())
    log.setLevel(logging.INFO if verbose else logging.WARNING)
    log.propagate = False


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn ``WardenError`` into ``error: <message>`` on stderr and exit code 2."""
    try:
        yield
    except WardenError as exc:
        message = " ".join(str(exc).split()) or type(exc).__name__
        err.print(f"[bold red]error:[/] {message}", markup=True, highlight=False)
        raise typer.Exit(EXIT_USAGE) from None
    except KeyboardInterrupt:
        err.print("interrupted")
        raise typer.Exit(130) from None


@contextmanager
def progress_bars(enabled: bool = True) -> Iterator[ProgressCallback]:
    """A progress callback drawing one rich bar per check on stderr."""
    if not enabled or not err.is_terminal:

        def quiet(event: ProgressEvent) -> None:
            if event.completed == event.total:
                err.print(f"  {event.check}: done ({event.message})", highlight=False)

        yield quiet
        return
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=False,
    ) as bars:
        tasks: dict[str, TaskID] = {}

        def draw(event: ProgressEvent) -> None:
            if event.check not in tasks:
                tasks[event.check] = bars.add_task(event.check, total=event.total)
            bars.update(
                tasks[event.check],
                completed=event.completed,
                total=event.total,
                description=f"{event.check} {event.message}",
            )

        yield draw
