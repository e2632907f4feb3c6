"""A user's recent messages across all their sessions, in one SQL statement.

ADK's ``BaseMemoryService`` has no way to read events across a user's sessions, so memory
services built on it end up calling ``list_sessions`` and then ``get_session`` for each session
(google/adk-python #5300): N+1 round trips that each load whole sessions. The memory service
here lives in the same database as the sessions and reads ``ma_events`` directly.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from sqlalchemy import select
from sqlalchemy.engine import Connection

from ..errors import InvalidValueError
from ..store import schema as s
from ..store.backend import Backend
from ..store.facts import MESSAGE_TYPES
from ..store.messages import Message

__all__ = ["MAX_RECENT", "MessageType", "recent_events"]

MessageType = Literal["human", "agent", "tool_call", "tool_result", "system"]

MAX_RECENT = 10_000
"""The most messages one ``recent_events`` call returns."""


async def recent_events(
    backend: Backend,
    *,
    app_name: str,
    user_id: str,
    limit: int,
    message_types: Sequence[str],
    exclude_session_id: str | None = None,
) -> list[Message]:
    """The newest ``limit`` messages of a user across sessions, newest first.

    Only events on each session's current history (``on_path``) are returned.

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
    e = s.events
    stmt = (
        select(
            e.c.session_id, e.c.seq, e.c.id, e.c.run_id, e.c.timestamp, e.c.source, e.c.target,
            e.c.branch, e.c.message_type, e.c.text, e.c.total_tokens,
        )
        .where(
            e.c.app_name == app_name,
            e.c.user_id == user_id,
            e.c.message_type.in_(types),
            e.c.on_path.is_(True),
        )
        .order_by(e.c.timestamp.desc(), e.c.seq.desc())
        .limit(limit)
    )
    if exclude_session_id is not None:
        stmt = stmt.where(e.c.session_id != exclude_session_id)

    def read(conn: Connection) -> list[Message]:
        return [
            Message(
                session_id=r.session_id, seq=r.seq, event_id=r.id, run_id=r.run_id,
                timestamp=r.timestamp, source=r.source, target=r.target, branch=r.branch,
                message_type=r.message_type, text=r.text, total_tokens=r.total_tokens,
            )
            for r in conn.execute(stmt)
        ]

    return await backend.run(read, write=False)
