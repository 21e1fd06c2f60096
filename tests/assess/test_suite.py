from __future__ import annotations

from pathlib import Path

import pytest

from warden.assess import BUILTIN_SUITES, Suite, check_names
from warden.errors import ConfigError


def test_builtin_suites_build() -> None:
    for suite in BUILTIN_SUITES.values():
        assert len(suite.build()) == len(suite.checks)
    assert {"baseline.accuracy", "evasion.fgsm", "evasion.pgd"} <= set(check_names())


def test_suite_from_toml_and_yaml_agree(tmp_path: Path) -> None:
    toml = tmp_path / "s.toml"
    toml.write_text(
        'name = "mine"\nmax_samples = 50\nseed = 3\n\n[[checks]]\nname = "evasion.pgd"\n'
        "epsilons = [0.05, 0.1]\nsteps = 5\n"
    )
    yml = tmp_path / "s.yaml"
    yml.write_text(
        "name: mine\nmax_samples: 50\nseed: 3\nchecks:\n  - name: evasion.pgd\n"
        "    epsilons: [0.05, 0.1]\n    steps: 5\n"
    )
    a, b = Suite.from_file(toml), Suite.from_file(yml)
    assert a.to_dict() == b.to_dict()
    assert a.max_samples == 50 and a.seed == 3
    (check,) = a.build()
    assert check.name == "evasion.pgd"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('name = "x"\nchecks = []\n', "no checks"),
        ('name = "x"\nbogus = 1\n[[checks]]\nname = "evasion.pgd"\n', "unknown key"),
        ('[[checks]]\nname = "evasion.nope"\n', "unknown check"),
        ('[[checks]]\nname = "evasion.pgd"\nstep = 3\n', "unknown option"),
        ('[[checks]]\nname = "evasion.pgd"\nsteps = -3\n', "steps"),
        ('[[checks]]\nname = "evasion.pgd"\nepsilons = []\n', "epsilons"),
        ("checks: [1, 2\n", "neither valid TOML"),
    ],
)
def test_bad_suite_files_are_refused(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        Suite.from_file(path)


def test_named_suite_unknown() -> None:
    with pytest.raises(ConfigError, match="unknown suite 'fast'"):
        Suite.named("fast")
