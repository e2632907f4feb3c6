"""SQLite (the standard ``sqlite3`` driver, run in worker threads; or an injected aiosqlite
engine).

WAL, ``synchronous=FULL`` by default (an acknowledged write survives power loss), a 30 s busy
timeout, foreign keys on, and writes start with ``BEGIN IMMEDIATE`` so that the compare-and-swap
that follows cannot race another process (and no row locks are needed: the transaction holds
the database's write lock). ``journal_size_limit`` (SQLITE_WAL_LIMIT_BYTES) cuts the ``-wal``
back after a long reader let it grow.

Failures are told apart by SQLite's result codes (``sqlite3.Error.sqlite_errorcode``, the
extended code; its low byte is the primary code), not by their message text.
"""

from __future__ import annotations

import os
import re
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote

from sqlalchemy import Table, event, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.engine.url import URL
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import StaticPool

from ...errors import DatabaseUnavailableError, InvalidValueError, StoreError
from .. import memory_tables as mt
from .base import Dialect, EngineOptions, Erased

if TYPE_CHECKING:
    from ..backend import Backend

__all__ = ["SQLITE_WAL_LIMIT_BYTES", "SQLITE_WORKERS", "SqliteDialect"]

SQLITE_WORKERS = 4
"""Reader threads of a SQLite file backend (each with its own pooled connection); every write
runs on one more, the writer thread (``groupcommit.py``)."""

SQLITE_WAL_LIMIT_BYTES = 8 * 1024 * 1024
"""``PRAGMA journal_size_limit`` on every SQLite connection: the size the ``-wal`` is cut back
to when SQLite restarts it. A read transaction held open elsewhere (another process's
``BEGIN; SELECT``) keeps checkpoints from restarting the log, so appends grow it without bound
meanwhile (3,000 appends: ~100 MB); SQLite never shrinks the file by itself unless this is set
(the default, -1, keeps it at its largest until the last connection closes). With it, measured:
once the reader ends, the first commit checkpoints the whole log and the second restarts it and
truncates it to this size. Override with ``open_backend(sqlite_wal_limit_bytes=...)``; -1: no
limit."""

CHECKPOINT_WAIT_MS = 5_000
"""How long the checkpoint after a forget waits for readers in other connections before it
reports the ``-wal`` as not emptied."""

# Result codes (https://www.sqlite.org/rescode.html); the primary code is the low byte.
SQLITE_BUSY = 5
SQLITE_LOCKED = 6
SQLITE_READONLY = 8
SQLITE_IOERR = 10
SQLITE_CORRUPT = 11
SQLITE_FULL = 13
SQLITE_CANTOPEN = 14
SQLITE_NOTADB = 26
SQLITE_READONLY_DBMOVED = 1032  # SQLITE_READONLY | (4 << 8)


def check_pragmas(pragmas: dict[str, Any] | None) -> dict[str, Any]:
    """The extra pragmas, each name and value checked to be a plain word or number.

    Raises:
        InvalidValueError: a pragma that could carry anything else into the statement.
    """
    extra = dict(pragmas or {})
    for name, value in extra.items():
        if not name.replace("_", "").isalnum() or not str(value).replace("_", "").replace(
            "-", ""
        ).isalnum():
            raise InvalidValueError(f"Invalid SQLite pragma {name}={value!r}.")
    return extra


def _on_connect(
    synchronous: str,
    busy_timeout_ms: int,
    wal: bool,
    pragmas: dict[str, Any] | None = None,
    wal_limit_bytes: int = SQLITE_WAL_LIMIT_BYTES,
) -> Callable[..., None]:
    extra = check_pragmas(pragmas)

    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Transactions are begun explicitly (see _on_begin, Backend._run_sync), not by the
        # driver.
        dbapi_connection.isolation_level = None
        cur = dbapi_connection.cursor()
        cur.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cur.execute("PRAGMA foreign_keys=ON")
        # auto_vacuum takes effect only on a file with no table yet, and switching to WAL
        # writes the file's first page: it goes first (set later, a new file ignored it).
        if "auto_vacuum" in extra:
            cur.execute(f"PRAGMA auto_vacuum={extra['auto_vacuum']}")
        if wal:
            try:
                cur.execute("PRAGMA journal_mode=WAL")
            except sqlite3.OperationalError:
                pass  # read-only file: reads may still work; a write will explain itself
        cur.execute(f"PRAGMA synchronous={synchronous}")
        if wal:
            cur.execute(f"PRAGMA journal_size_limit={int(wal_limit_bytes)}")
        for name, value in extra.items():
            if name != "auto_vacuum":
                cur.execute(f"PRAGMA {name}={value}")
        cur.close()
        # What the memory's full-text index reads of a message (memory_tables.index_terms).
        dbapi_connection.create_function("ma_index_terms", 1, mt.index_terms,
                                         deterministic=True)

    return on_connect


def _on_begin(conn: Connection) -> None:
    conn.exec_driver_sql(
        "BEGIN IMMEDIATE" if conn.get_execution_options().get("ma_write") else "BEGIN"
    )


def _attach_listeners(
    engine: Engine, on_connect: Callable[..., None], *, begin: bool = True
) -> None:
    event.listen(engine, "connect", on_connect)
    if begin:  # async engines: SQLAlchemy begins; make writes BEGIN IMMEDIATE
        event.listen(engine, "begin", _on_begin)


def _file_on_connect(options: EngineOptions) -> Callable[..., None]:
    return _on_connect(
        options.sqlite_synchronous.upper(), int(options.sqlite_busy_timeout * 1000), wal=True,
        pragmas=options.sqlite_pragmas, wal_limit_bytes=options.sqlite_wal_limit_bytes,
    )


_READ_ONLY_URL = re.compile(r"[?&]mode=ro(&|$)")

URI_PARAMETERS = ("mode", "cache", "vfs", "immutable", "nolock")
"""SQLite's URI filename parameters (https://www.sqlite.org/uri.html) a URL's query may give,
e.g. ``?mode=ro``: they reach SQLite only in a ``file:`` URI opened with ``uri=true``."""


def _as_sqlite_uri(url: URL) -> URL:
    """``sqlite:///path?mode=ro`` as the URI filename ``file:/abs/path?mode=ro`` with
    ``uri=true``, which is how SQLAlchemy's driver hands SQLite its parameters (given a plain
    path it warns and drops them, or with ``uri=true`` alone opens a file named
    ``path?mode=ro``: a read-only URL wrote to a new file). A URL that is a URI already, or
    gives none of :data:`URI_PARAMETERS`, keeps its filename."""
    database = url.database or ""
    if database.startswith("file:"):
        return url if url.query.get("uri") == "true" else url.update_query_dict({"uri": "true"})
    if database in ("", ":memory:") or not any(name in url.query for name in URI_PARAMETERS):
        return url
    path = Path(os.path.expanduser(database)).resolve()
    return url.set(database="file:" + quote(str(path), safe="/")).update_query_dict(
        {"uri": "true"})


class SqliteDialect(Dialect):
    """SQLite: see the module docstring."""

    name = "sqlite"
    write_options = {"ma_write": True}  # an async engine's writes begin IMMEDIATE (_on_begin)

    # -- engine set-up ----------------------------------------------------------------------

    def open(self, url: URL, db_url: str, options: EngineOptions) -> Backend:
        from sqlalchemy import create_engine

        from ..backend import Backend

        kwargs = dict(options.engine_kwargs)
        url = _as_sqlite_uri(url)
        database = url.database or ""
        memory = database in ("", ":memory:") or url.query.get("mode") == "memory"
        if database.startswith("file:") and not memory:  # a URI filename: the path in it
            database = unquote(database[len("file:"):])
        sync_url = url.set(drivername="sqlite+pysqlite")
        connect_args = dict(kwargs.pop("connect_args", {}))
        connect_args.setdefault("check_same_thread", False)
        connect_args.setdefault("timeout", options.sqlite_busy_timeout)
        on_connect = _file_on_connect(options)  # checks the pragmas for every URL
        if memory:
            engine = create_engine(
                sync_url, poolclass=StaticPool, connect_args=connect_args, **kwargs
            )
            _attach_listeners(
                engine,
                _on_connect(options.sqlite_synchronous.upper(),
                            int(options.sqlite_busy_timeout * 1000), wal=False,
                            pragmas=options.sqlite_pragmas),
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
        kwargs.setdefault("pool_size", SQLITE_WORKERS + 1)  # the readers and the writer
        kwargs.setdefault("max_overflow", 0)
        engine = create_engine(sync_url, connect_args=connect_args, **kwargs)
        _attach_listeners(engine, on_connect, begin=False)
        return Backend(
            sync_engine=engine, owns_engine=True, sqlite_path=str(Path(database).resolve()),
            display_url=db_url,
        )

    def adopt(self, engine: AsyncEngine, options: EngineOptions) -> None:
        _attach_listeners(engine.sync_engine, _file_on_connect(options))

    # -- statements -------------------------------------------------------------------------

    def insert_ignore(self, table: Table) -> Any:
        from sqlalchemy.dialects.sqlite import insert

        return insert(table).on_conflict_do_nothing()

    # -- errors -----------------------------------------------------------------------------

    def translate(
        self, exc: BaseException, *, url: str, sqlite_path: str | None = None
    ) -> StoreError:
        original = getattr(exc, "orig", None) or exc
        code = getattr(original, "sqlite_errorcode", None)
        if isinstance(original, sqlite3.OperationalError) and str(original).startswith(
            "Could not decode to UTF-8 column"
        ):  # Python's sqlite3 raises it itself, with no SQLite error code: by its text
            return DatabaseUnavailableError(
                f"The database at {url} is corrupt: a stored text value is not valid UTF-8 "
                f"({original}). Restore it from a backup; `sqlite3 FILE 'PRAGMA "
                "integrity_check'` tells what is damaged.",
                cause="corrupt",
            )
        if not isinstance(code, int):  # not SQLite's own failure (a timeout, an OSError...)
            return super().translate(exc, url=url, sqlite_path=sqlite_path)
        where = f"the database at {url}"
        primary = code & 0xFF
        if primary in (SQLITE_BUSY, SQLITE_LOCKED):
            return DatabaseUnavailableError(
                f"{where} stayed locked by another writer for longer than the busy timeout "
                f"({original}). Another process holds a long write transaction: wait and "
                "retry, or raise sqlite_busy_timeout.",
                cause="locked",
            )
        if code == SQLITE_READONLY_DBMOVED:
            # SQLite's own check (rollback-journal mode only; in WAL mode it writes on)
            gone = sqlite_path is not None and not os.path.exists(sqlite_path)
            return DatabaseUnavailableError(
                f"The SQLite database file {sqlite_path or url} was "
                f"{'deleted' if gone else 'renamed or replaced'} while this program had it "
                f"open ({original}). Nothing was written. Restart the program so that it "
                "opens the file now at that path; stop every process that uses the "
                "database before restoring a backup.",
                cause="deleted" if gone else "replaced",
            )
        if primary == SQLITE_READONLY and _READ_ONLY_URL.search(url):
            return DatabaseUnavailableError(
                f"{where} was opened read-only (mode=ro in its URL), so it takes no writes "
                f"({original}). Nothing was written; leave out mode=ro to write to it.",
                cause="read_only",
            )
        if primary == SQLITE_READONLY:
            return DatabaseUnavailableError(
                f"{where} is read-only for this process ({original}). Give the user write "
                "permission on the file and its directory (SQLite writes -wal/-shm files "
                "beside it), or use a database in a writable location (the URL given as --db, "
                "MULTI_AGENT_DB or --session_service_uri).",
                cause="read_only",
            )
        if primary == SQLITE_FULL:
            return DatabaseUnavailableError(
                f"{where} cannot grow: the disk (or the database's max_page_count) is full "
                f"({original}). Nothing was written; free space and retry.",
                cause="disk_full",
            )
        if primary == SQLITE_IOERR:
            return DatabaseUnavailableError(
                f"{where} could not be written or read: the operating system refused the "
                f"file operation ({original}; e.g. a full disk, a file-size limit such as "
                "ulimit -f, a failing disk or a network file system that went away). Nothing "
                "of this call was acknowledged; fix the disk and retry (appends are "
                "idempotent by event id).",
                cause="io_error",
            )
        if primary in (SQLITE_CORRUPT, SQLITE_NOTADB):
            return DatabaseUnavailableError(
                f"{where} is not a valid SQLite database or is corrupt ({original}). "
                "Restore it from a backup, or move it aside to start a new one; "
                "`sqlite3 FILE 'PRAGMA integrity_check'` tells what is damaged.",
                cause="corrupt",
            )
        if primary == SQLITE_CANTOPEN:
            parent = Path(sqlite_path).parent if sqlite_path else None
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
        return super().translate(exc, url=url, sqlite_path=sqlite_path)

    # -- erasing: secure_delete, the FTS5 index merged, the WAL checkpointed -----------------

    def erase_begin(self, conn: Connection) -> Any:
        # A connection setting (not transactional): deleted cells and freed pages are zeroed.
        previous = conn.exec_driver_sql("PRAGMA secure_delete").scalar()
        conn.exec_driver_sql("PRAGMA secure_delete=ON")
        return previous

    def erase_fulltext(self, conn: Connection) -> None:
        # FTS5's 'delete' (the trigger) only adds a tombstone: the terms stay in the older
        # segments until they are merged. 'optimize' merges every segment into one without the
        # deleted rows; with secure_delete on, the old segments' pages are zeroed. Its cost is
        # the size of the whole index (every user's), measured in tests/lifecycle.
        if "ma_memory_entries" in mt.present_tables(conn):
            conn.exec_driver_sql("INSERT INTO ma_memory_fts(ma_memory_fts) VALUES ('optimize')")

    def erase_end(self, conn: Connection, previous: Any) -> None:
        conn.exec_driver_sql(f"PRAGMA secure_delete={int(previous or 0)}")

    async def erase_flush(self, backend: Backend, *, vacuum: bool = True) -> Erased | None:
        # secure_delete zeroes the cells it deletes, but not the older copies of those rows
        # that SQLite leaves behind when it moves cells between pages (a page split or merge
        # rebuilds a page without clearing its unused space) or rewrites them (an UPDATE done
        # while secure_delete was off): measured, a forgotten user's id stayed in an
        # ma_events leaf page. VACUUM rebuilds the file from the rows that are left, so only
        # they can leave copies; it costs a rewrite of the whole database (see the README).
        import asyncio

        path = backend.sqlite_path
        if path is None and backend.async_engine is not None:  # an injected engine on a file
            database = backend.async_engine.url.database or ""
            if database not in ("", ":memory:") and not database.startswith("file:"):
                path = database  # relative to the working directory, as the engine opens it
        if path is None:
            return None  # in memory: no file, no log

        def rebuild_and_checkpoint() -> tuple[str | None, bool]:
            # A connection of its own, outside any transaction (neither VACUUM nor a checkpoint
            # runs in one); the WAL is the file's, shared by every connection.
            raw = sqlite3.connect(path, timeout=30, isolation_level=None)
            failed: str | None = None
            try:
                if vacuum:
                    try:
                        raw.execute("VACUUM")
                    except sqlite3.Error as exc:  # e.g. no room for the copy: said, not raised
                        failed = f"{type(exc).__name__}: {exc}"
                # A reader in another connection keeps the log; wait for it a little only.
                raw.execute(f"PRAGMA busy_timeout={CHECKPOINT_WAIT_MS}")
                busy, _, _ = raw.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
                return failed, not busy
            finally:
                raw.close()

        failed, emptied = await asyncio.to_thread(rebuild_and_checkpoint)
        return Erased(vacuumed=vacuum and failed is None, wal_emptied=emptied,
                      vacuum_error=failed)

    async def reclaim_space(self, backend: Backend, *, vacuum: bool) -> tuple[str, int]:
        from ..prune import VACUUM_STEP_PAGES

        def pragma(conn: Connection, statement: str) -> Any:
            # The driver's cursor, stepped to the end: incremental_vacuum frees one page per
            # step, and a statement without result rows is stepped only once otherwise.
            cur = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
            try:
                cur.execute(statement)
                rows = cur.fetchall()
            finally:
                cur.close()
            return rows[0][0] if rows else None

        mode = await backend.run(lambda c: pragma(c, "PRAGMA auto_vacuum"), write=False)
        pages = await backend.run(lambda c: pragma(c, "PRAGMA page_count"), write=False)
        if mode == 2:  # INCREMENTAL: a bounded step per transaction, writers in between
            last = None
            while True:
                free = await backend.run(lambda c: pragma(c, "PRAGMA freelist_count"),
                                         write=False)
                if not free or (last is not None and free >= last):
                    break
                last = free
                await backend.run(
                    lambda c: pragma(c, f"PRAGMA incremental_vacuum({VACUUM_STEP_PAGES})"),
                    write=True,
                )
            how = "incremental_vacuum"
        elif vacuum:
            done = await self.erase_flush(backend, vacuum=True)
            if done is None or not done.vacuumed:  # in memory, or the VACUUM failed
                return ("free_list", 0)
            how = "vacuum"
        else:
            return ("free_list", 0)
        after = await backend.run(lambda c: pragma(c, "PRAGMA page_count"), write=False)
        return (how, max(int(pages) - int(after), 0))

    # -- the memory's full-text search: FTS5 -------------------------------------------------

    def memory_ddl(self) -> list[str]:
        return list(_MEMORY_DDL)

    def memory_upgrade(self, conn: Connection) -> None:
        if "incarnation" not in mt.watermark_columns(conn):
            conn.exec_driver_sql(
                f"ALTER TABLE ma_memory_sessions ADD COLUMN {mt.INCARNATION_COLUMN}"
            )
        columns = {row[1] for row in conn.exec_driver_sql(
            "PRAGMA table_info(ma_memory_entries)")}
        for column in ("terms", "context_terms"):
            if column not in columns:
                conn.exec_driver_sql(f"ALTER TABLE ma_memory_entries ADD COLUMN {column} TEXT")
        fts = conn.exec_driver_sql(
            "SELECT sql FROM sqlite_master WHERE name = 'ma_memory_fts'").scalar()
        view = conn.exec_driver_sql(
            "SELECT sql FROM sqlite_master WHERE name = 'ma_memory_fts_content'").scalar()
        if fts is not None and ("ma_memory_fts_content" not in fts or (
                view is not None and "context_terms" not in view)):
            _index_unspaced_scripts(conn)
        else:
            conn.exec_driver_sql(_FTS_CONTENT_VIEW)

    def memory_tables_sql(self) -> Any:
        return _MEMORY_PRESENT

    def fulltext(
        self, conn: Connection, *, app_name: str, user_id: str, terms: list[str], limit: int
    ) -> list[Any]:
        from ...memory.query import fts5_match  # the query language, not SQL

        params = {
            "app_name": app_name, "user_id": user_id, "limit": limit,
            "match": fts5_match(terms, scope_token=mt.scope_token(app_name, user_id)),
        }
        return list(conn.execute(_SEARCH, params).all())


# ``ma_memory_fts``: an FTS5 table over ``ma_memory_entries`` (external content, kept in step by
# triggers) with the ``porter unicode61`` tokenizer, ranked with ``bm25``. Its ``scope`` column
# holds one token per app and user, so the ``MATCH`` itself is scoped.
# The index reads ``terms`` where a message has them (memory_tables.index_terms: set apart
# characters of scripts without spaces, NFKC), its text otherwise; so does its content (a view:
# FTS5's 'rebuild' and 'integrity-check' read the same as the triggers gave it). The view is
# made by memory_upgrade, once the column is there.
_FTS_CONTENT_VIEW = """
    CREATE VIEW IF NOT EXISTS ma_memory_fts_content AS
    SELECT id, scope, coalesce(terms, text) AS text, coalesce(context_terms, context) AS context
    FROM ma_memory_entries
    """
_FTS_TABLE = """
    CREATE VIRTUAL TABLE IF NOT EXISTS ma_memory_fts USING fts5(
        scope, text, context,
        content='ma_memory_fts_content', content_rowid='id',
        tokenize='porter unicode61'
    )
    """
_TRIGGER_AI = """
    CREATE TRIGGER IF NOT EXISTS ma_memory_entries_ai AFTER INSERT ON ma_memory_entries BEGIN
        INSERT INTO ma_memory_fts(rowid, scope, text, context)
        VALUES (new.id, new.scope, coalesce(new.terms, new.text),
                coalesce(new.context_terms, new.context));
    END
    """
_TRIGGER_AD = """
    CREATE TRIGGER IF NOT EXISTS ma_memory_entries_ad AFTER DELETE ON ma_memory_entries BEGIN
        INSERT INTO ma_memory_fts(ma_memory_fts, rowid, scope, text, context)
        VALUES ('delete', old.id, old.scope, coalesce(old.terms, old.text),
                coalesce(old.context_terms, old.context));
    END
    """

_MEMORY_DDL = [
    f"""
    CREATE TABLE IF NOT EXISTS ma_memory_entries (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        {mt.COMMON_COLUMNS}
        UNIQUE (app_name, user_id, session_id, event_id)
    )
    """,
    _FTS_TABLE,
    _TRIGGER_AI,
    _TRIGGER_AD,
    mt.SESSIONS_DDL,
    mt.FORGOTTEN_DDL,
    mt.vectors_ddl("INTEGER", "BLOB"),
    mt.VECTORS_INDEX_DDL,
]


def _index_unspaced_scripts(conn: Connection) -> None:
    """Memory tables of an earlier version: their index read each message as written, so
    ``太郎`` inside ``私の名前は太郎です`` was not found. Fills ``terms`` and ``context_terms``
    where they differ (only text with a character past ASCII can), then builds the index again
    over the view that gives them (its triggers too)."""
    rows = conn.exec_driver_sql(
        "SELECT id, text, context FROM ma_memory_entries "
        "WHERE text GLOB '*[^\x01-\x7f]*' OR context GLOB '*[^\x01-\x7f]*'").all()
    changed = [(mt.index_terms(row.text), mt.index_terms(row.context), row.id) for row in rows]
    if changed:
        conn.exec_driver_sql(
            "UPDATE ma_memory_entries SET terms = ?, context_terms = ? WHERE id = ?", changed)
    conn.exec_driver_sql("DROP TRIGGER IF EXISTS ma_memory_entries_ai")
    conn.exec_driver_sql("DROP TRIGGER IF EXISTS ma_memory_entries_ad")
    conn.exec_driver_sql("DROP TABLE ma_memory_fts")
    conn.exec_driver_sql("DROP VIEW IF EXISTS ma_memory_fts_content")
    for statement in (_FTS_CONTENT_VIEW, _FTS_TABLE, _TRIGGER_AI, _TRIGGER_AD):
        conn.exec_driver_sql(statement)
    conn.exec_driver_sql("INSERT INTO ma_memory_fts(ma_memory_fts) VALUES ('rebuild')")


_MEMORY_PRESENT = text(
    "SELECT name FROM sqlite_master WHERE type = 'table' AND name IN "
    "('ma_memory_entries', 'ma_memory_vectors', 'ma_memory_sessions', 'ma_memory_forgotten')"
)

_SEARCH = text(
    """
    SELECT e.id, e.session_id, e.event_id, e.author, e.timestamp, e.text,
           -bm25(ma_memory_fts, 0.0, 1.0, 0.3) AS score
    FROM ma_memory_fts JOIN ma_memory_entries AS e ON e.id = ma_memory_fts.rowid
    WHERE ma_memory_fts MATCH :match AND e.app_name = :app_name AND e.user_id = :user_id
    ORDER BY bm25(ma_memory_fts, 0.0, 1.0, 0.3), e.timestamp DESC, e.id DESC
    LIMIT :limit
    """
)
