"""What every command shares: consoles, error translation, progress bars."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

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
from warden.assess.finding import Severity
from warden.data.dataset import Dataset
from warden.errors import WardenError
from warden.models.base import Model

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


def fail_on_option(subject: str) -> Any:
    """The ``--fail-on`` option of a command that exits 1 when ``subject`` is at or above a
    severity (read its value with :func:`parse_fail_on`)."""
    return typer.Option(
        help=f"Exit 1 if {subject} is at or above this severity (info..critical, or none)."
    )


def parse_fail_on(text: str) -> Severity | None:
    """``none`` or a severity name."""
    return None if text.strip().lower() == "none" else Severity.parse(text)


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


def load_subject(
    model: str, data: str, *, label_column: str, unsafe_allow_pickle: bool
) -> tuple[Model, Dataset]:
    """The dataset and the model the CLI was pointed at, checked to fit together.

    The dataset fills in what the model file does not record (input shape, classes, bounds).
    """
    from pathlib import Path

    from warden.assess.runner import check_compatible
    from warden.data.loaders import load_dataset
    from warden.errors import ConfigError
    from warden.models.loading import load_model

    dataset = load_dataset(data, label_column=label_column)
    if not Path(model).exists():
        raise ConfigError(f"model {model!r} not found")
    loaded = load_model(
        model,
        unsafe_allow_pickle=unsafe_allow_pickle,
        input_shape=dataset.input_shape,
        n_classes=dataset.n_classes,
        bounds=dataset.bounds,
    )
    check_compatible(loaded, dataset)
    return loaded, dataset
