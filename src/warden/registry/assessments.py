"""What the registry accepts as an assessment: a ``warden assess`` JSON report (or its scorecard).

The scorecard is checked against the shipped report schema's ``scorecard`` definition
(:mod:`warden.report.json`); a whole report that names the schema (``$schema``) is validated
against all of it. On top of the schema, the grades must be consistent — each threat listed
once, the overall grade no better than the worst threat grade, ``N/A`` exactly when no threat
was graded — so an edited overall grade cannot pass a gate its threats would fail.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from warden.errors import ConfigError
from warden.registry.policy import GRADE_ORDER

__all__ = ["validate_assessment"]


def _validator(schema: Mapping[str, Any]) -> Any:
    try:
        from jsonschema import Draft202012Validator  # type: ignore[import-untyped]
    except ImportError as exc:  # pragma: no cover - a core dependency
        raise ConfigError("checking an assessment needs the jsonschema package") from exc
    return Draft202012Validator(schema)


def _check(validator: Any, doc: Any, what: str) -> None:
    errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.absolute_path))
    if errors:
        first = errors[0]
        where = "/".join(str(p) for p in first.absolute_path) or "(root)"
        more = f" (+{len(errors) - 1} more problem(s))" if len(errors) > 1 else ""
        raise ConfigError(
            f"{what}: {where}: {first.message}{more}; expected a `warden assess` JSON report"
        )


def validate_assessment(doc: Any) -> tuple[str, dict[str, str]]:
    """Check an assessment document; return its overall grade and grade per threat.

    Raises :class:`ConfigError` saying what is wrong for anything that is not a Warden
    assessment report (or at least ``{"scorecard": {...}}`` with a valid scorecard).
    """
    from warden.report.json import SCHEMA_ID, load_schema

    what = "the assessment report"
    if not isinstance(doc, Mapping):
        raise ConfigError(f"{what} must be a JSON object, found {type(doc).__name__}")
    if "scorecard" not in doc:
        raise ConfigError(
            f"{what} has no scorecard; expected the JSON report of `warden assess` "
            "(its top level holds 'scorecard')"
        )
    schema = load_schema()
    if "$schema" in doc:
        if doc["$schema"] != SCHEMA_ID:
            raise ConfigError(
                f"{what} names schema {doc['$schema']!r}; this Warden reads {SCHEMA_ID}"
            )
        _check(_validator(schema), dict(doc), what)
    else:
        sub = {"$ref": "#/$defs/scorecard", "$defs": schema["$defs"]}
        _check(_validator(sub), doc["scorecard"], f"{what} scorecard")
    card = doc["scorecard"]
    grades: dict[str, str] = {}
    for entry in card["threats"]:
        threat, grade = entry["threat"], entry["grade"]
        if threat in grades:
            raise ConfigError(f"{what}: threat {threat} is graded twice")
        grades[threat] = grade
    overall = card["overall"]
    if not grades:
        if overall != "N/A":
            raise ConfigError(f"{what}: overall grade {overall} but no threat was graded")
        return overall, grades
    worst = max(grades.values(), key=GRADE_ORDER.index)
    if overall not in GRADE_ORDER or GRADE_ORDER.index(overall) < GRADE_ORDER.index(worst):
        raise ConfigError(
            f"{what}: overall grade {overall} is better than its worst threat grade {worst}; "
            "the scorecard is inconsistent (edited?)"
        )
    return overall, grades
