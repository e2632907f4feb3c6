"""Memory follows the sessions it was made from (issue "No lost update at any scope", item 8).

* Deleting a session removes its memory entries, their vectors and its watermark in the same
  transaction, when the memory tables are in the session store's database; a database without
  them is not touched, and a memory service that creates them later is still seen.
* A session re-created under a deleted session's id is indexed afresh (the watermark records the
  incarnation it belongs to), also when the old rows survived the delete: memory on another
  database, or a delete by an older version.

Each test runs on a SQLite file, SQLite in memory and PostgreSQL, with the store and the memory
on one database as ``build_runner`` sets them up, unless it says otherwise.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import inspect, text

from multi_agent import DatabaseSessionService
from multi_agent.memory import DatabaseMemoryService, MiniLMEmbedder
from multi_agent.memory import tables as t
from multi_agent.store.backend import Backend
from tests.conftest import fresh_pg_database
from tests.helpers import text_event

OLD = [
    ("user", "My sister Zelda moves to Reykjavik in March."),
    ("historian", "Reykjavik in March is cold; Zelda should pack wool sweaters."),
    ("user", "Zelda also adopted a parrot called Quincy."),
]
NEW = [
    ("user", "I am planning a kayak trip to Lofoten."),
    ("historian", "Lofoten kayak routes are best in July."),
]


async def texts(memory: DatabaseMemoryService, app: str, user: str, query: str) -> list[str]:
    found = await memory.search_memory(app_name=app, user_id=user, query=query)
    return [m.content.parts[0].text for m in found.memories]


async def remembered(memory: DatabaseMemoryService, app: str, user: str) -> list[str]:
    """Every text the user's memory finds for words of both conversations."""
    out: set[str] = set()
    for query in ("Zelda Reykjavik parrot Quincy sweaters", "kayak Lofoten July trip"):
        out.update(await texts(memory, app, user, query))
    return sorted(out)


async def rows(backend: Backend, table: str, **where: Any) -> int:
    clause = " AND ".join(f"{k} = :{k}" for k in where) or "1 = 1"
    return await backend.run(
        lambda conn: conn.execute(
            text(f"SELECT count(*) FROM {table} WHERE {clause}"), where
        ).scalar_one(),
        write=False,
    )


async def memory_rows(backend: Backend, app: str, user: str, session_id: str) -> dict[str, int]:
    key = {"app_name": app, "user_id": user}
    return {
        "entries": await rows(backend, "ma_memory_entries", **key, session_id=session_id),
        "watermarks": await rows(backend, "ma_memory_sessions", **key, session_id=session_id),
        "vectors": await rows(backend, "ma_memory_vectors", **key),
    }


async def has_memory_tables(backend: Backend) -> bool:
    return await backend.run(
        lambda conn: inspect(conn).has_table("ma_memory_entries"), write=False
    )


async def converse(store: DatabaseSessionService, app: str, user: str, session_id: str,
                   lines: list[tuple[str, str]]):
    session = await store.get_session(app_name=app, user_id=user, session_id=session_id)
    if session is None:
        session = await store.create_session(app_name=app, user_id=user, session_id=session_id)
    for author, line in lines:
        await store.append_event(session, text_event(line, author=author))
    return session


# -- (a) delete removes the session's memory ---------------------------------------------------


async def test_deleting_a_session_forgets_its_memory(
    store: DatabaseSessionService, memory: DatabaseMemoryService, app_name: str
) -> None:
    await converse(store, app_name, "ann", "keep", NEW)
    doomed = await converse(store, app_name, "ann", "doomed", OLD)
    await memory.add_session_to_memory(doomed)
    await memory.add_session_to_memory(
        await store.get_session(app_name=app_name, user_id="ann", session_id="keep")
    )
    assert len(await remembered(memory, app_name, "ann")) == 5

    await store.delete_session(app_name=app_name, user_id="ann", session_id="doomed")

    assert await remembered(memory, app_name, "ann") == sorted(line for _, line in NEW)
    counts = await memory_rows(store.backend, app_name, "ann", "doomed")
    assert counts["entries"] == 0 and counts["watermarks"] == 0
    # Adding the stale copy again does not bring the deleted session back.
    await memory.add_session_to_memory(doomed)
    assert await remembered(memory, app_name, "ann") == sorted(line for _, line in NEW)
    assert (await memory_rows(store.backend, app_name, "ann", "doomed"))["entries"] == 0


async def test_deleting_a_session_removes_its_vectors(
    store: DatabaseSessionService, app_name: str, minilm: MiniLMEmbedder
) -> None:
    memory = DatabaseMemoryService(store, search="hybrid", embedder=minilm)
    doomed = await converse(store, app_name, "ann", "doomed", OLD)
    await memory.add_session_to_memory(doomed)
    assert (await memory_rows(store.backend, app_name, "ann", "doomed"))["vectors"] == 3
    # Found by meaning alone before the delete ("bird" is in none of the messages).
    assert OLD[2][1] in await texts(memory, app_name, "ann", "which pet bird does she have?")

    await store.delete_session(app_name=app_name, user_id="ann", session_id="doomed")

    assert await memory_rows(store.backend, app_name, "ann", "doomed") == {
        "entries": 0, "watermarks": 0, "vectors": 0,
    }
    assert await texts(memory, app_name, "ann", "which pet bird does she have?") == []
    assert await remembered(memory, app_name, "ann") == []


# -- (b) a re-created session is indexed afresh -----------------------------------------------


async def test_a_recreated_session_is_indexed_afresh(
    store: DatabaseSessionService, memory: DatabaseMemoryService, app_name: str
) -> None:
    old = await converse(store, app_name, "ann", "s1", OLD)
    await memory.add_session_to_memory(old)
    await store.delete_session(app_name=app_name, user_id="ann", session_id="s1")
    # Fewer events than before: every new seq is at or below the old session's watermark.
    new = await converse(store, app_name, "ann", "s1", NEW)
    await memory.add_session_to_memory(new)

    assert await remembered(memory, app_name, "ann") == sorted(line for _, line in NEW)
    assert (await memory_rows(store.backend, app_name, "ann", "s1"))["entries"] == 2


async def test_a_watermark_of_another_incarnation_is_dropped(
    store: DatabaseSessionService, memory: DatabaseMemoryService, app_name: str
) -> None:
    """The old rows survived the delete (a delete by an older version, or by hand): the
    watermark's incarnation differs from the session's, so the old entries go and the new
    session is indexed from its first event."""
    old = await converse(store, app_name, "ann", "s1", OLD)
    await memory.add_session_to_memory(old)
    key = {"app_name": app_name, "user_id": "ann", "session_id": "s1"}

    def delete_without_memory(conn) -> None:
        for table, column in (("ma_events", "session_id"), ("ma_runs", "session_id"),
                              ("ma_sessions", "id")):
            conn.execute(
                text(f"DELETE FROM {table} WHERE app_name = :app_name AND user_id = :user_id "
                     f"AND {column} = :session_id"), key,
            )

    await store.backend.run(delete_without_memory, write=True)
    assert (await memory_rows(store.backend, app_name, "ann", "s1"))["entries"] == 3
    new = await converse(store, app_name, "ann", "s1", NEW)
    await memory.add_session_to_memory(new)

    assert await remembered(memory, app_name, "ann") == sorted(line for _, line in NEW)
    # Later turns continue from the new watermark.
    await converse(store, app_name, "ann", "s1", [("user", "Pack a drysuit for the kayak.")])
    await memory.add_session_to_memory(
        await store.get_session(app_name=app_name, user_id="ann", session_id="s1")
    )
    assert "Pack a drysuit for the kayak." in await texts(memory, app_name, "ann", "drysuit")
    assert (await memory_rows(store.backend, app_name, "ann", "s1"))["entries"] == 3


async def other_database(backend: str, tmp_path) -> str:
    if backend == "postgres":
        return await fresh_pg_database()
    return f"sqlite+aiosqlite:///{tmp_path / 'memory.db'}"


async def test_memory_on_another_database_replaces_a_recreated_session(
    store: DatabaseSessionService, backend: str, tmp_path, app_name: str
) -> None:
    """The delete cannot reach another database: the deleted session's entries stay until the
    session re-created under its id is added (they are replaced) or ``forget_session``."""
    memory = DatabaseMemoryService(await other_database(backend, tmp_path))
    try:
        old = await converse(store, app_name, "ann", "s1", OLD)
        await memory.add_session_to_memory(old)
        await store.delete_session(app_name=app_name, user_id="ann", session_id="s1")
        assert len(await remembered(memory, app_name, "ann")) == 3  # out of reach
        new = await converse(store, app_name, "ann", "s1", NEW)
        await memory.add_session_to_memory(new)
        assert await remembered(memory, app_name, "ann") == sorted(line for _, line in NEW)
        # Adding a stale copy of the old incarnation afterwards does not mix them again.
        await memory.add_session_to_memory(old)
        assert await remembered(memory, app_name, "ann") == sorted(line for _, line in OLD)
        await memory.add_session_to_memory(new)
        assert await remembered(memory, app_name, "ann") == sorted(line for _, line in NEW)

        gone = await converse(store, app_name, "ann", "s2", [("user", "Zelda likes figs.")])
        await memory.add_session_to_memory(gone)
        await store.delete_session(app_name=app_name, user_id="ann", session_id="s2")
        assert await memory.forget_session(app_name=app_name, user_id="ann",
                                           session_id="s2") == 1
        assert await texts(memory, app_name, "ann", "figs") == []
        assert await memory_rows(memory.backend, app_name, "ann", "s2") == {
            "entries": 0, "watermarks": 0, "vectors": 0,
        }
    finally:
        await memory.close()


# -- (c) a database without memory --------------------------------------------------------------


async def test_delete_without_memory_tables_and_memory_that_comes_later(
    store: DatabaseSessionService, app_name: str
) -> None:
    await converse(store, app_name, "ann", "s1", OLD)
    await store.delete_session(app_name=app_name, user_id="ann", session_id="s1")
    await store.delete_session(app_name=app_name, user_id="ann", session_id="never")
    assert await store.get_session(app_name=app_name, user_id="ann", session_id="s1") is None
    assert not await has_memory_tables(store.backend)  # the delete created nothing

    # The same service's connections saw no memory tables; a memory service creates them now,
    # and the next delete still finds them.
    memory = DatabaseMemoryService(store)
    s2 = await converse(store, app_name, "ann", "s2", NEW)
    await memory.add_session_to_memory(s2)
    assert len(await remembered(memory, app_name, "ann")) == 2
    await store.delete_session(app_name=app_name, user_id="ann", session_id="s2")
    assert await remembered(memory, app_name, "ann") == []
    assert await memory_rows(store.backend, app_name, "ann", "s2") == {
        "entries": 0, "watermarks": 0, "vectors": 0,
    }


async def test_forget_session_on_a_database_without_memory_tables(
    store: DatabaseSessionService, app_name: str
) -> None:
    await store.prepare()
    key = {"app_name": app_name, "user_id": "ann", "session_id": "x"}
    assert await store.backend.run(lambda conn: t.forget_session(conn, **key), write=True) == 0
    assert not await has_memory_tables(store.backend)


# -- (d) a memory service created after the session service -----------------------------------


async def test_memory_with_its_own_engine_on_the_store_database(
    store: DatabaseSessionService, backend: str, db_url: str, app_name: str
) -> None:
    """A memory service opened later from the store's URL (its own engine, other connections)
    on the same database: the session service's delete removes its rows."""
    if backend == "sqlite_memory":
        pytest.skip("an in-memory SQLite database cannot be opened twice")
    s1 = await converse(store, app_name, "ann", "s1", OLD)
    await store.delete_session(app_name=app_name, user_id="ann", session_id="other")
    memory = DatabaseMemoryService(db_url)
    try:
        await memory.add_session_to_memory(s1)  # indexed from the stored events
        assert len(await remembered(memory, app_name, "ann")) == 3
        await store.delete_session(app_name=app_name, user_id="ann", session_id="s1")
        assert await remembered(memory, app_name, "ann") == []
        assert await memory_rows(memory.backend, app_name, "ann", "s1") == {
            "entries": 0, "watermarks": 0, "vectors": 0,
        }
        new = await converse(store, app_name, "ann", "s1", NEW)
        await memory.add_session_to_memory(new)
        assert await remembered(memory, app_name, "ann") == sorted(line for _, line in NEW)
    finally:
        await memory.close()


# -- the delete and indexing do not race --------------------------------------------------------


async def test_concurrent_indexing_and_delete_leave_nothing_behind(
    store: DatabaseSessionService, memory: DatabaseMemoryService, app_name: str
) -> None:
    await memory.prepare()
    for i in range(8):
        session = await converse(store, app_name, "ann", f"race{i}", OLD)
        await asyncio.gather(
            memory.add_session_to_memory(session),
            store.delete_session(app_name=app_name, user_id="ann", session_id=f"race{i}"),
        )
        assert await memory_rows(store.backend, app_name, "ann", f"race{i}") == {
            "entries": 0, "watermarks": 0, "vectors": 0,
        }
    assert await remembered(memory, app_name, "ann") == []


# -- an existing database gets the watermark's incarnation column ------------------------------


async def test_memory_tables_of_an_older_version_are_upgraded(
    store: DatabaseSessionService, app_name: str
) -> None:
    """``ma_memory_sessions`` as the memory of the previous version made it (no incarnation)."""
    await store.prepare()

    def old_setup(conn) -> None:
        conn.exec_driver_sql(
            "CREATE TABLE ma_memory_sessions (app_name VARCHAR(256) NOT NULL, "
            "user_id VARCHAR(256) NOT NULL, session_id VARCHAR(256) NOT NULL, "
            "indexed_seq BIGINT NOT NULL, PRIMARY KEY (app_name, user_id, session_id))"
        )

    def columns(conn) -> set[str]:
        return {c["name"] for c in inspect(conn).get_columns("ma_memory_sessions")}

    await store.backend.run(old_setup, write=True)
    s1 = await converse(store, app_name, "ann", "s1", NEW)
    memory = DatabaseMemoryService(store)
    await memory.add_session_to_memory(s1)
    assert "incarnation" in await store.backend.run(columns, write=False)
    assert await remembered(memory, app_name, "ann") == sorted(line for _, line in NEW)
    await store.delete_session(app_name=app_name, user_id="ann", session_id="s1")
    assert await remembered(memory, app_name, "ann") == []
