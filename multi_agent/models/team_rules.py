"""The team's agents' rule sets, built into the offline model (see ``rules.py``).

Each agent's intents (``intents.py``) and plans (``plans.py``), with the words that name its
whole area of conversation and how the help text and summaries name it. These are the only
copies: the historian's search (``state_tools.history``) and the recall plan read the area
words through ``rules.area_words()``.
"""

from __future__ import annotations

from .intents import (
    HISTORY_INTENTS,
    JOKE_INTENTS,
    MANAGER_INTENTS,
    PRICE_INTENTS,
    WATCHLIST_INTENTS,
    Intent,
)
from .plans import PLANS, Plan
from .rules import RuleSet

__all__ = ["BUILTIN_RULES"]

STOCK_WORDS = frozenset({
    "stock", "stocks", "share", "shares", "market", "markets", "price", "prices", "ticker",
    "tickers", "watchlist", "portfolio", "quote", "quotes",
})
JOKE_WORDS = frozenset({"joke", "jokes", "funny", "humor", "humour", "pun", "puns", "laugh"})
HISTORY_WORDS = frozenset({"history", "summary", "recap"})


def _plans(intents: tuple[Intent, ...]) -> dict[str, Plan]:
    return {i.name: PLANS[i.name] for i in intents}


BUILTIN_RULES: tuple[RuleSet, ...] = (
    RuleSet("historian", HISTORY_INTENTS, _plans(HISTORY_INTENTS), rank=10,
            area_words=HISTORY_WORDS, area="our conversation history"),
    RuleSet("stock_analyst", WATCHLIST_INTENTS, _plans(WATCHLIST_INTENTS), rank=20,
            area_words=STOCK_WORDS, area="stocks and your watch list"),
    RuleSet("funny_nerd", JOKE_INTENTS, _plans(JOKE_INTENTS), rank=30,
            area_words=JOKE_WORDS, area="jokes"),
    RuleSet("stock_analyst", PRICE_INTENTS, _plans(PRICE_INTENTS), rank=40),
    RuleSet("manager", MANAGER_INTENTS, _plans(MANAGER_INTENTS), rank=90,
            area="you and your settings"),
)
