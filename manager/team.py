"""The manager: the root agent. It understands the request and delegates to a sub-agent.

``build_agent_tree(model)`` builds a fresh manager with fresh sub-agents (an ADK agent can
have only one parent, so every Runner gets its own tree). ``root_agent`` is that tree on the
configured model (``$MULTI_AGENT_MODEL``, else the offline model), built on first access,
for ``adk web`` / ``adk run``.
"""

from __future__ import annotations

from google.adk.agents.llm_agent import LlmAgent
from google.adk.models.base_llm import BaseLlm
from multi_agent.team.state_tools.context import instruction_with_user_context
from multi_agent.team.state_tools.tools import ALL_STATE_TOOLS, record_turn, wrap
from multi_agent.team.subagents import registry

from multi_agent.models.select import lazy_root_agent

__all__ = ["DESCRIPTION", "NAME", "build_agent_tree", "instruction", "root_agent"]

NAME = "manager"
DESCRIPTION = "Understands the user's request and delegates it to the right team member."
INSTRUCTION = """
You are the manager of a small team of assistant agents talking with one user. Work out what
the user wants, then either delegate it or handle it yourself.

Delegate:
{delegations}

To delegate, ALWAYS take two steps: first call track_agent_delegation with the agent's name
and a short description of the task, then call transfer_to_agent with the same agent name.
Do not answer delegated requests yourself.

Handle yourself, with your tools: the user's name (set_user_name), their profile
(get_user_profile), favourite agent (set_favorite_agent), preferences
(update_user_preferences, add_joke_preference) and usage statistics
(get_agent_performance_stats). Greet the user by name when you know it and introduce the
team briefly when asked what you can do. When the user mentions a preference in passing
("I love chemistry"), record it.

If a tool returns status "error", tell the user what was wrong in plain words. Never invent
facts, and never state a stock price yourself.
"""


def instruction() -> str:
    """The manager's instruction, with a "Delegate:" line for each sub-agent of the registry
    (``SubAgentSpec.delegate_when``)."""
    lines = [f"- {spec.delegate_when or spec.description} -> {spec.name}"
             for spec in registry.specs()]
    return INSTRUCTION.replace("{delegations}", "\n".join(lines))


def build_agent_tree(model: str | BaseLlm, *, memory: bool = True) -> LlmAgent:
    """A new manager agent with a new instance of each sub-agent of the registry
    (``subagents/registry.py``: funny_nerd, stock_analyst, historian).

    Args:
        model: the model every agent runs on: a ``BaseLlm`` instance or a model name ADK
            resolves (see ``multi_agent.models.resolve_model``).
        memory: give the historian ADK's ``load_memory`` tool (the Runner should then have a
            memory service; ``adk web`` / ``adk run`` always provide one).

    Long memory is recalled on demand by the historian (``load_memory``), not preloaded into
    every manager request (ADK's ``PreloadMemoryTool``): preloading runs a search on every
    model call of the manager and sends up to ``max_results`` memories with each of them,
    which would undo the bounded context for turns that have nothing to do with the past; a
    tool call is also a result the offline model can read and quote honestly.

    Returns:
        The manager (root) agent.
    """
    return LlmAgent(
        name=NAME,
        model=model,
        description=DESCRIPTION,
        instruction=instruction_with_user_context(instruction()),
        tools=wrap(*ALL_STATE_TOOLS),
        sub_agents=[spec.build(model, memory=memory) for spec in registry.specs()],
        after_agent_callback=record_turn,
    )


root_agent: LlmAgent  # built on first access, by __getattr__ below


__getattr__ = lazy_root_agent(build_agent_tree, globals())
