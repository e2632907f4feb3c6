"""The store's API beyond ADK's contract: runs, branching, message queries, export/import.

Mixed into ``DatabaseSessionService``; every method validates its ids, makes sure the schema is
ready and runs one transaction on the service's backend (:meth:`HistoryMixin._transact`).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from typing import IO, TYPE_CHECKING, Any, TypeVar

from .ids import check_id, check_ids
from .messages import (
    DEFAULT_LIMIT,
    Message,
    MessageType,
    check_recent,
    latest_compaction_before,
    query_messages,
    recent_messages,
)
from .runs import (
    BranchResult,
    RunInfo,
    branch_session,
    list_runs,
    request_stop,
    start_run,
    stop_requested,
)
from .tracing import count, import_attributes, traced
from .transfer import ImportResult, export_session, import_session

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from .backend import Backend
    from .trim import RetentionPolicy, TrimReport

__all__ = ["HistoryMixin"]

T = TypeVar("T")


class HistoryMixin:
    """Runs as a tree, time travel, who-said-what-to-whom, and moving sessions between stores."""

    _backend: Backend

    async def prepare(self) -> None:  # provided by DatabaseSessionService
        raise NotImplementedError

    async def _run(self, fn: Callable[[Connection], T], *, write: bool) -> T:
        """Makes sure the schema is ready, then runs ``fn`` in one transaction."""
        await self.prepare()
        return await self._backend.run(fn, write=write)

    async def _transact(self, fn: Callable[[Connection], T], *, write: bool, **ids: Any) -> T:
        """The shell of every store call: validates the ids given as keywords
        (``check_ids``), makes sure the schema is ready, runs ``fn`` in one transaction."""
        check_ids(**ids)
        return await self._run(fn, write=write)

    @traced("list_runs", result=count("run_count"))
    async def list_runs(self, *, app_name: str, user_id: str, session_id: str) -> list[RunInfo]:
        """The session's runs (one per invocation) in start order; empty for no session."""
        return await self._transact(
            lambda conn: list_runs(
                conn, app_name=app_name, user_id=user_id, session_id=session_id
            ),
            write=False, app_name=app_name, user_id=user_id, session_id=session_id,
        )

    @traced("branch", result=count("run_count", lambda branched: branched.runs_on_path))
    async def branch(
        self, *, app_name: str, user_id: str, session_id: str, from_run_id: str
    ) -> BranchResult:
        """Continues the session from the end of ``from_run_id`` (time travel / branching).

        The next invocation sees the history and session state exactly as they were when that
        run ended. Runs after it are kept as a sibling branch: ``branch`` to the last of them
        switches back. ``get_session`` always returns the head's linear history, so ADK's
        Runner needs no change. ``user:`` and ``app:`` state are shared by every session and
        branch: they are not rewound (as with ADK's own ``rewind_async``).

        Raises:
            SessionNotFound: no such session.
            RunNotFound: the session has no such run (the message lists its runs).
        """
        return await self._transact(
            lambda conn: branch_session(
                conn, app_name=app_name, user_id=user_id, session_id=session_id,
                from_run_id=from_run_id,
            ),
            write=True, app_name=app_name, user_id=user_id, session_id=session_id,
            run_id=from_run_id,
        )

    @traced("start_run")
    async def start_run(
        self, *, app_name: str, user_id: str, session_id: str, run_id: str,
        expected_head: str | None, from_run_id: str | None = None,
    ) -> BranchResult | None:
        """Starts a run only if the session's head is still ``expected_head``, atomically:
        for servers (several processes on one database) that allow one run per session at a
        time. Branches to ``from_run_id`` first when it is another run, writes the run's row
        (``running``) and moves the head to it; then run ADK's Runner with
        ``invocation_id=run_id``, whose events continue the run.

        Returns:
            The branch's result when ``from_run_id`` moved the head, else None.

        Raises:
            SessionNotFound: no such session.
            RunConflict: the head is no longer ``expected_head`` (another run started), or the
                session already has ``run_id``; nothing was written.
            RunNotFound: ``from_run_id`` is not a run of the session (or a sub-run).
        """
        check_ids(app_name=app_name, user_id=user_id, session_id=session_id, run_id=run_id)
        for value in (expected_head, from_run_id):
            if value is not None:
                check_id("run_id", value)
        started_at = time.time()
        return await self._run(
            lambda conn: start_run(
                conn, app_name=app_name, user_id=user_id, session_id=session_id,
                run_id=run_id, expected_head=expected_head, from_run_id=from_run_id,
                started_at=started_at,
            ),
            write=True,
        )

    @traced("query_messages", result=count("rows"))
    async def query_messages(
        self,
        *,
        app_name: str,
        user_id: str,
        session_id: str | None = None,
        run_id: str | None = None,
        source: str | None = None,
        target: str | None = None,
        message_type: str | None = None,
        since: float | None = None,
        until: float | None = None,
        text: str | None = None,
        on_path_only: bool = True,
        limit: int = DEFAULT_LIMIT,
    ) -> list[Message]:
        """Who said what to whom: stored events matching every given filter, oldest first.

        See ``messages.py`` for the filters' exact meaning (``since`` inclusive, ``until``
        exclusive, ``text`` a case-insensitive substring, ``run_id`` a run or delegation
        sub-run). Across all the user's sessions when ``session_id`` is ``None``.

        Raises:
            RunNotFound: ``run_id`` is not a run of the searched session(s).
            InvalidValueError: an unknown message type, a bad time or limit.
        """
        check_ids(app_name=app_name, user_id=user_id)
        for kind, value in (("session_id", session_id), ("run_id", run_id)):
            if value is not None:  # optional filters
                check_id(kind, value)
        return await self._run(
            lambda conn: query_messages(
                conn, app_name=app_name, user_id=user_id, session_id=session_id,
                run_id=run_id, source=source, target=target, message_type=message_type,
                since=since, until=until, text=text, on_path_only=on_path_only, limit=limit,
            ),
            write=False,
        )

    @traced("recent_messages", result=count("rows"))
    async def recent_messages(
        self,
        *,
        app_name: str,
        user_id: str,
        limit: int = 50,
        message_types: Sequence[MessageType] = ("human", "agent"),
        exclude_session_id: str | None = None,
    ) -> list[Message]:
        """The user's most recent messages across all their sessions, newest first, in one
        statement (on each session's current history).

        Args:
            app_name: the app.
            user_id: the user whose sessions are read.
            limit: how many messages at most (1 to 10,000).
            message_types: which kinds: ``human``, ``agent``, ``tool_call``, ``tool_result``,
                ``system``.
            exclude_session_id: leave this session out (typically the current one).

        Raises:
            InvalidValueError: a bad limit or message type.
        """
        check_ids(app_name=app_name, user_id=user_id)
        if exclude_session_id is not None:
            check_id("session_id", exclude_session_id)
        check_recent(limit=limit, message_types=message_types)
        return await self._run(
            lambda conn: recent_messages(
                conn, app_name=app_name, user_id=user_id, limit=limit,
                message_types=message_types, exclude_session_id=exclude_session_id,
            ),
            write=False,
        )

    @traced("latest_compaction_before")
    async def latest_compaction_before(
        self, *, app_name: str, user_id: str, session_id: str, first_event_id: str,
        scan: int,
    ) -> str | None:
        """The stored JSON of the newest compaction summary among the ``scan`` events stored
        just before event ``first_event_id`` of the session, or None (see
        ``messages.latest_compaction_before``)."""
        return await self._transact(
            lambda conn: latest_compaction_before(
                conn, app_name=app_name, user_id=user_id, session_id=session_id,
                first_event_id=first_event_id, scan=scan,
            ),
            write=False, app_name=app_name, user_id=user_id, session_id=session_id,
        )

    @traced("export_session", result=count("event_count", lambda doc: doc["events"]))
    async def export_session(
        self, *, app_name: str, user_id: str, session_id: str
    ) -> dict[str, Any] | None:
        """The session with its run tree and every event as a JSON-ready document.

        See ``transfer.py`` for the format. ``app:``/``user:`` state is not included.

        Returns:
            The document, or ``None`` when there is no such session.
        """
        return await self._transact(
            lambda conn: export_session(
                conn, app_name=app_name, user_id=user_id, session_id=session_id
            ),
            write=False, app_name=app_name, user_id=user_id, session_id=session_id,
        )

    @traced("import_session", result=import_attributes)
    async def import_session(
        self,
        doc: dict[str, Any],
        *,
        app_name: str | None = None,
        user_id: str | None = None,
        session_id: str | None = None,
    ) -> ImportResult:
        """Stores a document made by ``export_session``, in one transaction.

        The document is checked in full (see ``transfer.py``): every column must be what
        appending its events gives, every value one ``append_event`` would accept.

        Args:
            doc: the parsed export document.
            app_name: store it under this app instead of the document's.
            user_id: store it for this user instead of the document's.
            session_id: store it under this session id instead of the document's.

        Raises:
            InvalidValueError: the document is not a valid export (nothing written).
            SessionAlreadyExists: the target session id is taken (nothing written).
        """
        self._check_targets(app_name, user_id, session_id)
        backend = self._backend
        return await self._run(
            lambda conn: import_session(
                conn, backend, doc, app_name=app_name, user_id=user_id, session_id=session_id
            ),
            write=True,
        )

    @traced("import_session_file", result=import_attributes)
    async def import_session_file(
        self,
        source: str | os.PathLike[str] | IO[Any],
        *,
        app_name: str | None = None,
        user_id: str | None = None,
        session_id: str | None = None,
    ) -> ImportResult:
        """Stores an export file (a path, or a binary or text file object), in one transaction.

        The file is read incrementally and its events are written in batches, so memory stays
        bounded whatever its size. The checks and arguments are those of ``import_session``.
        On PostgreSQL the reading runs on the event loop's thread (inside the transaction),
        like every other store call's work there.

        Raises:
            InvalidValueError: the file cannot be read, or is not a valid export (nothing
                written).
            SessionAlreadyExists: the target session id is taken (nothing written).
        """
        import asyncio

        from .transfer import import_session_file, open_source

        self._check_targets(app_name, user_id, session_id)
        opened = await asyncio.to_thread(open_source, source)
        try:
            backend = self._backend
            return await self._run(
                lambda conn: import_session_file(
                    conn, backend, opened, app_name=app_name, user_id=user_id,
                    session_id=session_id,
                ),
                write=True,
            )
        finally:
            opened.close()

    @staticmethod
    def _check_targets(app_name: str | None, user_id: str | None, session_id: str | None) -> None:
        for kind, value in (("app_name", app_name), ("user_id", user_id),
                            ("session_id", session_id)):
            if value is not None:
                check_id(kind, value)

    @traced("trim_sessions", result=lambda report: {
        "multi_agent.event_count": report.totals()["events"]})
    async def trim_sessions(
        self, *, keep_last_events: int | None = None, keep_days: float | None = None,
        app_name: str | None = None, user_id: str | None = None,
        session_id: str | None = None, dry_run: bool = False, vacuum: bool = False,
        max_events: int | None = None, progress: Callable[[int], None] | None = None,
    ) -> TrimReport:
        """Trims sessions' histories to the last ``keep_last_events`` events and/or
        ``keep_days`` days (neither: each app's stored policy), keeping the newest compaction
        summary, the head run, whole runs and tool-call/result pairs; the run rows stay
        (status ``pruned``), the state does not change. Bounded batches; ``dry_run`` only
        counts. See ``trim.py``.

        Returns:
            A :class:`~multi_agent.store.trim.TrimReport`: counts per app and user.

        Raises:
            InvalidValueError: a bad limit, or none given and no policy stored.
        """
        from .trim import trim_sessions

        return await trim_sessions(
            self, keep_last_events=keep_last_events, keep_days=keep_days, app_name=app_name,
            user_id=user_id, session_id=session_id, dry_run=dry_run, vacuum=vacuum,
            max_events=max_events, progress=progress)

    async def set_retention_policy(
        self, *, app_name: str, keep_last_events: int | None = None,
        keep_days: float | None = None,
    ) -> RetentionPolicy:
        """Stores the app's history retention policy in the database, used by
        ``trim_sessions`` calls that give no limit (both None: removes it)."""
        from .trim import set_retention_policy

        return await set_retention_policy(self, app_name=app_name,
                                          keep_last_events=keep_last_events,
                                          keep_days=keep_days)

    async def retention_policies(self) -> dict[str, RetentionPolicy]:
        """The stored per-app history retention policies."""
        from .trim import retention_policies

        return await retention_policies(self)

    @traced("set_run_status", call=lambda _self, **kw: {"multi_agent.run_status": kw["status"]})
    async def set_run_status(
        self, *, app_name: str, user_id: str, session_id: str, run_id: str, status: str,
        error: str | None = None,
    ) -> None:
        """Records a run's outcome explicitly, e.g. ``cancelled`` when the user interrupts it.

        Raises:
            InvalidValueError: ``status`` is not one of running, completed, failed, cancelled.
            RunNotFound: the session has no such run.
        """
        from ..errors import InvalidValueError, RunNotFound
        from .runs import RUN_STATUSES, set_run_status

        check_ids(app_name=app_name, user_id=user_id, session_id=session_id, run_id=run_id)
        if status not in RUN_STATUSES:
            raise InvalidValueError(
                f"Unknown run status {status!r}; use one of {', '.join(RUN_STATUSES)}."
            )
        found = await self._run(
            lambda conn: set_run_status(
                conn, app_name=app_name, user_id=user_id, session_id=session_id,
                run_id=run_id, status=status, error=error,
            ),
            write=True,
        )
        if not found:
            raise RunNotFound(f"Session {session_id!r} has no run {run_id!r}.")

    @traced("request_stop")
    async def request_stop(self, *, app_name: str, user_id: str, session_id: str,
                           run_id: str) -> bool:
        """Asks the process executing a run to stop it (servers: a stop that reached another
        process than the run's). The run stays running until that process, which polls
        :meth:`stop_requested`, records its outcome. False: no such run, or it has ended
        with a recorded outcome."""
        return await self._transact(
            lambda conn: request_stop(conn, app_name=app_name, user_id=user_id,
                                      session_id=session_id, run_id=run_id),
            write=True, app_name=app_name, user_id=user_id, session_id=session_id,
            run_id=run_id,
        )

    async def stop_requested(self, *, app_name: str, user_id: str, session_id: str,
                             run_id: str) -> bool:
        """Whether :meth:`request_stop` asked for the run to be stopped (one row read)."""
        return await self._transact(
            lambda conn: stop_requested(conn, app_name=app_name, user_id=user_id,
                                        session_id=session_id, run_id=run_id),
            write=False, app_name=app_name, user_id=user_id, session_id=session_id,
            run_id=run_id,
        )

    @traced("add_sub_run", call=lambda _self, **kw: {"multi_agent.run_kind": kw["kind"]})
    async def add_sub_run(
        self, *, app_name: str, user_id: str, session_id: str, run_id: str,
        parent_run_id: str, kind: str, agent: str | None = None,
    ) -> bool:
        """Records a sub-run under a run (``RunTreePlugin`` does it for AgentTool calls).

        Returns:
            False when a run with that id already exists (nothing written).

        Raises:
            SessionNotFound / RunNotFound: no such session, or no such parent run.
        """
        import time

        from .runs import add_sub_run

        check_ids(app_name=app_name, user_id=user_id, session_id=session_id, run_id=run_id)
        check_id("run_id", parent_run_id)
        await self.prepare()
        now = time.time()
        return await self._run(
            lambda conn: add_sub_run(
                conn, app_name=app_name, user_id=user_id, session_id=session_id,
                run_id=run_id, parent_run_id=parent_run_id, kind=kind, agent=agent,
                started_at=now,
            ),
            write=True,
        )
