"""The database schema: table definitions only, versioned.

All tables carry the ``ma_`` prefix so that the store can share a database with ADK's own
``DatabaseSessionService`` (whose tables are ``sessions``, ``events``...).

JSON is stored as TEXT that the store encodes itself (strict JSON, no NaN): the same bytes on
SQLite and PostgreSQL, NUL characters survive (PostgreSQL's JSONB cannot hold ``\\u0000``), and
nothing is pickled, ever. Times are epoch seconds as double precision: exact round trips of
ADK's float timestamps and no time-zone ambiguity. The content columns are ``Sealed``: TEXT
that is encrypted when the store is opened with a key (``sealing.py``), plain TEXT otherwise.

Schema history (see ``migrations.py``):
    1: sessions, events (with run/source/target/branch/type/seq/tokens), runs, app/user state.
    2: concurrency control at every scope: a session ``incarnation`` (no ABA after delete and
       re-create), ``branch_rev``, per-key revisions (``key_revs``) on sessions and on the
       app/user state rows (which get a ``revision``), and each event's ``digest`` (an id
       reused for a different event is refused).
    3: no new columns; the runs that compaction summaries (and other bookkeeping events) made
       in earlier versions are removed, their children re-parented (``runs.py``).
    4: the memory tables (``memory_tables.py``) are upgraded by the chain with the others:
       where they exist, ``ma_memory_sessions`` gets its ``incarnation`` column.
    5: two indexes on ``ma_sessions`` for paged lists newest first (``pages.py``): (app, user,
       update time, id) and (app, update time, user, id).
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

from .sealing import Sealed

SCHEMA_VERSION = 5
"""The schema version this code writes. Bump it and add a step to ``migrations.MIGRATIONS``."""

ID_LENGTH = 256
"""Longest app name, user id, session id, event id or run id the store accepts."""

metadata = MetaData()

meta = Table(
    "ma_meta",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

app_states = Table(
    "ma_app_states",
    metadata,
    Column("app_name", String(ID_LENGTH), primary_key=True),
    Column("state", Sealed("ma_app_states.state"), nullable=False, default="{}"),
    Column("update_time", Float, nullable=False),
    # Bumped by every write of the row; key_revs: {key: the revision that last wrote it}.
    Column("revision", BigInteger, nullable=False, default=0, server_default="0"),
    Column("key_revs", Text, nullable=False, default="{}", server_default="{}"),
)

user_states = Table(
    "ma_user_states",
    metadata,
    Column("app_name", String(ID_LENGTH), primary_key=True),
    Column("user_id", String(ID_LENGTH), primary_key=True),
    Column("state", Sealed("ma_user_states.state"), nullable=False, default="{}"),
    Column("update_time", Float, nullable=False),
    Column("revision", BigInteger, nullable=False, default=0, server_default="0"),
    Column("key_revs", Text, nullable=False, default="{}", server_default="{}"),
)

sessions = Table(
    "ma_sessions",
    metadata,
    Column("app_name", String(ID_LENGTH), primary_key=True),
    Column("user_id", String(ID_LENGTH), primary_key=True),
    Column("id", String(ID_LENGTH), primary_key=True),
    Column("state", Sealed("ma_sessions.state"), nullable=False),
    # The session-scope state the session was created with: branching replays from it.
    Column("initial_state", Sealed("ma_sessions.initial_state"), nullable=False),
    Column("create_time", Float, nullable=False),
    Column("update_time", Float, nullable=False),
    # Bumped by every write; the compare-and-swap token behind stale-copy detection.
    Column("revision", BigInteger, nullable=False, default=0),
    # Sequence number of the newest event (events.seq is dense per session, from 1).
    Column("last_seq", BigInteger, nullable=False, default=0),
    Column("event_count", BigInteger, nullable=False, default=0),
    # The run that the next invocation continues from (the head of the run tree).
    Column("head_run_id", String(ID_LENGTH)),
    # The agent that spoke last.
    Column("last_agent", String(ID_LENGTH)),
    # Sequence number of the first human message no agent has answered yet: the agent that
    # answers becomes the target of those messages (ADK's router decides who that is).
    Column("awaiting_seq", BigInteger),
    # {agent_name: "manager.stock_analyst"} learnt from transfers, for events.branch.
    Column("agent_paths", Text, nullable=False, default="{}"),
    # A fresh random token per creation: a copy of a deleted session never matches the
    # session re-created under its id (revisions restart at 0 there).
    Column("incarnation", String(32), nullable=False, default="", server_default=""),
    # The revision written by the latest branch(): copies older than it hold another history.
    Column("branch_rev", BigInteger, nullable=False, default=0, server_default="0"),
    # {session-state key: the revision that last wrote it}, for per-key conflict checks.
    Column("key_revs", Text, nullable=False, default="{}", server_default="{}"),
    # The orders of a paged list (pages.py), newest first: a page reads page_size index
    # entries at any table size. Every append moves update_time, so each index costs a write
    # per append (measured with bench/scale.py --index-cost: see the README); these two are
    # the ones a page cannot do without: a user's sessions, and an app's.
    Index("ix_ma_sessions_user_time", "app_name", "user_id", "update_time", "id"),
    Index("ix_ma_sessions_app_time", "app_name", "update_time", "user_id", "id"),
)

events = Table(
    "ma_events",
    metadata,
    Column("app_name", String(ID_LENGTH), primary_key=True),
    Column("user_id", String(ID_LENGTH), primary_key=True),
    Column("session_id", String(ID_LENGTH), primary_key=True),
    Column("seq", BigInteger, primary_key=True),
    Column("id", String(ID_LENGTH), nullable=False),
    Column("invocation_id", String(ID_LENGTH), nullable=False),
    Column("run_id", String(ID_LENGTH), nullable=False),
    Column("timestamp", Float, nullable=False),
    Column("source", String(ID_LENGTH), nullable=False),
    Column("target", String(ID_LENGTH)),
    Column("branch", String(1024)),
    Column("message_type", String(16), nullable=False),
    # ADK's Event.is_final_response() for an agent's event: the run answered.
    Column("final", Boolean, nullable=False, default=False),
    Column("text", Sealed("ma_events.text")),
    Column("prompt_tokens", Integer),
    Column("completion_tokens", Integer),
    Column("total_tokens", Integer),
    # False once a branch moved the session's head away from this event's run.
    Column("on_path", Boolean, nullable=False, default=True),
    Column("event_data", Sealed("ma_events.event_data"), nullable=False),
    # A hash of the event as the caller gave it: a retry of the same event is a no-op, a
    # different event under a stored id is refused. NULL for rows from schema 1.
    Column("digest", String(32)),
    ForeignKeyConstraint(
        ["app_name", "user_id", "session_id"],
        ["ma_sessions.app_name", "ma_sessions.user_id", "ma_sessions.id"],
        ondelete="CASCADE",
    ),
    Index("ux_ma_events_id", "app_name", "user_id", "session_id", "id", unique=True),
    Index("ix_ma_events_time", "app_name", "user_id", "session_id", "timestamp"),
    # A rowid table on purpose: WITHOUT ROWID would save one B-tree per insert, but its rows
    # spill to overflow pages past ~1 KB (events are 0.6-10 KB), which made reads 10x slower.
)

# One row per run, written when the run starts. What changes while it runs (end time, event
# count, tokens, status) is derived from its events when asked (``runs.py``), so an append does
# not rewrite this row: one page less to write per append.
runs = Table(
    "ma_runs",
    metadata,
    Column("app_name", String(ID_LENGTH), primary_key=True),
    Column("user_id", String(ID_LENGTH), primary_key=True),
    Column("session_id", String(ID_LENGTH), primary_key=True),
    Column("run_id", String(ID_LENGTH), primary_key=True),
    Column("parent_run_id", String(ID_LENGTH)),
    # invocation | delegation | agent_tool | branch
    Column("kind", String(16), nullable=False),
    Column("agent", String(ID_LENGTH)),
    Column("started_at", Float, nullable=False),
    Column("first_seq", BigInteger, nullable=False),
    # Set only by an explicit outcome (e.g. cancelled); otherwise derived from the events.
    Column("status", String(16)),
    Column("error", Text),
    Column("on_path", Boolean, nullable=False, default=True),
    ForeignKeyConstraint(
        ["app_name", "user_id", "session_id"],
        ["ma_sessions.app_name", "ma_sessions.user_id", "ma_sessions.id"],
        ondelete="CASCADE",
    ),
    sqlite_with_rowid=False,
)

TABLES = (meta, app_states, user_states, sessions, events, runs)
