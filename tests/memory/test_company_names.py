"""Ticker symbols and company names find each other (issue 12): the company table itself, the
historian's ``load_memory`` on the real DatabaseMemoryService (every backend: SQLite file and
in memory, PostgreSQL when configured), and the stored-history search.
"""

from __future__ import annotations

from typing import Any

import multi_agent.team.state_tools.tools as st
import pytest
from google.adk.tools.load_memory_tool import LoadMemoryResponse
from multi_agent.team.subagents.historian.memory_tool import SafeLoadMemoryTool

from multi_agent import DatabaseSessionService
from multi_agent.memory import DatabaseMemoryService
from multi_agent.memory.query import query_terms
from multi_agent.models import companies
from tests.agents.conftest import FakeToolContext
from tests.helpers import text_event

# -- the table --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "ticker"),
    [
        ("AAPL", "AAPL"), ("apple", "AAPL"), ("Apple's", "AAPL"), ("nvda", "NVDA"),
        ("$NVDA", "NVDA"), ("Nvidia", "NVDA"), ("Google", "GOOGL"), ("GOOG", "GOOGL"),
        ("alphabet", "GOOGL"), ("Facebook", "META"), ("brk-b", "BRK.B"), ("BRK.B", "BRK.B"),
        ("Berkshire Hathaway", "BRK.B"), ("bank of  america", "BAC"), ("AT&T", "T"),
        ("Coca-Cola", "KO"), ("McDonald\u2019s", "MCD"), ("knitting", None), ("", None),
    ],
)
def test_lookup(text: str, ticker: str | None) -> None:
    found = companies.lookup(text)
    assert (found.ticker if found else None) == ticker


@pytest.mark.parametrize(
    ("word", "tickers"),
    [
        ("aple", ["AAPL"]), ("appl", ["AAPL"]), ("nvdia", ["NVDA"]), ("nvidea", ["NVDA"]),
        ("mircosoft", ["MSFT"]), ("tesal", ["TSLA"]), ("amazn", ["AMZN"]), ("gogle", ["GOOGL"]),
        ("apple", []),    # exact: nothing to suggest
        ("intu", []),     # Intuit's own ticker, not a typo of Intel's INTC
        ("shop", []),     # nothing near it: looked up as typed
        ("cat", []),      # too short to guess at
        ("xyzzy", []),
    ],
)
def test_suggestions_for_misspellings(word: str, tickers: list[str]) -> None:
    assert [c.ticker for c in companies.suggest(word)] == tickers


@pytest.mark.parametrize(
    ("query", "aliases"),
    [
        ("Nvidia", ["NVDA"]),
        ("what did I say about NVDA?", ["Nvidia"]),
        ("Google", ["GOOG", "GOOGL", "Alphabet"]),
        ("Facebook", ["META"]),
        ("Berkshire", ["BRK.B", "BRK.A"]),
        ("KO", ["Coke", "Coca-Cola"]),   # an ambiguous ticker counts in capitals...
        ("ko", []),                      # ... not in lower case
        ("Coca-Cola", ["Coke"]),         # ... and is never searched for on its own
        ("Caterpillar", []),
        ("my marathon", []),
        ("pineapple metadata", []),     # names are whole words
    ],
)
def test_search_aliases(query: str, aliases: list[str]) -> None:
    assert [a.text for a in companies.search_aliases(query)] == aliases


def test_every_company_is_found_by_each_of_its_names_and_tickers() -> None:
    assert len(companies.COMPANIES) >= 50
    for company in companies.COMPANIES:
        for alias in (*company.names, *company.tickers):
            assert companies.lookup(alias) is company, alias
            if alias not in companies.AMBIGUOUS_TICKERS:
                assert company in companies.mentioned(f"what about {alias}?"), alias


def test_a_dotted_ticker_is_one_search_term() -> None:
    assert query_terms("what did I say about BRK.B?") == ["brk.b"]
    assert query_terms("e.g. this") == []


# -- long memory: the historian's load_memory on the real DatabaseMemoryService ------------

MESSAGES = [
    ("user", "I bought NVDA at the open"),
    ("user", "Nvidia makes the GPUs everyone wants"),
    ("user", "BRK.B is my biggest position"),
    ("user", "GOOGL hit an all-time high"),
    ("stock_analyst", "Facebook renamed itself in 2021"),
    ("user", "A Coke with lunch"),
    ("user", "my cat knocked the plant over"),
    ("user", "I love apple pie"),
]


class MemoryContext:
    """What ``load_memory`` needs of a ToolContext: ``search_memory`` for this user."""

    def __init__(self, memory: DatabaseMemoryService, app_name: str, user_id: str) -> None:
        self._memory, self._app, self._user = memory, app_name, user_id
        self.tool_confirmation = None

    async def search_memory(self, query: str) -> Any:
        return await self._memory.search_memory(
            app_name=self._app, user_id=self._user, query=query
        )


@pytest.fixture
async def remembered(
    store: DatabaseSessionService, memory: DatabaseMemoryService, app_name: str
) -> MemoryContext:
    session = await store.create_session(app_name=app_name, user_id="ann")
    for i, (author, text) in enumerate(MESSAGES):
        await store.append_event(session, text_event(text, author=author,
                                                     timestamp=1_700_000_000.0 + i))
    await memory.add_session_to_memory(
        await store.get_session(app_name=app_name, user_id="ann", session_id=session.id)
    )
    return MemoryContext(memory, app_name, "ann")


async def recall(context: MemoryContext, query: str) -> list[tuple[str, str | None]]:
    """(text, matched alias) of what load_memory returns, in its order."""
    found = await SafeLoadMemoryTool().run_async(args={"query": query}, tool_context=context)
    assert isinstance(found, LoadMemoryResponse)
    return [(m.content.parts[0].text, m.custom_metadata.get("matched_alias"))
            for m in found.memories]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        # text -> the other name it was found under (None: the query's own words found it)
        ("Nvidia", {"Nvidia makes the GPUs everyone wants": None,
                    "I bought NVDA at the open": "NVDA"}),
        ("what did I say about NVDA?", {"I bought NVDA at the open": None,
                                        "Nvidia makes the GPUs everyone wants": "Nvidia"}),
        ("Berkshire", {"BRK.B is my biggest position": "BRK.B"}),
        ("BRK.B", {"BRK.B is my biggest position": None}),
        ("Alphabet", {"GOOGL hit an all-time high": "GOOGL"}),
        ("META", {"Facebook renamed itself in 2021": "Facebook"}),
        ("KO", {"A Coke with lunch": "Coke"}),
        ("AAPL", {"I love apple pie": "Apple"}),  # it says Apple: found, and says so
        ("apple", {"I love apple pie": None}),
    ],
)
async def test_memory_finds_a_company_under_its_other_names(
    remembered: MemoryContext, query: str, expected: dict[str, str | None]
) -> None:
    found = await recall(remembered, query)
    got = dict(found)
    assert {t: got.get(t, "missing") for t in expected} == expected
    # What the query itself finds comes first, in the service's order; then what only another
    # name finds, each marked with the name it contains.
    marks = [alias is not None for _, alias in found]
    assert marks == sorted(marks)
    assert all(alias.lower() in text.lower() for text, alias in found if alias)


async def test_memory_never_searches_an_ambiguous_ticker_alone(
    remembered: MemoryContext,
) -> None:
    assert await recall(remembered, "Caterpillar") == []  # never "cat"
    assert "my cat knocked the plant over" not in dict(await recall(remembered, "Coca-Cola"))


async def test_memory_alias_hits_say_which_company(remembered: MemoryContext) -> None:
    found = await SafeLoadMemoryTool().run_async(args={"query": "Nvidia"},
                                                 tool_context=remembered)
    [extra] = [m for m in found.memories if m.custom_metadata.get("matched_alias")]
    assert extra.custom_metadata["company"] == "Nvidia (NVDA)"
    assert {"session_id", "event_id", "score"} <= set(extra.custom_metadata)


# -- the stored history -----------------------------------------------------------------------


def _context(*exchanges: tuple[str, str]) -> FakeToolContext:
    return FakeToolContext({"user:conversation_log": [
        {"timestamp": f"2030-01-0{i + 1}T10:00:00+00:00", "session_id": "old",
         "user_input": q, "agent_response": a, "agent": "stock_analyst"}
        for i, (q, a) in enumerate(exchanges)
    ]})


async def test_history_search_finds_a_company_under_its_other_names() -> None:
    ctx = _context(
        ("add NVDA to my watchlist", "Added NVDA to your watch list."),
        ("Nvidia's earnings look great", "Sorry, I didn't understand"),
        ("price of GOOGL", "unavailable"),
        ("what about metadata?", "unavailable"),
    )
    found = await st.search_conversation_history("Nvidia", ctx)
    assert [m["user_input"] for m in found["matches"]] == ["Nvidia's earnings look great"]
    assert found["also_searched"] == ["NVDA"] and found["total_alias_matches"] == 1
    assert [(m["user_input"], m["alias"]) for m in found["alias_matches"]] == [
        ("add NVDA to my watchlist", "NVDA")
    ]
    by_ticker = await st.search_conversation_history("nvda", ctx)
    assert [m["user_input"] for m in by_ticker["matches"]] == ["add NVDA to my watchlist"]
    assert [m["alias"] for m in by_ticker["alias_matches"]] == ["Nvidia"]
    google = await st.search_conversation_history("Google", ctx)
    assert google["total_matches"] == 0
    assert [m["user_input"] for m in google["alias_matches"]] == ["price of GOOGL"]
    facebook = await st.search_conversation_history("Facebook", ctx)
    assert facebook["alias_matches"] == []  # "metadata" is not META
    plain = await st.search_conversation_history("python", ctx)
    assert "alias_matches" not in plain  # no company: the result is as before
