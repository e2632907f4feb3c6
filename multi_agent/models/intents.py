"""The offline model's intent table: which phrasings mean what, and which agent handles them.

Rows are tried in order and the first matching pattern wins, so specific rows come before
general ones ("what did I ask about stocks" is a history question, not a price request).
Each pattern's named groups become the intent's arguments; ``clean`` tidies them, and may
return None to say "this pattern does not fit after all" (then the next pattern is tried):
"I'm Dana" names the user, "I'm tired" does not.

Messages are normalised first (:func:`normalize`): emoji and other pictographs, ASCII smileys
and a trailing "please"/"thanks"/"lol" are dropped, curly quotes become straight ones and
spaces are collapsed, so "😂 tell me a joke about python, please 🐍" reads as "tell me a joke
about python".
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from . import companies, rules

__all__ = [
    "HISTORY_INTENTS",
    "INTENTS",
    "JOKE_INTENTS",
    "MANAGER_INTENTS",
    "PRICE_INTENTS",
    "WATCHLIST_INTENTS",
    "Intent",
    "IntentMatch",
    "classify",
    "normalize",
    "table",
]

Args = dict[str, Any]

_TOPIC = r"(?P<topic>[\w+#.\-]+(?: [\w+#.\-]+){0,2}?)"
_TICKERS = r"(?P<tickers>[$\w.,&' -]+?)"
_WATCHLIST = r"(?:my |the |our )?watch ?-?list"
_END = r"\s*[.!?]*\s*$"
# Words a request may start with that change nothing ("can you add TSLA", "ok so, help").
_LEAD = (
    r"^\s*(?:(?:please|pls|can you|could you|would you|will you|ok(?:ay)?|so|also|and|now|"
    r"then)[\s,]+)*"
)
_COMPANY = companies.name_pattern()
_UPPER_TICKER = r"(?-i:[A-Z]{1,5}(?:\.[A-Z]{1,2})?)"
_HISTORY_VERB = (
    r"(?:ask|asked|asking|say|said|saying|tell|told|telling|talk|talked|talking|discuss|"
    r"discussed|discussing|chat|chatted|chatting|speak|spoke|speaking|cover|covered|mention|"
    r"mentioned)"
)
_TO_YOU = r"(?: (?:you|me|to you|to me|with you|with me))?"
# "last time", "in our previous session": the user's latest earlier session.
_LAST_SESSION = (
    r"(?:last time|(?:the )?other day|(?:in |during |from )?(?:our |the |my |that )?"
    r"(?:last|previous|prior|earlier|other) (?:session|conversation|chat|talk|time)s?)"
)
# "before", "so far": any time before now (the history as a whole).
_BEFORE = (
    r"(?:before|earlier|previously|so far|until now|up to now|in the past|recently|at all|"
    r"ever|already)"
)

# Words that describe a joke rather than name its topic ("a funny joke").
_NOT_TOPICS = {
    "a", "an", "another", "any", "bad", "best", "dad", "fresh", "funny", "good", "great",
    "joke", "me", "more", "new", "nerd", "nerdy", "one", "quick", "random", "short", "some",
    "the", "us", "you", "please", "pls", "plz", "now", "lol", "haha",
}
_NOT_TICKERS = {
    "a", "all", "also", "and", "my", "please", "share", "shares", "stock", "stocks",
    "symbol", "the", "ticker", "tickers", "to", "watchlist", "list", "watch", "too", "on",
}
# Words "how is X doing" may be about that are not stocks ("how are you doing").
_NOT_STOCKS = {
    "you", "u", "ya", "it", "we", "they", "he", "she", "this", "that", "things", "everything",
    "everyone", "life", "today", "work", "market", "stock", "stocks", "the", "my", "your",
    # ... nor are these before "stock price" ("a good stock price", "the current share price")
    "good", "best", "current", "latest", "live", "real", "cheap", "high", "average", "what",
    "whats", "some", "any", "share", "their", "its", "our",
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

# -- names ----------------------------------------------------------------------------------

# A name ends before these words: "my name is Dana and I'm a developer" names Dana.
_NAME_STOPS = {
    "a", "also", "am", "an", "and", "are", "as", "at", "because", "but", "btw", "by", "for",
    "from", "haha", "hello", "here", "hey", "hi", "how", "i", "i'd", "i'll", "i'm", "i've",
    "if", "im", "in", "is", "just", "lol", "my", "nice", "not", "now", "of", "ok", "okay", "or",
    "please", "pls", "since", "so", "sorry", "thank", "thanks", "that", "the", "then", "to",
    "today", "too", "was", "what", "when", "which", "who", "with", "you", "your",
}
# After "I'm", words that describe the person rather than name them ("I'm Sorry").
_NOT_NAMES = {
    "alright", "back", "bored", "busy", "confused", "cool", "curious", "done", "excited",
    "feeling", "fine", "getting", "glad", "going", "good", "great", "happy", "here", "home",
    "hungry", "interested", "into", "just", "learning", "looking", "lost", "new", "not", "ok",
    "okay", "ready", "really", "sad", "so", "sorry", "still", "sure", "testing", "thinking",
    "tired", "trying", "using", "very", "well", "wondering", "working",
}
_NAME_TITLES = {"dr.", "mr.", "mrs.", "ms.", "mx.", "prof.", "sir", "dame"}
_NAME_WORD = re.compile(r"^[^\W\d_](?:[^\W\d_]|['\-](?=[^\W\d_]))*$")
_MAX_NAME_WORDS = 5


@dataclass(frozen=True, slots=True)
class Intent:
    """One row of the table."""

    name: str
    owner: str
    patterns: tuple[re.Pattern[str], ...]
    clean: Callable[[Args], Args | None] = field(default=lambda args: args)


@dataclass(frozen=True, slots=True)
class IntentMatch:
    """The intent a message matched and its arguments."""

    intent: Intent
    args: Args


def _rx(*patterns: str) -> tuple[re.Pattern[str], ...]:
    return tuple(re.compile(p, re.IGNORECASE) for p in patterns)


# -- normalising ----------------------------------------------------------------------------

_QUOTES = str.maketrans({
    "\u2018": "'", "\u2019": "'", "\u02bc": "'", "\u201c": '"', "\u201d": '"',
    "\u00a0": " ", "\u2013": "-", "\u2014": " - ",
})
_SMILEY = re.compile(r"(?<!\S)(?:[:;=][-'^o]?[()\[\]DPpOo3/\\|*$@]+|<3+|\^_*\^)(?!\S)")
_TRAILING = re.compile(
    r"(?:[\s,]+(?:please|pls|plz|thanks|thank you|thx|lol|lmao|haha+|hehe+))+(?=[\s.!?]*$)",
    re.IGNORECASE,
)


def _is_pictograph(ch: str) -> bool:
    code = ord(ch)
    if code < 0x80:
        return False
    category = unicodedata.category(ch)
    return (
        category in ("So", "Cs", "Co", "Cf", "Sk", "Me")
        or 0xFE00 <= code <= 0xFE0F  # variation selectors (emoji presentation)
        or 0x1F000 <= code <= 0x1FAFF
    )


def normalize(text: str) -> str:
    """``text`` as the patterns read it (see the module docstring).

    Example:
        >>> normalize("😂 Tell me a joke about Python, please 🐍")
        'Tell me a joke about Python'
    """
    value = unicodedata.normalize("NFC", text or "").translate(_QUOTES)
    value = "".join(" " if _is_pictograph(ch) else ch for ch in value)
    value = _SMILEY.sub(" ", value)
    value = " ".join(value.split())
    stripped = _TRAILING.sub("", value).strip()
    return stripped if stripped.strip(" .!?,") else value


# -- argument cleaners ----------------------------------------------------------------------


def _clean_topic(args: Args) -> Args:
    topic = " ".join(str(args.get("topic") or "").lower().split())
    words = [w for w in topic.split() if w not in _NOT_TOPICS]
    return {**args, "topic": " ".join(words)}


def _resolve(word: str) -> tuple[str | None, str | None, list[str]]:
    """One ticker or company name as typed: ``(ticker, company name, suggestions)``.

    A ticker of the company table is kept as typed ("msft"); a company name becomes its
    ticker ("Apple" -> AAPL, with the name); a misspelt name or ticker in lower or mixed case
    ("aple", "Nvdia") gives no ticker but the suggestions; anything else is kept as typed (the
    tool checks it), so ``APLE`` in capitals is looked up as the ticker it is.
    """
    word = word.strip()
    if companies.is_ticker(word):
        return word, None, []
    company = companies.lookup(word)
    if company is not None:
        return company.ticker, company.name, []
    if not word.lstrip("$").isupper():
        found = companies.suggest(word)
        if found:
            return None, None, [c.ticker for c in found]
    return word, None, []


def _clean_tickers(args: Args) -> Args:
    """Tickers from "AAPL, msft and $nvda" or "Apple and Nvidia". Words split on spaces only
    when each looks like a symbol or is a company name, so "apple computers" stays one
    (invalid) name instead of becoming AAPL and COMPUTERS.

    Adds ``companies`` ({ticker: name}) for names turned into tickers and ``unknown``
    ({word: [suggested tickers]}) for misspelt ones, when there are any.
    """
    raw = str(args.get("tickers") or "")
    # Names with "&" or "and" in them, before "&" and "and" separate tickers.
    named: dict[str, str] = {}

    def protect(found: re.Match[str]) -> str:
        company = companies.lookup(re.sub(r"\s+and\s+", " & ", found.group(0), flags=re.I))
        if company is None:
            return found.group(0)
        named[company.ticker] = company.name
        return company.ticker

    raw = re.sub(
        r"\b(?:johnson (?:&|and) johnson|procter (?:&|and) gamble|at&t|j&j|p&g|"
        r"bank of america)\b",
        protect, raw, flags=re.IGNORECASE,
    )
    groups = re.split(r"\s*(?:,|&|\band\b|\bplus\b)\s*", raw, flags=re.I)
    items: list[str] = []
    for group in groups:
        words = [w.strip(" .!?'") for w in group.split()]
        words = [w for w in words if w and w.lower() not in _NOT_TICKERS]
        if not words:
            continue
        whole = " ".join(words)
        if len(words) > 1 and companies.lookup(whole) is not None:
            items.append(whole)
        elif all(_SYMBOL.match(w) or companies.lookup(w) for w in words):
            items.extend(words)
        else:
            items.append(whole)
    tickers: list[str] = []
    unknown: dict[str, list[str]] = {}
    for item in items:
        if item in named:
            ticker, name, hints = item, named[item], []
        else:
            ticker, name, hints = _resolve(item.lstrip("$") if _SYMBOL.match(item) else item)
        if hints:
            unknown[item] = hints
        elif ticker is not None and ticker not in tickers:
            tickers.append(ticker)
            if name is not None:
                named[ticker] = name
    out: Args = {**args, "tickers": tickers}
    found = {t: n for t, n in named.items() if t in tickers}
    if found:
        out["companies"] = found
    if unknown:
        out["unknown"] = unknown
    return out


def _clean_ticker(args: Args) -> Args | None:
    """One ticker for a price: as typed, from a company name, or None with suggestions.

    Loose captures count only when they fit: ``known`` (the first word of "msft price") only
    when it is a ticker or name of the company table, ``fuzzy`` (of "aple stock price") also
    when it is a misspelling of one; otherwise the pattern does not apply (None).
    """
    known, fuzzy = args.get("known"), args.get("fuzzy")
    raw = str(known or fuzzy or args.get("ticker") or "").strip(" .!?'")
    if not raw:
        return {"ticker": None}
    if raw.lower() in _NOT_STOCKS:
        return None if known or fuzzy else {"ticker": None}
    ticker, name, hints = _resolve(raw.lstrip("$"))
    if hints and not known:
        return {"ticker": None, "unknown": raw, "suggestions": hints}
    if (known or fuzzy) and (hints or (name is None and not companies.is_ticker(raw))):
        return None
    out: Args = {"ticker": ticker}
    if name is not None:
        out["company"] = name
    return out


def _clean_how_is(args: Args) -> Args | None:
    """"how is X doing": a stock unless X is "you", "it", "everything"..."""
    raw = str(args.get("ticker") or "").strip()
    if raw.lower() in _NOT_STOCKS:
        return None
    return _clean_ticker(args)


def _strip_times(query: str) -> tuple[str, int]:
    days = 0
    for pattern, value in _TIME_PHRASES:
        found = re.search(pattern, query, re.IGNORECASE)
        if found:
            days = int(found.group(1)) if value < 0 else value
            query = (query[: found.start()] + query[found.end():]).strip()
            break
    for pattern in (_LAST_SESSION, _BEFORE, r"\bagain\b"):
        query = re.sub(rf"(?:^|\s+){pattern}\b", " ", query, flags=re.IGNORECASE)
    return " ".join(query.split()), days


def _clean_query(args: Args) -> Args:
    query, days = _strip_times(" ".join(str(args.get("query") or "").split()))
    query = re.sub(r"^(?:the|my|our)\s+", "", query, flags=re.IGNORECASE).strip(" .!?,")
    return {**args, "query": query, "days": days}


def _clean_text(key: str) -> Callable[[Args], Args]:
    def clean(args: Args) -> Args:
        return {**args, key: " ".join(str(args.get(key) or "").split()).strip(" .!?,")}

    return clean


def _name_words(text: str, *, strict: bool) -> tuple[list[str], bool]:
    """The words of a name at the start of ``text``, and whether it ended cleanly (at the
    end, at punctuation or at a word such as "and"), not at a word that is not a name."""
    words: list[str] = []
    for token in text.split():
        low = token.lower()
        if low in _NAME_TITLES and not words:
            words.append(token)
            continue
        if len(words) >= _MAX_NAME_WORDS:
            return words, False
        last = token.endswith(".")
        word = token.rstrip(".")
        initial = last and len(word) == 1 and word.isalpha()
        if not word or word.lower() in _NAME_STOPS or not _NAME_WORD.match(word):
            return words, True
        if strict and not (word[0].isupper() and word.lower() not in _NOT_NAMES):
            return words, False
        words.append(token if initial else word)
        if last and not initial:
            return words, True
    return words, True


def _clean_name(args: Args) -> Args | None:
    """The name only: "Dana and I'm a backend developer" is Dana. After "I'm" (the ``iam``
    group) the words must be capitalised and end the sentence or its clause, so "I'm José"
    names José and "I'm tired" or "I'm Python developer" does not name anybody."""
    strict = "iam" in args
    text = str(args.get("iam") if strict else args.get("name") or "")
    words, clean_end = _name_words(text, strict=strict)
    if strict and (not words or not clean_end):
        return None
    return {"name": " ".join(words)}


HISTORY_INTENTS: tuple[Intent, ...] = (
    Intent("history_last_session", "historian", _rx(
        r"\bwhat (?:(?:did|have|had|were|was) )?(?:we|i|you) " + _HISTORY_VERB + _TO_YOU
        + r"(?: about)?\s+" + _LAST_SESSION + _END,
        r"\b(?:remind me|recap|summari[sz]e|summary of|tell me about|go over)\s+(?:of\s+)?"
        + _LAST_SESSION + _END,
        r"\bwhat (?:was|were|did)\s+(?:in\s+)?" + _LAST_SESSION + r"(?: (?:about|like))?"
        + _END,
        r"\bwhat happened\s+" + _LAST_SESSION + _END,
        r"^\s*" + _LAST_SESSION + _END,
    )),
    # Statements: "previously we talked about python", "we talked about TSLA before, what
    # did you say?" (before the summary row, which "what did you say?" would match).
    Intent("history_search", "historian", _rx(
        r"^\s*(?:so\s+)?(?:" + _BEFORE + r"|" + _LAST_SESSION + r"),?\s+(?:we|i|you)\s+"
        r"(?:talked|discussed|chatted|spoke|asked|said|told|mentioned)" + _TO_YOU
        + r"\s+(?:about\s+)?(?P<query>[^?!.,;]+)",
        r"\b(?:we|i)\s+(?:talked|discussed|chatted|spoke|asked|mentioned)" + _TO_YOU
        + r"\s+about\s+(?P<query>[^?!.,;]+?)\s+(?:" + _BEFORE + r"|" + _LAST_SESSION + r")\b",
    ), _clean_query),
    Intent("history_summary", "historian", _rx(
        r"\bwhat (?:(?:did|have|had|were) )?(?:we|i|you) (?:been |have )?" + _HISTORY_VERB
        + _TO_YOU + r"(?: about)?(?:\s+" + _BEFORE + r")?" + _END,
    )),
    Intent("history_search", "historian", _rx(
        r"\bwhat (?:(?:did|have|had) )?(?:i|we|you) (?:" + _HISTORY_VERB + r")" + _TO_YOU
        + r" about (?P<query>[^?!]+)",
        r"\b(?:did|have) (?:we|i) (?:ever )?(?:talk|talked|ask|asked|discuss|discussed|chat|"
        r"chatted)(?: you)? about (?P<query>[^?!]+)",
        r"\bwhen did (?:i|we) (?:ask|talk|discuss|chat|mention)(?: you)? about (?P<query>[^?!]+)",
        r"\bsearch (?:my |our |the |your )?(?:history|conversations?|memory|memories|chats?) "
        r"for (?P<query>[^?!]+)",
        r"\bdo you (?:remember|recall) (?:what |when |if |anything )?(?:i|we) (?:said|say|told|"
        r"talked|asked|mentioned|discussed)(?: you| me)?(?: about)? (?P<query>[^?!]+)",
        r"\bwhat do you (?:remember|recall) about (?!(?:me|myself)\s*[?.!]*\s*$)(?P<query>[^?!]+)",
        r"\bdo you (?:remember|recall) (?:anything )?(?:about )?"
        r"(?!(?:me|myself|my name|who i am)\b)(?P<query>[^?!]+)",
        r"\b(?:did|have) i (?:ever )?(?:mention|mentioned) (?P<query>[^?!]+)",
    ), _clean_query),
    Intent("list_sessions", "historian", _rx(
        r"\bhow many (?:sessions|conversations|chats|times have we (?:talked|chatted|spoken))\b",
        r"\b(?:list|show)(?: me)? (?:all )?(?:my|our) (?:past |previous |earlier |old )?"
        r"(?:sessions|conversations|chats)\b",
    )),
    Intent("history_summary", "historian", _rx(
        r"\bwhat (?:did|have) we (?:talk|talked|discuss|discussed|chat|chatted) about\b",
        r"\bwhat have we been (?:talking|chatting) about\b",
        r"\bwhat did i (?:ask|say|tell)(?: you)?" + _END,
        r"\b(?:summari[sz]e|recap|summary of)\b.*\b(?:conversations?|chats?|talks?|sessions?|"
        r"history)\b",
        r"\b(?:give me|can i (?:get|have)|i(?:'d like| want)) an? (?:quick |short )?"
        r"(?:recap|summary)\b",
        r"\bconversation history\b",
        _LEAD + r"(?:recap|summary|history)" + _END,
    )),
)
WATCHLIST_INTENTS: tuple[Intent, ...] = (
    Intent("watchlist_remove", "stock_analyst", _rx(
        r"\b(?:remove|delete|drop|take)\s+" + _TICKERS + r"\s+(?:off|from|out of)\s+"
        + _WATCHLIST,
        _LEAD + r"(?:remove|unwatch|untrack|stop (?:watching|tracking|following))\s+"
        + _TICKERS + _END,
    ), _clean_tickers),
    Intent("watchlist_add", "stock_analyst", _rx(
        r"\b(?:add|put|include)\s+" + _TICKERS + r"\s+(?:to|on|in|into)\s+" + _WATCHLIST,
        _LEAD + r"(?:add|watch|track|follow|start (?:watching|tracking))\s+(?:stocks?\s+)?"
        + _TICKERS + _END,
    ), _clean_tickers),
    Intent("watchlist_prices", "stock_analyst", _rx(
        r"\b(?:prices?|quotes?|how (?:is|'s|are))\b.*\bwatch ?-?list\b",
        r"\bwatch ?-?list\b.*\b(?:prices?|quotes?|doing)\b",
    )),
    Intent("watchlist_show", "stock_analyst", _rx(
        r"\bwatch ?-?list\b",
        r"\bwhat stocks (?:am i|do i|are we) (?:watching|tracking|following|have)\b",
    )),
)
JOKE_INTENTS: tuple[Intent, ...] = (
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
        r"\b(?:need|want|could use) a (?:good )?laugh\b",
        _LEAD + r"(?:another(?: one)?|one more|more)" + _END,
    ), _clean_topic),
)
# Single prices come after the jokes ("a joke about the stock market").
PRICE_INTENTS: tuple[Intent, ...] = (
    Intent("price", "stock_analyst", _rx(
        r"\b(?:price|quote|value)\s+(?:of|for)\s+(?:the\s+)?(?:stock\s+)?\$?(?P<ticker>"
        + _COMPANY + r")(?:'s)?\b",
        r"\b(?:price|quote|value)\s+(?:of|for)\s+(?:the\s+)?\$?(?P<ticker>[A-Za-z][A-Za-z.]{0,8})\b",
    ), _clean_ticker),
    Intent("price", "stock_analyst", _rx(
        r"\bhow (?:is|'s|are)\s+\$?(?P<ticker>" + _COMPANY + r")(?:'s)?(?:\s+(?:stock|shares?))?"
        r"\s+(?:doing|trading)\b",
        r"\bhow (?:is|'s|are)\s+\$?(?P<ticker>[A-Za-z][A-Za-z.]{0,8})(?:\s+(?:stock|shares?))?"
        r"\s+(?:doing|trading)\b",
    ), _clean_how_is),
    Intent("price", "stock_analyst", _rx(
        r"\$(?P<ticker>[A-Za-z][A-Za-z.]{0,7})\b",
        r"\b(?:(?P<ticker>" + _UPPER_TICKER + r")|(?P<known>" + _COMPANY
        + r"|[A-Za-z]{2,5}(?:\.[A-Za-z])?))(?:'s)?\s+(?:stock\s+|share\s+)?(?:price|quote)s?\b",
        r"\b(?P<known>" + _COMPANY + r"|" + _UPPER_TICKER + r")(?:'s)?\s+(?:stock|shares)\b",
        r"\bhow much (?:is|are|does)\s+(?:an? |one )?(?:share of\s+)?\$?(?:(?P<known>"
        + _COMPANY + r")|(?P<ticker>" + _UPPER_TICKER + r"))(?:'s)?(?:\s+(?:stock|shares?))?"
        r"(?:\s+(?:cost|worth))?" + _END,
        r"\bwhat(?:'s| is)\s+\$?(?:(?P<known>" + _COMPANY + r")|(?P<ticker>" + _UPPER_TICKER
        + r"))(?:\s+(?:stock|shares?))?\s+(?:trading at|at|worth)(?: now| today)?" + _END,
        r"\b(?P<fuzzy>[A-Za-z]{4,12})\s+(?:stock|share)\s+price\b",
        r"\b(?:stock |share )?(?:price|quote)s?\b",
    ), _clean_ticker),
)
MANAGER_INTENTS: tuple[Intent, ...] = (
    Intent("set_name", "manager", _rx(
        r"\bmy name(?:'s| is)\s+(?P<name>[^!?,;:()\n]+)",
        _LEAD + r"call me\s+(?P<name>[^!?,;:()\n]+)",
        r"\b(?:you can|you may|just|please) call me\s+(?P<name>[^!?,;:()\n]+)",
        r"\bi go by\s+(?P<name>[^!?,;:()\n]+)",
        r"\bi(?:'m| am)\s+(?P<iam>[^!?,;:()\n]+)",
    ), _clean_name),
    Intent("get_name", "manager", _rx(
        r"\bwhat(?:'?s| is) my name\b",
        r"\bwho am i\b",
        r"\bdo you (?:know|remember) (?:my name|who i am)\b",
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
        r"\bmy (?:preferences|settings)\b",
        r"\bwhat do you (?:know|remember) about me\b",
    )),
    Intent("nerd_topic", "manager", _rx(
        r"\bi(?:'m| am) (?:really |very |totally )?into\s+" + _TOPIC + _END,
        r"\bi (?:really )?(?:like|love|enjoy)\s+" + _TOPIC + _END,
    ), _clean_topic),
    Intent("help", "manager", _rx(
        _LEAD + r"(?:help|\?|commands|menu)(?: me)?" + _END,
        r"\bwhat can you (?:do|help)\b",
        r"\bhow does this work\b",
        r"\bhow do i use (?:this|you)\b",
        r"\bwho are you\b",
        r"\bare you (?:an? |the )?(?:ai|llm|bot|robot|real|human|gpt|chat ?gpt|gemini|claude|"
        r"language model|person)\b",
    )),
    Intent("greeting", "manager", _rx(
        r"^\s*(?:hi|hello|hey|hiya|howdy|yo|greetings|good (?:morning|afternoon|evening)|"
        r"morning|hallo|hola)\b",
        r"^\s*how (?:are you|are things|is it going|'s it going)\b",
    )),
    Intent("thanks", "manager", _rx(r"^\s*(?:thanks|thank you|cheers|thx|ty)\b")),
    Intent("goodbye", "manager", _rx(
        r"^\s*(?:bye|goodbye|see you|see ya|cya|good night|later|farewell)\b",
    )),
)


INTENTS: tuple[Intent, ...] = (
    *HISTORY_INTENTS, *WATCHLIST_INTENTS, *JOKE_INTENTS, *PRICE_INTENTS, *MANAGER_INTENTS
)
"""The built-in table (the team's agents), in the order it is tried."""


def table() -> tuple[Intent, ...]:
    """Every intent, built-in and registered (``rules.register``), in the order tried."""
    return tuple(intent for rule_set in rules.rule_sets() for intent in rule_set.intents)


def classify(text: str) -> IntentMatch | None:
    """The first intent whose pattern matches ``text`` (normalised first), with its cleaned
    arguments."""
    message = normalize(text)
    for intent in table():
        for pattern in intent.patterns:
            found = pattern.search(message)
            if found:
                args = {k: v for k, v in found.groupdict().items() if v is not None}
                cleaned = intent.clean(args)
                if cleaned is not None:
                    return IntentMatch(intent=intent, args=cleaned)
    return None
