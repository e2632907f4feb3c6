"""What the offline model does for each intent: which tools to call, in order, then what to say.

A plan is a function ``(args, done) -> Call | Say``. ``done`` holds the tool calls this agent
already made in the current turn (with their results), so the model, like an LLM, is called
again after every tool result and picks the next step from what it sees. Replies are built
only from tool results: nothing is made up.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..defaults import TRANSFER_TOOL
from . import rules
from ._request import Step
from .recall import describe_recall, read_memories
from .replies import (
    describe_joke,
    describe_last_session,
    describe_profile,
    describe_quote,
    describe_sessions,
    describe_stats,
    describe_suggestions,
    describe_summary,
    describe_summary_window,
    describe_watchlist_change,
    describe_watchlist_quotes,
    help_text,
)

__all__ = ["PLANS", "Call", "Done", "Plan", "Say"]

Args = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Call:
    """Call one tool."""

    name: str
    args: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Say:
    """Answer the user with text (ends the agent's turn)."""

    text: str


Action = Call | Say


class Done:
    """The tool calls already made in this turn, and what the agent can see of its situation.

    Attributes:
        steps: this agent's tool calls in the turn (transfers left out), with their results.
        tools: the names of the tools the agent has (optional tools change some plans).
        session_id: the current session's id when the instruction gives it (historian).
    """

    def __init__(
        self, steps: list[Step], *, tools: frozenset[str] = frozenset(),
        session_id: str | None = None,
    ) -> None:
        self.steps = [s for s in steps if s.name != TRANSFER_TOOL]
        self.tools = tools
        self.session_id = session_id

    def __len__(self) -> int:
        return len(self.steps)

    def has(self, name: str) -> bool:
        """Whether ``name`` was called."""
        return any(s.name == name for s in self.steps)

    def result(self, name: str) -> dict[str, Any]:
        """The latest result of ``name`` ({} if not called or no result)."""
        for step in reversed(self.steps):
            if step.name == name:
                return step.result or {}
        return {}

    def results(self, name: str) -> list[dict[str, Any]]:
        """Every result of ``name``, in call order."""
        return [s.result or {} for s in self.steps if s.name == name]


@dataclass(frozen=True, slots=True)
class Plan:
    """A plan and the tools it needs the agent to have."""

    run: Callable[[Args, Done], Action]
    tools: frozenset[str]


def _failed(result: dict[str, Any]) -> str | None:
    if result.get("status") in ("error", "unavailable"):
        return str(result.get("error") or "That did not work.")
    return None


def _one_call(
    tool: str,
    make_args: Callable[[Args], dict[str, Any]],
    describe: Callable[[dict[str, Any], Args], str],
) -> Callable[[Args, Done], Action]:
    """A plan that calls one tool and describes its result (or says what went wrong)."""

    def run(args: Args, done: Done) -> Action:
        if not done.has(tool):
            return Call(tool, make_args(args))
        result = done.result(tool)
        problem = _failed(result)
        return Say(f"Sorry: {problem}" if problem else describe(result, args))

    return run


def _no_args(_: Args) -> dict[str, Any]:
    return {}


def _from_result(
    describe: Callable[[dict[str, Any]], str],
) -> Callable[[dict[str, Any], Args], str]:
    """A describer that needs only the tool result."""
    return lambda result, _args: describe(result)


# -- funny_nerd ---------------------------------------------------------------------------------


def plan_joke(args: Args, done: Done) -> Action:
    if not done.has("tell_joke"):
        return Call("tell_joke", {"topic": args.get("topic", "")})
    told = done.result("tell_joke")
    if told.get("status") != "ok":
        topics = ", ".join(told.get("topics") or [])
        return Say(f"Sorry, {told.get('error')} I have jokes about: {topics}.")
    if told.get("chosen_because") == "asked" and not done.has("add_joke_preference"):
        return Call("add_joke_preference", {"topic": told["topic"]})
    return Say(describe_joke(told, done.result("add_joke_preference")))


def plan_joke_topics(args: Args, done: Done) -> Action:
    if not done.has("list_joke_topics"):
        return Call("list_joke_topics", {})
    topics = done.result("list_joke_topics").get("topics") or {}
    listing = ", ".join(
        f"{t} ({v['unheard']} of {v['total']} new to you)" for t, v in topics.items()
    )
    return Say(f"I have jokes about: {listing}. Ask e.g. 'tell me a joke about physics'.")


def _topic_plan(tool: str, done_text: str) -> Callable[[Args, Done], Action]:
    def run(args: Args, done: Done) -> Action:
        if not args.get("topic"):
            return Say("Which topic do you mean? For example 'I like math jokes'.")
        return _one_call(
            tool, lambda a: {"topic": a["topic"]},
            lambda r, a: done_text.format(
                topic=a["topic"], topics=", ".join(r.get("joke_preferences") or []) or "none yet"
            ),
        )(args, done)

    return run


# -- stock_analyst ------------------------------------------------------------------------------


def _named(companies: dict[str, str]) -> str:
    """"Apple is AAPL." for company names the request used instead of tickers."""
    return "; ".join(f"{name} is {ticker}" for ticker, name in companies.items()) + "."


def _watchlist_plan(tool: str, verb: str) -> Callable[[Args, Done], Action]:
    where = "to" if verb == "add" else "from"

    def run(args: Args, done: Done) -> Action:
        tickers: list[str] = args.get("tickers") or []
        unknown: dict[str, list[str]] = args.get("unknown") or {}
        if unknown:  # a misspelt name: ask rather than guess (nothing is changed)
            lines = [
                describe_suggestions(word, hints, f"{verb} {{ticker}} {where} my watchlist")
                for word, hints in unknown.items()
            ]
            return Say("\n".join([*lines, "I haven't changed your watch list."]))
        if not tickers:
            return Say(f"Which ticker should I {verb}? For example '{verb} AAPL'.")
        made = done.results(tool)
        if len(made) < len(tickers):
            return Call(tool, {"ticker": tickers[len(made)]})
        text = describe_watchlist_change(verb, tickers, made)
        named = args.get("companies")
        return Say(f"{_named(named)}\n{text}" if named else text)

    return run


def plan_price(args: Args, done: Done) -> Action:
    ticker = args.get("ticker")
    if args.get("suggestions"):
        return Say(describe_suggestions(
            str(args.get("unknown") or ""), list(args["suggestions"]), "price of {ticker}"
        ))
    if not ticker:
        return Say(
            "Which stock? Give me its ticker symbol or the company's name, for example "
            "'price of AAPL' or 'price of Apple' (I know the names of about 60 large US "
            "companies; for any other, use its ticker)."
        )
    if not done.has("get_stock_price"):
        return Call("get_stock_price", {"ticker": ticker})
    text = describe_quote(done.result("get_stock_price"))
    company = args.get("company")
    return Say(f"{_named({ticker: company})} {text}" if company else text)


def plan_watchlist_prices(args: Args, done: Done) -> Action:
    if not done.has("get_watchlist_prices"):
        return Call("get_watchlist_prices", {})
    result = done.result("get_watchlist_prices")
    problem = _failed(result)
    return Say(problem if problem else describe_watchlist_quotes(result))


def _describe_watchlist(result: dict[str, Any], _: Args) -> str:
    tickers = result.get("stock_watchlist") or []
    if not tickers:
        return "Your watch list is empty. Say 'add AAPL to my watchlist' to start one."
    return (
        f"Your watch list: {', '.join(tickers)}. "
        "Ask 'prices for my watchlist' for live prices."
    )


# -- historian ----------------------------------------------------------------------------------


MEMORY_TOOL = "load_memory"
HISTORY_SEARCH_TOOL = "search_conversation_history"

def _is_area_query(query: str) -> bool:
    """Whether the query names a whole area ("stocks", ``rules.area_words``): the stored
    history matches it by the agent that handled the area, which a text search cannot."""
    words = {w.strip(".,!?;:'\"()").lower() for w in query.split()}
    return any(words & area for area in rules.area_words().values())


def plan_history_search(args: Args, done: Done) -> Action:
    """Recall: long memory first (``load_memory``), the stored history when memory has
    nothing, is not available, or the query names a whole area or a time window."""
    query = args.get("query") or ""
    if not query:
        return plan_history_summary(args, done)
    days = args.get("days", 0)
    use_memory = MEMORY_TOOL in done.tools
    if use_memory and not done.has(MEMORY_TOOL):
        return Call(MEMORY_TOOL, {"query": query})
    recalled = read_memories(done.result(MEMORY_TOOL), days=days) if use_memory else None
    need_history = (
        recalled is None or not recalled.memories or recalled.error is not None
        or _is_area_query(query) or bool(days)
    )
    if need_history and not done.has(HISTORY_SEARCH_TOOL):
        return Call(HISTORY_SEARCH_TOOL, {"query": query, "days": days})
    history = done.result(HISTORY_SEARCH_TOOL) if need_history else {}
    problem = _failed(history) if history else None
    if problem and not (recalled and recalled.memories):
        return Say(f"Sorry: {problem}")
    return Say(describe_recall(
        query, days=days, recalled=recalled, history=history if not problem else {},
        session_id=done.session_id,
    ))


SUMMARY_TOOL = "get_conversation_summary"
MAX_SUMMARY_ENTRIES = 50
"""The most exchanges the summary tool returns: what "last time" and "yesterday" look at."""


def plan_history_summary(args: Args, done: Done) -> Action:
    days = args.get("days") or 0
    if days:  # "what did we talk about yesterday?": the recent exchanges within the window
        return _one_call(
            SUMMARY_TOOL, lambda a: {"scope": "all", "max_entries": MAX_SUMMARY_ENTRIES},
            lambda r, a: describe_summary_window(r, int(days)),
        )(args, done)
    return _one_call(
        SUMMARY_TOOL, lambda a: {"scope": "all", "max_entries": 10},
        _from_result(describe_summary),
    )(args, done)


def plan_last_session(args: Args, done: Done) -> Action:
    """"What did we talk about last time?": the latest earlier session's exchanges."""
    return _one_call(
        SUMMARY_TOOL, lambda a: {"scope": "all", "max_entries": MAX_SUMMARY_ENTRIES},
        lambda r, a: describe_last_session(r, done.session_id),
    )(args, done)


# -- manager ------------------------------------------------------------------------------------


def plan_greeting(args: Args, done: Done) -> Action:
    if not done.has("get_user_profile"):
        return Call("get_user_profile", {})
    name = done.result("get_user_profile").get("user_name")
    hello = f"Hello {name}!" if name else "Hello!"
    return Say(f"{hello} {help_text()}")


def plan_set_name(args: Args, done: Done) -> Action:
    if not args.get("name"):
        return Say("What's your name? Say 'my name is ...' and I'll remember it.")
    return _one_call(
        "set_user_name", lambda a: {"name": a["name"]},
        lambda r, a: f"Nice to meet you, {r['user_name']}! I'll remember your name.",
    )(args, done)


def _name_reply(result: dict[str, Any], _: Args) -> str:
    name = result.get("user_name")
    if not name:
        return "You haven't told me your name yet. Say 'my name is ...' and I'll remember it."
    return f"You're {name}."


PLANS: dict[str, Plan] = {
    "joke": Plan(plan_joke, frozenset({"tell_joke", "add_joke_preference"})),
    "joke_topics": Plan(plan_joke_topics, frozenset({"list_joke_topics"})),
    "joke_like": Plan(
        _topic_plan("add_joke_preference",
                    "Noted: you like {topic} jokes. Your joke topics: {topics}."),
        frozenset({"add_joke_preference"}),
    ),
    "joke_forget": Plan(
        _topic_plan("remove_joke_preference",
                    "OK, I've forgotten that you like {topic} jokes. Your joke topics: {topics}."),
        frozenset({"remove_joke_preference"}),
    ),
    "watchlist_add": Plan(_watchlist_plan("add_to_stock_watchlist", "add"),
                          frozenset({"add_to_stock_watchlist"})),
    "watchlist_remove": Plan(_watchlist_plan("remove_from_stock_watchlist", "remove"),
                             frozenset({"remove_from_stock_watchlist"})),
    "watchlist_show": Plan(_one_call("get_stock_watchlist", _no_args, _describe_watchlist),
                           frozenset({"get_stock_watchlist"})),
    "watchlist_prices": Plan(plan_watchlist_prices, frozenset({"get_watchlist_prices"})),
    "price": Plan(plan_price, frozenset({"get_stock_price"})),
    "history_summary": Plan(plan_history_summary, frozenset({"get_conversation_summary"})),
    "history_last_session": Plan(plan_last_session, frozenset({"get_conversation_summary"})),
    "history_search": Plan(plan_history_search,
                           frozenset({"search_conversation_history", "get_conversation_summary"})),
    "list_sessions": Plan(_one_call("list_my_sessions", _no_args, _from_result(describe_sessions)),
                          frozenset({"list_my_sessions"})),
    "set_name": Plan(plan_set_name, frozenset({"set_user_name"})),
    "get_name": Plan(_one_call("get_user_profile", _no_args, _name_reply),
                     frozenset({"get_user_profile"})),
    "favorite_agent": Plan(
        _one_call("set_favorite_agent", lambda a: {"agent_name": a.get("agent", "")},
                  lambda r, a: f"Done: {r['favorite_agent']} is now your favourite agent."),
        frozenset({"set_favorite_agent"}),
    ),
    "stats": Plan(_one_call("get_agent_performance_stats", _no_args, _from_result(describe_stats)),
                  frozenset({"get_agent_performance_stats"})),
    "profile": Plan(_one_call("get_user_profile", _no_args, _from_result(describe_profile)),
                    frozenset({"get_user_profile"})),
    "nerd_topic": Plan(
        _one_call(
            "update_user_preferences",
            lambda a: {"preference": "nerd_topics", "value": a.get("topic", ""), "action": "add"},
            lambda r, a: f"Noted: you're into {a['topic']}.",
        ),
        frozenset({"update_user_preferences"}),
    ),
    "help": Plan(lambda a, d: Say(help_text()), frozenset()),
    "greeting": Plan(plan_greeting, frozenset({"get_user_profile"})),
    "thanks": Plan(lambda a, d: Say("You're welcome!"), frozenset()),
    "goodbye": Plan(
        lambda a, d: Say("Goodbye! Everything we talked about is saved for next time."),
        frozenset(),
    ),
}
