"""Where SQL runs: one engine, one pool, and every dialect difference in one small module.

Every store operation is a plain synchronous function over a SQLAlchemy ``Connection`` that
runs inside one transaction. How it gets there depends on the database:

* **SQLite** (a URL given): a synchronous SQLAlchemy engine on the standard ``sqlite3`` driver,
  with the whole transaction run in a worker thread: one thread hop per operation. (Through
  aiosqlite every statement is its own hop, ~20 per append; ADK's service spends most of its
  4 ms an append there.) WAL, ``synchronous=FULL`` by default (an acknowledged write survives
  power loss), a 30 s busy timeout, foreign keys on, and writes start with ``BEGIN IMMEDIATE``
  so that the compare-and-swap that follows cannot race another process. ``journal_size_limit``
  (SQLITE_WAL_LIMIT_BYTES) cuts the ``-wal`` back after a long reader let it grow. Before every
  transaction one ``os.stat`` checks that the path still names the file the connections opened
  (deleted or replaced under a running service: ``DatabaseUnavailableError``, see _retire).
* **PostgreSQL** (asyncpg) and any injected ``AsyncEngine``: ``AsyncConnection.run_sync`` runs
  the same function, each statement awaiting the driver; writes lock rows ``FOR UPDATE``.
"""

from __future__ import annotations

import asyncio
import contextvars
import os
import sqlite3
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Table, event
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.engine.url import URL
from sqlalchemy.exc import ArgumentError, DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import StaticPool

from ..errors import DatabaseUnavailableError, InvalidValueError, StoreError

T = TypeVar("T")

__all__ = ["Backend", "open_backend", "redact"]

SQLITE_WORKERS = 4

SQLITE_WAL_LIMIT_BYTES = 8 * 1024 * 1024
"""``PRAGMA journal_size_limit`` on every SQLite connection: the size the ``-wal`` is cut back
to when SQLite restarts it. A read transaction held open elsewhere (another process's
``BEGIN; SELECT``) keeps checkpoints from restarting the log, so appends grow it without bound
meanwhile (3,000 appends: ~100 MB); SQLite never shrinks the file by itself unless this is set
(the default, -1, keeps it at its largest until the last connection closes). With it, measured:
once the reader ends, the first commit checkpoints the whole log and the second restarts it and
truncates it to this size. Override with ``open_backend(sqlite_wal_limit_bytes=...)``; -1: no
limit."""


def redact(url: str | URL) -> str:
    """The URL with its password hidden, for messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparseable URL>"


class Backend:
    """Runs transaction functions on one database and translates its failures.

    Attributes:
        dialect: ``sqlite`` or ``postgresql`` (or another SQLAlchemy dialect name).
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
    ) -> None:
        self.sync_engine = sync_engine
        self.async_engine = async_engine
        engine = sync_engine if sync_engine is not None else async_engine
        assert engine is not None
        self.dialect: str = engine.dialect.name
        self.url = redact(display_url or engine.url)
        self.sqlite_path = sqlite_path
        self._owns_engine = owns_engine
        self._executor = (
            ThreadPoolExecutor(max_workers=workers, thread_name_prefix="multi_agent_sqlite")
            if sync_engine is not None
            else None
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
        self.locks_rows = self.dialect in ("postgresql", "mysql", "mariadb")
        from sqlalchemy import bindparam

        from . import schema
        from .sql import Prepared

        self.ensure_app_row = Prepared(
            "ensure_app_row",
            self.insert_ignore(schema.app_states).values(
                app_name=bindparam("app_name"), state="{}", update_time=bindparam("now")
            ),
        )
        self.ensure_user_row = Prepared(
            "ensure_user_row",
            self.insert_ignore(schema.user_states).values(
                app_name=bindparam("app_name"), user_id=bindparam("user_id"), state="{}",
                update_time=bindparam("now"),
            ),
        )

    # -- running ----------------------------------------------------------------------------

    async def run(self, fn: Callable[[Connection], T], *, write: bool) -> T:
        """Runs ``fn(conn)`` in one transaction, committing on return, rolling back on error."""
        try:
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
            async with self.async_engine.connect() as aconn:
                if write:
                    aconn = await aconn.execution_options(ma_write=True)
                elif self.dialect == "postgresql":
                    # One snapshot for the whole read: the session row, its events and the
                    # scopes' state must come from the same moment.
                    aconn = await aconn.execution_options(isolation_level="REPEATABLE READ")
                async with aconn.begin():
                    return await aconn.run_sync(fn)
        except StoreError:
            raise
        except (TimeoutError, DBAPIError, OSError, sqlite3.Error) as exc:
            raise self.translate(exc) from exc
        except Exception as exc:  # asyncpg raises its own classes outside DBAPIError at connect
            translated = self.translate(exc) if _looks_like_connection_error(exc) else None
            if translated is None:
                raise
            raise translated from exc

    def _run_into(self, box: list[T], fn: Callable[[Connection], T], write: bool) -> None:
        box.append(self._run_sync(fn, write))

    def _run_sync(self, fn: Callable[[Connection], T], write: bool) -> T:
        """Runs in a worker thread on that thread's own long-lived connection.

        Checking a connection out of the pool and back costs ~300 µs a call, three times the
        statements of an append, so each worker thread keeps one. The transaction is begun on
        the driver (``BEGIN IMMEDIATE`` for writes) and SQLAlchemy's own bookkeeping follows.

        On a SQLite file, every transaction first checks (one ``os.stat``, ~1.5 µs) that the
        path still names the file the connections have open: see :meth:`_check_identity`.
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
            try:
                raw.execute("BEGIN IMMEDIATE" if write else "BEGIN")
                result = fn(conn)
                if conn.in_transaction():
                    conn.commit()
                if raw.in_transaction:
                    raw.commit()
                return result
            except BaseException:
                try:
                    if conn.in_transaction():
                        conn.rollback()
                    if raw.in_transaction:
                        raw.rollback()
                except Exception:
                    conn.invalidate()
                    self._local.conn = None
                raise
        finally:
            with self._conns_lock:
                self._active -= 1
                retire = self._lost is not None and self._active == 0 and bool(self._conns)
            if retire:
                self._retire()

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

    # -- dialect differences ---------------------------------------------------------------

    def for_update(self, stmt: Any) -> Any:
        """Locks the selected rows until commit where the database locks rows.

        On SQLite the whole database is already locked by ``BEGIN IMMEDIATE``.
        """
        return stmt.with_for_update() if self.locks_rows else stmt

    def insert_ignore(self, table: Table) -> Any:
        """``INSERT ... ON CONFLICT DO NOTHING`` for this dialect."""
        if self.dialect == "sqlite":
            from sqlalchemy.dialects.sqlite import insert
        elif self.dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        else:  # pragma: no cover - MySQL is not a supported target yet
            raise StoreError(f"Unsupported database dialect {self.dialect!r}")
        return insert(table).on_conflict_do_nothing()

    def advisory_lock_sql(self) -> str | None:
        """A statement that serialises schema set-up across processes (SQLite: the write lock)."""
        if self.dialect == "postgresql":
            return "SELECT pg_advisory_xact_lock(7308117251902)"
        return None

    # -- errors -----------------------------------------------------------------------------

    def translate(self, exc: BaseException) -> StoreError:
        """Turns a driver failure into an error that names the cause and the fix."""
        original = getattr(exc, "orig", None) or exc
        text = str(original).lower()
        where = f"the database at {self.url}"
        if self.dialect == "sqlite":
            if "locked" in text or "busy" in text:
                return DatabaseUnavailableError(
                    f"{where} stayed locked by another writer for longer than the busy timeout "
                    f"({original}). Another process holds a long write transaction: wait and "
                    "retry, or raise sqlite_busy_timeout.",
                    cause="locked",
                )
            if getattr(original, "sqlite_errorcode", None) == _SQLITE_READONLY_DBMOVED:
                # SQLite's own check (rollback-journal mode only; in WAL mode it writes on)
                gone = self.sqlite_path is not None and not os.path.exists(self.sqlite_path)
                return DatabaseUnavailableError(
                    f"The SQLite database file {self.sqlite_path or self.url} was "
                    f"{'deleted' if gone else 'renamed or replaced'} while this program had it "
                    f"open ({original}). Nothing was written. Restart the program so that it "
                    "opens the file now at that path; stop every process that uses the "
                    "database before restoring a backup.",
                    cause="deleted" if gone else "replaced",
                )
            if "readonly" in text or "read-only" in text:
                return DatabaseUnavailableError(
                    f"{where} is read-only for this process ({original}). Give the user write "
                    "permission on the file and its directory (SQLite writes -wal/-shm files "
                    "beside it), or point --db at a writable location.",
                    cause="read_only",
                )
            if "disk is full" in text or "database or disk is full" in text:
                return DatabaseUnavailableError(
                    f"{where} cannot grow: the disk (or the database's max_page_count) is full "
                    f"({original}). Nothing was written; free space and retry.",
                    cause="disk_full",
                )
            if "not a database" in text or "malformed" in text or "corrupt" in text:
                return DatabaseUnavailableError(
                    f"{where} is not a valid SQLite database or is corrupt ({original}). "
                    "Restore it from a backup, or move it aside to start a new one; "
                    "`sqlite3 FILE 'PRAGMA integrity_check'` tells what is damaged.",
                    cause="corrupt",
                )
            if "unable to open" in text:
                parent = Path(self.sqlite_path).parent if self.sqlite_path else None
                if parent is not None and parent.is_dir() and not os.access(parent, os.W_OK):
                    return DatabaseUnavailableError(
                        f"Cannot open {where} ({original}): this user may not write in "
                        f"{parent}, where SQLite needs to create the database and its -wal/-shm "
                        "files. Give write permission on the directory, or choose another path.",
                        cause="read_only",
                    )
                fix = (
                    f"The directory {parent} does not exist: create it or choose another path."
                    if parent is not None and not parent.exists()
                    else "Check that the path is a file this user may read and write."
                )
                return DatabaseUnavailableError(
                    f"Cannot open {where} ({original}). {fix}", cause="no_such_path"
                )
        if _looks_like_connection_error(exc) or (
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

    # -- lifecycle --------------------------------------------------------------------------

    async def close(self) -> None:
        """Closes the pool and threads this backend created (an injected engine is left open).

        A SQLite file that was deleted or replaced since the last transaction is noticed here
        too, so that its -wal is emptied rather than left beside the new file (see _retire).
        """
        if self._executor is not None:
            self._executor.shutdown(wait=True)
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


_SQLITE_READONLY_DBMOVED = 1032  # SQLITE_READONLY | (4 << 8)

_CONNECTION_SQLSTATES = ("08", "57P01", "57P02", "57P03", "53300")
"""Connection exceptions (class 08), admin/crash shutdown, cannot connect now, too many clients."""


def _sqlstate(exc: BaseException | None) -> str | None:
    while exc is not None:
        state = getattr(exc, "sqlstate", None) or getattr(exc, "pgcode", None)
        if isinstance(state, str):
            return state
        exc = getattr(exc, "orig", None) or exc.__cause__
    return None


def _looks_like_connection_error(exc: BaseException) -> bool:
    original = getattr(exc, "orig", None) or exc
    state = _sqlstate(exc)
    if state is not None and state.startswith(_CONNECTION_SQLSTATES):
        return True
    for candidate in (original, getattr(original, "__cause__", None)):
        if isinstance(
            candidate, OSError | ConnectionError | asyncio.TimeoutError | TimeoutError
        ):
            return True
        if candidate is not None and type(candidate).__name__ in {
            "CannotConnectNowError",
            "ConnectionDoesNotExistError",
            "ConnectionFailureError",
            "AdminShutdownError",
            "CrashShutdownError",
            "InterfaceError",
            "InternalClientError",
            "TooManyConnectionsError",
        }:
            return True
    if isinstance(exc, InterfaceError | OperationalError) and "connect" in str(exc).lower():
        return True
    text = str(original).lower()
    return ("connection" in text and "closed" in text) or "shutting down" in text or (
        "starting up" in text
    )


# --------------------------------------------------------------------------------------------
# Construction


def _sqlite_on_connect(
    synchronous: str,
    busy_timeout_ms: int,
    wal: bool,
    pragmas: dict[str, Any] | None = None,
    wal_limit_bytes: int = SQLITE_WAL_LIMIT_BYTES,
) -> Callable[..., None]:
    extra = dict(pragmas or {})
    for name, value in extra.items():
        if not name.replace("_", "").isalnum() or not str(value).replace("_", "").replace(
            "-", ""
        ).isalnum():
            raise InvalidValueError(f"Invalid SQLite pragma {name}={value!r}.")

    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Transactions are begun explicitly (see _sqlite_on_begin), not by the driver.
        dbapi_connection.isolation_level = None
        cur = dbapi_connection.cursor()
        cur.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cur.execute("PRAGMA foreign_keys=ON")
        if wal:
            try:
                cur.execute("PRAGMA journal_mode=WAL")
            except sqlite3.OperationalError:
                pass  # read-only file: reads may still work; a write will explain itself
        cur.execute(f"PRAGMA synchronous={synchronous}")
        if wal:
            cur.execute(f"PRAGMA journal_size_limit={int(wal_limit_bytes)}")
        for name, value in extra.items():
            cur.execute(f"PRAGMA {name}={value}")
        cur.close()

    return on_connect


def _sqlite_on_begin(conn: Connection) -> None:
    conn.exec_driver_sql(
        "BEGIN IMMEDIATE" if conn.get_execution_options().get("ma_write") else "BEGIN"
    )


def _attach_sqlite_listeners(
    engine: Engine, on_connect: Callable[..., None], *, begin: bool = True
) -> None:
    event.listen(engine, "connect", on_connect)
    if begin:  # async engines: SQLAlchemy begins; make writes BEGIN IMMEDIATE
        event.listen(engine, "begin", _sqlite_on_begin)


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
    on_connect = _sqlite_on_connect(
        sqlite_synchronous.upper(), int(sqlite_busy_timeout * 1000), wal=True,
        pragmas=sqlite_pragmas, wal_limit_bytes=sqlite_wal_limit_bytes,
    )
    if db_engine is not None:
        if db_engine.dialect.name == "sqlite":
            _attach_sqlite_listeners(db_engine.sync_engine, on_connect)
        return Backend(async_engine=db_engine, owns_engine=False)

    assert db_url is not None
    try:
        url = make_url(db_url)
    except ArgumentError as exc:
        raise InvalidValueError(
            f"{db_url!r} is not a database URL. Use e.g. sqlite+aiosqlite:///./multi_agent_data.db "
            "or postgresql+asyncpg://user:password@host:5432/dbname."
        ) from exc
    backend_name = url.get_backend_name()
    kwargs = dict(engine_kwargs or {})
    if backend_name == "sqlite":
        from sqlalchemy import create_engine

        database = url.database or ""
        memory = database in ("", ":memory:") or "mode=memory" in str(url)
        sync_url = url.set(drivername="sqlite+pysqlite")
        connect_args = dict(kwargs.pop("connect_args", {}))
        connect_args.setdefault("check_same_thread", False)
        connect_args.setdefault("timeout", sqlite_busy_timeout)
        if memory:
            engine = create_engine(
                sync_url, poolclass=StaticPool, connect_args=connect_args, **kwargs
            )
            _attach_sqlite_listeners(
                engine,
                _sqlite_on_connect(sqlite_synchronous.upper(), int(sqlite_busy_timeout * 1000),
                                   wal=False, pragmas=sqlite_pragmas),
                begin=False,
            )
            return Backend(sync_engine=engine, owns_engine=True, workers=1, display_url=db_url)
        parent = Path(os.path.expanduser(database)).resolve().parent
        if not parent.is_dir():
            raise DatabaseUnavailableError(
                f"Cannot create the SQLite database {database!r}: the directory {parent} does "
                "not exist. Create it, or choose another path.",
                cause="no_such_path",
            )
        kwargs.setdefault("pool_size", SQLITE_WORKERS)
        kwargs.setdefault("max_overflow", 0)
        engine = create_engine(sync_url, connect_args=connect_args, **kwargs)
        _attach_sqlite_listeners(engine, on_connect, begin=False)
        return Backend(
            sync_engine=engine, owns_engine=True, sqlite_path=str(Path(database).resolve()),
            display_url=db_url,
        )

    if backend_name == "postgresql":
        if url.drivername in ("postgresql", "postgres"):
            url = url.set(drivername="postgresql+asyncpg")
        elif url.drivername != "postgresql+asyncpg":
            raise InvalidValueError(
                f"Use the asyncpg driver for PostgreSQL: postgresql+asyncpg://... "
                f"(got {url.drivername})."
            )
        try:
            import asyncpg  # noqa: F401
        except ImportError as exc:
            raise StoreError(
                "PostgreSQL needs the postgres extra: pip install 'adk-lossless-sessions[postgres]'"
            ) from exc
        kwargs.setdefault("pool_pre_ping", True)
        connect_args = dict(kwargs.pop("connect_args", {}))
        connect_args.setdefault("timeout", 10)
        engine_async = create_async_engine(url, connect_args=connect_args, **kwargs)
        return Backend(async_engine=engine_async, owns_engine=True)

    raise InvalidValueError(
        f"Unsupported database {backend_name!r} in {redact(db_url)}: multi-agent stores "
        "sessions in SQLite (sqlite+aiosqlite:///file.db) or PostgreSQL "
        "(postgresql+asyncpg://...)."
    )
