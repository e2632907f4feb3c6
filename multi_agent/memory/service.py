"""``DatabaseMemoryService``: ADK long-term memory in the session store's own database.

What the person and the agents said in earlier sessions becomes searchable with the database's
own full-text search: SQLite FTS5 (bm25 ranking, porter stemming) or PostgreSQL text search
(``tsvector`` + GIN, ``ts_rank_cd``). There is no extra server and no model download: the memory
lives beside the sessions, on the same engine.

Example:
    >>> sessions = DatabaseSessionService("sqlite+aiosqlite:///./multi_agent_data.db")
    >>> memory = DatabaseMemoryService(sessions)
    >>> runner = Runner(app=app, session_service=sessions, memory_service=memory)
    >>> await memory.add_session_to_memory(session)          # after each turn: cheap, idempotent
    >>> (await memory.search_memory(app_name="multi_agent", user_id="ann",
    ...                             query="what did I say about Nvidia?")).memories

What is remembered: the person's messages and the agents' text replies. Tool calls, tool
results, state-only and other system events are left out, as are events of branches that a
``branch`` moved away from (when they are indexed from the store).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from google.adk.events.event import Event
from google.adk.memory.base_memory_service import BaseMemoryService, SearchMemoryResponse
from google.adk.memory.memory_entry import MemoryEntry
from google.adk.sessions.session import Session
from google.genai import types
from sqlalchemy import inspect
from sqlalchemy.engine import Connection
from typing_extensions import override

from ..errors import StoreError
from ..store.backend import Backend, open_backend
from ..store.facts import event_facts
from ..store.service import DatabaseSessionService, check_id
from . import tables as t
from .query import fts5_match, query_terms, tsquery_text
from .recent import MessageType, recent_events

if TYPE_CHECKING:
    from ..store.messages import Message

__all__ = ["DEFAULT_MAX_RESULTS", "DatabaseMemoryService"]

DEFAULT_MAX_RESULTS = 10
"""How many memories one search returns at most (they all go into the model's context)."""


class DatabaseMemoryService(BaseMemoryService):
    """Ranked full-text memory over past sessions, scoped to app and user.

    Args:
        source: the ``DatabaseSessionService`` whose engine to share (recommended: the memory
            then indexes straight from the stored events, in SQL), or a database URL (the
            memory opens its own engine; sessions from any session service are indexed from
            their ``events``).
        max_results: the most memories one search returns.
        max_entry_chars: the longest text one memory carries back to the model (the full
            message stays indexed up to ``tables.MAX_TEXT_CHARS``); longer text is cut at a
            word boundary and ends with an ellipsis.
        **backend_kwargs: for a URL: passed to the store's ``open_backend`` (e.g.
            ``sqlite_synchronous``).

    Raises:
        ValueError: a malformed URL, or ``max_results``/``max_entry_chars`` below 1.
    """

    def __init__(
        self,
        source: DatabaseSessionService | str,
        *,
        max_results: int = DEFAULT_MAX_RESULTS,
        max_entry_chars: int = 2000,
        **backend_kwargs: Any,
    ) -> None:
        if max_results < 1 or max_entry_chars < 1:
            raise ValueError("max_results and max_entry_chars must be at least 1.")
        self._sessions: DatabaseSessionService | None
        if isinstance(source, DatabaseSessionService):
            self._sessions = source
            self._backend: Backend = source.backend
            self._owns_backend = False
        elif isinstance(source, str):
            self._sessions = None
            self._backend = open_backend(source, None, **backend_kwargs)
            self._owns_backend = True
        else:
            raise TypeError(
                "DatabaseMemoryService needs a DatabaseSessionService or a database URL, got "
                f"{type(source).__name__}."
            )
        t.ddl(self._backend.dialect)  # fail now on an unsupported dialect
        self.max_results = max_results
        self.max_entry_chars = max_entry_chars
        self._ready = False
        self._has_events_table = False
        self._setup_lock = asyncio.Lock()

    @property
    def backend(self) -> Backend:
        """The engine wrapper the memory runs its SQL on."""
        return self._backend

    # -- set-up -----------------------------------------------------------------------------

    async def prepare(self) -> None:
        """Creates the memory tables now instead of on first use (idempotent).

        Raises:
            DatabaseUnavailableError: the database cannot be opened or written.
            StoreError: SQLite without the FTS5 extension.
        """
        if self._ready:
            return
        async with self._setup_lock:
            if self._ready:
                return
            if self._sessions is not None:
                await self._sessions.prepare()  # ma_events exists before we copy from it
            dialect = self._backend.dialect

            def setup(conn: Connection) -> bool:
                if dialect == "postgresql":
                    conn.exec_driver_sql(t.ADVISORY_LOCK)
                for statement in t.ddl(dialect):
                    conn.exec_driver_sql(statement)
                return inspect(conn).has_table("ma_events")

            try:
                self._has_events_table = await self._backend.run(setup, write=True)
            except StoreError as exc:
                if "no such module: fts5" in str(exc.__cause__ or exc).lower():
                    raise StoreError(
                        "This Python's SQLite has no FTS5 extension, which the memory service "
                        "needs. Use a Python built with a standard SQLite (FTS5 is on by "
                        "default), or keep memory on PostgreSQL."
                    ) from exc
                raise
            self._ready = True

    async def close(self) -> None:
        """Closes the engine if this service opened it (a shared one is left to its owner)."""
        if self._owns_backend:
            await self._backend.close()

    # -- writing ----------------------------------------------------------------------------

    @override
    async def add_session_to_memory(self, session: Session) -> None:
        """Indexes the session's human and agent messages; safe to call after every turn.

        When the session is stored in this database, its stored events since the last call
        are copied in one ``INSERT ... SELECT`` (so a session loaded with a window of recent
        events still has all its messages indexed). Otherwise its ``events`` are indexed.
        Re-adding never duplicates: rows are unique by (app, user, session, event id).
        """
        app_name, user_id = check_id("app_name", session.app_name), check_id(
            "user_id", session.user_id
        )
        check_id("session_id", session.id)
        await self.prepare()
        rows = list(self._rows(app_name, user_id, session.id, session.events))
        scope = t.scope_token(app_name, user_id)
        key = {"app_name": app_name, "user_id": user_id, "session_id": session.id}
        use_store = self._has_events_table

        def write(conn: Connection) -> None:
            if use_store:
                last_seq = conn.execute(t.SESSION_LAST_SEQ, key).scalar()
                if last_seq is not None:
                    done = conn.execute(t.INDEXED_SEQ, key).scalar() or 0
                    if last_seq > done:
                        conn.execute(
                            t.COPY_FROM_EVENTS,
                            {**key, "scope": scope, "after_seq": done, "upto_seq": last_seq},
                        )
                        conn.execute(t.SET_INDEXED_SEQ, {**key, "seq": last_seq})
                    return
            if rows:
                conn.execute(t.INSERT_ENTRY, rows)

        await self._backend.run(write, write=True)

    @override
    async def add_events_to_memory(
        self,
        *,
        app_name: str,
        user_id: str,
        events: Sequence[Event],
        session_id: str | None = None,
        custom_metadata: Mapping[str, object] | None = None,
    ) -> None:
        """Indexes the human and agent messages among ``events`` (a delta; idempotent).

        ``custom_metadata`` is accepted for ADK compatibility and not stored.
        """
        check_id("app_name", app_name)
        check_id("user_id", user_id)
        sid = check_id("session_id", session_id) if session_id is not None else ""
        await self.prepare()
        rows = list(self._rows(app_name, user_id, sid, events))
        if rows:
            await self._backend.run(lambda conn: conn.execute(t.INSERT_ENTRY, rows), write=True)

    def _rows(
        self, app_name: str, user_id: str, session_id: str, events: Iterable[Event]
    ) -> Iterable[dict[str, Any]]:
        scope = t.scope_token(app_name, user_id)
        last_human = ""
        for event in events:
            if event.partial or not event.id:
                continue
            facts = event_facts(event, last_agent=None)
            if facts.message_type not in ("human", "agent") or not facts.text:
                continue
            context = last_human if facts.message_type == "agent" else ""
            if facts.message_type == "human":
                last_human = facts.text[: t.MAX_CONTEXT_CHARS]
            yield {
                "app_name": app_name,
                "user_id": user_id,
                "session_id": session_id,
                "event_id": event.id,
                "scope": scope,
                "timestamp": float(event.timestamp),
                "author": event.author or "unknown",
                "text": facts.text[: t.MAX_TEXT_CHARS],
                "context": context,
            }

    # -- reading ----------------------------------------------------------------------------

    @override
    async def search_memory(
        self, *, app_name: str, user_id: str, query: str
    ) -> SearchMemoryResponse:
        """The user's past messages that best match ``query``, best first.

        Only this app's and this user's memories are searched. A query without content words
        (empty, punctuation, only words like "what did I say") returns no memories.

        Returns:
            ``MemoryEntry`` objects with the message as ``content`` (role ``user`` for the
            person, ``model`` for agents), ``author``, ``timestamp`` (ISO 8601, UTC) and
            ``custom_metadata`` ``{"session_id", "event_id", "score"}`` (higher is better).
        """
        check_id("app_name", app_name)
        check_id("user_id", user_id)
        terms = query_terms(query)
        if not terms:
            return SearchMemoryResponse()
        await self.prepare()
        params: dict[str, Any] = {"app_name": app_name, "user_id": user_id,
                                  "limit": self.max_results}
        if self._backend.dialect == "sqlite":
            stmt = t.SEARCH_SQLITE
            params["match"] = fts5_match(terms, scope_token=t.scope_token(app_name, user_id))
        else:
            stmt = t.SEARCH_POSTGRESQL
            params["query"] = tsquery_text(terms)
        rows = await self._backend.run(
            lambda conn: conn.execute(stmt, params).all(), write=False
        )
        return SearchMemoryResponse(memories=[self._entry(row) for row in rows])

    def _entry(self, row: Any) -> MemoryEntry:
        body = row.text
        if len(body) > self.max_entry_chars:
            cut = body[: self.max_entry_chars].rsplit(None, 1)[0] or body[: self.max_entry_chars]
            body = cut + " …"
        return MemoryEntry(
            id=str(row.id),
            content=types.Content(
                role="user" if row.author == "user" else "model",
                parts=[types.Part(text=body)],
            ),
            author=row.author,
            timestamp=datetime.fromtimestamp(row.timestamp, tz=UTC).isoformat(),
            custom_metadata={
                "session_id": row.session_id,
                "event_id": row.event_id,
                "score": float(row.score),
            },
        )

    @override
    async def delete_memory(
        self, *, app_name: str, user_id: str, memory_id: str | None = None
    ) -> None:
        """Forgets one memory (``MemoryEntry.id`` from a search); unknown ids are ignored."""
        check_id("app_name", app_name)
        check_id("user_id", user_id)
        if memory_id is None or not str(memory_id).isdigit():
            return
        await self.prepare()
        params = {"app_name": app_name, "user_id": user_id, "id": int(memory_id)}
        await self._backend.run(lambda conn: conn.execute(t.DELETE_ENTRY, params), write=True)

    async def recent_user_events(
        self,
        *,
        app_name: str,
        user_id: str,
        limit: int = 50,
        message_types: Sequence[MessageType] = ("human", "agent"),
        exclude_session_id: str | None = None,
    ) -> list[Message]:
        """The user's most recent messages across all their sessions, newest first.

        One SQL statement over the stored events (no ``list_sessions`` + N x
        ``get_session``, the pattern of ADK issue #5300). Needs the session store's tables in
        this database.

        Args:
            app_name: the app.
            user_id: the user whose sessions are read.
            limit: how many messages at most (1 to 10,000).
            message_types: which kinds: ``human``, ``agent``, ``tool_call``, ``tool_result``,
                ``system``.
            exclude_session_id: leave this session out (typically the current one).

        Raises:
            InvalidValueError: a bad limit or message type.
            StoreError: the database has no session store tables.
        """
        check_id("app_name", app_name)
        check_id("user_id", user_id)
        await self.prepare()
        if not self._has_events_table:
            raise StoreError(
                "recent_user_events reads the session store's events, and this database has "
                "none: build the memory service from the DatabaseSessionService."
            )
        return await recent_events(
            self._backend, app_name=app_name, user_id=user_id, limit=limit,
            message_types=message_types, exclude_session_id=exclude_session_id,
        )
