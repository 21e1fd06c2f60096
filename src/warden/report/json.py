"""JSON report: the whole :class:`~warden.assess.result.Assessment` under a versioned schema.

The schema ships with the package (``schema/assessment-1.0.json``, JSON Schema draft 2020-12).
A document names it in ``$schema`` and carries ``schema_version``; a change that breaks readers
bumps the major version and ships a new schema file next to the old one.
"""

from __future__ import annotations

import json
import os
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

from warden.assess.result import Assessment
from warden.errors import ReportError
from warden.report._io import dumps, plain, write_text

__all__ = [
    "SCHEMA_ID",
    "SCHEMA_VERSION",
    "assessment_to_dict",
    "load_schema",
    "schema_path",
    "write_json",
]

SCHEMA_VERSION = "1.0"
"""Version of the report format this module writes."""

SCHEMA_ID = "urn:warden:schema:assessment:1.0"
"""The ``$id`` of the shipped schema; every document names it in ``$schema``."""

_SCHEMA_FILE = f"assessment-{SCHEMA_VERSION}.json"


def assessment_to_dict(a: Assessment) -> dict[str, Any]:
    """The JSON document for ``a``: metadata, model, dataset, settings, scorecard, findings.

    Raises :class:`~warden.errors.ReportError` if the model, dataset or settings descriptions
    hold something that is not JSON data (an object, a NaN).
    """
    return {
        "$schema": SCHEMA_ID,
        "schema_version": SCHEMA_VERSION,
        "suite": a.suite,
        "warden_version": a.warden_version,
        "started_at": a.started_at,
        "finished_at": a.finished_at,
        "duration_s": plain(a.duration_s, "duration_s"),
        "model": plain(a.model, "model"),
        "dataset": plain(a.dataset, "dataset"),
        "settings": plain(a.settings, "settings"),
        "scorecard": a.scorecard.to_dict(),
        "findings": [f.to_dict() for f in a.findings],
    }


def write_json(a: Assessment, path: str | os.PathLike[str]) -> Path:
    """Write the JSON report of ``a`` to ``path`` (UTF-8, indented); return the path."""
    return write_text(path, dumps(assessment_to_dict(a)))


def schema_path() -> Traversable:
    """The shipped JSON Schema file, as an :mod:`importlib.resources` traversable.

    Use ``importlib.resources.as_file(schema_path())`` when a real file system path is needed.
    """
    return resources.files("warden.report").joinpath("schema", _SCHEMA_FILE)


def load_schema() -> dict[str, Any]:
    """The shipped JSON Schema (draft 2020-12) for report documents, parsed."""
    try:
        schema: dict[str, Any] = json.loads(schema_path().read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ReportError(
            f"the report schema {_SCHEMA_FILE} is missing or unreadable ({exc}); reinstall warden"
        ) from exc
    return schema
