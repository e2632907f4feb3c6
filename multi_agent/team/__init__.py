"""The agent team: a manager delegating to three sub-agents, with tools that keep the user's state.

Installed (the ``multi-agent-team`` distribution), the team's code sits under this package:
``multi_agent.team.manager``, ``multi_agent.team.subagents``, ``multi_agent.team.state_tools``,
so the wheel adds no generic top-level import names. In the repository the same code lives in the
top-level folders ``manager/``, ``subagents/`` and ``state_tools/``; this package then also looks
for its sub-packages there. The store (``multi_agent`` without ``team``) never imports the team.
"""

from __future__ import annotations

from pathlib import Path

_FOLDERS = ("manager", "subagents", "state_tools")
_here = Path(__file__).resolve().parent
_repository = _here.parent.parent
if not (_here / "manager").is_dir() and all((_repository / f).is_dir() for f in _FOLDERS):
    __path__.append(str(_repository))  # noqa: F821  (a package's search path)

from .. import __version__  # noqa: E402  (one release: the team is built with its store)

__all__ = ["__version__"]
