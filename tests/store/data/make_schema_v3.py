"""Builds ``schema_v3.db``: run from the repository root at commit 2f4a50a (schema 3)::

    python tests/store/data/make_schema_v3.py tests/store/data/schema_v3.db

Two users' sessions, and a DatabaseMemoryService on the store that indexed them (five memory
entries, two watermarks); the file is left in rollback-journal mode, vacuumed.
"""

import asyncio
import sqlite3
import sys
from pathlib import Path

from multi_agent import DatabaseSessionService
from multi_agent.memory import DatabaseMemoryService
from tests.helpers import text_event


async def build(out: str) -> None:
    async with DatabaseSessionService(f"sqlite+aiosqlite:///{out}") as store:
        memory = DatabaseMemoryService(store)
        s1 = await store.create_session(app_name="app", user_id="ann", session_id="s1",
                                        state={"user:name": "Ann", "app:motd": "hi"})
        ts = 1_700_000_000.0
        turns = [("I want a red wine for dinner", "Try a Rioja or a Chianti"),
                 ("what about my puppy Rex", "Rex will love the beach")]
        for i, (q, a) in enumerate(turns):
            inv = f"r{i + 1}"
            await store.append_event(s1, text_event(q, author="user", invocation_id=inv,
                                                    timestamp=ts + 2 * i))
            await store.append_event(s1, text_event(a, author="manager", invocation_id=inv,
                                                    timestamp=ts + 2 * i + 1,
                                                    state={"n": i + 1}))
        await memory.add_session_to_memory(s1)
        s2 = await store.create_session(app_name="app", user_id="bob", session_id="s2")
        await store.append_event(s2, text_event("hello nvidia", author="user", invocation_id="b1",
                                                timestamp=ts + 10))
        await memory.add_session_to_memory(s2)
        await memory.close()


def main(out: str) -> None:
    Path(out).unlink(missing_ok=True)
    asyncio.run(build(out))
    conn = sqlite3.connect(out)
    conn.execute("PRAGMA journal_mode=DELETE")
    conn.execute("VACUUM")
    print(conn.execute("SELECT value FROM ma_meta WHERE key='schema_version'").fetchone(),
          conn.execute("SELECT count(*) FROM ma_memory_entries").fetchone())
    conn.close()


if __name__ == "__main__":
    main(sys.argv[1])
