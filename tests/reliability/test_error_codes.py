"""SQLite failures are told apart by SQLite's result codes, not by their message text."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from multi_agent import DatabaseSessionService


def error(message: str, code: int) -> sqlite3.OperationalError:
    exc = sqlite3.OperationalError(message)
    exc.sqlite_errorcode = code
    exc.sqlite_errorname = "?"
    return exc


@pytest.mark.parametrize(("code", "cause"), [
    (5, "locked"),  # SQLITE_BUSY
    (6, "locked"),  # SQLITE_LOCKED
    (5 | (3 << 8), "locked"),  # SQLITE_BUSY_TIMEOUT: extended codes keep their primary code
    (8, "read_only"),  # SQLITE_READONLY
    (13, "disk_full"),  # SQLITE_FULL
    (10 | (3 << 8), "io_error"),  # SQLITE_IOERR_WRITE
    (11, "corrupt"),  # SQLITE_CORRUPT
    (26, "corrupt"),  # SQLITE_NOTADB
    (14, "no_such_path"),  # SQLITE_CANTOPEN
    (1, "other"),  # SQLITE_ERROR
])
def test_the_code_decides_not_the_text(tmp_path: Path, code: int, cause: str) -> None:
    store = DatabaseSessionService(f"sqlite+aiosqlite:///{tmp_path / 'a.db'}")
    try:
        # The message says something else on purpose: only the code may decide.
        translated = store.backend.translate(error("database is locked or read-only", code))
        assert translated.cause == cause
    finally:
        asyncio.run(store.close())


def test_a_real_busy_database_is_locked(tmp_path: Path) -> None:
    path = tmp_path / "b.db"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("CREATE TABLE t (x)")
    holder.execute("BEGIN IMMEDIATE")
    other = sqlite3.connect(path, timeout=0, isolation_level=None)
    with pytest.raises(sqlite3.OperationalError) as info:
        other.execute("BEGIN IMMEDIATE")
    holder.close()
    other.close()
    assert info.value.sqlite_errorname == "SQLITE_BUSY"
    store = DatabaseSessionService(f"sqlite+aiosqlite:///{path}")
    try:
        assert store.backend.translate(info.value).cause == "locked"
    finally:
        asyncio.run(store.close())
