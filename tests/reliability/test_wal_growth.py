"""WAL growth: a long reader lets the ``-wal`` grow; once it ends, the space comes back.

While a read transaction stays open (here: another ``sqlite3`` connection that did ``BEGIN;
SELECT ...`` and holds it), SQLite's checkpoints cannot reset the write-ahead log, so every
append adds its pages to the end of the ``-wal``: 3,000 appends grew it from 4 to 115 MB, and
without ``journal_size_limit`` the file kept that size until the service closed. The backend
sets ``PRAGMA journal_size_limit`` (``backend.SQLITE_WAL_LIMIT_BYTES``) on every connection, so
once the reader ends, a few appends checkpoint the log, restart it and truncate it back under
the limit — while the service stays open — and no acknowledged append is lost on the way.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from multi_agent import DatabaseSessionService
from multi_agent.errors import InvalidValueError
from multi_agent.store import backend
from tests.helpers import text_event

from ._util import sqlite_check

APPENDS_WHILE_READING = 3_000
APPENDS_AFTER = 5


def wal_size(path: Path) -> int:
    wal = Path(f"{path}-wal")
    return wal.stat().st_size if wal.exists() else 0


async def test_wal_shrinks_after_a_long_reader_ends(tmp_path: Path) -> None:
    path = tmp_path / "data.db"
    url = f"sqlite+aiosqlite:///{path}"
    limit = backend.SQLITE_WAL_LIMIT_BYTES
    store = DatabaseSessionService(url)
    acked: list[str] = []
    try:
        session = await store.create_session(app_name="app", user_id="u")
        first = text_event("before the reader")
        await store.append_event(session, first)
        acked.append(first.id)

        reader = sqlite3.connect(path, isolation_level=None)
        reader.execute("BEGIN")
        (seen,) = reader.execute("SELECT COUNT(*) FROM ma_events").fetchone()
        assert seen == 1
        t0 = time.monotonic()
        for i in range(APPENDS_WHILE_READING):
            event = text_event(f"while the reader holds its snapshot {i} " + "x" * 200)
            await store.append_event(session, event)
            acked.append(event.id)
        grown = wal_size(path)
        # The reader still sees its snapshot; the log could not be reset under it.
        assert reader.execute("SELECT COUNT(*) FROM ma_events").fetchone() == (1,)
        assert grown > limit, f"the -wal grew only to {grown} bytes (limit {limit})"
        reader.execute("COMMIT")
        reader.close()

        sizes = []
        for i in range(APPENDS_AFTER):
            event = text_event(f"after the reader {i}")
            await store.append_event(session, event)
            acked.append(event.id)
            sizes.append(wal_size(path))
        elapsed = time.monotonic() - t0
        assert sizes[-1] <= limit, (
            f"the -wal is still {sizes[-1]} bytes after the reader ended and {APPENDS_AFTER} "
            f"appends (grew to {grown}; sizes after each append {sizes}; limit {limit})"
        )
        print(
            f"\n-wal grew to {grown / 2**20:.1f} MiB during {APPENDS_WHILE_READING} appends "
            f"({elapsed:.1f} s); after the reader ended: {[round(s / 2**20, 2) for s in sizes]} "
            f"MiB (limit {limit / 2**20:.0f} MiB)"
        )
    finally:
        await store.close()

    assert wal_size(path) <= limit
    sqlite_check(path)
    async with DatabaseSessionService(url) as fresh:
        stored = await fresh.get_session(app_name="app", user_id="u", session_id=session.id)
        assert stored is not None
        assert [e.id for e in stored.events] == acked


async def test_wal_limit_is_set_on_every_connection_and_can_be_overridden(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'data.db'}"

    def limit(conn) -> int:
        return conn.execute(text("PRAGMA journal_size_limit")).scalar()

    default = backend.open_backend(url, None)
    other = backend.open_backend(url, None, sqlite_wal_limit_bytes=1 << 20)
    try:
        assert await default.run(limit, write=False) == backend.SQLITE_WAL_LIMIT_BYTES
        assert await other.run(limit, write=False) == 1 << 20
    finally:
        await default.close()
        await other.close()
    for bad in (-2, 1.5, True, "8M"):
        with pytest.raises(InvalidValueError):
            backend.open_backend(url, None, sqlite_wal_limit_bytes=bad)
