"""How people actually phrase things (issue 12): a table of realistic messages with the intent and
arguments the offline rules model must read from them, then full turns through the real team
on a real store for the answers that depend on tools (the stored name, "last time", a company
found under its ticker and the other way round).
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from multi_agent.models.intents import classify, normalize
from multi_agent.team.app import TeamRunner, build_runner, get_or_create_session
from tests.agents._team import say, stored

NO_TOPIC = {"topic": ""}
NOTHING: dict[str, Any] = {}

PHRASINGS: list[tuple[str, str, dict[str, Any]]] = [
    # -- jokes, with and without a topic, emoji, mixed case, politeness ---------------------
    ("Tell me a joke", "joke", NO_TOPIC),
    ("tell me a joke about python 😂", "joke", {"topic": "python"}),
    ("😂😂 Tell me a joke about Python 🐍", "joke", {"topic": "python"}),
    ("Can you tell me a joke about databases, please?", "joke", {"topic": "databases"}),
    ("got any puns about math?", "joke", {"topic": "math"}),
    ("know any good jokes about git? :)", "joke", {"topic": "git"}),
    ("TELL ME A CHEMISTRY JOKE", "joke", {"topic": "chemistry"}),
    ("tell me a physics joke 🤓", "joke", {"topic": "physics"}),
    ("I need a laugh", "joke", NO_TOPIC),
    ("tell me something funny", "joke", NO_TOPIC),
    ("joke pls", "joke", NO_TOPIC),
    ("another one!", "joke", NO_TOPIC),
    ("one more please", "joke", NO_TOPIC),
    ("i love python jokes", "joke_like", {"topic": "python"}),
    ("I really enjoy math jokes!", "joke_like", {"topic": "math"}),
    ("please stop telling me chemistry jokes", "joke_forget", {"topic": "chemistry"}),
    ("I don't want any more physics jokes", "joke_forget", {"topic": "physics"}),
    ("which joke topics do you have", "joke_topics", NOTHING),
    ("what kinds of jokes do you know?", "joke_topics", NOTHING),
    # -- watch list: tickers, company names, typos ------------------------------------------
    ("Add NVDA to my watch list", "watchlist_add", {"tickers": ["NVDA"]}),
    ("add apple to my watchlist", "watchlist_add",
     {"tickers": ["AAPL"], "companies": {"AAPL": "Apple"}}),
    ("Add Nvidia and Microsoft to my watchlist", "watchlist_add",
     {"tickers": ["NVDA", "MSFT"], "companies": {"NVDA": "Nvidia", "MSFT": "Microsoft"}}),
    ("add Johnson & Johnson to my watchlist", "watchlist_add",
     {"tickers": ["JNJ"], "companies": {"JNJ": "Johnson & Johnson"}}),
    ("add Johnson and Johnson and AT&T to my watchlist", "watchlist_add",
     {"tickers": ["JNJ", "T"], "companies": {"JNJ": "Johnson & Johnson", "T": "AT&T"}}),
    ("put $TSLA on my watchlist", "watchlist_add", {"tickers": ["TSLA"]}),
    ("can you track AMZN and GOOGL", "watchlist_add", {"tickers": ["AMZN", "GOOGL"]}),
    ("add BRK.B to my watchlist", "watchlist_add", {"tickers": ["BRK.B"]}),
    ("add aple to my watchlist", "watchlist_add", {"tickers": [], "unknown": {"aple": ["AAPL"]}}),
    ("watch nvdia", "watchlist_add", {"tickers": [], "unknown": {"nvdia": ["NVDA"]}}),
    ("add apple computers to my watchlist", "watchlist_add", {"tickers": ["apple computers"]}),
    ("Remove TSLA from my watchlist", "watchlist_remove", {"tickers": ["TSLA"]}),
    ("take meta off my watch list", "watchlist_remove", {"tickers": ["meta"]}),
    ("delete Tesla from my watchlist", "watchlist_remove",
     {"tickers": ["TSLA"], "companies": {"TSLA": "Tesla"}}),
    ("stop watching nvidia", "watchlist_remove",
     {"tickers": ["NVDA"], "companies": {"NVDA": "Nvidia"}}),
    ("show me my watchlist", "watchlist_show", NOTHING),
    ("What stocks am I watching?", "watchlist_show", NOTHING),
    ("whats on my watchlist", "watchlist_show", NOTHING),
    ("sHoW mY wAtChLiSt", "watchlist_show", NOTHING),
    ("how is my watchlist doing?", "watchlist_prices", NOTHING),
    ("watchlist prices please", "watchlist_prices", NOTHING),
    # -- prices ---------------------------------------------------------------------------
    ("What is the price of Apple?", "price", {"ticker": "AAPL", "company": "Apple"}),
    ("price of Bank of America", "price", {"ticker": "BAC", "company": "Bank of America"}),
    ("how's google stock doing", "price", {"ticker": "GOOGL", "company": "Alphabet"}),
    ("Nvidia stock price", "price", {"ticker": "NVDA", "company": "Nvidia"}),
    ("how much is TSLA?", "price", {"ticker": "TSLA"}),
    ("what's AAPL trading at?", "price", {"ticker": "AAPL"}),
    ("Msft price?", "price", {"ticker": "Msft"}),
    ("$aapl", "price", {"ticker": "aapl"}),
    # A misspelt name is asked about, never looked up as another ticker...
    ("price of aple", "price", {"ticker": None, "unknown": "aple", "suggestions": ["AAPL"]}),
    ("how is nvdia doing?", "price",
     {"ticker": None, "unknown": "nvdia", "suggestions": ["NVDA"]}),
    ("price of mircosoft", "price",
     {"ticker": None, "unknown": "mircosoft", "suggestions": ["MSFT"]}),
    ("aple stock price", "price", {"ticker": None, "unknown": "aple", "suggestions": ["AAPL"]}),
    # ... but a ticker typed in capitals is the ticker (APLE is a real one).
    ("price of APLE", "price", {"ticker": "APLE"}),
    ("what's a good stock price", "price", {"ticker": None}),
    # -- the history: "last time" is the previous session, "before" the whole history ------
    ("What did we talk about last time?", "history_last_session", NOTHING),
    ("What did we discuss last time?", "history_last_session", NOTHING),
    ("what were we talking about last time", "history_last_session", NOTHING),
    ("remind me what we discussed last time", "history_last_session", NOTHING),
    ("What did we talk about in our last session?", "history_last_session", NOTHING),
    ("recap our last conversation", "history_last_session", NOTHING),
    ("what was our previous chat about?", "history_last_session", NOTHING),
    ("WHAT DID WE TALK ABOUT LAST TIME?", "history_last_session", NOTHING),
    ("remind me what we discussed before", "history_summary", NOTHING),
    ("what did I ask you earlier?", "history_summary", NOTHING),
    ("What have we talked about so far?", "history_summary", NOTHING),
    ("What did we talk about before?", "history_summary", NOTHING),
    ("what did we talk about previously", "history_summary", NOTHING),
    ("summarize our chats", "history_summary", NOTHING),
    ("give me a recap", "history_summary", NOTHING),
    ("previously we talked about python, right?", "history_search",
     {"query": "python", "days": 0}),
    ("we talked about Tesla before, what did you say?", "history_search",
     {"query": "Tesla", "days": 0}),
    ("last time I asked you about NVDA", "history_search", {"query": "NVDA", "days": 0}),
    ("did we ever talk about python before?", "history_search", {"query": "python", "days": 0}),
    ("what did I say about Nvidia?", "history_search", {"query": "Nvidia", "days": 0}),
    ("what did i say about NVDA", "history_search", {"query": "NVDA", "days": 0}),
    ("remind me what I said about BRK.B", "history_search", {"query": "BRK.B", "days": 0}),
    ("Did we ever talk about Tesla?", "history_search", {"query": "Tesla", "days": 0}),
    ("do you remember what I said about my marathon?", "history_search",
     {"query": "marathon", "days": 0}),
    ("What did I ask about stocks last week?", "history_search", {"query": "stocks", "days": 7}),
    ("what did we talk about yesterday?", "history_search", {"query": "", "days": 2}),
    ("search our conversations for python", "history_search", {"query": "python", "days": 0}),
    ("how many times have we talked?", "list_sessions", NOTHING),
    ("list my sessions", "list_sessions", NOTHING),
    ("show our past conversations", "list_sessions", NOTHING),
    # -- the user's name: only the name, punctuation and accents kept -----------------------
    ("Hi, my name is Dana and I'm a backend developer", "set_name", {"name": "Dana"}),
    ("My name is O'Brien.", "set_name", {"name": "O'Brien"}),
    ("my name is Anne-Marie", "set_name", {"name": "Anne-Marie"}),
    ("My name is José García, nice to meet you", "set_name", {"name": "José García"}),
    ("I'm José", "set_name", {"name": "José"}),
    ("I\u2019m Siobh\u00e1n O\u2019Connor", "set_name", {"name": "Siobh\u00e1n O'Connor"}),
    ("call me Anne-Marie please", "set_name", {"name": "Anne-Marie"}),
    ("you can call me Bob", "set_name", {"name": "Bob"}),
    ("my name's Dana 😊", "set_name", {"name": "Dana"}),
    ("Hey there, I'm Dana!", "set_name", {"name": "Dana"}),
    ("my name is J. R. R. Tolkien", "set_name", {"name": "J. R. R. Tolkien"}),
    ("What's my name?", "get_name", NOTHING),
    ("whats my name", "get_name", NOTHING),
    ("do you remember my name?", "get_name", NOTHING),
    ("who am i", "get_name", NOTHING),
    # -- preferences, favourite agent, stats, profile ------------------------------------------
    ("set my favorite agent to funny_nerd", "favorite_agent", {"agent": "funny_nerd"}),
    ("my favourite agent is the historian", "favorite_agent", {"agent": "historian"}),
    ("make stock_analyst my favorite", "favorite_agent", {"agent": "stock_analyst"}),
    ("show my stats", "stats", NOTHING),
    ("which agent do I use the most?", "stats", NOTHING),
    ("show my profile", "profile", NOTHING),
    ("What are my preferences?", "profile", NOTHING),
    ("what do you know about me?", "profile", NOTHING),
    ("I'm really into astronomy", "nerd_topic", {"topic": "astronomy"}),
    ("I'm into Python 🐍", "nerd_topic", {"topic": "python"}),
    # -- help, greetings, thanks, goodbye ----------------------------------------------------
    ("help", "help", NOTHING),
    ("What can you do?", "help", NOTHING),
    ("are you a bot?", "help", NOTHING),
    ("are you ChatGPT?", "help", NOTHING),
    ("hi", "greeting", NOTHING),
    ("Hello!", "greeting", NOTHING),
    ("hey 👋", "greeting", NOTHING),
    ("good morning", "greeting", NOTHING),
    ("how are you doing?", "greeting", NOTHING),
    ("thank you 🙏", "thanks", NOTHING),
    ("thanks a lot", "thanks", NOTHING),
    ("bye!", "goodbye", NOTHING),
    ("good night 🌙", "goodbye", NOTHING),
]


@pytest.mark.parametrize(("text", "intent", "args"), PHRASINGS, ids=[p[0] for p in PHRASINGS])
def test_phrasing(text: str, intent: str, args: dict[str, Any]) -> None:
    match = classify(text)
    assert match is not None, f"{text!r} is not understood"
    assert (match.intent.name, match.args) == (intent, args)


def test_the_table_covers_every_intent() -> None:
    from multi_agent.models.intents import INTENTS

    assert len(PHRASINGS) >= 60
    covered = {intent for _, intent, _ in PHRASINGS}
    assert {i.name for i in INTENTS} - covered == set()


@pytest.mark.parametrize("text", [
    "I'm tired",                 # "I'm" + a word that is not a name
    "I'm Python developer",      # ... or a capitalised one that does not end the clause
    "how much is it?",           # not a stock
    "blorp",
    "what's the weather in Paris",
    "😂",
    "",
])
def test_not_understood(text: str) -> None:
    assert classify(text) is None


def test_normalize_drops_pictographs_and_smileys_only() -> None:
    assert normalize("😂 tell me a joke about python 🐍 :)") == "tell me a joke about python"
    assert normalize("I\u2019m Jos\u00e9 👋🏽") == "I'm José"
    assert normalize("price of $AAPL, please!") == "price of $AAPL!"
    assert normalize("thanks") == "thanks"  # nothing but the polite word: kept


# -- full turns through the real team --------------------------------------------------------

USER = "dana"


async def test_the_name_is_stored_exactly(runner: TeamRunner) -> None:
    session = await get_or_create_session(runner.session_service, user_id=USER)
    turn = await say(runner, USER, session.id,
                     "Hi, my name is Dana and I'm a backend developer")
    assert ("manager", "set_user_name", {"name": "Dana"}) in turn.calls()
    assert turn.reply == "Nice to meet you, Dana! I'll remember your name."
    assert (await stored(runner, USER, session.id)).state["user:user_name"] == "Dana"
    await say(runner, USER, session.id, "I\u2019m Siobh\u00e1n O\u2019Connor")
    assert (await stored(runner, USER, session.id)).state["user:user_name"] == (
        "Siobh\u00e1n O'Connor"
    )
    turn = await say(runner, USER, session.id, "whats my name?")
    assert turn.reply == "You're Siobh\u00e1n O'Connor."


async def test_last_time_lists_the_previous_sessions_exchanges(runner: TeamRunner) -> None:
    first = await get_or_create_session(runner.session_service, user_id=USER)
    await say(runner, USER, first.id, "tell me a math joke")
    second = await get_or_create_session(runner.session_service, user_id=USER)
    await say(runner, USER, second.id, "add NVDA to my watchlist")
    await say(runner, USER, second.id, "show my watchlist")
    third = await get_or_create_session(runner.session_service, user_id=USER)
    await say(runner, USER, third.id, "hello")
    turn = await say(runner, USER, third.id, "What did we talk about last time?")
    assert turn.replier == "historian"
    assert ("historian", "get_conversation_summary", {"scope": "all", "max_entries": 50}) in (
        turn.calls()
    )
    assert turn.reply.startswith("Last time (") and "we had 2 exchanges:" in turn.reply
    assert '"add NVDA to my watchlist"' in turn.reply and '"show my watchlist"' in turn.reply
    assert "math joke" not in turn.reply and '"hello"' not in turn.reply  # not that session
    again = await say(runner, USER, third.id, "what did we discuss last time?")
    assert again.reply == turn.reply  # this session's questions are not "last time"
    # "before" is the whole history, every session.
    before = await say(runner, USER, third.id, "remind me what we discussed before")
    assert before.reply.startswith("We've had ") and "across 3 sessions" in before.reply
    assert "jokes (funny_nerd): 1" in before.reply
    today = await say(runner, USER, third.id, "what did we talk about today?")
    assert today.reply.startswith("In the last 1 day we had ")
    assert '"tell me a math joke"' in today.reply


async def test_the_first_session_has_no_last_time(runner: TeamRunner) -> None:
    session = await get_or_create_session(runner.session_service, user_id=USER)
    turn = await say(runner, USER, session.id, "what did we talk about last time?")
    assert turn.reply == "I have no earlier conversation with you on record yet."
    await say(runner, USER, session.id, "tell me a math joke")
    turn = await say(runner, USER, session.id, "what did we talk about last time?")
    assert turn.reply.startswith("I have no session with you before this one on record.")
    assert '"tell me a math joke"' in turn.reply


@pytest.mark.parametrize("memory", [True, False], ids=["memory", "history"])
async def test_a_company_and_its_ticker_find_each_other(team_db: str, memory: bool) -> None:
    runner = build_runner(db_url=team_db, model="offline-rules", memory=memory)
    try:
        said_ticker = await get_or_create_session(runner.session_service, user_id="tick")
        await say(runner, "tick", said_ticker.id, "add NVDA to my watchlist")
        said_name = await get_or_create_session(runner.session_service, user_id="name")
        await say(runner, "name", said_name.id, "Nvidia's earnings look great")
        asks = await get_or_create_session(runner.session_service, user_id="tick")
        by_name = await say(runner, "tick", asks.id, "what did I say about Nvidia?")
        asks = await get_or_create_session(runner.session_service, user_id="name")
        by_ticker = await say(runner, "name", asks.id, "what did I say about NVDA?")
    finally:
        await runner.close()
    assert by_name.replier == by_ticker.replier == "historian"
    assert "add NVDA to my watchlist" in by_name.reply
    assert "Nvidia's earnings look great" in by_ticker.reply
    if memory:  # long memory: the memory says why it matched
        assert "You mentioned NVDA (Nvidia) on " in by_name.reply
        assert by_ticker.reply.startswith("You mentioned Nvidia (NVDA) on ")
        assert "in another session" in by_ticker.reply
    else:  # the stored history
        assert by_name.reply.startswith("I found 1 exchange about 'Nvidia' under NVDA:")
        assert by_ticker.reply.startswith("I found 1 exchange about 'NVDA' under Nvidia:")


async def test_company_names_and_typos_in_price_requests(runner: TeamRunner) -> None:
    session = await get_or_create_session(runner.session_service, user_id=USER)
    turn = await say(runner, USER, session.id, "What is the price of Apple?")
    assert ("stock_analyst", "get_stock_price", {"ticker": "AAPL"}) in turn.calls()
    assert turn.reply.startswith("Apple is AAPL. ")
    assert "won't guess" in turn.reply and not re.search(r"\d+\.\d+", turn.reply)
    turn = await say(runner, USER, session.id, "price of aple")
    assert not [c for c in turn.calls() if c[1] == "get_stock_price"]  # no wrong ticker
    assert turn.reply == (
        "I don't know a stock called 'aple'. Did you mean Apple (AAPL)? Say 'price of AAPL', "
        "or 'price of APLE' if APLE is the ticker you meant."
    )
    turn = await say(runner, USER, session.id, "add nvdia to my watchlist")
    assert not [c for c in turn.calls() if c[1] == "add_to_stock_watchlist"]
    assert "Did you mean Nvidia (NVDA)?" in turn.reply
    assert "I haven't changed your watch list." in turn.reply
    turn = await say(runner, USER, session.id, "add Nvidia and apple to my watchlist")
    assert turn.reply.splitlines()[0] == "Nvidia is NVDA; Apple is AAPL."
    assert "Your watch list: NVDA, AAPL." in turn.reply
