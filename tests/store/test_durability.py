"""Reopening, schema versions, foreign databases, unreachable servers, extra columns."""

from __future__ import annotations

import sqlite3

import pytest
from sqlalchemy import text

from multi_agent import DatabaseSessionService, DatabaseUnavailableError, SchemaVersionError
from multi_agent.errors import ForeignDatabaseError
from multi_agent.store import schema
from tests.helpers import call_event, result_event, text_event


@pytest.mark.parametrize("backend", ["sqlite_file", "postgres"], indirect=True)
async def test_survives_reopening(db_url: str, app_name: str) -> None:
    async with DatabaseSessionService(db_url) as first:
        s = await first.create_session(app_name=app_name, user_id="u", state={"user:name": "Ann"})
        await first.append_event(s, text_event("remember me", state={"k": 1}))
    async with DatabaseSessionService(db_url) as second:
        got = await second.get_session(app_name=app_name, user_id="u", session_id=s.id)
        assert got == s
        assert got.state == {"k": 1, "user:name": "Ann"}
        # And it can be written again after reopening.
        await second.append_event(got, text_event("again"))


async def _set_version(store: DatabaseSessionService, version: str) -> None:
    def bump(conn):
        conn.execute(
            text("UPDATE ma_meta SET value = :v WHERE key = 'schema_version'"), {"v": version}
        )

    await store.backend.run(bump, write=True)


@pytest.mark.parametrize("backend", ["sqlite_file", "postgres"], indirect=True)
async def test_newer_schema_version_refused(db_url: str, app_name: str) -> None:
    async with DatabaseSessionService(db_url) as store:
        s = await store.create_session(app_name=app_name, user_id="u", state={"k": 1})
        await _set_version(store, str(schema.SCHEMA_VERSION + 1))
    async with DatabaseSessionService(db_url) as newer:
        with pytest.raises(SchemaVersionError) as info:
            await newer.get_session(app_name=app_name, user_id="u", session_id=s.id)
        message = str(info.value)
        assert f"schema version {schema.SCHEMA_VERSION + 1}" in message
        assert "Upgrade multi-agent" in message
        assert info.value.found == schema.SCHEMA_VERSION + 1
    # Data untouched: put the version back and read it.
    async with DatabaseSessionService(db_url) as store:
        await _set_version(store, str(schema.SCHEMA_VERSION))
    async with DatabaseSessionService(db_url) as store:
        got = await store.get_session(app_name=app_name, user_id="u", session_id=s.id)
        assert got.state == {"k": 1}


async def test_foreign_tables_refused(tmp_path) -> None:
    path = tmp_path / "other.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE ma_sessions (id TEXT)")
    async with DatabaseSessionService(f"sqlite+aiosqlite:///{path}") as store:
        with pytest.raises(ForeignDatabaseError, match="another program"):
            await store.list_sessions(app_name="a")


async def test_not_a_database_file(tmp_path) -> None:
    path = tmp_path / "junk.db"
    path.write_bytes(b"this is not sqlite" * 500)
    async with DatabaseSessionService(f"sqlite+aiosqlite:///{path}") as store:
        with pytest.raises(DatabaseUnavailableError) as info:
            await store.list_sessions(app_name="a")
        assert info.value.cause == "corrupt"
        assert "backup" in str(info.value)
    assert path.read_bytes() == b"this is not sqlite" * 500


async def test_missing_directory(tmp_path) -> None:
    with pytest.raises(DatabaseUnavailableError, match="does not exist") as info:
        DatabaseSessionService(f"sqlite+aiosqlite:///{tmp_path}/no/such/dir/x.db")
    assert info.value.cause == "no_such_path"


async def test_unreachable_postgres_clear_error() -> None:
    async with DatabaseSessionService("postgresql+asyncpg://nobody@127.0.0.1:1/none") as store:
        with pytest.raises(DatabaseUnavailableError) as info:
            await store.list_sessions(app_name="a")
    assert info.value.cause == "unreachable"
    assert "server is running" in str(info.value)
    assert "127.0.0.1:1" in str(info.value)


async def test_bad_urls() -> None:
    with pytest.raises(ValueError, match="not a database URL"):
        DatabaseSessionService("not a url")
    with pytest.raises(ValueError, match="Unsupported database"):
        DatabaseSessionService("mysql+aiomysql://u@h/db")
    with pytest.raises(ValueError, match="asyncpg"):
        DatabaseSessionService("postgresql+psycopg2://u@h/db")


async def test_who_said_what_to_whom(store: DatabaseSessionService, app_name: str) -> None:
    s = await store.create_session(app_name=app_name, user_id="u")
    inv = "inv-1"
    await store.append_event(s, text_event("joke please", author="user", invocation_id=inv))
    await store.append_event(
        s, call_event("transfer_to_agent", {"agent_name": "funny_nerd"}, author="manager",
                      invocation_id=inv)
    )
    await store.append_event(
        s, result_event("transfer_to_agent", {"result": None}, author="manager",
                        invocation_id=inv, transfer_to="funny_nerd")
    )
    await store.append_event(s, text_event("a joke", author="funny_nerd", invocation_id=inv))
    await store.append_event(s, text_event("another", author="user", invocation_id="inv-2"))

    def rows(conn):
        return conn.execute(
            text(
                "SELECT seq, source, target, message_type, branch, run_id FROM ma_events "
                "WHERE app_name = :a ORDER BY seq"
            ),
            {"a": app_name},
        ).all()

    got = [tuple(r) for r in await store.backend.run(rows, write=False)]
    assert got == [
        (1, "user", "manager", "human", None, "inv-1"),
        (2, "manager", "funny_nerd", "tool_call", "manager", "inv-1"),
        (3, "manager", "funny_nerd", "tool_result", "manager", "inv-1"),
        (4, "funny_nerd", "user", "agent", "manager.funny_nerd", "inv-1"),
        (5, "user", None, "human", None, "inv-2"),
    ]

    runs = await store.list_runs(app_name=app_name, user_id="u", session_id=s.id)
    assert [(r.run_id, r.parent_run_id, r.status, r.event_count, r.agent) for r in runs] == [
        ("inv-1", None, "completed", 4, "manager"),
        ("funny_nerd@3", "inv-1", "completed", 1, "funny_nerd"),
        ("inv-2", "inv-1", "running", 1, None),
    ]
    # A third run starting while inv-2 never answered: inv-2 is then visibly failed.
    await store.append_event(s, text_event("x", author="user", invocation_id="inv-3"))
    runs = await store.list_runs(app_name=app_name, user_id="u", session_id=s.id)
    assert [(r.run_id, r.status) for r in runs] == [
        ("inv-1", "completed"), ("funny_nerd@3", "completed"), ("inv-2", "failed"),
        ("inv-3", "running"),
    ]
    assert "without a final response" in runs[2].error


async def test_human_target_is_the_agent_that_answers(
    store: DatabaseSessionService, app_name: str
) -> None:
    """ADK's router, not the store, decides who answers; the store records who did."""
    s = await store.create_session(app_name=app_name, user_id="u")
    await store.append_event(s, text_event("joke?", author="user", invocation_id="i1"))
    await store.append_event(s, text_event("a joke", author="funny_nerd", invocation_id="i1"))
    # The next message goes back to the manager (sub-agents may not keep the conversation).
    await store.append_event(s, text_event("stocks?", author="user", invocation_id="i2"))
    await store.append_event(s, text_event("sure", author="manager", invocation_id="i2"))
    humans = await store.query_messages(app_name=app_name, user_id="u", message_type="human")
    assert [(m.text, m.target) for m in humans] == [("joke?", "funny_nerd"), ("stocks?", "manager")]


@pytest.mark.parametrize("backend", ["sqlite_file", "postgres"], indirect=True)
async def test_injected_async_engine(db_url: str, app_name: str) -> None:
    """An AsyncEngine the caller made works the same, and close() leaves it open."""
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(db_url)
    try:
        async with DatabaseSessionService(db_engine=engine) as store:
            s = await store.create_session(app_name=app_name, user_id="u", state={"a": 1})
            await store.append_event(s, text_event("hi", state={"user:b": 2}))
            got = await store.get_session(app_name=app_name, user_id="u", session_id=s.id)
            assert got == s and got.state == {"a": 1, "user:b": 2}
            copy = await store.get_session(app_name=app_name, user_id="u", session_id=s.id)
            await store.append_event(s, text_event("again"))
            from google.adk.errors._stale_session_error import StaleSessionError

            with pytest.raises(StaleSessionError):
                await store.append_event(copy, text_event("stale"))
        async with engine.connect() as conn:  # still usable after the service closed
            count = await conn.scalar(text("SELECT count(*) FROM ma_events"))
        assert count == 2
    finally:
        await engine.dispose()
