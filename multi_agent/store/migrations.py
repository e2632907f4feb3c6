"""Schema set-up and upgrades of every table the project creates: a linear chain of numbered
steps with a version row.

``ensure_schema`` runs once per session service, in one write transaction (SQLite's write lock
or a PostgreSQL advisory lock), so several processes starting at once agree on one outcome:

* empty database: create every table, record ``schema_version``;
* older version: apply the missing steps of ``MIGRATIONS`` in order, in place;
* same version: nothing;
* newer version: refuse with ``SchemaVersionError`` naming both versions, before any write;
* ``ma_`` tables without our version row: refuse with ``ForeignDatabaseError``.

The memory's tables (``memory_tables.py``, each database's full-text index in ``dialects/``)
are created by the memory's set-up, :func:`ensure_memory_schema`, only where a memory service
is used, and possibly in a database without the store's tables (memory built from a URL): a
store that never had a memory gets none. Where they exist, the chain upgrades them like every
other table (step 4); the memory's set-up applies the same upgrade to a database without the
store's version row.

Adding a column: add it to ``schema.py``, bump ``SCHEMA_VERSION``, add a step here that calls
``_add_columns`` (type and default come from the schema), and add it to the export format's
specification (``transfer/format.py``; ``tests/runs/test_export_spec.py`` fails until then).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sqlalchemy import inspect, select, text
from sqlalchemy.engine import Connection

from ..errors import AdkTablesError, ForeignDatabaseError, SchemaVersionError
from . import schema
from .memory_tables import MEMORY_LOCK_KEY

if TYPE_CHECKING:
    from .dialects import Dialect

__all__ = ["MIGRATIONS", "ensure_memory_schema", "ensure_schema"]

Step = Callable[[Connection], None]

def _add_columns(conn: Connection, table: str, names: tuple[str, ...]) -> None:
    """``ALTER TABLE ... ADD COLUMN`` for each named column of ``schema`` the table lacks.

    The column's type and server default come from ``schema.py``, so the two cannot drift.
    """
    present = {c["name"] for c in inspect(conn).get_columns(table)}
    columns = schema.metadata.tables[table].c
    for name in names:
        if name in present:
            continue
        column = columns[name]
        ddl = f"ALTER TABLE {table} ADD COLUMN {name} {column.type.compile(dialect=conn.dialect)}"
        if column.server_default is not None:
            default = column.server_default.arg
            ddl += f" DEFAULT '{default}'" if isinstance(default, str) else f" DEFAULT {default}"
        if not column.nullable:
            ddl += " NOT NULL"
        conn.execute(text(ddl))


def _v2_concurrency_columns(conn: Connection) -> None:
    for table in ("ma_app_states", "ma_user_states"):
        _add_columns(conn, table, ("revision", "key_revs"))
    _add_columns(conn, "ma_sessions", ("incarnation", "branch_rev", "key_revs"))
    _add_columns(conn, "ma_events", ("digest",))


def _v3_fold_bookkeeping_runs(conn: Connection) -> None:
    from .runs import fold_bookkeeping_runs

    fold_bookkeeping_runs(conn)


def _v4_memory_tables(conn: Connection) -> None:
    """Memory tables made by an older memory get what the current layout has (the
    watermark's ``incarnation``); a database without them is left without."""
    if "ma_memory_sessions" in inspect(conn).get_table_names():
        _dialect(conn).memory_upgrade(conn)


def _dialect(conn: Connection) -> Dialect:
    from .dialects import dialect_for

    return dialect_for(conn.dialect.name)


def _v5_session_page_indexes(conn: Connection) -> None:
    """The two orders of a paged session list (``pages.py``), newest first."""
    for name in ("ix_ma_sessions_user_time", "ix_ma_sessions_app_time"):
        _index(schema.sessions, name).create(conn, checkfirst=True)


def _index(table: Any, name: str) -> Any:
    return next(i for i in table.indexes if i.name == name)


MIGRATIONS: list[tuple[int, str, Step]] = [
    # (version it produces, what it does, the step). Version 1 is the initial create_all.
    (2, "per-key revisions, session incarnation, branch revision, event digests",
     _v2_concurrency_columns),
    (3, "no runs of compaction summaries and other bookkeeping events",
     _v3_fold_bookkeeping_runs),
    (4, "the memory tables in the versioned schema: upgraded with the others",
     _v4_memory_tables),
    (5, "indexes for paged session lists, newest first, per user and per app",
     _v5_session_page_indexes),
]
"""Steps after version 1, in order. A step must be idempotent within its transaction."""


def _read_version(conn: Connection) -> int | None:
    row = conn.execute(
        select(schema.meta.c.value).where(schema.meta.c.key == "schema_version")
    ).first()
    if row is None:
        return None
    try:
        return int(row[0])
    except ValueError:
        return -1


def ensure_schema(conn: Connection, *, advisory_lock_sql: str | None, where: str,
                  adk_tables_allowed: bool = False) -> int:
    """Creates or upgrades the schema; returns the version found before (0 for a new database).

    Raises:
        SchemaVersionError: the database was written by a newer version of multi-agent.
        ForeignDatabaseError: ``ma_`` tables exist but were not written by multi-agent.
        AdkTablesError: the store would set itself up beside sessions of ADK's own services
            (unless ``adk_tables_allowed``: ``adk_import``).
    """
    if advisory_lock_sql:
        conn.execute(text(advisory_lock_sql))
    inspector = inspect(conn)
    tables = set(inspector.get_table_names())
    if schema.meta.name not in tables:
        ours = {t.name for t in schema.TABLES} & tables
        if ours:
            raise ForeignDatabaseError(
                f"{where} has tables {sorted(ours)} but no multi-agent version row: another "
                "program wrote them. Use a separate database (or file) for multi-agent."
            )
        if not adk_tables_allowed:
            from .adk_import import adk_session_count

            found_adk = adk_session_count(conn)
            if found_adk:
                raise AdkTablesError(
                    f"{where} holds {found_adk} session{'s' if found_adk != 1 else ''} of "
                    "ADK's own session service (its tables sessions and events), which this "
                    "store does not read: they would look gone. Copy them in once with "
                    "`multi-agent import-adk --db URL` (or multi_agent.store.adk_import."
                    "import_adk_sessions); ADK's tables are left as they are. Nothing was "
                    "written.")
        schema.metadata.create_all(conn)
        conn.execute(
            schema.meta.insert(),
            [
                {"key": "schema_version", "value": str(schema.SCHEMA_VERSION)},
                {"key": "created_by", "value": "multi-agent"},
            ],
        )
        return 0
    found = _checked_version(conn, where)
    if schema.sessions.name not in tables:
        # The version row without the store's tables: the memory alone set this database up
        # (ensure_memory_schema). The store's tables are created at today's layout; the
        # steps below then find nothing to do on them (every step is idempotent).
        schema.metadata.create_all(conn)
    if found < schema.SCHEMA_VERSION:
        for version, _description, step in MIGRATIONS:
            if version > found:
                step(conn)
        conn.execute(
            schema.meta.update()
            .where(schema.meta.c.key == "schema_version")
            .values(value=str(schema.SCHEMA_VERSION))
        )
    # Indexes added to an existing version (create_all skips existing tables' new indexes).
    for table in schema.TABLES:
        for index in table.indexes:
            index.create(conn, checkfirst=True)
    return found


def _checked_version(conn: Connection, where: str) -> int:
    """The version row's schema version, which this code can open.

    Raises:
        SchemaVersionError: no readable version, or a newer one than this code's.
    """
    found = _read_version(conn)
    if found is None or found < 1:
        raise SchemaVersionError(
            f"{where} has a multi-agent version table without a readable schema_version "
            f"({found!r}). It may be damaged; restore it from a backup.",
            found=found,
            supported=schema.SCHEMA_VERSION,
        )
    if found > schema.SCHEMA_VERSION:
        raise SchemaVersionError(
            f"{where} was written by a newer multi-agent (schema version {found}); this "
            f"version understands up to {schema.SCHEMA_VERSION}. Upgrade multi-agent "
            "(pip install -U adk-lossless-sessions) to open it. Nothing was changed.",
            found=found,
            supported=schema.SCHEMA_VERSION,
        )
    return found


def ensure_memory_schema(conn: Connection, *, where: str = "The database") -> bool:
    """Creates the memory's tables where they are missing and brings older ones to the
    current layout (idempotent). Returns whether the store's event table is in this
    database too.

    Every database the project creates has its version row: a database without the store's
    tables (a memory built from a URL) gets ``ma_meta`` with today's version here (the
    memory's tables are then at today's layout); where the store's tables are, their
    version row is the store's to move (``ensure_schema``). Runs under the store's schema
    lock, then the memory's (where the database has advisory locks; always in that order,
    so a store and a memory setting up one database at once cannot deadlock).

    Raises:
        ValueError: a database the memory does not support.
        SchemaVersionError: the database was written by a newer multi-agent.
    """
    from .backend import SCHEMA_LOCK_KEY

    dialect = _dialect(conn)
    for key in (SCHEMA_LOCK_KEY, MEMORY_LOCK_KEY):
        lock = dialect.advisory_lock_sql(key)
        if lock:
            conn.exec_driver_sql(lock)
    tables = set(inspect(conn).get_table_names())
    has_meta = schema.meta.name in tables
    if has_meta:
        _checked_version(conn, where)  # refuse a newer database before any write
    for statement in dialect.memory_ddl():
        conn.exec_driver_sql(statement)
    dialect.memory_upgrade(conn)
    has_store = schema.events.name in tables
    if not has_store:
        if not has_meta:
            schema.meta.create(conn)
            conn.execute(schema.meta.insert(), [
                {"key": "schema_version", "value": str(schema.SCHEMA_VERSION)},
                {"key": "created_by", "value": "multi-agent"},
            ])
        else:
            conn.execute(
                schema.meta.update()
                .where(schema.meta.c.key == "schema_version")
                .values(value=str(schema.SCHEMA_VERSION))
            )
    return has_store
