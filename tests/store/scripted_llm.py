"""A tiny scripted model for the store's Runner tests (the Runner and agents are ADK's own).

The agent team's real offline model lives in ``multi_agent.models``; the store's tests use this
one so that they exercise the store alone: the coordinator transfers to the worker, the worker
calls a tool that writes session, ``user:`` and ``temp:`` state, then answers with text.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator

from google.adk.agents.llm_agent import LlmAgent
from google.adk.models.base_llm import BaseLlm
from google.adk.models.llm_request import LlmRequest
from google.adk.models.llm_response import LlmResponse
from google.adk.tools.tool_context import ToolContext
from google.genai import types


class ScriptedLlm(BaseLlm):
    """Coordinator: transfer to the worker. Worker: call record_note once, then reply."""

    model: str = "scripted"

    async def generate_content_async(
        self, llm_request: LlmRequest, stream: bool = False
    ) -> AsyncGenerator[LlmResponse, None]:
        tools = llm_request.tools_dict or {}
        last = llm_request.contents[-1] if llm_request.contents else None
        last_part = last.parts[0] if last and last.parts else None
        usage = types.GenerateContentResponseUsageMetadata(
            prompt_token_count=10, candidates_token_count=5, total_token_count=15
        )
        if "record_note" not in tools:
            part = types.Part(
                function_call=types.FunctionCall(
                    name="transfer_to_agent", args={"agent_name": "worker"}
                )
            )
        elif last_part is not None and last_part.function_response is not None:
            part = types.Part(text="Noted.")
        else:
            part = types.Part(function_call=types.FunctionCall(name="record_note", args={}))
        yield LlmResponse(
            content=types.Content(role="model", parts=[part]), usage_metadata=usage
        )


def record_note(tool_context: ToolContext) -> dict:
    """Counts notes in session, user and temp state."""
    state = tool_context.state
    state["notes"] = state.get("notes", 0) + 1
    state["user:note_count"] = state.get("user:note_count", 0) + 1
    state["temp:scratch"] = "never stored"
    return {"notes": state["notes"]}


def build_agents() -> LlmAgent:
    llm = ScriptedLlm()
    worker = LlmAgent(name="worker", model=llm, tools=[record_note], instruction="Take notes.")
    return LlmAgent(
        name="coordinator", model=llm, sub_agents=[worker], instruction="Delegate to worker."
    )
