"""The historian agent: ``definition.py`` builds it. ``root_agent`` (one instance, built on first
access) lets ADK's loader run it on its own, e.g. ``adk api_server subagents``."""

from __future__ import annotations

from typing import Any

from .definition import build_agent

__all__ = ["build_agent", "root_agent"]


def __getattr__(name: str) -> Any:
    if name == "root_agent":
        from . import definition

        return definition.root_agent
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
