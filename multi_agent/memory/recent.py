"""A user's recent messages across all their sessions, in one SQL statement.

ADK's ``BaseMemoryService`` has no way to read events across a user's sessions, so memory
services built on it end up calling ``list_sessions`` and then ``get_session`` for each session
(google/adk-python #5300): N+1 round trips that each load whole sessions. The memory service
here lives in the same database as the sessions and asks the store for them
(``store.messages.recent_messages``, also ``DatabaseSessionService.recent_messages``).
"""

from __future__ import annotations

from collections.abc import Sequence

from ..store.backend import Backend
from ..store.messages import MAX_RECENT, Message, MessageType, check_recent, recent_messages

__all__ = ["MAX_RECENT", "MessageType", "recent_events"]


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
    check_recent(limit=limit, message_types=message_types)  # before a transaction is begun
    return await backend.run(
        lambda conn: recent_messages(
            conn, app_name=app_name, user_id=user_id, limit=limit,
            message_types=message_types, exclude_session_id=exclude_session_id,
        ),
        write=False,
    )
