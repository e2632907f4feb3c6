"""Each agent package works as an ``adk web`` agent folder (ADK's own AgentLoader)."""

from __future__ import annotations

from pathlib import Path

import pytest
from google.adk.agents.llm_agent import LlmAgent
from google.adk.apps.app import App
from google.adk.cli.utils.agent_loader import AgentLoader
from google.adk.runners import InMemoryRunner

from multi_agent.team.app import user_message

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MULTI_AGENT_MODEL", raising=False)


def test_the_repository_offers_adk_one_app_the_team() -> None:
    """``adk web .`` here lists only ``multi_agent`` (the chat's app name), and it is the App."""
    loader = AgentLoader(str(ROOT))
    assert loader.list_agents() == ["multi_agent"]
    app = loader.load_agent("multi_agent")
    assert isinstance(app, App) and app.name == "multi_agent"
    agent = app.root_agent
    assert isinstance(agent, LlmAgent) and agent.name == "manager"
    assert [a.name for a in agent.sub_agents] == ["funny_nerd", "stock_analyst", "historian"]


@pytest.mark.parametrize("name", ["funny_nerd", "stock_analyst", "historian"])
def test_adk_loads_each_sub_agent(name: str) -> None:
    agent = AgentLoader(str(ROOT / "subagents")).load_agent(name)
    assert isinstance(agent, LlmAgent) and agent.name == name
    assert agent.model.model == "offline-rules"


async def test_a_sub_agent_runs_on_its_own() -> None:
    from multi_agent.team.subagents.funny_nerd import root_agent

    runner = InMemoryRunner(agent=root_agent, app_name="funny_nerd")
    session = await runner.session_service.create_session(app_name="funny_nerd", user_id="u")
    replies = []
    for text in ["tell me a joke about physics", "add AAPL to my watchlist", "help"]:
        last = ""
        async for event in runner.run_async(user_id="u", session_id=session.id,
                                            new_message=user_message(text)):
            if event.content and event.content.parts and event.content.parts[0].text:
                last = event.content.parts[0].text
        replies.append(last)
    await runner.close()
    assert "physics jokes" in replies[0]
    assert "job for stock_analyst" in replies[1]
    assert replies[2].startswith("I'm funny_nerd: Tells nerdy jokes") and "not an LLM" in replies[2]
