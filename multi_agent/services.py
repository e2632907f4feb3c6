"""Plugs the store into ADK's CLI: ``adk web`` / ``adk api_server`` / ``adk run``.

ADK loads ``services.py`` from the agents directory (``adk web``/``api_server``) or from the
agent's own folder (``adk run``); this repository has one in both places that imports this
module. Importing it registers three URI schemes with ADK's service registry:

==========================================  ==================================================
``--session_service_uri``                   store
==========================================  ==================================================
``multi-agent://``                          SQLite file ``multi_agent_data.db`` in the agents dir
``multi-agent+sqlite:////abs/path.db``      SQLite file (3 slashes: relative to the cwd)
``multi-agent+postgresql://u:pw@host/db``   PostgreSQL through asyncpg
==========================================  ==================================================

The same schemes work for ``--memory_service_uri`` (our full-text ``DatabaseMemoryService``,
on the same database file).

Example::

    adk web --session_service_uri multi-agent:// --memory_service_uri multi-agent:// .
"""

from __future__ import annotations

import os
from typing import Any

from .store import DatabaseSessionService

__all__ = ["SCHEMES", "memory_service_from_uri", "register", "session_service_from_uri"]

SCHEMES = ("multi-agent", "multi-agent+sqlite", "multi-agent+postgresql")


def database_url(uri: str, **kwargs: Any) -> str:
    """The SQLAlchemy URL behind one of our :data:`SCHEMES`.

    Raises:
        ValueError: the URI does not use one of our schemes.
    """
    scheme, sep, rest = uri.partition("://")
    if not sep or scheme not in SCHEMES:
        raise ValueError(f"{uri!r} does not use one of the schemes {', '.join(SCHEMES)}.")
    if scheme == "multi-agent":
        base = kwargs.get("agents_dir") or os.getcwd()
        path = rest or os.path.join(os.path.abspath(base), "multi_agent_data.db")
        return f"sqlite+aiosqlite:///{path}"
    if scheme == "multi-agent+sqlite":
        return f"sqlite+aiosqlite://{rest}"
    return f"postgresql+asyncpg://{rest}"


def session_service_from_uri(uri: str, **kwargs: Any) -> DatabaseSessionService:
    """Builds our session service from one of :data:`SCHEMES`."""
    return DatabaseSessionService(database_url(uri, **kwargs))


def memory_service_from_uri(uri: str, **kwargs: Any) -> Any:
    """Builds our full-text memory service from one of :data:`SCHEMES`."""
    from .memory import DatabaseMemoryService

    return DatabaseMemoryService(database_url(uri, **kwargs))


def register(registry: Any | None = None) -> None:
    """Registers :data:`SCHEMES` with ADK's service registry (idempotent)."""
    if registry is None:
        from google.adk.cli.service_registry import get_service_registry

        registry = get_service_registry()
    for scheme in SCHEMES:
        registry.register_session_service(scheme, session_service_from_uri)
        registry.register_memory_service(scheme, memory_service_from_uri)


register()
