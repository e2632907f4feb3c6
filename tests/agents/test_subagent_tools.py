"""funny_nerd's joke tools and stock_analyst's price tools, including every way a price fails."""

from __future__ import annotations

import sys
import time
import types
from typing import Any

import pytest
from multi_agent.team.subagents.funny_nerd.jokes import load_jokes
from multi_agent.team.subagents.funny_nerd.tools import list_joke_topics, tell_joke
from multi_agent.team.subagents.stock_analyst.quotes import (
    INSTALL_HINT,
    get_stock_price,
    get_watchlist_prices,
)

from tests.agents.conftest import FakeToolContext

TOPICS = {"python", "programming", "math", "science", "physics", "chemistry", "databases"}


def test_joke_collection_is_big_enough_and_well_formed() -> None:
    book = load_jokes()
    assert TOPICS <= set(book.topics)
    ids = [j.id for jokes in book.topics.values() for j in jokes]
    assert len(ids) == len(set(ids))
    for topic, jokes in book.topics.items():
        assert len(jokes) >= 8, topic
        assert len({j.text for j in jokes}) == len(jokes), topic
    assert all(target in book.topics for target in book.aliases.values())


def test_tell_joke_never_repeats_until_the_topic_is_exhausted(ctx: FakeToolContext) -> None:
    total = len(load_jokes().topics["math"])
    seen = []
    for i in range(total):
        result = tell_joke(ctx, topic="Maths")
        assert result["status"] == "ok" and result["topic"] == "math"
        assert result["exhausted"] is False and result["remaining"] == total - i - 1
        seen.append(result["joke_id"])
    assert len(set(seen)) == total
    again = tell_joke(ctx, topic="math")
    assert again["exhausted"] is True and again["joke_id"] != seen[-1]
    assert ctx.state["user:jokes_told"]["math"] == [again["joke_id"]]  # started over


def test_tell_joke_without_topic_uses_liked_topics_then_default() -> None:
    ctx = FakeToolContext()
    assert tell_joke(ctx)["chosen_because"] == "default"
    ctx = FakeToolContext({"user:preferences": {"joke_preferences": ["chess", "physics"]}})
    result = tell_joke(ctx, topic="")
    assert result["topic"] == "physics" and result["chosen_because"] == "liked"


@pytest.mark.parametrize("topic", ["knitting", "<b>", "x" * 60, 12])
def test_tell_joke_bad_topics(ctx: FakeToolContext, topic: Any) -> None:
    result = tell_joke(ctx, topic=topic)
    assert result["status"] == "error" and set(result["topics"]) >= TOPICS
    assert ctx.delta == {}


def test_list_joke_topics_counts_unheard(ctx: FakeToolContext) -> None:
    tell_joke(ctx, topic="python")
    topics = list_joke_topics(ctx)["topics"]
    assert topics["python"]["unheard"] == topics["python"]["total"] - 1
    assert topics["math"]["unheard"] == topics["math"]["total"]


# -- prices -------------------------------------------------------------------------------------


def fake_yfinance(monkeypatch: pytest.MonkeyPatch, fast_info: Any) -> None:
    module = types.ModuleType("yfinance")

    class Ticker:
        def __init__(self, symbol: str) -> None:
            self.symbol = symbol

        @property
        def fast_info(self) -> Any:
            return fast_info(self.symbol) if callable(fast_info) else fast_info

    module.Ticker = Ticker  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "yfinance", module)


@pytest.mark.parametrize("ticker", ["", "apple inc", "TOOLONG", None])
async def test_price_rejects_bad_tickers(ticker: Any) -> None:
    result = await get_stock_price(ticker)
    assert result["status"] == "error" and "price" not in result


async def test_price_without_yfinance_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "yfinance", None)  # import fails
    result = await get_stock_price("aapl")
    assert result["status"] == "unavailable" and "price" not in result
    assert INSTALL_HINT in result["error"]


async def test_price_when_the_network_is_down(monkeypatch: pytest.MonkeyPatch) -> None:
    def down(symbol: str) -> Any:
        raise ConnectionError("Failed to resolve 'query2.finance.yahoo.com'")

    fake_yfinance(monkeypatch, down)
    result = await get_stock_price("MSFT")
    assert result["status"] == "unavailable" and "price" not in result
    assert "ConnectionError" in result["error"] and "yahoo" in result["error"].lower()


@pytest.mark.parametrize("value", [None, float("nan"), 0.0, -3.0])
async def test_price_when_the_source_returns_no_price(
    monkeypatch: pytest.MonkeyPatch, value: Any
) -> None:
    fake_yfinance(monkeypatch, {"last_price": value, "currency": "USD"})
    result = await get_stock_price("MSFT")
    assert result["status"] == "unavailable" and "price" not in result


async def test_price_times_out(monkeypatch: pytest.MonkeyPatch) -> None:
    def slow(symbol: str) -> Any:
        time.sleep(1.0)
        return {"last_price": 1.0}

    fake_yfinance(monkeypatch, slow)
    monkeypatch.setenv("MULTI_AGENT_QUOTE_TIMEOUT", "0.2")
    result = await get_stock_price("MSFT")
    assert result["status"] == "unavailable" and "did not answer" in result["error"]


async def test_price_passes_on_what_the_source_returned(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_yfinance(monkeypatch, {"last_price": 123.456789, "currency": "USD"})
    result = await get_stock_price("brk.b")
    assert result["status"] == "ok" and result["ticker"] == "BRK.B"
    assert result["price"] == 123.4568 and result["currency"] == "USD"
    assert result["source"].startswith("Yahoo Finance")


async def test_watchlist_prices(monkeypatch: pytest.MonkeyPatch) -> None:
    assert (await get_watchlist_prices(FakeToolContext()))["status"] == "error"
    monkeypatch.setitem(sys.modules, "yfinance", None)
    ctx = FakeToolContext({"user:preferences": {"stock_watchlist": ["AAPL", "MSFT"]}})
    result = await get_watchlist_prices(ctx)
    assert [q["status"] for q in result["quotes"]] == ["unavailable", "unavailable"]
