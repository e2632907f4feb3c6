"""``DatabaseSessionService``: ADK's session contract on SQLite or PostgreSQL, without lost updates.

A drop-in ``google.adk.sessions.BaseSessionService`` for ``Runner``, ``App``, ``adk web`` and
``adk api_server``. What it adds to ADK's own database service:

* **No lost updates, at any scope**: every append is one transaction that takes the write lock
  first (SQLite ``BEGIN IMMEDIATE``, PostgreSQL ``SELECT ... FOR UPDATE``) and checks the
  caller's copy against what is stored (``scopes.py``):

  - the session itself: by default (``on_stale="raise"``) an append from a copy that is behind
    storage raises :class:`~multi_agent.errors.StaleSession` and writes nothing. With
    ``on_stale="merge"`` it is applied on top of storage and the copy is brought up to date
    (state and the events it missed), unless one of the next two rules refuses it;
  - every state key the event writes with a plain value, at every scope (session, ``user:``,
    ``app:``): refused (``StaleSession``, reason ``keys``, in both modes) when storage wrote
    that key after the copy read it, since the value may have been computed from the old one;
  - atomic updates (``updates.StateUpdates``: set, increment, add_unique, remove, append) are
    never refused: they are re-applied to the value stored now;
  - a copy of a deleted session never writes into one re-created under its id (the marker
    carries the session's incarnation), and in merge mode a copy loaded before a ``branch``
    is refused (its history is another one).

  What is not detected: a value computed from *another* key that changed meanwhile (write
  skew). Keep values that must agree in one key, or write them with atomic updates.
* **Idempotent appends**: appending an event whose id is already stored is a no-op, so a retry
  after a lost acknowledgement cannot duplicate it; a *different* event under a stored id is
  refused (:class:`~multi_agent.errors.EventIdConflict`).
* **Strict values**: a state value that is not plain JSON, and a NaN or infinity in an event's
  timestamp, state changes, ``custom_metadata`` or ``output``, raise before anything is
  written (ADK stringifies the first with a warning and stores the second as an unreadable
  row or a silent ``null``). One in what a tool or model produced (a tool's result) is stored
  as the ``null`` the model was sent, with a WARNING, so the turn goes on.
* **Speed**: one thread hop per operation on SQLite and a fast event decoder (see ``codec.py``).
* **Who said what to whom**: each event row records its run, source, target, agent path,
  message type, sequence number and token usage (see ``schema.py``).
"""

from __future__ import annotations

import asyncio
import inspect
import os
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal

from google.adk.events.event import Event
from google.adk.sessions.base_session_service import (
    BaseSessionService,
    GetSessionConfig,
    ListSessionsResponse,
)
from google.adk.sessions.session import Session
from google.adk.sessions.state import State
from pydantic_core import PydanticSerializationError
from sqlalchemy.ext.asyncio import AsyncEngine
from typing_extensions import override

from ..defaults import DEFAULT_DB_URL
from ..errors import InvalidValueError, ServiceClosedError
from . import ops, rowcache, sealing
from .backend import Backend, open_backend
from .codec import (
    EventDecoder,
    check_event_numbers,
    check_json_value,
    dumps,
    encode_event,
    event_digest,
    loads,
    make_session,
)
from .extras import HistoryMixin
from .facts import event_facts
from .groupcommit import Locks, RowsRead
from .ids import check_id, check_ids, could_be_stored
from .migrations import ensure_schema
from .pages import PagesMixin
from .runs import rewind_state_delta
from .schema import ID_LENGTH
from .scopes import read_scopes
from .state import SCOPES, merge_scopes, scope_of, scoped_key, split_delta
from .tracing import append_attributes, count, traced
from .updates import restore_pending, take_all_pending

if TYPE_CHECKING:
    from .forget import ForgetReport
    from .prune import PruneReport

__all__ = ["DEFAULT_DB_URL", "DatabaseSessionService"]



_MORE_THAN_ANY_SESSION = 2**62
"""``num_recent_events`` from here up asks for every event (``?window=10**20`` included); the
databases' LIMIT takes at most 2**63 - 1."""

_URL_SETTINGS = ("on_stale", "sqlite_synchronous", "sqlite_busy_timeout",
                 "sqlite_wal_limit_bytes", "encryption_key_file")
"""The constructor's arguments a URL's query may also give (the query's other options are
engine arguments); their defaults are read from the signature (``signature_defaults``)."""


def signature_defaults(names: Iterable[str], *functions: Callable[..., Any]) -> dict[str, Any]:
    """The default of each named parameter, from the first of ``functions`` that has it: the
    one place those defaults are written stays the one place they are read."""
    found: dict[str, Any] = {}
    for name in names:
        for function in functions:
            parameter = inspect.signature(function).parameters.get(name)
            if parameter is not None and parameter.default is not inspect.Parameter.empty:
                found[name] = parameter.default
                break
        else:
            raise TypeError(f"no default for {name!r} in {[f.__qualname__ for f in functions]}")
    return found


def with_url_options(db_url: str, settings: dict[str, Any], engine_kwargs: dict[str, Any],
                     defaults: dict[str, Any] | None = None, service: str = "session") -> str:
    """``services.url_options``: the options of our URIs in a plain URL's query, taken out
    into ``settings`` (the constructor's arguments named in ``defaults``, as given) and
    ``engine_kwargs`` (the rest); returns the URL without them. ``service``: ``session`` or
    ``memory`` (whose options these may be).

    Raises:
        InvalidValueError: a bad option, or one also given as an argument.
    """
    from ..services import url_options

    if defaults is None:
        defaults = signature_defaults(_URL_SETTINGS, DatabaseSessionService.__init__)
    try:
        db_url, from_url = url_options(db_url, service)
    except ValueError as exc:
        raise InvalidValueError(f"{exc} Nothing was opened.") from None
    for name, value in from_url.items():
        if name in engine_kwargs or settings.get(name, defaults.get(name)) != (
                defaults.get(name)):
            raise InvalidValueError(
                f"{name} is given both in the database URL and as an argument; give it once.")
        (settings if name in defaults else engine_kwargs)[name] = value
    return db_url


_EVENT_KEYS = (("id", ID_LENGTH), ("invocation_id", ID_LENGTH), ("author", ID_LENGTH),
               ("branch", 1024))
"""The event's fields the store keeps in columns of their own, with those columns' lengths."""


def _check_event_keys(event: Event) -> None:
    """The same refusal on every database (PostgreSQL's column would refuse it as a database
    error, SQLite would store it) for an id, author or branch no column can hold.

    Raises:
        InvalidValueError: too long, or holding a NUL; nothing written.
    """
    for name, limit in _EVENT_KEYS:
        value = getattr(event, name, None)
        if not isinstance(value, str):
            continue
        if len(value) > limit:
            raise InvalidValueError(
                f"Event {name} is {len(value)} characters long; at most {limit} are stored. "
                "Nothing was written.")
        if "\x00" in value:
            raise InvalidValueError(
                f"Event {name} {value[:40]!r} contains a NUL character, which cannot be "
                "stored. Nothing was written.")


class DatabaseSessionService(PagesMixin, HistoryMixin, BaseSessionService):
    """Sessions, events and app/user/session state in SQLite (default) or PostgreSQL.

    Example:
        >>> service = DatabaseSessionService("sqlite+aiosqlite:///./multi_agent_data.db")
        >>> runner = Runner(app_name="multi_agent", agent=agent, session_service=service)

    Args:
        db_url: a SQLAlchemy URL: ``sqlite+aiosqlite:///path.db`` (``sqlite:///`` also works;
            four slashes for an absolute path), ``sqlite+aiosqlite://`` for in-memory, or
            ``postgresql+asyncpg://user:pw@host/db`` (needs the ``postgres`` extra).
            Defaults to ``./multi_agent_data.db`` when no engine is given. Its query may hold
            the options of our URIs (``multi_agent.services.OPTIONS``, checked as there), e.g.
            ``?encryption_key_file=PATH``, ``?on_stale=merge``, ``?command_timeout=2``; other
            names go to the SQLite driver (PostgreSQL: refused, asyncpg takes no others).
        db_engine: an existing ``AsyncEngine`` to use instead of a URL (left open by close()).
        on_stale: ``"raise"`` (default): appending from a copy of a session that another
            writer appended to since raises ``StaleSession`` and writes nothing. ``"merge"``:
            apply it on top of storage when none of the keys it writes changed since the
            copy read them (atomic updates always merge); a plain write of a key changed
            since is refused in both modes: merge never writes a value computed from an
            outdated read of that key.
        sqlite_synchronous: SQLite ``PRAGMA synchronous``; ``FULL`` (default) makes every
            acknowledged append survive power loss, ``NORMAL`` survives process crashes only.
        sqlite_busy_timeout: seconds a SQLite writer waits for another process's lock.
        sqlite_pragmas: extra ``PRAGMA name=value`` for every SQLite connection (e.g.
            ``{"cache_size": -64000}``).
        sqlite_wal_limit_bytes: SQLite ``PRAGMA journal_size_limit``: the ``-wal`` file is cut
            back to this size after a checkpoint (default 8 MiB; -1: never cut).
        encryption_key: encryption at rest (the ``encryption`` extra, see ``sealing.py``): the
            key(s), comma-separated, the first seals; default ``$MULTI_AGENT_ENCRYPTION_KEY``.
        encryption_key_file: a file holding the key(s) instead (one a line).
        **engine_kwargs: passed to SQLAlchemy's ``create_engine``/``create_async_engine``.
    """

    def __init__(
        self,
        db_url: str | None = None,
        *,
        db_engine: AsyncEngine | None = None,
        on_stale: Literal["raise", "merge"] = "raise",
        sqlite_synchronous: str = "FULL",
        sqlite_busy_timeout: float = 30.0,
        sqlite_pragmas: dict[str, Any] | None = None,
        sqlite_wal_limit_bytes: int | None = None,
        encryption_key: str | None = None,
        encryption_key_file: str | os.PathLike[str] | None = None,
        **engine_kwargs: Any,
    ) -> None:
        if db_url is not None and "?" in db_url:  # our options in a plain URL's query
            settings = {"on_stale": on_stale, "sqlite_synchronous": sqlite_synchronous,
                        "sqlite_busy_timeout": sqlite_busy_timeout,
                        "sqlite_wal_limit_bytes": sqlite_wal_limit_bytes,
                        "encryption_key_file": encryption_key_file}
            db_url = with_url_options(db_url, settings, engine_kwargs)
            on_stale, sqlite_synchronous, sqlite_busy_timeout, sqlite_wal_limit_bytes, \
                encryption_key_file = (settings[name] for name in _URL_SETTINGS)
        if on_stale not in ("raise", "merge"):
            raise ValueError("on_stale must be 'raise' or 'merge'.")
        keyring = sealing.load_keyring(key=encryption_key, key_file=encryption_key_file)
        if db_url is None and db_engine is None:
            db_url = DEFAULT_DB_URL
        self._backend: Backend = open_backend(
            db_url,
            db_engine,
            sqlite_synchronous=sqlite_synchronous,
            sqlite_busy_timeout=sqlite_busy_timeout,
            sqlite_pragmas=sqlite_pragmas,
            engine_kwargs=engine_kwargs,
            **({} if sqlite_wal_limit_bytes is None
               else {"sqlite_wal_limit_bytes": sqlite_wal_limit_bytes}),
        )
        self._keyring = sealing.attach_to_backend(self._backend, keyring)
        self.on_stale = on_stale
        self._decoder = EventDecoder()
        self._ready = False
        self._closed = False
        self._adk_tables_allowed = False  # (adk_import: set up beside ADK's tables)
        # Per event loop too: an asyncio.Lock belongs to the loop it is first used on, and the
        # service may be used from several (ADK's sync Runner.run: a new loop each turn).
        self._locks: dict[tuple[Any, str, str, str], tuple[asyncio.Lock, int]] = {}
        # PostgreSQL: what the last appends left, for one-statement appends (rowcache.py).
        self._rows: rowcache.RowCache | None = (
            rowcache.RowCache() if self._backend.runs_fast and keyring is None else None)

    # -- lifecycle ------------------------------------------------------------------------

    @property
    def encrypted(self) -> bool:
        """True when this service seals content with an encryption key (``sealing.py``)."""
        return self._keyring is not None

    @property
    def backend(self) -> Backend:
        """The engine wrapper (dialect, URL, ``run``), for the store's other services."""
        return self._backend

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self._backend.dialect

    @traced("prepare", unless=lambda self: self._ready)
    async def prepare(self) -> None:
        """Creates or upgrades the schema now instead of on first use (idempotent).

        Raises:
            SchemaVersionError: the database was written by a newer multi-agent.
            DatabaseUnavailableError: the database cannot be opened or reached.
        """
        if self._closed:  # (before a call could queue on a writer that is gone: a hang)
            raise ServiceClosedError(
                "This DatabaseSessionService is closed (close() was called), so nothing was "
                "done; make a new one to use the database again.")
        if self._ready:
            return
        backend = self._backend
        await backend.run(
            lambda conn: sealing.guard_open(
                conn, self._keyring, backend.url, lambda: ensure_schema(
                    conn, advisory_lock_sql=backend.advisory_lock_sql(), where=backend.url,
                    adk_tables_allowed=self._adk_tables_allowed,
                ),
            ),
            write=True,
        )
        self._ready = True

    async def prepare_tables(self) -> None:
        """ADK 2.13's name for :meth:`prepare` (its ``DatabaseSessionService.prepare_tables``:
        create the tables at start-up instead of on first use)."""
        await self.prepare()

    async def close(self) -> None:
        """Closes the connection pool (an injected engine stays open)."""
        if not self._closed:
            self._closed = True
            await self._backend.close()

    async def __aenter__(self) -> DatabaseSessionService:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # -- ADK contract ---------------------------------------------------------------------

    @override
    @traced("create_session")
    async def create_session(
        self,
        *,
        app_name: str,
        user_id: str,
        state: dict[str, Any] | None = None,
        session_id: str | None = None,
    ) -> Session:
        check_ids(app_name=app_name, user_id=user_id)
        if session_id is None:
            session_id = str(uuid.uuid4())
        else:
            check_id("session_id", session_id)
        if state is not None and not isinstance(state, dict):
            raise InvalidValueError(f"state must be a dict, got {type(state).__name__}.")
        delta = split_delta(state)
        await self.prepare()
        now = time.time()
        created = await self._backend.run(
            lambda conn: ops.create_session(
                conn, self._backend, app_name=app_name, user_id=user_id,
                session_id=session_id, delta=delta, now=now,
            ),
            write=True, batch=True,
            locks=Locks(app_name, user_id, None, bool(delta.user), bool(delta.app)),
        )
        session = Session(
            id=session_id,
            app_name=app_name,
            user_id=user_id,
            # As stored (tuples become lists) and the caller's own: changing the dict given
            # as ``state`` afterwards changes neither storage nor this copy.
            state=loads(dumps(merge_scopes(created.app_state, created.user_state,
                                           dict(delta.session)))),
            events=[],
            last_update_time=now,
        )
        session._storage_update_marker = created.marker
        return session

    @override
    @traced("get_session", result=count("event_count", lambda session: session.events))
    async def get_session(
        self,
        *,
        app_name: str,
        user_id: str,
        session_id: str,
        config: GetSessionConfig | None = None,
    ) -> Session | None:
        if not could_be_stored(app_name=app_name, user_id=user_id, session_id=session_id):
            return None
        num = config.num_recent_events if config else None
        if num is not None and num >= _MORE_THAN_ANY_SESSION:  # past the databases' integers
            num = None
        after = config.after_timestamp if config else None
        if after is not None and after != after:  # NaN: no time (ADK's database refuses it)
            raise InvalidValueError(
                "GetSessionConfig.after_timestamp is NaN; give a time in seconds, or None.")
        loaded = await self._transact(
            lambda conn: ops.load_session(
                conn, self._decoder, app_name=app_name, user_id=user_id,
                session_id=session_id, num_recent_events=num, after_timestamp=after,
            ),
            write=False, app_name=app_name, user_id=user_id, session_id=session_id,
        )
        if loaded is None:
            return None
        return make_session(
            id=session_id,
            app_name=app_name,
            user_id=user_id,
            state=loaded.state,
            events=loaded.events,
            last_update_time=loaded.update_time,
            marker=loaded.marker,
        )

    @override
    @traced("list_sessions", result=count("session_count", lambda listed: listed.sessions))
    async def list_sessions(
        self, *, app_name: str, user_id: str | None = None
    ) -> ListSessionsResponse:
        if not could_be_stored(app_name=app_name,  # None lists every user's sessions
                               **({} if user_id is None else {"user_id": user_id})):
            return ListSessionsResponse(sessions=[])
        rows, app_state, user_states = await self._run(
            lambda conn: ops.list_sessions(conn, app_name=app_name, user_id=user_id),
            write=False,
        )
        sessions = [
            make_session(
                id=row.id,
                app_name=app_name,
                user_id=row.user_id,
                state=merge_scopes(app_state, user_states.get(row.user_id, {}), row.state),
                events=[],
                last_update_time=row.update_time,
                marker=row.marker,
            )
            for row in rows
        ]
        return ListSessionsResponse.model_construct(sessions=sessions)

    @override
    @traced("delete_session")
    async def delete_session(self, *, app_name: str, user_id: str, session_id: str) -> None:
        if not could_be_stored(app_name=app_name, user_id=user_id, session_id=session_id):
            return
        await self._transact(
            lambda conn: ops.delete_session(
                conn, app_name=app_name, user_id=user_id, session_id=session_id
            ),
            write=True, app_name=app_name, user_id=user_id, session_id=session_id,
        )

    @traced("forget_user")
    async def forget_user(
        self, *, app_name: str, user_id: str,
        tokens_file: str | os.PathLike[str] | None = None, dry_run: bool = False,
        vacuum: bool = True,
    ) -> ForgetReport:
        """Removes every row of a user in an app in one transaction: sessions, events, runs,
        ``user:`` state, long memory (entries, vectors, watermarks), and with ``tokens_file``
        the user's API tokens of ``multi-agent serve``. On a SQLite file the deleted content
        is overwritten, the file rebuilt (``VACUUM``, unless ``vacuum=False``) and the
        ``-wal`` emptied (see ``forget.py``). ``dry_run`` only counts. ``app:`` state stays.

        Returns:
            A :class:`~multi_agent.store.forget.ForgetReport`: rows removed per table
            (``report.found`` is False for a user with nothing stored).

        Raises:
            StoreError: the token file cannot be changed (nothing removed), or the database
                failed (nothing removed from it).
        """
        from .forget import forget_user

        return await forget_user(self, app_name=app_name, user_id=user_id,
                                 tokens_file=tokens_file, dry_run=dry_run, vacuum=vacuum)

    @traced("prune_sessions")
    async def prune_sessions(
        self, *, older_than: float, app_name: str | None = None, dry_run: bool = False,
        vacuum: bool = False, max_events: int | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> PruneReport:
        """Deletes whole sessions (events, runs, memory) idle for more than ``older_than``
        seconds, in one app or all, in bounded batches (one short transaction each, at most
        ``max_events`` events unless one session has more; ``progress(sessions deleted)``
        after each); ``dry_run`` only counts. On SQLite
        the space comes back with ``PRAGMA incremental_vacuum`` when the file uses it, else
        with ``vacuum=True`` (a ``VACUUM``); see ``prune.py``.

        Returns:
            A :class:`~multi_agent.store.prune.PruneReport`: counts per app and user.
        """
        from .prune import MAX_EVENTS, prune_sessions

        return await prune_sessions(
            self, older_than=older_than, app_name=app_name, dry_run=dry_run, vacuum=vacuum,
            max_events=MAX_EVENTS if max_events is None else max_events, progress=progress,
        )

    @override
    @traced("get_user_state", result=count("state_keys"))
    async def get_user_state(self, *, app_name: str, user_id: str) -> dict[str, Any]:
        scopes = await self._transact(
            lambda conn: read_scopes(conn, app_name, user_id), write=False,
            app_name=app_name, user_id=user_id,
        )
        return scopes.user

    @traced("get_app_state", result=count("state_keys"))
    async def get_app_state(self, *, app_name: str) -> dict[str, Any]:
        """The app-scoped state (keys without the ``app:`` prefix); empty when none."""
        scopes = await self._transact(
            lambda conn: read_scopes(conn, app_name, None), write=False, app_name=app_name
        )
        return scopes.app

    @override
    @traced("append_event", call=append_attributes)
    async def append_event(self, session: Session, event: Event) -> Event:
        """Stores ``event`` and applies it to ``session`` (see the class docstring).

        Raises:
            StaleSession: the copy is behind storage (``reason`` says how); nothing written.
            EventIdConflict: a different event with this id is already stored.
            InvalidValueError: the event holds a value that cannot be stored exactly
                (non-JSON state, a non-finite number, a lone surrogate); nothing written.
            SessionNotFound: the session does not exist (any more).
        """
        if event.partial:
            return event
        check_id("session_id", session.id)
        _check_event_keys(event)
        if event.actions and event.actions.rewind_before_invocation_id:
            await self._rewind_from_storage(session, event)
        # Apply temp: state to the in-memory session, then keep it out of storage (ADK rule).
        self._apply_temp_state(session, event)
        event = self._trim_temp_delta_state(event)
        raw_delta = event.actions.state_delta if event.actions else None
        delta = split_delta(raw_delta)
        # Fields that the caller fills with arbitrary values must round-trip exactly too.
        # (Tool-call arguments and results are converted to JSON the way ADK does.)
        if event.custom_metadata:
            check_json_value("custom_metadata", event.custom_metadata)
        if event.output is not None:
            check_json_value("output", event.output)
        try:
            event_json = encode_event(event)
        except PydanticSerializationError as exc:
            raise InvalidValueError(
                f"Event {event.id} cannot be stored as JSON ({exc}). Nothing was written."
            ) from exc
        check_event_numbers(event, event_json)
        await self.prepare()
        facts = event_facts(event, last_agent=None)
        taken = self._take_updates(session, raw_delta)
        async with self._session_lock(session):
            req = ops.AppendRequest(
                app_name=session.app_name,
                user_id=session.user_id,
                session_id=session.id,
                event=event,
                event_json=event_json,
                digest=event_digest(event_json),
                facts=facts,
                delta=delta,
                ops=taken,
                is_final=event.author != "user" and event.is_final_response(),
                marker=session._storage_update_marker,
                last_event_id=session.events[-1].id if session.events else None,
                merge_when_stale=self.on_stale == "merge",
                keep_images=self._rows is not None,
            )
            rows = self._rows
            plan = None
            if rows is not None and not self._backend.writes_queued():
                plan = rowcache.plan_append(req, self._backend, rows)  # alone: try one statement
            stored: list[ops.AppendResult] = []  # cancelled once the writer had it, and stored
            try:
                result = await self._backend.run(
                    lambda conn: ops.append_event(conn, self._backend, req), write=True,
                    batch=True, locks=Locks(session.app_name, session.user_id, session.id,
                                            bool(delta.user), bool(delta.app)),
                    fast=None if plan is None else (
                        lambda conn, driver: rowcache.send_plan(conn, driver, plan, rows)),
                    with_rows=None if rows is None else (
                        lambda conn, read: self._append_on_rows(conn, req, read)),
                    planned=None if rows is None else (
                        lambda read: rowcache.plan_on_rows(req, self._backend, read)),
                    stored=stored.append,
                )
            except BaseException:
                if stored:  # the caller was cancelled, too late: its copy shows the event
                    self._stored(session, event, raw_delta, stored.pop())
                    raise
                self._restore_updates(session, raw_delta, taken)
                if rows is not None:
                    rows.drop(session.app_name, session.user_id, session.id)
                raise
            return self._stored(session, event, raw_delta, result)

    def _stored(self, session: Session, event: Event, raw_delta: dict[str, Any] | None,
                result: ops.AppendResult) -> Event:
        """Brings the caller's copy to what the append stored (``event`` included)."""
        rows = self._rows
        if rows is not None and result.images is not None:
            rows.put(session.app_name, session.user_id, session.id, result.images)
        if result.resolved and raw_delta is not None:
            # The event now says what was stored (the copy's value may have been behind).
            raw_delta.update(result.resolved)
        self._apply_result(session, result)
        session._storage_update_marker = result.marker
        session.last_update_time = result.update_time
        if result.duplicate:
            return event  # stored before; a behind copy got it back through _apply_result
        return self._commit_event_to_session(session, event)

    # -- helpers --------------------------------------------------------------------------

    async def _rewind_from_storage(self, session: Session, event: Event) -> None:
        """Replaces a rewind event's session-scope ``state_delta`` (computed by ADK's
        ``rewind_async`` on the caller's copy) by the one computed from storage, which knows
        the state the session was created with and every event of its history
        (``runs.rewind_state_delta``); its ``user:``/``app:``/``temp:`` keys are kept."""
        actions = event.actions
        invocation_id = actions.rewind_before_invocation_id
        assert invocation_id is not None
        delta = await self._transact(
            lambda conn: rewind_state_delta(
                conn, app_name=session.app_name, user_id=session.user_id,
                session_id=session.id, invocation_id=invocation_id),
            write=False, app_name=session.app_name, user_id=session.user_id,
            session_id=session.id)
        if delta is not None:
            kept = {key: value for key, value in (actions.state_delta or {}).items()
                    if key.startswith((State.APP_PREFIX, State.USER_PREFIX, State.TEMP_PREFIX))}
            actions.state_delta = {**delta, **kept}

    def _append_on_rows(self, conn: Any, req: ops.AppendRequest,
                        rows: RowsRead) -> ops.AppendResult:
        """The append in a PostgreSQL batch, on the rows the batch locked and read."""
        result = ops.append_event(conn, self._backend, req, locked=rowcache.batch_images(rows, req))
        rowcache.keep_batch_images(rows, req, result.images)
        return result

    @staticmethod
    def _take_updates(session: Session, raw_delta: dict[str, Any] | None) -> ops.ScopedOps:
        """The atomic updates (``updates.py``) behind the delta's values, by scope."""
        out = ops.ScopedOps()
        if raw_delta:
            for key, found in take_all_pending(session, raw_delta).items():
                scope, bare = scope_of(key)
                getattr(out, scope)[bare] = found
        return out

    @staticmethod
    def _restore_updates(
        session: Session, raw_delta: dict[str, Any] | None, taken: ops.ScopedOps
    ) -> None:
        """Puts the updates back after a failed append, so that a retry applies them."""
        for scope in SCOPES:
            for key, found in getattr(taken, scope).items():
                full = scoped_key(scope, key)
                restore_pending(session, full, found, (raw_delta or {}).get(full))

    def _apply_result(self, session: Session, result: ops.AppendResult) -> None:
        """Brings the caller's copy up to date with scopes the append read from storage."""
        if result.session_state is not None:
            temp = {k: v for k, v in session.state.items() if k.startswith("temp:")}
            session.state.clear()
            session.state.update(
                merge_scopes(result.app_state or {}, result.user_state or {},
                             result.session_state)
            )
            session.state.update(temp)
            session.events.extend(self._decoder.decode_many(result.missed_raw_events))
            return
        if result.user_state is not None:
            session.state.update({f"user:{k}": v for k, v in result.user_state.items()})
        if result.app_state is not None:
            session.state.update({f"app:{k}": v for k, v in result.app_state.items()})

    @asynccontextmanager
    async def _session_lock(self, session: Session) -> AsyncIterator[None]:
        """Serialises appends to one session within this process (the database does across)."""
        key = (asyncio.get_running_loop(), session.app_name, session.user_id, session.id)
        lock, users = self._locks.get(key, (None, 0))
        if lock is None:
            lock = asyncio.Lock()
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock_now, users_now = self._locks[key]
            if users_now <= 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock_now, users_now - 1)
