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

The same schemes work for ``--memory_service_uri`` (our ``DatabaseMemoryService``, on the
same database file): full-text search, or with ``?search=hybrid`` / ``?search=semantic``
semantic search with the bundled sentence-embedding model (the ``[semantic]`` extra; the
environment variable ``MULTI_AGENT_MEMORY_SEARCH`` does the same).

Example::

    adk web --session_service_uri multi-agent:// --memory_service_uri multi-agent:// .
    adk web --session_service_uri multi-agent:// \
        --memory_service_uri 'multi-agent://?search=hybrid' .
"""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import parse_qsl, urlencode

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
    """Builds our memory service from one of :data:`SCHEMES`; a ``search`` query parameter
    (``fulltext``, ``semantic``, ``hybrid``) picks the search mode.

    Raises:
        ValueError: not one of our schemes, or an unknown search mode.
    """
    from .memory import DatabaseMemoryService

    base, _, query = uri.partition("?")
    params = parse_qsl(query, keep_blank_values=True)
    search = [v for k, v in params if k == "search"]
    rest = urlencode([(k, v) for k, v in params if k != "search"])
    url = database_url(base + ("?" + rest if rest else ""), **kwargs)
    return DatabaseMemoryService(url, search=search[-1] if search else None)


def register(registry: Any | None = None) -> None:
    """Registers :data:`SCHEMES` with ADK's service registry (idempotent)."""
    if registry is None:
        from google.adk.cli.service_registry import get_service_registry

        registry = get_service_registry()
    for scheme in SCHEMES:
        registry.register_session_service(scheme, session_service_from_uri)
        registry.register_memory_service(scheme, memory_service_from_uri)


register()
