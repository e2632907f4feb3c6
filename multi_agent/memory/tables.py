"""The memory tables (prefix ``ma_memory_``) and the SQL that reads and writes them.

Both dialects share the row layout of ``ma_memory_entries`` (one row per remembered human or
agent message, unique by app, user, session and event id) and ``ma_memory_sessions`` (per
session, the sequence number up to which the session's stored events have been indexed, and
the ``incarnation`` of the session those entries came from: a session re-created under a
deleted one's id has another, and is indexed afresh). The full-text index differs. An agent's
reply is indexed with the human message it answers as ``context`` (weighted lower than its own
text), so "which wine did you suggest?" finds the reply that names the wines, not only the
question that named "wine".

The full-text index per dialect:

* **SQLite**: ``ma_memory_fts``, an FTS5 table over ``ma_memory_entries`` (external content,
  kept in step by triggers) with the ``porter unicode61`` tokenizer, ranked with ``bm25``. Its
  ``scope`` column holds one token per app and user, so the ``MATCH`` itself is scoped.
* **PostgreSQL**: a ``tsv`` column ``GENERATED ALWAYS AS (to_tsvector('english', text))
  STORED`` with a GIN index, queried with ``websearch_to_tsquery`` and ranked with
  ``ts_rank_cd``.

With semantic search on (an embedder given to the service), ``ma_memory_vectors`` holds one
embedding per entry and model: little-endian float32, L2-normalised, so a dot product is the
cosine similarity. Vectors are compared in Python (NumPy) over the user's rows; they are deleted
with their entry (``ON DELETE CASCADE``).

Every statement here is created with ``IF NOT EXISTS``, so setting up is idempotent; it runs in
one write transaction (on PostgreSQL under an advisory lock, so two processes starting at once
do not race on the catalog). :func:`upgrade` then adds the columns a database made by an older
version lacks (``ma_memory_sessions.incarnation``).

The session store's ``delete_session`` calls :func:`forget_session` in its own transaction, so
a deleted session's memory goes with it when the memory tables are in the store's database
(whether they are is looked up cheaply, see :func:`present_tables`).
"""

from __future__ import annotations

import hashlib

from sqlalchemy import bindparam, inspect, text
from sqlalchemy.engine import Connection

__all__ = [
    "ADVISORY_LOCK",
    "MAX_CONTEXT_CHARS",
    "MAX_TEXT_CHARS",
    "MEMORY_TABLES",
    "ddl",
    "forget_session",
    "present_tables",
    "scope_token",
    "upgrade",
]

MAX_TEXT_CHARS = 20_000
"""Longest text indexed for one message (PostgreSQL caps a tsvector at 1 MB)."""

MAX_CONTEXT_CHARS = 2_000
"""Longest context indexed with an agent reply: the start of the human message it answers."""

ADVISORY_LOCK = "SELECT pg_advisory_xact_lock(7308117251911)"
"""Serialises the memory schema set-up across PostgreSQL sessions."""

_COMMON_COLUMNS = """
    app_name VARCHAR(256) NOT NULL,
    user_id VARCHAR(256) NOT NULL,
    session_id VARCHAR(256) NOT NULL,
    event_id VARCHAR(256) NOT NULL,
    scope VARCHAR(64) NOT NULL,
    timestamp DOUBLE PRECISION NOT NULL,
    author VARCHAR(256) NOT NULL,
    text TEXT NOT NULL,
    context TEXT NOT NULL DEFAULT '',
"""

_SESSIONS = """
CREATE TABLE IF NOT EXISTS ma_memory_sessions (
    app_name VARCHAR(256) NOT NULL,
    user_id VARCHAR(256) NOT NULL,
    session_id VARCHAR(256) NOT NULL,
    indexed_seq BIGINT NOT NULL,
    incarnation VARCHAR(32) NOT NULL DEFAULT '',
    PRIMARY KEY (app_name, user_id, session_id)
)
"""

# Added after the first release; ``upgrade`` adds it to older databases ('' there, which is
# also the incarnation the store's migration gives sessions that predate schema 2).
_INCARNATION_COLUMN = "incarnation VARCHAR(32) NOT NULL DEFAULT ''"


def _vectors(id_type: str, bytes_type: str) -> str:
    return f"""
    CREATE TABLE IF NOT EXISTS ma_memory_vectors (
        entry_id {id_type} NOT NULL REFERENCES ma_memory_entries (id) ON DELETE CASCADE,
        model VARCHAR(128) NOT NULL,
        app_name VARCHAR(256) NOT NULL,
        user_id VARCHAR(256) NOT NULL,
        vector {bytes_type} NOT NULL,
        PRIMARY KEY (entry_id, model)
    )
    """


_VECTORS_INDEX = (
    "CREATE INDEX IF NOT EXISTS ix_ma_memory_vectors_scope "
    "ON ma_memory_vectors (app_name, user_id, model)"
)

_SQLITE = [
    f"""
    CREATE TABLE IF NOT EXISTS ma_memory_entries (
        id INTEGER PRIMARY KEY,
        {_COMMON_COLUMNS}
        UNIQUE (app_name, user_id, session_id, event_id)
    )
    """,
    """
    CREATE VIRTUAL TABLE IF NOT EXISTS ma_memory_fts USING fts5(
        scope, text, context,
        content='ma_memory_entries', content_rowid='id',
        tokenize='porter unicode61'
    )
    """,
    """
    CREATE TRIGGER IF NOT EXISTS ma_memory_entries_ai AFTER INSERT ON ma_memory_entries BEGIN
        INSERT INTO ma_memory_fts(rowid, scope, text, context)
        VALUES (new.id, new.scope, new.text, new.context);
    END
    """,
    """
    CREATE TRIGGER IF NOT EXISTS ma_memory_entries_ad AFTER DELETE ON ma_memory_entries BEGIN
        INSERT INTO ma_memory_fts(ma_memory_fts, rowid, scope, text, context)
        VALUES ('delete', old.id, old.scope, old.text, old.context);
    END
    """,
    _SESSIONS,
    _vectors("INTEGER", "BLOB"),
    _VECTORS_INDEX,
]

_POSTGRESQL = [
    f"""
    CREATE TABLE IF NOT EXISTS ma_memory_entries (
        id BIGSERIAL PRIMARY KEY,
        {_COMMON_COLUMNS}
        tsv tsvector GENERATED ALWAYS AS (
            setweight(to_tsvector('english', text), 'A')
            || setweight(to_tsvector('english', context), 'D')
        ) STORED,
        UNIQUE (app_name, user_id, session_id, event_id)
    )
    """,
    "CREATE INDEX IF NOT EXISTS ix_ma_memory_entries_tsv ON ma_memory_entries USING GIN (tsv)",
    _SESSIONS,
    _vectors("BIGINT", "BYTEA"),
    _VECTORS_INDEX,
]


def ddl(dialect: str) -> list[str]:
    """The statements that create the memory tables on ``dialect`` (idempotent).

    Raises:
        ValueError: a dialect other than ``sqlite`` or ``postgresql``.
    """
    if dialect == "sqlite":
        return list(_SQLITE)
    if dialect == "postgresql":
        return list(_POSTGRESQL)
    raise ValueError(f"The memory service supports SQLite and PostgreSQL, not {dialect!r}.")


def upgrade(conn: Connection) -> None:
    """Adds what ``ddl`` creates but tables made by an older version lack (idempotent; run
    in the set-up transaction, after ``ddl``)."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(
            f"ALTER TABLE ma_memory_sessions ADD COLUMN IF NOT EXISTS {_INCARNATION_COLUMN}"
        )
    elif "incarnation" not in watermark_columns(conn):
        conn.exec_driver_sql(f"ALTER TABLE ma_memory_sessions ADD COLUMN {_INCARNATION_COLUMN}")


def watermark_columns(conn: Connection) -> set[str]:
    """The column names of ``ma_memory_sessions`` (empty when the table does not exist)."""
    inspector = inspect(conn)
    if not inspector.has_table("ma_memory_sessions"):
        return set()
    return {c["name"] for c in inspector.get_columns("ma_memory_sessions")}


def scope_token(app_name: str, user_id: str) -> str:
    """One FTS5 token per (app, user): hex digits between letters no stemmer alters."""
    digest = hashlib.sha256(f"{app_name}\x00{user_id}".encode()).hexdigest()[:32]
    return f"z{digest}0"


# -- statements (text SQL valid on both dialects unless named otherwise) ---------------------

INSERT_ENTRY = text(
    """
    INSERT INTO ma_memory_entries
        (app_name, user_id, session_id, event_id, scope, timestamp, author, text, context)
    VALUES (:app_name, :user_id, :session_id, :event_id, :scope, :timestamp, :author, :text,
            :context)
    ON CONFLICT (app_name, user_id, session_id, event_id) DO NOTHING
    """
)

# The stored session the memory indexes from. On PostgreSQL the row is share-locked (the
# weakest lock a DELETE waits for) until the indexing commits: a concurrent delete_session
# either waits and then removes what was indexed, or commits first and there is no row.
# SQLite needs no lock: write transactions are serialised (BEGIN IMMEDIATE).
_SESSION_FOR_INDEXING = (
    "SELECT last_seq, incarnation FROM ma_sessions WHERE app_name = :app_name "
    "AND user_id = :user_id AND id = :session_id"
)
SESSION_FOR_INDEXING = {
    "sqlite": text(_SESSION_FOR_INDEXING),
    "postgresql": text(_SESSION_FOR_INDEXING + " FOR KEY SHARE"),
}

WATERMARK = text(
    "SELECT indexed_seq, incarnation FROM ma_memory_sessions WHERE app_name = :app_name "
    "AND user_id = :user_id AND session_id = :session_id"
)

# The session's stored human/agent messages since the watermark, in one statement.
COPY_FROM_EVENTS = text(
    f"""
    INSERT INTO ma_memory_entries
        (app_name, user_id, session_id, event_id, scope, timestamp, author, text, context)
    SELECT e.app_name, e.user_id, e.session_id, e.id, :scope, e.timestamp, e.source,
           substr(e.text, 1, {MAX_TEXT_CHARS}),
           CASE WHEN e.message_type = 'agent' THEN coalesce((
               SELECT substr(h.text, 1, {MAX_CONTEXT_CHARS}) FROM ma_events AS h
               WHERE h.app_name = e.app_name AND h.user_id = e.user_id
                 AND h.session_id = e.session_id AND h.seq < e.seq
                 AND h.message_type = 'human' AND h.on_path
               ORDER BY h.seq DESC LIMIT 1), '') ELSE '' END
    FROM ma_events AS e
    WHERE e.app_name = :app_name AND e.user_id = :user_id AND e.session_id = :session_id
      AND e.seq > :after_seq AND e.seq <= :upto_seq
      AND e.message_type IN ('human', 'agent') AND e.on_path
      AND e.text IS NOT NULL AND e.text <> ''
    ON CONFLICT (app_name, user_id, session_id, event_id) DO NOTHING
    """
)

# The watermark only moves forward within one incarnation; another incarnation replaces it.
SET_WATERMARK = text(
    """
    INSERT INTO ma_memory_sessions (app_name, user_id, session_id, indexed_seq, incarnation)
    VALUES (:app_name, :user_id, :session_id, :seq, :incarnation)
    ON CONFLICT (app_name, user_id, session_id) DO UPDATE SET
        indexed_seq = CASE
            WHEN excluded.incarnation <> ma_memory_sessions.incarnation
              OR excluded.indexed_seq > ma_memory_sessions.indexed_seq
            THEN excluded.indexed_seq ELSE ma_memory_sessions.indexed_seq END,
        incarnation = excluded.incarnation
    """
)

_SESSION_KEY = "app_name = :app_name AND user_id = :user_id AND session_id = :session_id"

# Vectors first: ON DELETE CASCADE does it too, unless an injected SQLite engine has foreign
# keys off.
DELETE_SESSION_VECTORS = text(
    "DELETE FROM ma_memory_vectors WHERE app_name = :app_name AND user_id = :user_id "
    f"AND entry_id IN (SELECT id FROM ma_memory_entries WHERE {_SESSION_KEY})"
)
DELETE_SESSION_ENTRIES = text(f"DELETE FROM ma_memory_entries WHERE {_SESSION_KEY}")
DELETE_WATERMARK = text(f"DELETE FROM ma_memory_sessions WHERE {_SESSION_KEY}")

MEMORY_TABLES = ("ma_memory_entries", "ma_memory_vectors", "ma_memory_sessions")
"""The tables that hold a session's memory (what :func:`forget_session` deletes from)."""

_PRESENT = {
    "sqlite": text(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name IN "
        "('ma_memory_entries', 'ma_memory_vectors', 'ma_memory_sessions')"
    ),
    # to_regclass resolves the name like the unqualified statements do (search_path).
    "postgresql": text(
        "SELECT name FROM unnest(CAST(ARRAY['ma_memory_entries', 'ma_memory_vectors', "
        "'ma_memory_sessions'] AS text[])) AS name WHERE to_regclass(name) IS NOT NULL"
    ),
}

_PRESENT_KEY = "multi_agent.memory_tables"


def present_tables(conn: Connection) -> frozenset[str]:
    """Which of :data:`MEMORY_TABLES` exist in the connection's database.

    Memory tables are created (by a memory service's set-up, possibly in another process, at
    any time) and never dropped, so once all of them are seen the answer is cached on the
    DBAPI connection (``Connection.info``, which lives as long as the pooled connection) and
    costs nothing more. Until then every call looks again: one catalog query (SQLite:
    ``sqlite_master``, in the schema cache; PostgreSQL: ``to_regclass``, one round trip), so
    a memory service set up after this connection first looked is still seen.
    """
    info = conn.info
    cached = info.get(_PRESENT_KEY)
    if cached is not None:
        return cached
    statement = _PRESENT.get(conn.dialect.name)
    if statement is None:  # pragma: no cover - the memory supports SQLite and PostgreSQL only
        return frozenset()
    found = frozenset(conn.execute(statement).scalars())
    if len(found) == len(MEMORY_TABLES):
        info[_PRESENT_KEY] = found
    return found


def forget_session(conn: Connection, *, app_name: str, user_id: str, session_id: str) -> int:
    """Deletes a session's memory: its entries, their vectors and its watermark.

    Runs in the caller's transaction (the store's ``delete_session`` calls it in the one
    that deletes the session). A database without the memory tables is left alone (see
    :func:`present_tables` for what that check costs).

    Returns:
        How many entries were deleted.
    """
    present = present_tables(conn)
    if not present:
        return 0
    key = {"app_name": app_name, "user_id": user_id, "session_id": session_id}
    if "ma_memory_vectors" in present and "ma_memory_entries" in present:
        conn.execute(DELETE_SESSION_VECTORS, key)
    deleted = 0
    if "ma_memory_entries" in present:
        deleted = max(conn.execute(DELETE_SESSION_ENTRIES, key).rowcount, 0)
    if "ma_memory_sessions" in present:
        conn.execute(DELETE_WATERMARK, key)
    return deleted


SEARCH_SQLITE = text(
    """
    SELECT e.id, e.session_id, e.event_id, e.author, e.timestamp, e.text,
           -bm25(ma_memory_fts, 0.0, 1.0, 0.3) AS score
    FROM ma_memory_fts JOIN ma_memory_entries AS e ON e.id = ma_memory_fts.rowid
    WHERE ma_memory_fts MATCH :match AND e.app_name = :app_name AND e.user_id = :user_id
    ORDER BY bm25(ma_memory_fts, 0.0, 1.0, 0.3), e.timestamp DESC, e.id DESC
    LIMIT :limit
    """
)

SEARCH_POSTGRESQL = text(
    """
    SELECT e.id, e.session_id, e.event_id, e.author, e.timestamp, e.text,
           ts_rank_cd(e.tsv, q, 1) AS score
    FROM ma_memory_entries AS e, websearch_to_tsquery('english', :query) AS q
    WHERE e.app_name = :app_name AND e.user_id = :user_id AND e.tsv @@ q
    ORDER BY score DESC, e.timestamp DESC, e.id DESC
    LIMIT :limit
    """
)

DELETE_ENTRY = text(
    "DELETE FROM ma_memory_entries WHERE app_name = :app_name AND user_id = :user_id "
    "AND id = :id"
)

DELETE_VECTORS_OF_ENTRY = text(
    "DELETE FROM ma_memory_vectors WHERE entry_id = :id AND app_name = :app_name "
    "AND user_id = :user_id"
)

# Entries of the user that have no vector of this model yet (newest first: a new turn's
# messages are embedded before an old backlog).
UNEMBEDDED = text(
    """
    SELECT e.id, e.text FROM ma_memory_entries AS e
    WHERE e.app_name = :app_name AND e.user_id = :user_id
      AND NOT EXISTS (SELECT 1 FROM ma_memory_vectors AS v
                      WHERE v.entry_id = e.id AND v.model = :model)
    ORDER BY e.id DESC
    LIMIT :limit
    """
)

# How many of the user's entries have no vector of this model (every vector belongs to an
# entry of the same user, so the difference of two index counts).
PENDING_COUNT = text(
    """
    SELECT (SELECT count(*) FROM ma_memory_entries
            WHERE app_name = :app_name AND user_id = :user_id)
         - (SELECT count(*) FROM ma_memory_vectors
            WHERE app_name = :app_name AND user_id = :user_id AND model = :model)
    """
)

# Only while the entry still exists (a concurrent delete_memory may have removed it).
INSERT_VECTOR = text(
    """
    INSERT INTO ma_memory_vectors (entry_id, model, app_name, user_id, vector)
    SELECT e.id, :model, e.app_name, e.user_id, :vector FROM ma_memory_entries AS e
    WHERE e.id = :entry_id
    ON CONFLICT (entry_id, model) DO NOTHING
    """
)

USER_VECTORS = text(
    "SELECT entry_id, vector FROM ma_memory_vectors WHERE app_name = :app_name "
    "AND user_id = :user_id AND model = :model"
)

ENTRIES_BY_ID = text(
    """
    SELECT e.id, e.session_id, e.event_id, e.author, e.timestamp, e.text
    FROM ma_memory_entries AS e
    WHERE e.app_name = :app_name AND e.user_id = :user_id AND e.id IN :ids
    """
).bindparams(bindparam("ids", expanding=True))
