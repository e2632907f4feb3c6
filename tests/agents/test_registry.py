"""Adding a sub-agent is one folder and one line (issue 14): a throw-away sub-agent written to a
temporary folder (a ``definition.py`` with its ``SubAgentSpec``, its tool and the offline
model's intent and plan for it) joins through the registry's API, the stand-in for its line in
``SUBAGENTS``; nothing else is touched. The manager then delegates to it and the offline model
routes to it, through ADK's real Runner on a real store, and the state tools accept its name.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from multi_agent.team.manager.team import build_agent_tree, instruction
from multi_agent.team.subagents import registry

from multi_agent.models.intents import classify
from multi_agent.models.replies import help_text
from multi_agent.team.app import TeamRunner, build_runner, get_or_create_session
from tests.agents._team import say, stored

DEFINITION = '''
"""weather_bot: a throw-away sub-agent of the registry test."""

import re

from multi_agent.models.intents import Intent
from multi_agent.models.plans import Call, Plan, Say
from multi_agent.models.rules import RuleSet
from multi_agent.team.subagents.spec import SubAgentSpec

from .tools import get_forecast


def plan_forecast(args, done):
    if not done.has("get_forecast"):
        return Call("get_forecast", {"city": args["city"]})
    result = done.result("get_forecast")
    return Say(f"Forecast for {result['city']}: {result['forecast']}.")


SPEC = SubAgentSpec(
    name="weather_bot",
    description="Tells the weather forecast for a city.",
    instruction="You are weather_bot. Call get_forecast with the city the user names.",
    tools=(get_forecast,),
    delegate_when="weather forecasts",
    topic_words=frozenset({"weather", "forecast"}),
    offline_rules=(RuleSet(
        "weather_bot",
        (Intent("forecast", "weather_bot", (
            re.compile(r"\\bweather\\b.*?\\bin (?P<city>[A-Z][a-z]+)", re.IGNORECASE),
        )),),
        {"forecast": Plan(plan_forecast, frozenset({"get_forecast"}))},
        help="tells the weather",
        examples="weather: 'what is the weather in Paris?'",
    ),),
)
'''

TOOLS = '''
def get_forecast(city: str) -> dict:
    """Returns the weather forecast for a city."""
    return {"status": "ok", "city": city, "forecast": "sunny, 21 degrees"}
'''


@pytest.fixture
def weather_bot(tmp_path: Path) -> Iterator[str]:
    folder = tmp_path / "weather_bot"
    folder.mkdir()
    (folder / "definition.py").write_text(textwrap.dedent(DEFINITION))
    (folder / "tools.py").write_text(textwrap.dedent(TOOLS))
    registry.register(registry.load_definition(folder))  # the one line, through the API
    try:
        yield "weather_bot"
    finally:
        registry.unregister("weather_bot")


async def test_a_registered_sub_agent_gets_delegated_to(weather_bot: str, team_db: str) -> None:
    assert registry.names() == ("funny_nerd", "stock_analyst", "historian", weather_bot)
    assert "- weather forecasts -> weather_bot" in instruction()
    assert classify("what's the weather in Paris?").intent.owner == weather_bot
    assert "weather_bot tells the weather" in help_text()

    runner = build_runner(db_url=team_db, model="offline-rules")
    assert isinstance(runner, TeamRunner)
    try:
        session = await get_or_create_session(runner.session_service, user_id="ann")
        turn = await say(runner, "ann", session.id, "What's the weather in Paris?")
        assert turn.calls() == [
            ("manager", "track_agent_delegation",
             {"agent_name": weather_bot, "task": "What's the weather in Paris?"}),
            ("manager", "transfer_to_agent", {"agent_name": weather_bot}),
            (weather_bot, "get_forecast", {"city": "Paris"}),
        ]
        assert (turn.replier, turn.reply) == (weather_bot, "Forecast for Paris: sunny, 21 degrees.")

        # The state tools take its name; the historian finds its exchanges by its area words.
        favourite = await say(runner, "ann", session.id, "set my favourite agent to weather_bot")
        assert favourite.reply == "Done: weather_bot is now your favourite agent."
        recalled = await say(runner, "ann", session.id, "what did I ask about the forecast?")
        assert recalled.replier == "historian"
        assert ("historian", "search_conversation_history", {"query": "forecast", "days": 0}) in (
            recalled.calls())
        assert "Paris" in recalled.reply

        state = (await stored(runner, "ann", session.id)).state
        assert state["user:agent_stats"][weather_bot]["delegations"] == 1
        assert state["user:preferences"]["favorite_agent"] == weather_bot
        assert state["agent_delegations"][0]["status"] == "completed"
    finally:
        await runner.close()


def test_unregistering_takes_it_out_again(weather_bot: str) -> None:
    registry.unregister(weather_bot)
    assert weather_bot not in registry.names()
    assert classify("what's the weather in Paris?") is None
    assert [a.name for a in build_agent_tree("offline-rules").sub_agents] == [
        "funny_nerd", "stock_analyst", "historian"]


def test_a_definition_without_a_spec_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "no_spec_bot"
    folder.mkdir()
    (folder / "definition.py").write_text("NAME = 'no_spec_bot'\n")
    with pytest.raises(TypeError, match="must define SPEC"):
        registry.load_definition(folder)


def test_an_intent_name_another_agent_uses_is_refused() -> None:
    from multi_agent.models import rules
    from multi_agent.models.plans import PLANS

    with pytest.raises(ValueError, match=r"'joke' \(funny_nerd\)"):
        rules.register(rules.RuleSet("copycat", (), {"joke": PLANS["joke"]}))
    assert "copycat" not in rules.owners()
