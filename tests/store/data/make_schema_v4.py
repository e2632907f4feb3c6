"""Builds ``schema_v4.db``: run from the repository root at commit 607de54 (schema 4)::

    python tests/store/data/make_schema_v4.py tests/store/data/schema_v4.db

Two users of app ``app`` and one of ``other``: a session with two runs, a branch (a run off
the path), ``user:`` and ``app:`` state, a DatabaseMemoryService on the store that indexed
them (memory entries and watermarks). Every session's update time is fixed, so the order of a
listing is known. The file is left in rollback-journal mode, vacuumed.
"""

import asyncio
import sqlite3
import sys
from pathlib import Path

from multi_agent import DatabaseSessionService
from multi_agent.memory import DatabaseMemoryService
from tests.helpers import text_event

TS = 1_700_000_000.0


async def build(out: str) -> None:
    async with DatabaseSessionService(f"sqlite+aiosqlite:///{out}") as store:
        memory = DatabaseMemoryService(store)
        s1 = await store.create_session(app_name="app", user_id="ann", session_id="s1",
                                        state={"user:name": "Ann", "app:motd": "hi"})
        turns = [("I want a red wine for dinner", "Try a Rioja or a Chianti"),
                 ("what about my puppy Rex", "Rex will love the beach")]
        for i, (q, a) in enumerate(turns):
            inv = f"r{i + 1}"
            await store.append_event(s1, text_event(q, author="user", invocation_id=inv,
                                                    timestamp=TS + 2 * i))
            await store.append_event(s1, text_event(a, author="manager", invocation_id=inv,
                                                    timestamp=TS + 2 * i + 1,
                                                    state={"n": i + 1, "user:count": i + 1}))
        await store.branch(app_name="app", user_id="ann", session_id="s1", from_run_id="r1")
        s1 = await store.get_session(app_name="app", user_id="ann", session_id="s1")
        await store.append_event(s1, text_event("or a white one?", author="user",
                                                invocation_id="r3", timestamp=TS + 5))
        await memory.add_session_to_memory(s1)
        s2 = await store.create_session(app_name="app", user_id="ann", session_id="s2")
        await store.append_event(s2, text_event("second session", author="user",
                                                invocation_id="a1", timestamp=TS + 6))
        s3 = await store.create_session(app_name="app", user_id="bob", session_id="s3")
        await store.append_event(s3, text_event("hello nvidia", author="user",
                                                invocation_id="b1", timestamp=TS + 10))
        await memory.add_session_to_memory(s3)
        await store.create_session(app_name="other", user_id="ann", session_id="o1")
        await memory.close()


def main(out: str) -> None:
    Path(out).unlink(missing_ok=True)
    asyncio.run(build(out))
    conn = sqlite3.connect(out)
    # Known update times (newest first: s3, s2, s1 in app; o1 in other).
    for sid, t in (("s1", TS + 100), ("s2", TS + 200), ("s3", TS + 300), ("o1", TS + 400)):
        conn.execute("UPDATE ma_sessions SET update_time=? WHERE id=?", (t, sid))
    conn.commit()
    conn.execute("PRAGMA journal_mode=DELETE")
    conn.execute("VACUUM")
    print(conn.execute("SELECT value FROM ma_meta WHERE key='schema_version'").fetchone(),
          conn.execute("SELECT count(*) FROM ma_events").fetchone(),
          conn.execute("SELECT count(*) FROM ma_runs").fetchone(),
          conn.execute("SELECT count(*) FROM ma_memory_entries").fetchone())
    conn.close()


if __name__ == "__main__":
    main(sys.argv[1])
