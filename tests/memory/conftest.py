"""Fixtures for the memory tests: a memory service sharing each backend's session store."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from multi_agent import DatabaseSessionService
from multi_agent.memory import DatabaseMemoryService


@pytest.fixture
async def memory(store: DatabaseSessionService) -> AsyncIterator[DatabaseMemoryService]:
    service = DatabaseMemoryService(store)
    try:
        yield service
    finally:
        await service.close()
