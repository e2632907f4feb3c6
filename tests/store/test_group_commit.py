"""Group commit (``store/groupcommit.py``): appends queued while a commit runs share the next
transaction, each with its own outcome, and nothing is acknowledged before its COMMIT.

To know what shares a transaction, each test first makes the writer busy with one append that
cannot get its lock (SQLite: another connection holds the database's write lock; PostgreSQL:
another connection holds the session's row lock), queues the appends under test behind it
(waiting until the writer reports them queued), then lets the first one go: everything queued
then runs as one batch, which the writer's counters confirm.
"""

from __future__ import annotations

import asyncio
import contextvars
import resource
import signal
import sqlite3
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from multi_agent import DatabaseSessionService, StaleSession
from multi_agent.errors import DatabaseUnavailableError, StoreError
from tests.helpers import run_processes, text_event

BOTH = pytest.mark.parametrize("backend", ["sqlite_file", "postgres"], indirect=True)


async def until(cond: Callable[[], bool], what: str) -> None:
    """Waits for ``cond`` (a state the code under test reaches, not a duration)."""
    for _ in range(6000):
        if cond():
            return
        await asyncio.sleep(0.005)
    raise AssertionError(f"never happened: {what}")


class Blocker:
    """Holds the lock the next append to ``session`` needs, from another connection."""

    def __init__(self, store: DatabaseSessionService, session: Any) -> None:
        self.store, self.session = store, session
        self._sqlite: sqlite3.Connection | None = None
        self._pg: Any = None
        self._tx: Any = None

    async def hold(self) -> None:
        backend = self.store.backend
        if backend.dialect == "sqlite":
            assert backend.sqlite_path is not None
            self._sqlite = sqlite3.connect(backend.sqlite_path, isolation_level=None)
            self._sqlite.execute("BEGIN IMMEDIATE")
            return
        import asyncpg

        assert backend.async_engine is not None
        url = backend.async_engine.url.render_as_string(hide_password=False)
        self._pg = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
        self._tx = self._pg.transaction()
        await self._tx.start()
        await self._pg.execute(
            "SELECT 1 FROM ma_sessions WHERE app_name = $1 AND user_id = $2 AND id = $3 "
            "FOR UPDATE", self.session.app_name, self.session.user_id, self.session.id,
        )

    async def release(self) -> None:
        if self._sqlite is not None:
            self._sqlite.execute("COMMIT")
            self._sqlite.close()
            self._sqlite = None
        if self._pg is not None:
            await self._tx.rollback()
            await self._pg.close()
            self._pg = None


async def busy_writer(store: DatabaseSessionService, session: Any) -> tuple[Blocker, Any]:
    """Makes the writer busy with one append (to ``session``) that waits for a lock; returns
    the blocker to release and that append's task."""
    store.backend.limit_batches(1)  # everything queued behind it then forms one batch
    blocker = Blocker(store, session)
    await blocker.hold()
    stats = store.backend.writer_stats()
    assert stats is not None
    before = stats.batches
    first = asyncio.create_task(store.append_event(session, text_event("first")))
    await until(lambda: stats.batches == before + 1 and store.backend.writes_queued() == 0,
                "the writer took the first append")
    return blocker, first


async def load(store: DatabaseSessionService, s: Any) -> Any:
    return await store.get_session(app_name=s.app_name, user_id=s.user_id, session_id=s.id)


@BOTH
async def test_a_stale_append_in_a_batch_fails_alone(db_url: str, app_name: str) -> None:
    async with DatabaseSessionService(db_url) as store:
        head = await store.create_session(app_name=app_name, user_id="head")
        sessions = [await store.create_session(app_name=app_name, user_id=f"u{i}")
                    for i in range(20)]
        stale = await load(store, sessions[0])
        await store.append_event(sessions[0], text_event("moves storage on"))
        blocker, first = await busy_writer(store, head)
        tasks = [
            asyncio.create_task(store.append_event(
                s, text_event(f"e{i}", state={"n": i, "user:n": i, f"app:k{i}": i})))
            for i, s in enumerate(sessions[1:], start=1)
        ]
        tasks.insert(10, asyncio.create_task(
            store.append_event(stale, text_event("from a behind copy", state={"user:n": -1}))))
        await until(lambda: store.backend.writes_queued() == 20, "20 appends queued")
        stats = store.backend.writer_stats()
        assert stats is not None
        largest = stats.largest
        await blocker.release()
        await first
        results = await asyncio.gather(*tasks, return_exceptions=True)
        assert stats.largest >= 20 > largest  # the twenty shared one transaction

        assert isinstance(results[10], StaleSession)
        others = results[:10] + results[11:]
        assert not [r for r in others if isinstance(r, BaseException)]
        got = await load(store, sessions[0])
        assert [e.content.parts[0].text for e in got.events] == ["moves storage on"]
        assert "user:n" not in got.state
        app_state = await store.get_app_state(app_name=app_name)
        for i, s in enumerate(sessions[1:], start=1):
            got = await load(store, s)
            assert [e.content.parts[0].text for e in got.events] == [f"e{i}"]
            assert got.state["n"] == i and got.state["user:n"] == i
            assert app_state[f"k{i}"] == i
        # Each caller's copy is current: its next append is not stale.
        await store.append_event(sessions[5], text_event("next"))


@BOTH
async def test_a_batch_runs_in_arrival_order_and_a_failed_item_leaves_no_trace(
    db_url: str, app_name: str
) -> None:
    """Writes of one batch see the ones before them; one that raises is rolled back alone."""
    async with DatabaseSessionService(db_url) as store:
        await store.prepare()
        backend = store.backend
        table = f"gc_order_{app_name}"
        await backend.run(
            lambda c: c.execute(text(f"CREATE TABLE {table} (n INTEGER PRIMARY KEY, seen "
                                     "INTEGER NOT NULL)")), write=True)
        head = await store.create_session(app_name=app_name, user_id="head")
        blocker, first = await busy_writer(store, head)

        def write(n: int) -> Callable[[Any], int]:
            def fn(conn: Any) -> int:
                seen = conn.execute(text(f"SELECT COUNT(*) FROM {table}")).scalar_one()
                conn.execute(text(f"INSERT INTO {table} VALUES (:n, :seen)"),
                             {"n": n, "seen": seen})
                if n == 7:  # the database refuses this one (PostgreSQL aborts the statement)
                    conn.execute(text(f"INSERT INTO {table} VALUES (0, 0)"))
                if n == 4:
                    raise ValueError("refused after writing")
                return int(seen)
            return fn

        tasks = [asyncio.create_task(backend.run(write(n), write=True, batch=True))
                 for n in range(10)]
        await until(lambda: backend.writes_queued() == 10, "10 writes queued")
        await blocker.release()
        await first
        results = await asyncio.gather(*tasks, return_exceptions=True)
        stats = backend.writer_stats()
        assert stats is not None and stats.largest >= 10
        assert isinstance(results[4], ValueError)
        assert isinstance(results[7], StoreError)  # the duplicate key, translated
        assert results[:4] + results[5:7] + results[8:] == [0, 1, 2, 3, 4, 5, 6, 7]
        rows = await backend.run(
            lambda c: c.execute(text(f"SELECT n, seen FROM {table} ORDER BY n")).all(),
            write=False)
        assert [tuple(r) for r in rows] == [
            (0, 0), (1, 1), (2, 2), (3, 3), (5, 4), (6, 5), (8, 6), (9, 7)]
        # First with no savepoint: item 4 raised there, so the ten ran again, a savepoint each.
        assert stats.savepoint_batches == 1


@BOTH
async def test_a_batch_in_which_nothing_fails_takes_no_savepoint(
    db_url: str, app_name: str
) -> None:
    """A savepoint is a round trip on PostgreSQL, two more statements an append (each a
    release and re-take of the GIL) on SQLite: a batch takes them only once an item raised."""
    from sqlalchemy import event

    async with DatabaseSessionService(db_url) as store:
        sent: list[str] = []
        if store.backend.dialect == "sqlite":  # the writer goes to the driver: trace it there
            engine = store.backend.sync_engine
            assert engine is not None
            event.listen(engine, "connect",
                         lambda dbapi, record: dbapi.set_trace_callback(sent.append))
        sessions = [await store.create_session(app_name=app_name, user_id=f"u{i}")
                    for i in range(11)]
        if store.backend.dialect == "postgresql":
            engine = store.backend.async_engine
            assert engine is not None
            event.listen(engine.sync_engine, "before_cursor_execute",
                         lambda conn, cur, statement, *a: sent.append(statement))
        else:
            assert any("SAVEPOINT" not in s.upper() for s in sent)  # the trace sees the writer
            sent.clear()
        blocker, first = await busy_writer(store, sessions[0])
        tasks = [asyncio.create_task(store.append_event(s, text_event(f"e{i}",
                                                                      state={"user:n": i})))
                 for i, s in enumerate(sessions[1:], start=1)]
        await until(lambda: store.backend.writes_queued() == 10, "10 appends queued")
        await blocker.release()
        await first
        await asyncio.gather(*tasks)
        stats = store.backend.writer_stats()
        assert stats is not None and stats.largest >= 10 and stats.savepoint_batches == 0
        assert sent and not [s for s in sent if "SAVEPOINT" in s.upper()]
        for i, s in enumerate(sessions[1:], start=1):
            got = await load(store, s)
            assert [e.content.parts[0].text for e in got.events] == [f"e{i}"]
            assert got.state["user:n"] == i


@pytest.mark.parametrize("backend", ["sqlite_file"], indirect=True)
async def test_a_failed_commit_acknowledges_nothing_sqlite(db_url: str, app_name: str) -> None:
    """The file may not grow (RLIMIT_FSIZE, a real write failure): the batch's COMMIT, the
    only time SQLite writes the -wal here, fails, and every append of the batch raises."""
    async with DatabaseSessionService(db_url) as store:
        head = await store.create_session(app_name=app_name, user_id="head")
        sessions = [await store.create_session(app_name=app_name, user_id=f"u{i}")
                    for i in range(10)]
        path = store.backend.sqlite_path
        assert path is not None
        raw = sqlite3.connect(path, isolation_level=None)
        raw.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        raw.close()
        assert Path(path + "-wal").stat().st_size == 0  # noqa: ASYNC240
        blocker, first = await busy_writer(store, head)
        tasks = [asyncio.create_task(store.append_event(
                     s, text_event(f"e{i}", state={"user:n": i, f"app:k{i}": i})))
                 for i, s in enumerate(sessions)]
        await until(lambda: store.backend.writes_queued() == 10, "10 appends queued")
        old_limit = resource.getrlimit(resource.RLIMIT_FSIZE)
        old_handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (1, old_limit[1]))
        try:
            await blocker.release()
            results = await asyncio.gather(first, *tasks, return_exceptions=True)
        finally:
            resource.setrlimit(resource.RLIMIT_FSIZE, old_limit)
            signal.signal(signal.SIGXFSZ, old_handler)
        stats = store.backend.writer_stats()
        assert stats is not None and stats.largest >= 10
        assert all(isinstance(r, StoreError) for r in results), results
        assert {type(r) for r in results} == {DatabaseUnavailableError}, results
        assert {r.cause for r in results} <= {"io_error", "disk_full"}, results
        for s in [head, *sessions]:
            assert (await load(store, s)).events == []
        assert await store.get_app_state(app_name=app_name) == {}
        # The disk problem gone, the same copies append (nothing of theirs was applied).
        await asyncio.gather(*(store.append_event(s, text_event("again")) for s in sessions))
    async with DatabaseSessionService(db_url) as store:
        for s in sessions:
            assert [e.content.parts[0].text for e in (await load(store, s)).events] == ["again"]


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
async def test_a_batch_whose_connection_dies_before_commit_acknowledges_nothing_pg(
    db_url: str, app_name: str
) -> None:
    """The writer's backend is killed (pg_terminate_backend) while its batch waits for a row
    lock, before COMMIT; the batch runs once more on a new connection, is killed again, and
    then fails as a whole: nothing of it stored, every append raises."""
    import asyncpg

    async with DatabaseSessionService(db_url) as store:
        head = await store.create_session(app_name=app_name, user_id="head")
        tail = await store.create_session(app_name=app_name, user_id="tail")
        sessions = [await store.create_session(app_name=app_name, user_id=f"u{i}")
                    for i in range(10)]
        blocker, first = await busy_writer(store, head)
        tail_blocker = Blocker(store, tail)
        await tail_blocker.hold()
        tasks = [asyncio.create_task(store.append_event(
                     s, text_event(f"e{i}", state={"user:n": i, f"app:k{i}": i})))
                 for i, s in enumerate(sessions)]
        tasks.append(asyncio.create_task(store.append_event(tail, text_event("tail"))))
        await until(lambda: store.backend.writes_queued() == 11, "11 appends queued")
        await blocker.release()
        await first  # committed alone; the next batch runs ten appends, then waits on tail
        admin = await asyncpg.connect(db_url.replace("postgresql+asyncpg://", "postgresql://"))
        stats = store.backend.writer_stats()
        assert stats is not None
        try:
            attempts: list[int] = []
            killed: list[int] = []
            for _ in range(2):  # the first attempt, then the retry (on another backend)
                pid = None
                for _ in range(6000):
                    pid = await admin.fetchval(
                        "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                        "AND wait_event_type = 'Lock' AND pid <> ALL($1::int[]) LIMIT 1",
                        killed)
                    if pid is not None:
                        break
                    await asyncio.sleep(0.005)
                assert pid is not None, "the batch never waited for the tail's lock"
                attempts.append(stats.batches)
                killed.append(pid)
                assert await admin.fetchval("SELECT pg_terminate_backend($1)", pid)
            results = await asyncio.gather(*tasks, return_exceptions=True)
        finally:
            await tail_blocker.release()
            await admin.close()
        assert all(isinstance(r, StoreError) for r in results), results
        assert {getattr(r, "cause", None) for r in results} == {"unreachable"}, results
        assert attempts[1] == attempts[0] + 1 and stats.largest >= 11  # retried once
        for s in [tail, *sessions]:
            assert (await load(store, s)).events == []
        assert await store.get_app_state(app_name=app_name) == {}
        await asyncio.gather(*(store.append_event(s, text_event("again")) for s in sessions))
        for s in sessions:
            assert [e.content.parts[0].text for e in (await load(store, s)).events] == ["again"]


async def run_group_writers(url: str, app: str, processes: int, tasks: int, count: int,
                            users: int | None = None) -> dict[str, list[str]]:
    """Runs the writer processes; checks that none failed an append and that every append
    was acknowledged; returns {session id: its acknowledged event ids, in order}."""
    shared = [] if users is None else [str(users)]
    outs = await run_processes(
        [["-m", "tests.store._group_writer", url, app, str(p * tasks), str(tasks), str(count),
          *shared] for p in range(processes)], seconds=600)
    lines = [line.split(maxsplit=2) for out in outs for line in out.splitlines()]
    assert not [line for line in lines if line[0] == "ERR"]
    acked: dict[str, list[str]] = {}
    for _, sid, event_id in (line for line in lines if line[0] == "ACK"):
        acked.setdefault(sid, []).append(event_id)
    assert sum(len(v) for v in acked.values()) == processes * tasks * count
    return acked


@BOTH
async def test_many_tasks_in_several_processes_lose_nothing(db_url: str, app_name: str) -> None:
    """3 processes x 16 tasks, each task on its own session, with user: and app: writes and
    atomic increments of shared keys: every acknowledged append and state change is stored
    once, nothing else is."""
    processes, tasks, count = 3, 16, 12
    total = processes * tasks
    async with DatabaseSessionService(db_url) as store:
        for i in range(total):
            await store.create_session(app_name=app_name, user_id=f"u{i}", session_id=f"s{i}")
    acked = await run_group_writers(db_url, app_name, processes, tasks, count)
    async with DatabaseSessionService(db_url) as store:
        app_state = await store.get_app_state(app_name=app_name)
        assert app_state["total"] == total * count
        for i in range(total):
            got = await store.get_session(app_name=app_name, user_id=f"u{i}", session_id=f"s{i}")
            assert [e.id for e in got.events] == acked[f"s{i}"]  # all, once, in order
            assert got.state["n"] == count - 1 and got.state["user:n"] == count - 1
            assert got.state["user:total"] == count
            assert app_state[f"last_{i}"] == count - 1


@BOTH
async def test_processes_sharing_users_neither_deadlock_nor_lose(
    db_url: str, app_name: str
) -> None:
    """3 processes x 8 tasks whose 24 sessions belong to 4 users, each user's sessions spread
    over all three processes; every process creates its sessions at once, then appends, with
    user: and app: writes and atomic increments of each user's and the app's total. Before
    the LOCK ORDER (groupcommit.py) this deadlocked on PostgreSQL within seconds (session
    creation locked the app row before the user row, appends the other way round; two batches
    locked two users' rows in opposite orders): a process died with "deadlock detected".
    Now nothing fails, and every increment is counted."""
    processes, tasks, count, users = 3, 8, 12, 4
    total = processes * tasks
    async with DatabaseSessionService(db_url) as store:
        await store.prepare()
    acked = await run_group_writers(db_url, app_name, processes, tasks, count, users)
    async with DatabaseSessionService(db_url) as store:
        assert (await store.get_app_state(app_name=app_name))["total"] == total * count
        for u in range(users):
            user_state = await store.get_user_state(app_name=app_name, user_id=f"u{u}")
            assert user_state["total"] == count * (total // users)
        for i in range(total):
            got = await store.get_session(app_name=app_name, user_id=f"u{i % users}",
                                          session_id=f"s{i}")
            assert [e.id for e in got.events] == acked[f"s{i}"]  # all, once, in order
            assert got.state[f"user:n_{i}"] == count - 1


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
async def test_a_deadlock_victim_is_run_again_and_stored_once_pg(
    db_url: str, app_name: str
) -> None:
    """Another program locks the user's state row, then the session row, the other way round
    from the store (LOCK ORDER): PostgreSQL breaks the cycle by refusing our append's
    statement (ours waits with the shorter deadlock_timeout, so ours is the victim). The
    append is run again once the other transaction is done, and succeeds: stored once,
    its user: value kept, the other program's write kept too."""
    import asyncpg

    async with DatabaseSessionService(db_url) as store:
        s = await store.create_session(app_name=app_name, user_id="u", state={"user:n": 0})
        other = await asyncpg.connect(db_url.replace("postgresql+asyncpg://", "postgresql://"))
        try:
            await other.execute("SET deadlock_timeout = '20s'")  # never the detector
            tx = other.transaction()
            await tx.start()
            await other.execute("UPDATE ma_user_states SET update_time = update_time "
                                "WHERE app_name = $1 AND user_id = 'u'", app_name)
            append = asyncio.create_task(
                store.append_event(s, text_event("hi", state={"user:n": 1})))
            # Ours holds the session row and waits for the user row...
            for _ in range(2000):
                waiting = await other.fetchval(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND wait_event_type = 'Lock'")
                if waiting:
                    break
                await asyncio.sleep(0.005)
            assert waiting, "the append never waited for the user row"
            # ...which the other program holds while it asks for the session row: a cycle.
            await other.execute("UPDATE ma_sessions SET update_time = update_time "
                                "WHERE app_name = $1 AND user_id = 'u' AND id = $2",
                                app_name, s.id)
            await tx.commit()
        finally:
            await other.close()
        await append
        stats = store.backend.writer_stats()
        assert stats is not None and stats.contention_retries >= 1
        got = await load(store, s)
        assert [e.content.parts[0].text for e in got.events] == ["hi"]
        assert got.state["user:n"] == 1


def test_a_write_refused_for_contention_every_time_says_so() -> None:
    """After CONTENTION_RETRIES refusals the caller gets an error that says what happened and
    that nothing was written (not "the database is unreachable")."""
    from multi_agent.store.dialects.postgresql import PostgresDialect
    from multi_agent.store.groupcommit import CONTENTION_RETRIES, is_contention

    class Deadlock(Exception):
        sqlstate = "40P01"

    err = PostgresDialect().translate(Deadlock("deadlock detected"), url="postgresql://db")
    assert isinstance(err, DatabaseUnavailableError) and err.cause == "contention"
    assert "Nothing was written" in str(err) and f"{CONTENTION_RETRIES} times" in str(err)
    assert is_contention(Deadlock()) and not is_contention(ValueError())


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
async def test_batches_at_once_leave_a_pooled_connection_for_reads_pg(db_url: str) -> None:
    """Up to PG_WRITERS batches run at once, but never so many that a small pool has no
    connection left for a read (one connection: one writer; 2 + 1 overflow: two)."""
    from multi_agent.store.groupcommit import PG_WRITERS

    for kwargs, writers in (({}, PG_WRITERS), ({"pool_size": 1, "max_overflow": 0}, 1),
                            ({"pool_size": 2, "max_overflow": 1}, 2)):
        async with DatabaseSessionService(db_url, **kwargs) as store:
            assert store.backend._async_writer is not None
            assert store.backend._async_writer.writers == writers, kwargs
            s = await store.create_session(app_name="a", user_id="u")
            await store.append_event(s, text_event("x"))
            with pytest.raises(ValueError):
                store.backend.limit_batches(0)


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
async def test_a_stream_of_appends_keeps_one_connection_and_gives_it_back_pg(
    db_url: str, app_name: str
) -> None:
    """An idle writer keeps its connection for LINGER_SECONDS (no pool checkout a transaction),
    gives it back after that or at close, never when the pool has none to spare for reads, and
    a kept connection whose backend was killed is replaced without losing the append."""
    import asyncpg
    from sqlalchemy import event

    from multi_agent.store.groupcommit import LINGER_SECONDS

    async with DatabaseSessionService(db_url) as store:
        s = await store.create_session(app_name=app_name, user_id="u")
        engine = store.backend.async_engine
        assert engine is not None
        pool = engine.sync_engine.pool
        checkouts: list[int] = []
        event.listen(pool, "checkout", lambda *a: checkouts.append(1))
        for i in range(20):
            await store.append_event(s, text_event(f"e{i}"))
        assert len(checkouts) <= 1, len(checkouts)  # one for the stream (or none: kept)
        assert pool.checkedout() == 1  # the writer's, kept
        await asyncio.sleep(LINGER_SECONDS * 3)
        assert pool.checkedout() == 0  # idle: back in the pool

        # The kept connection's backend dies: the next append runs on a new one, once.
        await store.append_event(s, text_event("keeps a connection"))
        admin = await asyncpg.connect(db_url.replace("postgresql+asyncpg://", "postgresql://"))
        try:
            killed = await admin.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE "
                "datname = current_database() AND pid <> pg_backend_pid()")
        finally:
            await admin.close()
        assert killed >= 1
        await store.append_event(s, text_event("after the kill"))
        got = await load(store, s)
        texts = [e.content.parts[0].text for e in got.events]
        assert texts == [f"e{i}" for i in range(20)] + ["keeps a connection", "after the kill"]
        assert pool.checkedout() == 1
    assert pool.checkedout() == 0  # closing the service gave it back at once

    async with DatabaseSessionService(db_url, pool_size=1, max_overflow=0) as small:
        assert small.backend._async_writer is not None
        assert not small.backend._async_writer.holds()  # one connection: shared with reads
        s = await small.create_session(app_name=app_name, user_id="v")
        await small.append_event(s, text_event("x"))
        small_engine = small.backend.async_engine
        assert small_engine is not None and small_engine.sync_engine.pool.checkedout() == 0


def test_app_rows_last_moves_app_writers_and_what_follows_them_in_order() -> None:
    """A batch's items that write an app's row run at its end, in their order; so do later
    items of a session or user such an item writes (their order kept) and items whose rows
    are not known; the others keep theirs."""
    from multi_agent.store.groupcommit import Item, Locks, app_rows_last

    def item(name: str, locks: Locks | None) -> Item:
        return Item(lambda conn: name, True, True, contextvars.copy_context(), None, None,
                    locks=locks)

    a = item("a", Locks("app", "u1", "s1", True, False))
    b = item("b", Locks("app", "u2", "s2", True, True))  # writes the app row
    c = item("c", Locks("app", "u3", "s3", False, False))
    d = item("d", Locks("app", "u2", "s4", True, False))  # b's user: after b
    e = item("e", Locks("app", "u2", "s2", False, False))  # b's session: after b
    f = item("f", None)  # rows unknown, after a moved item: stays after it
    g = item("g", Locks("other", "u1", "s9", False, True))
    h = item("h", Locks("app", "u8", "s8", False, False))
    ordered, app_at = app_rows_last([a, b, c, d, e, f, g, h])
    assert [i.fn(None) for i in ordered] == ["a", "c", "h", "b", "d", "e", "f", "g"]
    assert app_at == 3
    plain = [a, c, h]
    assert app_rows_last(plain) == (plain, None)


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
async def test_a_batch_locks_the_app_row_after_its_other_appends_pg(
    db_url: str, app_name: str
) -> None:
    """PostgreSQL: in a batch, the appends that write ``app:`` keys run last, and the app's
    row is locked only before the first of them (not for the whole batch: every batch of the
    app needs it); every append is stored as written, in its session's order."""
    from sqlalchemy import event

    async with DatabaseSessionService(db_url) as store:
        head = await store.create_session(app_name=app_name, user_id="head")
        sessions = [await store.create_session(app_name=app_name, user_id=f"u{i}")
                    for i in range(12)]
        await store.append_event(sessions[0], text_event("makes the app row",
                                                         state={"app:k0": -1}))
        sent: list[tuple[str, Any]] = []
        engine = store.backend.async_engine
        assert engine is not None
        event.listen(engine.sync_engine, "before_cursor_execute",
                     lambda conn, cur, statement, params, *a: sent.append((statement, params)))
        blocker, first = await busy_writer(store, head)
        sent.clear()
        tasks = [asyncio.create_task(store.append_event(s, text_event(
                     f"e{i}", state={"user:n": i, **({f"app:k{i}": i} if i % 3 == 0 else {})})))
                 for i, s in enumerate(sessions)]
        await until(lambda: store.backend.writes_queued() == 12, "12 appends queued")
        await blocker.release()
        await first
        await asyncio.gather(*tasks)
        steps = []
        for statement, params in sent:
            if "FOR UPDATE OF t" in statement:  # the batch's lock statement
                sessions_locked, apps_locked = params[2], params[5]
                steps.append(("lock", len(sessions_locked), len(apps_locked)))
            elif statement.lstrip().upper().startswith(("INSERT INTO MA_EVENTS", "WITH")) \
                    and "ma_events" in statement:
                steps.append(("event",))
        locks = [i for i, step in enumerate(steps) if step[0] == "lock"]
        assert [steps[i] for i in locks] == [("lock", 12, 0), ("lock", 0, 1)], steps
        assert steps[locks[1] + 1:].count(("event",)) == 4  # e0, e3, e6, e9, after the lock
        assert steps[locks[0]:locks[1]].count(("event",)) == 8, steps
        app_state = await store.get_app_state(app_name=app_name)
        assert {k: v for k, v in app_state.items()} == {"k0": 0, "k3": 3, "k6": 6, "k9": 9}
        for i, s in enumerate(sessions):
            got = await load(store, s)
            texts = [e.content.parts[0].text for e in got.events]
            assert texts == (["makes the app row"] if i == 0 else []) + [f"e{i}"]
            assert got.state["user:n"] == i


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
async def test_a_batch_runs_its_appends_on_the_rows_its_lock_read_pg(
    db_url: str, app_name: str
) -> None:
    """PostgreSQL: a batch's lock statement also reads the rows, and its appends run on them
    (no locking read of their own); what another process wrote before the batch locked them
    is what they merge into, and two appends of the batch to one user's row see each other."""
    from sqlalchemy import event

    async with DatabaseSessionService(db_url) as store, \
            DatabaseSessionService(db_url) as other:  # another process's service
        head = await store.create_session(app_name=app_name, user_id="head")
        users = [f"u{i}" for i in range(6)]
        mine = [await store.create_session(app_name=app_name, user_id=u) for u in users]
        # Each session appended to once: the store's own cache holds the rows it wrote...
        for s in mine:
            await store.append_event(s, text_event("first", state={"user:mine": -1}))
        # ...then another process writes the same users' rows and the app row.
        for i, u in enumerate(users):
            theirs = await other.create_session(app_name=app_name, user_id=u)
            await other.append_event(theirs, text_event("theirs", state={
                f"user:theirs{i}": i, f"app:theirs{i}": i}))
        second = await store.create_session(app_name=app_name, user_id="u0")  # u0's 2nd
        sent: list[str] = []
        engine = store.backend.async_engine
        assert engine is not None
        event.listen(engine.sync_engine, "before_cursor_execute",
                     lambda conn, cur, statement, *a: sent.append(statement))
        blocker, first = await busy_writer(store, head)
        stats = store.backend.writer_stats()
        assert stats is not None
        before = stats.with_rows
        sent.clear()
        tasks = [asyncio.create_task(store.append_event(s, text_event(f"e{i}", state={
                     f"user:mine{i}": i, f"app:mine{i}": i, "n": i})))
                 for i, s in enumerate(mine)]
        tasks.append(asyncio.create_task(store.append_event(second, text_event(
            "u0 again", state={"user:second": 1}))))
        await until(lambda: store.backend.writes_queued() == 7, "7 appends queued")
        await blocker.release()
        await first
        await asyncio.gather(*tasks)
        assert stats.with_rows - before == 7
        assert not [s for s in sent if "ma_user_states" in s and "FOR UPDATE" in s
                    and "row_to_json" not in s], "an append read its rows again"
        app_state = await store.get_app_state(app_name=app_name)
        for i, s in enumerate(mine):
            got = await load(store, s)
            assert [e.content.parts[0].text for e in got.events] == ["first", f"e{i}"]
            assert got.state["n"] == i and got.state[f"user:mine{i}"] == i
            assert got.state[f"user:theirs{i}"] == i  # the other process's write kept
            assert app_state[f"mine{i}"] == i and app_state[f"theirs{i}"] == i
        got = await load(store, second)
        assert got.state["user:second"] == 1 and got.state["user:mine0"] == 0
        # Each copy is current afterwards.
        await store.append_event(mine[0], text_event("next", state={"user:mine0": 10}))
        await store.append_event(second, text_event("next", state={"user:second": 2}))
        assert (await load(store, mine[0])).state["user:second"] == 2


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
async def test_a_batch_sends_its_planned_appends_together_in_order_pg(
    db_url: str, app_name: str
) -> None:
    """PostgreSQL: a batch's appends are planned on the rows its lock read and sent one
    ``executemany`` per statement shape, not one statement each; an append that writes a row
    an unsent append of another shape writes waits for it (user u0's three sessions below:
    shapes X, Y, X; sent X then Y, its third append would find the row not as planned and
    the batch would run again with savepoints). Every value is read back."""
    from sqlalchemy import event

    async with DatabaseSessionService(db_url) as store:
        head = await store.create_session(app_name=app_name, user_id="head")
        owners = ["u0", "u0", "u0"] + [f"v{i}" for i in range(6)]
        sessions = [await store.create_session(app_name=app_name, user_id=u) for u in owners]
        for j, s in enumerate(sessions):  # rows exist (the app's too), copies current;
            # each session's run is "inv-<id>"
            await store.append_event(s, text_event("first", invocation_id=f"inv-{s.id}",
                                                   state={f"user:seen{j}": 0,
                                                          **({"app:made": 1} if j == 0 else {})}))
        sent: list[tuple[str, bool]] = []
        engine = store.backend.async_engine
        assert engine is not None
        event.listen(engine.sync_engine, "before_cursor_execute",
                     lambda conn, cur, statement, params, ctx, many: sent.append(
                         (statement, many)))
        blocker, first = await busy_writer(store, head)
        stats = store.backend.writer_stats()
        assert stats is not None
        planned, savepoint_batches = stats.planned, stats.savepoint_batches
        sent.clear()

        def appended(i: int) -> Any:
            s = sessions[i]
            new_run = i % 2 == 0  # X: a new run's first event (a run row too); Y: same run
            state = {f"user:k{i}": i, "n": i, **({f"app:a{i}": i} if i % 4 == 3 else {})}
            return store.append_event(s, text_event(
                f"e{i}", invocation_id=f"new-{s.id}" if new_run else f"inv-{s.id}",
                state=state))

        tasks = [asyncio.create_task(appended(i)) for i in range(len(sessions))]
        await until(lambda: store.backend.writes_queued() == len(sessions), "all queued")
        await blocker.release()
        await first
        await asyncio.gather(*tasks)
        assert stats.planned - planned == len(sessions)
        assert stats.savepoint_batches == savepoint_batches  # no run again
        appends = [many for sql, many in sent if "INSERT INTO ma_events" in sql]
        # the blocker's own append (alone, before the batch), then the batch's exchanges
        assert appends[0] is False and appends[1:] and all(appends[1:]), appends
        assert len(appends) - 1 < len(sessions) - 2
        app_state = await store.get_app_state(app_name=app_name)
        for i, s in enumerate(sessions):
            got = await load(store, s)
            assert [e.content.parts[0].text for e in got.events] == ["first", f"e{i}"]
            assert got.state["n"] == i and got.state[f"user:k{i}"] == i
            if i % 4 == 3:
                assert app_state[f"a{i}"] == i
        u0 = (await load(store, sessions[0])).state
        assert [u0[f"user:k{i}"] for i in range(3)] == [0, 1, 2]
        runs = {r.run_id for r in await store.list_runs(
            app_name=app_name, user_id="u0", session_id=sessions[0].id)}
        assert f"new-{sessions[0].id}" in runs
        # Each copy is current afterwards (its marker moved with the planned append).
        for i, s in enumerate(sessions[:3]):
            await store.append_event(s, text_event("next", state={f"user:next{i}": i}))


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
async def test_a_duplicate_in_a_batch_of_planned_appends_is_stored_once_pg(
    db_url: str, app_name: str
) -> None:
    """PostgreSQL: an event appended again (a retry after a lost acknowledgement) in a batch
    of planned appends fails the batch's exchange (its id is stored); the batch runs again
    with savepoints, where it is recognised as stored, and the others commit."""
    async with DatabaseSessionService(db_url) as store:
        head = await store.create_session(app_name=app_name, user_id="head")
        sessions = [await store.create_session(app_name=app_name, user_id=f"d{i}")
                    for i in range(4)]
        again = text_event("once", state={"user:x": 1})
        await store.append_event(sessions[0], again)
        for s in sessions[1:]:
            await store.append_event(s, text_event("first", state={"user:x": 0}))
        blocker, first = await busy_writer(store, head)
        stats = store.backend.writer_stats()
        assert stats is not None
        savepoint_batches = stats.savepoint_batches
        tasks = [asyncio.create_task(store.append_event(sessions[0], again))]
        tasks += [asyncio.create_task(store.append_event(s, text_event(
            f"e{i}", state={"user:x": i}))) for i, s in enumerate(sessions[1:], 1)]
        await until(lambda: store.backend.writes_queued() == 4, "4 appends queued")
        await blocker.release()
        await first
        await asyncio.gather(*tasks)
        assert stats.savepoint_batches == savepoint_batches + 1
        assert [e.id for e in (await load(store, sessions[0])).events] == [again.id]
        for i, s in enumerate(sessions[1:], 1):
            got = await load(store, s)
            assert [e.content.parts[0].text for e in got.events] == ["first", f"e{i}"]
            assert got.state["user:x"] == i


_CLOSED_UNDER_IT = r'''
import asyncio, gc, sys
from multi_agent import DatabaseSessionService
from tests.helpers import text_event

async def main():
    store = DatabaseSessionService(sys.argv[1])  # never closed
    s = await store.create_session(app_name="a", user_id="u")
    for i in range(3):
        await store.append_event(s, text_event(f"e{i}"))
    assert store.backend.async_engine.sync_engine.pool.checkedout() == 1  # the idle writer's

loop = asyncio.new_event_loop()
loop.run_until_complete(main())
loop.close()  # with the writer idle on its connection: nothing will ever run it again
if sys.argv[2] == "collect":
    gc.collect()
print("finished", flush=True)
'''


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
@pytest.mark.parametrize("collect", ["collect", "exit"])
async def test_a_loop_closed_under_an_idle_writer_prints_nothing_and_drops_its_connection_pg(
    db_url: str, collect: str, tmp_path: Path
) -> None:
    """A program that runs its own event loop and closes it within LINGER_SECONDS of its last
    append, without closing the service, gets no 'Task was destroyed' message and no
    traceback from the idle writer's connection (SQLAlchemy's 'Exception terminating
    connection', its 'non-checked-in connection' warning), whether the collector or the
    interpreter's exit finds it, and the server sees that connection go."""
    import asyncpg

    script = tmp_path / "closed_under_it.py"
    script.write_text(_CLOSED_UNDER_IT)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(script), db_url, collect, cwd=str(Path(__file__).parents[2]),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode == 0, err.decode()
    assert out.decode().strip() == "finished"
    assert err.decode() == "", err.decode()
    admin = await asyncpg.connect(db_url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        for _ in range(200):  # the server notices a closed socket at once, an instant later
            left = await admin.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid()")
            if left == 0:
                break
            await asyncio.sleep(0.05)
        assert left == 0
    finally:
        await admin.close()
