"""The ADK agent folder's entry: ``adk web .`` / ``adk api_server .`` / ``adk run multi_agent``
in the repository load the team from here (app ``multi_agent``, the chat's app name).

Only in the repository and the team's installs: the store's wheel leaves this module out
(``multi_agent/setup.py``), since the store alone has no team to load.
"""

from multi_agent.team.adk_app import app, root_agent

__all__ = ["app", "root_agent"]
