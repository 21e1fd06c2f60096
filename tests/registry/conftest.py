"""Fixtures of the registry tests: a store on SQLite or PostgreSQL, a registry, keys, models."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.registry._helpers import npy_bytes

from warden.config import Settings
from warden.registry import Registry
from warden.registry.policy import Policy, parse_policy
from warden.store import Store
from warden.supplychain.keys import generate_key


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    """A fresh home; its database is SQLite in the home or the fixture's PostgreSQL database."""
    url = database_url if database_url.startswith("postgresql") else None
    return Settings(home=tmp_path / "home", database_url=url)


@pytest.fixture
def store(settings: Settings) -> Iterator[Store]:
    with Store.open(settings) as opened:
        yield opened


@pytest.fixture
def keys(tmp_path: Path) -> dict[str, Path]:
    """Two Ed25519 key pairs: ``trusted`` (in the policy) and ``other`` (not)."""
    out = {}
    for name in ("trusted", "other"):
        private = tmp_path / "keys" / name
        generate_key("ed25519", private, private.with_suffix(".pub"))
        out[name] = private
    return out


@pytest.fixture
def policy(tmp_path: Path, keys: dict[str, Path]) -> Policy:
    """Trusts the ``trusted`` key; overall grade C or better; ML01 at least C."""
    return parse_policy(
        {
            "signature": {"trusted_keys": ["keys/trusted.pub"]},
            "assessment": {"min_grade": "C", "threats": {"ML01": "C"}},
        },
        base=tmp_path,
        where="test-policy",
    )


@pytest.fixture
def registry(store: Store, policy: Policy) -> Registry:
    return Registry(store, actor="alice", policy=policy)


@pytest.fixture
def model_file(tmp_path: Path) -> Path:
    path = tmp_path / "art" / "weights.npy"
    path.parent.mkdir()
    path.write_bytes(npy_bytes())
    return path


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    root = tmp_path / "modeldir"
    (root / "sub").mkdir(parents=True)
    (root / "weights.npy").write_bytes(npy_bytes(1))
    (root / "sub" / "head.npy").write_bytes(npy_bytes(2))
    (root / "config.json").write_text('{"layers": 2}')
    return root
