"""PostgreSQL through asyncpg (``postgresql+asyncpg://``).

Each store transaction runs as one function in ``AsyncConnection.run_sync``; writes lock the
rows they read (``SELECT ... FOR UPDATE``, stated in ``sql.py``), reads run in one
``REPEATABLE READ`` snapshot. The append's event ``INSERT`` rides along with the session row's
``UPDATE`` as a data-modifying CTE: one round trip instead of two. Failures are told apart by
SQLSTATE (``base.looks_like_connection_error``).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from sqlalchemy import Table, text
from sqlalchemy.engine import Connection
from sqlalchemy.engine.url import URL
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import create_async_engine

from ...errors import DatabaseUnavailableError, InvalidValueError, StoreError
from .. import memory_tables as mt
from .. import sql
from ..groupcommit import CONTENTION_RETRIES, is_contention, row_keys
from ..looppool import LoopPool
from .base import Dialect, EngineOptions, sqlstate

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ..backend import Backend
    from ..groupcommit import Locks
    from ..scopes import ScopeUpdate

__all__ = ["COMMAND_TIMEOUT", "CONNECT_TIMEOUT", "PostgresDialect"]

CONNECT_TIMEOUT = 10.0
"""Seconds a new connection may take (asyncpg ``timeout``; URI ``?timeout=N``); when only
``command_timeout`` is set, it is the same."""
COMMAND_TIMEOUT = 30.0
"""Seconds one statement may take (asyncpg ``command_timeout``; URI ``?command_timeout=N``).
Without it a server that stops answering (stalled, ``SIGSTOP``, a hung network) makes calls
wait forever; with it they fail with ``DatabaseUnavailableError(cause="timeout")``."""


class PostgresDialect(Dialect):
    """PostgreSQL: see the module docstring."""

    name = "postgresql"
    # One snapshot for the whole read: the session row, its events and the scopes' state must
    # come from the same moment.
    read_options = {"isolation_level": "REPEATABLE READ"}

    # -- engine set-up ----------------------------------------------------------------------

    def open(self, url: URL, db_url: str, options: EngineOptions) -> Backend:
        from ..backend import Backend, redact

        if url.drivername in ("postgresql", "postgres"):
            url = url.set(drivername="postgresql+asyncpg")
        elif url.drivername != "postgresql+asyncpg":
            raise InvalidValueError(
                f"Use the asyncpg driver for PostgreSQL: postgresql+asyncpg://... "
                f"(got {url.drivername})."
            )
        try:
            port = url.port
        except ValueError:  # (SQLAlchemy: not a number)
            port = -1
        if port is not None and not 0 < port < 65536:
            raise InvalidValueError(
                f"The port in {redact(db_url)} is not a TCP port (1 to 65535); PostgreSQL's "
                "default is 5432.")
        try:
            import asyncpg  # noqa: F401
        except ImportError as exc:
            raise StoreError(
                "PostgreSQL needs the postgres extra: pip install 'adk-lossless-sessions[postgres]'"
            ) from exc
        kwargs = dict(options.engine_kwargs)
        # No pre-ping (a round trip per checkout): Backend retries a call once when its
        # connection turns out dead before anything was committed.
        connect_args = dict(kwargs.pop("connect_args", {}))
        # The URL's own values win over our defaults. A configured statement timeout also
        # bounds a new connection (a stalled server accepts TCP but never answers the start-up),
        # so that "how long may a call wait" is one setting.
        command = connect_args.get("command_timeout", url.query.get("command_timeout"))
        connect_default = CONNECT_TIMEOUT if command is None else float(command)
        for name, default in (("timeout", connect_default), ("command_timeout", COMMAND_TIMEOUT)):
            if name not in url.query:
                connect_args.setdefault(name, default)
        if "pool" not in kwargs:  # a pool per event loop (looppool.py), unless one is given
            kwargs.setdefault("poolclass", LoopPool)
        if command is not None and kwargs.get("poolclass") is LoopPool:
            # ... and the wait for a pooled connection, unless pool_timeout is given: many
            # calls at once on a stalled server queue for the pool (60 of them waited up to
            # 33 s with command_timeout=3, under the pool's own default of 30 s).
            kwargs.setdefault("pool_timeout", float(command))
        engine = create_async_engine(url, connect_args=connect_args, **kwargs)
        return Backend(async_engine=engine, owns_engine=True)

    # -- statements -------------------------------------------------------------------------

    # -- errors ------------------------------------------------------------------------------

    def translate(
        self, exc: BaseException, *, url: str, sqlite_path: str | None = None
    ) -> StoreError:
        """Adds to the base's translation: no free pooled connection in time, and a server
        that did not answer in time (asyncpg's ``TimeoutError``, which carries no SQLSTATE)."""
        if isinstance(exc, PoolTimeout):
            return DatabaseUnavailableError(
                f"No free connection to the database at {url} in time: every pooled connection "
                "is in use (by other calls, or waiting for a server that does not answer). "
                "Raise the pool (URI ?pool_size=N&max_overflow=M) or ?pool_timeout, "
                "or make fewer calls at once. Nothing was written by this call.",
                cause="pool_exhausted",
            )
        if is_contention(exc):
            return DatabaseUnavailableError(
                f"The database at {url} kept refusing this write to break lock cycles with "
                "other writers (deadlock or serialization failure; it was run again "
                f"{CONTENTION_RETRIES} times). Nothing was written by this call: retry it "
                "(appends are idempotent by event id). If it keeps happening, another program "
                "is locking the store's rows in another order.",
                cause="contention",
            )
        original = getattr(exc, "orig", None) or exc
        if isinstance(original, TimeoutError) and sqlstate(exc) is None:
            return DatabaseUnavailableError(
                f"The database at {url} did not answer in time (a statement may take "
                f"command_timeout, default {COMMAND_TIMEOUT:g} s; a new connection timeout, "
                f"default {CONNECT_TIMEOUT:g} s; both can be set in the URI). The server may be "
                "stalled or overloaded; the store reconnects by itself once it answers. An "
                "append that failed this way was not acknowledged: retry it (appends are "
                "idempotent by event id).",
                cause="timeout",
            )
        return super().translate(exc, url=url, sqlite_path=sqlite_path)

    def is_connection_error(self, exc: BaseException) -> bool:
        return isinstance(exc, PoolTimeout) or super().is_connection_error(exc)

    def insert_ignore(self, table: Table) -> Any:
        from sqlalchemy.dialects.postgresql import insert

        return insert(table).on_conflict_do_nothing()

    def write_append(
        self, conn: Connection, key: dict[str, str], event_row: dict[str, Any],
        session_row: dict[str, Any], updates: Sequence[ScopeUpdate] = (),
    ) -> None:
        """One statement: the event INSERT, the user's and app's state UPDATEs as
        data-modifying CTEs of the session row's UPDATE (one round trip for all)."""
        if not updates:
            sql.EVENT_INSERT_WITH_SESSION_UPDATE(conn, **key, **event_row, **session_row)
            return
        scopes = tuple(scope for scope in ("user", "app") if any(u.scope == scope for u in updates))
        values = {f"{u.scope}_{name}": v for u in updates for name, v in u.values.items()}
        sql.EVENT_INSERT_WITH_UPDATES[scopes](conn, **key, **event_row, **session_row, **values)

    def batch_lock(self, locks: list[Locks], read: bool = False) -> tuple[str, tuple[Any, ...]]:
        """One statement that locks every row ``locks`` name, in LOCK ORDER
        (``groupcommit.py``): the session rows sorted, then the user rows sorted, then the
        app rows. Each ``MATERIALIZED`` step waits for the one before it (its ``WHERE`` reads
        the previous step's count, an init plan run before its scan), and ``ORDER BY`` under
        ``FOR UPDATE`` locks rows in that order. Rows that do not exist yet are skipped.
        ``read``: it also returns the columns an append reads of them (``locked_rows``)."""
        sessions = sorted({(k.app_name, k.user_id, k.session_id) for k in locks
                           if k.session_id is not None})
        users = sorted({(k.app_name, k.user_id) for k in locks if k.user})
        apps = sorted({k.app_name for k in locks if k.app})
        return _BATCH_LOCK_READ if read else _BATCH_LOCK, (
            [a for a, _, _ in sessions], [u for _, u, _ in sessions],
            [i for _, _, i in sessions], [a for a, _ in users], [u for _, u in users], apps,
        )

    @staticmethod
    def locked_rows(result: Any) -> dict[tuple[str, ...], dict[str, Any]]:
        """What ``batch_lock(read=True)`` returned, by row: ``("s", app, user, session)``,
        ``("u", app, user)``, ``("a", app)`` -> {column: value}."""
        rows: dict[tuple[str, ...], dict[str, Any]] = {}
        for kind, columns in result:
            row = json.loads(columns)
            keys = row_keys(row.pop("app_name"), row.pop("user_id", ""), row.pop("id", None))
            rows[keys["sua".index(kind)]] = row
        return rows

    def advisory_lock_sql(self, key: int) -> str | None:
        return f"SELECT pg_advisory_xact_lock({int(key)})"

    # -- the memory's full-text search: tsvector + GIN ---------------------------------------

    def memory_ddl(self) -> list[str]:
        return list(_MEMORY_DDL)

    def memory_upgrade(self, conn: Connection) -> None:
        conn.exec_driver_sql(
            f"ALTER TABLE ma_memory_sessions ADD COLUMN IF NOT EXISTS {mt.INCARNATION_COLUMN}"
        )
        for column in ("terms", "context_terms"):  # SQLite's; named by the shared INSERT
            conn.exec_driver_sql(
                f"ALTER TABLE ma_memory_entries ADD COLUMN IF NOT EXISTS {column} TEXT")
        expression = conn.exec_driver_sql(_TSV_EXPRESSION).scalar()
        # (pg_get_expr gives NORMALIZE(...): a check that minded the case rewrote the table
        # on every open, a dropped column each time, until PostgreSQL's 1,600 columns.)
        if (expression is not None and "normalize" not in expression.lower()
                and conn.exec_driver_sql("SHOW server_encoding").scalar() == "UTF8"):
            # Made by the DDL, or by an earlier version: the index read each message as
            # written. Rebuilt (every row's tsvector computed again; its index with it).
            conn.exec_driver_sql("ALTER TABLE ma_memory_entries DROP COLUMN tsv")
            conn.exec_driver_sql(
                f"ALTER TABLE ma_memory_entries ADD COLUMN tsv tsvector GENERATED ALWAYS AS "
                f"({_tsv(_terms('text'), _terms('context'))}) STORED")
            conn.exec_driver_sql(_TSV_INDEX)

    def memory_tables_sql(self) -> Any:
        return _MEMORY_PRESENT

    def fulltext(
        self, conn: Connection, *, app_name: str, user_id: str, terms: list[str], limit: int
    ) -> list[Any]:
        from ...memory.query import tsquery_text  # the query language, not SQL

        if not _splits_unspaced(conn):  # not a UTF-8 database: whole runs, as before
            terms = list(dict.fromkeys(term.replace(" ", "") for term in terms))
        params = {"app_name": app_name, "user_id": user_id, "limit": limit,
                  "query": tsquery_text(terms)}
        return list(conn.execute(_SEARCH, params).all())


def _batch_lock_sql(read: bool) -> str:
    """The batch lock statement (``PostgresDialect.batch_lock``); ``read``: each step selects
    the columns an append reads and the statement returns them as JSON text (one result shape
    for the three kinds of row), else it returns a count."""
    session, user, app = (
        ("t.app_name, t.user_id, t.id, t.state, t.update_time, t.revision, t.last_seq, "
         "t.head_run_id, t.last_agent, t.agent_paths, t.awaiting_seq, t.incarnation, "
         "t.branch_rev, t.key_revs",
         "t.app_name, t.user_id, t.state, t.revision, t.key_revs",
         "t.app_name, t.state, t.revision, t.key_revs") if read else ("1", "1", "1"))
    result = ("SELECT 's', row_to_json(s)::text FROM s\n"
              "UNION ALL SELECT 'u', row_to_json(u)::text FROM u\n"
              "UNION ALL SELECT 'a', row_to_json(p)::text FROM p") if read else \
        "SELECT count(*) FROM p"
    return f"""
WITH s AS MATERIALIZED (
    SELECT {session} FROM ma_sessions AS t
    JOIN unnest($1::text[], $2::text[], $3::text[]) AS k(a, u, i)
      ON t.app_name = k.a AND t.user_id = k.u AND t.id = k.i
    ORDER BY t.app_name, t.user_id, t.id FOR UPDATE OF t
), u AS MATERIALIZED (
    SELECT {user} FROM ma_user_states AS t
    JOIN unnest($4::text[], $5::text[]) AS k(a, u) ON t.app_name = k.a AND t.user_id = k.u
    WHERE (SELECT count(*) FROM s) >= 0
    ORDER BY t.app_name, t.user_id FOR UPDATE OF t
), p AS MATERIALIZED (
    SELECT {app} FROM ma_app_states AS t
    WHERE t.app_name = ANY($6::text[]) AND (SELECT count(*) FROM u) >= 0
    ORDER BY t.app_name FOR UPDATE OF t
)
{result}
"""


_BATCH_LOCK = _batch_lock_sql(read=False)
_BATCH_LOCK_READ = _batch_lock_sql(read=True)

def _tsv(text: str, context: str) -> str:
    return (f"setweight(to_tsvector('english', {text}), 'A') "
            f"|| setweight(to_tsvector('english', {context}), 'D')")


def _terms(column: str) -> str:
    """``memory_tables.index_terms`` in SQL: NFKC, and characters of scripts written without
    spaces set apart (the Python regex's class, as PostgreSQL's)."""
    return (f"regexp_replace(normalize({column}, NFKC), '([{_UNSPACED}])', ' \\1 ', 'g')")


_UNSPACED = mt.UNSPACED_RANGES

def _splits_unspaced(conn: Connection) -> bool:
    """Whether the memory's tsvector sets apart the characters of scripts without spaces
    (``memory_upgrade``; not on a database that is not UTF-8), so that a search term of them
    is a phrase of single characters; asked once a connection."""
    info = conn.connection.info
    split = info.get("ma_tsv_splits")
    if split is None:
        expression = conn.exec_driver_sql(_TSV_EXPRESSION).scalar() or ""
        split = info["ma_tsv_splits"] = "normalize" in expression.lower()
    return bool(split)


_TSV_INDEX = (
    "CREATE INDEX IF NOT EXISTS ix_ma_memory_entries_tsv ON ma_memory_entries USING GIN (tsv)")

# The expression of the tsv column (None: no such column).
_TSV_EXPRESSION = (
    "SELECT pg_get_expr(d.adbin, d.adrelid) FROM pg_attrdef AS d JOIN pg_attribute AS a "
    "ON a.attrelid = d.adrelid AND a.attnum = d.adnum "
    "WHERE d.adrelid = to_regclass('ma_memory_entries') AND a.attname = 'tsv'")

# A ``tsv`` column ``GENERATED ALWAYS AS (to_tsvector('english', text) ...) STORED`` with a
# GIN index, queried with ``websearch_to_tsquery`` and ranked with ``ts_rank_cd``.
# ``memory_upgrade`` makes it read every message NFKC with the characters of scripts without
# spaces set apart (``_terms``), on a UTF-8 database (normalize needs one). ``terms`` and
# ``context_terms`` are SQLite's (memory_tables.index_terms): here always NULL.
_MEMORY_DDL = [
    f"""
    CREATE TABLE IF NOT EXISTS ma_memory_entries (
        id BIGSERIAL PRIMARY KEY,
        {mt.COMMON_COLUMNS}
        tsv tsvector GENERATED ALWAYS AS ({_tsv("text", "context")}) STORED,
        UNIQUE (app_name, user_id, session_id, event_id)
    )
    """,
    _TSV_INDEX,
    mt.SESSIONS_DDL,
    mt.FORGOTTEN_DDL,
    mt.vectors_ddl("BIGINT", "BYTEA"),
    mt.VECTORS_INDEX_DDL,
]

# to_regclass resolves the name like the unqualified statements do (search_path).
_MEMORY_PRESENT = text(
    "SELECT name FROM unnest(CAST(ARRAY['ma_memory_entries', 'ma_memory_vectors', "
    "'ma_memory_sessions', 'ma_memory_forgotten'] AS text[])) AS name "
    "WHERE to_regclass(name) IS NOT NULL"
)

_SEARCH = text(
    """
    SELECT e.id, e.session_id, e.event_id, e.author, e.timestamp, e.text,
           ts_rank_cd(e.tsv, q, 1) AS score
    FROM ma_memory_entries AS e, websearch_to_tsquery('english', :query) AS q
    WHERE e.app_name = :app_name AND e.user_id = :user_id AND e.tsv @@ q
    ORDER BY score DESC, e.timestamp DESC, e.id DESC
    LIMIT :limit
    """
)
