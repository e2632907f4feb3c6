"""State tools called in parallel (one model response, several calls) lose no update."""

from __future__ import annotations

from collections.abc import AsyncGenerator

from google.adk.agents.llm_agent import LlmAgent
from google.adk.models.base_llm import BaseLlm
from google.adk.models.llm_request import LlmRequest
from google.adk.models.llm_response import LlmResponse
from google.adk.runners import Runner
from google.genai import types
from multi_agent.team.state_tools.tools import (
    add_joke_preference,
    add_to_stock_watchlist,
    track_agent_delegation,
    wrap,
)

from multi_agent import DatabaseSessionService
from multi_agent.team.app import user_message

USAGE = types.GenerateContentResponseUsageMetadata(
    prompt_token_count=1, candidates_token_count=1, total_token_count=2
)


class ParallelCalls(BaseLlm):
    """Answers the first request with several tool calls at once, then with text."""

    model: str = "parallel-test"

    async def generate_content_async(
        self, llm_request: LlmRequest, stream: bool = False
    ) -> AsyncGenerator[LlmResponse, None]:
        last = llm_request.contents[-1]
        if any(p.function_response for p in last.parts or []):
            parts = [types.Part(text="done")]
        else:
            calls = [("add_to_stock_watchlist", {"ticker": t}) for t in ["AAPL", "MSFT", "NVDA"]]
            calls += [("add_joke_preference", {"topic": t}) for t in ["math", "physics"]]
            calls += [("track_agent_delegation", {"agent_name": a, "task": "t"})
                      for a in ["historian", "historian", "funny_nerd"]]
            parts = [types.Part(function_call=types.FunctionCall(name=n, args=a))
                     for n, a in calls]
        yield LlmResponse(content=types.Content(role="model", parts=parts), usage_metadata=USAGE)


async def test_parallel_tool_calls_keep_every_change(team_db: str) -> None:
    agent = LlmAgent(
        name="worker", model=ParallelCalls(),
        tools=wrap(add_to_stock_watchlist, add_joke_preference, track_agent_delegation),
    )
    async with DatabaseSessionService(team_db) as store:
        runner = Runner(app_name="multi_agent", agent=agent, session_service=store)
        session = await store.create_session(app_name="multi_agent", user_id="u")
        async for _ in runner.run_async(user_id="u", session_id=session.id,
                                        new_message=user_message("go")):
            pass
        await runner.close()
        state = (await store.get_session(app_name="multi_agent", user_id="u",
                                         session_id=session.id)).state
    assert state["user:preferences"]["stock_watchlist"] == ["AAPL", "MSFT", "NVDA"]
    assert state["user:preferences"]["joke_preferences"] == ["math", "physics"]
    assert state["user:agent_stats"]["historian"]["delegations"] == 2
    assert [d["agent_name"] for d in state["agent_delegations"]] == [
        "historian", "historian", "funny_nerd"
    ]
