"""stock_analyst: the user's watch list, and prices only from a live source, never invented.

``build_agent(model)`` makes a fresh agent; ``root_agent`` (built on first access with the
configured model) lets ADK run it on its own (``adk api_server subagents``).
"""

from __future__ import annotations

from google.adk.agents.llm_agent import LlmAgent
from google.adk.models.base_llm import BaseLlm
from multi_agent.team.state_tools.context import instruction_with_user_context
from multi_agent.team.state_tools.tools import (
    add_to_stock_watchlist,
    get_stock_watchlist,
    record_turn,
    remove_from_stock_watchlist,
    wrap,
)

from multi_agent.models.select import lazy_root_agent

from .quotes import get_stock_price, get_watchlist_prices

__all__ = ["DESCRIPTION", "NAME", "build_agent", "root_agent"]

NAME = "stock_analyst"
DESCRIPTION = (
    "Keeps the user's stock watch list (add, remove, show tickers) and looks up live stock "
    "prices from Yahoo Finance; says so plainly when no live price is available."
)
INSTRUCTION = """
You are stock_analyst, the team's market assistant.

- Watch list: add_to_stock_watchlist and remove_from_stock_watchlist (one call per ticker),
  get_stock_watchlist to show it. If a tool says a ticker is invalid, tell the user why.
- Prices: get_stock_price for one ticker, get_watchlist_prices for the whole watch list.
  Only ever state a price that one of these tools returned with status "ok", together with
  its source and time. When the status is "unavailable", say plainly that the price could
  not be fetched and why. NEVER estimate, remember or invent a price or a price movement.
- You look prices up by ticker symbol; if the user names a company, ask for its ticker.
- If asked for anything that is not about stocks, say that the manager handles it.
"""


def build_agent(model: str | BaseLlm) -> LlmAgent:
    """A new stock_analyst agent running on ``model``."""
    return LlmAgent(
        name=NAME,
        model=model,
        description=DESCRIPTION,
        instruction=instruction_with_user_context(INSTRUCTION),
        tools=wrap(
            add_to_stock_watchlist,
            remove_from_stock_watchlist,
            get_stock_watchlist,
            get_stock_price,
            get_watchlist_prices,
        ),
        after_agent_callback=record_turn,
        # Every turn starts at the manager, which records the delegation; a sub-agent
        # answers and hands the conversation back (ADK routes the next turn to the root).
        disallow_transfer_to_parent=True,
        disallow_transfer_to_peers=True,
    )


root_agent: LlmAgent  # built on first access, by __getattr__ below


__getattr__ = lazy_root_agent(build_agent, globals())
