"""Two SQLite findings of issue 18, fixed in ``store/dialects/sqlite.py``:

* ``ma_memory_entries.id`` is ``INTEGER PRIMARY KEY AUTOINCREMENT`` in a new database, so a
  deleted entry's id is never given to the next entry: a repeated ``delete_memory(id)`` (a
  retried request, a stale page of the web UI) cannot delete another memory. (A memory table
  made before this keeps SQLite's reuse of the newest id; PostgreSQL's identity column never
  reuses one.)
* ``sqlite_pragmas={"auto_vacuum": "INCREMENTAL"}`` takes effect on a new file: it runs before
  ``journal_mode=WAL``, which writes the file's header (after that SQLite takes ``auto_vacuum``
  only with a ``VACUUM``).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from multi_agent import DatabaseSessionService
from multi_agent.memory import DatabaseMemoryService
from tests.conftest import fresh_pg_database
from tests.helpers import text_event


@pytest.fixture(params=["sqlite_file", "postgres"])
async def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite_file":
        return f"sqlite+aiosqlite:///{tmp_path / 'store.db'}"
    return await fresh_pg_database()


async def test_a_deleted_memory_id_is_never_given_to_another(url: str, app_name: str) -> None:
    async with DatabaseSessionService(url) as store:
        memory = DatabaseMemoryService(store, search="fulltext")
        try:
            session = await store.create_session(app_name=app_name, user_id="ann")
            for words in ("wombat one", "wombat two"):
                await store.append_event(session, text_event(words, author="user"))
            await memory.add_session_to_memory(session)
            found = await memory.search_memory(app_name=app_name, user_id="ann",
                                               query="wombat")
            by_id = {int(m.id): m.content.parts[0].text for m in found.memories}
            newest = max(by_id)
            other = by_id[min(by_id)]
            await memory.delete_memory(app_name=app_name, user_id="ann", memory_id=str(newest))
            await store.append_event(session, text_event("wombat three", author="user"))
            await memory.add_session_to_memory(session)
            # The same delete again (a retry) must not remove "wombat three".
            await memory.delete_memory(app_name=app_name, user_id="ann", memory_id=str(newest))
            found = await memory.search_memory(app_name=app_name, user_id="ann",
                                               query="wombat")
            texts = {m.content.parts[0].text for m in found.memories}
            assert texts == {other, "wombat three"}
        finally:
            await memory.close()


async def test_auto_vacuum_through_sqlite_pragmas_on_a_new_file(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    url = f"sqlite+aiosqlite:///{path}"
    async with DatabaseSessionService(url, sqlite_pragmas={"auto_vacuum": "INCREMENTAL"}) as s:
        await s.create_session(app_name="a", user_id="u")
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA auto_vacuum").fetchone()[0] == 2  # INCREMENTAL
