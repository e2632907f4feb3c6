"""The team's facts, stated once: the app name, the default database, ADK's own names.

Import them from here rather than restating the strings (the store, the memory and the state
tools do; ``multi_agent.team`` and ``multi_agent.cli`` may too).
"""

from __future__ import annotations

__all__ = ["APP_NAME", "DEFAULT_DB_FILE", "DEFAULT_DB_URL", "TRANSFER_TOOL"]

APP_NAME = "multi_agent"
"""The team's ADK app name: the ``app_name`` its sessions, state and memory are stored under."""

DEFAULT_DB_FILE = "multi_agent_data.db"
"""The SQLite file used when no database is given, in the working directory."""

DEFAULT_DB_URL = f"sqlite+aiosqlite:///./{DEFAULT_DB_FILE}"
"""The database URL used when none is given (``DatabaseSessionService()``)."""

TRANSFER_TOOL = "transfer_to_agent"
"""ADK's function name for handing the conversation to another agent."""
