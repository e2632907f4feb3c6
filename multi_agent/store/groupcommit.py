"""Group commit: one writer per database in a process, concurrent appends in one transaction.

Without it every append is its own transaction on one of several worker threads, and with many
appends at once those threads mostly wait, in SQLite's busy handler, for the write lock that
another of them holds (measured, 64 tasks: 72% of their busy time), and every append pays its
own ``COMMIT`` (one fsync). Here one thread (SQLite) or, per event loop, up to
``PG_WRITERS`` tasks each running one batch at a time on its own connection (an
``AsyncEngine``, PostgreSQL) do every write of a backend:

* It takes what is queued: the first item, then everything that queued meanwhile (never a
  timer: a lone append is run as soon as it arrives, and batches form only from what arrived
  during the previous commit).
* A run of *batchable* items (appends, session creation) shares one transaction: one
  ``BEGIN IMMEDIATE`` (PostgreSQL: one ``BEGIN``), one ``SAVEPOINT`` per item, one ``COMMIT``.
  An item that raises is rolled back to its savepoint and fails alone, with its own exception
  raised to its own caller; the others go on. Items run in arrival order, so a later append to
  the same session sees an earlier one.
* Nothing is acknowledged (the caller's ``await`` returns) before the batch's ``COMMIT``
  returned; a ``COMMIT`` that fails fails every item of the batch that had succeeded.
* If the transaction itself is lost under an item (SQLite rolls back the whole transaction on
  some errors: a full disk, an I/O error), that item fails with its error and every other item
  of the batch runs again in a fresh transaction (its work was rolled back with the rest).
* Any other write (migrations, prune, forget) runs alone, in its own transaction, in order.

Other processes on the same database coordinate as before: SQLite's write lock with its busy
timeout, PostgreSQL's row locks.

LOCK ORDER (PostgreSQL). A transaction that holds several rows' locks must take them in one
order, or two processes deadlock (measured before this was done: 3 processes whose sessions
shared 4 users deadlocked within seconds, on session creation and on batched appends). The order
is: session rows, then ``user:`` rows, then ``app:`` rows, each kind sorted by key. A lone append
locks one of each in that order; a session creation locks its user row, then its app row (and
none when it writes no such keys); a batch of several writes first locks every session and
user row its items will lock, in that order, in one statement (``PostgresDialect.batch_lock``),
and its app rows (last in the order) only when it reaches its first item that writes one: the
items that write ``app:`` keys run at the batch's end (``app_rows_last``), so the one row that
every batch of an app shares is held from there to the ``COMMIT``, not for the whole batch
(``bench.concurrency``, one append in ten writing an ``app:`` key, durable server, 2-core box:
with the app row locked first, 8 tasks made 296-430 appends/s and 64 tasks 430-479; locked
last, 493 and 607-637). So no two batches, of this process or another, wait on each other
in a cycle. What is still possible (a row that does not exist yet when the batch starts, a
prune or a forget in another order) is caught as PostgreSQL's deadlock or serialization error:
the item is rolled back to its savepoint and run again after the batch commits (a lone
transaction: run again whole), up to ``CONTENTION_RETRIES`` times.
"""

from __future__ import annotations

import asyncio
import contextvars
import queue
import threading
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass, field
from typing import Any, Protocol

from .looppool import drop_driver_connection

__all__ = [
    "CONTENTION_RETRIES", "LINGER_SECONDS", "PG_WRITERS", "AsyncWriter", "Held", "Item",
    "Locks", "NoRows", "RowsRead", "ThreadWriter",
    "WriterStats",
    "app_rows_last", "claim", "row_keys", "is_contention", "is_disconnect", "outcome",
    "quiet_rollback", "resolve", "resolve_all", "reusable", "settle_cancelled",
]

CONTENTION_RETRIES = 5
"""How many times a write that PostgreSQL chose as a deadlock's (or serialization failure's)
victim is run again before its caller gets the error. Nothing of it was stored each time."""

_CONTENTION_SQLSTATES = ("40P01", "40001")  # deadlock_detected, serialization_failure

PG_WRITERS = 4
"""PostgreSQL batches one event loop runs at once (each on its own pooled connection). One
writer leaves the server idle while it waits for each round trip; measured on the 2-core box
(64 tasks, durable server): 1 writer 670 appends/s, 2: 778, 4: 805, 8: 799.

The first writer to finish takes the whole queue into its next batch. Tried and left: each
writer taking a ``PG_WRITERS``-th of it (more, smaller batches side by side, so that this
process's work and the server's overlap): one process with 64 tasks went from ~610 to 490-740
appends/s, but 2 processes × 64 tasks fell from ~1,160 to 560-840 and 4 × 64 from ~830 to
480-760 (more transactions, each waiting its turn for the app row and paying its own fsync).
Measured with ``app_rows_last`` below in both, durable server, 2-core box."""


LINGER_SECONDS = 0.1
"""How long a PostgreSQL writer task waits, keeping its connection, for the next write once
its queue is empty (it is woken at once when one comes). Checking a connection out of the
pool and back through SQLAlchemy's async layer costs ~0.17 ms of CPU a transaction, about a
tenth of a lone append's; a stream of appends (an agent's events during a turn) keeps one
connection instead. The connection goes back to the pool after this much idle time, or when
the service closes."""


@dataclass(frozen=True, slots=True)
class Locks:
    """The rows a write will lock (see LOCK ORDER): its session row (None: it creates the
    session), and whether it writes the user's and the app's state row."""

    app_name: str
    user_id: str
    session_id: str | None
    user: bool
    app: bool


@dataclass(slots=True, eq=False)
class Item:
    """One write waiting for the writer, and where its outcome goes."""

    fn: Callable[[Any], Any]
    write: bool
    batch: bool  # may share a transaction (savepoint) with other batchable items
    context: contextvars.Context
    loop: asyncio.AbstractEventLoop | None
    future: asyncio.Future[None] | None
    # The outcome: [True, result] or [False, exception]; read by the caller once woken. (The
    # result is not the future's: the event loop keeps a finished future alive until the
    # caller's next await, and a large result must be freed when the caller drops it.)
    outcome: list[Any] = field(default_factory=list)
    locks: Locks | None = None  # what it locks (PostgreSQL batches lock these first)
    tries: int = 0  # times it was a deadlock's victim and put back
    # Run alone, try this first outside a transaction (``rowcache.py``'s one-statement
    # append): ``await fast(conn, driver)``, on the driver's own connection
    # (``Backend._run_on_driver``); ``Declined`` from it: nothing was stored, ``fn`` runs as
    # usual.
    fast: Callable[[Any, Any], Awaitable[Any]] | None = None
    # In a PostgreSQL batch, run this instead of ``fn``: ``with_rows(conn, rows)`` with the
    # rows the batch locked, as read then and as its earlier items left them (``RowsRead``);
    # ``NoRows`` from it (before it wrote anything): ``fn`` runs as usual.
    with_rows: Callable[[Any, RowsRead], Any] | None = None
    # Tried before ``with_rows``: ``planned(rows)`` returns the item's writes, planned on the
    # rows, as a statement and its parameters to send later with others of its kind
    # (``Planned``), and moves ``rows`` on as they will leave them; ``NoRows``: not plannable,
    # nothing changed (``with_rows`` or ``fn`` then runs).
    planned: Callable[[RowsRead], Planned] | None = None
    # Taken (``claim``) by whoever comes first: the writer about to run the item, or its
    # caller giving up on it (cancelled before the writer took it: it never runs).
    ticket: list[None] = field(default_factory=lambda: [None])


def claim(item: Item) -> bool:
    """True for the first to ask, the writer or the item's cancelled caller (``list.pop`` is
    atomic: no lock, from any thread)."""
    try:
        item.ticket.pop()
    except IndexError:
        return False
    return True


def outcome(item: Item) -> Any:
    """``item``'s result, or raises its exception (once its writer has woken it)."""
    ok, value = item.outcome
    item.outcome.clear()
    if ok:
        return value
    raise value


async def settle_cancelled(item: Item, stored: Callable[[Any], None] | None = None) -> None:
    """For the caller of ``item``, cancelled while it waited (``await item.future``), before
    it re-raises the ``CancelledError``.

    Cancelled before a writer took the item, the item is dropped (it never runs): this returns
    at once. Cancelled after, the write cannot be called back: this waits for its outcome
    (further cancellations too) and calls ``stored(result)`` if it was stored. So when a
    cancelled write's caller sees the cancellation, the write is stored or never will be: a
    read made next sees which (before, the writer could commit it after the caller had gone
    on, as if it were never made).
    """
    if claim(item):
        return
    loop = asyncio.get_running_loop()
    while not item.outcome:
        # The writer sets the outcome first and then wakes whichever future is the item's
        # then: a new one set before the outcome is looked at cannot be missed.
        item.future = loop.create_future()
        if item.outcome:
            break
        try:
            await item.future
        except asyncio.CancelledError:
            continue
    ok, value = item.outcome
    item.outcome.clear()
    if ok and stored is not None:
        stored(value)


class Planned(Protocol):
    """An item's writes planned on its batch's rows (``rowcache.Plan``)."""

    shape: Hashable  # items of one shape are sent by one statement
    params: dict[str, Any]
    result: Any  # the item's outcome once the batch commits
    keys: tuple[tuple[str, ...], ...]  # the rows it writes (``row_keys``)

    @property
    def statement(self) -> Any: ...  # a ``sql.Prepared`` (its ``executemany``)


class _Pipeline:
    """A batch's planned items not sent yet, by shape, in their order. Items of different
    shapes are sent shape by shape, so one that writes a row an item of another shape not yet
    sent writes must wait for that one to be sent first (``conflicts``)."""

    def __init__(self) -> None:
        self._groups: dict[Hashable, tuple[Any, list[dict[str, Any]]]] = {}
        self._writer_of: dict[tuple[str, ...], Hashable] = {}

    def __bool__(self) -> bool:
        return bool(self._groups)

    def conflicts(self, plan: Planned) -> bool:
        return any(self._writer_of.get(k, plan.shape) != plan.shape for k in plan.keys)

    def add(self, plan: Planned) -> None:
        group = self._groups.get(plan.shape)
        if group is None:
            group = self._groups[plan.shape] = (plan.statement, [])
        group[1].append(plan.params)
        for key in plan.keys:
            self._writer_of[key] = plan.shape

    def take(self) -> list[tuple[Any, list[dict[str, Any]]]]:
        groups = list(self._groups.values())
        self._groups.clear()
        self._writer_of.clear()
        return groups


RowsRead = dict[tuple[str, ...], Any]
"""The rows a PostgreSQL batch locked, read by its lock statement (``PostgresDialect.locked_rows``:
``("s", app, user, session)``, ``("u", app, user)``, ``("a", app)`` -> its columns), and kept
up to date by the items that ran with them (``Item.with_rows``): an item that ran the usual
way takes its rows out (what it wrote is not known here)."""


def row_keys(app_name: str, user_id: str,
             session_id: str | None) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    """The keys of a session's row, its user's and its app's, in ``RowsRead`` (and in
    ``app_rows_last``'s ordering)."""
    return ("s", app_name, user_id, session_id or ""), ("u", app_name, user_id), ("a", app_name)


class NoRows(Exception):
    """A row an item needs was not read by the batch's lock (it does not exist yet, or an item
    before it ran the usual way): the item runs the usual way. Raised before it wrote anything."""


@dataclass(slots=True)
class WriterStats:
    """What a writer has done: for tests and benchmarks (no locking; read-only outside)."""

    batches: int = 0  # shared transactions run (an attempt that was run again counts again)
    items: int = 0  # items run in them
    largest: int = 0  # the most items one of them held
    contention_retries: int = 0  # deadlock victims put back (PostgreSQL)
    savepoint_batches: int = 0  # batches run again with savepoints, an item having raised
    fast: int = 0  # lone items stored by their fast path (``Item.fast``)
    declined: int = 0  # fast paths that stored nothing (the item then ran as usual)
    with_rows: int = 0  # batched items run (or planned) on the rows their batch's lock read;
    # like ``batches``, per attempt: a batch run again after its exchange failed counts again
    planned: int = 0  # of those, items planned on them and sent with others (``Item.planned``)
    exchanges: int = 0  # the ``executemany`` calls that sent them


class Declined(Exception):
    """An item's fast path stored nothing (its rows were not as it expected): run the item."""


def count_batch(stats: WriterStats, size: int) -> None:
    stats.batches += 1
    stats.items += size
    if size > stats.largest:
        stats.largest = size


def resolve(item: Item, ok: bool, value: Any) -> None:
    """Records ``item``'s outcome and wakes its caller (from any thread)."""
    item.outcome[:] = [ok, value]
    del value  # the caller may run before this frame ends: only the item holds the result
    wake(item)


def resolve_all(outcomes: list[tuple[Item, bool, Any]]) -> None:
    """Records every outcome, lets go of them (``outcomes`` is emptied), then wakes the
    callers."""
    by_loop: dict[asyncio.AbstractEventLoop, list[asyncio.Future[None]]] = {}
    for item, ok, value in outcomes:
        item.outcome[:] = [ok, value]
        if item.future is not None and item.loop is not None:
            by_loop.setdefault(item.loop, []).append(item.future)
        del value
    outcomes.clear()
    for loop, futures in by_loop.items():  # one wake-up of each loop for all its callers
        try:
            loop.call_soon_threadsafe(_wake_all, futures)
        except RuntimeError:  # the caller's loop is closed: nobody is waiting any more
            pass


def wake(item: Item) -> None:
    fut, loop = item.future, item.loop
    if fut is None or loop is None:
        return
    try:
        loop.call_soon_threadsafe(_wake, fut)
    except RuntimeError:  # the caller's loop is closed: nobody is waiting any more
        pass


def _wake_all(futures: list[asyncio.Future[None]]) -> None:
    for fut in futures:
        _wake(fut)


def _wake(fut: asyncio.Future[None]) -> None:
    if not fut.done():  # a cancelled caller's future is done already
        fut.set_result(None)


def _signal(fut: asyncio.Future[bool], value: bool) -> None:
    if not fut.done():
        fut.set_result(value)


def take_batches(first: Item, more: list[Item]) -> list[list[Item]]:
    """Splits what was queued into runs: consecutive batchable items together, others alone."""
    runs: list[list[Item]] = []
    for item in [first, *more]:
        if item.batch and runs and runs[-1][0].batch:
            runs[-1].append(item)
        else:
            runs.append([item])
    return runs


class ThreadWriter:
    """The one thread that runs every write of a SQLite backend, batching appends.

    ``run_batch(items)`` and ``run_one(item)`` (given by the backend) do the database work on
    this thread and resolve the items; this class only queues, drains and orders.
    """

    def __init__(
        self, name: str, run_batch: Callable[[list[Item]], list[Item]],
        run_one: Callable[[Item], None],
    ) -> None:
        self._queue: queue.SimpleQueue[Item | None] = queue.SimpleQueue()
        self._run_batch = run_batch
        self._run_one = run_one
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._started = False
        self._start_lock = threading.Lock()
        self._closed = False
        self.stats = WriterStats()

    def queued(self) -> int:
        """Items waiting for the writer (not counting the ones it is running)."""
        return self._queue.qsize()

    def submit(self, item: Item) -> None:
        if not self._started:
            with self._start_lock:
                if not self._started:
                    self._thread.start()
                    self._started = True
        self._queue.put(item)

    def close(self) -> None:
        """Lets the queued writes finish, then stops the thread."""
        with self._start_lock:
            self._closed = True
            started = self._started
        if started:
            self._queue.put(None)
            self._thread.join()

    def _loop(self) -> None:
        pending: list[Item] = []  # items to run again first (their transaction was lost)
        stop = False
        while not stop or pending:
            if pending:
                first, more = pending[0], pending[1:]
                pending = []
            else:
                got = self._queue.get()
                if got is None:
                    break
                fresh = [got]
                while True:  # everything that queued meanwhile, no waiting
                    try:
                        nxt = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if nxt is None:
                        stop = True
                        break
                    fresh.append(nxt)
                fresh = [item for item in fresh if claim(item)]  # not the ones given up
                if not fresh:
                    continue
                first, more = fresh[0], fresh[1:]
            runs = take_batches(first, more)
            for i, run in enumerate(runs):
                if run[0].batch:
                    count_batch(self.stats, len(run))
                if len(run) > 1:  # a lone item needs no savepoint: it runs as itself
                    again = self._run_batch(run)
                    if again:  # to be run before anything that came later
                        for later in runs[i + 1:]:
                            again.extend(later)
                        pending = again
                        break
                else:
                    self._run_one(run[0])


def is_contention(exc: BaseException) -> bool:
    """True for PostgreSQL's deadlock or serialization failure: the statement was refused to
    break a lock cycle; nothing of the transaction's work is kept past its savepoint, and
    running it again succeeds once the other transaction is done."""
    from .dialects.base import sqlstate

    return sqlstate(exc) in _CONTENTION_SQLSTATES


def is_disconnect(exc: BaseException) -> bool:
    """True for a failure that SQLAlchemy recognised as a dead connection (it invalidated
    the pool): a server restart, a killed backend. Not a timeout: retrying a stalled server
    would only double the wait."""
    return bool(getattr(exc, "connection_invalidated", False))


class _LoopQueue:
    __slots__ = ("busy", "closing", "items", "waiting")

    def __init__(self) -> None:
        self.items: list[Item] = []
        self.busy = 0  # writer tasks (running batches, or waiting for the next one)
        self.waiting: list[asyncio.Future[bool]] = []  # idle writers' wake-ups
        self.closing = False


class Held:
    """A writer task's connection between its transactions (None: it has none)."""

    __slots__ = ("conn",)

    def __init__(self) -> None:
        self.conn: Any = None

    def take(self) -> Any:
        conn, self.conn = self.conn, None
        return conn


class AsyncWriter:
    """Group commit on an ``AsyncEngine`` (PostgreSQL): up to ``writers`` writer tasks per
    event loop, each running one batch at a time on its own pooled connection.

    An append that arrives while fewer than ``writers`` batches run starts one at once; appends
    that arrive while all of them run wait, and the first writer to finish takes them all
    together, in arrival order, into its next transaction (batches running side by side cannot
    wait on each other in a cycle: each locks its rows first, in LOCK ORDER): ``BEGIN``, the
    items' statements, and one ``COMMIT``. A dead connection found before the ``COMMIT`` was
    sent (nothing of the batch is stored) retries the batch once on a new one.

    The statement that locks the batch's rows also reads them when an item can run on them
    (``Item.with_rows``: an append, on the rows as the batch's earlier items left them), so
    such an item makes no locking read of its own: its writes are all it sends. Better still,
    an append planned on those rows (``Item.planned``: ``rowcache.plan_on_rows``, the same
    compare-and-swap statement a lone append sends) is not sent at once: the batch's planned
    appends go out one ``executemany`` per statement shape (asyncpg sends every parameter set,
    then waits once), in their order; an append that writes a row an unsent append of another
    shape writes waits for that one to be sent first (``_Pipeline``), and anything run the
    usual way is preceded by the sending of what was planned before it. A planned statement
    cannot fail on rows the transaction holds locked and has just read unless the event's id
    is stored (a retry): the exchange then fails, nothing of the transaction is stored, and the
    batch runs again with savepoints, where the retry is recognised. Measured, durable
    PostgreSQL, 64 tasks (``bench.concurrency``, alternating runs): one process
    1,331-1,825 -> 2,192-2,490 appends/s, 2 processes 2,222-3,652 -> 4,041-4,540, 4 processes
    1,459-2,591 -> 3,034-3,943.

    Savepoints only when needed: a batch first runs its items one after another with no
    savepoint (a ``SAVEPOINT`` is a round trip per item, a third of an append's round trips in
    a batch). If an item raises there, its own writes so far cannot be undone alone, so the
    whole transaction is rolled back (nothing of it was stored or acknowledged) and the batch
    runs again in savepoint mode: per item ``SAVEPOINT`` (sent with the previous item's
    ``RELEASE`` in one round trip), and an item that raises is rolled back to it and fails
    alone. A failing item thus costs its batch one more run; appends that fail (a stale copy, a
    missing session) are rare next to the ones that do not.

    A writer whose queue is empty waits ``LINGER_SECONDS`` for more, keeping its connection
    (only after a committed transaction, and only when the pool has a connection to spare for
    reads besides one per writer: ``pool_room``); it is woken by the next write.
    """

    def __init__(self, backend: Any, writers: int = PG_WRITERS,
                 pool_room: int | None = None) -> None:
        self._backend = backend
        self.writers = writers  # batches that may run at once, each on its own connection
        self.pool_room = pool_room  # connections the pool can hand out (None: no fixed size)
        self._queues: dict[asyncio.AbstractEventLoop, _LoopQueue] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.stats = WriterStats()

    def queued(self) -> int:
        """Items waiting for the writer (not counting the ones it is running)."""
        return sum(len(q.items) for q in self._queues.values())

    async def run(self, fn: Callable[[Any], Any], locks: Locks | None = None,
                  fast: Callable[[Any, Any], Awaitable[Any]] | None = None,
                  with_rows: Callable[[Any, RowsRead], Any] | None = None,
                  planned: Callable[[RowsRead], Planned] | None = None,
                  stored: Callable[[Any], None] | None = None) -> Any:
        loop = asyncio.get_running_loop()
        q = self._queues.get(loop)
        if q is None:
            q = self._queues[loop] = _LoopQueue()
            for other in [lp for lp in self._queues if lp.is_closed()]:
                del self._queues[other]
            _abandon_closed()
            self._tasks.difference_update(
                [t for t in self._tasks if t.get_loop().is_closed()])
        item = Item(fn, True, True, contextvars.copy_context(), None, loop.create_future(),
                    locks=locks, fast=fast, with_rows=with_rows, planned=planned)
        q.items.append(item)
        self._wake(q, loop)
        try:
            await item.future
        except asyncio.CancelledError:
            await settle_cancelled(item, stored)
            raise
        return outcome(item)

    def _wake(self, q: _LoopQueue, loop: asyncio.AbstractEventLoop) -> None:
        """Has a writer take what is queued: one waiting for work, or a new one."""
        if q.waiting:  # a writer waits for work, with its connection
            _signal(q.waiting.pop(), True)
        elif q.busy < self.writers:
            q.busy += 1
            task = loop.create_task(self._drain(q))
            task._log_destroy_pending = False  # an idle one thrown away with its loop: _abandon
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def holds(self) -> bool:
        """Whether idle writers keep their connection (see the class docstring)."""
        return self.pool_room is not None and self.pool_room > self.writers

    async def close(self) -> None:
        q = self._queues.get(asyncio.get_running_loop())
        if q is not None:  # idle writers give their connections back now
            q.closing = True
            while q.waiting:
                _signal(q.waiting.pop(), False)
        try:
            for task in list(self._tasks):
                if task.get_loop() is asyncio.get_running_loop():
                    await asyncio.shield(task)
        finally:
            if q is not None:
                q.closing = False

    async def _drain(self, q: _LoopQueue) -> None:
        held = Held()
        loop = asyncio.get_running_loop()
        try:
            while True:
                while q.items:
                    items = [item for item in q.items if claim(item)]  # not the given up
                    q.items = []
                    if not items:
                        continue
                    try:
                        await self._batch(items, held)
                    except BaseException as exc:  # e.g. cancelled with the loop
                        for item in items:
                            if not item.outcome:
                                _settle(item, False, exc)
                        raise
                if held.conn is None or q.closing or not self.holds():
                    break
                woken: asyncio.Future[bool] = loop.create_future()
                q.waiting.append(woken)
                timer = loop.call_later(LINGER_SECONDS, _signal, woken, False)
                _IDLE[held] = loop  # (see _abandon)
                try:
                    more = await woken
                except GeneratorExit:  # thrown away with its loop, closed under it (_abandon)
                    _abandon(held.take())
                    raise
                finally:
                    _IDLE.pop(held, None)
                    timer.cancel()
                    if woken in q.waiting:
                        q.waiting.remove(woken)
                if not more and not q.items:
                    break
        finally:
            q.busy -= 1  # (before any await: a write queued from now on starts a writer)
            conn = held.take()
            if conn is not None:
                await _quiet_close(conn)

    async def _batch(self, items: list[Item], held: Held) -> None:
        if len(items) == 1:  # alone: no savepoint, one transaction as any other call
            item = items[0]
            count_batch(self.stats, 1)
            keep = held if self.holds() else None
            try:
                if item.fast is not None and await self._fast(item, keep):
                    return
                outcome = [(item, True, await self._backend._run_async(
                    lambda conn: item.context.run(item.fn, conn), True, held=keep))]
            except BaseException as exc:
                outcome = [(item, False, exc)]
            _settle_all(outcome)
            return
        todo = items
        retried = False
        savepoints = False  # until an item raises (see the class docstring)
        while todo:
            again, dead, raised = await self._attempt(todo, savepoints, held)
            if raised:
                savepoints = True
            if dead is not None:  # the connection died before the COMMIT was sent
                if retried:
                    for item in again:
                        _settle(item, False, dead)
                    return
                retried = True
            todo = again

    async def _fast(self, item: Item, held: Held | None) -> bool:
        """Runs a lone item's fast path (``Item.fast``) outside a transaction; True when it
        stored the item (its outcome is settled). False when it declined, or failed in any
        way but a timeout (its connection found dead: nothing stored, or stored and not
        acknowledged; a deadlock's victim; anything the driver refused): the item then runs
        the usual way, which is idempotent by event id and raises what it must. A timeout is
        the item's outcome (the usual way would wait as long again)."""
        fast = item.fast
        assert fast is not None
        try:
            value = await self._backend._run_on_driver(fast, held, item.context)
        except TimeoutError:
            raise
        except Exception:  # Declined, or see above
            self.stats.declined += 1
            return False
        self.stats.fast += 1
        _settle_all([(item, True, value)])
        return True

    async def _attempt(
        self, items: list[Item], savepoints: bool, held: Held
    ) -> tuple[list[Item], BaseException | None, bool]:
        """One transaction for ``items``; returns (items to run again, a disconnect that
        made them so or None, whether an item raised with no savepoint: every item runs again,
        with savepoints)."""
        engine = self._backend.async_engine
        outcomes: list[tuple[Item, bool, Any]] = []
        count_batch(self.stats, len(items))
        if savepoints:
            self.stats.savepoint_batches += 1
        committed = False
        try:
            aconn = held.take() or await engine.connect()
        except BaseException as exc:
            for item in items:
                _settle(item, False, exc)
            return [], None, False
        items, app_at = app_rows_last(items)
        # The rows the lock statements read, for the items that can run on them (not in
        # savepoint mode: an item there may have raised on them).
        rows: RowsRead | None = (
            {} if not savepoints and any(i.with_rows is not None for i in items) else None)
        try:
            trans = await aconn.begin()
            driver = await aconn.get_raw_connection()
            raw = driver.driver_connection  # the asyncpg connection
            # The session and user rows the items lock, in LOCK ORDER, before any item runs;
            # the app rows before the first item that writes one (LOCK ORDER above).
            locks = [Locks(k.app_name, k.user_id, k.session_id, k.user, False)
                     for k in (item.locks for item in items) if k is not None
                     and (k.session_id is not None or k.user)]
            if locks:
                lost = await self._lock(aconn, outcomes, items, 0, locks, rows)
                if lost is not None:
                    return lost
            deferred: list[Item] = []  # deadlock victims: run again after the COMMIT
            pending_release = False
            pipe = _Pipeline()  # planned items not sent yet (only with rows)
            for index, item in enumerate(items):
                if index == app_at:
                    if pipe:  # the other items' writes first: the app row is held the least
                        lost = await self._send(aconn, trans, pipe, outcomes, items, index)
                        if lost is not None:
                            return lost
                    lost = await self._lock(aconn, outcomes, items, index, [
                        Locks(k.app_name, k.user_id, None, False, True)
                        for k in (i.locks for i in items[index:]) if k is not None and k.app
                    ], rows)
                    if lost is not None:
                        return lost
                if not savepoints:
                    plan = _plan(item, rows, self.stats)
                    # What was planned is sent before an item run now, or one that writes a row
                    # an unsent plan of another shape writes (in order).
                    if pipe and (plan is None or pipe.conflicts(plan)):
                        lost = await self._send(aconn, trans, pipe, outcomes, items, index)
                        if lost is not None:
                            return lost
                    if plan is not None:
                        pipe.add(plan)
                        outcomes.append((item, True, plan.result))
                        continue
                    try:
                        outcomes.append((item, True, await aconn.run_sync(
                            _in_batch, item, rows, self.stats)))
                        continue
                    except Exception as exc:
                        if aconn.invalidated or is_disconnect(exc):
                            return (*self._lost(aconn, outcomes, items, index, exc,
                                                run_failed=True), False)
                    # Its writes so far are in the transaction: undo all, run all again.
                    outcomes.clear()
                    await quiet_rollback(trans)
                    return items, None, True
                try:
                    if pending_release:  # one round trip for both
                        await raw.execute("RELEASE SAVEPOINT ma_item; SAVEPOINT ma_item")
                    else:  # through SQLAlchemy: its driver adapter begins the transaction
                        await aconn.exec_driver_sql("SAVEPOINT ma_item")
                    pending_release = True
                except BaseException as exc:
                    return (*self._lost(aconn, outcomes, items, index, exc), False)
                try:
                    result = await aconn.run_sync(_in_context, item)
                except BaseException as exc:
                    if aconn.invalidated or is_disconnect(exc):
                        return (*self._lost(aconn, outcomes, items, index, exc,
                                            run_failed=True), False)
                    try:
                        await raw.execute("ROLLBACK TO SAVEPOINT ma_item")
                    except BaseException as exc2:
                        return (*self._lost(aconn, outcomes, items, index, exc2, failed=exc),
                                False)
                    if is_contention(exc) and item.tries < CONTENTION_RETRIES:
                        item.tries += 1
                        self.stats.contention_retries += 1
                        deferred.append(item)
                        continue
                    outcomes.append((item, False, exc))
                    continue
                outcomes.append((item, True, result))
            if pipe:
                lost = await self._send(aconn, trans, pipe, outcomes, items, len(items))
                if lost is not None:
                    return lost
            try:
                await trans.commit()
            except BaseException as exc:  # not acknowledged: none of the batch is stored
                for item, ok, value in outcomes:
                    _settle(item, False, exc if ok else value)
                return deferred, None, False
            committed = True
            _settle_all(outcomes)
            return deferred, None, False
        finally:
            if committed and self.holds() and reusable(aconn):
                held.conn = aconn
            else:
                await _quiet_close(aconn)

    async def _send(
        self, aconn: Any, trans: Any, pipe: _Pipeline, outcomes: list[tuple[Item, bool, Any]],
        items: list[Item], index: int,
    ) -> tuple[list[Item], BaseException | None, bool] | None:
        """Sends the planned items, one ``executemany`` a shape; None when they were stored
        (in the transaction), else what ``_attempt`` returns. A failure aborts the transaction
        (nothing of it is stored): on a dead connection every item runs again; otherwise (a
        duplicate event id, say) the batch runs again with savepoints, where the item at fault
        fails alone."""
        for statement, many in pipe.take():
            try:
                await aconn.run_sync(statement.executemany, many)
            except Exception as exc:
                if aconn.invalidated or is_disconnect(exc):
                    return (*self._lost(aconn, outcomes, items, index, exc), False)
                outcomes.clear()
                await quiet_rollback(trans)
                return items, None, True
            self.stats.planned += len(many)
            self.stats.exchanges += 1
        return None

    async def _lock(
        self, aconn: Any, outcomes: list[tuple[Item, bool, Any]], items: list[Item],
        index: int, locks: list[Locks], rows: RowsRead | None,
    ) -> tuple[list[Item], BaseException | None, bool] | None:
        """Locks these rows in one statement (``rows``: reading them into it too); None when
        it did, else what ``_attempt`` returns (nothing of the transaction is stored: see
        ``_lost``)."""
        db = self._backend.db
        statement, params = db.batch_lock(locks, read=rows is not None)
        try:  # through SQLAlchemy: its driver adapter begins the transaction
            result = await aconn.exec_driver_sql(statement, params)
        except BaseException as exc:
            return (*self._lost(aconn, outcomes, items, index, exc, failed_all=True), False)
        if rows is not None:
            rows.update(db.locked_rows(result))
        return None

    def _lost(
        self, aconn: Any, outcomes: list[tuple[Item, bool, Any]], items: list[Item], index: int,
        exc: BaseException, *, run_failed: bool = False, failed: BaseException | None = None,
        failed_all: bool = False,
    ) -> tuple[list[Item], BaseException | None]:
        """The transaction is gone before its COMMIT: nothing of it is stored. On a dead
        connection every item runs again (once, on a new connection); otherwise the item
        at ``index`` fails with its error and the others run again (``failed_all``: the
        batch's own statement failed: every item fails with its error, or, a deadlock's
        victim, every item runs again)."""
        rest = [o[0] for o in outcomes] + items[index:]
        if is_disconnect(exc) or aconn.invalidated:
            return rest, exc
        if failed_all:
            if is_contention(exc) and all(i.tries < CONTENTION_RETRIES for i in items):
                for item in items:
                    item.tries += 1
                self.stats.contention_retries += 1
                return items, None
            for item in items:
                _settle(item, False, exc)
            return [], None
        _settle(items[index], False, failed if failed is not None else exc)
        return rest[: len(outcomes)] + items[index + 1:], None


def app_rows_last(items: list[Item]) -> tuple[list[Item], int | None]:
    """The batch's items with those that write an app's row moved to its end (LOCK ORDER
    above), and where the first of them now is (None: no item writes one).

    Moved too, to keep their order: every later item of a session or user that a moved item
    writes, and every later item whose rows are not known. Items of different sessions and
    users are concurrent appends: no order between them was acknowledged to anybody.
    """
    if not any(item.locks is not None and item.locks.app for item in items):
        return items, None
    front: list[Item] = []
    tail: list[Item] = []
    moved: set[tuple[str, ...]] = set()
    for item in items:
        k = item.locks
        keys = [] if k is None else list(row_keys(k.app_name, k.user_id, k.session_id)[:2])
        if (k is None and tail) or (k is not None and k.app) or any(x in moved for x in keys):
            tail.append(item)
            moved.update(keys)
        else:
            front.append(item)
    return front + tail, len(front)


def reusable(aconn: Any) -> bool:
    """Whether a connection may run the next transaction as it is (not invalidated, none
    open)."""
    return not aconn.invalidated and not aconn.in_transaction()


_IDLE: dict[Held, asyncio.AbstractEventLoop] = {}
"""Idle writers' connections (each in its writer's ``Held``), with the writer's loop, while
they wait for work (see _abandon)."""


def _abandon(aconn: Any) -> None:
    """Lets go of an idle writer's connection without an event loop, quietly.

    A program that runs its own loop (``loop.run_until_complete``) and closes it within
    ``LINGER_SECONDS`` of its last write, without closing the service, leaves the idle writer
    waiting for ever; its coroutine is thrown away when the collector or the interpreter's exit
    finds it (``GeneratorExit`` at its wait; asyncio's "Task was destroyed but it is pending!"
    is not logged for writer tasks). Its connection cannot be closed on a closed loop:
    SQLAlchemy would log "Exception terminating connection" with a traceback and warn of a
    "non-checked-in connection" when it found the connection gone. So, first, the connection
    is kept alive through ``_IDLE`` while the writer waits (SQLAlchemy's clean-up, which runs
    before finalizers, never sees it gone). Then here the driver's connection is ended without
    the loop (``looppool.drop_driver_connection``) and detached from the pool (its place there
    is free again, and SQLAlchemy no longer cleans it up: at the interpreter's exit that
    clean-up fails too). The same is done at once for the idle writers of every closed loop
    when a service is next used on another loop (``_abandon_closed``)."""
    if aconn is None:
        return
    try:
        sync = aconn.sync_connection
        if sync is None:
            return
        drop_driver_connection(sync.connection.driver_connection)
        sync.connection.detach()
    except Exception:  # (at the interpreter's exit, anything may be half gone)
        pass


def _abandon_closed() -> None:
    """Ends the connections of idle writers whose loop was closed under them (_abandon) now,
    not when the collector finds the writers."""
    for held, loop in list(_IDLE.items()):
        if loop.is_closed():
            _IDLE.pop(held, None)
            _abandon(held.take())


async def _quiet_close(aconn: Any) -> None:
    try:
        await aconn.close()
    except Exception:  # a dead connection: the pool replaces it
        pass


async def quiet_rollback(trans: Any) -> None:
    """Rolls ``trans`` back; a dead connection's transaction is gone with it already."""
    try:
        await trans.rollback()
    except Exception:
        pass


def _in_context(conn: Any, item: Item) -> Any:
    return item.context.run(item.fn, conn)


def _plan(item: Item, rows: RowsRead | None, stats: WriterStats) -> Planned | None:
    """The item planned on its batch's rows (``Item.planned``), or None: it runs now."""
    if rows is None or item.planned is None:
        return None
    try:
        plan = item.context.run(item.planned, rows)
    except NoRows:
        return None
    stats.with_rows += 1
    return plan


def _in_batch(conn: Any, item: Item, rows: RowsRead | None, stats: WriterStats) -> Any:
    """Runs a batched item: on the rows its batch read when it can (``Item.with_rows``),
    else the usual way, and then its rows are no longer known."""
    if rows is not None and item.with_rows is not None:
        try:
            result = item.context.run(item.with_rows, conn, rows)
        except NoRows:
            pass
        else:
            stats.with_rows += 1
            return result
    if rows is not None:
        k = item.locks
        if k is None:
            rows.clear()
        else:
            for key in row_keys(k.app_name, k.user_id, k.session_id):
                rows.pop(key, None)
    return item.context.run(item.fn, conn)


def _settle(item: Item, ok: bool, value: Any) -> None:
    """Records ``item``'s outcome and wakes its caller (same event loop)."""
    item.outcome[:] = [ok, value]
    if item.future is not None and not item.future.done():
        item.future.set_result(None)


def _settle_all(outcomes: list[tuple[Item, bool, Any]]) -> None:
    items = []
    for item, ok, value in outcomes:
        item.outcome[:] = [ok, value]
        items.append(item)
        del value
    outcomes.clear()
    for item in items:
        if item.future is not None and not item.future.done():
            item.future.set_result(None)
