"""Export: a session, its runs and every event as one version-1 document."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection

from .. import schema as s
from ..codec import (
    loads,
)
from .format import (
    _EVENT_COLUMNS,
    _EVENT_SPEC,
    _JSON_SESSION_COLUMNS,
    _RUN_COLUMNS,
    _RUN_SPEC,
    _SESSION_COLUMNS,
    _SESSION_SPEC,
    FORMAT,
    VERSION,
)

# --------------------------------------------------------------------------------------------
# export


def export_session(
    conn: Connection, *, app_name: str, user_id: str, session_id: str
) -> dict[str, Any] | None:
    """The session, its runs and all its events (every branch) as a version-1 document.

    Returns:
        The document, or ``None`` when there is no such session.
    """
    ss, r, e = s.sessions.c, s.runs.c, s.events.c
    row = conn.execute(
        select(*(ss[k] for k in _SESSION_COLUMNS)).where(
            ss.app_name == app_name, ss.user_id == user_id, ss.id == session_id
        )
    ).first()
    if row is None:
        return None
    session: dict[str, Any] = {"id": session_id}
    for key in _SESSION_COLUMNS:
        value = getattr(row, key)
        session[key] = loads(value) if key in _JSON_SESSION_COLUMNS else value
    runs = [
        _normalise(dict(run._mapping), _RUN_SPEC)
        for run in conn.execute(
            select(*(r[k] for k in _RUN_COLUMNS))
            .where(r.app_name == app_name, r.user_id == user_id, r.session_id == session_id)
            .order_by(r.first_seq, r.run_id)
        )
    ]
    events = []
    for ev in conn.execute(
        select(*(e[k] for k in _EVENT_COLUMNS), e.event_data)
        .where(e.app_name == app_name, e.user_id == user_id, e.session_id == session_id)
        .order_by(e.seq)
    ):
        item = _normalise({k: ev._mapping[k] for k in _EVENT_COLUMNS}, _EVENT_SPEC)
        item["event"] = loads(ev.event_data)
        events.append(item)
    return {
        "format": FORMAT,
        "version": VERSION,
        "app_name": app_name,
        "user_id": user_id,
        "session": _normalise(session, _SESSION_SPEC),
        "runs": runs,
        "events": events,
    }


def _normalise(record: dict[str, Any], spec: dict[str, tuple[str, bool]]) -> dict[str, Any]:
    """Same Python types from every database (SQLite may hand back 0/1 or ints for floats)."""
    for key, (kind, _) in spec.items():
        value = record.get(key)
        if value is None:
            continue
        if kind == "bool":
            record[key] = bool(value)
        elif kind in ("count", "tokens"):
            record[key] = int(value)
        elif kind == "num":
            record[key] = float(value)
    return record
