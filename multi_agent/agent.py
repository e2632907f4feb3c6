"""The agent team as an ADK agent folder: ``adk web .`` from the repository lists ``multi_agent``.

Under that name ``adk web`` / ``adk api_server`` use the same app name as ``multi-agent chat``,
so with ``--session_service_uri multi-agent://`` they share one database and one memory of the
user. The model is chosen as everywhere else (``$MULTI_AGENT_MODEL``, default offline rules).
"""

from manager.agent import root_agent

__all__ = ["root_agent"]
