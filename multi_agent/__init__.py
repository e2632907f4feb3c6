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

__version__ = "0.2.0"  # the one version source (both distributions read it)

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
    from .team.app import build_runner

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


# Provided by the agent team (the multi-agent-team distribution), imported on first use:
# ``app``/``root_agent`` make this package the ADK agent folder ``adk web .`` lists.
_TEAM_ATTRIBUTES = {
    "build_runner": "multi_agent.team.app",
    "app": "multi_agent.team.agent",
    "root_agent": "multi_agent.team.agent",
}


def __getattr__(name: str) -> Any:
    module_name = _TEAM_ATTRIBUTES.get(name)
    if module_name is None:
        raise AttributeError(f"module 'multi_agent' has no attribute {name!r}")
    import importlib

    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name):
            raise ModuleNotFoundError(
                f"multi_agent.{name} belongs to the agent team, which is not installed "
                "(this is the store alone): pip install multi-agent-team",
                name="multi_agent.team",
            ) from None
        raise
    return getattr(module, name)
