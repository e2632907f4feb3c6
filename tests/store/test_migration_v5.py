"""Schema 5: a database written by the schema-4 store (with its memory) is upgraded in place.

``data/schema_v4.db`` was written by the code of commit 607de54 (schema 4), by
``data/make_schema_v4.py``: sessions of two users in two apps, a branched session, ``user:``
and ``app:`` state, runs, and a ``DatabaseMemoryService`` on the store that indexed them.
Step 5 adds the two ``ma_sessions`` indexes of the paged lists. The upgrade is tested on the
SQLite file and on PostgreSQL (the same rows loaded into the schema-4 tables), each time by
two OS processes opening the database at once. The older fixtures upgrade all the way, and a
database the memory alone set up has its version row (the issue-14 leftovers).
"""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import inspect, text

from multi_agent import DatabaseSessionService
from multi_agent.errors import SchemaVersionError
from multi_agent.memory import DatabaseMemoryService
from multi_agent.store import schema
from tests.helpers import run_twice_at_once, text_event

DATA = Path(__file__).parent / "data"
FIXTURE = DATA / "schema_v4.db"
ROOT = Path(__file__).resolve().parents[2]
PAGE_INDEXES = {"ix_ma_sessions_user_time", "ix_ma_sessions_app_time"}
TS = 1_700_000_000.0


def sqlite_facts(path: Path) -> tuple[str | None, set[str], str]:
    """(schema_version, index names on ma_sessions, integrity check)."""
    with sqlite3.connect(path) as conn:
        row = conn.execute("SELECT value FROM ma_meta WHERE key='schema_version'").fetchone()
        indexes = {r[1] for r in conn.execute("PRAGMA index_list(ma_sessions)")}
        ok = conn.execute("PRAGMA integrity_check").fetchone()[0]
    conn.close()
    return (row[0] if row else None), indexes, ok


def test_fixture_is_schema_4_with_content() -> None:
    version, indexes, _ = sqlite_facts(FIXTURE)
    assert version == "4" and not indexes & PAGE_INDEXES
    with sqlite3.connect(FIXTURE) as conn:
        counts = {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in (
            "ma_sessions", "ma_events", "ma_runs", "ma_user_states", "ma_app_states",
            "ma_memory_entries", "ma_memory_sessions")}
    conn.close()
    assert counts == {"ma_sessions": 4, "ma_events": 7, "ma_runs": 5, "ma_user_states": 3,
                      "ma_app_states": 2, "ma_memory_entries": 4, "ma_memory_sessions": 2}


async def check_upgraded(url: str) -> None:
    """Everything the fixture holds reads back through the new code, pages included."""
    async with DatabaseSessionService(url) as store:
        s1 = await store.get_session(app_name="app", user_id="ann", session_id="s1")
        assert [e.content.parts[0].text for e in s1.events] == [
            "I want a red wine for dinner", "Try a Rioja or a Chianti", "or a white one?"]
        assert s1.state["n"] == 1 and s1.state["user:name"] == "Ann"
        assert s1.state["app:motd"] == "hi" and s1.state["user:count"] == 2
        runs = {r.run_id: r for r in await store.list_runs(
            app_name="app", user_id="ann", session_id="s1")}
        assert set(runs) == {"r1", "r2", "r3"} and not runs["r2"].on_path
        page = await store.list_sessions_page(app_name="app", page_size=2)
        assert [(s.user_id, s.id) for s in page.sessions] == [("bob", "s3"), ("ann", "s2")]
        rest = await store.list_sessions_page(app_name="app", page_size=2,
                                              page_token=page.next_page_token)
        assert [s.id for s in rest.sessions] == ["s1"] and rest.next_page_token is None
        assert [s.id for s in (await store.list_sessions_page(app_name="other")).sessions] \
            == ["o1"]
        memory = DatabaseMemoryService(store, search="fulltext")
        got = await memory.search_memory(app_name="app", user_id="ann", query="which wine")
        assert "Try a Rioja or a Chianti" in [m.content.parts[0].text for m in got.memories]
        await store.append_event(s1, text_event("and a cheese?", author="user"))
        await memory.add_session_to_memory(s1)  # from the kept watermark: one new entry
        got = await memory.search_memory(app_name="app", user_id="ann", query="cheese")
        assert [m.content.parts[0].text for m in got.memories] == ["and a cheese?"]
        await memory.close()


async def test_schema_4_sqlite_file_is_upgraded(tmp_path: Path) -> None:
    path = tmp_path / "v4.db"
    shutil.copy(FIXTURE, path)
    await check_upgraded(f"sqlite+aiosqlite:///{path}")
    version, indexes, ok = sqlite_facts(path)
    assert version == str(schema.SCHEMA_VERSION) == "5"
    assert PAGE_INDEXES <= indexes and ok == "ok"


@pytest.mark.parametrize("name", ["schema_v1.db", "schema_v3.db", "schema_v4.db"])
async def test_every_older_fixture_upgrades_all_the_way(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    shutil.copy(DATA / name, path)
    async with DatabaseSessionService(f"sqlite+aiosqlite:///{path}") as store:
        listed = await store.list_sessions(app_name="app")
        page = await store.list_sessions_page(app_name="app", page_size=1000)
        assert sorted(s.id for s in page.sessions) == sorted(s.id for s in listed.sessions)
        assert page.sessions
    version, indexes, ok = sqlite_facts(path)
    assert version == str(schema.SCHEMA_VERSION) and PAGE_INDEXES <= indexes and ok == "ok"


_OPEN = """
import asyncio, sys
from multi_agent import DatabaseSessionService
from multi_agent.memory import DatabaseMemoryService

async def main(url):
    async with DatabaseSessionService(url) as store:
        memory = DatabaseMemoryService(store, search="fulltext")
        got = await memory.search_memory(app_name="app", user_id="ann", query="wine")
        await memory.close()
        page = await store.list_sessions_page(app_name="app")
    print(len(got.memories), ",".join(s.id for s in page.sessions))

asyncio.run(main(sys.argv[1]))
"""


async def open_in_two_processes(url: str) -> None:
    for out in await run_twice_at_once(_OPEN, url):
        found, ids = out.split()[-2:]
        assert int(found) >= 1 and ids == "s3,s2,s1"


async def test_two_processes_open_the_schema_4_file_at_once(tmp_path: Path) -> None:
    path = tmp_path / "v4.db"
    shutil.copy(FIXTURE, path)
    await open_in_two_processes(f"sqlite+aiosqlite:///{path}")
    version, indexes, ok = sqlite_facts(path)
    assert version == str(schema.SCHEMA_VERSION) and PAGE_INDEXES <= indexes and ok == "ok"
    await check_upgraded(f"sqlite+aiosqlite:///{path}")


# -- PostgreSQL: the fixture's rows in the schema-4 tables --------------------------------------

_COPIED = ("ma_app_states", "ma_user_states", "ma_sessions", "ma_events", "ma_runs",
           "ma_memory_entries", "ma_memory_sessions")
_BOOLEANS = ("final", "on_path")


def load_schema_4(conn) -> None:
    """Schema 4 on PostgreSQL: today's tables without step 5's indexes, version row 4, the
    memory's tables, and every row of the SQLite fixture."""
    from multi_agent.store.dialects import dialect_for

    schema.metadata.create_all(conn)
    for name in PAGE_INDEXES:
        conn.exec_driver_sql(f"DROP INDEX {name}")
    conn.execute(schema.meta.insert(), [{"key": "schema_version", "value": "4"},
                                        {"key": "created_by", "value": "multi-agent"}])
    for statement in dialect_for("postgresql").memory_ddl():
        conn.exec_driver_sql(statement)
    with sqlite3.connect(FIXTURE) as old:
        for table in _COPIED:
            cur = old.execute(f"SELECT * FROM {table}")
            names = [d[0] for d in cur.description]
            for row in cur:
                values = dict(zip(names, row, strict=True))
                for key in _BOOLEANS:
                    if key in values:
                        values[key] = bool(values[key])
                cols = ", ".join(names)
                marks = ", ".join(f":{n}" for n in names)
                conn.execute(text(f"INSERT INTO {table} ({cols}) VALUES ({marks})"), values)
    old.close()
    conn.exec_driver_sql("SELECT setval(pg_get_serial_sequence('ma_memory_entries', 'id'), "
                         "(SELECT max(id) FROM ma_memory_entries))")


def pg_facts(conn) -> tuple[str, set[str]]:
    version = conn.execute(
        text("SELECT value FROM ma_meta WHERE key='schema_version'")).scalar()
    return version, {i["name"] for i in inspect(conn).get_indexes("ma_sessions")}


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
async def test_schema_4_postgres_database_opened_by_two_processes_at_once(db_url: str) -> None:
    loader = DatabaseSessionService(db_url)  # backend.run: no schema set-up of its own
    try:
        await loader.backend.run(load_schema_4, write=True)
        version, indexes = await loader.backend.run(pg_facts, write=False)
    finally:
        await loader.close()
    assert version == "4" and not indexes & PAGE_INDEXES
    await open_in_two_processes(db_url)
    async with DatabaseSessionService(db_url) as store:
        version, indexes = await store.backend.run(pg_facts, write=False)
    assert version == str(schema.SCHEMA_VERSION) and PAGE_INDEXES <= indexes
    await check_upgraded(db_url)


# -- the memory alone --------------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["sqlite_file", "postgres"], indirect=True)
async def test_a_database_the_memory_alone_sets_up_has_its_version_row(db_url: str) -> None:
    memory = DatabaseMemoryService(db_url, search="fulltext")
    try:
        await memory.prepare()

        def facts(conn) -> tuple[str | None, set[str]]:
            row = conn.execute(
                text("SELECT value FROM ma_meta WHERE key='schema_version'")).first()
            return (row[0] if row else None), set(inspect(conn).get_table_names())

        version, tables = await memory.backend.run(facts, write=False)
        assert version == str(schema.SCHEMA_VERSION)
        assert "ma_memory_entries" in tables and "ma_sessions" not in tables
    finally:
        await memory.close()
    # The store then sets up its own tables in that database and works.
    async with DatabaseSessionService(db_url) as store:
        s = await store.create_session(app_name="app", user_id="ann", session_id="s1")
        await store.append_event(s, text_event("hello memory", author="user"))
        memory = DatabaseMemoryService(store, search="fulltext")
        await memory.add_session_to_memory(s)
        got = await memory.search_memory(app_name="app", user_id="ann", query="memory")
        assert [m.content.parts[0].text for m in got.memories] == ["hello memory"]
        await memory.close()
        version, tables = await store.backend.run(facts, write=False)
    assert version == str(schema.SCHEMA_VERSION) and "ma_sessions" in tables


@pytest.mark.parametrize("backend", ["sqlite_file", "postgres"], indirect=True)
async def test_memory_alone_adds_the_row_to_an_older_memory_only_database_and_refuses_newer(
    db_url: str,
) -> None:
    """A memory-only database made before the fix (no ``ma_meta``) gets the row on the next
    set-up; one written by a newer multi-agent is refused, unchanged."""
    memory = DatabaseMemoryService(db_url, search="fulltext")
    await memory.prepare()
    await memory.backend.run(lambda c: c.exec_driver_sql("DROP TABLE ma_meta"), write=True)
    await memory.close()
    memory = DatabaseMemoryService(db_url, search="fulltext")
    await memory.prepare()
    row = await memory.backend.run(lambda c: c.exec_driver_sql(
        "SELECT value FROM ma_meta WHERE key='schema_version'").scalar(), write=False)
    assert row == str(schema.SCHEMA_VERSION)
    newer = str(schema.SCHEMA_VERSION + 1)
    await memory.backend.run(lambda c: c.execute(text(
        "UPDATE ma_meta SET value=:v WHERE key='schema_version'"), {"v": newer}), write=True)
    await memory.close()
    memory = DatabaseMemoryService(db_url, search="fulltext")
    try:
        with pytest.raises(SchemaVersionError, match=f"schema version {newer}"):
            await memory.prepare()
    finally:
        await memory.close()
