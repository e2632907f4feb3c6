"""The memory's tables (prefix ``ma_memory_``) and every statement on them, owned by the store.

They are part of the store's versioned schema (``migrations.py``, step 4), and the statements
that copy from the store's own tables (``ma_events``, ``ma_sessions``) live here, beside the
schema they read; ``multi_agent.memory`` calls the functions below and holds no SQL.

Both databases share the row layout of ``ma_memory_entries`` (one row per remembered human or
agent message, unique by app, user, session and event id) and ``ma_memory_sessions`` (per
session, the sequence number up to which the session's stored events have been indexed, and
the ``incarnation`` of the session those entries came from: a session re-created under a
deleted one's id has another, and is indexed afresh). The full-text index differs, and is
each dialect's (``dialects/``: SQLite FTS5 with bm25, PostgreSQL ``tsvector`` + GIN with
``ts_rank_cd``). An agent's reply is indexed with the human message it answers as ``context``
(weighted lower than its own text), so "which wine did you suggest?" finds the reply that names
the wines, not only the question that named "wine".

With semantic search on, ``ma_memory_vectors`` holds one embedding per entry and model:
little-endian float32, L2-normalised, so a dot product is the cosine similarity. Vectors are
compared in Python (NumPy) over the user's rows; they are deleted with their entry (``ON
DELETE CASCADE``).

Every DDL statement is ``IF NOT EXISTS``, so setting up is idempotent. A memory on a database
without the store's tables (built from a URL, sessions elsewhere) creates only these tables
(``migrations.ensure_memory_schema``).

The session store's ``delete_session`` calls :func:`forget_session` in its own transaction, so
a deleted session's memory goes with it when the memory tables are in the store's database
(whether they are is looked up cheaply, see :func:`present_tables`).
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import and_, bindparam, inspect, select, text
from sqlalchemy.engine import Connection

from . import schema as s

__all__ = [
    "ADVISORY_LOCK",
    "MAX_CONTEXT_CHARS",
    "MAX_TEXT_CHARS",
    "MEMORY_LOCK_KEY",
    "MEMORY_TABLES",
    "ddl",
    "count_event_entries",
    "forget_event_entries",
    "forget_session",
    "forget_user",
    "present_tables",
    "refuse_when_encrypted",
    "scope_token",
    "upgrade",
]

MAX_TEXT_CHARS = 20_000
"""Longest text indexed for one message (PostgreSQL caps a tsvector at 1 MB)."""

MAX_CONTEXT_CHARS = 2_000
"""Longest context indexed with an agent reply: the start of the human message it answers."""

UNSPACED_RANGES = "\u3005\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af"
"""Scripts written without spaces between words, whose characters the full-text index takes
one by one: kana, CJK ideographs (with the iteration mark 々) and Hangul syllables (Korean
is spaced, but its particles are written onto the word). A search for ``太郎`` is then the
phrase ``太 郎``, found inside ``私の名前は太郎です`` (see ``memory/query.py``)."""

_UNSPACED_CHAR = re.compile(f"([{UNSPACED_RANGES}])")


def index_terms(text: str | None) -> str | None:
    """What the full-text index reads for ``text``, when that is not ``text`` itself: the
    text in NFKC (so that decomposed and composed letters, full and half width, are one), each
    character of :data:`UNSPACED_RANGES` set apart by spaces. None when nothing changes."""
    if not text or text.isascii():  # (NFKC leaves ASCII as it is)
        return None
    terms = _UNSPACED_CHAR.sub(r" \1 ", unicodedata.normalize("NFKC", text))
    return None if terms == text else terms


MEMORY_LOCK_KEY = 7308117251911
"""The advisory lock that serialises the memory schema set-up across PostgreSQL sessions."""

ADVISORY_LOCK = f"SELECT pg_advisory_xact_lock({MEMORY_LOCK_KEY})"
"""PostgreSQL's statement for :data:`MEMORY_LOCK_KEY` (``Dialect.advisory_lock_sql``)."""

MEMORY_TABLES = ("ma_memory_entries", "ma_memory_vectors", "ma_memory_sessions",
                 "ma_memory_forgotten")
"""The tables that hold a session's memory (what :func:`forget_session` deletes from)."""

# -- DDL shared by the dialects (each adds its full-text index: dialects/) -------------------

COMMON_COLUMNS = """
    app_name VARCHAR(256) NOT NULL,
    user_id VARCHAR(256) NOT NULL,
    session_id VARCHAR(256) NOT NULL,
    event_id VARCHAR(256) NOT NULL,
    scope VARCHAR(64) NOT NULL,
    timestamp DOUBLE PRECISION NOT NULL,
    author VARCHAR(256) NOT NULL,
    text TEXT NOT NULL,
    context TEXT NOT NULL DEFAULT '',
    terms TEXT,
    context_terms TEXT,
"""

SESSIONS_DDL = """
CREATE TABLE IF NOT EXISTS ma_memory_sessions (
    app_name VARCHAR(256) NOT NULL,
    user_id VARCHAR(256) NOT NULL,
    session_id VARCHAR(256) NOT NULL,
    indexed_seq BIGINT NOT NULL,
    incarnation VARCHAR(32) NOT NULL DEFAULT '',
    PRIMARY KEY (app_name, user_id, session_id)
)
"""

FORGOTTEN_DDL = """
CREATE TABLE IF NOT EXISTS ma_memory_forgotten (
    app_name VARCHAR(256) NOT NULL,
    user_id VARCHAR(256) NOT NULL,
    session_id VARCHAR(256) NOT NULL,
    event_id VARCHAR(256) NOT NULL,
    PRIMARY KEY (app_name, user_id, session_id, event_id)
)
"""
"""The events whose memory was deleted (``delete_memory``): adding their session again, or
the events themselves, does not bring it back (as ADK's ``InMemoryMemoryService`` remembers
its deleted ids). Only ids: nothing of what was said. Added after the first release: the
memory's DDL creates it on an older database (an absent table counts as empty)."""

INCARNATION_COLUMN = "incarnation VARCHAR(32) NOT NULL DEFAULT ''"
"""Added after the first release; ``Dialect.memory_upgrade`` adds it to older databases ('' there,
which is also the incarnation the store's migration gives sessions that predate schema 2)."""


def vectors_ddl(id_type: str, bytes_type: str) -> str:
    """``ma_memory_vectors`` with the dialect's integer and bytes types."""
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


VECTORS_INDEX_DDL = (
    "CREATE INDEX IF NOT EXISTS ix_ma_memory_vectors_scope "
    "ON ma_memory_vectors (app_name, user_id, model)"
)


def ddl(dialect: str) -> list[str]:
    """The statements that create the memory tables on ``dialect`` (idempotent).

    Raises:
        ValueError: a dialect other than ``sqlite`` or ``postgresql``.
    """
    from .dialects import dialect_for, known

    if not known(dialect):
        raise ValueError(f"The memory service supports SQLite and PostgreSQL, not {dialect!r}.")
    return dialect_for(dialect).memory_ddl()


def upgrade(conn: Connection) -> None:
    """Adds what ``ddl`` creates but tables made by an older version lack (idempotent; run
    in the set-up transaction, after ``ddl``)."""
    from .dialects import dialect_for

    dialect_for(conn.dialect.name).memory_upgrade(conn)


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


# -- statements (text SQL valid on both dialects unless built from the schema) ---------------

_NOT_FORGOTTEN = """NOT EXISTS (SELECT 1 FROM ma_memory_forgotten AS f
        WHERE f.app_name = {a} AND f.user_id = {u} AND f.session_id = {s} AND f.event_id = {e})"""

# Each key parameter is used twice: one type for both (asyncpg refuses text in one place and
# varchar in the other).
_A, _U, _S, _E = (f"CAST(:{name} AS VARCHAR)"
                  for name in ("app_name", "user_id", "session_id", "event_id"))

INSERT_ENTRY = text(
    f"""
    INSERT INTO ma_memory_entries
        (app_name, user_id, session_id, event_id, scope, timestamp, author, text, context,
         terms, context_terms)
    SELECT {_A}, {_U}, {_S}, {_E}, :scope, :timestamp, :author, :text, :context, :terms,
           :context_terms
    WHERE {_NOT_FORGOTTEN.format(a=_A, u=_U, s=_S, e=_E)}
    ON CONFLICT (app_name, user_id, session_id, event_id) DO NOTHING
    """
)

# The stored session the memory indexes from. The row is share-locked where the database locks
# rows (PostgreSQL: FOR KEY SHARE, the weakest lock a DELETE waits for) until the indexing
# commits: a concurrent delete_session either waits and then removes what was indexed, or
# commits first and there is no row. SQLite renders no lock: write transactions are serialised
# (BEGIN IMMEDIATE).
_ss = s.sessions.c
SESSION_FOR_INDEXING = (
    select(_ss.last_seq, _ss.incarnation)
    .where(and_(_ss.app_name == bindparam("app_name"), _ss.user_id == bindparam("user_id"),
                _ss.id == bindparam("session_id")))
    .with_for_update(read=True, key_share=True)
)

WATERMARK = text(
    "SELECT indexed_seq, incarnation FROM ma_memory_sessions WHERE app_name = :app_name "
    "AND user_id = :user_id AND session_id = :session_id"
)

# The session's stored human/agent messages since the watermark, in one statement.
# An agent's reply is remembered with the human message before it (its ``context``).
_CONTEXT = f"""CASE WHEN e.message_type = 'agent' THEN coalesce((
               SELECT substr(h.text, 1, {MAX_CONTEXT_CHARS}) FROM {s.events.name} AS h
               WHERE h.app_name = e.app_name AND h.user_id = e.user_id
                 AND h.session_id = e.session_id AND h.seq < e.seq
                 AND h.message_type = 'human' AND h.on_path
               ORDER BY h.seq DESC LIMIT 1), '') ELSE '' END"""

_COPY_FROM_EVENTS = (
    f"""
    INSERT INTO ma_memory_entries
        (app_name, user_id, session_id, event_id, scope, timestamp, author, text, terms,
         context, context_terms)
    SELECT e.app_name, e.user_id, e.session_id, e.id, :scope, e.timestamp, e.source,
           substr(e.text, 1, {MAX_TEXT_CHARS}), {{terms}}, {_CONTEXT}, {{context_terms}}
    FROM {s.events.name} AS e
    WHERE e.app_name = :app_name AND e.user_id = :user_id AND e.session_id = :session_id
      AND e.seq > :after_seq AND e.seq <= :upto_seq
      AND e.message_type IN ('human', 'agent') AND e.on_path
      AND e.text IS NOT NULL AND e.text <> ''
      AND {_NOT_FORGOTTEN.format(a="e.app_name", u="e.user_id", s="e.session_id", e="e.id")}
    ON CONFLICT (app_name, user_id, session_id, event_id) DO NOTHING
    """
)
# ``terms``, ``context_terms`` (index_terms): SQLite's connections have it as the function
# ma_index_terms (dialects/sqlite.py); PostgreSQL derives its tsvector from the text itself.
COPY_FROM_EVENTS = {
    "sqlite": text(_COPY_FROM_EVENTS.format(
        terms=f"ma_index_terms(substr(e.text, 1, {MAX_TEXT_CHARS}))",
        context_terms=f"ma_index_terms({_CONTEXT})")),
    "postgresql": text(_COPY_FROM_EVENTS.format(terms="NULL", context_terms="NULL")),
}

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

FORGET_ENTRY = text(
    """
    INSERT INTO ma_memory_forgotten (app_name, user_id, session_id, event_id)
    SELECT app_name, user_id, session_id, event_id FROM ma_memory_entries
    WHERE app_name = :app_name AND user_id = :user_id AND id = :id
    ON CONFLICT (app_name, user_id, session_id, event_id) DO NOTHING
    """
)
DELETE_SESSION_FORGOTTEN = text(f"DELETE FROM ma_memory_forgotten WHERE {_SESSION_KEY}")

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


# -- what the memory service calls (each inside one of the backend's transactions) -----------

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
    from .dialects import dialect_for, known

    info = conn.info
    cached = info.get(_PRESENT_KEY)
    if cached is not None:
        return cached
    name = conn.dialect.name
    if not known(name):  # pragma: no cover - the memory supports SQLite and PostgreSQL only
        return frozenset()
    found = frozenset(conn.execute(dialect_for(name).memory_tables_sql()).scalars())
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
    if "ma_memory_forgotten" in present:
        conn.execute(DELETE_SESSION_FORGOTTEN, key)
    return deleted


# The entries of a session's events in a seq range (a trim, ``trim.py``), but one kept event.
_RANGE_EVENTS = (
    "SELECT id FROM ma_events WHERE app_name = :app_name AND user_id = :user_id "
    "AND session_id = :session_id AND seq >= :lo AND seq < :hi AND seq <> :keep"
)
_RANGE_ENTRIES = f"{_SESSION_KEY} AND event_id IN ({_RANGE_EVENTS})"
COUNT_RANGE_ENTRIES = text(f"SELECT count(*) FROM ma_memory_entries WHERE {_RANGE_ENTRIES}")
DELETE_RANGE_VECTORS = text(
    "DELETE FROM ma_memory_vectors WHERE app_name = :app_name AND user_id = :user_id "
    f"AND entry_id IN (SELECT id FROM ma_memory_entries WHERE {_RANGE_ENTRIES})"
)
DELETE_RANGE_ENTRIES = text(f"DELETE FROM ma_memory_entries WHERE {_RANGE_ENTRIES}")


def count_event_entries(
    conn: Connection, *, app_name: str, user_id: str, session_id: str, lo: int, hi: int,
    keep: int | None,
) -> int:
    """How many memory entries the session's events with ``lo <= seq < hi`` (but ``keep``)
    have."""
    if "ma_memory_entries" not in present_tables(conn):
        return 0
    params = {"app_name": app_name, "user_id": user_id, "session_id": session_id, "lo": lo,
              "hi": hi, "keep": -1 if keep is None else keep}
    return int(conn.execute(COUNT_RANGE_ENTRIES, params).scalar() or 0)


def forget_event_entries(
    conn: Connection, *, app_name: str, user_id: str, session_id: str, lo: int, hi: int,
    keep: int | None,
) -> int:
    """Deletes the memory entries (and vectors) of the session's events with ``lo <= seq <
    hi`` (but ``keep``), in the caller's transaction, before the events; returns how many."""
    present = present_tables(conn)
    if "ma_memory_entries" not in present:
        return 0
    params = {"app_name": app_name, "user_id": user_id, "session_id": session_id, "lo": lo,
              "hi": hi, "keep": -1 if keep is None else keep}
    if "ma_memory_vectors" in present:
        conn.execute(DELETE_RANGE_VECTORS, params)
    return max(conn.execute(DELETE_RANGE_ENTRIES, params).rowcount, 0)


_CLEAR_KEY = "multi_agent.memory_tables.not_encrypted"


def refuse_when_encrypted(conn: Connection) -> None:
    """The memory keeps a clear-text copy of the conversation (the full-text index, the
    entries it ranks, and vectors that an attacker can partly invert), so it refuses to
    index into an encrypted database (``sealing.py``): docs/encryption.md.

    The answer "not encrypted" is cached on the pooled connection (``Connection.info``).

    Raises:
        EncryptionError: the database is encrypted (or this engine has a key).
    """
    from . import sealing

    if conn.info.get(_CLEAR_KEY):
        return
    encrypted = sealing.keyring_of(conn.dialect) is not None or conn.execute(
        select(s.meta.c.value).where(s.meta.c.key == sealing.META_KEY)
    ).first() is not None
    if encrypted:
        from ..errors import EncryptionError

        raise EncryptionError(
            "Long memory (multi_agent.memory) is off on an encrypted store: its full-text "
            "index and vectors would be a clear-text copy of the conversation. Use the "
            "memory on an unencrypted database, or no memory service (docs/encryption.md)."
        )
    conn.info[_CLEAR_KEY] = True


def index_session(
    conn: Connection, *, key: Mapping[str, str], rows: Sequence[Mapping[str, Any]],
    incarnation: str | None, use_store: bool, deleted_when_absent: bool,
) -> int:
    """Indexes what is new of one session; returns how many entries were added (at most).

    Args:
        conn: a write transaction.
        key: the session's ``app_name``, ``user_id``, ``session_id``.
        rows: the session's messages as entries (the caller's copy), used when the session
            is not stored in this database.
        incarnation: the caller's copy's incarnation (from its marker), if known.
        use_store: the store's tables are in this database: index from the stored events.
        deleted_when_absent: a session that is not stored was deleted: index nothing.
    """
    refuse_when_encrypted(conn)
    key = dict(key)
    if use_store:
        stored = conn.execute(SESSION_FOR_INDEXING, key).first()
        if stored is not None:
            return _index_stored(conn, key, stored.last_seq, stored.incarnation)
        if deleted_when_absent:
            return 0
    if incarnation is not None:
        mark = conn.execute(WATERMARK, key).first()
        if mark is None or mark.incarnation != incarnation:
            if mark is not None:  # entries of the deleted session this one replaces
                forget_session(conn, **key)
            # indexed_seq 0: events are not copied from a store for this session.
            conn.execute(SET_WATERMARK, {**key, "seq": 0, "incarnation": incarnation})
    if rows:
        conn.execute(INSERT_ENTRY, _with_terms(conn, rows))
    return len(rows)


def _index_stored(
    conn: Connection, key: dict[str, str], last_seq: int, stored_incarnation: str
) -> int:
    mark = conn.execute(WATERMARK, key).first()
    done = 0
    if mark is not None and mark.incarnation == stored_incarnation:
        done = mark.indexed_seq
    elif mark is not None:  # the watermark and entries of a deleted incarnation
        forget_session(conn, **key)
    added = 0
    if last_seq > done:
        scope = scope_token(key["app_name"], key["user_id"])
        added = conn.execute(
            COPY_FROM_EVENTS[conn.dialect.name],
            {**key, "scope": scope, "after_seq": done, "upto_seq": last_seq},
        ).rowcount
    if mark is None or last_seq > done or mark.incarnation != stored_incarnation:
        conn.execute(SET_WATERMARK, {**key, "seq": last_seq, "incarnation": stored_incarnation})
    return max(added, 0)


def insert_entries(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
    """Adds entries (duplicates by app, user, session and event id are skipped)."""
    refuse_when_encrypted(conn)
    conn.execute(INSERT_ENTRY, _with_terms(conn, rows))


def _with_terms(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The rows with their ``terms`` and ``context_terms`` (:func:`index_terms`; PostgreSQL
    needs none)."""
    if conn.dialect.name != "sqlite":
        return [{**row, "terms": None, "context_terms": None} for row in rows]
    return [{**row, "terms": index_terms(row["text"]),
             "context_terms": index_terms(row.get("context"))} for row in rows]


def entries_by_id(conn: Connection, *, app_name: str, user_id: str, ids: list[int]) -> list[Any]:
    """The user's entries with these ids (any order)."""
    params = {"app_name": app_name, "user_id": user_id, "ids": ids}
    return list(conn.execute(ENTRIES_BY_ID, params).all())


def user_vectors(conn: Connection, *, app_name: str, user_id: str, model: str) -> list[Any]:
    """Rows of ``entry_id, vector`` for every entry of the user embedded with ``model``."""
    scope = {"app_name": app_name, "user_id": user_id, "model": model}
    return list(conn.execute(USER_VECTORS, scope).all())


def pending_count(conn: Connection, *, app_name: str, user_id: str, model: str) -> int:
    """How many of the user's entries have no vector of ``model``."""
    scope = {"app_name": app_name, "user_id": user_id, "model": model}
    return int(conn.execute(PENDING_COUNT, scope).scalar() or 0)


def unembedded(
    conn: Connection, *, app_name: str, user_id: str, model: str, limit: int
) -> list[Any]:
    """Up to ``limit`` rows of ``id, text``: the user's newest entries without a vector."""
    params = {"app_name": app_name, "user_id": user_id, "model": model, "limit": limit}
    return list(conn.execute(UNEMBEDDED, params).all())


def insert_vectors(conn: Connection, rows: Iterable[Mapping[str, Any]]) -> None:
    """Stores ``entry_id, model, vector`` rows (for entries that still exist)."""
    conn.execute(INSERT_VECTOR, list(rows))


def delete_entry(conn: Connection, *, app_name: str, user_id: str, entry_id: int) -> None:
    """Deletes one entry of the user, with its vectors; its event is not indexed again
    (``ma_memory_forgotten``)."""
    params = {"app_name": app_name, "user_id": user_id, "id": entry_id}
    conn.execute(FORGET_ENTRY, params)
    # ON DELETE CASCADE does this too, unless an injected SQLite engine has foreign keys off.
    conn.execute(DELETE_VECTORS_OF_ENTRY, params)
    conn.execute(DELETE_ENTRY, params)


# -- a whole user's memory (``forget.py``: forgetting a user) ---------------------------------

_USER_KEY = "app_name = :app_name AND user_id = :user_id"

# What each memory table holds of one user, in the order they are deleted (vectors before
# their entries: ON DELETE CASCADE does it too, unless an injected SQLite engine has foreign
# keys off). The table names are the report's keys.
_USER_STATEMENTS = {
    "ma_memory_vectors": (
        text(f"SELECT count(*) FROM ma_memory_vectors WHERE {_USER_KEY}"),
        text(f"DELETE FROM ma_memory_vectors WHERE {_USER_KEY}"),
    ),
    "ma_memory_entries": (
        text(f"SELECT count(*) FROM ma_memory_entries WHERE {_USER_KEY}"),
        text(f"DELETE FROM ma_memory_entries WHERE {_USER_KEY}"),
    ),
    "ma_memory_sessions": (
        text(f"SELECT count(*) FROM ma_memory_sessions WHERE {_USER_KEY}"),
        text(f"DELETE FROM ma_memory_sessions WHERE {_USER_KEY}"),
    ),
    "ma_memory_forgotten": (
        text(f"SELECT count(*) FROM ma_memory_forgotten WHERE {_USER_KEY}"),
        text(f"DELETE FROM ma_memory_forgotten WHERE {_USER_KEY}"),
    ),
}


def forget_user(
    conn: Connection, *, app_name: str, user_id: str, dry_run: bool = False
) -> dict[str, int]:
    """Deletes (or, with ``dry_run``, counts) everything the memory holds of one user in one
    app: entries (and with them their full-text index rows, by trigger on SQLite), vectors and
    watermarks. Runs in the caller's transaction; absent memory tables count 0.

    Returns:
        ``{table name: rows}`` for each of :data:`MEMORY_TABLES`.
    """
    present = present_tables(conn)
    key = {"app_name": app_name, "user_id": user_id}
    out: dict[str, int] = {}
    for table, (count_sql, delete_sql) in _USER_STATEMENTS.items():
        if table not in present:
            out[table] = 0
        elif dry_run:
            out[table] = int(conn.execute(count_sql, key).scalar() or 0)
        else:
            out[table] = max(conn.execute(delete_sql, key).rowcount, 0)
    return out
