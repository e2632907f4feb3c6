"""Fixtures of the packaging tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import fresh_pg_database


@pytest.fixture(params=["sqlite", "postgresql"])
async def store_uri(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str]:
    """(an ADK ``--session_service_uri`` of ours, the same database as a SQLAlchemy URL)."""
    if request.param == "sqlite":
        db = tmp_path / "sessions.db"
        return f"multi-agent+sqlite:///{db}", f"sqlite+aiosqlite:///{db}"
    url = await fresh_pg_database()
    return url.replace("postgresql+asyncpg://", "multi-agent+postgresql://"), url
