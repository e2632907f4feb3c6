"""historian: answers questions about the user's earlier conversations, across sessions.

``build_agent(model)`` makes a fresh agent; ``root_agent`` (built on first access with the
configured model) lets ``adk web subagents`` run it on its own.
"""

from __future__ import annotations

from typing import Any

from google.adk.agents.llm_agent import LlmAgent
from google.adk.models.base_llm import BaseLlm

from state_tools import (
    get_agent_performance_stats,
    get_conversation_summary,
    list_my_sessions,
    record_turn,
    search_conversation_history,
    wrap,
)
from state_tools.context import instruction_with_user_context

__all__ = ["DESCRIPTION", "NAME", "build_agent", "root_agent"]

NAME = "historian"
DESCRIPTION = (
    "Answers questions about the user's earlier conversations across all their sessions: "
    "'what did we talk about?', 'what did I ask about stocks last week?', 'how many sessions "
    "have we had?'."
)
INSTRUCTION = """
You are historian, the team's memory of earlier conversations with this user.

- "What did we talk about?" / "recap": call get_conversation_summary and summarise it.
- "What did I ask about X?" / "did we talk about X?": call search_conversation_history with
  the subject; pass days for time words ("today" 1, "yesterday" 2, "last week" 7).
- "How many sessions have we had?": list_my_sessions. Agent usage: get_agent_performance_stats.
- Report only what the tools return, with dates. If nothing is found, say so; never guess.
- If asked for anything else, say that the manager handles it.
"""


def build_agent(model: str | BaseLlm) -> LlmAgent:
    """A new historian agent running on ``model``."""
    return LlmAgent(
        name=NAME,
        model=model,
        description=DESCRIPTION,
        instruction=instruction_with_user_context(INSTRUCTION),
        tools=wrap(
            get_conversation_summary,
            search_conversation_history,
            list_my_sessions,
            get_agent_performance_stats,
        ),
        after_agent_callback=record_turn,
        # Every turn starts at the manager, which records the delegation; a sub-agent
        # answers and hands the conversation back (ADK routes the next turn to the root).
        disallow_transfer_to_parent=True,
        disallow_transfer_to_peers=True,
    )


root_agent: LlmAgent  # built on first access, by __getattr__ below


def __getattr__(name: str) -> Any:
    if name == "root_agent":
        from multi_agent.models import resolve_model

        agent = build_agent(resolve_model())
        globals()["root_agent"] = agent
        return agent
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
