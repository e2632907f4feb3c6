"""Upgrading a database written by an earlier schema, in place.

``data/schema_v1.db`` was written by the schema-1 store (the commit before schema 2; built by
a script like the one in this file's history: two users, a branched session, user: and app:
state). Opening it upgrades it to the current schema in place; everything reads back, and the
concurrency control of schema 2 works on the old rows.
"""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import text

from multi_agent import DatabaseSessionService
from multi_agent.errors import EventIdConflict, StaleSession
from multi_agent.store import schema
from tests.helpers import text_event

FIXTURE = Path(__file__).parent / "data" / "schema_v1.db"


async def check_upgraded(store: DatabaseSessionService) -> None:
    s1 = await store.get_session(app_name="app", user_id="ann", session_id="s1")
    assert [e.content.parts[0].text for e in s1.events] == ["q1", "a1", "q2", "a2"]
    assert s1.state["n"] == 2 and s1.state["user:name"] == "Ann"
    assert s1.state["app:motd"] == "hi" and s1.state["user:count"] == 3
    runs = {r.run_id: r for r in await store.list_runs(
        app_name="app", user_id="ann", session_id="s1")}
    assert runs["r2"].is_head and not runs["r3"].on_path
    # Old rows take part in the new checks: a stale user: write is refused...
    s2 = await store.get_session(app_name="app", user_id="ann", session_id="s1")
    await store.append_event(s1, text_event("x", state={"user:count": 4}))
    other = await store.create_session(app_name="app", user_id="ann")
    await store.append_event(other, text_event("y", state={"user:count": 10}))
    with pytest.raises(StaleSession):
        await store.append_event(s2, text_event("z", state={"user:count": 5}))
    # ...an old event id reused for another event is refused, a retry of it is a no-op.
    fresh = await store.get_session(app_name="app", user_id="ann", session_id="s1")
    old_event = fresh.events[0]
    await store.append_event(fresh, old_event)
    impostor = text_event("impostor")
    impostor.id = old_event.id
    with pytest.raises(EventIdConflict):
        await store.append_event(fresh, impostor)
    bob = await store.get_session(app_name="app", user_id="bob", session_id="s2")
    assert [e.content.parts[0].text for e in bob.events] == ["hello"]


async def test_schema_1_sqlite_file_is_upgraded_in_place(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    shutil.copy(FIXTURE, path)
    async with DatabaseSessionService(f"sqlite+aiosqlite:///{path}") as store:
        await check_upgraded(store)
    with sqlite3.connect(path) as conn:
        version = conn.execute("SELECT value FROM ma_meta WHERE key='schema_version'").fetchone()
        columns = {r[1] for r in conn.execute("PRAGMA table_info(ma_sessions)")}
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert version == (str(schema.SCHEMA_VERSION),)
    assert {"incarnation", "branch_rev", "key_revs"} <= columns
    # Opening again is a no-op.
    async with DatabaseSessionService(f"sqlite+aiosqlite:///{path}") as store:
        got = await store.get_session(app_name="app", user_id="bob", session_id="s2")
        assert len(got.events) == 1


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
async def test_schema_1_postgres_database_is_upgraded_in_place(db_url: str) -> None:
    """PostgreSQL: the fixture's rows copied into a database with the schema-1 tables."""
    async with DatabaseSessionService(db_url) as store:
        await store.prepare()

        def downgrade(conn) -> None:  # back to exactly schema 1's columns
            for table, cols in (
                ("ma_app_states", ("revision", "key_revs")),
                ("ma_user_states", ("revision", "key_revs")),
                ("ma_sessions", ("incarnation", "branch_rev", "key_revs")),
                ("ma_events", ("digest",)),
            ):
                for col in cols:
                    conn.execute(text(f"ALTER TABLE {table} DROP COLUMN {col}"))
            conn.execute(text("UPDATE ma_meta SET value='1' WHERE key='schema_version'"))
            with sqlite3.connect(FIXTURE) as old:
                for table in ("ma_app_states", "ma_user_states", "ma_sessions", "ma_events",
                              "ma_runs"):
                    cur = old.execute(f"SELECT * FROM {table}")
                    names = [d[0] for d in cur.description]
                    for row in cur:
                        values = dict(zip(names, row, strict=True))
                        for key in ("final", "on_path"):
                            if key in values:
                                values[key] = bool(values[key])
                        cols = ", ".join(names)
                        marks = ", ".join(f":{n}" for n in names)
                        conn.execute(text(f"INSERT INTO {table} ({cols}) VALUES ({marks})"),
                                     values)

        await store.backend.run(downgrade, write=True)
    async with DatabaseSessionService(db_url) as store:
        await check_upgraded(store)
