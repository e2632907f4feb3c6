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

Semantic and hybrid search (optional, the ``[semantic]`` extra): with an embedder, every
remembered message also gets a sentence embedding (all-MiniLM-L6-v2, shipped inside a package,
run in NumPy; see :mod:`multi_agent.memory.embeddings`), so "what did I tell you about my
puppy?" finds "my dog Rex loves the beach", which shares no word with it. ``search="hybrid"``
(the default when an embedder is given) fuses the full-text ranking and the similarity ranking
with reciprocal-rank fusion (RRF, k=60); ``search="semantic"`` uses similarity alone. The mode
can also be chosen with the environment variable ``MULTI_AGENT_MEMORY_SEARCH`` (``fulltext``,
``semantic``, ``hybrid``), which is how ``adk web --memory_service_uri multi-agent://`` and the
chat pick it up.

What is remembered: the person's messages and the agents' text replies. Tool calls, tool
results, state-only and other system events are left out, as are events of branches that a
``branch`` moved away from (when they are indexed from the store).

Deleted and re-created sessions (the memory follows the sessions it was made from):

* **Memory in the session store's database** (built from the ``DatabaseSessionService``, as
  ``build_runner`` does, or from that database's URL): ``delete_session`` removes the session's
  entries, their vectors and its watermark in the transaction that deletes the session
  (``memory_tables.forget_session``), so once the delete has returned no search finds the deleted
  session's messages. That holds for memory tables created after the session service started
  (by this or another process). On PostgreSQL, indexing share-locks the session row, so an
  ``add_session_to_memory`` running at the same time as the delete cannot leave entries
  behind. Built from the session service, the memory also refuses to index a stale copy of
  the deleted session afterwards; built from a URL it cannot tell that copy from a session of
  another database's store, and indexes its ``events``.
* **Memory on another database** (built from a URL, sessions stored elsewhere): the delete
  cannot reach it. The deleted session's entries stay searchable until :meth:`forget_session`
  is called for it (or ``delete_memory`` for each entry), or until a session re-created under
  the same id is added, which replaces them. Between two incarnations of one id the last one
  added wins.
* Either way, a session re-created under a deleted one's id is indexed afresh: the watermark
  records the session's ``incarnation`` (a random token per creation, in the store's marker),
  and an add for another incarnation drops the old entries and indexes from the first message.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal, get_args

from google.adk.events.event import Event
from google.adk.memory.base_memory_service import BaseMemoryService, SearchMemoryResponse
from google.adk.memory.memory_entry import MemoryEntry
from google.adk.sessions.session import Session
from google.genai import types
from sqlalchemy.engine import Connection
from typing_extensions import override

from ..errors import InvalidValueError, ServiceClosedError, StoreError
from ..store import memory_tables as mt
from ..store.backend import Backend, open_backend
from ..store.facts import event_facts
from ..store.migrations import ensure_memory_schema
from ..store.scopes import parse_marker
from ..store.service import (
    DatabaseSessionService,
    check_id,
    signature_defaults,
    with_url_options,
)
from ..store.tracing import count, session_attributes, traced
from .embeddings import Embedder, MemoryConfigError, MiniLMEmbedder
from .query import query_terms
from .recent import MessageType, recent_events

if TYPE_CHECKING:
    from ..store.messages import Message

__all__ = ["DEFAULT_MAX_RESULTS", "SEARCH_ENV", "DatabaseMemoryService", "SearchMode"]

DEFAULT_MAX_RESULTS = 10
"""How many memories one search returns at most (they all go into the model's context)."""

SearchMode = Literal["fulltext", "semantic", "hybrid"]
SEARCH_MODES: tuple[str, ...] = get_args(SearchMode)
SEARCH_ENV = "MULTI_AGENT_MEMORY_SEARCH"
"""Environment variable that picks the search mode when the code does not."""

RRF_K = 60
"""Reciprocal-rank fusion constant (the value of Cormack et al., 2009): a result's fused score
is the sum over rankings of ``1 / (RRF_K + rank)``."""


def resolve_search_mode(search: str | None, embedder: Embedder | None) -> SearchMode:
    """The search mode from the argument, else ``$MULTI_AGENT_MEMORY_SEARCH``, else the default
    (``hybrid`` with an embedder, ``fulltext`` without).

    Raises:
        MemoryConfigError: an unknown mode (a ``ValueError``).
    """
    chosen = search or os.environ.get(SEARCH_ENV, "").strip().lower() or None
    if chosen is None:
        return "hybrid" if embedder is not None else "fulltext"
    if chosen not in SEARCH_MODES:
        where = "search" if search else f"${SEARCH_ENV}"
        raise MemoryConfigError(
            f"{where}={chosen!r} is not a memory search mode; use one of {', '.join(SEARCH_MODES)}."
        )
    return chosen  # type: ignore[return-value]

MAX_RESULTS_LIMIT = 10_000
"""The most memories one search may be asked for (a model reads them all)."""

_BACKEND_SETTINGS = ("sqlite_synchronous", "sqlite_busy_timeout", "sqlite_wal_limit_bytes")
_URL_SETTINGS = ("max_results", "max_entry_chars", "search", "min_similarity",
                 "backfill_per_search", *_BACKEND_SETTINGS)
"""The constructor's (and ``open_backend``'s) arguments a plain URL's query may also give
(``services.OPTIONS``), their defaults read from those signatures; its other options are
engine arguments."""


def _text(text: str) -> str:
    """Text a database can hold: a lone surrogate (possible in a session of another store) as
    U+FFFD, so that one broken message does not stop the session's others being remembered."""
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return text


class DatabaseMemoryService(BaseMemoryService):
    """Ranked full-text memory over past sessions, scoped to app and user.

    Args:
        source: the ``DatabaseSessionService`` whose engine to share (recommended: the memory
            then indexes straight from the stored events, in SQL, and deleting a session
            deletes its memory), or a database URL (the memory opens its own engine; sessions
            stored in that database are indexed from the store, and their memory is deleted
            with them; sessions from any other session service are indexed from their
            ``events``, and their memory outlives them until :meth:`forget_session` or a
            re-created session replaces it: see the module docstring).
        max_results: the most memories one search returns.
        max_entry_chars: the longest text one memory carries back to the model (the full
            message stays indexed up to ``memory_tables.MAX_TEXT_CHARS``); longer text is cut at a
            word boundary and ends with an ellipsis.
        search: ``fulltext`` (the database's full-text search only), ``semantic`` (embedding
            similarity only) or ``hybrid`` (both, fused by RRF). Default:
            ``$MULTI_AGENT_MEMORY_SEARCH``, else ``hybrid`` with an embedder, else
            ``fulltext``. ``semantic``/``hybrid`` without an embedder use the bundled
            all-MiniLM-L6-v2 (:class:`MiniLMEmbedder`).
        embedder: the embedding model for semantic search (any :class:`Embedder`).
        min_similarity: the lowest cosine similarity for which a memory counts as a semantic
            match (all-MiniLM-L6-v2 gives unrelated sentences about 0 to 0.2).
        backfill_per_search: at most this many not-yet-embedded memories (added before
            semantic search was on, or by another process without it) are embedded during one
            search; :meth:`embed_pending` does them all.
        **backend_kwargs: for a URL: passed to the store's ``open_backend`` (e.g.
            ``sqlite_synchronous``).

    Raises:
        ValueError: a malformed URL, an unknown search mode, or ``max_results``/
            ``max_entry_chars`` below 1.
    """

    def __init__(
        self,
        source: DatabaseSessionService | str,
        *,
        max_results: int = DEFAULT_MAX_RESULTS,
        max_entry_chars: int = 2000,
        search: SearchMode | None = None,
        embedder: Embedder | None = None,
        min_similarity: float = 0.2,
        backfill_per_search: int = 256,
        **backend_kwargs: Any,
    ) -> None:
        if isinstance(source, str):  # our options in a plain URL's query, as for sessions
            settings = {"max_results": max_results, "max_entry_chars": max_entry_chars,
                        "search": search, "min_similarity": min_similarity,
                        "backfill_per_search": backfill_per_search,
                        **{name: backend_kwargs[name] for name in _BACKEND_SETTINGS
                           if name in backend_kwargs}}
            engine_kwargs = dict(backend_kwargs.pop("engine_kwargs", None) or {})
            defaults = signature_defaults(_URL_SETTINGS, DatabaseMemoryService.__init__,
                                          open_backend)
            source = with_url_options(source, settings, engine_kwargs, defaults, "memory")
            max_results, max_entry_chars, search = (
                settings["max_results"], settings["max_entry_chars"], settings["search"])
            min_similarity = settings["min_similarity"]
            backfill_per_search = settings["backfill_per_search"]
            backend_kwargs.update(
                {name: settings[name] for name in _BACKEND_SETTINGS if name in settings})
            if engine_kwargs:
                backend_kwargs["engine_kwargs"] = engine_kwargs
        for name, value, high in (("max_results", max_results, MAX_RESULTS_LIMIT),
                                  ("max_entry_chars", max_entry_chars, mt.MAX_TEXT_CHARS)):
            if not isinstance(value, int) or isinstance(value, bool):
                raise InvalidValueError(f"{name} must be a whole number, got {value!r}.")
            if not 1 <= value <= high:
                raise InvalidValueError(f"{name} must be from 1 to {high:,}, got {value:,}.")
        self.search_mode: SearchMode = resolve_search_mode(search, embedder)
        if self.search_mode != "fulltext" and embedder is None:
            embedder = MiniLMEmbedder()
        self.embedder: Embedder | None = embedder if self.search_mode != "fulltext" else None
        self.min_similarity = float(min_similarity)
        self.backfill_per_search = max(0, int(backfill_per_search))
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
        self._backend.db.memory_ddl()  # fail now on a database without full-text memory
        self.max_results = max_results
        self.max_entry_chars = max_entry_chars
        self._ready = False
        self._closed = False
        self._model_loaded = False
        self._has_events_table = False
        # One per event loop: an asyncio.Lock belongs to the loop it is first used on.
        self._setup_locks: dict[asyncio.AbstractEventLoop, asyncio.Lock] = {}

    def _setup_lock(self) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        lock = self._setup_locks.get(loop)
        if lock is None:
            for closed in [lp for lp in self._setup_locks if lp.is_closed()]:
                del self._setup_locks[closed]
            lock = self._setup_locks[loop] = asyncio.Lock()
        return lock

    @property
    def backend(self) -> Backend:
        """The engine wrapper the memory runs its SQL on."""
        return self._backend

    # -- set-up -----------------------------------------------------------------------------

    @traced("memory.prepare", unless=lambda self: self._ready)
    async def prepare(self, *, load_model: bool = True) -> None:
        """Creates the memory tables now instead of on first use (idempotent), and loads the
        embedding model when semantic search is on.

        Args:
            load_model: False: only check that the model can be loaded (milliseconds) and
                leave the load (seconds) to :meth:`load_model`, e.g. in the background, or to
                the first search or add, which load it when it is not loaded yet.

        Raises:
            DatabaseUnavailableError: the database cannot be opened or written.
            StoreError: SQLite without the FTS5 extension.
            SemanticSearchUnavailable: semantic search is on, and its packages or model are
                not installed.
        """
        if self._closed or (self._sessions is not None and self._sessions._closed):
            raise ServiceClosedError(
                "This DatabaseMemoryService (or the session service it shares) is closed, so "
                "nothing was done; make a new one to use the database again.")
        if not self._ready:
            async with self._setup_lock():
                if not self._ready:
                    await self._setup()
                    if self.embedder is not None and hasattr(self.embedder, "check"):
                        self.embedder.check()  # a missing model fails here, without a load
                    self._ready = True
        if load_model:
            await self.load_model()

    @property
    def model_loaded(self) -> bool:
        """True when no embedding model is needed, or it is loaded."""
        return self.embedder is None or self._model_loaded or not hasattr(self.embedder, "load")

    @traced("memory.load_model", unless=lambda self: self.model_loaded)
    async def load_model(self) -> float:
        """Loads the embedding model now, in a worker thread (idempotent; concurrent calls
        share one load); returns the seconds this call waited (0.0 when nothing was to load).

        Raises:
            SemanticSearchUnavailable: the packages or the model files are missing or damaged.
        """
        if self.model_loaded:
            return 0.0
        import time

        started = time.perf_counter()
        await asyncio.to_thread(self.embedder.load)  # type: ignore[union-attr]
        self._model_loaded = True
        return time.perf_counter() - started

    async def _setup(self) -> None:
        if self._sessions is not None:
            await self._sessions.prepare()  # ma_events exists before we copy from it
        try:
            self._has_events_table = await self._backend.run(ensure_memory_schema, write=True)
        except StoreError as exc:
            if "no such module: fts5" in str(exc.__cause__ or exc).lower():
                raise StoreError(
                    "This Python's SQLite has no FTS5 extension, which the memory service "
                    "needs. Use a Python built with a standard SQLite (FTS5 is on by "
                    "default), or keep memory on PostgreSQL."
                ) from exc
            raise

    async def close(self) -> None:
        """Closes the engine if this service opened it (a shared one is left to its owner).
        Calls after this raise ``ServiceClosedError``."""
        self._closed = True
        if self._owns_backend:
            await self._backend.close()

    # -- writing ----------------------------------------------------------------------------

    @override
    @traced("memory.add_session_to_memory", call=session_attributes)
    async def add_session_to_memory(self, session: Session) -> None:
        """Indexes the session's human and agent messages; safe to call after every turn.

        When the session is stored in this database, its stored events since the last call
        are copied in one ``INSERT ... SELECT`` (so a session loaded with a window of recent
        events still has all its messages indexed). Otherwise its ``events`` are indexed.
        Re-adding never duplicates: rows are unique by (app, user, session, event id).

        Sessions and incarnations: the store gives each creation of a session a random
        ``incarnation`` (carried by the session object's marker), and the memory records the
        incarnation it indexed. When they differ (the session was deleted and re-created
        under the same id, and the old memory survived the delete: memory on another
        database, or a delete by an older version), the session's old entries are dropped
        and it is indexed from its first message. A copy of a session that is no longer
        stored in the session store this service was built from (it was deleted) is not
        indexed: a stale copy cannot bring a deleted session's messages back.
        """
        app_name, user_id = check_id("app_name", session.app_name), check_id(
            "user_id", session.user_id
        )
        check_id("session_id", session.id)
        await self.prepare()
        marker = parse_marker(getattr(session, "_storage_update_marker", None))
        incarnation = marker.incarnation if marker is not None else None
        rows = list(self._rows(app_name, user_id, session.id, session.events))
        key = {"app_name": app_name, "user_id": user_id, "session_id": session.id}
        use_store = self._has_events_table
        # Built from the session service: a session with its marker that is not stored was
        # deleted (with its memory, in the same transaction).
        deleted_when_absent = self._sessions is not None and marker is not None

        def write(conn: Connection) -> int:
            return mt.index_session(
                conn, key=key, rows=rows, incarnation=incarnation, use_store=use_store,
                deleted_when_absent=deleted_when_absent,
            )

        added = await self._backend.run(write, write=True)
        # What this call added is embedded now, plus a bounded part of any older backlog.
        await self._embed(app_name, user_id, limit=self.backfill_per_search + added)

    @override
    @traced("memory.add_events_to_memory",
            call=lambda _self, **kw: {"multi_agent.event_count": len(kw["events"])})
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
            await self._backend.run(lambda conn: mt.insert_entries(conn, rows), write=True)
        await self._embed(app_name, user_id, limit=self.backfill_per_search + len(rows))

    def _rows(
        self, app_name: str, user_id: str, session_id: str, events: Iterable[Event]
    ) -> Iterable[dict[str, Any]]:
        scope = mt.scope_token(app_name, user_id)
        last_human = ""
        for event in events:
            if event.partial or not event.id:
                continue
            facts = event_facts(event, last_agent=None)
            if facts.message_type not in ("human", "agent") or not facts.text:
                continue
            context = last_human if facts.message_type == "agent" else ""
            if facts.message_type == "human":
                last_human = facts.text[: mt.MAX_CONTEXT_CHARS]
            yield {
                "app_name": app_name,
                "user_id": user_id,
                "session_id": session_id,
                "event_id": event.id,
                "scope": scope,
                "timestamp": float(event.timestamp),
                "author": event.author or "unknown",
                "text": _text(facts.text[: mt.MAX_TEXT_CHARS]),
                "context": _text(context),
            }

    # -- reading ----------------------------------------------------------------------------

    @override
    @traced("memory.search_memory", result=count("rows", lambda found: found.memories),
            call=lambda self, **_: {"multi_agent.search_mode": self.search_mode})
    async def search_memory(
        self, *, app_name: str, user_id: str, query: str
    ) -> SearchMemoryResponse:
        """The user's past messages that best match ``query``, best first.

        Only this app's and this user's memories are searched. A query without content words
        (empty, punctuation, only words like "what did I say") returns no memories.

        Returns:
            ``MemoryEntry`` objects with the message as ``content`` (role ``user`` for the
            person, ``model`` for agents), ``author``, ``timestamp`` (ISO 8601, UTC) and
            ``custom_metadata`` ``{"session_id", "event_id", "score"}`` (higher is better:
            bm25 / ``ts_rank_cd`` for ``fulltext``, cosine similarity for ``semantic``, the RRF
            sum for ``hybrid``), plus ``fulltext_rank`` and ``similarity`` where they apply.
        """
        check_id("app_name", app_name)
        check_id("user_id", user_id)
        terms = query_terms(query)
        if not terms:
            return SearchMemoryResponse()
        await self.prepare()
        mode = self.search_mode
        limit = self.max_results if mode == "fulltext" else max(50, 5 * self.max_results)
        fused: dict[int, float] = {}
        rows: dict[int, Any] = {}
        extra: dict[int, dict[str, Any]] = {}
        if mode != "semantic":
            for rank, row in enumerate(await self._fulltext(app_name, user_id, terms, limit)):
                rows[row.id] = row
                fused[row.id] = float(row.score) if mode == "fulltext" else 1 / (RRF_K + rank + 1)
                extra[row.id] = {"fulltext_rank": rank + 1}
        if mode != "fulltext":
            for rank, (entry_id, similarity) in enumerate(
                await self._similar(app_name, user_id, query, limit)
            ):
                fused[entry_id] = fused.get(entry_id, 0.0) + (
                    similarity if mode == "semantic" else 1 / (RRF_K + rank + 1)
                )
                extra.setdefault(entry_id, {})["similarity"] = round(similarity, 4)
        if mode == "fulltext":
            best = list(fused)[: self.max_results]  # the database's order (ties: newest first)
        else:
            best = sorted(fused, key=lambda i: (-fused[i], -i))[: self.max_results]
        missing = [i for i in best if i not in rows]
        if missing:
            for row in await self._backend.run(
                lambda conn: mt.entries_by_id(
                    conn, app_name=app_name, user_id=user_id, ids=missing
                ),
                write=False,
            ):
                rows[row.id] = row
        return SearchMemoryResponse(
            memories=[
                self._entry(rows[i], fused[i], extra.get(i, {})) for i in best if i in rows
            ]
        )

    async def _fulltext(
        self, app_name: str, user_id: str, terms: list[str], limit: int
    ) -> list[Any]:
        db = self._backend.db
        return await self._backend.run(
            lambda conn: db.fulltext(
                conn, app_name=app_name, user_id=user_id, terms=terms, limit=limit
            ),
            write=False,
        )

    async def _similar(
        self, app_name: str, user_id: str, query: str, limit: int
    ) -> list[tuple[int, float]]:
        """The user's memories most similar to ``query``: (entry id, cosine), best first.

        Memories without a vector yet are embedded first (at most ``backfill_per_search``).
        The comparison is a brute-force dot product over all the user's vectors (1.5 KB each),
        fetched on every search: about 8 ms per 1,000 memories (bench/memory_search.py), on top
        of ~12 ms to embed the query.
        """
        embedder = self.embedder
        assert embedder is not None
        await self._embed(app_name, user_id, limit=self.backfill_per_search)
        scope = {"app_name": app_name, "user_id": user_id, "model": embedder.name}
        stored, (query_vector,) = await asyncio.gather(
            self._backend.run(lambda conn: mt.user_vectors(conn, **scope), write=False),
            asyncio.to_thread(embedder.embed, [query]),
        )
        if not stored:
            return []

        def rank() -> list[tuple[int, float]]:
            import numpy as np

            width = 4 * len(query_vector)
            good = [(r.entry_id, bytes(r.vector)) for r in stored if len(r.vector) == width]
            if not good:
                return []
            ids = np.fromiter((g[0] for g in good), dtype=np.int64, count=len(good))
            matrix = np.frombuffer(b"".join(g[1] for g in good), dtype="<f4").reshape(
                len(good), -1
            )
            sims = matrix @ query_vector.astype("<f4")
            top = np.argsort(-sims, kind="stable")[:limit]
            return [
                (int(ids[i]), float(sims[i])) for i in top if sims[i] >= self.min_similarity
            ]

        return await asyncio.to_thread(rank)

    async def _embed(
        self, app_name: str, user_id: str, *, limit: int | None,
        progress: Callable[[int, int], None] | None = None,
    ) -> int:
        """Embeds up to ``limit`` (None: all) of the user's memories that have no vector yet,
        newest first; returns how many. A no-op without semantic search. ``progress(done,
        total)`` is called before the first batch and after each."""
        embedder = self.embedder
        if embedder is None or limit == 0:
            return 0
        scope = {"app_name": app_name, "user_id": user_id, "model": embedder.name}
        backlog = await self._backend.run(
            lambda conn: mt.pending_count(conn, **scope), write=False
        )
        if backlog <= 0:  # the usual case: two index counts instead of an anti-join scan
            return 0
        total = backlog if limit is None else min(backlog, limit)
        if progress is not None:
            progress(0, total)
        done = 0
        while limit is None or done < limit:
            batch = 256 if limit is None else min(256, limit - done)
            pending = await self._backend.run(
                lambda conn, batch=batch: mt.unembedded(conn, **scope, limit=batch),
                write=False,
            )
            if not pending:
                break
            vectors = await asyncio.to_thread(embedder.embed, [r.text for r in pending])
            rows = [
                {"entry_id": r.id, "model": embedder.name,
                 "vector": vectors[i].astype("<f4").tobytes()}
                for i, r in enumerate(pending)
            ]
            await self._backend.run(
                lambda conn, rows=rows: mt.insert_vectors(conn, rows), write=True
            )
            done += len(pending)
            if progress is not None:
                progress(done, max(total, done))
            if len(pending) < batch:
                break
        return done

    @traced("memory.embed_pending", result=count("rows"))
    async def embed_pending(
        self, *, app_name: str, user_id: str,
        progress: Callable[[int, int], None] | None = None,
    ) -> int:
        """Embeds every memory of the user that has no vector yet (e.g. after turning semantic
        search on for a database that already had full-text memories); returns how many.

        Searches and ``add_session_to_memory`` embed a bounded number on their own; this does
        the whole backlog at once (about 10 ms per message on one core). ``progress(done,
        total)`` is called before the first batch of 256 and after each (not at all when
        nothing is pending), e.g. to draw a progress bar.
        """
        check_id("app_name", app_name)
        check_id("user_id", user_id)
        await self.prepare()
        return await self._embed(app_name, user_id, limit=None, progress=progress)

    def _entry(self, row: Any, score: float, extra: Mapping[str, Any]) -> MemoryEntry:
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
                "score": score,
                **extra,
            },
        )

    @override
    @traced("memory.delete_memory")
    async def delete_memory(
        self, *, app_name: str, user_id: str, memory_id: str | None = None
    ) -> None:
        """Forgets one memory (``MemoryEntry.id`` from a search); unknown ids are ignored."""
        check_id("app_name", app_name)
        check_id("user_id", user_id)
        if memory_id is None or not str(memory_id).isdigit():
            return
        await self.prepare()
        entry_id = int(memory_id)
        await self._backend.run(
            lambda conn: mt.delete_entry(
                conn, app_name=app_name, user_id=user_id, entry_id=entry_id
            ),
            write=True,
        )

    @traced("memory.forget_session", result=count("rows"))
    async def forget_session(self, *, app_name: str, user_id: str, session_id: str) -> int:
        """Forgets everything remembered of one session: its entries, their vectors and its
        watermark; returns how many entries. Idempotent; the session itself is not touched.

        Deleting a session through a ``DatabaseSessionService`` on this database already does
        this (in the delete's transaction); call it when the memory is on another database
        than the sessions, which the delete cannot reach, or for sessions of another session
        service.
        """
        check_id("app_name", app_name)
        check_id("user_id", user_id)
        check_id("session_id", session_id)
        await self.prepare()
        return await self._backend.run(
            lambda conn: mt.forget_session(
                conn, app_name=app_name, user_id=user_id, session_id=session_id
            ),
            write=True,
        )

    @traced("memory.recent_user_events", result=count("rows"))
    async def recent_user_events(
        self,
        *,
        app_name: str,
        user_id: str,
        limit: int = 50,
        message_types: Sequence[MessageType] = ("human", "agent"),
        exclude_session_id: str | None = None,
    ) -> list[Message]:
        """The user's most recent messages across all their sessions, newest first: what
        ``DatabaseSessionService.recent_messages`` returns (the same arguments), read by the
        memory service in its own database.

        One SQL statement over the stored events (no ``list_sessions`` + N x
        ``get_session``, the pattern of ADK issue #5300). Needs the session store's tables in
        this database.

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
