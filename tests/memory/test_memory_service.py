"""DatabaseMemoryService on every backend: indexing, scoping, idempotency, odd queries."""

from __future__ import annotations

import asyncio
from datetime import datetime

import pytest
from google.adk.events.event import Event
from google.adk.events.event_actions import EventActions
from google.adk.memory.base_memory_service import BaseMemoryService
from google.adk.sessions.base_session_service import GetSessionConfig
from google.adk.sessions.in_memory_session_service import InMemorySessionService
from sqlalchemy import text

from multi_agent import DatabaseSessionService
from multi_agent.memory import DatabaseMemoryService
from tests.helpers import call_event, result_event, text_event


async def texts(memory: DatabaseMemoryService, app: str, user: str, query: str) -> list[str]:
    found = await memory.search_memory(app_name=app, user_id=user, query=query)
    return [m.content.parts[0].text for m in found.memories]


async def count_rows(memory: DatabaseMemoryService) -> int:
    return await memory.backend.run(
        lambda c: c.execute(text("SELECT count(*) FROM ma_memory_entries")).scalar(), write=False
    )


async def add(store: DatabaseSessionService, app: str, user: str, *events: Event):
    session = await store.create_session(app_name=app, user_id=user)
    for event in events:
        await store.append_event(session, event)
    return session


def test_is_an_adk_memory_service() -> None:
    assert issubclass(DatabaseMemoryService, BaseMemoryService)


async def test_search_returns_ranked_adk_entries(
    store: DatabaseSessionService, memory: DatabaseMemoryService, app_name: str
) -> None:
    session = await add(
        store, app_name, "ann",
        text_event("I bought Nvidia shares today.", author="user", timestamp=1_700_000_000.5),
        text_event("Nvidia makes the GPUs behind most AI models; Nvidia earnings are on "
                   "Wednesday.", author="stock_analyst", timestamp=1_700_000_001.0),
        text_event("Let's talk about pasta.", author="user", timestamp=1_700_000_002.0),
    )
    await memory.add_session_to_memory(session)
    found = await memory.search_memory(
        app_name=app_name, user_id="ann", query="What did I say about Nvidia earnings?"
    )
    assert [m.author for m in found.memories] == ["stock_analyst", "user"]
    best, second = found.memories
    assert best.content.role == "model" and second.content.role == "user"
    assert second.content.parts[0].text == "I bought Nvidia shares today."
    assert datetime.fromisoformat(second.timestamp).timestamp() == 1_700_000_000.5
    assert second.custom_metadata["session_id"] == session.id
    assert second.custom_metadata["event_id"] == session.events[0].id
    assert best.custom_metadata["score"] > second.custom_metadata["score"]
    assert best.id and best.id != second.id


async def test_only_human_and_agent_text_is_remembered(
    store: DatabaseSessionService, memory: DatabaseMemoryService, app_name: str
) -> None:
    session = await add(
        store, app_name, "ann",
        text_event("Check the zebra ticker", author="user", invocation_id="i1"),
        call_event("lookup_zebra", {"q": "zebra quokka"}, author="manager", invocation_id="i1"),
        result_event("lookup_zebra", {"r": "quokka zebra"}, author="manager", invocation_id="i1"),
        Event(invocation_id="i1", author="manager", actions=EventActions(state_delta={"q": 1})),
        text_event("zebra stripes", author="user", invocation_id="i1",
                   partial=False, branch=None),
    )
    await memory.add_session_to_memory(session)
    assert await texts(memory, app_name, "ann", "quokka") == []  # only in tool call/result
    assert sorted(await texts(memory, app_name, "ann", "zebra")) == [
        "Check the zebra ticker", "zebra stripes"
    ]
    assert await count_rows(memory) == 2


async def test_memories_are_scoped_to_app_and_user(
    store: DatabaseSessionService, memory: DatabaseMemoryService, app_name: str
) -> None:
    for app, user, words in [
        (app_name, "ann", "ann talks about Nvidia"),
        (app_name, "bob", "bob talks about Nvidia"),
        (app_name + "_2", "ann", "ann in another app talks about Nvidia"),
        (app_name, "ann2", "ann2 talks about Nvidia"),
    ]:
        await memory.add_session_to_memory(
            await add(store, app, user, text_event(words, author="user"))
        )
    assert await texts(memory, app_name, "ann", "Nvidia") == ["ann talks about Nvidia"]
    assert await texts(memory, app_name, "bob", "Nvidia") == ["bob talks about Nvidia"]
    assert await texts(memory, app_name + "_2", "ann", "nvidia") == [
        "ann in another app talks about Nvidia"
    ]
    assert await texts(memory, app_name, "carol", "Nvidia") == []
    assert await texts(memory, "no_such_app", "ann", "Nvidia") == []


async def test_adding_again_or_after_each_turn_does_not_duplicate(
    store: DatabaseSessionService, memory: DatabaseMemoryService, app_name: str
) -> None:
    session = await store.create_session(app_name=app_name, user_id="ann")
    for turn in range(3):
        await store.append_event(session, text_event(f"turn {turn} about tulips", author="user"))
        await store.append_event(session, text_event(f"reply {turn} on tulips", author="agent"))
        await memory.add_session_to_memory(session)
        await memory.add_session_to_memory(session)
    await memory.add_events_to_memory(
        app_name=app_name, user_id="ann", session_id=session.id, events=session.events
    )
    assert await count_rows(memory) == 6
    assert len(await texts(memory, app_name, "ann", "tulips")) == 6


async def test_a_windowed_session_still_has_all_its_messages_indexed(
    store: DatabaseSessionService, memory: DatabaseMemoryService, app_name: str
) -> None:
    session = await add(
        store, app_name, "ann",
        *[text_event(f"message {i} about orchids", author="user") for i in range(5)],
    )
    windowed = await store.get_session(
        app_name=app_name, user_id="ann", session_id=session.id,
        config=GetSessionConfig(num_recent_events=1),
    )
    assert len(windowed.events) == 1
    await memory.add_session_to_memory(windowed)
    assert len(await texts(memory, app_name, "ann", "orchids")) == 5


async def test_sessions_of_other_session_services_are_indexed_from_their_events(
    memory: DatabaseMemoryService, app_name: str
) -> None:
    other = InMemorySessionService()
    session = await other.create_session(app_name=app_name, user_id="ann")
    question = text_event("Which cactus needs the least water?", author="user")
    await other.append_event(session, question)
    await other.append_event(session, text_event("The golden barrel.", author="gardener"))
    await memory.add_session_to_memory(session)
    await memory.add_session_to_memory(session)
    assert await count_rows(memory) == 2
    # The reply is found through the question it answers (indexed as its context).
    assert await texts(memory, app_name, "ann", "cactus water") == [
        "Which cactus needs the least water?", "The golden barrel."
    ]


async def test_add_events_to_memory_indexes_a_delta(
    memory: DatabaseMemoryService, app_name: str
) -> None:
    events = [text_event("remember the bonsai", author="user")]
    await memory.add_events_to_memory(app_name=app_name, user_id="ann", events=events)
    await memory.add_events_to_memory(app_name=app_name, user_id="ann", events=events)
    found = await memory.search_memory(app_name=app_name, user_id="ann", query="bonsai")
    assert [m.custom_metadata["session_id"] for m in found.memories] == [""]


@pytest.mark.parametrize(
    "query",
    [
        "", "   ", "?", "???!!", "what did I say?", "What did we talk about before?",
        '"', '""', "'", "(", ")", "*", "-", "^", ":", "NEAR", "AND", "OR NOT", "a AND",
        'text : "x"', "scope:*", "{text}: x", "NEAR(a b, 2)", "'; DROP TABLE ma_events; --",
        "% _ \\", "\x00", "🙂", "日本", "x" * 10_000, "nvidia " * 500,
    ],
)
async def test_odd_queries_never_fail(
    store: DatabaseSessionService, memory: DatabaseMemoryService, app_name: str, query: str
) -> None:
    session = await add(store, app_name, "ann", text_event("Nvidia and 日本 notes", author="user"))
    await memory.add_session_to_memory(session)
    found = await memory.search_memory(app_name=app_name, user_id="ann", query=query)
    assert isinstance(found.memories, list)
    if query.strip() and not any(ch.isalnum() for ch in query):
        assert found.memories == []


async def test_operators_and_quotes_in_queries_are_plain_words(
    store: DatabaseSessionService, memory: DatabaseMemoryService, app_name: str
) -> None:
    session = await add(
        store, app_name, "ann",
        text_event('My "NOT" list: near misses and OR gates', author="user"),
        text_event("Tell me about Nvidia's results.", author="user"),
    )
    await memory.add_session_to_memory(session)
    assert await texts(memory, app_name, "ann", 'NOT "near" -misses') == [
        'My "NOT" list: near misses and OR gates'
    ]
    assert await texts(memory, app_name, "ann", "what did I say about nvidia's?") == [
        "Tell me about Nvidia's results."
    ]
    assert await texts(memory, app_name, "ann", "What did I say?") == []


async def test_long_messages_come_back_shortened(
    store: DatabaseSessionService, app_name: str
) -> None:
    memory = DatabaseMemoryService(store, max_entry_chars=40, max_results=2)
    long = "The heron " + "waded through the marsh at dawn " * 50
    events = [text_event(long, author="user") for _ in range(3)]
    session = await add(store, app_name, "ann", *events)
    await memory.add_session_to_memory(session)
    found = await texts(memory, app_name, "ann", "heron")
    assert len(found) == 2
    assert all(len(t) <= 42 and t.endswith(" …") for t in found)


async def test_delete_memory(
    store: DatabaseSessionService, memory: DatabaseMemoryService, app_name: str
) -> None:
    session = await add(
        store, app_name, "ann",
        text_event("walrus one", author="user"), text_event("walrus two", author="user"),
    )
    await memory.add_session_to_memory(session)
    found = await memory.search_memory(app_name=app_name, user_id="ann", query="walrus")
    victim = found.memories[0]
    await memory.delete_memory(app_name=app_name, user_id="bob", memory_id=victim.id)  # not his
    assert len(await texts(memory, app_name, "ann", "walrus")) == 2
    await memory.delete_memory(app_name=app_name, user_id="ann", memory_id=victim.id)
    await memory.delete_memory(app_name=app_name, user_id="ann", memory_id="nonsense")
    assert await texts(memory, app_name, "ann", "walrus") == [
        m.content.parts[0].text for m in found.memories[1:]
    ]


async def test_prepare_is_idempotent_and_safe_concurrently(
    store: DatabaseSessionService, app_name: str
) -> None:
    services = [DatabaseMemoryService(store) for _ in range(4)]
    await asyncio.gather(*(s.prepare() for s in services))
    await asyncio.gather(*(s.prepare() for s in services))
    session = await add(store, app_name, "ann", text_event("ibis", author="user"))
    await asyncio.gather(*(s.add_session_to_memory(session) for s in services))
    assert await count_rows(services[0]) == 1


async def test_a_memory_service_built_from_the_url_shares_the_tables(
    store: DatabaseSessionService, db_url: str, backend: str, app_name: str
) -> None:
    if backend == "sqlite_memory":
        pytest.skip("a second in-memory SQLite engine is a different database")
    shared = DatabaseMemoryService(store)
    session = await add(store, app_name, "ann", text_event("okapi facts", author="user"))
    await shared.add_session_to_memory(session)
    own = DatabaseMemoryService(db_url)
    try:
        assert await texts(own, app_name, "ann", "okapi") == ["okapi facts"]
        await own.add_session_to_memory(session)  # copies from the stored events: no duplicate
        assert await count_rows(own) == 1
    finally:
        await own.close()


def test_bad_construction() -> None:
    with pytest.raises(TypeError):
        DatabaseMemoryService(42)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        DatabaseMemoryService("sqlite+aiosqlite://", max_results=0)


async def test_a_deleted_memory_is_not_added_again(
    store: DatabaseSessionService, memory: DatabaseMemoryService, app_name: str
) -> None:
    """Adding its session again, or its event, left the deleted memory as it was before (ADK's
    InMemoryMemoryService remembers deleted ids too)."""
    session = await add(store, app_name, "ann", text_event("quokka secret", author="user"),
                        text_event("quokka public", author="user"))
    await memory.add_session_to_memory(session)
    found = await memory.search_memory(app_name=app_name, user_id="ann", query="secret")
    assert [m.content.parts[0].text for m in found.memories] == ["quokka secret"]
    await memory.delete_memory(app_name=app_name, user_id="ann", memory_id=found.memories[0].id)
    await memory.add_session_to_memory(session)
    await memory.add_events_to_memory(app_name=app_name, user_id="ann", events=session.events,
                                      session_id=session.id)
    again = DatabaseMemoryService(store)  # no state kept in the service: it is in the database
    await again.add_session_to_memory(session)
    assert await texts(memory, app_name, "ann", "quokka") == ["quokka public"]
    # Forgetting the session (or the user) takes the record of the deletion with it.
    await store.delete_session(app_name=app_name, user_id="ann", session_id=session.id)
    left = await memory.backend.run(
        lambda c: c.execute(text("SELECT count(*) FROM ma_memory_forgotten")).scalar(),
        write=False)
    assert left == 0


async def test_our_options_in_a_plain_url(db_url: str, backend: str, tmp_path) -> None:
    """Before: ignored with a warning on SQLite; on PostgreSQL a bare TypeError from asyncpg
    at the first call."""
    from multi_agent.errors import InvalidValueError

    if backend == "sqlite_memory":
        pytest.skip("a second in-memory SQLite engine is a different database")
    sep = "&" if "?" in db_url else "?"
    own = DatabaseMemoryService(f"{db_url}{sep}max_results=3&search=fulltext")
    try:
        assert own.max_results == 3 and own.search_mode == "fulltext"
        await own.prepare(load_model=False)
    finally:
        await own.close()
    with pytest.raises(InvalidValueError, match="session service, not of the memory"):
        DatabaseMemoryService(f"{db_url}{sep}encryption_key_file={tmp_path}/k")
    with pytest.raises(InvalidValueError, match="given both"):
        DatabaseMemoryService(f"{db_url}{sep}max_results=3", max_results=4)
    if backend == "postgres":
        with pytest.raises(InvalidValueError, match="Unknown option 'unknownopt'"):
            DatabaseMemoryService(f"{db_url}{sep}unknownopt=1")
    else:
        synced = DatabaseMemoryService(f"{db_url}{sep}sqlite_synchronous=NORMAL")
        try:
            level = await synced.backend.run(
                lambda c: c.exec_driver_sql("PRAGMA synchronous").scalar(), write=False)
            assert level == 1  # NORMAL (FULL is 2)
        finally:
            await synced.close()
