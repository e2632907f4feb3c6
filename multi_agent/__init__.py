"""The session store (distribution ``adk-lossless-sessions``) and, when ``multi-agent-team`` is
installed too, the agent team in :mod:`multi_agent.team`.

The store::

    from multi_agent import DatabaseSessionService
    service = DatabaseSessionService("sqlite+aiosqlite:///./multi_agent_data.db")

``build_runner`` (the team on that store) is imported on first use, so using the store does not
load the agents.

Importing the package also registers, with ADK:

* the built-in offline rules model in ``LLMRegistry`` (lazily: no rule tables are loaded), so
  ``LlmAgent(model="offline-rules")`` works in your own agents after ``import multi_agent``;
* the ``multi-agent://`` session/memory service URI schemes (:mod:`multi_agent.services`), so
  ``adk run --session_service_uri multi-agent:// my_agent`` works when ``my_agent`` imports
  the package (``adk web``/``api_server`` create their services before loading any agent: they
  need ``import multi_agent`` in the agents folder's ``services.py``).
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

# Last on purpose (it needs the names above), hence the file-wide exemption from import sorting:
# ruff: noqa: I001
from . import services as _services  # noqa: E402, F401  (registers the URI schemes)

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


# Provided by the agent team (the multi-agent-team distribution), imported on first use.
_TEAM_ATTRIBUTES = {"build_runner": "multi_agent.team.app"}


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
