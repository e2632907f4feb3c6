"""The agent team on ADK's real Runner, offline model, real SQLite file (and PostgreSQL in CI)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from multi_agent.team.state_tools._common import HISTORY_LIMIT, USER_LOG_LIMIT
from multi_agent.team.state_tools.recorder import HISTORY_TEXT_LIMIT, LOG_TEXT_LIMIT
from multi_agent.team.subagents.funny_nerd.jokes import load_jokes

from multi_agent import DatabaseSessionService
from multi_agent.team.app import APP_NAME, TeamRunner, build_runner, get_or_create_session
from tests.agents._team import say, stored

ROOT = Path(__file__).resolve().parents[2]
USER = "arvind"


async def test_seed_flow_python_joke(runner: TeamRunner, team_db: str) -> None:
    session = await get_or_create_session(runner.session_service, user_id=USER,
                                          user_name="Arvind Mehta")
    turn = await say(runner, USER, session.id, "Tell me a joke about Python")

    # The manager records the delegation, then transfers to funny_nerd.
    assert turn.calls()[:2] == [
        ("manager", "track_agent_delegation",
         {"agent_name": "funny_nerd", "task": "Tell me a joke about Python"}),
        ("manager", "transfer_to_agent", {"agent_name": "funny_nerd"}),
    ]
    assert turn.transfers() == [("manager", "funny_nerd")]
    # funny_nerd tells a joke from the collection and records the preference.
    assert [c[1] for c in turn.calls()[2:]] == ["tell_joke", "add_joke_preference"]
    python_jokes = {j.text for j in load_jokes().topics["python"]}
    assert turn.replier == "funny_nerd"
    assert any(turn.reply.startswith(j) for j in python_jokes), turn.reply

    # All of it is in the database, read back through a separate service.
    async with DatabaseSessionService(team_db) as fresh:
        saved = await fresh.get_session(app_name=APP_NAME, user_id=USER, session_id=session.id)
    assert [e.id for e in saved.events[-len(turn.events):]] == [e.id for e in turn.events]
    transfer = [e for e in saved.events if e.actions.transfer_to_agent == "funny_nerd"]
    assert len(transfer) == 1 and transfer[0].author == "manager"
    state = saved.state
    [delegation] = state["agent_delegations"]
    assert delegation["agent_name"] == "funny_nerd" and delegation["status"] == "completed"
    assert delegation["task"] == "Tell me a joke about Python"
    assert state["user:preferences"]["joke_preferences"] == ["python"]
    assert state["user:agent_stats"]["funny_nerd"]["delegations"] == 1
    [entry] = state["conversation_history"]
    assert set(entry) == {"timestamp", "user_input", "agent_response", "agent"}
    assert entry["user_input"] == "Tell me a joke about Python"
    assert entry["agent"] == "funny_nerd" and entry["agent_response"] == turn.reply
    assert state["session_metadata"]["total_interactions"] == 1
    assert state["user:user_name"] == "Arvind Mehta"


async def test_every_turn_starts_at_the_manager(runner: TeamRunner) -> None:
    session = await get_or_create_session(runner.session_service, user_id=USER)
    await say(runner, USER, session.id, "tell me a math joke")
    turn = await say(runner, USER, session.id, "Add AAPL and msft to my watchlist")
    assert turn.transfers() == [("manager", "stock_analyst")]
    assert [c[2] for c in turn.calls() if c[1] == "add_to_stock_watchlist"] == [
        {"ticker": "AAPL"}, {"ticker": "msft"}
    ]
    assert "Your watch list: AAPL, MSFT." in turn.reply
    turn = await say(runner, USER, session.id, "another one")
    assert turn.transfers() == [("manager", "funny_nerd")] and "math" in turn.reply.lower()
    state = (await stored(runner, USER, session.id)).state
    assert state["user:agent_stats"]["funny_nerd"]["delegations"] == 2
    assert [d["agent_name"] for d in state["agent_delegations"]] == [
        "funny_nerd", "stock_analyst", "funny_nerd"
    ]


async def test_prices_are_never_invented(runner: TeamRunner) -> None:
    session = await get_or_create_session(runner.session_service, user_id=USER)
    await say(runner, USER, session.id, "add TSLA to my watchlist")
    for text in ["What is the price of TSLA?", "prices for my watchlist"]:
        turn = await say(runner, USER, session.id, text)
        assert turn.replier == "stock_analyst"
        assert "won't guess" in turn.reply and "multi-agent-team[stocks]" in turn.reply
        assert not re.search(r"\d+\.\d+", turn.reply), turn.reply  # no number posing as price


async def test_bad_input_reaches_the_user_as_an_error(runner: TeamRunner) -> None:
    session = await get_or_create_session(runner.session_service, user_id=USER)
    turn = await say(runner, USER, session.id, "add apple computers to my watchlist")
    assert "Couldn't add" in turn.reply and "not a valid ticker" in turn.reply
    turn = await say(runner, USER, session.id, "tell me a joke about knitting")
    assert "don't have any jokes about 'knitting'" in turn.reply
    turn = await say(runner, USER, session.id, "set my favourite agent to the wizard")
    assert turn.replier == "manager" and "Unknown agent 'wizard'" in turn.reply
    turn = await say(runner, USER, session.id, "blorp")
    assert "didn't understand" in turn.reply and "not an LLM" in turn.reply
    # Nothing was stored: no preferences at all (a new session writes no user: defaults).
    prefs = (await stored(runner, USER, session.id)).state.get("user:preferences") or {}
    assert not prefs.get("stock_watchlist") and prefs.get("favorite_agent") is None


async def test_jokes_do_not_repeat_across_sessions(runner: TeamRunner) -> None:
    total = len(load_jokes().topics["chemistry"])
    seen = set()
    for _ in range(total):
        session = await get_or_create_session(runner.session_service, user_id=USER)
        turn = await say(runner, USER, session.id, "tell me a chemistry joke")
        seen.add(turn.reply.split(" I'll remember")[0])
    assert len(seen) == total
    session = await get_or_create_session(runner.session_service, user_id=USER)
    turn = await say(runner, USER, session.id, "tell me a chemistry joke")
    assert f"You've now heard all {total} of my chemistry jokes" in turn.reply


async def test_history_is_bounded(runner: TeamRunner) -> None:
    def filler(count: int) -> list[dict[str, Any]]:
        return [{"timestamp": "t", "user_input": f"q{i}", "agent_response": "a", "agent": "x"}
                for i in range(count)]

    log = [{**e, "session_id": "gone"} for e in filler(USER_LOG_LIMIT)]
    session = await runner.session_service.create_session(
        app_name=APP_NAME, user_id=USER,
        state={"conversation_history": filler(HISTORY_LIMIT), "user:conversation_log": log},
    )
    long_text = "hello " + "blah " * 300
    await say(runner, USER, session.id, long_text)
    state = (await stored(runner, USER, session.id)).state
    history = state["conversation_history"]
    assert len(history) == HISTORY_LIMIT and history[0]["user_input"] == "q1"
    assert history[-1]["agent"] == "manager"
    assert history[-1]["user_input"] == long_text[: HISTORY_TEXT_LIMIT - 1] + "…"
    logged = state["user:conversation_log"]
    assert len(logged) == USER_LOG_LIMIT and logged[-1]["session_id"] == session.id
    assert logged[0]["user_input"] == "q1"
    assert len(logged[-1]["user_input"]) == LOG_TEXT_LIMIT


async def test_new_session_keeps_user_state(runner: TeamRunner) -> None:
    first = await get_or_create_session(runner.session_service, user_id=USER)
    await say(runner, USER, first.id, "add NVDA to my watchlist")
    second = await get_or_create_session(runner.session_service, user_id=USER)
    assert second.id != first.id
    assert second.state["user:preferences"]["stock_watchlist"] == ["NVDA"]
    assert second.state["conversation_history"] == []
    again = await get_or_create_session(runner.session_service, user_id=USER,
                                        session_id=first.id)
    assert again.id == first.id and len(again.state["conversation_history"]) == 1


def run_process(db_url: str, *messages: str) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "tests.agents._run_turns", db_url, USER, *messages],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


async def test_restart_in_a_new_process_remembers_everything(team_db: str) -> None:
    first = run_process(
        team_db,
        "My name is Arvind Mehta",
        "Tell me a joke about Python",
        "Add AAPL to my watchlist",
        "set my favourite agent to stock analyst",
    )
    assert first["replies"][1][0] == "funny_nerd"
    second = run_process(team_db, "What did we talk about?", "What did I ask about stocks?",
                         "show my profile")
    assert second["session_id"] != first["session_id"]
    state = second["state"]
    assert state["user:user_name"] == "Arvind Mehta"
    assert state["user:preferences"] == {
        "favorite_agent": "stock_analyst", "joke_preferences": ["python"],
        "stock_watchlist": ["AAPL"], "nerd_topics": [],
    }
    stats = state["user:agent_stats"]
    assert stats["funny_nerd"]["delegations"] == 1
    assert stats["stock_analyst"]["delegations"] == 1
    assert stats["historian"]["delegations"] == 2
    (who, summary), (who2, search), (_, profile) = second["replies"]
    assert who == "historian" and "We've had 4 exchanges across 2 sessions" in summary
    assert '"Tell me a joke about Python" and funny_nerd answered' in summary
    assert who2 == "historian" and "I found 1 exchange about 'stocks'" in search
    assert '"Add AAPL to my watchlist"' in search
    assert "Name: Arvind Mehta" in profile and "Stock watch list: AAPL" in profile
    # This session's own history holds only its own turns.
    assert [e["user_input"] for e in state["conversation_history"]] == [
        "What did we talk about?", "What did I ask about stocks?", "show my profile"
    ]


async def test_default_database_comes_from_the_environment(tmp_path, monkeypatch) -> None:
    path = tmp_path / "from_env.db"
    monkeypatch.setenv("MULTI_AGENT_DB", f"sqlite+aiosqlite:///{path}")
    runner = build_runner()
    try:
        session = await get_or_create_session(runner.session_service, user_id=USER)
        await say(runner, USER, session.id, "hi")
    finally:
        await runner.close()
    assert path.exists() and path.stat().st_size > 0


async def test_plugins_are_passed_to_the_app(tmp_path) -> None:
    from google.adk.plugins.base_plugin import BasePlugin

    class CountRuns(BasePlugin):
        def __init__(self) -> None:
            super().__init__(name="count_runs")
            self.runs = 0

        async def after_run_callback(self, *, invocation_context: Any) -> None:
            self.runs += 1

    counter = CountRuns()
    runner = build_runner(db_url=f"sqlite+aiosqlite:///{tmp_path / 'p.db'}", plugins=[counter])
    try:
        session = await get_or_create_session(runner.session_service, user_id=USER)
        await say(runner, USER, session.id, "tell me a joke")
        await say(runner, USER, session.id, "help")
    finally:
        await runner.close()
    assert counter.runs == 2
