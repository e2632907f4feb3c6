"""The team's ADK App, which ``multi_agent/agent.py`` hands to ADK's loader.

Under that name ``adk web`` / ``adk api_server`` use the same app name as ``multi-agent chat``,
so with ``--session_service_uri multi-agent://`` (and ``--memory_service_uri multi-agent://``)
they share one database and one memory of the user. ADK loads ``app`` (it prefers it to
``root_agent``), so its plugins apply there too: compaction with the extractive summariser and
adding each session to memory after a run. ADK's server loads whole sessions (it sets no
window). The model is chosen as everywhere else (``$MULTI_AGENT_MODEL``, default offline rules).
"""

from multi_agent.team.app import build_app

app = build_app()
root_agent = app.root_agent

__all__ = ["app", "root_agent"]
