"""Where SQL runs: one engine, one pool, one way to run a transaction.

Every store operation is a plain synchronous function over a SQLAlchemy ``Connection`` that
runs inside one transaction. How it gets there depends on the engine (what differs between the
databases themselves, from the engine's settings to error codes, is in ``dialects/``):

* **A synchronous engine** (SQLite, a URL given): the standard ``sqlite3`` driver, with the
  whole transaction run in a thread: one thread hop per operation. (Through aiosqlite
  every statement is its own hop, ~20 per append; ADK's service spends most of its 4 ms an
  append there.) Reads run on a pool of reader threads; every write runs on one writer
  thread, which batches the appends that queue during a commit into the next transaction
  (group commit, ``groupcommit.py``), so our own threads never wait for each other's write
  lock. Writes start with ``BEGIN IMMEDIATE``. Before every transaction one
  ``os.stat`` checks that the path still names the file the connections opened (deleted or
  replaced under a running service: ``DatabaseUnavailableError``, see _retire).
* **An ``AsyncEngine``** (PostgreSQL through asyncpg, and any injected engine):
  ``AsyncConnection.run_sync`` runs the same function, each statement awaiting the driver.
  On PostgreSQL, appends are batched the same way, by up to ``PG_WRITERS`` writer tasks per
  event loop.
"""

from __future__ import annotations

import asyncio
import contextvars
import os
import sqlite3
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from sqlalchemy import Table
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.engine.url import URL
from sqlalchemy.exc import ArgumentError, DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import NullPool

from ..errors import DatabaseUnavailableError, InvalidValueError, StoreError
from .dialects import Dialect, dialect_for, known
from .dialects.base import EngineOptions
from .dialects.sqlite import SQLITE_WAL_LIMIT_BYTES, SQLITE_WORKERS, check_pragmas
from .groupcommit import (
    CONTENTION_RETRIES,
    PG_WRITERS,
    AsyncWriter,
    Declined,
    Held,
    Item,
    Locks,
    RowsRead,
    ThreadWriter,
    WriterStats,
    is_contention,
    is_disconnect,
    outcome,
    quiet_rollback,
    resolve,
    resolve_all,
    reusable,
    settle_cancelled,
)
from .looppool import LoopPool

T = TypeVar("T")

__all__ = ["SQLITE_WAL_LIMIT_BYTES", "SQLITE_WORKERS", "Backend", "open_backend", "redact"]
# SQLITE_WAL_LIMIT_BYTES, SQLITE_WORKERS: defined in dialects/sqlite.py, importable from here.


def redact(url: str | URL) -> str:
    """The URL with its password hidden, for messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparseable URL>"


class Backend:
    """Runs transaction functions on one database and translates its failures.

    Attributes:
        dialect: ``sqlite`` or ``postgresql``: the name of the database.
        db: that database's :class:`~multi_agent.store.dialects.Dialect` (its SQL, its
            error codes, its full-text search).
        url: the redacted URL, for messages.
    """

    def __init__(
        self,
        *,
        sync_engine: Engine | None = None,
        async_engine: AsyncEngine | None = None,
        owns_engine: bool,
        workers: int = SQLITE_WORKERS,
        sqlite_path: str | None = None,
        display_url: str | None = None,
        group_commit: bool = True,
    ) -> None:
        self.sync_engine = sync_engine
        self.async_engine = async_engine
        engine = sync_engine if sync_engine is not None else async_engine
        assert engine is not None
        self.dialect: str = engine.dialect.name
        self.db: Dialect = dialect_for(self.dialect)
        self.url = redact(display_url or engine.url)
        self.sqlite_path = sqlite_path
        self._owns_engine = owns_engine
        # SQLite: reads on a pool of worker threads, every write on one writer thread that
        # batches appends (groupcommit.py). In memory (one shared connection) the writer
        # thread runs the reads too. An AsyncEngine: writer tasks per event loop batch appends.
        self._executor = (
            ThreadPoolExecutor(max_workers=workers, thread_name_prefix="multi_agent_sqlite")
            if sync_engine is not None and workers > 1
            else None
        )
        self._writer = (
            ThreadWriter("multi_agent_sqlite_writer", self._writer_batch, self._writer_one)
            if sync_engine is not None
            else None
        )
        # (Its savepoint statements are PostgreSQL's; an injected aiosqlite engine writes one
        # transaction a call, as before.)
        self._async_writer: AsyncWriter | None = (
            AsyncWriter(self, writers=_writers_for(async_engine),
                        pool_room=_pool_room(async_engine))
            if async_engine is not None and group_commit and self.dialect == "postgresql"
            else None
        )
        # An injected PostgreSQL engine whose pool hands connections to any loop: it may only
        # be used from one event loop (see _check_loop; the store's own engines have a pool
        # per loop, looppool.py).
        self._one_loop: asyncio.AbstractEventLoop | None = None
        self._loop_bound = (
            async_engine is not None and self.dialect == "postgresql"
            and not isinstance(async_engine.sync_engine.pool, (LoopPool, NullPool))
        )
        self._local = threading.local()
        self._conns: list[Connection] = []
        self._conns_lock = threading.Lock()  # guards _conns, _active, _identity*, _lost
        # The file's identity, (st_dev, st_ino), from when the first connection opened it
        # (that connection may be what creates it); every transaction compares the path's
        # against it. None: not recorded yet, or not a file we can stat (memory, a URI).
        self._identity: tuple[int, int] | None = None
        self._identity_known = sqlite_path is None
        self._active = 0  # transactions between their entry check and their end
        self._lost: tuple[str, str] | None = None  # (message, cause) once the file is gone
        # INSERT ... ON CONFLICT DO NOTHING of an app's / a user's state row (scopes.py).
        self.ensure_app_row = self.db.ensure_app_row
        self.ensure_user_row = self.db.ensure_user_row

    # -- running ----------------------------------------------------------------------------

    async def run(
        self, fn: Callable[[Connection], T], *, write: bool, batch: bool = False,
        locks: Locks | None = None,
        fast: Callable[[Connection, Any], Awaitable[T]] | None = None,
        with_rows: Callable[[Connection, RowsRead], T] | None = None,
        planned: Callable[[RowsRead], Any] | None = None,
        stored: Callable[[T], None] | None = None,
    ) -> T:
        """Runs ``fn(conn)`` in one transaction, committing on return, rolling back on error.

        ``batch=True`` (a write): ``fn`` may share its transaction with other such writes that
        are queued at the same time (group commit, ``groupcommit.py``): it runs inside its own
        savepoint, its exception is raised here alone, and this returns once the shared
        ``COMMIT`` has. ``fn`` must then be safe to run again in a new transaction (it may be,
        if the shared one is lost under another write) and must not commit or roll back.
        ``locks``: the rows it locks, for a PostgreSQL batch to lock first (LOCK ORDER in
        groupcommit.py). ``fast``: for a PostgreSQL write that runs alone, a coroutine function
        to try first, ``fast(conn, driver)`` on the driver's own connection outside a
        transaction, raising ``groupcommit.Declined`` when it stored nothing (``rowcache.py``;
        see :attr:`runs_fast`, :meth:`_run_on_driver`). ``with_rows``: for a PostgreSQL write in
        a batch, a function to run instead of ``fn`` on the rows the batch locked and read
        (``groupcommit.Item.with_rows``); ``planned``: tried before it, the write planned on
        those rows, sent later with others of its kind (``groupcommit.Item.planned``).

        Cancelled, a write that goes through a writer (every SQLite write; a PostgreSQL
        ``batch`` write) is dropped if the writer has not taken it, and otherwise waited for:
        ``stored(result)`` is called if it was stored, then ``CancelledError`` is raised
        (``groupcommit.settle_cancelled``).
        """
        if self._loop_bound:
            self._check_loop()
        try:
            if self._writer is not None and (write or self._executor is None):
                loop = asyncio.get_running_loop()
                item = Item(fn, write, batch and write, contextvars.copy_context(), loop,
                            loop.create_future())
                self._writer.submit(item)
                try:
                    await item.future
                except asyncio.CancelledError:
                    await settle_cancelled(item, stored)
                    raise
                return outcome(item)  # type: ignore[no-any-return]
            if self._executor is not None:
                # The result comes back in ``box``, not as the executor future's result: the
                # event loop keeps that future (in the handle that resumes us) until our
                # caller's next await, so a 10,000-event session dropped by the caller would
                # stay alive and be freed during its next store call (~20 ms in that call).
                # The worker runs in a copy of the caller's context (as asyncio.to_thread
                # does): the current OpenTelemetry span, and anything else kept in
                # contextvars, is the caller's there too (~0.1 µs).
                box: list[T] = []
                loop = asyncio.get_running_loop()
                context = contextvars.copy_context()
                await loop.run_in_executor(
                    self._executor, context.run, self._run_into, box, fn, write
                )
                return box.pop()
            assert self.async_engine is not None
            if batch and write and self._async_writer is not None:
                return await self._async_writer.run(fn, locks, fast, with_rows, planned, stored)
            return await self._run_async(fn, write)
        except StoreError:
            raise
        except (TimeoutError, DBAPIError, OSError, sqlite3.Error) as exc:
            raise self.translate(exc) from exc
        except Exception as exc:  # asyncpg raises its own classes outside DBAPIError at connect
            translated = self.translate(exc) if self.db.is_connection_error(exc) else None
            if translated is None:
                raise
            raise translated from exc

    def _check_loop(self) -> None:
        loop = asyncio.get_running_loop()
        if self._one_loop is None:
            self._one_loop = loop
        elif loop is not self._one_loop:
            where = "was used on an event loop that is now closed" if (
                self._one_loop.is_closed()) else "is in use on another event loop"
            raise StoreError(
                f"This service's database engine was given to it (db_engine) and {where}; its "
                "pooled asyncpg connections belong to that loop and cannot serve this one. Give "
                "the service a URL instead (its own engine keeps a pool per event loop), or "
                "create the engine with poolclass=multi_agent.store.looppool.LoopPool (or "
                "NullPool). Nothing was written by this call."
            )

    def limit_batches(self, writers: int) -> None:
        """How many PostgreSQL batches may run at once in an event loop (default
        ``groupcommit.PG_WRITERS``; 1: one after another, e.g. to see what one batch holds).
        SQLite has one writer thread whatever this says."""
        if writers < 1:
            raise InvalidValueError("writers must be 1 or more.")
        if self._async_writer is not None:
            self._async_writer.writers = writers

    def writer_stats(self) -> WriterStats | None:
        """What the group-commit writer has done (None: this backend has none)."""
        writer = self._writer or self._async_writer
        return writer.stats if writer is not None else None

    def writes_queued(self) -> int:
        """Writes waiting for the group-commit writer (not counting the ones it is running)."""
        writer = self._writer or self._async_writer
        return writer.queued() if writer is not None else 0

    @property
    def runs_fast(self) -> bool:
        """Whether ``run(fast=...)`` may use its fast path (PostgreSQL's group-commit writer)."""
        return self._async_writer is not None

    async def _run_on_driver(
        self, fast: Callable[[Connection, Any], Awaitable[T]], held: Held | None,
        context: contextvars.Context,
    ) -> T:
        """``await fast(conn, driver)`` on a pooled connection (or on ``held``, kept there
        again afterwards, as ``_run_async`` does), ``driver`` being its asyncpg connection,
        outside any transaction (each statement is its own), run in ``context`` (the caller's:
        its span). Nothing of SQLAlchemy's runs meanwhile (no greenlet, no adapted cursor, no
        isolation level set and reset: ~0.13 ms of CPU of a lone append's ~0.5 on this box).

        Raises:
            Declined: ``fast`` stored nothing, or the connection was not one to use as it is
                (invalidated, in a transaction).
            Exception: the driver's own errors; a failure that may have left the connection
                unusable (it is lost, a timeout) invalidates it first.
        """
        pooled = await self._checkout(held)
        keep = False
        try:
            if not reusable(pooled):
                raise Declined("connection not reusable")
            driver = pooled.sync_connection.connection.driver_connection
            if driver is None or driver.is_in_transaction():
                raise Declined("connection in a transaction")
            try:
                result = await asyncio.get_running_loop().create_task(
                    context.run(fast, pooled.sync_connection, driver), context=context)
            except Declined:  # nothing stored, the connection is fine: the append's next try
                keep = held is not None and reusable(pooled)
                raise
            except Exception as exc:
                if isinstance(exc, TimeoutError) or driver.is_closed() or (
                        self.db.is_connection_error(exc)):
                    await pooled.invalidate()  # (terminates it: no exchange with the server)
                raise
            keep = held is not None and reusable(pooled)
            return result
        finally:
            await _give_back(pooled, held, keep)

    async def _checkout(self, held: Held | None) -> Any:
        """A writer's kept connection (taken from ``held``), else one from the pool."""
        assert self.async_engine is not None
        return (held.take() if held is not None else None) or (
            await self.async_engine.connect())

    async def _run_async(
        self, fn: Callable[[Connection], T], write: bool, held: Held | None = None
    ) -> T:
        """One transaction on a pooled connection of the ``AsyncEngine`` (``held``: a writer
        task's connection kept between its transactions, used and kept again after a commit;
        see ``groupcommit.LINGER_SECONDS``).

        Pooled connections are not pinged before use (that was a round trip per call, 3 of an
        append's 7): a connection found dead (a restarted server, a killed backend) before the
        ``COMMIT`` was sent means nothing was stored, so the call runs once more on a new
        connection (SQLAlchemy has discarded the pool's other connections of that time). A
        deadlock's victim runs again too (``groupcommit.CONTENTION_RETRIES`` times).
        """
        assert self.async_engine is not None
        contended = 0
        attempt = 0
        while True:
            attempt += 1
            committing = False
            try:
                pooled = await self._checkout(held)
                keep = False
                try:
                    aconn = pooled
                    if write:
                        if self.db.write_options:
                            aconn = await aconn.execution_options(**self.db.write_options)
                    elif self.db.read_options:  # e.g. one snapshot for the whole read
                        aconn = await aconn.execution_options(**self.db.read_options)
                    trans = await aconn.begin()
                    try:
                        result = await aconn.run_sync(fn)
                    except BaseException:
                        await quiet_rollback(trans)
                        raise
                    committing = True
                    await trans.commit()
                    keep = held is not None and aconn is pooled and reusable(pooled)
                    return result
                finally:
                    await _give_back(pooled, held, keep)
            except Exception as exc:
                if committing:
                    raise
                if is_contention(exc) and contended < CONTENTION_RETRIES:
                    # A deadlock's victim (see LOCK ORDER in groupcommit.py): nothing of it
                    # is stored; the other transaction goes on once this one rolled back.
                    contended += 1
                    if self._async_writer is not None:
                        self._async_writer.stats.contention_retries += 1
                    continue
                if attempt > 1 + contended or not is_disconnect(exc):
                    raise

    def _run_into(self, box: list[T], fn: Callable[[Connection], T], write: bool) -> None:
        box.append(self._run_sync(fn, write))

    def _enter(self) -> tuple[Connection, Any]:
        """The calling thread's connection, once the file is known to be the one we opened.

        Every successful call must be paired with :meth:`_leave`.
        """
        with self._conns_lock:
            if self._lost is not None:
                raise DatabaseUnavailableError(self._lost[0], cause=self._lost[1])
            self._active += 1
        try:
            if self._identity is not None:
                self._check_identity()
            conn = getattr(self._local, "conn", None)
            if conn is None or conn.closed:
                assert self.sync_engine is not None
                conn = self.sync_engine.connect()
                self._local.conn = conn
                with self._conns_lock:
                    self._conns.append(conn)
                if not self._identity_known:
                    self._record_identity()
            raw = conn.connection.dbapi_connection
            assert raw is not None
        except BaseException:
            self._leave()
            raise
        return conn, raw

    def _leave(self) -> None:
        with self._conns_lock:
            self._active -= 1
            retire = self._lost is not None and self._active == 0 and bool(self._conns)
        if retire:
            self._retire()

    def _rollback(self, conn: Connection, raw: Any) -> None:
        try:
            if conn.in_transaction():
                conn.rollback()
            if raw.in_transaction:
                raw.rollback()
        except Exception:
            conn.invalidate()
            self._local.conn = None

    def _run_sync(self, fn: Callable[[Connection], T], write: bool) -> T:
        """Runs in a worker thread on that thread's own long-lived connection.

        Checking a connection out of the pool and back costs ~300 µs a call, three times the
        statements of an append, so each worker thread keeps one. The transaction is begun on
        the driver (``BEGIN IMMEDIATE`` for writes) and SQLAlchemy's own bookkeeping follows.

        On a SQLite file, every transaction first checks (one ``os.stat``, ~1.5 µs) that the
        path still names the file the connections have open: see :meth:`_check_identity`.
        """
        conn, raw = self._enter()
        try:
            try:
                raw.execute("BEGIN IMMEDIATE" if write else "BEGIN")
                result = fn(conn)
                if write and self._identity is not None:
                    # Again before the commit: a long write (an import of thousands of events)
                    # must not be acknowledged into a file deleted or replaced meanwhile.
                    self._check_identity()
                if conn.in_transaction():
                    conn.commit()
                if raw.in_transaction:
                    raw.commit()
                return result
            except BaseException:
                self._rollback(conn, raw)
                raise
        finally:
            self._leave()

    # -- the writer thread (SQLite): group commit -------------------------------------------

    def _writer_one(self, item: Item) -> None:
        """A write that runs alone (or, in memory, any call): its own transaction."""
        try:
            outcome = [(item, True, item.context.run(self._run_sync, item.fn, item.write))]
        except BaseException as exc:
            outcome = [(item, False, exc)]
        resolve_all(outcome)

    def _writer_batch(self, items: list[Item]) -> list[Item]:
        """Runs ``items`` in one transaction (savepoints only once one raises) and resolves them.

        Returns the items to run again (the transaction was lost under one of them, which is
        resolved with its error); empty otherwise.
        """
        try:
            conn, raw = self._enter()
        except BaseException as exc:
            for item in items:
                resolve(item, False, exc)
            return []
        try:
            return self._writer_batch_on(conn, raw, items)
        finally:
            self._leave()

    def _writer_batch_on(self, conn: Connection, raw: Any, items: list[Item]) -> list[Item]:
        """Savepoints only when needed, as on PostgreSQL (``groupcommit.AsyncWriter``): the
        items first run one after another with none (``SAVEPOINT`` and ``RELEASE`` are two
        more statements an item, each a release and re-take of the GIL by this thread). If an
        item raises there, its writes so far cannot be undone alone: the whole transaction is
        rolled back (nothing of it was stored or acknowledged) and the batch runs again with a
        savepoint an item, where the one that raises fails alone."""
        if not self._begin_batch(conn, raw, items):
            return []
        outcomes: list[tuple[Item, bool, Any]] = []
        for item in items:
            try:
                outcomes.append((item, True, item.context.run(item.fn, conn)))
            except BaseException:
                outcomes.clear()
                self._rollback(conn, raw)
                if self._writer is not None:
                    self._writer.stats.savepoint_batches += 1
                return self._writer_batch_savepoints(conn, raw, items)
        return self._commit_batch(conn, raw, outcomes)

    def _begin_batch(self, conn: Connection, raw: Any, items: list[Item]) -> bool:
        try:
            raw.execute("BEGIN IMMEDIATE")
        except BaseException as exc:
            self._rollback(conn, raw)
            for item in items:
                resolve(item, False, exc)
            return False
        return True

    def _writer_batch_savepoints(self, conn: Connection, raw: Any,
                                 items: list[Item]) -> list[Item]:
        if not self._begin_batch(conn, raw, items):
            return []
        outcomes: list[tuple[Item, bool, Any]] = []
        for index, item in enumerate(items):
            try:
                raw.execute("SAVEPOINT ma_item")
            except BaseException as exc:  # the transaction is unusable: start again
                self._rollback(conn, raw)
                resolve(item, False, exc)
                return [o[0] for o in outcomes] + items[index + 1:]
            try:
                result = item.context.run(item.fn, conn)
            except BaseException as exc:
                try:
                    if conn.invalidated or not raw.in_transaction:
                        raise exc  # SQLite rolled the whole transaction back (or worse)
                    raw.execute("ROLLBACK TO ma_item")
                    raw.execute("RELEASE ma_item")
                except BaseException:
                    self._rollback(conn, raw)
                    resolve(item, False, exc)
                    return [o[0] for o in outcomes] + items[index + 1:]
                outcomes.append((item, False, exc))
                continue
            try:
                raw.execute("RELEASE ma_item")
            except BaseException as exc:
                self._rollback(conn, raw)
                resolve(item, False, exc)
                return [o[0] for o in outcomes] + items[index + 1:]
            outcomes.append((item, True, result))
        return self._commit_batch(conn, raw, outcomes)

    def _commit_batch(self, conn: Connection, raw: Any,
                      outcomes: list[tuple[Item, bool, Any]]) -> list[Item]:
        try:
            if self._identity is not None:  # as in _run_sync, before the commit
                self._check_identity()
            if conn.in_transaction():
                conn.commit()
            if raw.in_transaction:
                raw.commit()
        except BaseException as exc:  # nothing of the batch is stored: no one is acknowledged
            self._rollback(conn, raw)
            for item, ok, value in outcomes:
                resolve(item, False, exc if ok else value)
            return []
        resolve_all(outcomes)
        return []

    # -- the file under the connections (SQLite) --------------------------------------------

    def _record_identity(self) -> None:
        """Notes which file the first connection opened (it exists now: SQLite created it)."""
        assert self.sqlite_path is not None
        try:
            st = os.stat(self.sqlite_path)
            identity: tuple[int, int] | None = (st.st_dev, st.st_ino)
        except OSError:
            identity = None  # e.g. a file: URI, not a plain path: no check
        with self._conns_lock:
            if not self._identity_known:
                self._identity, self._identity_known = identity, True
                return
            recorded = self._identity
        if recorded is not None and identity != recorded:  # replaced between two first opens
            self._lose("deleted" if identity is None else "replaced")

    def _check_identity(self) -> None:
        """Raises, and marks the backend lost, if the path no longer names the file we opened.

        SQLite itself does not notice: after ``rm data.db``, or ``mv backup.db data.db`` /
        ``os.replace``, its open descriptors keep reading and writing the old inode, and
        appends are acknowledged into a file that no process opening the path will see.
        """
        assert self.sqlite_path is not None and self._identity is not None
        try:
            st = os.stat(self.sqlite_path)
        except (FileNotFoundError, NotADirectoryError):
            self._lose("deleted")
        except OSError:
            return  # cannot tell (e.g. the directory lost its search permission): carry on
        else:
            if (st.st_dev, st.st_ino) != self._identity:
                self._lose("replaced")

    def _lose(self, cause: str) -> None:
        path = self.sqlite_path
        name = os.path.basename(path or "")
        restore = (
            f"When restoring a backup by copying or renaming it into place, first stop every "
            f"process that uses the database, then remove the old {name}-wal and {name}-shm "
            "files: SQLite replays a -wal left beside a restored file over it."
        )
        if cause == "deleted":
            message = (
                f"The SQLite database file {path} was deleted while this program had it open. "
                "Nothing was written: this call and every later one of this store fail rather "
                "than write into the deleted file, which no new process would see. Restart the "
                "program: it then opens the file now at that path (or creates a new, empty "
                "one); if the deletion was a mistake, restore the file from a backup before "
                f"restarting. {restore}"
            )
        else:
            message = (
                f"The SQLite database file {path} was replaced by another file (renamed over "
                "it, e.g. a backup restored with mv or os.replace) while this program had the "
                "old one open. Nothing was written: this call and every later one of this store "
                "fail rather than write into the old file, which is no longer at that path. "
                f"Restart the program so that it opens the file now at that path. {restore} "
                "This process empties the old file's -wal as it lets go of it; a process "
                "killed before it noticed the replacement leaves its -wal behind, and the next "
                "process to open the path replays it over the new file (undoing a restore): "
                "in that case stop everything, remove the -wal/-shm and restore again."
            )
        with self._conns_lock:
            if self._lost is None:
                self._lost = (message, cause)
            message, cause = self._lost
        raise DatabaseUnavailableError(message, cause=cause)

    def _retire(self) -> None:
        """Empties the lost file's -wal, then closes every connection to it.

        Runs once no transaction is active (none can start: the backend is lost). Measured
        with SQLite 3.40.1: closing the last connection to a file that was deleted or renamed
        over does *not* checkpoint or remove its ``-wal``/``-shm`` (SQLite skips the close-time
        checkpoint when the file has moved, SQLITE_READONLY_DBMOVED); the ``-wal`` stays
        beside the path with the old file's pages, and the next process to open the path
        replays them over whatever file is there now: a restored backup then reads as the old
        database, and that process's close checkpoints them into it for good. So the -wal is
        emptied here first: ``wal_checkpoint(TRUNCATE)`` copies its pages into the old inode
        (harmless: nothing will read it) and truncates it to 0 bytes; measured, a process that
        opens the path afterwards, even if this one is SIGKILLed, then sees exactly the file
        that is there. Not covered (nothing here can make it safe): a process that was killed
        before it noticed leaves a full -wal; and a process that opened the new file while
        this one still had the old one open shares this -wal and -shm (it sees the old pages
        over the new file, and emptying the -wal drops what it wrote since).
        """
        with self._conns_lock:
            conns, self._conns = self._conns, []
        live = [c for c in conns if not c.closed and not c.invalidated]
        for conn in live:
            try:
                raw = conn.connection.dbapi_connection
                assert raw is not None
                # Waits (at most 2 s) for a reader of the old file in another process.
                raw.execute("PRAGMA busy_timeout=2000")
                raw.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
                break  # one connection does it for all (if busy, another would wait as long)
            except Exception:  # this connection is unusable: try the next
                continue
        for conn in live:
            try:
                conn.invalidate()  # closes the sqlite3 connection (close() would pool it)
                conn.close()
            except Exception:  # already lost; closing is best effort
                pass

    # -- what the dialect decides ------------------------------------------------------------

    def insert_ignore(self, table: Table) -> Any:
        """``INSERT ... ON CONFLICT DO NOTHING`` for this database."""
        return self.db.insert_ignore(table)

    def advisory_lock_sql(self) -> str | None:
        """A statement that serialises schema set-up across processes (SQLite: the write lock)."""
        return self.db.advisory_lock_sql(SCHEMA_LOCK_KEY)

    def translate(self, exc: BaseException) -> StoreError:
        """Turns a driver failure into an error that names the cause and the fix."""
        return self.db.translate(exc, url=self.url, sqlite_path=self.sqlite_path)

    # -- lifecycle --------------------------------------------------------------------------

    async def close(self) -> None:
        """Closes the pool and threads this backend created (an injected engine is left open).

        A SQLite file that was deleted or replaced since the last transaction is noticed here
        too, so that its -wal is emptied rather than left beside the new file (see _retire).
        """
        if self._writer is not None:
            self._writer.close()
        if self._async_writer is not None:
            await self._async_writer.close()
        if self._executor is not None:
            self._executor.shutdown(wait=True)
        if self.sync_engine is not None:
            if self._identity is not None and self._lost is None:
                try:
                    self._check_identity()
                except DatabaseUnavailableError:
                    pass
            if self._lost is not None:
                self._retire()
            for conn in self._conns:
                conn.close()
            self._conns.clear()
        if self._owns_engine:
            if self.sync_engine is not None:
                self.sync_engine.dispose()
            if self.async_engine is not None:
                await self.async_engine.dispose()


def _pool_room(engine: AsyncEngine) -> int | None:
    """The connections the engine's pool can hand out at once (None: a pool without a size,
    e.g. ``NullPool``)."""
    pool = engine.sync_engine.pool
    try:
        return int(pool.size()) + max(0, int(getattr(pool, "_max_overflow", 0)))  # type: ignore[attr-defined]
    except (AttributeError, TypeError, ValueError):
        return None


def _writers_for(engine: AsyncEngine) -> int:
    """``PG_WRITERS``, or fewer when the pool is smaller: the batches running at once leave
    at least one pooled connection for reads (``?pool_size=1&max_overflow=0``: one writer)."""
    room = _pool_room(engine)
    return PG_WRITERS if room is None else max(1, min(PG_WRITERS, room - 1))


SCHEMA_LOCK_KEY = 7308117251902
"""The advisory lock (where the database has them) held while the schema is set up."""


def open_backend(
    db_url: str | None,
    db_engine: AsyncEngine | None,
    *,
    sqlite_synchronous: str = "FULL",
    sqlite_busy_timeout: float = 30.0,
    sqlite_pragmas: dict[str, Any] | None = None,
    engine_kwargs: dict[str, Any] | None = None,
    sqlite_wal_limit_bytes: int = SQLITE_WAL_LIMIT_BYTES,
) -> Backend:
    """Builds the backend for a URL or an injected engine.

    ``sqlite_wal_limit_bytes``: SQLite's ``journal_size_limit`` (see SQLITE_WAL_LIMIT_BYTES).

    Raises:
        InvalidValueError: (a ValueError) a malformed URL, or both/neither of url and engine.
        StoreError: a driver that is not installed, or a SQLite directory that does not exist.
    """
    if (db_url is None) == (db_engine is None):
        raise InvalidValueError("Give exactly one of db_url or db_engine.")
    if sqlite_synchronous.upper() not in ("OFF", "NORMAL", "FULL", "EXTRA"):
        raise InvalidValueError("sqlite_synchronous must be OFF, NORMAL, FULL or EXTRA.")
    if (
        not isinstance(sqlite_wal_limit_bytes, int)
        or isinstance(sqlite_wal_limit_bytes, bool)
        or sqlite_wal_limit_bytes < -1
    ):
        raise InvalidValueError(
            "sqlite_wal_limit_bytes must be a whole number of bytes (0 or more), or -1 for no "
            f"limit (got {sqlite_wal_limit_bytes!r})."
        )
    options = EngineOptions(
        sqlite_synchronous=sqlite_synchronous.upper(), sqlite_busy_timeout=sqlite_busy_timeout,
        sqlite_pragmas=check_pragmas(sqlite_pragmas),
        sqlite_wal_limit_bytes=sqlite_wal_limit_bytes, engine_kwargs=dict(engine_kwargs or {}),
    )
    if db_engine is not None:
        if known(db_engine.dialect.name):
            dialect_for(db_engine.dialect.name).adopt(db_engine, options)
        return Backend(async_engine=db_engine, owns_engine=False)

    assert db_url is not None
    try:
        url = make_url(db_url)
    except ArgumentError as exc:
        scheme = db_url.split(":", 1)[0][:40] if ":" in db_url else ""
        raise InvalidValueError(
            "The database URL given" + (f" (starting {scheme + ':'!r})" if scheme else "")
            + " is not a database URL; it is not shown, since it may hold a password. Use "
            "e.g. sqlite+aiosqlite:///./multi_agent_data.db or "
            "postgresql+asyncpg://user:password@host:5432/dbname."
        ) from exc
    backend_name = url.get_backend_name()
    if known(backend_name):
        return dialect_for(backend_name).open(url, db_url, options)
    raise InvalidValueError(
        f"Unsupported database {backend_name!r} in {redact(db_url)}: multi-agent stores "
        "sessions in SQLite (sqlite+aiosqlite:///file.db) or PostgreSQL "
        "(postgresql+asyncpg://...)."
    )


async def _give_back(pooled: Any, held: Held | None, keep: bool) -> None:
    """Keeps a writer task's connection in ``held`` (``keep``), else returns it to the pool."""
    if keep:
        assert held is not None
        held.conn = pooled
    else:
        await pooled.close()
