"""Fixtures of the supply-chain tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from tests.supplychain._helpers import Capture, registered


@pytest.fixture
def capture() -> Iterator[Capture]:
    """A format scanner, registered for one test, that keeps every stream starting ``CAPTURE``."""
    with registered(Capture()) as cap:
        yield cap
