"""Runs: one per invocation, a tree through ``parent_run_id``; what they did, from their events.

A run's row is written when its first event is appended (its parent is the run the session's
head was at). Its end time, event count, token usage and status are derived from its events
when asked, so appends never rewrite run rows. Status:

* the status recorded explicitly (e.g. ``cancelled``), if any;
* ``completed`` when its last event is an agent's final response;
* ``running`` when it is the session's head and has not answered yet;
* ``failed`` otherwise: a later run started (or the process died) before it answered.

Bookkeeping events (:func:`is_bookkeeping`: an ADK events-compaction summary, or a content-less
``user`` event such as ``adk api_server``'s state update) belong to no run: they are stored
under their own invocation id, but create no run row and do not move the head, so they never
show as a run, a failure or a branch point. On a branch such an event follows the event stored
before it (the run it was written after). Schema 3 folds the runs earlier versions made of
them (:func:`fold_bookkeeping_runs`).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import and_, case, func, select
from sqlalchemy.engine import Connection

from . import schema as s

__all__ = [
    "PRUNED",
    "SUB_RUN_KINDS",
    "RunInfo",
    "fold_bookkeeping_runs",
    "is_bookkeeping",
    "STOP_REQUESTED",
    "list_runs",
    "request_stop",
    "rewind_state_delta",
    "start_run",
    "stop_requested",
]

SUB_RUN_KINDS = ("delegation", "agent_tool")
"""Runs inside another run (drawn under it, never a branch point)."""

PRUNED = "pruned"
"""The status of a run whose events a trim deleted (``trim.py``): its row stays in the tree."""

PRUNED_ERROR = "its events were deleted by a trim (retention)"
PRUNED_BASE_ERROR = ("its events were deleted by a trim (retention); the kept history "
                     "continues from it")
"""The error text of the newest pruned run on the head path at the last trim: the session's
``initial_state`` holds the state at its end, so only runs whose history continues from it
can be branched to."""


def is_bookkeeping(event: Any) -> bool:
    """True for an event the framework writes about the session rather than as part of a
    turn: an events-compaction summary (``actions.compaction``), or a ``user`` event without
    content that is not a rewind (e.g. ``adk api_server``'s state update). It belongs to no
    run of its own (see the module docstring)."""
    actions = event.actions
    if actions is not None and actions.compaction is not None:
        return True
    if event.author != "user" or (actions is not None and actions.rewind_before_invocation_id):
        return False
    content = event.content
    return content is None or not content.parts


def is_bookkeeping_data(data: dict[str, Any]) -> bool:
    """:func:`is_bookkeeping` for an event as stored (its JSON, decoded)."""
    actions = data.get("actions") or {}
    if actions.get("compaction") is not None:
        return True
    if data.get("author") != "user" or actions.get("rewind_before_invocation_id"):
        return False
    content = data.get("content")
    return not content or not content.get("parts")


@dataclass(slots=True)
class RunInfo:
    """One run of a session, as the tree shows it."""

    run_id: str
    parent_run_id: str | None
    kind: str
    agent: str | None
    status: str
    started_at: float
    ended_at: float | None
    event_count: int
    first_seq: int
    last_seq: int | None
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    on_path: bool
    error: str | None
    is_head: bool = False
    # The person's message that started it (its first human message, at most 200 characters;
    # a sub-run: none).
    message: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def list_runs(conn: Connection, *, app_name: str, user_id: str, session_id: str) -> list[RunInfo]:
    """The session's runs in the order they started, with their derived figures.

    A delegation sub-run (kind ``delegation``) covers the events its agent wrote in its parent
    invocation from the transfer on, until the next delegation of that invocation.
    """
    r, e, ss = s.runs.c, s.events.c, s.sessions.c
    head = conn.execute(
        select(ss.head_run_id).where(
            ss.app_name == app_name, ss.user_id == user_id, ss.id == session_id
        )
    ).scalar()
    runs = conn.execute(
        select(
            r.run_id, r.parent_run_id, r.kind, r.agent, r.status, r.error, r.started_at,
            r.first_seq, r.on_path,
        )
        .where(r.app_name == app_name, r.user_id == user_id, r.session_id == session_id)
        .order_by(r.first_seq)
    ).all()
    events = conn.execute(
        select(
            e.seq, e.run_id, e.source, e.message_type, e.timestamp, e.final, e.prompt_tokens,
            e.completion_tokens, e.total_tokens,
            case((e.message_type == "human", e.text), else_=None).label("human_text"),
        )
        .where(e.app_name == app_name, e.user_id == user_id, e.session_id == session_id)
        .order_by(e.seq)
    ).all()
    by_run: dict[str, list[Any]] = {}
    for ev in events:
        by_run.setdefault(ev.run_id, []).append(ev)
    delegations: dict[str, list[Any]] = {}
    for run in runs:
        if run.kind == "delegation" and run.parent_run_id is not None:
            delegations.setdefault(run.parent_run_id, []).append(run)
    explicit = {run.run_id: run.status for run in runs}
    out = []
    for run in runs:
        if run.kind == "agent_tool":
            mine = []  # its agent ran in a session of its own; only the result came back
        elif run.kind == "delegation":
            siblings = delegations.get(run.parent_run_id or "", [])
            later = [d.first_seq for d in siblings if d.first_seq > run.first_seq]
            end = min(later) if later else None
            mine = [
                ev for ev in by_run.get(run.parent_run_id or "", [])
                if ev.seq >= run.first_seq and (end is None or ev.seq < end)
                and ev.source == run.agent
            ]
        else:
            mine = by_run.get(run.run_id, [])
        status, error = run.status, run.error
        answered = any(ev.final for ev in mine)
        # Content-less user events after the answer (bookkeeping) do not undo it.
        last = next(
            (ev for ev in reversed(mine) if ev.source != "user" or ev.message_type != "system"),
            None,
        )
        if status is None and run.kind == "delegation" and not answered and (
            explicit.get(run.parent_run_id or "") == "cancelled"
        ):
            status, error = "cancelled", "its run was cancelled"
        if status is None:
            if run.kind == "rewind" or (last is not None and last.final) or (
                run.kind == "delegation" and answered
            ):
                status = "completed"
                if error == STOP_REQUESTED:  # it answered before the stop reached it
                    error = None
            elif run.run_id == head or (run.kind == "delegation" and run.parent_run_id == head):
                status = "running"
            else:
                status = "failed"
                error = error or "ended without a final response (interrupted or crashed)"
        agent = run.agent or next((ev.source for ev in mine if ev.source != "user"), None)
        message = None if run.kind in SUB_RUN_KINDS else next(
            (ev.human_text for ev in mine if ev.human_text is not None), None
        )
        if message is not None and len(message) > 200:
            message = message[:199] + "…"
        out.append(
            RunInfo(
                run_id=run.run_id, parent_run_id=run.parent_run_id, kind=run.kind,
                agent=agent, status=status, started_at=run.started_at,
                ended_at=mine[-1].timestamp if mine else None, event_count=len(mine),
                first_seq=run.first_seq, last_seq=mine[-1].seq if mine else None,
                prompt_tokens=sum(ev.prompt_tokens or 0 for ev in mine),
                completion_tokens=sum(ev.completion_tokens or 0 for ev in mine),
                total_tokens=sum(ev.total_tokens or 0 for ev in mine),
                on_path=bool(run.on_path), error=error, is_head=run.run_id == head,
                message=message,
            )
        )
    return out


@dataclass(slots=True)
class BranchResult:
    """What ``branch`` did."""

    head_run_id: str
    runs_on_path: list[str]
    revision: int
    session_state: dict[str, Any]


def branch_session(
    conn: Connection, *, app_name: str, user_id: str, session_id: str, from_run_id: str,
) -> BranchResult:
    """Moves the session's head to ``from_run_id``: history and session state become the path
    from the first run to it; every other run stays stored, off the path.

    Raises:
        SessionNotFound: no such session.
        RunNotFound: the session has no such top-level run.
    """
    from ..errors import RunNotFound, SessionNotFound
    from .codec import dumps, loads
    from .state import split_delta

    r, e, ss = s.runs.c, s.events.c, s.sessions.c
    where_session = and_(ss.app_name == app_name, ss.user_id == user_id, ss.id == session_id)
    # Locked until commit where the database locks rows (SQLite renders no lock: the write
    # transaction holds the database's write lock).
    row = conn.execute(
        select(ss.initial_state, ss.revision).where(where_session).with_for_update()
    ).first()
    if row is None:
        raise SessionNotFound(app_name, user_id, session_id)
    key = and_(r.app_name == app_name, r.user_id == user_id, r.session_id == session_id)
    rows = conn.execute(
        select(r.run_id, r.parent_run_id, r.kind, r.status, r.error, r.first_seq)
        .where(key).order_by(r.first_seq)
    ).all()
    parents = {run.run_id: (run.parent_run_id, run.kind) for run in rows}
    if from_run_id not in parents or parents[from_run_id][1] in SUB_RUN_KINDS:
        what = (
            f"{from_run_id!r} is a {parents[from_run_id][1]} sub-run; branch from the run it "
            f"belongs to, {parents[from_run_id][0]!r}" if from_run_id in parents
            else f"Session {session_id!r} has no run {from_run_id!r}"
        )
        raise RunNotFound(f"{what}. {_runs_hint(parents)}")
    path: list[str] = []
    cursor: str | None = from_run_id
    while cursor is not None and cursor not in path:
        path.append(cursor)
        cursor = parents[cursor][0]
    kept_from = _check_not_pruned(rows, path, session_id)
    # Sub-runs follow their run.
    on_path = set(path) | {
        run_id for run_id, (parent, kind) in parents.items() if kind in SUB_RUN_KINDS
        and parent in path
    }
    ekey = and_(e.app_name == app_name, e.user_id == user_id, e.session_id == session_id)
    conn.execute(s.runs.update().where(key).values(on_path=r.run_id.in_(on_path)))
    conn.execute(s.events.update().where(ekey).values(on_path=e.run_id.in_(path)))
    # Events of no run (bookkeeping: compaction summaries...) follow the event before them.
    in_path = set(path)
    follows = True
    loose: list[int] = []
    for seq, run_id in conn.execute(select(e.seq, e.run_id).where(ekey).order_by(e.seq)):
        if run_id in parents:
            follows = run_id in in_path
        elif follows:
            loose.append(seq)
    for lo in range(0, len(loose), 500):
        conn.execute(
            s.events.update().where(ekey, e.seq.in_(loose[lo:lo + 500])).values(on_path=True)
        )
    # Session-scope state at the end of the run: the initial state plus the path's deltas.
    state = loads(row.initial_state)
    last_agent = None
    for data, source in conn.execute(
        select(e.event_data, e.source)
        .where(ekey, e.on_path.is_(True), e.seq >= kept_from).order_by(e.seq)
    ):
        actions = loads(data).get("actions") or {}
        state.update(split_delta(actions.get("state_delta") or {}).session)
        if source != "user":  # as append_event: the agent that will answer next
            last_agent = actions.get("transfer_to_agent") or source
    revision = row.revision + 1
    conn.execute(
        s.sessions.update()
        .where(where_session)
        .values(
            state=dumps(state), head_run_id=from_run_id, revision=revision,
            last_agent=last_agent, update_time=time.time(), awaiting_seq=None,
            # Copies loaded before this hold another history: merge mode refuses them.
            branch_rev=revision,
        )
    )
    return BranchResult(
        head_run_id=from_run_id, runs_on_path=list(reversed(path)), revision=revision,
        session_state=state,
    )


def start_run(
    conn: Connection, *, app_name: str, user_id: str, session_id: str, run_id: str,
    expected_head: str | None, from_run_id: str | None, started_at: float,
) -> BranchResult | None:
    """Claims the session for a new run in one transaction: only if its head is still
    ``expected_head`` (what the caller saw when it decided the session was free), branches to
    ``from_run_id`` when that is another run, writes the run's row (running: the head, no
    events yet) and moves the head to it. The run's events, appended under ``run_id`` as
    invocation id, then continue it. Two processes that saw the same head cannot both start.

    Returns:
        What the branch did, when there was one.

    Raises:
        SessionNotFound: no such session (deleted meanwhile).
        RunConflict: the head moved (another run started), or ``run_id`` is taken.
        RunNotFound / HistoryPrunedError: ``from_run_id`` cannot be branched from.
    """
    from ..errors import RunConflict, SessionNotFound

    r, ss = s.runs.c, s.sessions.c
    where_session = and_(ss.app_name == app_name, ss.user_id == user_id, ss.id == session_id)
    row = conn.execute(
        select(ss.head_run_id).where(where_session).with_for_update()
    ).first()
    if row is None:
        raise SessionNotFound(app_name, user_id, session_id)
    if row.head_run_id != expected_head:
        raise RunConflict(session_id, run_id=run_id, head_run_id=row.head_run_id)
    key = and_(r.app_name == app_name, r.user_id == user_id, r.session_id == session_id)
    if conn.execute(select(r.run_id).where(key, r.run_id == run_id)).first() is not None:
        raise RunConflict(session_id, run_id=run_id, head_run_id=row.head_run_id,
                          exists=True)
    branched = None
    if from_run_id is not None and from_run_id != row.head_run_id:
        branched = branch_session(conn, app_name=app_name, user_id=user_id,
                                  session_id=session_id, from_run_id=from_run_id)
    now = conn.execute(select(ss.last_seq, ss.revision).where(where_session)).one()
    conn.execute(s.runs.insert().values(
        app_name=app_name, user_id=user_id, session_id=session_id, run_id=run_id,
        parent_run_id=from_run_id if from_run_id is not None else row.head_run_id,
        kind="invocation", agent=None, started_at=started_at, first_seq=now.last_seq + 1,
        on_path=True,
    ))
    # A new revision: copies loaded before (and rowcache's images) are behind the head now.
    conn.execute(s.sessions.update().where(where_session).values(
        head_run_id=run_id, revision=now.revision + 1))
    return branched


def _check_not_pruned(rows: Any, path: list[str], session_id: str) -> int:
    """Refuses a branch whose history a trim deleted; returns the first seq whose events count
    for the state (0 in a session never trimmed: the initial state is the creation's).

    Raises:
        HistoryPrunedError: the run was pruned, or its history does not continue from the
            base of the kept history (it forked off before the trim's cut).
    """
    from ..errors import HistoryPrunedError

    by_id = {run.run_id: run for run in rows}
    pruned = [run for run in rows if run.status == PRUNED]
    if not pruned:
        return 0
    target = path[0]
    hint = (" A trim (multi-agent prune --keep-last/--keep-days) deleted the events before "
            f"seq {min(run.first_seq for run in rows if run.status != PRUNED)}; branch from "
            "a later run (multi-agent runs shows which are pruned).")
    if by_id[target].status == PRUNED:
        raise HistoryPrunedError(
            f"Run {target!r} of session {session_id!r} cannot be branched to: its history was "
            f"pruned.{hint}")
    base = next((run.run_id for run in pruned if run.error == PRUNED_BASE_ERROR), None)
    ancestor = next((run_id for run_id in path if by_id[run_id].status == PRUNED), None)
    if ancestor != base:
        raise HistoryPrunedError(
            f"Run {target!r} of session {session_id!r} cannot be branched to: it forked off "
            f"before its history was pruned (its earlier runs' state is gone).{hint}")
    return _kept_from(rows)


def _kept_from(rows: Any) -> int:
    """The first seq whose events count for the session state: 0 in a session never trimmed
    (its ``initial_state`` is the creation's), else the first kept run's."""
    if not any(run.status == PRUNED for run in rows):
        return 0
    return min((run.first_seq for run in rows if run.status != PRUNED), default=0)


def rewind_state_delta(
    conn: Connection, *, app_name: str, user_id: str, session_id: str, invocation_id: str
) -> dict[str, Any] | None:
    """The session-scope ``state_delta`` of a rewind before ``invocation_id``, from what is
    stored: the state the session had before that invocation's first event on the head path
    (the initial state, then every earlier event's delta) against the stored state now.

    ADK's ``Runner.rewind_async`` computes this delta on the caller's copy, from its events'
    deltas alone, and sets every other key to ``None``: the state the session was created
    with (google/adk-python #4839, #4933), and the state written by events the copy does not
    hold (a ``GetSessionConfig`` window, ``?window=N``), was wiped by every rewind. Same rule
    otherwise: a key whose value differs goes back to it, a key the session did not have then
    becomes ``None``; ``user:``/``app:`` keys are not rewound. None when the head path has no
    event of ``invocation_id`` (the caller's delta then stands).
    """
    from .codec import loads
    from .state import split_delta

    r, e, ss = s.runs.c, s.events.c, s.sessions.c
    row = conn.execute(
        select(ss.initial_state, ss.state)
        .where(ss.app_name == app_name, ss.user_id == user_id, ss.id == session_id)
    ).first()
    if row is None:
        return None
    runs = conn.execute(
        select(r.status, r.first_seq)
        .where(r.app_name == app_name, r.user_id == user_id, r.session_id == session_id)
    ).all()
    state = loads(row.initial_state)
    for data, invocation in conn.execute(
        select(e.event_data, e.invocation_id)
        .where(e.app_name == app_name, e.user_id == user_id, e.session_id == session_id,
               e.on_path.is_(True), e.seq >= _kept_from(runs))
        .order_by(e.seq)
    ):
        if invocation == invocation_id:
            break
        for key, value in split_delta(
                (loads(data).get("actions") or {}).get("state_delta") or {}).session.items():
            if value is None:
                state.pop(key, None)
            else:
                state[key] = value
    else:
        return None
    now = loads(row.state)
    delta = {key: value for key, value in state.items() if key not in now or now[key] != value}
    delta.update({key: None for key in now if key not in state})
    return delta


def _runs_hint(parents: dict[str, tuple[str | None, str]]) -> str:
    """The session's latest runs, for an error message (a long session has hundreds)."""
    top = [k for k, (_, kind) in parents.items() if kind not in SUB_RUN_KINDS]
    if not top:
        return "It has no runs yet."
    shown = ", ".join(top[-5:])
    more = f" (and {len(top) - 5} earlier)" if len(top) > 5 else ""
    return (f"Its latest runs: {shown}{more}. `multi-agent runs --user U --session S` shows "
            "the tree.")


def fold_bookkeeping_runs(conn: Connection) -> int:
    """Schema 3: removes the runs earlier versions made of bookkeeping events; returns how many.

    Such a run is an ``invocation`` whose every event is a bookkeeping event
    (:func:`is_bookkeeping`; each compaction summary made one). Its events stay stored, under
    no run; the runs that continued from it continue from its parent, and a session whose head
    it was has its parent as head. One pass over the events' type column finds the candidates;
    only their events are decoded.
    """
    from .codec import loads

    r, e, ss = s.runs.c, s.events.c, s.sessions.c
    only_system = (
        select(e.app_name, e.user_id, e.session_id, e.run_id)
        .group_by(e.app_name, e.user_id, e.session_id, e.run_id)
        .having(func.sum(case((e.message_type == "system", 0), else_=1)) == 0)
        .subquery()
    )
    candidates = conn.execute(
        select(r.app_name, r.user_id, r.session_id, r.run_id).join(
            only_system,
            and_(
                r.app_name == only_system.c.app_name, r.user_id == only_system.c.user_id,
                r.session_id == only_system.c.session_id, r.run_id == only_system.c.run_id,
            ),
        ).where(r.kind == "invocation")
    ).all()
    phantoms: dict[tuple[str, str, str], set[str]] = {}
    for app_name, user_id, session_id, run_id in candidates:
        data = conn.execute(
            select(e.event_data).where(
                e.app_name == app_name, e.user_id == user_id, e.session_id == session_id,
                e.run_id == run_id,
            )
        ).scalars()
        if all(is_bookkeeping_data(loads(raw)) for raw in data):
            phantoms.setdefault((app_name, user_id, session_id), set()).add(run_id)
    for (app_name, user_id, session_id), gone in phantoms.items():
        key = and_(r.app_name == app_name, r.user_id == user_id, r.session_id == session_id)
        parents = dict(conn.execute(select(r.run_id, r.parent_run_id).where(key)).all())

        def resolve(
            run_id: str | None, gone: set[str] = gone, parents: dict = parents
        ) -> str | None:
            seen: set[str] = set()
            while run_id in gone and run_id not in seen:
                seen.add(run_id)
                run_id = parents.get(run_id)
            return run_id

        for run_id, parent in parents.items():
            if run_id not in gone and parent in gone:
                conn.execute(
                    s.runs.update().where(key, r.run_id == run_id)
                    .values(parent_run_id=resolve(parent))
                )
        where_session = and_(
            ss.app_name == app_name, ss.user_id == user_id, ss.id == session_id
        )
        head = conn.execute(select(ss.head_run_id).where(where_session)).scalar()
        if head in gone:
            conn.execute(
                s.sessions.update().where(where_session).values(head_run_id=resolve(head))
            )
        ordered = sorted(gone)
        for lo in range(0, len(ordered), 500):
            conn.execute(s.runs.delete().where(key, r.run_id.in_(ordered[lo:lo + 500])))
    return sum(len(gone) for gone in phantoms.values())


RUN_STATUSES = ("running", "completed", "failed", "cancelled")


def set_run_status(
    conn: Connection, *, app_name: str, user_id: str, session_id: str, run_id: str,
    status: str, error: str | None,
) -> bool:
    """Records an explicit status; False when the session has no such run."""
    r = s.runs.c
    result = conn.execute(
        s.runs.update()
        .where(
            r.app_name == app_name, r.user_id == user_id, r.session_id == session_id,
            r.run_id == run_id,
        )
        .values(status=status, error=error)
    )
    return bool(result.rowcount)


STOP_REQUESTED = "a stop was asked for from another process"
"""``request_stop``'s mark, in the error of a run whose outcome is not recorded yet."""


def request_stop(conn: Connection, *, app_name: str, user_id: str, session_id: str,
                 run_id: str) -> bool:
    """Marks a run whose outcome is not recorded as to be stopped (``stop_requested``); its
    status stays derived (running while it is the head and unanswered). False: no such run,
    or its outcome is recorded."""
    r = s.runs.c
    result = conn.execute(
        s.runs.update()
        .where(r.app_name == app_name, r.user_id == user_id, r.session_id == session_id,
               r.run_id == run_id, r.status.is_(None))
        .values(error=STOP_REQUESTED)
    )
    return bool(result.rowcount)


def stop_requested(conn: Connection, *, app_name: str, user_id: str, session_id: str,
                   run_id: str) -> bool:
    """Whether ``request_stop`` marked the run (one row read by its key)."""
    r = s.runs.c
    error = conn.execute(
        select(r.error).where(r.app_name == app_name, r.user_id == user_id,
                              r.session_id == session_id, r.run_id == run_id,
                              r.status.is_(None))
    ).scalar()
    return error == STOP_REQUESTED


def add_sub_run(
    conn: Connection, *, app_name: str, user_id: str, session_id: str, run_id: str,
    parent_run_id: str, kind: str, agent: str | None, started_at: float,
) -> bool:
    """Records a sub-run (e.g. an AgentTool call) under ``parent_run_id``; False if it exists.

    Its first_seq is the session's newest event (the tool call that started it).
    """
    from ..errors import RunNotFound, SessionNotFound

    r, ss = s.runs.c, s.sessions.c
    last_seq = conn.execute(
        select(ss.last_seq).where(
            ss.app_name == app_name, ss.user_id == user_id, ss.id == session_id
        )
    ).scalar()
    if last_seq is None:
        raise SessionNotFound(app_name, user_id, session_id)
    key = and_(r.app_name == app_name, r.user_id == user_id, r.session_id == session_id)
    if conn.execute(select(r.run_id).where(key, r.run_id == parent_run_id)).first() is None:
        raise RunNotFound(f"Session {session_id!r} has no run {parent_run_id!r}.")
    if conn.execute(select(r.run_id).where(key, r.run_id == run_id)).first() is not None:
        return False
    conn.execute(
        s.runs.insert().values(
            app_name=app_name, user_id=user_id, session_id=session_id, run_id=run_id,
            parent_run_id=parent_run_id, kind=kind, agent=agent, started_at=started_at,
            first_seq=last_seq, status="running", on_path=True,
        )
    )
    return True
