"""A user worth forgetting, another who keeps everything, and scans that look for traces."""

from __future__ import annotations

import os
import sqlite3
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection

from multi_agent import DatabaseSessionService
from multi_agent.memory import DatabaseMemoryService
from multi_agent.store.forget import STORE_TABLES
from multi_agent.store.memory_tables import MEMORY_TABLES, scope_token
from tests.helpers import text_event

ALL_TABLES = (*STORE_TABLES, *MEMORY_TABLES)


def new_user(name: str) -> tuple[str, str]:
    """A unique user id and a unique phrase they say: words no other row holds (an odd start,
    so that no neighbouring term in the FTS5 index shares a prefix with it)."""
    tag = uuid.uuid4().hex[:10]
    return f"{name}-{tag}", f"xqj{tag}wombatvelvet"


async def populate(
    store: DatabaseSessionService, memory: DatabaseMemoryService, app: str, user: str,
    phrase: str, *, sessions: int = 3,
) -> None:
    """Sessions with runs and events, user: and session state, memory (with vectors when the
    memory is semantic), all naming ``phrase``."""
    for n in range(sessions):
        session = await store.create_session(
            app_name=app, user_id=user, session_id=f"{user}-s{n}",
            state={"user:nickname": f"{phrase} the user", "topic": f"{phrase} topic {n}"},
        )
        for turn in range(3):
            run = f"inv-{user}-{n}-{turn}"
            await store.append_event(session, text_event(
                f"My secret word is {phrase}, turn {turn}.", author="user", invocation_id=run))
            await store.append_event(session, text_event(
                f"I will remember {phrase} for you ({turn}).", author="helper",
                invocation_id=run, state={"user:last_word": phrase}))
        await memory.add_session_to_memory(session)


async def counts(store: DatabaseSessionService, app: str, user: str) -> dict[str, int]:
    """Rows of the user in every table that can hold them."""
    def count(conn: Connection) -> dict[str, int]:
        out = {}
        for table in ALL_TABLES:
            out[table] = int(conn.execute(
                text(f"SELECT count(*) FROM {table} WHERE app_name = :app AND user_id = :user"),
                {"app": app, "user": user}).scalar() or 0)
        return out

    return await store.backend.run(count, write=False)


async def table_hits(store: DatabaseSessionService, needles: list[str]) -> set[tuple[str, str]]:
    """``(table, needle)`` for every table of the database (all columns, as text; SQLite: also
    the FTS5 shadow tables, blobs as bytes) where a row holds a needle (any case)."""
    lowered = [n.lower() for n in needles]

    def scan(conn: Connection) -> set[tuple[str, str]]:
        hits: set[tuple[str, str]] = set()
        if conn.dialect.name == "sqlite":
            names = conn.exec_driver_sql(
                "SELECT name FROM sqlite_master WHERE type = 'table'").scalars().all()
            for name in names:
                for row in conn.exec_driver_sql(f'SELECT * FROM "{name}"'):
                    text = "\x00".join(
                        v.decode("latin-1") if isinstance(v, bytes) else str(v) for v in row
                    ).lower()
                    hits.update((name, n) for n in lowered if n in text)
        else:
            names = conn.exec_driver_sql(
                "SELECT table_name FROM information_schema.tables "
                "WHERE table_schema = current_schema()").scalars().all()
            for name in names:
                for (text,) in conn.exec_driver_sql(f'SELECT t::text FROM "{name}" AS t'):
                    hits.update((name, n) for n in lowered if n in text.lower())
        return hits

    return await store.backend.run(scan, write=False)


def file_hits(db: Path, needles: list[str]) -> set[tuple[str, str]]:
    """``(file, needle)`` for the database file and its ``-wal`` (raw bytes, any case)."""
    hits: set[tuple[str, str]] = set()
    for path in (db, Path(f"{db}-wal")):
        if not path.exists():
            continue
        data = path.read_bytes().lower()
        hits.update((path.name, n) for n in needles if n.lower().encode() in data)
    return hits


def checkpoint(db: Path) -> None:
    """Moves the -wal into the file (for the control scan before the forget)."""
    raw = sqlite3.connect(db, isolation_level=None)
    try:
        raw.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
    finally:
        raw.close()


def needles_of(app: str, user: str, phrase: str) -> list[str]:
    """What must not survive: the user id, the phrase, the phrase without its first letters
    (an FTS5 term is stored after the prefix it shares with the previous term), and the
    user's full-text scope token (every memory entry of the user puts it in the index)."""
    token = scope_token(app, user)
    return [user, phrase, phrase[3:], token, token[3:]]


def sqlite_file(store: DatabaseSessionService) -> Path | None:
    path = store.backend.sqlite_path
    return Path(path) if path and os.path.exists(path) else None


def any_of(report_rows: dict[str, Any]) -> int:
    return sum(report_rows.values())
