"""Retention: deleting whole sessions that have been idle for a while, in bounded batches.

:func:`prune_sessions` (``DatabaseSessionService.prune_sessions``, ``multi-agent prune``)
deletes every session whose last update (``ma_sessions.update_time``: its newest event, or its
creation) is older than a cutoff, in one app or in all of them: the session row, its events,
its runs and what long memory holds of it (entries, vectors, watermark), as ``delete_session``
does. ``user:`` and ``app:`` state stay (they are not a session's).

**Bounded batches.** Each batch is one short write transaction: it picks idle sessions (oldest
first) until their events reach ``max_events`` (at least one session), re-checking the cutoff
inside the transaction, and deletes them whole. Between batches the write lock is released, so
a concurrent writer waits for at most one batch, never for the whole prune. On PostgreSQL the
batch locks its sessions with ``FOR UPDATE SKIP LOCKED``: a session an append holds right now
is skipped (it is no longer idle), and an append that waits for a batch's lock finds the
session gone (``SessionNotFound``), as after ``delete_session``. Every batch leaves the store
consistent: sessions are deleted whole or not at all. One session is never split across
batches (its events cascade with its row), so a single session larger than ``max_events`` is
one transaction of its own size.

**Space.** PostgreSQL: the deleted rows' space is reclaimed by autovacuum (reused by new rows;
the files do not shrink without ``VACUUM FULL``). SQLite: freed pages go to the file's free
list and are reused by later writes; with ``PRAGMA auto_vacuum=INCREMENTAL`` (set when the
database is created, or changed by a ``VACUUM``) they are returned to the file system here, in
steps of :data:`VACUUM_STEP_PAGES` per transaction; otherwise the file keeps its size unless
``vacuum=True`` rewrites it (``VACUUM``: one long exclusive operation, the whole file).

Trimming a session's own history (keep the last N events or days) is ``trim.py``'s.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, bindparam, func, select
from sqlalchemy.engine import Connection

from ..errors import InvalidValueError
from . import memory_tables as mt
from . import schema as s
from . import sql
from .ids import check_id

if TYPE_CHECKING:
    from .backend import Backend

__all__ = ["BATCH_PAUSE", "COUNT_KEYS", "MAX_EVENTS", "VACUUM_STEP_PAGES", "PruneReport",
           "parse_age", "prune_sessions", "sum_counts"]

COUNT_KEYS = ("sessions", "events", "runs", "memory_entries")
"""The counts a prune or trim report keeps per app and user."""


def sum_counts(rows: Any) -> dict[str, int]:
    """The per-user counts of a report summed (every key of :data:`COUNT_KEYS`, zeros too)."""
    out = dict.fromkeys(COUNT_KEYS, 0)
    for counts in rows:
        for key, n in counts.items():
            out[key] += n
    return out


MAX_EVENTS = 1_000
"""Events deleted per batch (whole sessions: at least one session per batch). A batch holds the
write lock for its whole transaction, so this bounds a concurrent writer's wait: measured with
``bench/prune.py`` (SQLite, 200,000 events, a loaded shared box), 5,000 gave the writer a p99
of 450 ms during a prune (22,600 events/s), 1,000 a p99 of 100 ms (14,000 events/s); a trim
deleted 6,600 events/s with either."""

BATCH_PAUSE = 0.02
"""Seconds between two batches, in which a concurrent writer gets the database (20 ms: 2 s
over the 100 batches of a 500,000-event prune at the default batch size)."""

VACUUM_STEP_PAGES = 2_000
"""Pages returned to the file system per ``PRAGMA incremental_vacuum`` transaction (8 MB at
SQLite's default 4 KiB pages)."""

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_age(text: str) -> float:
    """``30d``, ``12h``, ``90m``, ``45s``, ``2w`` (a plain number is days) as seconds.

    Raises:
        InvalidValueError: anything else, or an age that is not positive.
    """
    value = text.strip().lower()
    unit = value[-1:] if value[-1:] in _UNITS else "d"
    number = value[:-1] if value[-1:] in _UNITS else value
    try:
        seconds = float(number) * _UNITS[unit]
    except ValueError:
        seconds = -1.0
    if not seconds > 0 or seconds == float("inf"):
        raise InvalidValueError(
            f"{text!r} is not an age: use a positive number with s, m, h, d or w (e.g. 30d)."
        )
    return seconds


@dataclass(slots=True)
class PruneReport:
    """What :func:`prune_sessions` deleted (or, with ``dry_run``, would delete).

    Attributes:
        cutoff: sessions last updated before this time (epoch seconds) were pruned.
        by_user: ``{(app_name, user_id): {"sessions": n, "events": n, "runs": n,
            "memory_entries": n}}``.
        batches: write transactions used (0 for a dry run).
        dry_run: nothing was deleted.
        space: how the space came back: ``"incremental_vacuum"`` (SQLite, pages returned:
            ``pages_freed``), ``"vacuum"`` (SQLite, the file rewritten), ``"free_list"``
            (SQLite without incremental auto-vacuum: reused by later writes, the file keeps
            its size), ``"autovacuum"`` (PostgreSQL), None (dry run, nothing deleted, memory).
        pages_freed: SQLite pages returned to the file system.
    """

    cutoff: float
    by_user: dict[tuple[str, str], dict[str, int]] = field(default_factory=dict)
    batches: int = 0
    dry_run: bool = False
    space: str | None = None
    pages_freed: int = 0

    def totals(self) -> dict[str, int]:
        """The counts summed over every app and user."""
        return sum_counts(self.by_user.values())

    def to_dict(self) -> dict[str, Any]:
        """The report as plain JSON values (``multi-agent prune --json``)."""
        return {
            "cutoff": self.cutoff, "dry_run": self.dry_run, "batches": self.batches,
            "space": self.space, "pages_freed": self.pages_freed, "totals": self.totals(),
            "by_user": [{"app_name": a, "user_id": u, **c}
                        for (a, u), c in sorted(self.by_user.items())],
        }


# -- statements --------------------------------------------------------------------------------

_ss, _ev, _ru = s.sessions.c, s.events.c, s.runs.c
_CUTOFF = bindparam("cutoff")


def _idle(app_name: str | None) -> Any:
    cond = _ss.update_time < _CUTOFF
    return and_(cond, _ss.app_name == bindparam("app_name")) if app_name is not None else cond


def _candidates(app_name: str | None) -> Any:
    # No index on update_time (every append moves it, see schema.py): a scan of ma_sessions,
    # one row per session, per batch.
    return (
        select(_ss.app_name, _ss.user_id, _ss.id, _ss.event_count)
        .where(_idle(app_name))
        .order_by(_ss.update_time, _ss.app_name, _ss.user_id, _ss.id)
        .limit(bindparam("limit"))
        .with_for_update(skip_locked=True)
    )


def _plan(app_name: str | None) -> Any:
    events = (
        select(func.count()).select_from(s.events)
        .where(and_(_ev.app_name == _ss.app_name, _ev.user_id == _ss.user_id,
                    _ev.session_id == _ss.id)).scalar_subquery()
    )
    runs = (
        select(func.count()).select_from(s.runs)
        .where(and_(_ru.app_name == _ss.app_name, _ru.user_id == _ss.user_id,
                    _ru.session_id == _ss.id)).scalar_subquery()
    )
    return (
        select(_ss.app_name, _ss.user_id, func.count().label("sessions"),
               func.sum(events).label("events"), func.sum(runs).label("runs"))
        .where(_idle(app_name))
        .group_by(_ss.app_name, _ss.user_id)
    )


# -- the transactions --------------------------------------------------------------------------


def plan(conn: Connection, *, app_name: str | None, cutoff: float) -> PruneReport:
    """The dry run: what would be deleted, per app and user (one read)."""
    from sqlalchemy import text

    params: dict[str, Any] = {"cutoff": cutoff}
    if app_name is not None:
        params["app_name"] = app_name
    report = PruneReport(cutoff, dry_run=True)
    memory = "ma_memory_entries" in mt.present_tables(conn)
    for row in conn.execute(_plan(app_name), params):
        entries = 0
        if memory:
            entries = int(conn.execute(text(
                "SELECT count(*) FROM ma_memory_entries AS m JOIN ma_sessions AS s ON "
                "s.app_name = m.app_name AND s.user_id = m.user_id AND s.id = m.session_id "
                "WHERE s.app_name = :a AND s.user_id = :u AND s.update_time < :cutoff"),
                {"a": row.app_name, "u": row.user_id, "cutoff": cutoff}).scalar() or 0)
        report.by_user[(row.app_name, row.user_id)] = {
            "sessions": int(row.sessions), "events": int(row.events or 0),
            "runs": int(row.runs or 0), "memory_entries": entries,
        }
    return report


def prune_batch(
    conn: Connection, *, app_name: str | None, cutoff: float, max_events: int,
    max_sessions: int = 1_000,
) -> list[tuple[str, str, dict[str, int]]]:
    """One batch (one write transaction): deletes idle sessions, oldest first, until their
    events reach ``max_events``; returns ``(app, user, counts)`` per session (empty: done)."""
    params: dict[str, Any] = {"cutoff": cutoff, "limit": max_sessions}
    if app_name is not None:
        params["app_name"] = app_name
    rows = conn.execute(_candidates(app_name), params).all()
    done: list[tuple[str, str, dict[str, int]]] = []
    total = 0
    for row in rows:
        if done and total + int(row.event_count or 0) > max_events:
            break
        key = {"app_name": row.app_name, "user_id": row.user_id, "session_id": row.id}
        events = max(sql.EVENTS_DELETE(conn, **key).rowcount, 0)
        runs = max(sql.RUNS_DELETE(conn, **key).rowcount, 0)
        sql.SESSION_DELETE(conn, **key)
        entries = mt.forget_session(conn, **key)
        total += events
        done.append((row.app_name, row.user_id, {"sessions": 1, "events": events,
                                                 "runs": runs, "memory_entries": entries}))
    return done


async def prune_sessions(
    service: Any, *, older_than: float, app_name: str | None = None, dry_run: bool = False,
    vacuum: bool = False, max_events: int = MAX_EVENTS, now: float | None = None,
    progress: Callable[[int], None] | None = None,
) -> PruneReport:
    """Deletes the sessions idle for longer than ``older_than`` seconds (see the module
    docstring).

    Args:
        service: the ``DatabaseSessionService``.
        older_than: seconds since a session's last update (``parse_age("30d")``).
        app_name: only this app's sessions (default: every app's).
        dry_run: only count, per app and user.
        vacuum: SQLite without incremental auto-vacuum: rewrite the file afterwards
            (``VACUUM``) so that it shrinks.
        max_events: events per batch (each batch is one transaction).
        now: the current time (epoch seconds; default: now).
        progress: called with the number of sessions deleted so far after each batch.

    Returns:
        What was deleted, per app and user.
    """
    if not older_than > 0:
        raise InvalidValueError("older_than must be a positive number of seconds.")
    if app_name is not None:
        check_id("app_name", app_name)
    if max_events < 1:
        raise InvalidValueError("max_events must be at least 1.")
    await service.prepare()
    backend: Backend = service.backend
    cutoff = (time.time() if now is None else now) - older_than
    if dry_run:
        return await backend.run(lambda conn: plan(conn, app_name=app_name, cutoff=cutoff),
                                 write=False)
    report = PruneReport(cutoff)
    deleted = 0
    while True:
        batch = await backend.run(
            lambda conn: prune_batch(conn, app_name=app_name, cutoff=cutoff,
                                     max_events=max_events),
            write=True,
        )
        if not batch:
            break
        report.batches += 1
        for app, user, counts in batch:
            mine = report.by_user.setdefault(
                (app, user), {"sessions": 0, "events": 0, "runs": 0, "memory_entries": 0})
            for key, n in counts.items():
                mine[key] += n
        deleted += len(batch)
        if progress is not None:
            progress(deleted)
        # Give the database to whoever waits for it before the next batch: SQLite's busy
        # handler polls (1 ms, 2 ms, ... up to 100 ms), so without a gap the next batch,
        # submitted at once, takes the write lock again before a waiting writer retries.
        await asyncio.sleep(BATCH_PAUSE)
    if report.by_user or vacuum:
        report.space, report.pages_freed = await backend.db.reclaim_space(
            backend, vacuum=vacuum)
    return report
