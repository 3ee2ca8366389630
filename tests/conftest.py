"""Shared fixtures: asyncio only (aiohttp), stamina's test mode, captured structlog events."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import stamina
import structlog


@pytest.fixture(name="anyio_backend", scope="session")
def _anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(name="no_backoff")
def _no_backoff() -> Iterator[None]:
    """Retries without waiting: stamina's test mode keeps attempts, zeroes backoff."""
    with stamina.set_testing(True, attempts=3, cap=True):
        yield


@pytest.fixture(name="events")
def _events() -> Iterator[list[dict[str, Any]]]:
    with structlog.testing.capture_logs() as captured:
        yield captured
