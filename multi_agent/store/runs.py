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

from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import and_, func, select
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

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def list_runs(conn: Connection, *, app_name: str, user_id: str, session_id: str) -> list[RunInfo]:
    """The session's runs in the order they started, with their derived figures."""
    r, e, ss = s.runs.c, s.events.c, s.sessions.c
    head = conn.execute(
        select(ss.head_run_id).where(
            ss.app_name == app_name, ss.user_id == user_id, ss.id == session_id
        )
    ).scalar()
    stats = (
        select(
            e.run_id,
            func.count().label("n"),
            func.max(e.timestamp).label("ended_at"),
            func.max(e.seq).label("last_seq"),
            func.coalesce(func.sum(e.prompt_tokens), 0).label("pt"),
            func.coalesce(func.sum(e.completion_tokens), 0).label("ct"),
            func.coalesce(func.sum(e.total_tokens), 0).label("tt"),
        )
        .where(e.app_name == app_name, e.user_id == user_id, e.session_id == session_id)
        .group_by(e.run_id)
        .subquery()
    )
    last_final = (
        select(e.final)
        .where(
            e.app_name == app_name, e.user_id == user_id, e.session_id == session_id,
            e.seq == stats.c.last_seq,
        )
        .scalar_subquery()
    )
    first_agent = (
        select(e.source)
        .where(
            e.app_name == app_name, e.user_id == user_id, e.session_id == session_id,
            e.run_id == r.run_id, e.source != "user",
        )
        .order_by(e.seq)
        .limit(1)
        .scalar_subquery()
    )
    rows = conn.execute(
        select(
            r.run_id, r.parent_run_id, r.kind, func.coalesce(r.agent, first_agent).label("agent"), r.status, r.error, r.started_at,
            r.first_seq, r.on_path, stats.c.n, stats.c.ended_at, stats.c.last_seq, stats.c.pt,
            stats.c.ct, stats.c.tt, last_final.label("last_final"),
        )
        .select_from(s.runs.outerjoin(stats, stats.c.run_id == r.run_id))
        .where(and_(r.app_name == app_name, r.user_id == user_id, r.session_id == session_id))
        .order_by(r.started_at, r.first_seq)
    ).all()
    out = []
    for row in rows:
        status, error = row.status, row.error
        if status is None:
            if row.last_final:
                status = "completed"
            elif row.run_id == head:
                status = "running"
            else:
                status = "failed"
                error = error or "ended without a final response (interrupted or crashed)"
        out.append(
            RunInfo(
                run_id=row.run_id, parent_run_id=row.parent_run_id, kind=row.kind,
                agent=row.agent, status=status, started_at=row.started_at,
                ended_at=row.ended_at, event_count=int(row.n or 0), first_seq=row.first_seq,
                last_seq=row.last_seq, prompt_tokens=int(row.pt or 0),
                completion_tokens=int(row.ct or 0), total_tokens=int(row.tt or 0),
                on_path=bool(row.on_path), error=error,
            )
        )
    return out
