"""The store's transactions, each a synchronous function over one ``Connection``.

``Backend.run`` executes them in one transaction (a worker thread for SQLite, ``run_sync`` for
PostgreSQL). They never touch ADK ``Session`` objects except to read them; the async service
applies the results to the caller's objects.

An append (:func:`append_event`) is a sequence of named steps, in the order their reads and
writes must happen: lock the session row (``sql.SESSION_FOR_APPEND``), check the caller's copy
(:func:`_check_copy`), a stored id is a retry or a conflict (:func:`_duplicate`), refuse a
behind copy (:func:`_refuse_stale`), merge the session-scope delta (:func:`_merge_session_state`,
no database) and write the ``user:``/``app:`` ones (:func:`_write_scopes`), route the event
(:func:`route_event`, no database), record its run (:func:`_record_run`), and write the event
and the session row with the dialect's locked write (``Dialect.write_append``).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any

from google.adk.events.event import Event
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from ..errors import EventIdConflict, SessionAlreadyExists, SessionNotFound, StaleSession
from . import schema as s
from . import sql
from .backend import Backend
from .codec import EventDecoder, dumps, loads
from .damage import damaged
from .facts import EventFacts
from .gcpause import PROMOTE_AT, gc_paused
from .memory_tables import forget_session
from .scopes import (
    LockedRow,
    Marker,
    ScopeUpdate,
    ScopeWrite,
    make_marker,
    merge_keys,
    parse_marker,
    read_scopes,
    write_scope,
)
from .state import ScopedDelta, merge_scopes, scoped_key
from .updates import Op

__all__ = [
    "AppendRequest",
    "AppendResult",
    "LoadedSession",
    "append_event",
    "create_session",
    "delete_session",
    "list_sessions",
    "load_session",
    "new_incarnation",
]

# gc_paused, PROMOTE_AT (gcpause.py) and damaged (damage.py) stay importable from here.


def new_incarnation() -> str:
    """A fresh random token for a session being created (see ``scopes.py``)."""
    return secrets.token_hex(8)


# --------------------------------------------------------------------------------------------
# create


@dataclass(slots=True)
class Created:
    app_state: dict[str, Any]
    user_state: dict[str, Any]
    marker: str


def create_session(
    conn: Connection, backend: Backend, *, app_name: str, user_id: str, session_id: str,
    delta: ScopedDelta, now: float,
) -> Created:
    key = {"app_name": app_name, "user_id": user_id, "session_id": session_id}
    if sql.SESSION_EXISTS(conn, **key).first() is not None:
        raise SessionAlreadyExists(app_name, user_id, session_id)
    # The initial state is a blind write: there is no copy it could be stale against. The
    # user row before the app row, as an append locks them (LOCK ORDER in groupcommit.py).
    user = write_scope(conn, backend, app_name=app_name, user_id=user_id, delta=delta.user,
                       ops={}, seen_rev=None, now=now)
    app = write_scope(conn, backend, app_name=app_name, user_id=None, delta=delta.app,
                      ops={}, seen_rev=None, now=now)
    incarnation = new_incarnation()
    try:
        sql.SESSION_INSERT(
            conn, **key, state=dumps(delta.session), now=now, incarnation=incarnation,
            key_revs=dumps(dict.fromkeys(delta.session, 0)),
        )
    except IntegrityError as exc:  # another process created it between our check and insert
        raise SessionAlreadyExists(app_name, user_id, session_id) from exc
    return Created(
        app_state=app.state, user_state=user.state,
        marker=make_marker(incarnation, 0, 0, user.revision, app.revision),
    )


# --------------------------------------------------------------------------------------------
# read


@dataclass(slots=True)
class LoadedSession:
    state: dict[str, Any]
    events: list[Event]
    update_time: float
    marker: str


def load_session(
    conn: Connection, decoder: EventDecoder, *, app_name: str, user_id: str, session_id: str,
    num_recent_events: int | None, after_timestamp: float | None,
) -> LoadedSession | None:
    key = {"app_name": app_name, "user_id": user_id, "session_id": session_id}
    row = sql.SESSION_FOR_READ(conn, **key).first()
    if row is None:
        return None
    raws: list[str] = []
    if num_recent_events != 0:
        if num_recent_events is None and after_timestamp is None:
            raws = list(sql.EVENTS_ALL(conn, **key).scalars())
        elif num_recent_events is None:
            raws = list(sql.EVENTS_AFTER(conn, **key, after=after_timestamp).scalars())
        else:
            if after_timestamp is None:
                result = sql.EVENTS_RECENT(conn, **key, limit=num_recent_events)
            else:
                result = sql.EVENTS_RECENT_AFTER(
                    conn, **key, limit=num_recent_events, after=after_timestamp
                )
            raws = list(result.scalars())
            raws.reverse()
    try:
        scopes = read_scopes(conn, app_name, user_id)
        session_state = loads(row.state)
        with gc_paused(promote=len(raws) >= PROMOTE_AT):
            events = decoder.decode_many(raws)
    except (ValueError, ValidationError) as exc:  # JSONDecodeError is a ValueError
        raise damaged(app_name, user_id, session_id, exc) from exc
    return LoadedSession(
        state=merge_scopes(scopes.app, scopes.user, session_state),
        events=events,
        update_time=row.update_time,
        marker=make_marker(
            row.incarnation, row.revision, row.last_seq, scopes.user_rev, scopes.app_rev
        ),
    )


@dataclass(slots=True)
class SessionRow:
    user_id: str
    id: str
    state: dict[str, Any]
    update_time: float
    marker: str


def list_sessions(
    conn: Connection, *, app_name: str, user_id: str | None
) -> tuple[list[SessionRow], dict[str, Any], dict[str, dict[str, Any]]]:
    """Sessions (no events) oldest update first, the app state, and user states by user."""
    scopes = read_scopes(conn, app_name, None)
    u = s.user_states.c
    ustmt = select(u.user_id, u.state, u.revision).where(u.app_name == app_name)
    if user_id is not None:
        ustmt = ustmt.where(u.user_id == user_id)
    users = {r.user_id: (loads(r.state), r.revision) for r in conn.execute(ustmt)}
    c = s.sessions.c
    stmt = select(
        c.user_id, c.id, c.state, c.update_time, c.revision, c.last_seq, c.incarnation
    ).where(c.app_name == app_name)
    if user_id is not None:
        stmt = stmt.where(c.user_id == user_id)
    rows = [
        SessionRow(
            r.user_id, r.id, loads(r.state), r.update_time,
            make_marker(r.incarnation, r.revision, r.last_seq,
                        users.get(r.user_id, (None, 0))[1], scopes.app_rev),
        )
        for r in conn.execute(stmt.order_by(c.update_time, c.user_id, c.id))
    ]
    return rows, scopes.app, {k: v[0] for k, v in users.items()}


# --------------------------------------------------------------------------------------------
# delete


def delete_session(conn: Connection, *, app_name: str, user_id: str, session_id: str) -> bool:
    """Deletes a session with its events and runs, and what long memory holds of it when the
    memory tables are in this database (``memory_tables.forget_session``, also when the
    session row is already gone); False when there was no session."""
    key = {"app_name": app_name, "user_id": user_id, "session_id": session_id}
    sql.EVENTS_DELETE(conn, **key)
    sql.RUNS_DELETE(conn, **key)
    deleted = bool(sql.SESSION_DELETE(conn, **key).rowcount)
    forget_session(conn, **key)
    return deleted


# --------------------------------------------------------------------------------------------
# append


@dataclass(slots=True)
class AppendRequest:
    app_name: str
    user_id: str
    session_id: str
    event: Event
    event_json: str
    digest: str
    facts: EventFacts
    delta: ScopedDelta
    # Atomic updates behind delta values (``updates.py``), by scope, keys without prefixes.
    ops: ScopedOps
    is_final: bool
    marker: str | None
    last_event_id: str | None
    merge_when_stale: bool
    # Whether the result carries the rows as the append left them (``rowcache.py``'s cache;
    # PostgreSQL, unencrypted): nobody else reads them.
    keep_images: bool = False


@dataclass(slots=True)
class ScopedOps:
    app: dict[str, list[Op]] = field(default_factory=dict)
    user: dict[str, list[Op]] = field(default_factory=dict)
    session: dict[str, list[Op]] = field(default_factory=dict)


@dataclass(slots=True)
class AppendResult:
    marker: str
    update_time: float
    duplicate: bool = False
    stale: bool = False
    # Filled when the caller's copy was behind (merge mode): what it missed.
    session_state: dict[str, Any] | None = None
    app_state: dict[str, Any] | None = None
    user_state: dict[str, Any] | None = None
    missed_raw_events: list[str] = field(default_factory=list)
    user_rev: int = 0
    app_rev: int = 0
    # {full state key: stored value} where atomic updates gave another value than the delta's.
    resolved: dict[str, Any] = field(default_factory=dict)
    # The rows as this append left them (``rowcache.py``); None for a duplicate.
    images: RowImages | None = None


@dataclass(slots=True)
class SessionImage:
    """The columns of a session row that an append reads, as stored (``rowcache.py``); the
    attributes of ``sql.SESSION_FOR_APPEND``'s row."""

    state: str
    update_time: float
    revision: int
    last_seq: int
    head_run_id: str | None
    last_agent: str | None
    agent_paths: str
    awaiting_seq: int | None
    incarnation: str
    branch_rev: int
    key_revs: str
    duplicate_seq: None = None  # an image is never of a stored event's id


@dataclass(slots=True)
class RowImages:
    """The session's row and, where the append read them, the user's and the app's state rows,
    as the append left them (``rowcache.py``)."""

    session: SessionImage
    user: LockedRow | None
    app: LockedRow | None


@dataclass(slots=True)
class Deferred:
    """The writes of an append planned on cached rows (``rowcache.py``), to be sent as one
    compare-and-swap statement instead of being run one by one."""

    event_row: dict[str, Any] = field(default_factory=dict)
    session_row: dict[str, Any] = field(default_factory=dict)
    updates: list[ScopeUpdate] = field(default_factory=list)
    run: dict[str, Any] | None = None  # the run's row (insert-ignore), on its first event
    backfill: dict[str, Any] | None = None  # human messages addressed to the author


class NotPlannable(Exception):
    """The append needs a write that a compare-and-swap statement does not carry (a
    delegation's sub-run, a scope row to create): run it the usual way."""


def append_event(conn: Connection, backend: Backend, req: AppendRequest,
                 locked: RowImages | None = None) -> AppendResult:
    """Stores one event with its state delta atomically (see ``scopes.py`` for the checks).

    ``locked``: the rows it reads, already locked and read in this transaction (a PostgreSQL
    batch's lock statement, ``rowcache.batch_images``): not read again."""
    try:
        return _append_event(conn, backend, req, cached=locked)
    except ValueError as exc:
        if type(exc).__name__ != "JSONDecodeError":
            raise
        raise damaged(req.app_name, req.user_id, req.session_id, exc) from exc


def _append_event(
    conn: Connection | None, backend: Backend, req: AppendRequest,
    cached: RowImages | None = None, plan: Deferred | None = None,
) -> AppendResult:
    """The append's steps, in the order their reads and writes must happen.

    ``cached`` and ``plan`` (``rowcache.py``): the same steps on rows this process wrote last
    instead of locked ones read now, with no database access; the writes go into ``plan``, to
    be sent as one statement that stores them only if the rows are still as cached. Only for a
    copy the store handed out (``_check_copy`` reads nothing then).
    """
    key = {"app_name": req.app_name, "user_id": req.user_id, "session_id": req.session_id}
    user_row: LockedRow | None = None
    app_row: LockedRow | None = None
    row: Any = None
    if cached is not None:
        row, user_row, app_row = cached.session, cached.user, cached.app
    elif req.delta.user:  # the session row and the user's, locked in one statement
        assert conn is not None
        row = sql.SESSION_AND_USER_FOR_APPEND(conn, **key, event_id=req.event.id).first()
        if row is not None:
            user_row = LockedRow(row.user_state, row.user_revision, row.user_key_revs)
    if row is None:  # (or the user row does not exist yet: write_scope makes it)
        assert conn is not None
        row = sql.SESSION_FOR_APPEND(conn, **key, event_id=req.event.id).first()  # locked
    if row is None:
        raise SessionNotFound(req.app_name, req.user_id, req.session_id)
    copy = parse_marker(req.marker)
    check = _check_copy(conn, req, key, row, copy)
    if row.duplicate_seq is not None:
        assert conn is not None
        return _duplicate(conn, req, key, row, copy, check)
    _refuse_stale(req, row, check)
    new_rev = row.revision + 1
    merged = _merge_session_state(req, row, check, new_rev)
    updates: list[ScopeUpdate] = []  # sent with the event insert (write_append)
    written = _write_scopes(conn, backend, req, row, copy, check, merged.resolved,
                            user_row=user_row, app_row=app_row, defer=updates)
    seq = row.last_seq + 1
    route = route_event(
        req.facts, event_branch=req.event.branch, agent_paths=row.agent_paths,
        awaiting_seq=row.awaiting_seq, last_agent=row.last_agent, seq=seq,
    )
    if route.backfill_since is not None:
        # The first agent to speak after human messages is the one they were addressed to.
        backfill = dict(target=req.facts.source, since_seq=route.backfill_since)
        if plan is not None:
            plan.backfill = backfill
        else:
            assert conn is not None
            sql.HUMAN_TARGET_BACKFILL(conn, **key, **backfill)
    now = req.event.timestamp
    run_id = req.event.invocation_id or "-"
    head_run_id = _record_run(conn, backend, req, key, row.head_run_id, run_id, seq, now,
                              req.facts.source, plan)
    update_time = max(now, row.update_time)
    new_event = event_row(req, seq=seq, run_id=run_id, route=route, resolved=merged.resolved)
    session_row = dict(
        state=merged.state_json, update_time=update_time, revision=new_rev, last_seq=seq,
        last_agent=route.last_agent, head_run_id=head_run_id,
        agent_paths=route.agent_paths, awaiting_seq=route.awaiting_seq,
        key_revs=merged.key_revs_json,
    )
    if plan is not None:
        plan.event_row, plan.session_row, plan.updates = new_event, session_row, updates
    else:
        assert conn is not None
        backend.db.write_append(conn, key, new_event, session_row, updates)
    result = _appended(conn, req, key, row, copy, check, merged, written, new_rev=new_rev,
                       seq=seq, update_time=update_time)
    if req.keep_images or plan is not None:
        result.images = _images(row, session_row, user_row, app_row, updates)
    return result


def _images(
    row: Any, session_row: dict[str, Any], user_row: LockedRow | None,
    app_row: LockedRow | None, updates: list[ScopeUpdate],
) -> RowImages:
    """The rows as the append leaves them (what it read, with what it writes)."""
    rows = {"user": user_row, "app": app_row}
    for update in updates:
        v = update.values
        rows[update.scope] = LockedRow(v["state"], v["revision"], v["key_revs"])
    # session_row holds the columns an append writes; the other two it only reads.
    return RowImages(
        SessionImage(**session_row, incarnation=row.incarnation, branch_rev=row.branch_rev),
        rows["user"], rows["app"],
    )


@dataclass(slots=True)
class CopyCheck:
    """How the caller's copy of the session stands against the stored row."""

    stale: bool  # storage moved on since the copy was loaded (or last appended through)
    local_rev: int | None  # the copy's revision (None: a copy the store did not hand out)
    local_seq: int  # the newest event the copy has


def _check_copy(
    conn: Connection | None, req: AppendRequest, key: dict[str, str], row: Any, copy: Marker | None
) -> CopyCheck:
    """Compares the copy with storage: by its marker, else by its newest event on the path.

    Raises:
        StaleSession: the copy is of a deleted session that was re-created under its id.
    """
    if copy is not None:
        if copy.incarnation != row.incarnation:
            raise StaleSession(req.session_id, local=copy.revision, stored=row.revision,
                               reason="recreated")
        return CopyCheck(copy.revision != row.revision, copy.revision, copy.last_seq)
    # A session object we did not load: compare the newest event on the path.
    assert conn is not None  # (a planned append has a copy: rowcache.plan)
    stale = sql.EVENT_NEWEST_ON_PATH(conn, **key).scalar() != req.last_event_id
    local_seq = 0
    if req.last_event_id is not None:
        known = sql.EVENT_BY_ID(conn, **key, event_id=req.last_event_id).first()
        local_seq = known.seq if known is not None else 0
    return CopyCheck(stale, None, local_seq)


def _duplicate(
    conn: Connection, req: AppendRequest, key: dict[str, str], row: Any, copy: Marker | None,
    check: CopyCheck,
) -> AppendResult:
    """An event whose id is stored: a retry after a lost acknowledgement is idempotent
    (nothing written, and a copy that missed its own acknowledged write is brought up to
    date); a different event under that id is refused (EventIdConflict)."""
    _check_same_event(conn, req, key)
    result = AppendResult(_marker_of(row, copy, row.revision, row.last_seq),
                          row.update_time, duplicate=True)
    if check.stale or copy is None:
        _catch_up(conn, req, key, result, loads(row.state), check.local_seq, row.last_seq + 1,
                  row)
    return result


def _refuse_stale(req: AppendRequest, row: Any, check: CopyCheck) -> None:
    """Raises StaleSession for a behind copy, unless merge mode may apply it (not across a
    ``branch`` the copy predates)."""
    if not check.stale:
        return
    local_rev = check.local_rev
    if not req.merge_when_stale:
        raise StaleSession(req.session_id, local=local_rev, stored=row.revision)
    if (local_rev is not None and local_rev < row.branch_rev) or (
        local_rev is None and row.branch_rev
    ):
        raise StaleSession(req.session_id, local=local_rev, stored=row.revision,
                           reason="branched")


@dataclass(slots=True)
class SessionMerge:
    """The session row's state after the event's session-scope delta."""

    state: dict[str, Any] | None  # decoded: when the delta writes it, or the copy is behind
    state_json: str
    key_revs_json: str
    # {full state key: stored value} where atomic updates gave another value than the delta's.
    resolved: dict[str, Any]


def _merge_session_state(
    req: AppendRequest, row: Any, check: CopyCheck, new_rev: int
) -> SessionMerge:
    """Merges the session-scope delta into the stored state (no database access).

    A current copy cannot conflict; a behind one (merge mode) must not overwrite a key written
    after it was loaded (one of unknown age: any key written since creation).

    Raises:
        StaleSession: (reason ``keys``) a key the event writes changed since the copy read it.
    """
    merged = SessionMerge(None, row.state, row.key_revs, {})
    if req.delta.session or check.stale:
        merged.state = loads(row.state)
    if req.delta.session:
        assert merged.state is not None
        key_revs = loads(row.key_revs)
        conflicts, done = merge_keys(
            merged.state, key_revs, req.delta.session, req.ops.session,
            seen_rev=(check.local_rev or 0) if check.stale else None, new_rev=new_rev,
        )
        if conflicts:
            raise StaleSession(req.session_id, local=check.local_rev, stored=row.revision,
                               reason="keys", keys=conflicts)
        merged.resolved.update(done)
        merged.state_json, merged.key_revs_json = dumps(merged.state), dumps(key_revs)
    return merged


def _write_scopes(
    conn: Connection | None, backend: Backend, req: AppendRequest, row: Any,
    copy: Marker | None, check: CopyCheck, resolved: dict[str, Any], *,
    user_row: LockedRow | None = None, app_row: LockedRow | None = None,
    defer: list[ScopeUpdate] | None = None,
) -> dict[str, ScopeWrite]:
    """Merges the ``user:`` and ``app:`` deltas into their rows (locked, per-key checks);
    adds what atomic updates resolved to ``resolved``. ``user_row``, ``app_row``: the rows,
    locked already (or cached: ``rowcache.py``); ``defer``: where the rows' UPDATEs go (see
    ``write_scope``).

    Raises:
        StaleSession: (reason ``keys``) a key the event writes changed since the copy read it.
    """
    written: dict[str, ScopeWrite] = {}
    for scope, delta, ops, seen in (
        ("user", req.delta.user, req.ops.user, copy.user_rev if copy else None),
        ("app", req.delta.app, req.ops.app, copy.app_rev if copy else None),
    ):
        if not delta:
            continue
        wrote = write_scope(
            conn, backend, app_name=req.app_name,
            user_id=req.user_id if scope == "user" else None, delta=delta, ops=ops,
            seen_rev=seen, now=req.event.timestamp,
            locked=user_row if scope == "user" else app_row, defer=defer,
        )
        if wrote.conflicts:
            raise StaleSession(req.session_id, local=check.local_rev, stored=row.revision,
                               reason="keys", keys=[scoped_key(scope, k) for k in wrote.conflicts])
        resolved.update({scoped_key(scope, k): v for k, v in wrote.resolved.items()})
        written[scope] = wrote
    return written


@dataclass(slots=True)
class Route:
    """Where an event sits in the conversation: what ``route_event`` derives."""

    agent_paths: str  # the session's {agent: dotted path} as JSON, with what this event taught
    branch: str | None  # the author's agent path
    target: str | None  # whom it addresses (None for a human message: filled in later)
    awaiting_seq: int | None  # the first human message no agent has answered yet
    backfill_since: int | None  # human messages from this seq on are addressed to the author
    last_agent: str | None  # the agent that spoke last, after this event


def route_event(
    facts: EventFacts, *, event_branch: str | None, agent_paths: str,
    awaiting_seq: int | None, last_agent: str | None, seq: int,
) -> Route:
    """Who an event comes from and goes to, from its facts and the session row: a pure
    function (no database).

    Args:
        facts: the event's derived columns (``facts.event_facts``).
        event_branch: the event's own ``branch``, if ADK set one.
        agent_paths: the session's ``agent_paths`` JSON: the first agent is a root, a transfer
            makes the target its child.
        awaiting_seq: the session's first unanswered human message, if any.
        last_agent: the session's last agent.
        seq: the event's sequence number.
    """
    author = facts.source
    paths: dict[str, str] | None = None
    if (author != "user" and f'"{author}"' not in agent_paths) or facts.transfer_to:
        paths = loads(agent_paths)
        if author != "user" and author not in paths:
            paths[author] = author
        if facts.transfer_to and facts.transfer_to not in paths:
            paths[facts.transfer_to] = f"{paths.get(author, author)}.{facts.transfer_to}"
        agent_paths = dumps(paths)
    branch = event_branch
    if branch is None and author != "user":
        branch = (paths if paths is not None else loads(agent_paths)).get(author)
    target = facts.target
    backfill_since: int | None = None
    if facts.message_type == "human":
        target = None  # filled in by the agent that answers it, on a later append
        if awaiting_seq is None:
            awaiting_seq = seq
    elif author != "user" and awaiting_seq is not None:
        backfill_since, awaiting_seq = awaiting_seq, None
    return Route(
        agent_paths=agent_paths, branch=branch, target=target, awaiting_seq=awaiting_seq,
        backfill_since=backfill_since,
        last_agent=last_agent if author == "user" else (facts.transfer_to or author),
    )


def event_row(
    req: AppendRequest, *, seq: int, run_id: str, route: Route, resolved: dict[str, Any]
) -> dict[str, Any]:
    """The event's row: every column of ``ma_events`` but the session key
    (``sql.EVENT_COLUMNS``)."""
    event, facts = req.event, req.facts
    event_json = req.event_json
    if resolved:  # the stored event says what was stored, not what the copy computed
        data = loads(event_json)
        data["actions"]["state_delta"].update(resolved)
        event_json = dumps(data)
    return dict(
        seq=seq, id=event.id, invocation_id=event.invocation_id or "",
        run_id=run_id, timestamp=event.timestamp, source=facts.source, target=route.target,
        branch=route.branch, message_type=facts.message_type, final=req.is_final,
        text=facts.text, prompt_tokens=facts.prompt_tokens,
        completion_tokens=facts.completion_tokens, total_tokens=facts.total_tokens,
        on_path=True, event_data=event_json, digest=req.digest,
    )


def _appended(
    conn: Connection | None, req: AppendRequest, key: dict[str, str], row: Any, copy: Marker | None,
    check: CopyCheck, merged: SessionMerge, written: dict[str, ScopeWrite], *, new_rev: int,
    seq: int, update_time: float,
) -> AppendResult:
    """What the caller's copy needs to be current after the write."""
    result = AppendResult("", update_time, stale=check.stale, resolved=merged.resolved)
    if check.stale or copy is None:
        # Merge mode, or a copy of unknown age: tell it everything it missed, with the
        # revisions of the scopes it is now current with.
        assert merged.state is not None or copy is None
        assert conn is not None  # (a planned append is of a current copy: rowcache.plan)
        _catch_up(conn, req, key, result,
                  merged.state if merged.state is not None else loads(merged.state_json),
                  check.local_seq, seq, None)
        result.marker = make_marker(row.incarnation, new_rev, seq, result.user_rev,
                                    result.app_rev)
    else:
        user, app = written.get("user"), written.get("app")
        result.user_state = user.state if user else None
        result.app_state = app.state if app else None
        result.marker = make_marker(
            row.incarnation, new_rev, seq,
            user.revision if user else copy.user_rev, app.revision if app else copy.app_rev,
        )
    return result


def _check_same_event(conn: Connection, req: AppendRequest, key: dict[str, str]) -> None:
    """Raises EventIdConflict unless the stored event with this id is the one being appended."""
    stored = sql.EVENT_IDENTITY(conn, **key, event_id=req.event.id).first()
    if stored is None:
        return
    # The same object appended again has the same digest. An event read back from storage
    # (its fields in another order; atomic updates already resolved in it) or a row from
    # schema 1 (no digest) is the same when its JSON says the same.
    same = stored.digest == req.digest or loads(stored.event_data) == loads(req.event_json)
    if not same:
        raise EventIdConflict(
            f"Session {req.session_id!r} already holds a different event with id "
            f"{req.event.id!r} (stored as event {stored.seq}). Nothing was written. Give the "
            "new event its own id (Event.new_id()); appending the same event again is a no-op."
        )


def _marker_of(row: Any, copy: Marker | None, revision: int, last_seq: int) -> str:
    return make_marker(row.incarnation, revision, last_seq,
                       copy.user_rev if copy else 0, copy.app_rev if copy else 0)


def _catch_up(
    conn: Connection, req: AppendRequest, key: dict[str, str], result: AppendResult,
    session_state: dict[str, Any], after_seq: int | None, before_seq: int, row: Any,
) -> None:
    """Fills ``result`` with what a copy at ``after_seq`` missed, up to ``before_seq``."""
    scopes = read_scopes(conn, req.app_name, req.user_id)
    result.app_state, result.user_state = scopes.app, scopes.user
    result.user_rev, result.app_rev = scopes.user_rev, scopes.app_rev
    result.session_state = session_state
    result.missed_raw_events = list(
        sql.EVENTS_BETWEEN(
            conn, **key, after_seq=after_seq or 0, before_seq=before_seq
        ).scalars()
    )
    if row is not None:
        result.marker = make_marker(row.incarnation, row.revision, row.last_seq,
                                    scopes.user_rev, scopes.app_rev)


def _record_run(
    conn: Connection | None, backend: Backend, req: AppendRequest, key: dict[str, str],
    head_run_id: str | None, run_id: str, seq: int, now: float, author: str,
    plan: Deferred | None = None,
) -> str | None:
    """Writes the run's row on its first event, and a sub-run row for each delegation;
    returns the session's head after the event.

    The head moves to the event's run, except for a bookkeeping event (a compaction summary,
    a state-only ``user`` event: ``runs.is_bookkeeping``), which belongs to no run: it creates
    none and leaves the head where it is. The rest of a run (end, events, tokens, status) is
    derived from its events (``runs.py``).
    """
    from .runs import is_bookkeeping

    facts = req.facts
    if facts.transfer_to and facts.message_type == "tool_result":
        if plan is not None:
            raise NotPlannable("a delegation's sub-run")
        assert conn is not None
        sql.RUN_INSERT(
            conn, **key, run_id=f"{facts.transfer_to[:200]}@{seq}", parent_run_id=run_id,
            kind="delegation", agent=facts.transfer_to, started_at=now, first_seq=seq,
            on_path=True,
        )
    if is_bookkeeping(req.event):
        return head_run_id
    if run_id == head_run_id:
        return run_id
    rewind = req.event.actions.rewind_before_invocation_id if req.event.actions else None
    run = dict(run_id=run_id, parent_run_id=head_run_id,
               kind="rewind" if rewind else "invocation",
               agent=author if author != "user" else None, started_at=now, first_seq=seq,
               on_path=True)
    if plan is not None:
        plan.run = run
    else:  # a run stored before (not the head) is left as it is
        assert conn is not None
        backend.db.run_insert_ignore(conn, **key, **run)
    return run_id
