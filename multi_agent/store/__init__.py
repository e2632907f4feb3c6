"""The session store: schema, codec, backend and the ADK session service built on them."""

from __future__ import annotations

from .plugin import RunTreePlugin
from .service import DEFAULT_DB_URL, DatabaseSessionService
from .updates import StateUpdates

__all__ = ["DEFAULT_DB_URL", "DatabaseSessionService", "RunTreePlugin", "StateUpdates"]
