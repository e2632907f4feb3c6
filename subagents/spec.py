"""What a sub-agent is, declared once: :class:`SubAgentSpec`.

Each ``subagents/<name>/definition.py`` holds one ``SPEC = SubAgentSpec(...)``; the registry
(``registry.py``, its ``SUBAGENTS`` list) hands the specs to the manager (its sub-agents and
the delegation lines of its instruction), to the state tools (the agent names they accept,
the words that name an agent's area) and to the offline model (the spec's rule sets).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from google.adk.agents.llm_agent import InstructionProvider, LlmAgent, ToolUnion
from google.adk.models.base_llm import BaseLlm
from multi_agent.team.state_tools.context import instruction_with_user_context
from multi_agent.team.state_tools.tools import record_turn, wrap

from multi_agent.models import rules

__all__ = ["SubAgentSpec"]


@dataclass(frozen=True)
class SubAgentSpec:
    """One sub-agent of the team.

    Attributes:
        name: the agent's name (``transfer_to_agent``'s target, the author of its events).
        description: what the manager (and ADK's transfer instruction) says the agent does.
        instruction: the agent's instruction; the user's profile is appended to it.
        tools: plain functions (each agent instance gets fresh ``FunctionTool`` s of them).
        delegate_when: the manager's instruction line, ``- <delegate_when> -> <name>``.
        topic_words: words naming the agent's whole area of conversation ("weather"): the
            historian's search finds every exchange of this agent by them.
        offline_rules: the offline model's rule sets for the agent (its intents and plans,
            ``multi_agent.models.rules.RuleSet``), with ``owner`` = ``name``.
        make_instruction: instead of ``instruction``: ``memory -> InstructionProvider``.
        make_tools: instead of ``tools``: ``memory -> tools`` (e.g. ADK's ``load_memory``
            only when the Runner has a memory service).
    """

    name: str
    description: str
    instruction: str = ""
    tools: Sequence[Callable[..., Any]] = ()
    delegate_when: str = ""
    topic_words: frozenset[str] = frozenset()
    offline_rules: tuple[rules.RuleSet, ...] = ()
    make_instruction: Callable[[bool], InstructionProvider] | None = field(default=None)
    make_tools: Callable[[bool], list[ToolUnion]] | None = field(default=None)

    def rule_sets(self) -> tuple[rules.RuleSet, ...]:
        """The offline model's rule sets of this agent, its topic words included."""
        words = (rules.RuleSet(self.name, area_words=self.topic_words),) if self.topic_words else ()
        return (*self.offline_rules, *words)

    def build(self, model: str | BaseLlm, *, memory: bool = True) -> LlmAgent:
        """A new agent running on ``model`` (its offline rules registered first).

        Args:
            model: a ``BaseLlm`` or a model name.
            memory: whether the Runner has a memory service (``make_tools`` and
                ``make_instruction`` may use it).
        """
        rules.register(*self.rule_sets())
        instruction = (
            self.make_instruction(memory) if self.make_instruction is not None
            else instruction_with_user_context(self.instruction)
        )
        tools = self.make_tools(memory) if self.make_tools is not None else wrap(*self.tools)
        return LlmAgent(
            name=self.name,
            model=model,
            description=self.description,
            instruction=instruction,
            tools=tools,
            after_agent_callback=record_turn,
            # Every turn starts at the manager, which records the delegation; a sub-agent
            # answers and hands the conversation back (ADK routes the next turn to the root).
            disallow_transfer_to_parent=True,
            disallow_transfer_to_peers=True,
        )
