"""Shared fixtures: one ``store`` fixture over every backend.

Backends: a SQLite file, SQLite in memory, and PostgreSQL when ``MULTI_AGENT_TEST_PG_URL`` is set
(``scripts/with_postgres.sh`` starts a throw-away server and sets it; ``make test`` does that).
With ``MULTI_AGENT_REQUIRE_PG=1`` (CI) a missing server fails the PostgreSQL tests instead of
skipping them; likewise ``MULTI_AGENT_REQUIRE_SEMANTIC=1`` for the semantic-search tests, which
need the ``[semantic]`` extra and the bundled model (``minilm`` fixture).
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

# Every event the store decodes in the tests is checked against full pydantic validation.
os.environ.setdefault("MULTI_AGENT_VERIFY_DECODE", "1")

from multi_agent import DatabaseSessionService  # noqa: E402

PG_URL = os.environ.get("MULTI_AGENT_TEST_PG_URL")
REQUIRE_PG = os.environ.get("MULTI_AGENT_REQUIRE_PG") == "1"

BACKENDS = ["sqlite_file", "sqlite_memory", "postgres"]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--soak", action="store_true", help="run the long reliability variants")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--soak"):
        return
    skip = pytest.mark.skip(reason="soak variant: run with --soak")
    for item in items:
        if "soak" in item.keywords:
            item.add_marker(skip)


def require_pg() -> str:
    """The PostgreSQL URL, or skip (fail under MULTI_AGENT_REQUIRE_PG=1)."""
    if PG_URL:
        return PG_URL
    if REQUIRE_PG:
        pytest.fail("MULTI_AGENT_REQUIRE_PG=1 but MULTI_AGENT_TEST_PG_URL is not set")
    pytest.skip("PostgreSQL not configured (set MULTI_AGENT_TEST_PG_URL or use make test)")


async def fresh_pg_database() -> str:
    """Creates an empty PostgreSQL database and returns its URL."""
    import asyncpg

    base = require_pg()
    name = "t_" + uuid.uuid4().hex[:12]
    admin = base.replace("postgresql+asyncpg://", "postgresql://")
    conn = await asyncpg.connect(admin)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return base.rsplit("/", 1)[0] + "/" + name


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def db_url(backend: str, tmp_path) -> str:
    """A URL to an empty database of the parametrized backend."""
    if backend == "sqlite_file":
        return f"sqlite+aiosqlite:///{tmp_path / 'store.db'}"
    if backend == "sqlite_memory":
        return "sqlite+aiosqlite://"
    return await fresh_pg_database()


@pytest.fixture
async def store(db_url: str) -> AsyncIterator[DatabaseSessionService]:
    service = DatabaseSessionService(db_url)
    try:
        yield service
    finally:
        await service.close()


@pytest.fixture
def app_name() -> str:
    return "app_" + uuid.uuid4().hex[:8]


@pytest.fixture
def event_loop_policy() -> asyncio.AbstractEventLoopPolicy:
    return asyncio.DefaultEventLoopPolicy()


REQUIRE_SEMANTIC = os.environ.get("MULTI_AGENT_REQUIRE_SEMANTIC") == "1"


@pytest.fixture(scope="session")
def minilm() -> Any:
    """The bundled all-MiniLM-L6-v2, loaded once; skips without the ``[semantic]`` extra
    (fails instead under ``MULTI_AGENT_REQUIRE_SEMANTIC=1``, as in CI)."""
    from multi_agent.memory import SemanticSearchUnavailable, default_embedder

    try:
        return default_embedder()
    except SemanticSearchUnavailable as exc:
        if REQUIRE_SEMANTIC:
            pytest.fail(f"MULTI_AGENT_REQUIRE_SEMANTIC=1 but: {exc}")
        pytest.skip(str(exc))
