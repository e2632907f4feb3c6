"""Each state tool: what it writes (by reassignment, in the documented layout), bad inputs."""

from __future__ import annotations

from typing import Any

import multi_agent.team.state_tools.tools as st
import pytest
from google.adk.sessions import InMemorySessionService
from multi_agent.team.state_tools._common import DELEGATION_LIMIT

from tests.agents.conftest import FakeToolContext


def is_error(result: dict[str, Any], *words: str) -> bool:
    text = str(result.get("error", "")).lower()
    return result.get("status") == "error" and all(w.lower() in text for w in words)


# -- track_agent_delegation ---------------------------------------------------------------------


def test_track_agent_delegation_records_session_and_user_stats(ctx: FakeToolContext) -> None:
    result = st.track_agent_delegation("funny_nerd", "  Tell a   python joke ", ctx)
    assert result["status"] == "ok"
    [entry] = ctx.state["agent_delegations"]
    assert entry["agent_name"] == "funny_nerd" and entry["task"] == "Tell a python joke"
    assert entry["status"] == "delegated" and set(entry) == {
        "id", "timestamp", "agent_name", "task", "status"
    }
    assert result["delegation"] == {k: v for k, v in entry.items() if k != "id"}
    assert ctx.state["user:agent_stats"]["funny_nerd"]["delegations"] == 1
    st.track_agent_delegation("funny_nerd", "again", ctx)
    assert ctx.state["user:agent_stats"]["funny_nerd"]["delegations"] == 2
    assert result["total_delegations_to_agent"] == 1
    assert set(ctx.delta) >= {"agent_delegations", "user:agent_stats", "session_metadata"}


@pytest.mark.parametrize("agent", ["", "   ", "wizard", "manager", None, 7])
def test_track_agent_delegation_rejects_bad_agent(ctx: FakeToolContext, agent: Any) -> None:
    assert is_error(st.track_agent_delegation(agent, "task", ctx))
    assert "agent_delegations" not in ctx.state


@pytest.mark.parametrize("task", ["", "   ", None, 3])
def test_track_agent_delegation_rejects_empty_task(ctx: FakeToolContext, task: Any) -> None:
    assert is_error(st.track_agent_delegation("historian", task, ctx), "task")
    assert ctx.delta == {}


def test_track_agent_delegation_cuts_long_tasks_and_bounds_the_list() -> None:
    ctx = FakeToolContext({"agent_delegations": [
        {"timestamp": "t", "agent_name": "historian", "task": str(i), "status": "completed"}
        for i in range(DELEGATION_LIMIT)
    ]})
    st.track_agent_delegation("historian", "x" * 2000, ctx)
    items = ctx.state["agent_delegations"]
    assert len(items) == DELEGATION_LIMIT and items[0]["task"] == "1"
    assert len(items[-1]["task"]) == 120 and items[-1]["task"].endswith("…")


def test_tools_reassign_instead_of_mutating() -> None:
    prefs = {"favorite_agent": None, "joke_preferences": [], "stock_watchlist": ["MSFT"],
             "nerd_topics": []}
    stats = {"historian": {"delegations": 1, "last_used": "t"}}
    ctx = FakeToolContext({"user:preferences": prefs, "user:agent_stats": stats})
    st.add_to_stock_watchlist("aapl", ctx)
    st.track_agent_delegation("historian", "recap", ctx)
    # The stored objects are untouched; new values were assigned.
    assert prefs["stock_watchlist"] == ["MSFT"]
    assert stats == {"historian": {"delegations": 1, "last_used": "t"}}
    assert ctx.state["user:preferences"]["stock_watchlist"] == ["MSFT", "AAPL"]
    assert ctx.state["user:agent_stats"]["historian"]["delegations"] == 2


# -- watch list ---------------------------------------------------------------------------------


def test_watchlist_add_normalises_and_dedupes(ctx: FakeToolContext) -> None:
    assert st.add_to_stock_watchlist(" $aapl ", ctx)["ticker"] == "AAPL"
    assert st.add_to_stock_watchlist("brk.b", ctx)["stock_watchlist"] == ["AAPL", "BRK.B"]
    again = st.add_to_stock_watchlist("AAPL", ctx)
    assert again["status"] == "ok" and again["changed"] is False
    assert st.get_stock_watchlist(ctx)["stock_watchlist"] == ["BRK.B", "AAPL"]


@pytest.mark.parametrize(
    "ticker", ["", "   ", "apple inc", "TOOLONG", "123", "AAPL.XYZ", "A-B", None, 42, ["AAPL"]]
)
def test_watchlist_add_rejects_bad_tickers(ctx: FakeToolContext, ticker: Any) -> None:
    result = st.add_to_stock_watchlist(ticker, ctx)
    assert is_error(result) and ("ticker" in result["error"].lower())
    assert ctx.delta == {}


def test_watchlist_is_bounded() -> None:
    tickers = [f"T{chr(65 + i // 26)}{chr(65 + i % 26)}" for i in range(50)]
    ctx = FakeToolContext({"user:preferences": {"stock_watchlist": tickers}})
    assert is_error(st.add_to_stock_watchlist("ZZZZ", ctx), "50")
    assert st.add_to_stock_watchlist(tickers[0], ctx)["status"] == "ok"  # already there


def test_watchlist_remove(ctx: FakeToolContext) -> None:
    st.add_to_stock_watchlist("AAPL", ctx)
    st.add_to_stock_watchlist("MSFT", ctx)
    result = st.remove_from_stock_watchlist("aapl", ctx)
    assert result["status"] == "ok" and result["stock_watchlist"] == ["MSFT"]
    assert is_error(st.remove_from_stock_watchlist("AAPL", ctx), "not on the watch list")
    assert is_error(st.remove_from_stock_watchlist("not a ticker", ctx), "ticker")


# -- preferences, name, favourite agent ---------------------------------------------------------


def test_joke_preferences(ctx: FakeToolContext) -> None:
    assert st.add_joke_preference("Python", ctx)["joke_preferences"] == ["python"]
    assert st.add_joke_preference("  Quantum   Physics ", ctx)["joke_preferences"] == [
        "python", "quantum physics"
    ]
    assert st.remove_joke_preference("PYTHON", ctx)["joke_preferences"] == ["quantum physics"]
    assert is_error(st.remove_joke_preference("python", ctx), "not in")


@pytest.mark.parametrize("topic", ["", "  ", None, 5, "x" * 41, "<script>", "jokes; DROP"])
def test_joke_preference_rejects_bad_topics(ctx: FakeToolContext, topic: Any) -> None:
    assert is_error(st.add_joke_preference(topic, ctx))
    assert is_error(st.remove_joke_preference(topic, ctx))
    assert ctx.delta == {}


def test_update_user_preferences(ctx: FakeToolContext) -> None:
    assert st.update_user_preferences("nerd_topics", "Math", ctx)["nerd_topics"] == ["math"]
    assert st.update_user_preferences("stock_watchlist", "tsla", ctx)["stock_watchlist"] == [
        "TSLA"
    ]
    assert st.update_user_preferences("stock_watchlist", "TSLA", ctx, action="remove")[
        "stock_watchlist"
    ] == []
    assert st.update_user_preferences("favorite_agent", "Historian", ctx, action="set")[
        "favorite_agent"
    ] == "historian"
    assert st.update_user_preferences("favorite_agent", "", ctx, action="clear")[
        "favorite_agent"
    ] is None
    prefs = ctx.state["user:preferences"]
    assert set(prefs) == {"favorite_agent", "joke_preferences", "stock_watchlist", "nerd_topics"}


@pytest.mark.parametrize(
    ("preference", "value", "action", "words"),
    [
        ("colour", "blue", "add", ["unknown preference"]),
        ("", "x", "add", ["unknown preference"]),
        ("nerd_topics", "math", "explode", ["unknown action"]),
        ("nerd_topics", "", "add", ["topic"]),
        ("stock_watchlist", "apple inc", "add", ["ticker"]),
        ("favorite_agent", "wizard", "set", ["unknown agent"]),
        ("favorite_agent", "historian", "remove", ["unknown action"]),
        ("joke_preferences", "chess", "remove", ["not in"]),
    ],
)
def test_update_user_preferences_bad_inputs(
    ctx: FakeToolContext, preference: str, value: str, action: str, words: list[str]
) -> None:
    assert is_error(st.update_user_preferences(preference, value, ctx, action=action), *words)


def test_set_favorite_agent(ctx: FakeToolContext) -> None:
    assert st.set_favorite_agent("stock analyst", ctx)["favorite_agent"] == "stock_analyst"
    assert ctx.state["user:preferences"]["favorite_agent"] == "stock_analyst"
    for bad in ["", "wizard", "manager", None]:
        assert is_error(st.set_favorite_agent(bad, ctx))
    assert ctx.state["user:preferences"]["favorite_agent"] == "stock_analyst"


def test_set_user_name(ctx: FakeToolContext) -> None:
    assert st.set_user_name("  Arvind   Mehta. ", ctx)["user_name"] == "Arvind Mehta"
    assert ctx.state["user:user_name"] == "Arvind Mehta"
    for bad in ["", "   ", None, "x" * 81, "bad\x00name", "..."]:
        assert is_error(st.set_user_name(bad, ctx)), bad
    assert ctx.state["user:user_name"] == "Arvind Mehta"


def test_profile_and_stats_tolerate_missing_or_malformed_state() -> None:
    ctx = FakeToolContext({"user:preferences": "garbage", "user:agent_stats": ["nope"]})
    profile = st.get_user_profile(ctx)
    assert profile["status"] == "ok" and profile["user_name"] is None
    assert profile["preferences"]["stock_watchlist"] == []
    stats = st.get_agent_performance_stats(ctx)
    assert stats == {"status": "ok", "agents": {}, "most_used": None, "total_delegations": 0,
                     "session_delegations": 0, "favorite_agent": None}
    assert ctx.delta == {}


def test_agent_performance_stats_counts(ctx: FakeToolContext) -> None:
    for agent in ["funny_nerd", "funny_nerd", "historian"]:
        st.track_agent_delegation(agent, "task", ctx)
    stats = st.get_agent_performance_stats(ctx)
    assert stats["total_delegations"] == 3 and stats["most_used"] == "funny_nerd"
    assert stats["agents"]["historian"]["delegations"] == 1


# -- history ------------------------------------------------------------------------------------


def _log(*entries: tuple[str, str, str, str]) -> dict[str, Any]:
    return {"user:conversation_log": [
        {"timestamp": ts, "session_id": "old", "user_input": q, "agent_response": a, "agent": ag}
        for ts, q, a, ag in entries
    ]}


async def test_history_reads_every_session_plus_the_log_of_deleted_ones() -> None:
    service = InMemorySessionService()

    def turn(ts: str, text: str, agent: str) -> dict[str, Any]:
        return {"timestamp": ts, "user_input": text, "agent_response": "ok", "agent": agent}

    await service.create_session(app_name="multi_agent", user_id="u", session_id="a", state={
        "conversation_history": [turn("2020-01-02T00:00:00+00:00", "add AAPL", "stock_analyst")]
    })
    await service.create_session(app_name="multi_agent", user_id="u", session_id="b", state={
        "conversation_history": [turn("2020-01-03T00:00:00+00:00", "math joke", "funny_nerd")]
    })
    log = _log(("2020-01-01T00:00:00+00:00", "price of MSFT", "unavailable", "stock_analyst"))
    log["user:conversation_log"].append({**turn("2020-01-02T00:00:00+00:00", "add AAPL",
                                                "stock_analyst"), "session_id": "a"})
    ctx = FakeToolContext({**log, "conversation_history": [
        turn("2020-01-04T00:00:00+00:00", "hello", "manager")
    ]}, service=service)
    result = await st.get_conversation_summary(ctx)
    # Sessions a and b from the store, the deleted one from the log (once), and this one.
    assert [e["user_input"] for e in result["recent"]] == [
        "price of MSFT", "add AAPL", "math joke", "hello"
    ]
    assert result["sessions"] == 3 and result["total_turns"] == 4
    assert result["by_agent"] == {"stock_analyst": 2, "funny_nerd": 1, "manager": 1}
    assert (await st.get_conversation_summary(ctx, scope="session"))["total_turns"] == 1
    found = await st.search_conversation_history("stocks", ctx)
    assert [m["session_id"] for m in found["matches"]] == ["old", "a"]


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"scope": "galaxy"}, ["scope"]),
        ({"scope": None}, ["scope"]),
        ({"max_entries": 0}, ["max_entries"]),
        ({"max_entries": 51}, ["max_entries"]),
        ({"max_entries": "ten"}, ["max_entries"]),
        ({"max_entries": True}, ["max_entries"]),
    ],
)
async def test_conversation_summary_bad_inputs(
    ctx: FakeToolContext, kwargs: dict[str, Any], words: list[str]
) -> None:
    assert is_error(await st.get_conversation_summary(ctx, **kwargs), *words)


async def test_summary_without_a_session_service_still_answers(ctx: FakeToolContext) -> None:
    result = await st.get_conversation_summary(ctx)
    assert result["status"] == "ok" and result["sessions"] is None


async def test_search_history_by_area_word_text_and_days() -> None:
    state = _log(
        ("2000-01-01T10:00:00+00:00", "add AAPL to my watchlist", "Added AAPL", "stock_analyst"),
        ("2999-01-01T10:00:00+00:00", "price of MSFT", "unavailable", "stock_analyst"),
        ("2999-01-01T10:00:00+00:00", "joke about python", "Why...", "funny_nerd"),
    )
    ctx = FakeToolContext(state)
    stocks = (await st.search_conversation_history("stocks", ctx))
    assert stocks["total_matches"] == 2
    assert [m["user_input"] for m in stocks["matches"]][0] == "add AAPL to my watchlist"
    recent = (await st.search_conversation_history("stocks", ctx, days=7))
    assert [m["user_input"] for m in recent["matches"]] == ["price of MSFT"]
    assert (await st.search_conversation_history("PYTHON", ctx))["total_matches"] == 1
    assert (await st.search_conversation_history("chess", ctx))["total_matches"] == 0
    assert (await st.search_conversation_history("stocks", ctx, days="7"))["total_matches"] == 1


@pytest.mark.parametrize(
    ("query", "days"), [("", 0), ("   ", 0), (None, 0), ("?!", 0), ("stocks", -1),
                        ("stocks", 99999), ("stocks", True), ("stocks", "seven"),
                        ("stocks", float("nan"))]
)
async def test_search_history_bad_inputs(ctx: FakeToolContext, query: Any, days: Any) -> None:
    assert is_error(await st.search_conversation_history(query, ctx, days=days))


async def test_list_my_sessions_reports_store_failure(ctx: FakeToolContext) -> None:
    assert is_error(await st.list_my_sessions(ctx), "could not list sessions")
    service = InMemorySessionService()
    await service.create_session(app_name="multi_agent", user_id="u", state={
        "session_metadata": {"created_at": "c", "last_activity": "l", "total_interactions": 3}
    })
    result = await st.list_my_sessions(FakeToolContext(service=service))
    assert result["count"] == 1 and result["sessions"][0]["total_interactions"] == 3
