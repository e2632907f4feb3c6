"""A user's recent messages across all their sessions, in one SQL statement.

ADK's ``BaseMemoryService`` has no way to read events across a user's sessions, so memory
services built on it end up calling ``list_sessions`` and then ``get_session`` for each session
(google/adk-python #5300): N+1 round trips that each load whole sessions. The memory service
here lives in the same database as the sessions and asks the store for them
(``store.messages.recent_messages``, also ``DatabaseSessionService.recent_messages``).
"""

from __future__ import annotations

from typing import Any

from ..store.backend import Backend
from ..store.messages import MAX_RECENT, Message, MessageType, check_recent, recent_messages

__all__ = ["MAX_RECENT", "MessageType", "recent_events"]


async def recent_events(backend: Backend, **query: Any) -> list[Message]:
    """:func:`multi_agent.store.messages.recent_messages` (the same keyword arguments:
    ``app_name``, ``user_id``, ``limit``, ``message_types``, ``exclude_session_id``) in a read
    transaction of ``backend``; the arguments are checked before the transaction begins.

    Raises:
        InvalidValueError: ``limit`` outside 1..MAX_RECENT, or an unknown message type.
    """
    check_recent(limit=query["limit"], message_types=query["message_types"])
    return await backend.run(lambda conn: recent_messages(conn, **query), write=False)
