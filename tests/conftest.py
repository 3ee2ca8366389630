"""Shared fixtures: asyncio only (aiohttp), retries without waits, captured structlog events."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import structlog
from hypothesis import settings

from vosweep.testing import no_backoff

# Wall-clock deadlines per example only measure how busy the machine is (CI shares it).
settings.register_profile("vosweep", deadline=None)
settings.load_profile("vosweep")


@pytest.fixture(name="anyio_backend", scope="session")
def _anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(name="no_backoff")
def _no_backoff() -> Iterator[None]:
    """Retries without waiting: attempts, budgets and breakers as usual, no sleeping."""
    with no_backoff():
        yield


@pytest.fixture(name="events")
def _events() -> Iterator[list[dict[str, Any]]]:
    with structlog.testing.capture_logs() as captured:
        yield captured
