"""Long memory: search across past sessions, and a bounded context for the model.

* :class:`DatabaseMemoryService`: ADK's ``BaseMemoryService`` on the session store's database
  (SQLite FTS5 or PostgreSQL full-text search), scoped to app and user, plus
  ``recent_user_events`` across a user's sessions in one statement; optional semantic and
  hybrid search with a bundled sentence-embedding model (:mod:`.embeddings`).
* :mod:`multi_agent.memory.context`: a ``RunConfig`` that loads only a window of recent events,
  an events-compaction config with an extractive (LLM-free) summariser, and the window rules
  that keep tool calls with their results and delegations whole.
"""

from __future__ import annotations

from .context import (
    BoundedContext,
    BoundedContextPlugin,
    RememberTurnsPlugin,
    bounded_run_config,
    events_compaction_config,
)
from .embeddings import (
    Embedder,
    MemoryConfigError,
    MiniLMEmbedder,
    SemanticSearchUnavailable,
    default_embedder,
)
from .query import query_terms
from .service import DEFAULT_MAX_RESULTS, SEARCH_ENV, DatabaseMemoryService, SearchMode
from .summarizer import ExtractiveSummarizer
from .window import safe_window_start, trim_window

__all__ = [
    "DEFAULT_MAX_RESULTS",
    "SEARCH_ENV",
    "BoundedContext",
    "BoundedContextPlugin",
    "DatabaseMemoryService",
    "Embedder",
    "ExtractiveSummarizer",
    "MemoryConfigError",
    "MiniLMEmbedder",
    "RememberTurnsPlugin",
    "SearchMode",
    "SemanticSearchUnavailable",
    "bounded_run_config",
    "default_embedder",
    "events_compaction_config",
    "query_terms",
    "safe_window_start",
    "trim_window",
]
