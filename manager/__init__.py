"""The manager agent package (``agent.py`` defines ``root_agent`` for ``adk web``)."""

from __future__ import annotations

from . import agent

__all__ = ["agent"]
