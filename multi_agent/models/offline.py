"""The built-in offline model: ADK ``BaseLlm`` that follows rules instead of a neural network.

It is registered in ADK's ``LLMRegistry`` for names matching ``offline-.*`` (the default is
``offline-rules``) as soon as ``multi_agent`` is imported (``_registry.py``; this module is only
loaded when such a model is first resolved), so ``LlmAgent(model="offline-rules")`` works like
any other model name.
It answers through ADK's normal flow: it emits real ``transfer_to_agent`` and tool function
calls, ADK runs them, stores their events and state changes, and calls the model again with
the results, exactly as with an LLM. Only the decisions are rules:

1. read the request (``_request.read_request``): agent name, the human's latest message,
   this agent's tool calls so far in the turn, its tools and transfer targets;
2. classify the message (``intents.classify``), which names the agent that handles it;
3. if this agent handles it, run the intent's plan (``rules.plans()``) one step at a time;
   if a sub-agent handles it, the manager first records the delegation with
   ``track_agent_delegation`` and then transfers; any other agent hands back to its parent;
4. say plainly when the message is not understood.

That is the team's path (:func:`is_team_agent`: the agent's tools are the team's). Any other
agent, say a user's ``LlmAgent(name="helper", model="offline-rules", tools=[get_weather])``,
is answered from its own tools instead (``generic.py``): the tool whose name, description and
parameters share words with the message is called with arguments read from it, and the answer
is what the tool returned. Both paths say plainly that this is rules, not an LLM, when they
introduce themselves or don't understand.
"""

from __future__ import annotations

import json
import math
from collections.abc import AsyncGenerator

from google.adk.models import LlmCapabilities
from google.adk.models.base_llm import BaseLlm
from google.adk.models.llm_request import LlmRequest
from google.adk.models.llm_response import LlmResponse
from google.adk.models.registry import LLMRegistry
from google.genai import types
from typing_extensions import override

from ..defaults import TRANSFER_TOOL
from . import _registry, rules
from ._request import RequestView, read_request
from .generic import decide_generic
from .intents import classify
from .plans import Call, Done, Say
from .replies import IDENTITY, NOT_UNDERSTOOD, examples_text

__all__ = [
    "OFFLINE_MODEL_NAME", "OfflineRulesModel", "decide", "is_team_agent", "team_agents",
    "team_tools",
]

OFFLINE_MODEL_NAME = _registry.OFFLINE_MODEL_NAME
DELEGATION_TOOL = "track_agent_delegation"
# A turn that has bounced between agents this often is stuck; stop and say so.
MAX_TRANSFERS_PER_TURN = 4
# Rough size of one token in characters, used only to fill in usage_metadata (see below).
CHARS_PER_TOKEN = 4


_INTRODUCTIONS = frozenset({"help", "greeting"})
# ADK's own tools, which say nothing about whose agent it is.
_ADK_TOOLS = frozenset({TRANSFER_TOOL, "load_memory", "preload_memory"})


def team_agents() -> frozenset[str]:
    """The agents the rule table routes to (the team's, and sub-agents registered since)."""
    return rules.owners()


def team_tools() -> frozenset[str]:
    """The tools the table's plans call; an agent whose own tools are all among these is the
    team's."""
    plans = rules.plans().values()
    return frozenset().union(*(plan.tools for plan in plans)) | {DELEGATION_TOOL}


def is_team_agent(view: RequestView) -> bool:
    """Whether ``view`` is one of the team's agents (manager, funny_nerd, stock_analyst,
    historian, alone or in the tree), which follow the team's phrase rules.

    An agent is the team's when all of its own tools (ADK's ``transfer_to_agent`` and
    ``load_memory`` aside) are the team's tools, or, having none, when it has a team agent's
    name and can only transfer to team agents. Anything else, including an agent that mixes
    the team's tools with its own, is a generic agent answered from its own tools.
    """
    own = view.tools - _ADK_TOOLS
    if own:
        return own <= team_tools()
    agents = team_agents()
    return view.agent_name in agents and set(view.transfer_targets) <= agents


def _transfer(target: str) -> Call:
    return Call(TRANSFER_TOOL, {"agent_name": target})


def _delegate(view: RequestView, owner: str) -> Call:
    """Manager: record the delegation first, then transfer."""
    done = Done(view.steps)
    if DELEGATION_TOOL in view.tools and not done.has(DELEGATION_TOOL):
        task = " ".join((view.human_text or "").split())[:300]
        return Call(DELEGATION_TOOL, {"agent_name": owner, "task": task})
    return _transfer(owner)


def _not_understood(view: RequestView) -> Say:
    return Say(NOT_UNDERSTOOD.format(
        text=(view.human_text or "")[:200], identity=IDENTITY, examples=examples_text()
    ))


def decide(view: RequestView) -> Call | Say:
    """The next action of the agent ``view`` describes: one tool call or the answer text."""
    if view.human_text is None:
        return Say("I didn't receive a message. Type 'help' to see what I can do.")
    if view.transfers_this_turn >= MAX_TRANSFERS_PER_TURN:
        return Say(
            "Sorry, I couldn't work out which agent should handle that. "
            "Type 'help' for examples of what I understand."
        )
    if not is_team_agent(view):
        return decide_generic(view)
    match = classify(view.human_text)
    if match is None:
        return _transfer(view.parent) if view.parent in view.transfer_targets else (
            _not_understood(view)
        )
    owner = match.intent.owner
    plan = rules.plans()[match.intent.name]
    standalone = owner != view.agent_name and owner not in view.transfer_targets
    if match.intent.name in _INTRODUCTIONS and standalone:
        # A sub-agent running on its own (adk web subagents): introduce itself, not the team.
        about = f": {view.description}" if view.description else "."
        return Say(f"I'm {view.agent_name or 'an agent'}{about} {IDENTITY}")
    can_run = plan.tools <= view.tools
    if can_run and (owner == view.agent_name or owner not in view.transfer_targets):
        return plan.run(
            match.args, Done(view.steps, tools=view.tools, session_id=view.session_id)
        )
    if owner in view.transfer_targets and owner != view.parent:
        return _delegate(view, owner)
    if view.parent and view.parent in view.transfer_targets:
        return _transfer(view.parent)
    return Say(
        f"I'm {view.agent_name or 'this agent'}, and that is a job for {owner}, which I can't "
        "reach from here. Ask the manager agent instead."
    )


def _estimate_tokens(chars: int) -> int:
    # An offline rules model has no tokenizer: these counts are ESTIMATES from character
    # counts (about 4 characters per token), filled in so that ADK's usage accounting and
    # the store's token columns have numbers and ADK does not warn about missing usage.
    return max(1, math.ceil(chars / CHARS_PER_TOKEN))


class OfflineRulesModel(BaseLlm):
    """Offline rules model (no network, no API key, not an LLM): the team's phrase rules for
    the team's agents, the agent's own tools for any other agent.

    Example:
        >>> LlmAgent(name="manager", model=OfflineRulesModel(), ...)
        >>> LlmAgent(name="manager", model="offline-rules", ...)  # via ADK's registry
    """

    model: str = OFFLINE_MODEL_NAME

    @classmethod
    @override
    def supported_models(cls) -> list[str]:
        return [r"offline-.*"]

    @property
    def display_label(self) -> str:
        """How banners name this model."""
        return f"{self.model} (built-in offline rules model, not an LLM)"

    @property
    @override
    def capabilities(self) -> LlmCapabilities:
        return LlmCapabilities(output_schema_and_tools=False)

    @override
    async def generate_content_async(
        self, llm_request: LlmRequest, stream: bool = False
    ) -> AsyncGenerator[LlmResponse, None]:
        view = read_request(llm_request)
        action = decide(view)
        if isinstance(action, Call):
            part = types.Part(
                function_call=types.FunctionCall(name=action.name, args=dict(action.args))
            )
            out_chars = len(action.name) + len(json.dumps(action.args, default=str))
        else:
            part = types.Part(text=action.text)
            out_chars = len(action.text)
        prompt = _estimate_tokens(view.prompt_chars)
        output = _estimate_tokens(out_chars)
        yield LlmResponse(
            content=types.Content(role="model", parts=[part]),
            partial=False,
            turn_complete=True,
            finish_reason=types.FinishReason.STOP,
            model_version=self.model,
            usage_metadata=types.GenerateContentResponseUsageMetadata(
                prompt_token_count=prompt,
                candidates_token_count=output,
                total_token_count=prompt + output,
            ),
        )


if not _registry.registered_lazily():  # else ADK resolves the lazy entry to this class itself
    LLMRegistry.register(OfflineRulesModel)
