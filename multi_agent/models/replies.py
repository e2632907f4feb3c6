"""How the offline model words its answers. Every fact in a reply comes from a tool result."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from . import companies, rules

__all__ = [
    "HELP",
    "NOT_UNDERSTOOD",
    "NOT_UNDERSTOOD_PREFIX",
    "describe_joke",
    "describe_last_session",
    "describe_profile",
    "describe_quote",
    "describe_search",
    "describe_sessions",
    "describe_stats",
    "describe_suggestions",
    "describe_summary",
    "describe_summary_window",
    "describe_watchlist_change",
    "describe_watchlist_quotes",
    "help_text",
]

IDENTITY = (
    "I'm running on the built-in offline rules model: simple pattern rules, not an LLM, so "
    "I understand requests phrased like the examples below."
)

EXAMPLES = (
    "  - jokes: 'tell me a joke about python', 'another one', 'what joke topics are there?'\n"
    "  - stocks: 'add AAPL to my watchlist', 'remove AAPL from my watchlist', "
    "'show my watchlist', 'price of AAPL', 'prices for my watchlist'\n"
    "  - history: 'what did we talk about last time?', 'what did I ask about stocks last "
    "week?'\n"
    "  - you: 'my name is Ada', 'set my favourite agent to historian', 'show my profile', "
    "'show my stats'"
)

_TEAM = (
    "I'm the manager of a small team: funny_nerd tells nerdy jokes, stock_analyst keeps your "
    "watch list and looks up live prices, historian remembers what we talked about."
)
_SAVED = "Everything is saved, so I remember it in your next session too."
HELP = f"{_TEAM} {IDENTITY}\n{EXAMPLES}\n{_SAVED}"

NOT_UNDERSTOOD_PREFIX = "Sorry, I didn't understand"
NOT_UNDERSTOOD = NOT_UNDERSTOOD_PREFIX + " {text!r}. {identity}\n{examples}"


def examples_text() -> str:
    """:data:`EXAMPLES` and a line for each registered agent (``rules.RuleSet.examples``)."""
    _, extra = rules.help_lines()
    return "\n".join([EXAMPLES, *(f"  - {line}" for line in extra)])


def help_text() -> str:
    """:data:`HELP`, with what each registered agent does (``rules.RuleSet.help``)."""
    extra, examples = rules.help_lines()
    if not extra and not examples:
        return HELP
    also = f" Also: {'; '.join(extra)}." if extra else ""
    return f"{_TEAM}{also} {IDENTITY}\n{examples_text()}\n{_SAVED}"


def _day(stamp: Any) -> str:
    text = str(stamp or "")
    return text[:16].replace("T", " ") if text else "?"


def _quote(text: Any, limit: int = 90) -> str:
    value = " ".join(str(text or "").split())
    return value if len(value) <= limit else value[: limit - 1] + "…"


def describe_joke(told: dict[str, Any], liked: dict[str, Any]) -> str:
    """The joke, with what the user should know about the collection."""
    topic = told.get("topic")
    body = [str(told.get("joke"))]
    if not told.get("exhausted") and told.get("remaining") == 0:
        body.append(f"(That was the last {topic} joke you hadn't heard.)")
    if liked.get("status") == "ok" and liked.get("changed"):
        body.append(f"I'll remember that you like {topic} jokes.")
    text = " ".join(body)
    if told.get("exhausted"):
        return (
            f"You've now heard all {told.get('total')} of my {topic} jokes, so I'm starting "
            f"over:\n{text}"
        )
    if told.get("chosen_because") == "liked":
        return f"Since you like {topic} jokes: {text}"
    return text


def describe_watchlist_change(verb: str, tickers: list[str], results: list[dict[str, Any]]) -> str:
    """One line per ticker, then the whole watch list."""
    lines = []
    watchlist: list[str] | None = None
    for asked, result in zip(tickers, results, strict=False):
        ticker = result.get("ticker") or asked
        if result.get("status") != "ok":
            lines.append(f"Couldn't {verb} {asked}: {result.get('error')}")
            continue
        watchlist = result.get("stock_watchlist", watchlist)
        if verb == "add":
            lines.append(
                f"Added {ticker} to your watch list." if result.get("changed")
                else f"{ticker} was already on your watch list."
            )
        else:
            lines.append(f"Removed {ticker} from your watch list.")
    if watchlist is not None:
        lines.append(
            f"Your watch list: {', '.join(watchlist)}." if watchlist
            else "Your watch list is now empty."
        )
    return "\n".join(lines)


def describe_quote(result: dict[str, Any]) -> str:
    """A fetched price with its source, or why there is none."""
    ticker = result.get("ticker", "that stock")
    if result.get("status") == "ok":
        currency = f" {result['currency']}" if result.get("currency") else ""
        return (
            f"{ticker} last traded at {result['price']}{currency} "
            f"(source: {result.get('source')}, fetched {_day(result.get('fetched_at'))} UTC)."
        )
    if result.get("status") == "unavailable":
        return (
            f"I can't give you a price for {ticker} right now: {result.get('error')} "
            "I won't guess or make up a price."
        )
    return f"Sorry: {result.get('error')}"


def describe_watchlist_quotes(result: dict[str, Any]) -> str:
    """Prices for the watch list; failures reported once when they share a reason."""
    quotes = result.get("quotes") or []
    good = [q for q in quotes if q.get("status") == "ok"]
    bad = [q for q in quotes if q.get("status") != "ok"]
    lines = [describe_quote(q) for q in good]
    reasons = {q.get("error") for q in bad}
    if bad and len(reasons) == 1:
        names = ", ".join(str(q.get("ticker")) for q in bad)
        lines.append(
            f"I can't give you prices for {names} right now: {reasons.pop()} "
            "I won't guess or make up prices."
        )
    else:
        lines.extend(describe_quote(q) for q in bad)
    return "\n".join(lines)


def _exchange(entry: dict[str, Any]) -> str:
    return (
        f"  - {_day(entry.get('timestamp'))}: you said \"{_quote(entry.get('user_input'))}\" "
        f"and {entry.get('agent')} answered \"{_quote(entry.get('agent_response'))}\""
    )


def describe_summary(result: dict[str, Any]) -> str:
    """Turns per area and the latest exchanges."""
    total = result.get("total_turns") or 0
    if not total:
        return "I have no earlier conversation with you on record yet."
    sessions = result.get("sessions")
    where = f" across {sessions} session{'s' if sessions != 1 else ''}" if sessions else ""
    lines = [
        f"We've had {total} exchange{'s' if total != 1 else ''}{where} since "
        f"{_day(result.get('first_at'))} UTC:"
    ]
    areas = rules.area_labels()
    for agent, count in sorted((result.get("by_agent") or {}).items(), key=lambda kv: -kv[1]):
        lines.append(f"  - {areas.get(agent, agent)} ({agent}): {count}")
    recent = result.get("recent") or []
    if recent:
        lines.append("Most recently:")
        lines.extend(_exchange(e) for e in recent[-5:])
    return "\n".join(lines)


def _or(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " or " + items[-1]


def describe_search(result: dict[str, Any]) -> str:
    """What was found about the query, newest last; then what was found only under another
    name or ticker of the company asked about ("NVDA" for "Nvidia"), said as such."""
    query = result.get("query")
    days = result.get("days") or 0
    window = f" in the last {days} day{'s' if days != 1 else ''}" if days else ""
    matches = result.get("matches") or []
    also = result.get("alias_matches") or []
    if not matches and not also:
        return f"I found nothing about {query!r}{window} in our conversations."
    lines: list[str] = []
    if matches:
        total = result.get("total_matches") or len(matches)
        count = f"{total} exchange{'s' if total != 1 else ''}"
        lines.append(f"I found {count} about {query!r}{window}:")
        lines.extend(_exchange(e) for e in matches[-10:])
    if also:
        total = result.get("total_alias_matches") or len(also)
        names = _or(list(dict.fromkeys(str(e.get("alias")) for e in also)))
        count = f"{total} exchange{'s' if total != 1 else ''}"
        lines.append(
            f"Under {names}, another name for {query!r}, I found {count}{window} as well:"
            if matches else f"I found {count} about {query!r}{window} under {names}:"
        )
        lines.extend(_exchange(e) for e in also[-10:])
    return "\n".join(lines)


def _when(stamp: Any) -> datetime | None:
    try:
        when = datetime.fromisoformat(str(stamp))
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def describe_last_session(result: dict[str, Any], session_id: str | None) -> str:
    """"What did we talk about last time?": the exchanges of the latest earlier session, from
    a ``get_conversation_summary`` result (``recent`` carries each exchange's session)."""
    total = result.get("total_turns") or 0
    recent = result.get("recent") or []
    if not total:
        return "I have no earlier conversation with you on record yet."
    if session_id is None:  # this session can't be told apart: the whole recap instead
        return describe_summary(result)
    earlier = [e for e in recent if e.get("session_id") != session_id]
    if not earlier:
        if total > len(recent):
            return (
                f"The latest {len(recent)} exchanges I have are all from this session, so I "
                "can't show the one before it here; ask 'what did I say about ...?' to search "
                "every session."
            )
        lines = ["I have no session with you before this one on record. In this one so far:"]
        lines.extend(_exchange(e) for e in recent[-5:])
        return "\n".join(lines)
    previous = earlier[-1].get("session_id")
    rows = [e for e in recent if e.get("session_id") == previous]
    first, last = _day(rows[0].get("timestamp")), _day(rows[-1].get("timestamp"))
    span = first if first[:10] == last[:10] else f"{first} to {last}"
    cut = recent[0].get("session_id") == previous and total > len(recent)
    count = f"{len(rows)}{' or more' if cut else ''} exchange{'s' if len(rows) != 1 else ''}"
    lines = [f"Last time ({span} UTC) we had {count}:"]
    if len(rows) > 10:
        lines[0] = lines[0][:-1] + "; the latest 10:"
    lines.extend(_exchange(e) for e in rows[-10:])
    return "\n".join(lines)


def describe_summary_window(result: dict[str, Any], days: int) -> str:
    """"What did we talk about yesterday?": the recent exchanges within ``days`` days."""
    recent = result.get("recent") or []
    total = result.get("total_turns") or 0
    since = datetime.now(UTC) - timedelta(days=days)
    rows = [e for e in recent if (_when(e.get("timestamp")) or since) > since]
    window = f"in the last {days} day{'s' if days != 1 else ''}"
    if not rows:
        if not total:
            return "I have no earlier conversation with you on record yet."
        latest = _day(recent[-1].get("timestamp")) if recent else "?"
        return f"We haven't talked {window}; our latest exchange was on {latest} UTC."
    more = " (at least: I looked at the latest ones only)" if (
        len(rows) == len(recent) and total > len(recent)
    ) else ""
    lines = [f"{window[0].upper()}{window[1:]} we had {len(rows)} "
             f"exchange{'s' if len(rows) != 1 else ''}{more}:"]
    if len(rows) > 10:
        lines[0] = lines[0][:-1] + "; the latest 10:"
    lines.extend(_exchange(e) for e in rows[-10:])
    return "\n".join(lines)


def describe_suggestions(asked: str, suggestions: list[str], example: str) -> str:
    """A word that is no company or ticker I know but looks like a misspelling of some:
    ask, and say how to get the ticker exactly as typed. ``example`` is the request with
    ``{ticker}`` in it, e.g. ``"price of {ticker}"``."""
    known = [companies.lookup(t) for t in suggestions]
    labels = [c.label() if c is not None else t for c, t in zip(known, suggestions, strict=True)]
    text = (
        f"I don't know a stock called {asked!r}. Did you mean {_or(labels)}? "
        f"Say '{example.format(ticker=suggestions[0])}'"
    )
    symbol = asked.strip().lstrip("$").upper()
    if re.fullmatch(r"[A-Z]{1,5}(?:\.[A-Z]{1,2})?", symbol):
        text += f", or '{example.format(ticker=symbol)}' if {symbol} is the ticker you meant"
    return text + "."


def describe_sessions(result: dict[str, Any]) -> str:
    """The user's sessions, oldest first."""
    sessions = result.get("sessions") or []
    lines = [f"We've had {len(sessions)} session{'s' if len(sessions) != 1 else ''}:"]
    for s in sessions:
        mark = " (this one)" if s.get("current") else ""
        lines.append(
            f"  - started {_day(s.get('created_at'))}, {s.get('total_interactions', 0)} "
            f"exchanges, last active {_day(s.get('last_activity'))}{mark}"
        )
    return "\n".join(lines)


def describe_stats(result: dict[str, Any]) -> str:
    """Delegations per agent over all sessions."""
    agents = result.get("agents") or {}
    if not agents:
        return "I haven't delegated anything to the team for you yet."
    lines = [f"Delegations over all your sessions ({result.get('total_delegations')} in total):"]
    for name, stats in sorted(agents.items(), key=lambda kv: -kv[1].get("delegations", 0)):
        lines.append(
            f"  - {name}: {stats.get('delegations')} (last used {_day(stats.get('last_used'))})"
        )
    if result.get("most_used"):
        lines.append(f"Most used: {result['most_used']}.")
    if result.get("favorite_agent"):
        lines.append(f"Your favourite: {result['favorite_agent']}.")
    return "\n".join(lines)


def describe_profile(result: dict[str, Any]) -> str:
    """Everything remembered about the user."""
    prefs = result.get("preferences") or {}

    def listed(key: str) -> str:
        return ", ".join(prefs.get(key) or []) or "none yet"

    stats = result.get("agent_stats") or {}
    used = ", ".join(f"{k} {v.get('delegations', 0)}x" for k, v in sorted(stats.items()))
    return "\n".join([
        f"Name: {result.get('user_name') or 'not set (say: my name is ...)'}",
        f"Favourite agent: {prefs.get('favorite_agent') or 'none yet'}",
        f"Joke topics you like: {listed('joke_preferences')}",
        f"Stock watch list: {listed('stock_watchlist')}",
        f"Nerd topics: {listed('nerd_topics')}",
        f"Agents used: {used or 'none yet'}",
        f"Exchanges remembered: {result.get('remembered_turns', 0)}",
    ])
