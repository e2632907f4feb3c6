"""Forgetting a user: every row the store holds of one user in one app, in one transaction.

:func:`forget_user` (``DatabaseSessionService.forget_user``, ``multi-agent forget``) removes,
for one ``(app_name, user_id)``:

* the user's sessions, their events and their runs (``ma_sessions``, ``ma_events``,
  ``ma_runs``);
* the ``user:`` state row (``ma_user_states``);
* what long memory holds of the user when its tables are in this database: entries, vectors,
  watermarks (``ma_memory_entries``, ``ma_memory_vectors``, ``ma_memory_sessions``; the
  full-text index follows the entries);
* optionally the user's API tokens in the token file of ``multi-agent serve``
  (``api_tokens.py``, when a file is given). Tokens name a user, not an app: every
  token of the user goes.

**One transaction.** The deletes are one transaction, so a failure leaves everything as it
was. It starts by locking the user's state row and then the user's session rows (PostgreSQL:
``FOR UPDATE``; SQLite: the transaction holds the write lock from ``BEGIN IMMEDIATE``): a
``create_session`` for the user (which locks that row) waits, an append in flight finishes
first and its event is deleted with the rest, and memory indexing (which share-locks the session
row) either finished before (its entries are deleted) or finds no session after. What the user
does *after* the commit is new data: a forget is a point in time, not a ban (revoke the tokens
for that, which this does first). A very large user holds SQLite's write lock for the whole
delete (other writers wait, up to their busy timeout); PostgreSQL locks only that user's rows.

**Erased, not only deleted, on SQLite.** The transaction runs with ``PRAGMA secure_delete`` on
(deleted cells and freed pages are overwritten with zeros) and merges the FTS5 index
(``optimize``: its 'delete' only adds a tombstone, the terms stay in older segments until
merged; this rewrites the whole index, every user's). That is not enough on its own: SQLite
leaves older copies of rows in the unused space of pages it split, merged or rewrote before
(measured: a forgotten user's id stayed in an ``ma_events`` leaf page). So after the commit a
``VACUUM`` rebuilds the file from the rows that are left (a rewrite of the whole database: its
cost grows with the database, not with the user; ``vacuum=False`` skips it and says so) and a
``wal_checkpoint(TRUNCATE)`` moves everything into the file and empties the ``-wal``. Measured
by ``tests/lifecycle``: neither the user id, nor a phrase they said, nor their full-text scope
token is left in the bytes of the database file or its ``-wal``. Not covered: copies outside
the file (backups, exports, the file system's own free blocks). On PostgreSQL the rows are
deleted in one transaction; the old row versions stay in the table files until (auto)vacuum
reclaims them, and in the server's WAL and backups, which are the operator's.

The token file is changed *before* the database (a user whose data is being forgotten should
not be able to write more through the HTTP service meanwhile); a database failure after it
leaves the tokens revoked, and the error says so.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, bindparam, delete, func, select
from sqlalchemy.engine import Connection

from ..errors import StoreError
from . import memory_tables as mt
from . import schema as s
from .api_tokens import TokenError, TokenFile
from .ids import check_ids

if TYPE_CHECKING:
    from .backend import Backend

__all__ = ["ROW_LABELS", "STORE_TABLES", "ForgetReport", "forget_user"]

STORE_TABLES = ("ma_sessions", "ma_events", "ma_runs", "ma_user_states")
"""The store's tables that hold rows of a user (with :data:`memory_tables.MEMORY_TABLES`)."""

ROW_LABELS = (
    ("ma_sessions", "session", "sessions"),
    ("ma_events", "event", "events"),
    ("ma_runs", "run", "runs"),
    ("ma_user_states", "user: state row", "user: state rows"),
    ("ma_memory_entries", "memory entry", "memory entries"),
    ("ma_memory_vectors", "memory vector", "memory vectors"),
    ("ma_memory_sessions", "memory watermark", "memory watermarks"),
)
"""``ForgetReport.rows``' keys in the order a report lists them, with their names for people
(singular, plural): the CLI prints these and names no table."""

@dataclass(slots=True)
class ForgetReport:
    """What :func:`forget_user` removed (or, with ``dry_run``, would remove).

    Attributes:
        app_name: the app.
        user_id: the user.
        rows: ``{table: rows removed}`` for every table that can hold the user's rows, the
            memory's included (0 where the table is absent).
        tokens: API tokens removed from ``tokens_file``; None when no token file was looked at.
        tokens_file: the token file looked at, if any.
        dry_run: nothing was removed; the counts say what would be.
        wal_emptied: SQLite file: whether the ``-wal`` was checkpointed and emptied after the
            commit (False: a long reader in another connection kept it; run
            ``PRAGMA wal_checkpoint(TRUNCATE)`` later). None: no log (PostgreSQL, memory).
        vacuumed: SQLite file: whether the file was rebuilt (``VACUUM``) after the commit;
            False when ``vacuum=False`` or the ``VACUUM`` failed (``vacuum_error``): the rows
            are deleted, but older copies of them may remain in unused page space until the
            next ``VACUUM``. None: not a SQLite file.
        vacuum_error: why the ``VACUUM`` failed (e.g. no disk space for its copy), if it did.
    """

    app_name: str
    user_id: str
    rows: dict[str, int] = field(default_factory=dict)
    tokens: int | None = None
    tokens_file: str | None = None
    dry_run: bool = False
    wal_emptied: bool | None = None
    vacuumed: bool | None = None
    vacuum_error: str | None = None

    @property
    def sessions(self) -> int:
        """How many sessions (the ``ma_sessions`` count)."""
        return self.rows.get("ma_sessions", 0)

    @property
    def found(self) -> bool:
        """Whether anything of the user was there (a row or a token)."""
        return any(self.rows.values()) or bool(self.tokens)

    def labelled(self) -> list[tuple[int, str]]:
        """``[(count, "sessions"), (1, "event"), ...]``: every count (zeros included) with
        its name for people, singular or plural as the count needs."""
        return [(self.rows.get(key, 0), one if self.rows.get(key, 0) == 1 else many)
                for key, one, many in ROW_LABELS]

    def to_dict(self) -> dict[str, Any]:
        """The report as plain JSON values (``multi-agent forget --json``)."""
        return {
            "app_name": self.app_name, "user_id": self.user_id, "dry_run": self.dry_run,
            "found": self.found, "rows": dict(self.rows), "tokens": self.tokens,
            "tokens_file": self.tokens_file, "wal_emptied": self.wal_emptied,
            "vacuumed": self.vacuumed, "vacuum_error": self.vacuum_error,
        }


# -- the transaction ---------------------------------------------------------------------------

_ss, _ev, _ru, _us = s.sessions.c, s.events.c, s.runs.c, s.user_states.c
_APP, _USER = bindparam("app_name"), bindparam("user_id")


def _user_where(columns: Any) -> Any:
    return and_(columns.app_name == _APP, columns.user_id == _USER)

LOCK_USER_ROW = select(_us.user_id).where(_user_where(_us)).with_for_update()
LOCK_SESSIONS = select(_ss.id).where(_user_where(_ss)).with_for_update()

# Children first (ON DELETE CASCADE would do it, unless an injected SQLite engine has foreign
# keys off), so that each count is the table's own.
_TABLES = (
    ("ma_events", s.events, _ev),
    ("ma_runs", s.runs, _ru),
    ("ma_sessions", s.sessions, _ss),
    ("ma_user_states", s.user_states, _us),
)
COUNTS = {name: select(func.count()).select_from(t).where(_user_where(c)) for name, t, c in _TABLES}
DELETES = {name: delete(t).where(_user_where(c)) for name, t, c in _TABLES}


def forget_rows(
    conn: Connection, backend: Backend, *, app_name: str, user_id: str, dry_run: bool
) -> dict[str, int]:
    """The transaction of :func:`forget_user`: deletes (or counts) the user's rows in every
    table, the memory's included; returns ``{table: rows}``."""
    key = {"app_name": app_name, "user_id": user_id}
    if dry_run:
        rows = {name: int(conn.execute(COUNTS[name], key).scalar() or 0) for name, *_ in _TABLES}
        rows.update(mt.forget_user(conn, **key, dry_run=True))
        return rows
    db = backend.db
    previous = db.erase_begin(conn)
    try:
        conn.execute(LOCK_USER_ROW, key).all()
        conn.execute(LOCK_SESSIONS, key).all()
        rows = {name: max(conn.execute(DELETES[name], key).rowcount, 0) for name, *_ in _TABLES}
        memory = mt.forget_user(conn, **key)
        rows.update(memory)
        if memory.get("ma_memory_entries"):
            db.erase_fulltext(conn)
    finally:
        db.erase_end(conn, previous)
    return rows


# -- the call ----------------------------------------------------------------------------------


def _token_file(path: str | os.PathLike[str]) -> Any:
    return TokenFile(path)


def _forget_tokens(tokens: Any, user_id: str, *, dry_run: bool) -> int:
    """Removes (or counts) every token of ``user_id``; 0 when it has none.

    Only whole-user matches (``TokenFile.revoke_user``, under the file's lock: what it
    counts is what it removed): ``TokenFile.revoke`` also matches an id *prefix* when no user
    matches, which would revoke another user's token for a user id like ``3f``.
    """
    try:
        if dry_run:
            return sum(1 for r in tokens.records() if r.user == user_id)
        return len(tokens.revoke_user(user_id))
    except TokenError as exc:
        raise StoreError(f"Nothing was removed: {exc}") from exc


async def forget_user(
    service: Any, *, app_name: str, user_id: str,
    tokens_file: str | os.PathLike[str] | None = None, dry_run: bool = False,
    vacuum: bool = True,
) -> ForgetReport:
    """Removes every row of ``user_id`` in ``app_name`` (see the module docstring).

    Args:
        service: the ``DatabaseSessionService``.
        app_name: the app.
        user_id: the user.
        tokens_file: the token file of ``multi-agent serve`` whose tokens of the user go too
            (needs the agent team installed); None: no tokens are touched.
        dry_run: only count what would be removed.
        vacuum: SQLite file: rebuild the file after the commit (``VACUUM``), so that no older
            copy of the user's rows survives in unused page space. False skips it (a large
            database, vacuumed later by the operator); the report says ``vacuumed=False``.

    Returns:
        What was removed, per table (every table, 0 where nothing was).

    Raises:
        StoreError: the token file cannot be read or written, or the team is not installed
            (nothing removed); a database failure (the tokens, if any, are already revoked).
    """
    check_ids(app_name=app_name, user_id=user_id)
    tokens = _token_file(tokens_file) if tokens_file is not None else None
    await service.prepare()
    backend: Backend = service.backend
    report = ForgetReport(app_name, user_id, dry_run=dry_run,
                          tokens_file=str(Path(tokens_file)) if tokens_file is not None else None)
    if tokens is not None:
        report.tokens = _forget_tokens(tokens, user_id, dry_run=dry_run)
    try:
        report.rows = await backend.run(
            lambda conn: forget_rows(conn, backend, app_name=app_name, user_id=user_id,
                                     dry_run=dry_run),
            write=not dry_run,
        )
    except StoreError as exc:
        if report.tokens:
            raise StoreError(f"{exc} (the user's {report.tokens} API token(s) were already "
                             "revoked; the database rows are unchanged: run the forget "
                             "again)") from exc
        raise
    if not dry_run and any(report.rows.values()):
        erased = await backend.db.erase_flush(backend, vacuum=vacuum)
        if erased is not None:
            report.wal_emptied, report.vacuumed = erased.wal_emptied, erased.vacuumed
            report.vacuum_error = erased.vacuum_error
    return report
