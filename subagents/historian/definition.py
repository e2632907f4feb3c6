"""historian: answers questions about the user's earlier conversations, across sessions.

``build_agent(model)`` makes a fresh agent; ``root_agent`` (built on first access with the
configured model) lets ADK run it on its own (``adk api_server subagents``).
"""

from __future__ import annotations

from collections.abc import Callable

from google.adk.agents.llm_agent import LlmAgent, ToolUnion
from google.adk.agents.readonly_context import ReadonlyContext
from google.adk.models.base_llm import BaseLlm
from multi_agent.team.state_tools.context import user_context
from multi_agent.team.state_tools.tools import (
    get_agent_performance_stats,
    get_conversation_summary,
    list_my_sessions,
    record_turn,
    search_conversation_history,
    wrap,
)

from multi_agent.models.select import lazy_root_agent

from .memory_tool import SafeLoadMemoryTool

__all__ = ["DESCRIPTION", "NAME", "build_agent", "root_agent"]

NAME = "historian"
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


def _instruction(text: str) -> Callable[[ReadonlyContext], str]:
    """The instruction, the user's profile, and the current session's id (to tell memories
    of this conversation from those of earlier ones)."""

    def provide(context: ReadonlyContext) -> str:
        session = f'The current session id is "{context.session.id}".'
        return f"{text.strip()}\n\n{user_context(context)}\n{session}"

    return provide


def build_agent(model: str | BaseLlm, *, memory: bool = True) -> LlmAgent:
    """A new historian agent running on ``model``.

    Args:
        model: a ``BaseLlm`` or a model name.
        memory: give it ADK's ``load_memory`` tool (long memory across sessions). The Runner
            then needs a memory service; without one the tool reports that memory is not
            available. Without it, the historian answers from the stored history only.
    """
    tools: list[ToolUnion] = [SafeLoadMemoryTool()] if memory else []
    tools += wrap(
        get_conversation_summary,
        search_conversation_history,
        list_my_sessions,
        get_agent_performance_stats,
    )
    return LlmAgent(
        name=NAME,
        model=model,
        description=DESCRIPTION,
        instruction=_instruction(INSTRUCTION if memory else _NO_MEMORY_INSTRUCTION),
        tools=tools,
        after_agent_callback=record_turn,
        # Every turn starts at the manager, which records the delegation; a sub-agent
        # answers and hands the conversation back (ADK routes the next turn to the root).
        disallow_transfer_to_parent=True,
        disallow_transfer_to_peers=True,
    )


root_agent: LlmAgent  # built on first access, by __getattr__ below


__getattr__ = lazy_root_agent(build_agent, globals())
