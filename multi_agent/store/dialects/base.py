"""The interface every database's dialect class implements, and what they share."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from sqlalchemy import Table, bindparam
from sqlalchemy.engine import Connection
from sqlalchemy.engine.url import URL
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine

from ...errors import DatabaseUnavailableError, StoreError
from .. import schema, sql

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ..backend import Backend
    from ..scopes import ScopeUpdate

__all__ = ["Dialect", "EngineOptions", "Erased", "looks_like_connection_error"]


@dataclass(slots=True)
class EngineOptions:
    """What ``open_backend`` was asked for, handed to the dialect that builds the engine.

    The SQLite settings are checked by ``open_backend`` whatever the URL (as they always were);
    only the SQLite dialect uses them.
    """

    sqlite_synchronous: str = "FULL"
    sqlite_busy_timeout: float = 30.0
    sqlite_pragmas: dict[str, Any] | None = None
    sqlite_wal_limit_bytes: int = 8 * 1024 * 1024
    engine_kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True, frozen=True)
class Erased:
    """What ``Dialect.erase_flush`` did after a forget's commit (SQLite file).

    Attributes:
        vacuumed: the file was rebuilt (``VACUUM``).
        wal_emptied: the ``-wal`` was checkpointed and truncated (False: a reader in another
            connection kept it).
        vacuum_error: why the ``VACUUM`` failed (e.g. no disk space for its copy), if it did.
    """

    vacuumed: bool
    wal_emptied: bool
    vacuum_error: str | None = None


class Dialect:
    """One database's SQL and behaviour (see the package docstring for the list).

    Instances are stateless and shared (``dialects.dialect_for``); statements that depend on the
    dialect are built once per instance.

    Attributes:
        name: the SQLAlchemy backend name (``sqlite``, ``postgresql``).
        read_options: execution options of a read transaction on an ``AsyncEngine``.
        write_options: those of a write transaction there (none: a copy of the connection
            with options costs ~30 µs a transaction, measured on PostgreSQL).
        supports_memory: whether ``DatabaseMemoryService`` runs on it (full-text search).
    """

    name: ClassVar[str] = ""
    read_options: ClassVar[dict[str, Any]] = {}
    write_options: ClassVar[dict[str, Any]] = {}
    supports_memory: ClassVar[bool] = True

    def __init__(self) -> None:
        self.ensure_app_row = sql.Prepared(
            "ensure_app_row",
            self.insert_ignore(schema.app_states).values(
                app_name=bindparam("app_name"), state="{}", update_time=bindparam("now")
            ),
        )
        self.ensure_user_row = sql.Prepared(
            "ensure_user_row",
            self.insert_ignore(schema.user_states).values(
                app_name=bindparam("app_name"), user_id=bindparam("user_id"), state="{}",
                update_time=bindparam("now"),
            ),
        )
        # A run's row on its first event; nothing when it exists (one statement, not a read
        # and an insert: a new invocation's first append is one round trip shorter).
        self.run_insert_ignore = sql.Prepared(
            "run_insert_ignore",
            self.insert_ignore(schema.runs).values(sql.run_row_values()),
        )

    # -- engine set-up ----------------------------------------------------------------------

    def open(self, url: URL, db_url: str, options: EngineOptions) -> Backend:
        """The backend for a URL of this database (the engine is created here)."""
        raise NotImplementedError

    def adopt(self, engine: AsyncEngine, options: EngineOptions) -> None:
        """Configures an injected engine (per-connection settings); default: nothing."""

    # -- statements -------------------------------------------------------------------------

    def insert_ignore(self, table: Table) -> Any:
        """``INSERT ... ON CONFLICT DO NOTHING`` into ``table``."""
        raise NotImplementedError

    def write_append(
        self, conn: Connection, key: dict[str, str], event_row: dict[str, Any],
        session_row: dict[str, Any], updates: Sequence[ScopeUpdate] = (),
    ) -> None:
        """The append's write, under the session row's lock (and the scope rows' it
        updates): the event row is inserted, the session row updated, and the user's and the
        app's state rows ``updates`` names. Default: a statement each."""
        for update in updates:
            if update.scope == "user":
                sql.USER_STATE_UPDATE(conn, app_name=key["app_name"], user_id=key["user_id"],
                                      **update.values)
            else:
                sql.APP_STATE_UPDATE(conn, app_name=key["app_name"], **update.values)
        sql.EVENT_INSERT(conn, **key, **event_row)
        sql.SESSION_UPDATE_AFTER_APPEND(conn, **key, **session_row)

    def advisory_lock_sql(self, key: int) -> str | None:
        """A statement that serialises the rest of the transaction across processes, or None
        where a write transaction already does (SQLite)."""
        return None

    # -- erasing (forgetting a user: ``forget.py``) -------------------------------------------

    def erase_begin(self, conn: Connection) -> Any:
        """Makes the rest of the transaction overwrite what it deletes, where the database can
        (SQLite: ``PRAGMA secure_delete``); returns what :meth:`erase_end` restores."""
        return None

    def erase_fulltext(self, conn: Connection) -> None:
        """Removes the terms of deleted memory entries from the full-text index for good, in the
        erasing transaction. Default: nothing (PostgreSQL's ``tsv`` is a column of the row)."""

    def erase_end(self, conn: Connection, previous: Any) -> None:
        """Restores the connection's setting changed by :meth:`erase_begin`."""

    async def erase_flush(self, backend: Backend, *, vacuum: bool = True) -> Erased | None:
        """After the erasing commit: rebuilds the database file from the rows left (``vacuum``;
        SQLite: ``VACUUM``) and empties the write-ahead log (SQLite:
        ``wal_checkpoint(TRUNCATE)``); says how that went. None when there is no file or log
        of the store's (PostgreSQL: its WAL and dead tuples are the server's, see the
        README; SQLite in memory)."""
        return None

    async def reclaim_space(self, backend: Backend, *, vacuum: bool) -> tuple[str, int]:
        """After a prune: returns the space of deleted rows where the database does it here;
        ``(how, pages returned to the file system)`` (``prune.PruneReport.space``)."""
        return ("autovacuum", 0)

    # -- errors -----------------------------------------------------------------------------

    def translate(
        self, exc: BaseException, *, url: str, sqlite_path: str | None = None
    ) -> StoreError:
        """Turns a driver failure into an error that names the cause and the fix.

        Subclasses handle their own error codes first and call this for the rest.

        Args:
            exc: the failure.
            url: the database's URL, redacted, for the message.
            sqlite_path: the SQLite file, when there is one.
        """
        original = getattr(exc, "orig", None) or exc
        where = f"the database at {url}"
        if looks_like_connection_error(exc) or (
            isinstance(exc, DBAPIError) and exc.connection_invalidated
        ):
            return DatabaseUnavailableError(
                f"Cannot reach {where} ({type(original).__name__}: {original}). Check that the "
                "server is running and accepts connections; the store reconnects by itself on "
                "the next call once it is back. An append that failed this way was not "
                "acknowledged: retry it (appends are idempotent by event id).",
                cause="unreachable",
            )
        return DatabaseUnavailableError(
            f"{where} failed: {type(original).__name__}: {original}", cause="other"
        )

    def is_connection_error(self, exc: BaseException) -> bool:
        """Whether ``exc`` (raised outside the driver's DBAPI classes) means the database could
        not be reached."""
        return looks_like_connection_error(exc)

    # -- the memory's full-text search ------------------------------------------------------

    def memory_ddl(self) -> list[str]:
        """The statements that create the memory tables (idempotent: ``IF NOT EXISTS``)."""
        raise ValueError(
            f"The memory service supports SQLite and PostgreSQL, not {self.name!r}."
        )

    def memory_upgrade(self, conn: Connection) -> None:
        """Adds what ``memory_ddl`` creates but tables made by an older version lack."""

    def memory_tables_sql(self) -> Any:
        """A statement returning which memory tables exist (their names, one per row)."""
        raise NotImplementedError

    def fulltext(
        self, conn: Connection, *, app_name: str, user_id: str, terms: list[str], limit: int
    ) -> list[Any]:
        """The user's memory entries matching ``terms``, best first: rows of ``id,
        session_id, event_id, author, timestamp, text, score`` (higher score is better)."""
        raise NotImplementedError


_CONNECTION_SQLSTATES = ("08", "57P01", "57P02", "57P03", "53300")
"""Connection exceptions (class 08), admin/crash shutdown, cannot connect now, too many clients."""

_CONNECTION_ERROR_CLASSES = frozenset({
    "CannotConnectNowError",
    "ConnectionDoesNotExistError",
    "ConnectionFailureError",
    "AdminShutdownError",
    "CrashShutdownError",
    "InterfaceError",
    "InternalClientError",
    "TooManyConnectionsError",
})
"""asyncpg's connection failures, some of which carry no SQLSTATE (raised at connect)."""


def sqlstate(exc: BaseException | None) -> str | None:
    """The SQLSTATE of a driver error, looked for through ``orig`` and ``__cause__``."""
    while exc is not None:
        state = getattr(exc, "sqlstate", None) or getattr(exc, "pgcode", None)
        if isinstance(state, str):
            return state
        exc = getattr(exc, "orig", None) or exc.__cause__
    return None


def looks_like_connection_error(exc: BaseException) -> bool:
    """Whether ``exc`` means the database could not be reached (or the connection was lost):
    by SQLSTATE where the driver gives one, else by the exception's class."""
    original = getattr(exc, "orig", None) or exc
    state = sqlstate(exc)
    if state is not None and state.startswith(_CONNECTION_SQLSTATES):
        return True
    for candidate in (original, getattr(original, "__cause__", None)):
        if isinstance(
            candidate, OSError | ConnectionError | asyncio.TimeoutError | TimeoutError
        ):
            return True
        if candidate is not None and type(candidate).__name__ in _CONNECTION_ERROR_CLASSES:
            return True
    if isinstance(exc, InterfaceError | OperationalError) and "connect" in str(exc).lower():
        return True
    # Last resort, for failures that carry neither a code nor a telling class.
    text = str(original).lower()
    return ("connection" in text and "closed" in text) or "shutting down" in text or (
        "starting up" in text
    )
