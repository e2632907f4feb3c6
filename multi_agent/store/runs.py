"""Runs: one per invocation, a tree through ``parent_run_id``; what they did, from their events.

A run's row is written when its first event is appended (its parent is the run the session's
head was at). Its end time, event count, token usage and status are derived from its events
when asked, so appends never rewrite run rows. Status:

* the status recorded explicitly (e.g. ``cancelled``), if any;
* ``completed`` when its last event is an agent's final response;
* ``running`` when it is the session's head and has not answered yet;
* ``failed`` otherwise: a later run started (or the process died) before it answered.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import and_, select
from sqlalchemy.engine import Connection

from . import schema as s

__all__ = ["RunInfo", "list_runs"]


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
            e.seq, e.run_id, e.source, e.timestamp, e.final, e.prompt_tokens,
            e.completion_tokens, e.total_tokens,
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
        if status is None and run.kind == "delegation" and not answered and (
            explicit.get(run.parent_run_id or "") == "cancelled"
        ):
            status, error = "cancelled", "its run was cancelled"
        if status is None:
            if run.kind == "rewind" or (mine and mine[-1].final) or (
                run.kind == "delegation" and answered
            ):
                status = "completed"
            elif run.run_id == head or (run.kind == "delegation" and run.parent_run_id == head):
                status = "running"
            else:
                status = "failed"
                error = error or "ended without a final response (interrupted or crashed)"
        agent = run.agent or next((ev.source for ev in mine if ev.source != "user"), None)
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
    conn: Connection, locks_rows: bool, *, app_name: str, user_id: str, session_id: str,
    from_run_id: str,
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
    stmt = select(ss.initial_state, ss.revision).where(where_session)
    if locks_rows:
        stmt = stmt.with_for_update()
    row = conn.execute(stmt).first()
    if row is None:
        raise SessionNotFound(app_name, user_id, session_id)
    key = and_(r.app_name == app_name, r.user_id == user_id, r.session_id == session_id)
    parents = {
        run.run_id: (run.parent_run_id, run.kind)
        for run in conn.execute(select(r.run_id, r.parent_run_id, r.kind).where(key))
    }
    if from_run_id not in parents or parents[from_run_id][1] == "delegation":
        known = ", ".join(k for k, (_, kind) in parents.items() if kind != "delegation")
        raise RunNotFound(
            f"Session {session_id!r} has no run {from_run_id!r}. Its runs: {known or 'none'}. "
            "`multi-agent runs --user U --session S` shows the tree."
        )
    path: list[str] = []
    cursor: str | None = from_run_id
    while cursor is not None and cursor not in path:
        path.append(cursor)
        cursor = parents[cursor][0]
    # Delegation sub-runs follow their invocation.
    on_path = set(path) | {
        run_id for run_id, (parent, kind) in parents.items() if kind == "delegation"
        and parent in path
    }
    ekey = and_(e.app_name == app_name, e.user_id == user_id, e.session_id == session_id)
    conn.execute(s.runs.update().where(key).values(on_path=r.run_id.in_(on_path)))
    conn.execute(s.events.update().where(ekey).values(on_path=e.run_id.in_(path)))
    # Session-scope state at the end of the run: the initial state plus the path's deltas.
    state = loads(row.initial_state)
    last_agent = None
    for data, source in conn.execute(
        select(e.event_data, e.source).where(ekey, e.on_path.is_(True)).order_by(e.seq)
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
