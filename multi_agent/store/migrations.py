"""Schema set-up and upgrades: a linear chain of numbered steps with a version row.

``ensure_schema`` runs once per service, in one write transaction (SQLite's write lock or a
PostgreSQL advisory lock), so several processes starting at once agree on one outcome:

* empty database: create every table, record ``schema_version``;
* older version: apply the missing steps of ``MIGRATIONS`` in order, in place;
* same version: nothing;
* newer version: refuse with ``SchemaVersionError`` naming both versions, before any write;
* ``ma_`` tables without our version row: refuse with ``ForeignDatabaseError``.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import inspect, select, text
from sqlalchemy.engine import Connection

from ..errors import ForeignDatabaseError, SchemaVersionError
from . import schema

__all__ = ["MIGRATIONS", "ensure_schema"]

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


MIGRATIONS: list[tuple[int, str, Step]] = [
    # (version it produces, what it does, the step). Version 1 is the initial create_all.
    (2, "per-key revisions, session incarnation, branch revision, event digests",
     _v2_concurrency_columns),
    (3, "no runs of compaction summaries and other bookkeeping events",
     _v3_fold_bookkeeping_runs),
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


def ensure_schema(conn: Connection, *, advisory_lock_sql: str | None, where: str) -> int:
    """Creates or upgrades the schema; returns the version found before (0 for a new database).

    Raises:
        SchemaVersionError: the database was written by a newer version of multi-agent.
        ForeignDatabaseError: ``ma_`` tables exist but were not written by multi-agent.
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
        schema.metadata.create_all(conn)
        conn.execute(
            schema.meta.insert(),
            [
                {"key": "schema_version", "value": str(schema.SCHEMA_VERSION)},
                {"key": "created_by", "value": "multi-agent"},
            ],
        )
        return 0
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
