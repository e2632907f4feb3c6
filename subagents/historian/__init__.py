"""The historian agent (``definition.py``); ``root_agent``, built on first access, lets ADK's
loader run it on its own (``adk api_server subagents``)."""

from __future__ import annotations

from multi_agent.models.select import lazy_root_agent

from .definition import build_agent

__all__ = ["build_agent", "root_agent"]
__getattr__ = lazy_root_agent(build_agent, globals())
