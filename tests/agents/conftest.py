"""Fixtures for the agent-team tests: a database URL per backend, a runner, a fake tool context.

``team_db`` is a real SQLite file, and a fresh PostgreSQL database when
``MULTI_AGENT_TEST_PG_URL`` is set (skipped otherwise; failed under MULTI_AGENT_REQUIRE_PG=1).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from google.adk.sessions.session import Session
from google.adk.sessions.state import State

from multi_agent.team.app import TeamRunner, build_runner


async def _fresh_pg_database() -> str:
    base = os.environ.get("MULTI_AGENT_TEST_PG_URL")
    if not base:
        if os.environ.get("MULTI_AGENT_REQUIRE_PG") == "1":
            pytest.fail("MULTI_AGENT_REQUIRE_PG=1 but MULTI_AGENT_TEST_PG_URL is not set")
        pytest.skip("PostgreSQL not configured (set MULTI_AGENT_TEST_PG_URL or use make test)")
    import asyncpg

    name = "team_" + uuid.uuid4().hex[:12]
    conn = await asyncpg.connect(base.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return base.rsplit("/", 1)[0] + "/" + name


@pytest.fixture(params=["sqlite", "postgres"])
async def team_db(request: pytest.FixtureRequest, tmp_path) -> str:
    """A URL to an empty database: a SQLite file, or PostgreSQL when configured."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'team.db'}"
    return await _fresh_pg_database()


@pytest.fixture
async def runner(team_db: str) -> AsyncIterator[TeamRunner]:
    """build_runner on ``team_db`` with the offline model; closed (with its store) after."""
    made = build_runner(db_url=team_db, model="offline-rules")
    assert isinstance(made, TeamRunner)
    try:
        yield made
    finally:
        await made.close()


class FakeToolContext:
    """Just enough of ADK's ToolContext for calling a tool function directly.

    ``state`` is ADK's real ``State`` (value + delta), so writes behave as in a run.
    """

    def __init__(
        self, state: dict[str, Any] | None = None, *, user_id: str = "u", service: Any = None
    ) -> None:
        self.session = Session(id="s1", app_name="multi_agent", user_id=user_id,
                               state=dict(state or {}))
        self.state = State(self.session.state, {})
        self.user_id = user_id
        self._service = service

    def get_invocation_context(self) -> Any:
        if self._service is None:
            raise RuntimeError("no session service in this fake context")

        class _Ctx:
            session_service = self._service

        return _Ctx()

    @property
    def delta(self) -> dict[str, Any]:
        return self.state._delta


@pytest.fixture
def ctx() -> FakeToolContext:
    return FakeToolContext()
