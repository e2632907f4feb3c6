"""The FunctionTools agents call to read and write persistent state.

Each tool is a plain function whose docstring is what the model reads. ADK wraps plain
functions in ``FunctionTool`` automatically; ``tools_for`` returns wrapped ones for an agent.
State layout and conventions: see ``state_tools._common``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from google.adk.agents.llm_agent import ToolUnion
from google.adk.tools.function_tool import FunctionTool

from ._common import default_preferences, default_session_metadata, sub_agent_names
from .delegation import get_agent_performance_stats, set_favorite_agent, track_agent_delegation
from .history import get_conversation_summary, list_my_sessions, search_conversation_history
from .preferences import (
    add_joke_preference,
    get_user_profile,
    remove_joke_preference,
    set_user_name,
    update_user_preferences,
)
from .recorder import record_turn
from .watchlist import add_to_stock_watchlist, get_stock_watchlist, remove_from_stock_watchlist

__all__ = [
    "ALL_STATE_TOOLS",
    "add_joke_preference",
    "add_to_stock_watchlist",
    "default_preferences",
    "default_session_metadata",
    "get_agent_performance_stats",
    "get_conversation_summary",
    "get_stock_watchlist",
    "get_user_profile",
    "list_my_sessions",
    "record_turn",
    "remove_from_stock_watchlist",
    "remove_joke_preference",
    "search_conversation_history",
    "set_favorite_agent",
    "set_user_name",
    "sub_agent_names",
    "track_agent_delegation",
    "update_user_preferences",
    "wrap",
]

ALL_STATE_TOOLS: tuple[Callable[..., Any], ...] = (
    track_agent_delegation,
    update_user_preferences,
    add_to_stock_watchlist,
    add_joke_preference,
    get_conversation_summary,
    set_favorite_agent,
    get_agent_performance_stats,
    remove_from_stock_watchlist,
    get_stock_watchlist,
    remove_joke_preference,
    get_user_profile,
    set_user_name,
    search_conversation_history,
    list_my_sessions,
)


def wrap(*funcs: Callable[..., Any]) -> list[ToolUnion]:
    """Fresh ``FunctionTool`` instances for ``funcs`` (one set per agent instance)."""
    return [FunctionTool(func) for func in funcs]
