"""Long memory: search across past sessions, and a bounded context for the model.

* :class:`DatabaseMemoryService`: ADK's ``BaseMemoryService`` on the session store's database
  (SQLite FTS5 or PostgreSQL full-text search), scoped to app and user, plus
  ``recent_user_events`` across a user's sessions in one statement.
* :mod:`multi_agent.memory.context`: a ``RunConfig`` that loads only a window of recent events,
  an events-compaction config with an extractive (LLM-free) summariser, and the window rules
  that keep tool calls with their results and delegations whole.
"""

from __future__ import annotations

from .query import query_terms
from .service import DEFAULT_MAX_RESULTS, DatabaseMemoryService

__all__ = ["DEFAULT_MAX_RESULTS", "DatabaseMemoryService", "query_terms"]
