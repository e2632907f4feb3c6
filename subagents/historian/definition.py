"""historian: answers questions about the user's earlier conversations, across sessions."""

from __future__ import annotations

from collections.abc import Callable

from google.adk.agents.llm_agent import ToolUnion
from google.adk.agents.readonly_context import ReadonlyContext
from multi_agent.team.state_tools.context import user_context
from multi_agent.team.state_tools.tools import (
    get_agent_performance_stats,
    get_conversation_summary,
    list_my_sessions,
    search_conversation_history,
    wrap,
)
from multi_agent.team.subagents.spec import SubAgentSpec

from .memory_tool import SafeLoadMemoryTool

__all__ = ["SPEC", "build_agent"]

DESCRIPTION = (
    "Answers questions about the user's earlier conversations across all their sessions: "
    "'what did we talk about?', 'what did I ask about stocks last week?', 'how many sessions "
    "have we had?'."
)
INSTRUCTION = """
You are historian, the team's memory of earlier conversations with this user.

- "What did I say about X?" / "did we talk about X?" / "do you remember X?": call load_memory
  with the subject (e.g. "Nvidia"). It searches every message of every session of this user
  and returns memories, best match first, each with the text, who said it (author "user" is the
  person), a timestamp and custom_metadata.session_id. Quote what was said, with its date, and
  say whether it was in this session or another one. For a whole area ("stocks", "jokes") or a
  time window ("last week"), call search_conversation_history too (days: "today" 1,
  "yesterday" 2, "last week" 7). If neither finds anything, say plainly that you don't find
  anything about it; never guess.
- "What did we talk about?" / "recap": call get_conversation_summary and summarise it.
- "How many sessions have we had?": list_my_sessions. Agent usage: get_agent_performance_stats.
- Report only what the tools return, with dates.
- If asked for anything else, say that the manager handles it.
"""

_NO_MEMORY_INSTRUCTION = """
You are historian, the team's memory of earlier conversations with this user.

- "What did we talk about?" / "recap": call get_conversation_summary and summarise it.
- "What did I ask about X?" / "did we talk about X?": call search_conversation_history with
  the subject; pass days for time words ("today" 1, "yesterday" 2, "last week" 7).
- "How many sessions have we had?": list_my_sessions. Agent usage: get_agent_performance_stats.
- Report only what the tools return, with dates. If nothing is found, say so; never guess.
- If asked for anything else, say that the manager handles it.
"""


def _instruction(memory: bool) -> Callable[[ReadonlyContext], str]:
    """The instruction, the user's profile, and the current session's id (to tell memories
    of this conversation from those of earlier ones)."""
    text = INSTRUCTION if memory else _NO_MEMORY_INSTRUCTION

    def provide(context: ReadonlyContext) -> str:
        session = f'The current session id is "{context.session.id}".'
        return f"{text.strip()}\n\n{user_context(context)}\n{session}"

    return provide


def _tools(memory: bool) -> list[ToolUnion]:
    """ADK's ``load_memory`` (long memory across sessions) when the Runner has a memory
    service, and the tools reading the stored history."""
    tools: list[ToolUnion] = [SafeLoadMemoryTool()] if memory else []
    return tools + wrap(
        get_conversation_summary,
        search_conversation_history,
        list_my_sessions,
        get_agent_performance_stats,
    )


SPEC = SubAgentSpec(
    name="historian",
    description=DESCRIPTION,
    delegate_when=(
        "questions about earlier conversations, in this session or earlier ones (\"what did we "
        "talk\n  about?\", \"what did I ask about stocks?\", \"what did I say about Nvidia?\", "
        "\"do you remember\n  my trip?\"), which the historian looks up in the user's long memory"
    ),
    make_instruction=_instruction,
    make_tools=_tools,
    # Offline rules and area words: built in (multi_agent/models/team_rules.py).
)
build_agent = SPEC.build
"""A new historian agent; without ``memory`` (no memory service in the Runner) it answers from
the stored history only."""
