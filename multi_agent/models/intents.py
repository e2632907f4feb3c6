"""The offline model's intent table: which phrasings mean what, and which agent handles them.

Rows are tried in order and the first matching pattern wins, so specific rows come before
general ones ("what did I ask about stocks" is a history question, not a price request).
Each pattern's named groups become the intent's arguments; ``clean`` tidies them.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["INTENTS", "Intent", "IntentMatch", "classify"]

Args = dict[str, Any]

_TOPIC = r"(?P<topic>[\w+#.\-]+(?: [\w+#.\-]+){0,2}?)"
_TICKERS = r"(?P<tickers>[$\w.,& -]+?)"
_WATCHLIST = r"(?:my |the |our )?watch ?-?list"
_END = r"\s*[.!?]*\s*$"

# Words that describe a joke rather than name its topic ("a funny joke").
_NOT_TOPICS = {
    "a", "an", "another", "bad", "best", "dad", "fresh", "funny", "good", "great", "joke",
    "me", "more", "new", "nerd", "nerdy", "one", "quick", "random", "short", "some", "the",
    "us", "you",
}
_NOT_TICKERS = {
    "a", "all", "also", "and", "my", "please", "share", "shares", "stock", "stocks",
    "symbol", "the", "ticker", "tickers", "to", "watchlist", "list", "watch", "too", "on",
}
_SYMBOL = re.compile(r"^\$?[A-Za-z]{1,5}(?:\.[A-Za-z]{1,2})?$")
_TIME_PHRASES: tuple[tuple[str, int], ...] = (
    (r"\b(?:in )?the (?:last|past) (\d{1,4}) days?\b", -1),
    (r"\btoday\b", 1),
    (r"\byesterday\b", 2),
    (r"\b(?:last|this|past) week\b", 7),
    (r"\b(?:last|this|past) month\b", 31),
    (r"\b(?:last|this|past) year\b", 366),
)


@dataclass(frozen=True, slots=True)
class Intent:
    """One row of the table."""

    name: str
    owner: str
    patterns: tuple[re.Pattern[str], ...]
    clean: Callable[[Args], Args] = field(default=lambda args: args)


@dataclass(frozen=True, slots=True)
class IntentMatch:
    """The intent a message matched and its arguments."""

    intent: Intent
    args: Args


def _rx(*patterns: str) -> tuple[re.Pattern[str], ...]:
    return tuple(re.compile(p, re.IGNORECASE) for p in patterns)


def _clean_topic(args: Args) -> Args:
    topic = " ".join(str(args.get("topic") or "").lower().split())
    words = [w for w in topic.split() if w not in _NOT_TOPICS]
    return {**args, "topic": " ".join(words)}


def _clean_tickers(args: Args) -> Args:
    """Tickers from "AAPL, msft and $nvda". Words split on spaces only when each looks like a
    symbol, so "apple computers" stays one (invalid) name instead of becoming APPLE."""
    groups = re.split(r"\s*(?:,|&|\band\b)\s*", str(args.get("tickers") or ""), flags=re.I)
    tickers: list[str] = []
    for group in groups:
        words = [w.strip(" .!?") for w in group.split()]
        words = [w for w in words if w and w.lower() not in _NOT_TICKERS]
        shaped = all(_SYMBOL.match(w) for w in words)
        for item in words if shaped else [" ".join(words)] if words else []:
            if item not in tickers:
                tickers.append(item)
    return {**args, "tickers": tickers}


def _clean_ticker(args: Args) -> Args:
    ticker = str(args.get("ticker") or "").strip(" .!?")
    return {**args, "ticker": ticker or None}


def _clean_query(args: Args) -> Args:
    query = " ".join(str(args.get("query") or "").split())
    days = 0
    for pattern, value in _TIME_PHRASES:
        found = re.search(pattern, query, re.IGNORECASE)
        if found:
            days = int(found.group(1)) if value < 0 else value
            query = (query[: found.start()] + query[found.end():]).strip()
            break
    query = re.sub(r"^(?:the|my|our)\s+", "", query, flags=re.IGNORECASE).strip(" .!?,")
    return {**args, "query": query, "days": days}


def _clean_text(key: str) -> Callable[[Args], Args]:
    def clean(args: Args) -> Args:
        return {**args, key: " ".join(str(args.get(key) or "").split()).strip(" .!?,")}

    return clean


INTENTS: tuple[Intent, ...] = (
    # -- historian ------------------------------------------------------------------------
    Intent("history_search", "historian", _rx(
        r"\bwhat (?:did|have) (?:i|we) (?:ask|asked|say|said|tell|told|talk|talked|discuss|"
        r"discussed|chat|chatted)(?: you| me)? about (?P<query>[^?!]+)",
        r"\b(?:did|have) (?:we|i) (?:ever )?(?:talk|talked|ask|asked|discuss|discussed|chat|"
        r"chatted)(?: you)? about (?P<query>[^?!]+)",
        r"\bwhen did (?:i|we) (?:ask|talk|discuss|chat)(?: you)? about (?P<query>[^?!]+)",
        r"\bsearch (?:my |our |the |your )?(?:history|conversations?|memory|memories) for "
        r"(?P<query>[^?!]+)",
        r"\bdo you (?:remember|recall) (?:what |when |if |anything )?(?:i|we) (?:said|say|told|"
        r"talked|asked|mentioned|discussed)(?: you| me)?(?: about)? (?P<query>[^?!]+)",
        r"\bwhat do you (?:remember|recall) about (?!(?:me|myself)\s*[?.!]*\s*$)(?P<query>[^?!]+)",
        r"\bdo you (?:remember|recall) (?:anything )?(?:about )?"
        r"(?!(?:me|myself|my name|who i am)\b)(?P<query>[^?!]+)",
        r"\b(?:did|have) i (?:ever )?(?:mention|mentioned) (?P<query>[^?!]+)",
    ), _clean_query),
    Intent("list_sessions", "historian", _rx(
        r"\bhow many (?:sessions|conversations|times have we (?:talked|chatted|spoken))\b",
        r"\b(?:list|show)(?: me)? (?:my|our) (?:sessions|conversations)\b",
    )),
    Intent("history_summary", "historian", _rx(
        r"\bwhat (?:did|have) we (?:talk|talked|discuss|discussed|chat|chatted) about\b",
        r"\bwhat have we been (?:talking|chatting) about\b",
        r"\bwhat did i (?:ask|say|tell)(?: you)?" + _END,
        r"\b(?:summari[sz]e|recap|summary of)\b.*\b(?:conversations?|chats?|talks?|sessions?|"
        r"history)\b",
        r"\bconversation history\b",
        r"^\s*(?:recap|summary|history)" + _END,
    )),
    # -- stock_analyst --------------------------------------------------------------------
    Intent("watchlist_remove", "stock_analyst", _rx(
        r"\b(?:remove|delete|drop|take)\s+" + _TICKERS + r"\s+(?:off|from)\s+" + _WATCHLIST,
        r"^\s*(?:please\s+)?(?:remove|unwatch|untrack|stop (?:watching|tracking))\s+"
        + _TICKERS + _END,
    ), _clean_tickers),
    Intent("watchlist_add", "stock_analyst", _rx(
        r"\b(?:add|put|include)\s+" + _TICKERS + r"\s+(?:to|on|in|into)\s+" + _WATCHLIST,
        r"^\s*(?:please\s+)?(?:add|watch|track)\s+(?:stocks?\s+)?" + _TICKERS + _END,
    ), _clean_tickers),
    Intent("watchlist_prices", "stock_analyst", _rx(
        r"\b(?:prices?|quotes?|how (?:is|are|'s))\b.*\bwatch ?-?list\b",
        r"\bwatch ?-?list\b.*\b(?:prices?|quotes?|doing)\b",
    )),
    Intent("watchlist_show", "stock_analyst", _rx(
        r"\bwatch ?-?list\b",
        r"\bwhat stocks am i (?:watching|tracking|following)\b",
    )),
    # -- funny_nerd -----------------------------------------------------------------------
    Intent("joke_forget", "funny_nerd", _rx(
        r"\b(?:no more|stop(?: telling(?: me)?)?|don'?t (?:like|want|tell me))\s+" + _TOPIC
        + r"\s+jokes?\b",
        r"\bforget (?:that i like |about )?" + _TOPIC + r"\s+jokes?\b",
    ), _clean_topic),
    Intent("joke_like", "funny_nerd", _rx(
        r"\bi (?:really )?(?:like|love|enjoy)\s+" + _TOPIC + r"\s+jokes?\b",
    ), _clean_topic),
    Intent("joke_topics", "funny_nerd", _rx(
        r"\b(?:what|which) (?:joke )?topics\b",
        r"\bjoke topics\b",
        r"\bwhat (?:kinds?|sorts?|types?) of jokes\b",
    )),
    Intent("joke", "funny_nerd", _rx(
        r"\b(?:jokes?|puns?)\b.*?\b(?:about|on|regarding|involving)\s+" + _TOPIC + _END,
        r"\b(?:an?|another|one more|some)\s+" + _TOPIC + r"\s+(?:jokes?|puns?)\b",
        r"\b(?:jokes?|puns?|make me laugh|something funny|cheer me up)\b",
        r"^\s*(?:another(?: one)?|one more|more)" + _END,
    ), _clean_topic),
    # -- stock_analyst: single prices (after jokes: "a joke about the stock market") ---------
    Intent("price", "stock_analyst", _rx(
        r"\b(?:price|quote|value)\s+(?:of|for)\s+(?:the\s+)?\$?(?P<ticker>[A-Za-z][A-Za-z.]{0,7})\b",
        r"\bhow (?:is|'s|are)\s+\$?(?P<ticker>[A-Za-z][A-Za-z.]{0,7})\s+(?:doing|trading)\b",
        r"\$(?P<ticker>[A-Za-z][A-Za-z.]{0,7})\b",
        r"(?-i:\b(?P<ticker>[A-Z]{1,5}(?:\.[A-Z]{1,2})?))\s+(?:price|quote|stock|shares?)\b",
        r"\b(?:stock )?(?:price|quote)s?\b",
    ), _clean_ticker),
    # -- manager ------------------------------------------------------------------------------
    Intent("set_name", "manager", _rx(
        r"\bmy name is\s+(?P<name>[^.!?,]+)",
        r"^\s*(?:please\s+)?call me\s+(?P<name>[^.!?,]+)",
    ), _clean_text("name")),
    Intent("get_name", "manager", _rx(
        r"\bwhat(?:'s| is) my name\b",
        r"\bwho am i\b",
        r"\bdo you (?:know|remember) my name\b",
    )),
    Intent("favorite_agent", "manager", _rx(
        r"\bfavou?rite agent (?:is|to|should be|=|:)?\s*(?:the\s+)?(?P<agent>[\w -]+?)" + _END,
        r"\bset (?:my )?favou?rite(?: agent)? (?:to |as )?(?:the\s+)?(?P<agent>[\w -]+?)" + _END,
        r"\bmake (?:the\s+)?(?P<agent>[\w -]+?) my favou?rite(?: agent)?" + _END,
    ), _clean_text("agent")),
    Intent("stats", "manager", _rx(
        r"\b(?:stats|statistics|performance|usage)\b",
        r"\bwhich agents? (?:do i|have i|did i) (?:use|used)\b",
        r"\bmost used agent\b",
    )),
    Intent("profile", "manager", _rx(
        r"\b(?:my )?profile\b",
        r"\bmy preferences\b",
        r"\bwhat do you (?:know|remember) about me\b",
    )),
    Intent("nerd_topic", "manager", _rx(
        r"\bi(?:'m| am) (?:really |very )?into\s+" + _TOPIC + _END,
        r"\bi (?:really )?(?:like|love|enjoy)\s+" + _TOPIC + _END,
    ), _clean_topic),
    Intent("help", "manager", _rx(
        r"^\s*(?:help|\?|commands|menu)" + _END,
        r"\bwhat can you (?:do|help)\b",
        r"\bhow does this work\b",
        r"\bwho are you\b",
        r"\bare you (?:an? )?(?:ai|llm|bot|robot|real|human|gpt|gemini|language model)\b",
    )),
    Intent("greeting", "manager", _rx(
        r"^\s*(?:hi|hello|hey|hiya|howdy|greetings|good (?:morning|afternoon|evening))\b",
    )),
    Intent("thanks", "manager", _rx(r"^\s*(?:thanks|thank you|cheers|thx|ty)\b")),
    Intent("goodbye", "manager", _rx(r"^\s*(?:bye|goodbye|see you|see ya|good night)\b")),
)


def classify(text: str) -> IntentMatch | None:
    """The first intent whose pattern matches ``text``, with its cleaned arguments."""
    for intent in INTENTS:
        for pattern in intent.patterns:
            found = pattern.search(text)
            if found:
                args = {k: v for k, v in found.groupdict().items() if v is not None}
                return IntentMatch(intent=intent, args=intent.clean(args))
    return None
