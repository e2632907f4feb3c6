"""The memory tables: now the store's (``multi_agent.store.memory_tables``), importable here.

The memory holds no SQL of its own: its tables are part of the store's versioned schema and
every statement on them, with the full-text index of each database (``store/dialects/``), is
the store's. These names stay importable from here for code written against earlier versions.
"""

from __future__ import annotations

from ..store.memory_tables import (
    ADVISORY_LOCK,
    MAX_CONTEXT_CHARS,
    MAX_TEXT_CHARS,
    MEMORY_TABLES,
    ddl,
    forget_session,
    present_tables,
    scope_token,
    upgrade,
    watermark_columns,
)

__all__ = [
    "ADVISORY_LOCK",
    "MAX_CONTEXT_CHARS",
    "MAX_TEXT_CHARS",
    "MEMORY_TABLES",
    "ddl",
    "forget_session",
    "present_tables",
    "scope_token",
    "upgrade",
    "watermark_columns",
]
