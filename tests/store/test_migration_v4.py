"""Schema 4: a database written by the schema-3 store (with its memory) is upgraded in place.

``data/schema_v3.db`` was written by the code of commit 2f4a50a (schema 3), by
``data/make_schema_v3.py``: sessions of two users, and a ``DatabaseMemoryService`` on the
store that indexed them (five memory entries, two watermarks). Opening it with today's store
upgrades it; the memory rows are kept, found by search, and go on from their watermarks.
Step 4 upgrades the memory tables with the store's other tables: an older memory layout
(a watermark table without ``incarnation``) is brought up to date by the store alone.
"""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import inspect, text

from multi_agent import DatabaseSessionService
from multi_agent.memory import DatabaseMemoryService
from multi_agent.store import schema
from tests.helpers import run_twice_at_once, text_event

FIXTURE = Path(__file__).parent / "data" / "schema_v3.db"
ROOT = Path(__file__).resolve().parents[2]


def copy_fixture(tmp_path: Path) -> Path:
    path = tmp_path / "v3.db"
    shutil.copy(FIXTURE, path)
    return path


def version_of(path: Path) -> str:
    with sqlite3.connect(path) as conn:
        row = conn.execute("SELECT value FROM ma_meta WHERE key='schema_version'").fetchone()
    conn.close()
    return row[0]


def count_rows(path: Path, table: str) -> int:
    with sqlite3.connect(path) as conn:
        n = conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    conn.close()
    return n


async def found(memory: DatabaseMemoryService, user: str, query: str) -> list[str]:
    got = await memory.search_memory(app_name="app", user_id=user, query=query)
    return [m.content.parts[0].text for m in got.memories]


def test_fixture_is_schema_3_with_memory() -> None:
    assert version_of(FIXTURE) == "3"
    assert count_rows(FIXTURE, "ma_memory_entries") == 5
    assert count_rows(FIXTURE, "ma_memory_sessions") == 2


async def test_schema_3_sqlite_file_with_memory_is_upgraded(tmp_path: Path) -> None:
    path = copy_fixture(tmp_path)
    async with DatabaseSessionService(f"sqlite+aiosqlite:///{path}") as store:
        memory = DatabaseMemoryService(store)
        s1 = await store.get_session(app_name="app", user_id="ann", session_id="s1")
        assert [e.content.parts[0].text for e in s1.events][:2] == [
            "I want a red wine for dinner", "Try a Rioja or a Chianti"]
        assert s1.state["n"] == 2 and s1.state["user:name"] == "Ann"
        assert version_of(path) == str(schema.SCHEMA_VERSION)
        # The old memory rows are found, and only what is new is indexed next.
        assert "Try a Rioja or a Chianti" in await found(memory, "ann", "which wine")
        assert await found(memory, "bob", "nvidia") == ["hello nvidia"]
        await store.append_event(s1, text_event("and a cheese?", author="user"))
        await memory.add_session_to_memory(s1)
        assert count_rows(path, "ma_memory_entries") == 6
        await memory.add_session_to_memory(s1)
        assert count_rows(path, "ma_memory_entries") == 6
        # A deleted session's memory still goes with it.
        await store.delete_session(app_name="app", user_id="ann", session_id="s1")
        assert await found(memory, "ann", "which wine") == []
        assert await found(memory, "bob", "nvidia") == ["hello nvidia"]
        await memory.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    conn.close()


async def test_step_4_upgrades_an_older_memory_layout_without_a_memory_service(
    tmp_path: Path,
) -> None:
    """The watermark table as the first memory made it (no ``incarnation``): the store's
    upgrade adds the column and keeps the rows; the memory then carries on from them."""
    path = copy_fixture(tmp_path)
    with sqlite3.connect(path) as conn:
        conn.execute("ALTER TABLE ma_memory_sessions DROP COLUMN incarnation")
    conn.close()
    async with DatabaseSessionService(f"sqlite+aiosqlite:///{path}") as store:
        await store.prepare()
    with sqlite3.connect(path) as conn:
        columns = {r[1] for r in conn.execute("PRAGMA table_info(ma_memory_sessions)")}
        marks = conn.execute("SELECT count(*) FROM ma_memory_sessions").fetchone()[0]
    conn.close()
    assert "incarnation" in columns and marks == 2
    assert version_of(path) == str(schema.SCHEMA_VERSION)


async def test_schema_3_without_memory_gets_no_memory_tables(tmp_path: Path) -> None:
    """Step 4 creates nothing: a store that never had a memory gets none."""
    path = copy_fixture(tmp_path)
    with sqlite3.connect(path) as conn:
        for name in ("ma_memory_vectors", "ma_memory_fts", "ma_memory_entries",
                     "ma_memory_sessions"):
            conn.execute(f"DROP TABLE {name}")
    conn.close()
    async with DatabaseSessionService(f"sqlite+aiosqlite:///{path}") as store:
        await store.prepare()
        has = await store.backend.run(
            lambda conn: inspect(conn).has_table("ma_memory_entries"), write=False
        )
    assert not has and version_of(path) == str(schema.SCHEMA_VERSION)


_OPEN = """
import asyncio, sys
from multi_agent import DatabaseSessionService
from multi_agent.memory import DatabaseMemoryService

async def main(url):
    async with DatabaseSessionService(url) as store:
        memory = DatabaseMemoryService(store)
        got = await memory.search_memory(app_name="app", user_id="ann", query="wine")
        await memory.close()
    print(len(got.memories))

asyncio.run(main(sys.argv[1]))
"""


async def test_two_processes_open_the_schema_3_file_at_once(tmp_path: Path) -> None:
    path = copy_fixture(tmp_path)
    url = f"sqlite+aiosqlite:///{path}"
    for out in await run_twice_at_once(_OPEN, url):
        assert int(out.split()[-1]) >= 1
    assert version_of(path) == str(schema.SCHEMA_VERSION)
    assert count_rows(path, "ma_memory_entries") == 5


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
async def test_schema_3_postgres_database_with_memory_is_upgraded(db_url: str) -> None:
    """PostgreSQL: a database brought back to schema 3 with an older memory layout."""
    async with DatabaseSessionService(db_url) as store:
        memory = DatabaseMemoryService(store)
        s1 = await store.create_session(app_name="app", user_id="ann", session_id="s1")
        await store.append_event(s1, text_event("I want a red wine", author="user"))
        await store.append_event(s1, text_event("Try a Rioja", author="manager"))
        await memory.add_session_to_memory(s1)
        await memory.close()

        def downgrade(conn) -> None:
            conn.execute(text("ALTER TABLE ma_memory_sessions DROP COLUMN incarnation"))
            conn.execute(text("UPDATE ma_meta SET value='3' WHERE key='schema_version'"))

        await store.backend.run(downgrade, write=True)
    async with DatabaseSessionService(db_url) as store:
        await store.prepare()

        def state(conn) -> tuple[str, set[str]]:
            version = conn.execute(
                text("SELECT value FROM ma_meta WHERE key='schema_version'")).scalar()
            cols = {c["name"] for c in inspect(conn).get_columns("ma_memory_sessions")}
            return version, cols

        version, cols = await store.backend.run(state, write=False)
        assert version == str(schema.SCHEMA_VERSION) and "incarnation" in cols
        memory = DatabaseMemoryService(store)
        assert sorted(await found(memory, "ann", "which wine")) == [
            "I want a red wine", "Try a Rioja"]
        s1 = await store.get_session(app_name="app", user_id="ann", session_id="s1")
        await store.append_event(s1, text_event("and a cheese?", author="user"))
        await memory.add_session_to_memory(s1)  # from the kept watermark: one new entry
        assert await found(memory, "ann", "cheese") == ["and a cheese?"]
        assert len(await found(memory, "ann", "wine Rioja cheese")) == 3
        await memory.close()
