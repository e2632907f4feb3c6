"""Constructor options from the ``--session_service_uri`` / ``--memory_service_uri`` query.

Through ADK's own service registry (what ``adk web`` / ``adk api_server`` call), on SQLite and
PostgreSQL, and once through a real ``adk api_server`` whose ``on_stale=merge`` must take effect:
its agent makes the Runner's copy of the session stale mid-turn, which the default refuses.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import httpx
import pytest
from google.adk.events.event import Event
from google.adk.events.event_actions import EventActions

from multi_agent import DatabaseSessionService, StaleSession
from multi_agent.memory import DatabaseMemoryService
from tests.conftest import fresh_pg_database
from tests.store.test_adk_api_server import ROOT, start_api_server


@pytest.fixture
def registry() -> Any:
    from google.adk.cli.service_registry import get_service_registry

    import multi_agent.services  # noqa: F401  (registers the schemes)

    return get_service_registry()


def state_event(key: str, value: Any) -> Event:
    return Event(author="user", invocation_id="i-" + key,
                 actions=EventActions(state_delta={key: value}))


async def append_from_a_stale_copy(service: DatabaseSessionService, app: str) -> None:
    """Two copies of one session append one after the other; raises StaleSession unless the
    service merges."""
    session = await service.create_session(app_name=app, user_id="u")
    first = await service.get_session(app_name=app, user_id="u", session_id=session.id)
    second = await service.get_session(app_name=app, user_id="u", session_id=session.id)
    await service.append_event(first, state_event("a", 1))
    await service.append_event(second, state_event("b", 2))
    stored = await service.get_session(app_name=app, user_id="u", session_id=session.id)
    assert stored.state == {"a": 1, "b": 2}


async def pragma(service: Any, name: str) -> Any:
    return await service.backend.run(
        lambda conn: conn.exec_driver_sql(f"PRAGMA {name}").scalar(), write=False
    )


async def test_sqlite_session_options(registry: Any, tmp_path: Path, app_name: str) -> None:
    uri = (f"multi-agent+sqlite:///{tmp_path}/s.db?on_stale=merge&sqlite_synchronous=normal"
           "&sqlite_busy_timeout=2.5&sqlite_wal_limit_bytes=1048576")
    service = registry.create_session_service(uri, agents_dir=str(tmp_path))
    default = registry.create_session_service(f"multi-agent+sqlite:///{tmp_path}/s.db")
    try:
        assert isinstance(service, DatabaseSessionService) and service.on_stale == "merge"
        await append_from_a_stale_copy(service, app_name)
        assert await pragma(service, "synchronous") == 1  # NORMAL
        assert await pragma(service, "busy_timeout") == 2500
        assert await pragma(service, "journal_size_limit") == 1048576
        # Without options: the constructor's defaults.
        assert default.on_stale == "raise"
        assert await pragma(default, "synchronous") == 2  # FULL
        assert await pragma(default, "busy_timeout") == 30000
        with pytest.raises(StaleSession):
            await append_from_a_stale_copy(default, app_name + "_d")
    finally:
        await service.close()
        await default.close()


async def test_default_scheme_takes_options_in_the_agents_dir(
    registry: Any, tmp_path: Path, app_name: str
) -> None:
    """``multi-agent://?on_stale=merge``: the query is not taken for a path."""
    service = registry.create_session_service("multi-agent://?on_stale=merge",
                                              agents_dir=str(tmp_path))
    try:
        assert service.on_stale == "merge"
        await append_from_a_stale_copy(service, app_name)
        assert (tmp_path / "multi_agent_data.db").exists()
        assert not [name for name in os.listdir(tmp_path) if "on_stale" in name]
    finally:
        await service.close()


async def test_sqlite_memory_options(registry: Any, tmp_path: Path, app_name: str,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MULTI_AGENT_MEMORY_SEARCH", raising=False)
    memory = registry.create_memory_service(
        f"multi-agent+sqlite:///{tmp_path}/m.db?search=fulltext&max_results=2"
        "&max_entry_chars=12&sqlite_synchronous=OFF&sqlite_busy_timeout=1"
    )
    try:
        assert isinstance(memory, DatabaseMemoryService)
        assert (memory.search_mode, memory.max_results, memory.max_entry_chars) == (
            "fulltext", 2, 12
        )
        assert await pragma(memory, "synchronous") == 0
        assert await pragma(memory, "busy_timeout") == 1000
        from google.genai import types

        events = [
            Event(author="user", invocation_id="i", content=types.Content(
                role="user", parts=[types.Part(text=f"apples number {i} are quite tasty")]))
            for i in range(3)
        ]
        await memory.add_events_to_memory(app_name=app_name, user_id="u", session_id="s",
                                          events=events)
        found = (await memory.search_memory(app_name=app_name, user_id="u",
                                            query="apples")).memories
        assert len(found) == 2  # max_results
        assert all(len(m.content.parts[0].text) <= 12 + 2 for m in found)  # cut + " …"
    finally:
        await memory.close()


async def test_postgresql_options(registry: Any, app_name: str) -> None:
    url = await fresh_pg_database()
    rest = url.split("://", 1)[1]
    service = registry.create_session_service(
        f"multi-agent+postgresql://{rest}?on_stale=merge&pool_size=3&max_overflow=1"
        "&pool_timeout=7.5&pool_recycle=600&pool_pre_ping=false&command_timeout=0.5"
        "&ssl=disable"
    )
    memory = registry.create_memory_service(
        f"multi-agent+postgresql://{rest}?pool_size=2&max_overflow=0&max_results=4"
    )
    try:
        assert service.on_stale == "merge" and service.dialect == "postgresql"
        await append_from_a_stale_copy(service, app_name)
        pool = service.backend.async_engine.pool
        assert (pool.size(), pool._max_overflow, pool.timeout(), pool._recycle,
                pool._pre_ping) == (3, 1, 7.5, 600, False)
        # command_timeout reached asyncpg: a statement longer than it is cut off.
        with pytest.raises(Exception) as cut:
            await service.backend.run(
                lambda conn: conn.exec_driver_sql("SELECT pg_sleep(3)").scalar(), write=False
            )
        assert "timeout" in (type(cut.value).__name__ + repr(cut.value.__cause__)).lower()
        mpool = memory.backend.async_engine.pool
        assert (mpool.size(), mpool._max_overflow, memory.max_results) == (2, 0, 4)
        await memory.add_events_to_memory(app_name=app_name, user_id="u", events=[])
    finally:
        await service.close()
        await memory.close()


BAD_SESSION_URIS = [
    # (query, words the message must contain)
    ("on_stale=maybe", ["on_stale='maybe'", "raise or merge"]),
    ("on_stale=", ["on_stale=''", "raise or merge"]),
    ("sqlite_synchronous=fast", ["sqlite_synchronous='fast'", "OFF, NORMAL, FULL or EXTRA"]),
    ("sqlite_busy_timeout=-1", ["sqlite_busy_timeout='-1'", "seconds"]),
    ("sqlite_busy_timeout=nan", ["sqlite_busy_timeout='nan'"]),
    ("sqlite_wal_limit_bytes=-2", ["sqlite_wal_limit_bytes='-2'", "-1 for no limit"]),
    ("sqlite_wal_limit_bytes=1.5", ["sqlite_wal_limit_bytes='1.5'", "whole number"]),
    ("on_stale=merge&on_stale=raise", ["on_stale is given twice"]),
    ("onstale=merge", ["Unknown option 'onstale'", "Did you mean on_stale?",
                       "on_stale, window, sqlite_synchronous, sqlite_busy_timeout"]),
    ("pool_size=5", ["pool_size applies to PostgreSQL only", "takes on_stale"]),
    ("search=hybrid", ["search is an option of the memory service", "takes on_stale"]),
]

BAD_PG_URIS = [
    ("pool_size=-1", ["pool_size='-1'", "0 or more"]),
    ("pool_size=lots", ["pool_size='lots'"]),
    ("max_overflow=-5", ["max_overflow='-5'"]),
    ("pool_timeout=0", ["pool_timeout='0'", "more than 0"]),
    ("pool_recycle=soon", ["pool_recycle='soon'"]),
    ("pool_pre_ping=maybe", ["pool_pre_ping='maybe'", "true or false"]),
    ("command_timeout=-3", ["command_timeout='-3'"]),
    ("pool_sise=20", ["Unknown option 'pool_sise'", "Did you mean pool_size?",
                      "pool_size, max_overflow, pool_timeout, pool_recycle", "ssl"]),
    ("sqlite_synchronous=OFF", ["sqlite_synchronous applies to SQLite only"]),
]


@pytest.mark.parametrize(("query", "words"), BAD_SESSION_URIS)
def test_bad_sqlite_session_option(registry: Any, tmp_path: Path, query: str,
                                   words: list[str]) -> None:
    with pytest.raises(ValueError) as raised:
        registry.create_session_service(f"multi-agent+sqlite:///{tmp_path}/x.db?{query}")
    for word in words:
        assert word in str(raised.value), str(raised.value)
    assert not (tmp_path / "x.db").exists()


@pytest.mark.parametrize(("query", "words"), BAD_PG_URIS)
def test_bad_postgresql_session_option(registry: Any, query: str, words: list[str]) -> None:
    with pytest.raises(ValueError) as raised:
        registry.create_session_service(f"multi-agent+postgresql://u:secretpw@h/db?{query}")
    message = str(raised.value)
    for word in words:
        assert word in message, message
    assert "secretpw" not in message


@pytest.mark.parametrize(("query", "words"), [
    ("search=vectors", ["not a memory search mode", "fulltext, semantic or hybrid"]),
    ("max_results=0", ["max_results='0'", "1 to 10000"]),
    ("max_results=10000000000000000000000", ["max_results=", "1 to 10000"]),
    ("min_similarity=2", ["min_similarity='2'", "-1 to 1"]),
    ("on_stale=merge", ["on_stale is an option of the session service", "takes search"]),
    ("colour=blue", ["Unknown option 'colour'", "search, max_results"]),
])
def test_bad_memory_option(registry: Any, tmp_path: Path, query: str, words: list[str]) -> None:
    with pytest.raises(ValueError) as raised:
        registry.create_memory_service(f"multi-agent://?{query}", agents_dir=str(tmp_path))
    for word in words:
        assert word in str(raised.value), str(raised.value)


# -- through a real adk api_server ------------------------------------------------------------

RACING_AGENT = '''
from google.adk.agents.base_agent import BaseAgent
from google.adk.events.event import Event
from google.adk.events.event_actions import EventActions
from google.genai import types

from multi_agent import DatabaseSessionService


class RacingAgent(BaseAgent):
    """Another writer appends to the session while the Runner holds its copy; then the agent
    answers from that (now stale) copy."""

    async def _run_async_impl(self, ctx):
        session = ctx.session
        other = DatabaseSessionService("sqlite+aiosqlite:///" + DB)
        try:
            copy = await other.get_session(app_name=session.app_name, user_id=session.user_id,
                                           session_id=session.id)
            await other.append_event(copy, Event(
                author="other_writer", invocation_id=ctx.invocation_id,
                actions=EventActions(state_delta={"other_writer": 1})))
        finally:
            await other.close()
        yield Event(author=self.name, invocation_id=ctx.invocation_id,
                    content=types.Content(role="model", parts=[types.Part(text="merged")]),
                    actions=EventActions(state_delta={"racer": 1}))


root_agent = RacingAgent(name="racer")
'''


def test_api_server_takes_on_stale_merge_from_the_uri(tmp_path: Path) -> None:
    db = tmp_path / "sessions.db"
    agents = tmp_path / "agents"
    (agents / "race_app").mkdir(parents=True)
    shutil.copy(ROOT / "services.py", agents / "services.py")
    (agents / "race_app" / "__init__.py").write_text("from . import agent\n")
    (agents / "race_app" / "agent.py").write_text(f"DB = {str(db)!r}\n" + RACING_AGENT)
    server = start_api_server(
        tmp_path, agents,
        ["--session_service_uri", f"multi-agent+sqlite:///{db}?on_stale=merge"],  # the last wins
    )
    base, _ = next(server)
    try:
        with httpx.Client(base_url=base, timeout=60) as http:
            created = http.post("/apps/race_app/users/u/sessions", json={"session_id": "s1"})
            assert created.status_code == 200, created.text
            run = http.post("/run", json={
                "app_name": "race_app", "user_id": "u", "session_id": "s1",
                "new_message": {"role": "user", "parts": [{"text": "go"}]},
            })
            assert run.status_code == 200, run.text
            assert run.json()[-1]["content"]["parts"][0]["text"] == "merged"
            got = http.get("/apps/race_app/users/u/sessions/s1").json()
            assert got["state"] == {"other_writer": 1, "racer": 1}
            assert [e["author"] for e in got["events"]] == ["user", "other_writer", "racer"]
    finally:
        server.close()
    log = (tmp_path / "server.log").read_text()
    assert "StaleSession" not in log
