"""multi-agent: a persistent multi-agent assistant on Google ADK, and its session store.

The store is importable on its own::

    from multi_agent import DatabaseSessionService
    service = DatabaseSessionService("sqlite+aiosqlite:///./multi_agent_data.db")

``build_runner`` (the agent team on that store) is imported lazily so that using the store does
not load the agents.

Importing the package also registers the built-in offline rules model with ADK's
``LLMRegistry`` (lazily: no agents or rule tables are loaded), so
``LlmAgent(model="offline-rules")`` works in your own agents after ``import multi_agent``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .errors import (
    DatabaseUnavailableError,
    EventIdConflict,
    InvalidIdError,
    MultiAgentError,
    SchemaVersionError,
    SessionAlreadyExists,
    SessionNotFound,
    StaleSession,
    StateNotSerializableError,
    StoreError,
)
from .models import _registry as _offline_model  # noqa: F401  (registers "offline-rules")
from .store import DEFAULT_DB_URL, DatabaseSessionService, StateUpdates

if TYPE_CHECKING:
    from .app import build_runner

__all__ = [
    "DEFAULT_DB_URL",
    "DatabaseSessionService",
    "DatabaseUnavailableError",
    "EventIdConflict",
    "InvalidIdError",
    "MultiAgentError",
    "SchemaVersionError",
    "SessionAlreadyExists",
    "SessionNotFound",
    "StaleSession",
    "StateNotSerializableError",
    "StateUpdates",
    "StoreError",
    "build_runner",
]

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    if name == "build_runner":
        from .app import build_runner

        return build_runner
    raise AttributeError(f"module 'multi_agent' has no attribute {name!r}")
