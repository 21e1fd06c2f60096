"""Fixtures of the store tests: a Warden home on SQLite or PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from warden.config import Settings
from warden.store import Store


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    """A fresh home under ``tmp_path``; its database is the home's own SQLite file, or the
    PostgreSQL database of the ``database_url`` fixture."""
    url = database_url if database_url.startswith("postgresql") else None
    return Settings(home=tmp_path / "home", database_url=url)


@pytest.fixture
def store(settings: Settings) -> Iterator[Store]:
    """An open store in a fresh home (both database backends)."""
    with Store.open(settings) as opened:
        yield opened


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[Store]:
    """An open store whose every byte lives under its home (SQLite), for tests that read files."""
    with Store.open(Settings(home=tmp_path / "home")) as opened:
        yield opened
