"""Fixtures of the CLI tests."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest


@pytest.fixture
def restore_warden_logger() -> Iterator[None]:
    """A root callback reconfigures the ``warden`` logger; put it back for other tests."""
    log = logging.getLogger("warden")
    saved = (list(log.handlers), log.level, log.propagate)
    yield
    log.handlers[:], log.level, log.propagate = saved[0], saved[1], saved[2]
