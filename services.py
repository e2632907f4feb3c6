"""ADK loads this file from the agents directory (``adk web .`` / ``adk api_server .``).

It registers the ``multi-agent://``, ``multi-agent+sqlite://`` and ``multi-agent+postgresql://``
session-service URI schemes; see ``multi_agent/services.py``.
"""

import multi_agent.services  # noqa: F401  (registers the schemes on import)
