"""Live stock prices from one real source, or an honest "unavailable". Never a made-up number.

The source is Yahoo Finance through ``yfinance``, an optional extra
(``pip install 'multi-agent-team[stocks]'``) imported only when a price is asked for. When it is
not installed, the network is unreachable, the call times out or no price comes back, the
tools return ``status: "unavailable"`` with the reason, and the agent says so.
"""

from __future__ import annotations

import asyncio
import importlib
import math
import os
from datetime import UTC, datetime
from typing import Any

from google.adk.tools.tool_context import ToolContext
from multi_agent.team.state_tools._common import error, normalize_ticker, ok, read_preferences

__all__ = ["INSTALL_HINT", "get_stock_price", "get_watchlist_prices", "quote_timeout"]

INSTALL_HINT = "pip install 'multi-agent-team[stocks]'"
SOURCE = "Yahoo Finance (yfinance)"
_MAX_WATCHLIST_QUOTES = 20


def quote_timeout() -> float:
    """Seconds to wait for one quote ($MULTI_AGENT_QUOTE_TIMEOUT, default 8)."""
    try:
        return max(0.1, float(os.environ.get("MULTI_AGENT_QUOTE_TIMEOUT", "8")))
    except ValueError:
        return 8.0


def _unavailable(ticker: str, reason: str) -> dict[str, Any]:
    return {
        "status": "unavailable",
        "ticker": ticker,
        "error": reason,
        "note": "No price is given because none could be fetched; do not estimate one.",
    }


def _fetch(yf: Any, ticker: str) -> tuple[float | None, str | None]:
    """Blocking: the last price and currency yfinance reports (None when it has none)."""
    info = yf.Ticker(ticker).fast_info
    price = info["last_price"] if hasattr(info, "__getitem__") else info.last_price
    try:
        currency = info["currency"] if hasattr(info, "__getitem__") else info.currency
    except (KeyError, AttributeError):
        currency = None
    return (float(price) if price is not None else None), currency


async def _quote(ticker: str) -> dict[str, Any]:
    try:
        yf = importlib.import_module("yfinance")
    except ImportError:
        return _unavailable(
            ticker,
            "Live prices need the optional 'stocks' extra, which is not installed "
            f"({INSTALL_HINT}).",
        )
    try:
        price, currency = await asyncio.wait_for(
            asyncio.to_thread(_fetch, yf, ticker), timeout=quote_timeout()
        )
    except TimeoutError:
        return _unavailable(ticker, f"{SOURCE} did not answer within {quote_timeout():g} s.")
    except Exception as exc:  # network down, DNS failure, unknown symbol, API change...
        detail = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
        reason = f"Could not get a price from {SOURCE}: {type(exc).__name__}"
        return _unavailable(ticker, f"{reason}: {detail}" if detail else reason)
    if price is None or not math.isfinite(price) or price <= 0:
        return _unavailable(ticker, f"{SOURCE} returned no price for {ticker}.")
    return ok(
        ticker=ticker,
        price=round(price, 4),
        currency=currency,
        source=SOURCE,
        fetched_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )


async def get_stock_price(ticker: str) -> dict[str, Any]:
    """Looks up the latest price of a stock from a live market-data source.

    Quote ONLY the price this tool returns. When the status is "unavailable", tell the user
    the price could not be fetched and why; never estimate or recall a price.

    Args:
        ticker: the ticker symbol, e.g. "AAPL" or "BRK.B".

    Returns:
        status "ok" with ``price``, ``currency``, ``source`` and ``fetched_at``; status
        "unavailable" with the reason (data source not installed, unreachable or empty); or
        status "error" for an invalid ticker symbol.
    """
    symbol, problem = normalize_ticker(ticker)
    if problem or symbol is None:
        return error(problem or "invalid ticker")
    return await _quote(symbol)


async def get_watchlist_prices(tool_context: ToolContext) -> dict[str, Any]:
    """Looks up live prices for every ticker on the user's watch list.

    Quote only prices returned with status "ok"; report the others as unavailable.

    Returns:
        status "ok" with ``quotes`` (one result per ticker, each like get_stock_price's) and
        ``stock_watchlist``; or status "error" when the watch list is empty.
    """
    watchlist = read_preferences(tool_context.state)["stock_watchlist"]
    if not watchlist:
        return error("The watch list is empty; add a ticker first, e.g. 'add AAPL'.")
    tickers = [t for t in watchlist if isinstance(t, str)][:_MAX_WATCHLIST_QUOTES]
    quotes = await asyncio.gather(*(_quote(t) for t in tickers))
    return ok(stock_watchlist=watchlist, quotes=list(quotes))
