"""Reports of an :class:`~warden.assess.result.Assessment`: JSON, SARIF 2.1.0 and HTML.

* JSON (:mod:`warden.report.json`): everything in the assessment, under a versioned JSON
  Schema that ships with the package (:func:`load_schema`).
* SARIF (:mod:`warden.report.sarif`): for code-scanning dashboards; one rule per finding id,
  tagged with OWASP ML Top 10 and MITRE ATLAS ids and a ``security-severity``.
* HTML (:mod:`warden.report.html`): one self-contained page with the grades, plots (inline SVG)
  and findings; it loads nothing from the network.

:func:`write_reports` writes any of them into a folder as ``report.<format>``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path

from warden.assess.result import Assessment
from warden.errors import ReportError
from warden.report.html import render_html, write_html
from warden.report.json import (
    SCHEMA_ID,
    SCHEMA_VERSION,
    assessment_to_dict,
    load_schema,
    schema_path,
    write_json,
)
from warden.report.sarif import assessment_to_sarif, write_sarif

__all__ = [
    "FORMATS",
    "SCHEMA_ID",
    "SCHEMA_VERSION",
    "assessment_to_dict",
    "assessment_to_sarif",
    "load_schema",
    "render_html",
    "schema_path",
    "write_html",
    "write_json",
    "write_reports",
    "write_sarif",
]

_WRITERS: dict[str, Callable[[Assessment, Path], Path]] = {
    "html": write_html,
    "json": write_json,
    "sarif": write_sarif,
}

FORMATS: tuple[str, ...] = tuple(_WRITERS)
"""Report formats :func:`write_reports` knows; each is written to ``report.<format>``."""


def write_reports(
    a: Assessment,
    out_dir: str | os.PathLike[str],
    formats: Iterable[str] = ("html", "json", "sarif"),
) -> dict[str, Path]:
    """Write ``a`` in each of ``formats`` into ``out_dir`` (created if missing).

    Returns the path written for each format, e.g. ``{"html": out_dir / "report.html"}``.
    Every format is checked before anything is written: an unknown one, or none at all, is a
    :class:`~warden.errors.ReportError` naming the valid ones. A folder or file that cannot be
    written is a :class:`~warden.errors.ReportError` too.
    """
    if isinstance(formats, str):  # "html" means ("html",), not ("h", "t", "m", "l")
        formats = (formats,)
    wanted = list(dict.fromkeys(str(f).strip().lower() for f in formats))
    unknown = [f for f in wanted if f not in _WRITERS]
    if unknown or not wanted:
        found = ", ".join(repr(f) for f in unknown) if unknown else "no format"
        raise ReportError(
            f"unknown report format {found}; expected one or more of {', '.join(FORMATS)}"
        )
    folder = Path(out_dir)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ReportError(
            f"cannot create report folder {folder}: {exc.strerror or exc}; "
            "choose a writable location"
        ) from exc
    return {fmt: _WRITERS[fmt](a, folder / f"report.{fmt}") for fmt in wanted}
