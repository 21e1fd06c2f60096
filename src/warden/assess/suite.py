"""``Suite``: which checks to run, with what options, on how many samples.

Built in Python, picked by name (``quick``, ``standard``), or read from a TOML/YAML file::

    name = "nightly"
    seed = 0
    max_samples = 500

    [[checks]]
    name = "evasion.pgd"
    epsilons = [0.02, 0.05, 0.1]
    steps = 40
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from warden.assess.check import Check, create_check
from warden.errors import ConfigError, WardenError

__all__ = ["BUILTIN_SUITES", "CheckSpec", "Suite"]


@dataclass(frozen=True)
class CheckSpec:
    """One check of a suite and its options."""

    name: str
    """Registered check name, e.g. ``evasion.pgd``."""
    options: Mapping[str, Any] = field(default_factory=dict)
    """Options for the check's factory (unknown ones are refused)."""

    def build(self) -> Check:
        """The configured check."""
        return create_check(self.name, self.options)


@dataclass(frozen=True)
class Suite:
    """An ordered list of checks plus run settings."""

    name: str
    """Shown in reports."""
    checks: tuple[CheckSpec, ...]
    """Checks in the order they run."""
    max_samples: int = 500
    """Evaluation samples drawn (seeded) from the data; all of them if fewer."""
    seed: int = 0
    """Seed for sampling and every attack."""
    description: str = ""
    """What the suite is for."""

    def __post_init__(self) -> None:
        if not self.checks:
            raise ConfigError(f"suite {self.name!r} has no checks; an empty suite proves nothing")
        if self.max_samples < 1:
            raise ConfigError(f"suite {self.name!r}: max_samples must be at least 1")

    def build(self) -> list[Check]:
        """Instantiate every check, so option errors surface before any work starts."""
        return [spec.build() for spec in self.checks]

    def to_dict(self) -> dict[str, Any]:
        """JSON form, as recorded in reports."""
        return {
            "name": self.name,
            "max_samples": self.max_samples,
            "seed": self.seed,
            "checks": [{"name": c.name, **dict(c.options)} for c in self.checks],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str = "suite") -> Suite:
        """A suite from parsed TOML/YAML; unknown keys are refused."""
        if not isinstance(data, Mapping):
            raise ConfigError(f"{source}: a suite must be a table/mapping")
        known = {"name", "checks", "max_samples", "seed", "description"}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(
                f"{source}: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
            )
        raw_checks = data.get("checks")
        if not isinstance(raw_checks, Sequence) or isinstance(raw_checks, str):
            raise ConfigError(f"{source}: 'checks' must be a list of tables with a 'name'")
        specs = []
        for i, raw in enumerate(raw_checks):
            if not isinstance(raw, Mapping) or not isinstance(raw.get("name"), str):
                raise ConfigError(f"{source}: checks[{i}] needs a 'name'")
            opts = {k: v for k, v in raw.items() if k != "name"}
            specs.append(CheckSpec(raw["name"], opts))
        max_samples, seed = data.get("max_samples", 500), data.get("seed", 0)
        if not isinstance(max_samples, int) or not isinstance(seed, int):
            raise ConfigError(f"{source}: max_samples and seed must be integers")
        suite = cls(
            name=str(data.get("name", Path(source).stem)),
            checks=tuple(specs),
            max_samples=max_samples,
            seed=seed,
            description=str(data.get("description", "")),
        )
        try:
            suite.build()
        except WardenError as exc:
            raise ConfigError(f"{source}: {exc}") from exc
        return suite

    @classmethod
    def from_file(cls, path: str | Path) -> Suite:
        """Read a suite from a TOML or YAML file (decided by trying TOML first)."""
        p = Path(path)
        try:
            text = p.read_text("utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{p}: cannot read suite file: {exc}") from exc
        try:
            data: Any = tomllib.loads(text)
        except tomllib.TOMLDecodeError as toml_exc:
            try:
                data = yaml.safe_load(text)
            except yaml.YAMLError as exc:
                raise ConfigError(
                    f"{p}: neither valid TOML ({toml_exc}) nor valid YAML ({exc})"
                ) from exc
        return cls.from_dict(data, source=str(p))

    @classmethod
    def named(cls, name: str) -> Suite:
        """A built-in suite (``quick`` or ``standard``) or a suite file path."""
        if name in BUILTIN_SUITES:
            return BUILTIN_SUITES[name]
        if Path(name).is_file():
            return cls.from_file(name)
        raise ConfigError(
            f"unknown suite {name!r}: expected {', '.join(sorted(BUILTIN_SUITES))} or a suite file"
        )


_SWEEP = [0.01, 0.02, 0.05, 0.1, 0.2, 0.3]

BUILTIN_SUITES: dict[str, Suite] = {
    "quick": Suite(
        name="quick",
        description=(
            "CI-fast: baseline accuracy, FGSM, 10-step PGD, the quick AutoEvaluate ensemble "
            "and the gradient-masking sanity checks, on 200 samples."
        ),
        max_samples=200,
        checks=(
            CheckSpec("baseline.accuracy"),
            CheckSpec("evasion.fgsm", {"epsilons": [0.02, 0.05, 0.1, 0.2]}),
            CheckSpec("evasion.pgd", {"epsilons": [0.02, 0.05, 0.1, 0.2], "steps": 10}),
            CheckSpec("evasion.autoattack", {"version": "quick"}),
            CheckSpec("evasion.sanity"),
        ),
    ),
    "standard": Suite(
        name="standard",
        description=(
            "Every ML01 check: sweeps of FGSM, PGD, APGD-CE/APGD-T and Square, HopSkipJump, "
            "minimal perturbations, transfer, AutoEvaluate (standard) and sanity, on 1000 samples."
        ),
        max_samples=1000,
        checks=(
            CheckSpec("baseline.accuracy"),
            CheckSpec("evasion.fgsm", {"epsilons": _SWEEP}),
            CheckSpec("evasion.pgd", {"epsilons": _SWEEP, "steps": 50, "restarts": 2}),
            CheckSpec("evasion.whitebox", {"epsilons": _SWEEP, "steps": 100}),
            CheckSpec("evasion.blackbox", {"epsilons": _SWEEP, "max_queries": 1000}),
            CheckSpec("evasion.decision", {"epsilons": _SWEEP, "max_queries": 2000}),
            CheckSpec("evasion.minimal_perturbation", {"epsilons": _SWEEP}),
            CheckSpec("evasion.transfer", {"epsilons": _SWEEP}),
            CheckSpec("evasion.autoattack", {"version": "standard"}),
            CheckSpec("evasion.sanity"),
        ),
    ),
}
"""Suites available by name."""
