"""Fixtures of the access tests: a store (SQLite or PostgreSQL), a fake clock, an audit sink
that keeps events, and an Access service with cheap (test-only) argon2 parameters."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyotp
import pytest

from warden.access import Access, AccessPolicy, PasswordParams
from warden.audit import AuditEvent
from warden.config import Settings
from warden.store import Store

START = datetime(2026, 1, 5, 12, 0, 0, tzinfo=UTC)
PASSWORD = "violet-harbour-lantern-42"
ADMIN_PASSWORD = "granite-meadow-orbit-77"

TEST_PARAMS = PasswordParams(time_cost=1, memory_kib=64, parallelism=1, unsafe_allow_weak=True)
"""Cheap argon2id for tests (production parameters are tested separately)."""


@dataclass
class FakeClock:
    now: datetime = START

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kwargs: float) -> None:
        self.now += timedelta(**kwargs)


@dataclass
class ListSink:
    events: list[AuditEvent] = field(default_factory=list)

    def record(self, event: AuditEvent) -> None:
        self.events.append(event)

    def actions(self) -> list[tuple[str, str, str]]:
        return [(e.action, e.actor, e.outcome) for e in self.events]


@pytest.fixture
def store(tmp_path: Path, database_url: str) -> Iterator[Store]:
    url = database_url if database_url.startswith("postgresql") else None
    with Store.open(Settings(home=tmp_path / "home", database_url=url)) as opened:
        yield opened


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def sink() -> ListSink:
    return ListSink()


@pytest.fixture
def access(store: Store, clock: FakeClock, sink: ListSink) -> Access:
    return Access(
        store, audit=sink, clock=clock, policy=AccessPolicy(), password_params=TEST_PARAMS
    )


def code_at(secret: str, when: datetime, offset_steps: int = 0) -> str:
    """The TOTP code an authenticator app shows (pyotp: an independent implementation)."""
    return pyotp.TOTP(secret).at(when + timedelta(seconds=30 * offset_steps))


def enrol(access: Access, name: str, clock: FakeClock) -> tuple[str, tuple[str, ...]]:
    """Enrol and confirm TOTP for ``name``; the base32 secret and the recovery codes. The
    clock moves one step on, so the confirming code's step is not reused by the caller."""
    enrolment = access.enrol_totp(name)
    codes = access.confirm_totp(name, code_at(enrolment.secret, clock.now))
    clock.advance(seconds=30)
    return enrolment.secret, codes


@pytest.fixture
def admin(access: Access, clock: FakeClock) -> str:
    """An admin ``root`` with MFA enrolled; returns its TOTP secret."""
    access.create_user("root", ADMIN_PASSWORD, roles=["admin"], actor="bootstrap")
    secret, _ = enrol(access, "root", clock)
    return secret
