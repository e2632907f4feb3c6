"""Who said what to whom: a query API over the stored events.

Every stored event is a message with a source (its author), a target (whom it addresses), an
agent path (``branch``, dot notation such as ``coordinator.worker``), a message type (see
``facts.py``), the run it belongs to and its plain text. :func:`query_messages` filters them
by user (required), session, run, source, target, type, time range and text.

Example:
    >>> rows = await service.query_messages(
    ...     app_name="multi_agent", user_id="ann", source="coordinator", target="worker")
    >>> [(m.message_type, m.text) for m in rows]

Semantics worth knowing:

* Results come oldest first: by sequence number within a session, by time across sessions.
  ``limit`` keeps the *first* matches in that order.
* ``run_id`` names a top-level run (invocation or rewind: its own events) or a delegation
  sub-run (the events its agent wrote in the parent invocation from the transfer on, up to the
  next delegation of that invocation: the same events ``list_runs`` counts for it). Rows carry
  the run id stored with the event, i.e. the invocation's, also for a sub-run's events.
* ``since`` is inclusive, ``until`` exclusive (epoch seconds).
* ``text`` is a case-insensitive substring match (``%`` and ``_`` match themselves). On SQLite
  case folding covers ASCII letters only (SQLite's ``lower()``); PostgreSQL folds all letters.
  Events without text (tool calls, state-only events) never match a text filter. On an
  encrypted store (``sealing.py``) the text is sealed, so the filter runs on the opened rows
  in Python (every letter folded) over the rows the other filters select: slower, same result.
* ``on_path_only`` (default) keeps the events of the session's current history; off it, the
  events of sibling branches left by ``branch`` are included too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any, Literal

from sqlalchemy import ColumnElement, and_, false, or_, select
from sqlalchemy.engine import Connection

from ..errors import InvalidValueError, RunNotFound
from . import schema as s
from .facts import MESSAGE_TYPES
from .sealing import keyring_of

__all__ = [
    "DEFAULT_LIMIT",
    "MAX_LIMIT",
    "MAX_RECENT",
    "Message",
    "MessageType",
    "latest_compaction_before",
    "query_messages",
    "recent_messages",
]

MessageType = Literal["human", "agent", "tool_call", "tool_result", "system"]

DEFAULT_LIMIT = 100
"""How many messages a query returns when no limit is given."""

MAX_LIMIT = 100_000
"""The largest ``limit`` a query accepts."""


@dataclass(slots=True, frozen=True)
class Message:
    """One stored event seen as a message.

    Attributes:
        session_id: the session it belongs to.
        seq: its position in the session (1, 2, ...; dense across branches).
        event_id: the ADK event id.
        run_id: the run (invocation) it was stored under.
        timestamp: epoch seconds.
        source: who said it: ``user`` or the authoring agent's name.
        target: whom it addresses: an agent, ``user``, a tool name, or ``None``.
        branch: the author's agent path in dot notation (``coordinator.worker``).
        message_type: ``human``, ``agent``, ``tool_call``, ``tool_result`` or ``system``.
        text: its plain text (``None`` for tool calls and state-only events).
        total_tokens: the tokens the model reported for it, if any.
    """

    session_id: str
    seq: int
    event_id: str
    run_id: str
    timestamp: float
    source: str
    target: str | None
    branch: str | None
    message_type: str
    text: str | None
    total_tokens: int | None

    def to_dict(self) -> dict[str, Any]:
        """The message as a JSON-ready dict."""
        return asdict(self)


_COLUMN_OF_FIELD = {"event_id": "id"}  # Message fields named otherwise than their column

MESSAGE_COLUMNS = tuple(
    s.events.c[_COLUMN_OF_FIELD.get(f.name, f.name)] for f in fields(Message)
)
"""The event columns a :class:`Message` is read from, in its fields' order (from the schema:
a field without a column fails at import)."""


def _message(row: Any) -> Message:
    """A row of :data:`MESSAGE_COLUMNS` as a Message (numbers as Python's own types)."""
    (session_id, seq, event_id, run_id, timestamp, source, target, branch, message_type,
     text, total_tokens) = row
    return Message(
        session_id=session_id, seq=int(seq), event_id=event_id, run_id=run_id,
        timestamp=float(timestamp), source=source, target=target, branch=branch,
        message_type=message_type, text=text, total_tokens=total_tokens,
    )


def check_filters(
    *, message_type: str | None, since: float | None, until: float | None, limit: int
) -> None:
    """Validates the filters that are not ids.

    Raises:
        InvalidValueError: an unknown message type, a non-numeric time, or a bad limit.
    """
    if message_type is not None and message_type not in MESSAGE_TYPES:
        raise InvalidValueError(
            f"Unknown message type {message_type!r}; use one of {', '.join(MESSAGE_TYPES)}."
        )
    for name, value in (("since", since), ("until", until)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise InvalidValueError(f"{name} must be epoch seconds (a number), got {value!r}.")
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise InvalidValueError(f"limit must be an integer from 1 to {MAX_LIMIT}, got {limit!r}.")


def _run_condition(
    conn: Connection, *, app_name: str, user_id: str, session_id: str | None, run_id: str
) -> ColumnElement[bool]:
    """The events of a top-level run or a delegation sub-run, in every session that has it.

    Raises:
        RunNotFound: no session of the user (or the given session) has that run.
    """
    r, e = s.runs.c, s.events.c
    where = [r.app_name == app_name, r.user_id == user_id, r.run_id == run_id]
    if session_id is not None:
        where.append(r.session_id == session_id)
    found = conn.execute(
        select(r.session_id, r.kind, r.agent, r.parent_run_id, r.first_seq).where(*where)
    ).all()
    if not found:
        scope = f"session {session_id!r}" if session_id is not None else "any session"
        raise RunNotFound(
            f"Run {run_id!r} is not in {scope} of user {user_id!r} in app {app_name!r}. "
            "`multi-agent runs --user U --session S` lists a session's runs."
        )
    parts: list[ColumnElement[bool]] = []
    for run in found:
        if run.kind != "delegation":
            parts.append(and_(e.session_id == run.session_id, e.run_id == run_id))
            continue
        # A sub-run ends where the next delegation of the same invocation starts (runs.py).
        end = conn.execute(
            select(r.first_seq)
            .where(
                r.app_name == app_name, r.user_id == user_id, r.session_id == run.session_id,
                r.parent_run_id == run.parent_run_id, r.kind == "delegation",
                r.first_seq > run.first_seq,
            )
            .order_by(r.first_seq)
            .limit(1)
        ).scalar()
        cond = and_(
            e.session_id == run.session_id,
            e.run_id == run.parent_run_id,
            e.seq >= run.first_seq,
            e.source == run.agent if run.agent is not None else false(),
        )
        if end is not None:
            cond = and_(cond, e.seq < end)
        parts.append(cond)
    return or_(*parts)


def query_messages(
    conn: Connection,
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
    """The stored messages matching every given filter, oldest first.

    Args:
        conn: a connection inside a transaction (``Backend.run``).
        app_name: the app.
        user_id: the user whose sessions are searched.
        session_id: one session; all the user's sessions when ``None``.
        run_id: a top-level run or a delegation sub-run (see the module docstring).
        source: exact author (``user`` or an agent name).
        target: exact addressee.
        message_type: ``human``, ``agent``, ``tool_call``, ``tool_result`` or ``system``.
        since: earliest timestamp (inclusive, epoch seconds).
        until: latest timestamp (exclusive, epoch seconds).
        text: case-insensitive substring of the message text.
        on_path_only: only the current history of each session (default), not the events of
            sibling branches.
        limit: at most this many messages (the first ones in order).

    Returns:
        The matching messages; empty when nothing matches or the session does not exist.

    Raises:
        RunNotFound: ``run_id`` names a run that no searched session has.
        InvalidValueError: a filter value that cannot be used (see :func:`check_filters`).
    """
    check_filters(message_type=message_type, since=since, until=until, limit=limit)
    e = s.events.c
    where: list[ColumnElement[bool]] = [e.app_name == app_name, e.user_id == user_id]
    if session_id is not None:
        where.append(e.session_id == session_id)
    if run_id is not None:
        where.append(
            _run_condition(
                conn, app_name=app_name, user_id=user_id, session_id=session_id, run_id=run_id
            )
        )
    if source is not None:
        where.append(e.source == source)
    if target is not None:
        where.append(e.target == target)
    if message_type is not None:
        where.append(e.message_type == message_type)
    if since is not None:
        where.append(e.timestamp >= float(since))
    if until is not None:
        where.append(e.timestamp < float(until))
    sealed = bool(text) and keyring_of(conn.dialect) is not None
    if text and not sealed:
        where.append(e.text.icontains(text, autoescape=True))
    if on_path_only:
        where.append(e.on_path.is_(True))
    order = [e.seq] if session_id is not None else [e.timestamp, e.session_id, e.seq]
    stmt = select(*MESSAGE_COLUMNS).where(*where).order_by(*order)
    if not sealed:
        return [_message(row) for row in conn.execute(stmt.limit(limit))]
    # The text is sealed: SQL cannot see into it, so the opened rows are matched here.
    assert text is not None
    needle = text.casefold()
    found: list[Message] = []
    for row in conn.execute(stmt.where(e.text.is_not(None))):
        message = _message(row)
        if message.text is not None and needle in message.text.casefold():
            found.append(message)
            if len(found) == limit:
                break
    return found


MAX_RECENT = 10_000
"""The most messages one :func:`recent_messages` call returns."""


def check_recent(*, limit: int, message_types: Sequence[str]) -> list[str]:
    """Validates the arguments of :func:`recent_messages`; returns the types without repeats.

    Raises:
        InvalidValueError: ``limit`` outside 1..MAX_RECENT, or an unknown message type.
    """
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_RECENT:
        raise InvalidValueError(f"limit must be an integer from 1 to {MAX_RECENT}, got {limit!r}.")
    types = list(dict.fromkeys(message_types))
    unknown = [m for m in types if m not in MESSAGE_TYPES]
    if unknown or not types:
        raise InvalidValueError(
            f"message_types must be a non-empty selection of {', '.join(MESSAGE_TYPES)}; "
            f"got {list(message_types)!r}."
        )
    return types


def recent_messages(
    conn: Connection,
    *,
    app_name: str,
    user_id: str,
    limit: int,
    message_types: Sequence[str],
    exclude_session_id: str | None = None,
) -> list[Message]:
    """The newest ``limit`` messages of a user across sessions, newest first, in one statement.

    Only events on each session's current history (``on_path``) are returned.

    Raises:
        InvalidValueError: ``limit`` outside 1..MAX_RECENT, or an unknown message type.
    """
    types = check_recent(limit=limit, message_types=message_types)
    e = s.events.c
    stmt = (
        select(*MESSAGE_COLUMNS)
        .where(
            e.app_name == app_name,
            e.user_id == user_id,
            e.message_type.in_(types),
            e.on_path.is_(True),
        )
        .order_by(e.timestamp.desc(), e.seq.desc())
        .limit(limit)
    )
    if exclude_session_id is not None:
        stmt = stmt.where(e.session_id != exclude_session_id)
    return [_message(row) for row in conn.execute(stmt)]


def latest_compaction_before(
    conn: Connection, *, app_name: str, user_id: str, session_id: str, first_event_id: str,
    scan: int,
) -> str | None:
    """The stored JSON of the newest compaction summary among the ``scan`` events stored just
    before the event ``first_event_id`` (a bounded backward scan), or None.

    A candidate is a ``system`` event on the session's current history whose JSON names a
    ``"compaction"``; the caller decodes it and checks that it is one.
    """
    e = s.events.c
    key = and_(e.app_name == app_name, e.user_id == user_id, e.session_id == session_id)
    first_seq = select(e.seq).where(key, e.id == first_event_id).scalar_subquery()
    window = (
        select(e.seq, e.message_type, e.on_path, e.event_data)
        .where(key, e.seq < first_seq)
        .order_by(e.seq.desc())
        .limit(scan)
        .subquery("r")
    )
    r = window.c
    candidates = select(r.event_data).where(r.message_type == "system", r.on_path.is_(True))
    if keyring_of(conn.dialect) is not None:  # sealed JSON: opened and looked into here
        for data in conn.execute(candidates.order_by(r.seq.desc())).scalars():
            if '"compaction"' in data:
                return str(data)
        return None
    stmt = candidates.where(r.event_data.like('%"compaction"%')).order_by(r.seq.desc()).limit(1)
    return conn.execute(stmt).scalar()
