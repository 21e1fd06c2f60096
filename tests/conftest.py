"""Shared fixtures and fakes of Warden's protocols."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from warden.assess.check import CheckContext
from warden.assess.finding import Finding, Severity
from warden.data.bundled import load_digits
from warden.data.dataset import Dataset
from warden.models.base import Bounds


class FakeModel:
    """A fixed linear softmax classifier in numpy: the smallest honest ``Model``."""

    def __init__(self, n_features: int = 4, n_classes: int = 3, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        self.w = rng.normal(size=(n_features, n_classes)).astype(np.float32)
        self._shape = (n_features,)
        self._n = n_classes
        self.calls = 0

    @property
    def n_classes(self) -> int:
        return self._n

    @property
    def input_shape(self) -> tuple[int, ...]:
        return self._shape

    @property
    def bounds(self) -> Bounds:
        return Bounds.uniform(-3.0, 3.0, self._shape)

    def __call__(self, x: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        self.calls += 1
        z = np.asarray(x, np.float32).reshape(len(x), -1) @ self.w
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)


@dataclass(frozen=True)
class FakeCheck:
    """A check that yields the findings it was given, or raises what it was given."""

    name: str = "fake.check"
    findings: tuple[Finding, ...] = ()
    error: BaseException | None = None

    def run(self, ctx: CheckContext) -> Iterator[Finding]:
        yield from self.findings
        if self.error is not None:
            raise self.error


def make_finding(
    severity: Severity, owasp: tuple[str, ...] = ("ML01",), fid: str = "fake.f"
) -> Finding:
    return Finding(
        id=fid, check="fake", title=f"a {severity} finding", severity=severity, owasp=owasp
    )


@pytest.fixture
def fake_model() -> FakeModel:
    return FakeModel()


@pytest.fixture
def fake_data() -> Dataset:
    rng = np.random.default_rng(1)
    x = rng.uniform(-1, 1, size=(60, 4)).astype(np.float32)
    model = FakeModel()
    y = model(x).argmax(axis=1)
    return Dataset(x, y, "fake", bounds=Bounds.uniform(-3.0, 3.0, (4,)))


@pytest.fixture(scope="session")
def digits_split() -> tuple[Dataset, Dataset]:
    return load_digits().split(0.25, seed=0)


@pytest.fixture(scope="session")
def digits_model(digits_split: tuple[Dataset, Dataset]) -> Any:
    """A small CNN trained on digits (seeded, a few seconds on 2 cores)."""
    from warden.models.zoo import TrainConfig, train_model

    return train_model(digits_split[0], config=TrainConfig(epochs=8, seed=0))


def pytest_configure(config: pytest.Config) -> None:
    """One intra-op thread: the test models are tiny, and two threads on two shared cores
    stall at OpenMP barriers (measured 10-20x slower under load)."""
    import torch

    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def sarif_schema_path() -> Path:
    """The official SARIF 2.1.0 JSON schema, shipped with the tests (tests/report/)."""
    return Path(__file__).parent / "report" / "sarif-schema-2.1.0.json"


@pytest.fixture(scope="session")
def sarif_validator(sarif_schema_path: Path) -> Any:
    """A jsonschema validator for the official SARIF 2.1.0 schema."""
    import json

    from jsonschema.validators import Draft7Validator, validator_for

    schema = json.loads(sarif_schema_path.read_text(encoding="utf-8"))
    cls = validator_for(schema, default=Draft7Validator)
    cls.check_schema(schema)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


# --- databases -------------------------------------------------------------------------------

POSTGRES_ENV = "WARDEN_TEST_POSTGRES_URL"
"""Set by ``make test-postgres`` (scripts/test-postgres.sh) to a server Warden may use."""


def _postgres_admin_url() -> str:
    url = os.environ.get(POSTGRES_ENV, "")
    if not url:
        pytest.skip(
            f"no PostgreSQL server: {POSTGRES_ENV} is not set (run `make test-postgres` to "
            "start a local server and run the store and registry tests against it)"
        )
    return url


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database URL: SQLite under ``tmp_path``, or a new PostgreSQL database.

    The PostgreSQL variant creates a database of its own per test on the server named by
    ``WARDEN_TEST_POSTGRES_URL`` and drops it afterwards; it skips (with the reason) when the
    variable is unset.
    """
    if request.param == "sqlite":
        yield f"sqlite+pysqlite:///{tmp_path / 'warden-test.db'}"
        return
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    admin_url = make_url(_postgres_admin_url())
    name = f"warden_test_{uuid.uuid4().hex[:16]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield admin_url.set(database=name).render_as_string(hide_password=False)
    finally:
        _drop_database(admin, name)
        admin.dispose()


def _drop_database(admin: Any, name: str, attempts: int = 20) -> None:
    """Drop a per-test database; a server process (autovacuum) that is still attached and that
    this role may not terminate makes the drop fail briefly, so it is retried before failing."""
    import time

    from sqlalchemy import text
    from sqlalchemy.exc import DBAPIError

    for attempt in range(attempts):
        try:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            return
        except DBAPIError:
            if attempt == attempts - 1:
                raise
            time.sleep(0.25)
