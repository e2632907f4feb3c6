"""State tools called in parallel (one model response, several calls) lose no update."""

from __future__ import annotations

from google.adk.agents.llm_agent import LlmAgent
from google.adk.runners import Runner
from multi_agent.team.state_tools.tools import (
    add_joke_preference,
    add_to_stock_watchlist,
    track_agent_delegation,
    wrap,
)

from multi_agent import DatabaseSessionService
from multi_agent.team.app import user_message
from tests.agents._team import CallsAtOnce

CALLS = [
    *(("add_to_stock_watchlist", {"ticker": t}) for t in ["AAPL", "MSFT", "NVDA"]),
    *(("add_joke_preference", {"topic": t}) for t in ["math", "physics"]),
    *(("track_agent_delegation", {"agent_name": a, "task": "t"})
      for a in ["historian", "historian", "funny_nerd"]),
]


async def test_parallel_tool_calls_keep_every_change(team_db: str) -> None:
    agent = LlmAgent(
        name="worker", model=CallsAtOnce(calls=CALLS),
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
