"""Retention (issue 18): ``DatabaseSessionService.prune_sessions`` deletes whole idle sessions in
bounded batches. On a SQLite file, SQLite in memory and PostgreSQL unless a test says otherwise.

Sessions are made idle by moving their ``update_time`` back (the one column the prune reads).
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from multi_agent import DatabaseSessionService
from multi_agent.errors import InvalidValueError, SessionNotFound
from multi_agent.memory import DatabaseMemoryService
from multi_agent.store.prune import parse_age
from tests.helpers import text_event

DAY = 86400.0


async def chat(store: DatabaseSessionService, memory: DatabaseMemoryService | None, app: str,
               user: str, session_id: str, turns: int = 3) -> None:
    session = await store.create_session(app_name=app, user_id=user, session_id=session_id,
                                         state={"user:name": user, "topic": session_id})
    for turn in range(turns):
        run = f"inv-{session_id}-{turn}"
        await store.append_event(session, text_event(f"question {turn} in {session_id}",
                                                     author="user", invocation_id=run))
        await store.append_event(session, text_event(f"answer {turn} in {session_id}",
                                                     author="helper", invocation_id=run))
    if memory is not None:
        await memory.add_session_to_memory(session)


async def age(store: DatabaseSessionService, app: str, user: str, session_id: str,
              days: float) -> None:
    """Makes a session look idle for ``days``."""
    def write(conn) -> None:
        conn.execute(text("UPDATE ma_sessions SET update_time = :t WHERE app_name = :a AND "
                          "user_id = :u AND id = :s"),
                     {"t": time.time() - days * DAY, "a": app, "u": user, "s": session_id})

    await store.backend.run(write, write=True)


async def rows(store: DatabaseSessionService, app: str, user: str, session_id: str) -> dict:
    def count(conn) -> dict:
        key = {"a": app, "u": user, "s": session_id}
        out = {}
        for table, column in (("ma_sessions", "id"), ("ma_events", "session_id"),
                              ("ma_runs", "session_id"), ("ma_memory_entries", "session_id"),
                              ("ma_memory_sessions", "session_id")):
            out[table] = conn.execute(text(
                f"SELECT count(*) FROM {table} WHERE app_name = :a AND user_id = :u AND "
                f"{column} = :s"), key).scalar()
        return out

    return await store.backend.run(count, write=False)


@pytest.fixture
async def memory(store: DatabaseSessionService):
    service = DatabaseMemoryService(store, search="fulltext")
    try:
        yield service
    finally:
        await service.close()


async def test_prunes_whole_idle_sessions_only(
    store: DatabaseSessionService, memory: DatabaseMemoryService, app_name: str,
) -> None:
    other_app = app_name + "_b"
    for app, user, sid, days in ((app_name, "ann", "old1", 40), (app_name, "ann", "old2", 31),
                                 (app_name, "ann", "fresh", 0), (app_name, "bob", "old", 45),
                                 (app_name, "bob", "recent", 29), (other_app, "ann", "old", 60)):
        await chat(store, memory, app, user, sid)
        if days:
            await age(store, app, user, sid, days)

    planned = await store.prune_sessions(older_than=parse_age("30d"), app_name=app_name,
                                         dry_run=True)
    assert planned.dry_run and planned.batches == 0
    per_session = {"sessions": 1, "events": 6, "runs": 3, "memory_entries": 6}
    assert planned.by_user == {
        (app_name, "ann"): {k: 2 * v for k, v in per_session.items()},
        (app_name, "bob"): per_session,
    }
    assert (await rows(store, app_name, "ann", "old1"))["ma_events"] == 6  # nothing deleted

    # max_events=6: one session per batch.
    report = await store.prune_sessions(older_than=30 * DAY, app_name=app_name, max_events=6)
    assert report.by_user == planned.by_user and report.batches == 3
    assert report.space == ("autovacuum" if store.dialect == "postgresql" else "free_list")
    for user, sid in (("ann", "old1"), ("ann", "old2"), ("bob", "old")):
        assert await store.get_session(app_name=app_name, user_id=user, session_id=sid) is None
        assert set((await rows(store, app_name, user, sid)).values()) == {0}
    for app, user, sid in ((app_name, "ann", "fresh"), (app_name, "bob", "recent"),
                           (other_app, "ann", "old")):
        kept = await store.get_session(app_name=app, user_id=user, session_id=sid)
        assert kept is not None and len(kept.events) == 6
        assert (await rows(store, app, user, sid))["ma_memory_entries"] == 6
    # user: state is not a session's: it stays.
    assert await store.get_user_state(app_name=app_name, user_id="bob") == {"name": "bob"}
    found = await memory.search_memory(app_name=app_name, user_id="ann", query="question")
    assert {m.custom_metadata["session_id"] for m in found.memories} == {"fresh"}

    # Every app: the other app's old session goes too; a second run finds nothing.
    report = await store.prune_sessions(older_than=30 * DAY)
    assert report.by_user == {(other_app, "ann"): per_session}
    assert (await store.prune_sessions(older_than=30 * DAY)).by_user == {}


async def test_batches_let_a_writer_through(store: DatabaseSessionService,
                                            app_name: str) -> None:
    """A writer appends throughout a prune of 100 sessions in 100 batches: its appends land
    between batches (no lock is held for the whole prune), and none fails. (On SQLite a
    writer waiting for the lock polls with SQLite's busy handler, which sleeps up to 100 ms
    between tries, so it may miss some of the gaps between batches.)"""
    for n in range(100):
        await chat(store, None, app_name, "ann", f"old{n}", turns=3)
        await age(store, app_name, "ann", f"old{n}", 100)
    live = await store.create_session(app_name=app_name, user_id="bob", session_id="live")
    pruning = asyncio.Event()
    finished = asyncio.Event()
    during: list[float] = []

    async def writer() -> None:
        await pruning.wait()
        while not finished.is_set():
            started = time.perf_counter()
            await store.append_event(live, text_event("still here", author="user"))
            if not finished.is_set():
                during.append(time.perf_counter() - started)

    async def prune():
        pruning.set()
        try:
            return await store.prune_sessions(older_than=DAY, max_events=6)
        finally:
            finished.set()

    task = asyncio.create_task(writer())
    started = time.perf_counter()
    report = await prune()
    elapsed = time.perf_counter() - started
    await task
    assert report.batches == 100 and report.totals()["sessions"] == 100
    assert len(during) >= 3, (len(during), elapsed)  # appends landed during the prune
    assert max(during) < elapsed, (during, elapsed)
    stored = await store.get_session(app_name=app_name, user_id="bob", session_id="live")
    assert stored is not None and len(stored.events) >= len(during)


async def test_an_append_to_a_pruned_session_is_refused(
    store: DatabaseSessionService, app_name: str
) -> None:
    await chat(store, None, app_name, "ann", "old")
    copy = await store.get_session(app_name=app_name, user_id="ann", session_id="old")
    await age(store, app_name, "ann", "old", 100)
    await store.prune_sessions(older_than=DAY)
    with pytest.raises(SessionNotFound):
        await store.append_event(copy, text_event("too late", author="user"))


def make_incremental(path: Path) -> None:
    """A new SQLite file that uses auto_vacuum=INCREMENTAL (set before its first table)."""
    raw = sqlite3.connect(path, isolation_level=None)
    raw.execute("PRAGMA auto_vacuum=INCREMENTAL")
    raw.execute("CREATE TABLE t (x)")
    raw.execute("DROP TABLE t")
    raw.close()


def pages(path: Path) -> int:
    raw = sqlite3.connect(path)
    try:
        return int(raw.execute("PRAGMA page_count").fetchone()[0])
    finally:
        raw.close()


@pytest.mark.parametrize("mode", ["incremental", "vacuum", "none"])
async def test_sqlite_space_comes_back(tmp_path: Path, mode: str) -> None:
    path = tmp_path / "data.db"
    if mode == "incremental":
        make_incremental(path)
    async with DatabaseSessionService(f"sqlite+aiosqlite:///{path}") as store:
        for n in range(20):
            await chat(store, None, "app", "ann", f"s{n}", turns=20)
            await age(store, "app", "ann", f"s{n}", 100)
        await chat(store, None, "app", "ann", "fresh")
        before = await store.backend.run(
            lambda c: c.exec_driver_sql("PRAGMA page_count").scalar(), write=False)
        report = await store.prune_sessions(older_than=DAY, vacuum=mode == "vacuum")
        assert report.totals()["events"] == 20 * 40
        after = await store.backend.run(
            lambda c: c.exec_driver_sql("PRAGMA page_count").scalar(), write=False)
        if mode == "none":
            assert report.space == "free_list" and report.pages_freed == 0
            assert after == before
        else:
            assert report.space == ("incremental_vacuum" if mode == "incremental" else "vacuum")
            assert report.pages_freed == before - after and after < before / 2, (before, after)
        fresh = await store.get_session(app_name="app", user_id="ann", session_id="fresh")
        assert fresh is not None and len(fresh.events) == 6
    if mode != "none":
        assert pages(path) == after


def test_parse_age() -> None:
    assert parse_age("30d") == 30 * DAY and parse_age("12h") == 12 * 3600
    assert parse_age("90m") == 5400 and parse_age("45s") == 45 and parse_age("2w") == 14 * DAY
    assert parse_age("7") == 7 * DAY and parse_age("1.5d") == 1.5 * DAY
    for bad in ("", "d", "0d", "-3d", "thirty days", "inf", "nan"):
        with pytest.raises(InvalidValueError):
            parse_age(bad)
