"""Tools for the user's stock watch list (kept in ``user:preferences.stock_watchlist``)."""

from __future__ import annotations

from typing import Any

from google.adk.tools.tool_context import ToolContext

from ._common import change_preference_list, error, normalize_ticker, ok, read_preferences

__all__ = ["add_to_stock_watchlist", "get_stock_watchlist", "remove_from_stock_watchlist"]


def add_to_stock_watchlist(ticker: str, tool_context: ToolContext) -> dict[str, Any]:
    """Adds a stock ticker symbol to the user's watch list (kept across all their sessions).

    Call once per ticker. This only records the symbol; it does not look up a price.

    Args:
        ticker: the ticker symbol, e.g. "AAPL", "msft" or "BRK.B" (case does not matter).

    Returns:
        status "ok" with ``ticker``, ``changed`` (false if it was already there) and the
        ``stock_watchlist``, or status "error" when the symbol is not a valid ticker.
    """
    symbol, problem = normalize_ticker(ticker)
    if problem or symbol is None:
        return error(problem or "invalid ticker")
    result = change_preference_list(tool_context, "stock_watchlist", symbol, add=True)
    return {**result, "ticker": symbol}


def remove_from_stock_watchlist(ticker: str, tool_context: ToolContext) -> dict[str, Any]:
    """Removes a stock ticker symbol from the user's watch list.

    Args:
        ticker: the ticker symbol to remove, e.g. "AAPL".

    Returns:
        status "ok" with ``ticker`` and the remaining ``stock_watchlist``, or status "error"
        when the symbol is invalid or not on the watch list.
    """
    symbol, problem = normalize_ticker(ticker)
    if problem or symbol is None:
        return error(problem or "invalid ticker")
    result = change_preference_list(tool_context, "stock_watchlist", symbol, add=False)
    if result["status"] == "error":
        result["error"] = f"{symbol} is not on the watch list."
    return {**result, "ticker": symbol}


def get_stock_watchlist(tool_context: ToolContext) -> dict[str, Any]:
    """Returns the ticker symbols on the user's watch list (no prices).

    Returns:
        status "ok" with ``stock_watchlist`` (possibly empty).
    """
    return ok(stock_watchlist=read_preferences(tool_context.state)["stock_watchlist"])
