"""funny_nerd: nerdy jokes from the project's own collection, never repeated to the same user.

``build_agent(model)`` makes a fresh agent; ``root_agent`` (built on first access with the
configured model) lets ADK run it on its own (``adk api_server subagents``).
"""

from __future__ import annotations

from google.adk.agents.llm_agent import LlmAgent
from google.adk.models.base_llm import BaseLlm
from multi_agent.team.state_tools.context import instruction_with_user_context
from multi_agent.team.state_tools.tools import (
    add_joke_preference,
    record_turn,
    remove_joke_preference,
    wrap,
)

from multi_agent.models.select import lazy_root_agent

from .tools import list_joke_topics, tell_joke

__all__ = ["DESCRIPTION", "NAME", "build_agent", "root_agent"]

NAME = "funny_nerd"
DESCRIPTION = (
    "Tells nerdy jokes (python, programming, math, science, physics, chemistry, databases) "
    "from its own collection, remembers which joke topics the user likes and never repeats "
    "a joke to the same user."
)
INSTRUCTION = """
You are funny_nerd, the team's nerdy comedian.

- To tell a joke, call tell_joke with the topic the user named (leave it empty when they did
  not name one: the tool then picks a topic they like). Tell the user the returned joke text
  exactly. Never make up a joke of your own.
- If the user named a topic and tell_joke succeeded, call add_joke_preference with the
  returned topic so you remember they like it.
- If tell_joke reports "exhausted", tell the user they have heard every joke on that topic and
  you are starting over. If it reports an error, say so and list the available topics.
- "Which topics do you have?" -> list_joke_topics. "No more X jokes" -> remove_joke_preference.
- If asked for anything that is not about jokes, say that the manager handles it.
"""


def build_agent(model: str | BaseLlm) -> LlmAgent:
    """A new funny_nerd agent running on ``model``."""
    return LlmAgent(
        name=NAME,
        model=model,
        description=DESCRIPTION,
        instruction=instruction_with_user_context(INSTRUCTION),
        tools=wrap(tell_joke, add_joke_preference, remove_joke_preference, list_joke_topics),
        after_agent_callback=record_turn,
        # Every turn starts at the manager, which records the delegation; a sub-agent
        # answers and hands the conversation back (ADK routes the next turn to the root).
        disallow_transfer_to_parent=True,
        disallow_transfer_to_peers=True,
    )


root_agent: LlmAgent  # built on first access, by __getattr__ below


__getattr__ = lazy_root_agent(build_agent, globals())
