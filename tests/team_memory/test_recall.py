"""Issue 7's "Done when": after 3 sessions about different topics, a NEW session's "what did I
say about Nvidia?" is answered from long memory by the offline model, through ADK's real Runner
built by ``build_runner`` (defaults: memory and bounded context on), on a SQLite file and on
PostgreSQL.
"""

from __future__ import annotations

from typing import Any

import pytest

from multi_agent.team.app import TeamRunner, build_runner, get_or_create_session
from tests.agents._team import Turn, say

USER = "ada"
NVIDIA = "I think Nvidia will beat expectations at the earnings call"
TRIP = "I'm planning a trip to Kyoto in April"
SESSIONS = {
    "stocks": ["add NVDA to my watchlist", NVIDIA, "price of AAPL"],
    "math jokes": ["tell me a math joke", "I like math jokes", "another one"],
    "name and trip": ["my name is Ada", TRIP],
}
BACKENDS = pytest.mark.parametrize("backend", ["sqlite_file", "postgres"], indirect=True)


def memories_returned(turn: Turn) -> list[dict[str, Any]]:
    """The memories in the turn's load_memory function response, as JSON."""
    for event in turn.events:
        for response in event.get_function_responses():
            if response.name == "load_memory":
                result = (response.response or {}).get("result", response.response)
                if hasattr(result, "model_dump"):
                    result = result.model_dump(mode="json")
                return list(result.get("memories") or [])
    raise AssertionError("no load_memory call in this turn")


async def three_sessions(db_url: str) -> dict[str, str]:
    """Runs the three topic sessions in their own runner (closed after); returns their ids."""
    ids: dict[str, str] = {}
    runner = build_runner(db_url=db_url, model="offline-rules")
    try:
        for topic, messages in SESSIONS.items():
            session = await get_or_create_session(runner.session_service, user_id=USER)
            ids[topic] = session.id
            for text in messages:
                await say(runner, USER, session.id, text)
    finally:
        await runner.close()
    return ids


@BACKENDS
async def test_a_new_session_recalls_nvidia_from_memory(db_url: str) -> None:
    ids = await three_sessions(db_url)
    runner = build_runner(db_url=db_url, model="offline-rules")  # a fresh runner: restart
    try:
        assert isinstance(runner, TeamRunner) and runner.memory_service is not None
        session = await get_or_create_session(runner.session_service, user_id=USER)
        assert session.id not in ids.values()
        turn = await say(runner, USER, session.id, "what did I say about Nvidia?")
    finally:
        await runner.close()
    # The manager delegates to the historian, which searches long memory (ADK's load_memory).
    assert turn.transfers() == [("manager", "historian")]
    assert ("historian", "load_memory", {"query": "Nvidia"}) in turn.calls()
    found = memories_returned(turn)
    assert found[0]["content"]["parts"][0]["text"] == NVIDIA
    assert found[0]["custom_metadata"]["session_id"] == ids["stocks"]
    assert all(m["custom_metadata"]["session_id"] == ids["stocks"] for m in found)
    # ... and answers from what memory returned, honestly dated and placed.
    assert turn.replier == "historian"
    assert turn.reply.startswith("You mentioned Nvidia on ")
    assert "UTC in another session" in turn.reply and f'"{NVIDIA}"' in turn.reply
    assert "Kyoto" not in turn.reply and "math" not in turn.reply


@BACKENDS
async def test_nothing_relevant_in_memory_is_said_plainly(db_url: str) -> None:
    await three_sessions(db_url)
    runner = build_runner(db_url=db_url, model="offline-rules")
    try:
        session = await get_or_create_session(runner.session_service, user_id=USER)
        turn = await say(runner, USER, session.id, "what did I say about bitcoin?")
    finally:
        await runner.close()
    assert memories_returned(turn) == []
    # Memory had nothing, so the stored history was searched too before saying so.
    assert [c[1] for c in turn.calls() if c[0] == "historian"] == [
        "load_memory", "search_conversation_history"
    ]
    assert turn.reply == (
        "I don't find anything about 'bitcoin' in my memory of our conversations."
    )


async def test_recall_places_memories_in_this_or_another_session(tmp_path) -> None:
    db_url = f"sqlite+aiosqlite:///{tmp_path / 'team.db'}"
    ids = await three_sessions(db_url)
    runner = build_runner(db_url=db_url, model="offline-rules")
    try:
        session = await get_or_create_session(runner.session_service, user_id=USER)
        await say(runner, USER, session.id, "Nvidia makes the chips for my new gaming PC")
        turn = await say(runner, USER, session.id, "do you remember what I said about Nvidia?")
        trip = await say(runner, USER, session.id, "do you remember my trip to Kyoto?")
        again = await say(runner, USER, session.id, "what did I say about Nvidia?")
    finally:
        await runner.close()
    assert turn.reply.startswith("From my memory of our conversations, about 'Nvidia':")
    lines = turn.reply.splitlines()[1:]
    assert len(lines) == 2  # oldest first
    assert "in another session" in lines[0] and NVIDIA in lines[0]
    assert "earlier in this session" in lines[1] and "gaming PC" in lines[1]
    assert trip.reply.startswith("You mentioned 'trip to Kyoto' on ")
    assert TRIP in trip.reply
    assert {m["custom_metadata"]["session_id"] for m in memories_returned(trip)} == {
        ids["name and trip"]
    }
    # Earlier history questions and the historian's own answers are not "what I said".
    assert len(again.reply.splitlines()) == 3 and "do you remember" not in again.reply


async def test_area_questions_use_the_stored_history(tmp_path) -> None:
    db_url = f"sqlite+aiosqlite:///{tmp_path / 'team.db'}"
    await three_sessions(db_url)
    runner = build_runner(db_url=db_url, model="offline-rules")
    try:
        session = await get_or_create_session(runner.session_service, user_id=USER)
        turn = await say(runner, USER, session.id, "what did I ask about stocks?")
    finally:
        await runner.close()
    assert [c[1] for c in turn.calls() if c[0] == "historian"] == [
        "load_memory", "search_conversation_history"
    ]
    assert turn.reply.startswith("I found 2 exchanges about 'stocks':")
    assert '"add NVDA to my watchlist"' in turn.reply and '"price of AAPL"' in turn.reply
    # The offline model's "didn't understand" help text lists stock examples; not a match.
    assert "Kyoto" not in turn.reply


async def test_without_memory_the_historian_searches_the_store(tmp_path) -> None:
    db_url = f"sqlite+aiosqlite:///{tmp_path / 'team.db'}"
    await three_sessions(db_url)
    runner = build_runner(db_url=db_url, model="offline-rules", memory=False)
    try:
        assert runner.memory_service is None
        historian = runner.agent.find_agent("historian")
        assert "load_memory" not in [t.name for t in historian.tools]
        session = await get_or_create_session(runner.session_service, user_id=USER)
        turn = await say(runner, USER, session.id, "what did I say about Nvidia?")
        nothing = await say(runner, USER, session.id, "what did I say about bitcoin?")
    finally:
        await runner.close()
    assert [c[1] for c in turn.calls() if c[0] == "historian"] == [
        "search_conversation_history"
    ]
    assert turn.reply.startswith("I found 1 exchange about 'Nvidia':") and NVIDIA in turn.reply
    assert nothing.reply == "I don't find anything about 'bitcoin' in our conversations."


async def test_history_older_than_the_state_lists_comes_from_the_store(tmp_path) -> None:
    from multi_agent.team.state_tools._common import HISTORY_LIMIT

    db_url = f"sqlite+aiosqlite:///{tmp_path / 'team.db'}"
    runner = build_runner(db_url=db_url, model="offline-rules", memory=False)
    try:
        first = await get_or_create_session(runner.session_service, user_id=USER)
        await say(runner, USER, first.id, "add TSLA to my watchlist")
        for _ in range(HISTORY_LIMIT + 2):
            await say(runner, USER, first.id, "tell me a math joke")
        kept = (await runner.session_service.get_session(
            app_name=first.app_name, user_id=USER, session_id=first.id)).state
        assert len(kept["conversation_history"]) == HISTORY_LIMIT
        assert "TSLA" not in str(kept["conversation_history"])  # out of the state list
        second = await get_or_create_session(runner.session_service, user_id=USER)
        found = await say(runner, USER, second.id, "what did I ask about TSLA?")
        summary = await say(runner, USER, second.id, "what did we talk about?")
    finally:
        await runner.close()
    assert found.reply.startswith("I found 1 exchange about 'TSLA':")
    assert '"add TSLA to my watchlist"' in found.reply
    turns = HISTORY_LIMIT + 3 + 1  # the first session's turns and the TSLA question
    assert summary.reply.startswith(f"We've had {turns} exchanges across 2 sessions")


@BACKENDS
async def test_hybrid_memory_recalls_what_was_said_in_other_words(
    db_url: str, minilm: Any
) -> None:
    """With ``memory_search="hybrid"`` (the bundled MiniLM), "my puppy" finds "my dog": the
    offline model says it is something close, not a mention of the word."""
    dog = "My dog Rex loves chasing waves at the beach"
    runner = build_runner(db_url=db_url, model="offline-rules", memory_search="hybrid")
    try:
        for text in (dog, NVIDIA):
            session = await get_or_create_session(runner.session_service, user_id=USER)
            await say(runner, USER, session.id, text)
    finally:
        await runner.close()
    question = "what did I say about my puppy?"
    answers = {}
    for mode in ("hybrid", "fulltext"):
        runner = build_runner(db_url=db_url, model="offline-rules", memory_search=mode)
        try:
            assert runner.memory_service.search_mode == mode
            session = await get_or_create_session(runner.session_service, user_id=USER)
            answers[mode] = await say(runner, USER, session.id, question)
        finally:
            await runner.close()
    hybrid = answers["hybrid"]
    assert ("historian", "load_memory", {"query": "puppy"}) in hybrid.calls()
    assert memories_returned(hybrid)[0]["content"]["parts"][0]["text"] == dog
    assert hybrid.reply.startswith("You said something close to puppy on ")
    assert f'"{dog}"' in hybrid.reply and "Nvidia" not in hybrid.reply
    assert answers["fulltext"].reply == (
        "I don't find anything about 'puppy' in my memory of our conversations."
    )
