"""stock_analyst: the user's watch list, and prices only from a live source, never invented."""

from __future__ import annotations

from multi_agent.team.state_tools.tools import (
    add_to_stock_watchlist,
    get_stock_watchlist,
    remove_from_stock_watchlist,
)
from multi_agent.team.subagents.spec import SubAgentSpec

from .quotes import get_stock_price, get_watchlist_prices

__all__ = ["SPEC", "build_agent"]

SPEC = SubAgentSpec(
    name="stock_analyst",
    description=(
        "Keeps the user's stock watch list (add, remove, show tickers) and looks up live stock "
        "prices from Yahoo Finance; says so plainly when no live price is available."
    ),
    instruction="""
You are stock_analyst, the team's market assistant.

- Watch list: add_to_stock_watchlist and remove_from_stock_watchlist (one call per ticker),
  get_stock_watchlist to show it. If a tool says a ticker is invalid, tell the user why.
- Prices: get_stock_price for one ticker, get_watchlist_prices for the whole watch list.
  Only ever state a price that one of these tools returned with status "ok", together with
  its source and time. When the status is "unavailable", say plainly that the price could
  not be fetched and why. NEVER estimate, remember or invent a price or a price movement.
- You look prices up by ticker symbol; if the user names a company, ask for its ticker.
- If asked for anything that is not about stocks, say that the manager handles it.
""",
    tools=(
        add_to_stock_watchlist,
        remove_from_stock_watchlist,
        get_stock_watchlist,
        get_stock_price,
        get_watchlist_prices,
    ),
    delegate_when="the stock watch list and stock prices",
    # Offline rules and area words: built in (multi_agent/models/team_rules.py).
)
build_agent = SPEC.build
