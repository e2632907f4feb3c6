"""The session store's library API as a demanding ADK developer uses it.

Compared with ADK 2.13's own ``InMemorySessionService`` and ``DatabaseSessionService`` where the
README does not document a deliberate difference. Each test named after what *should* happen;
the docstring of one that found a defect says what happened before its fix.
"""

from __future__ import annotations

import asyncio
import math
from pathlib import Path
from typing import Any

import pytest
from google.adk.events.event import Event
from google.adk.events.event_actions import EventActions
from google.adk.sessions import InMemorySessionService
from google.adk.sessions.base_session_service import GetSessionConfig

from multi_agent import DatabaseSessionService
from multi_agent.errors import (
    InvalidValueError,
    MultiAgentError,
    SessionNotFound,
    StaleSession,
    StateNotSerializableError,
)
from tests.conftest import fresh_pg_database
from tests.helpers import run_processes, text_event

APP, USER = "probe_app", "probe_user"


async def _session_with_events(service: Any, texts: list[str], *, start: float = 1000.0) -> Any:
    session = await service.create_session(app_name=APP, user_id=USER)
    for i, text in enumerate(texts):
        await service.append_event(session, text_event(text, timestamp=start + i))
    return session


def _texts(session: Any) -> list[str]:
    return [e.content.parts[0].text for e in session.events]


# --------------------------------------------------------------------------------------------
# A closed service


_AFTER_CLOSE = ["get_session", "list_sessions", "create_session", "append_event",
                "delete_session", "get_user_state"]


@pytest.mark.timeout(120)
@pytest.mark.parametrize("call", _AFTER_CLOSE)
async def test_a_closed_service_answers_every_call_at_once_and_says_it_is_closed(
    db_url: str, call: str
) -> None:
    """Observed (SQLite file and SQLite memory): after ``await service.close()``, a write
    (``create_session``, ``append_event``, ``delete_session``) never returns: the call waits
    forever (here cut by a 10 s ``wait_for``). On SQLite memory the reads hang too; on a
    SQLite file the reads raise ``RuntimeError: cannot schedule new futures after shutdown``,
    which names neither the service nor the fix. ADK's own ``DatabaseSessionService`` keeps
    working after ``close()`` on a file; our PostgreSQL backend does as well.
    Expected: the call works (as ADK's), or fails at once with an error saying the service was
    closed."""
    service = DatabaseSessionService(db_url)
    session = await service.create_session(app_name=APP, user_id=USER)
    await service.close()
    calls = {
        "get_session": lambda: service.get_session(
            app_name=APP, user_id=USER, session_id=session.id),
        "list_sessions": lambda: service.list_sessions(app_name=APP, user_id=USER),
        "create_session": lambda: service.create_session(app_name=APP, user_id=USER),
        "append_event": lambda: service.append_event(session, text_event("after close")),
        "delete_session": lambda: service.delete_session(
            app_name=APP, user_id=USER, session_id=session.id),
        "get_user_state": lambda: service.get_user_state(app_name=APP, user_id=USER),
    }
    try:
        await asyncio.wait_for(calls[call](), 10)
    except TimeoutError:
        pytest.fail(f"{call} on a closed service hung (no answer in 10 s)")
    except Exception as exc:  # noqa: BLE001 - the message is what is checked
        assert "closed" in str(exc).lower(), f"{call}: {type(exc).__name__}: {exc}"
    finally:
        await service.close()


async def test_closing_twice_is_harmless(db_url: str) -> None:
    service = DatabaseSessionService(db_url)
    await service.create_session(app_name=APP, user_id=USER)
    await service.close()
    await service.close()


# --------------------------------------------------------------------------------------------
# Event fields a backend cannot hold


@pytest.mark.parametrize(
    ("field", "value"),
    [("author", "a" * 300), ("invocation_id", "i" * 300), ("id", "e" * 300),
     ("id", "a\x00b"), ("invocation_id", "inv\x00"), ("branch", "b\x00c")],
    ids=["author_300", "invocation_id_300", "id_300", "id_nul", "invocation_id_nul", "branch_nul"],
)
async def test_an_event_field_the_database_cannot_hold_is_stored_or_refused_as_invalid(
    store: DatabaseSessionService, field: str, value: str
) -> None:
    """Observed (PostgreSQL): an event whose ``author``/``invocation_id``/``id`` is longer than
    256 characters, or whose ``id``/``invocation_id``/``branch`` holds a NUL, is refused with
    ``DatabaseUnavailableError(cause="other")``: "the database at postgresql+asyncpg://...
    failed: Error: value too long for type character varying(256)" / "invalid byte sequence
    for encoding "UTF8": 0x00" - an error that says the *database* is unavailable, with the
    driver's words and no fix. The same event is stored and read back on SQLite.
    Expected: the same outcome on every backend: stored exactly, or refused before anything is
    written with an ``InvalidValueError`` naming the field (as ids and state values are)."""
    session = await store.create_session(app_name=APP, user_id=USER)
    event = text_event("x")
    setattr(event, field, value)
    try:
        await store.append_event(session, event)
    except InvalidValueError as exc:
        assert field in str(exc), str(exc)
        got = await store.get_session(app_name=APP, user_id=USER, session_id=session.id)
        assert got is not None and got.events == []
        return
    got = await store.get_session(app_name=APP, user_id=USER, session_id=session.id)
    assert got is not None and getattr(got.events[-1], field) == value


# --------------------------------------------------------------------------------------------
# Paged lists


async def test_a_page_token_that_is_not_a_string_is_a_clear_invalid_value(
    store: DatabaseSessionService,
) -> None:
    """Observed: ``list_sessions_page(page_token=5)`` raises ``TypeError: 'int' object is not
    subscriptable`` from inside the token decoder. Expected: ``InvalidValueError`` saying
    what a page token is (as for a garbled string token)."""
    await store.create_session(app_name=APP, user_id=USER)
    with pytest.raises(InvalidValueError, match="page_token"):
        await store.list_sessions_page(app_name=APP, user_id=USER, page_token=5)  # type: ignore[arg-type]


async def test_garbled_and_foreign_page_tokens_are_refused_clearly(
    store: DatabaseSessionService,
) -> None:
    for _ in range(5):
        await store.create_session(app_name=APP, user_id=USER)
    page = await store.list_sessions_page(app_name=APP, user_id=USER, page_size=2)
    token = page.next_page_token
    assert token
    flipped = token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1]
    for bad in ["abc", "", flipped]:
        with pytest.raises(InvalidValueError, match="page_token"):
            await store.list_sessions_page(app_name=APP, user_id=USER, page_token=bad)
    with pytest.raises(InvalidValueError, match="belongs to the listing"):
        await store.list_sessions_page(app_name=APP, user_id="someone_else", page_token=token)
    with pytest.raises(InvalidValueError, match="belongs to the listing"):
        await store.list_sessions_page(app_name=APP, user_id=None, page_token=token)
    for size in [0, -1, 1001, "5", 1.5, True]:
        with pytest.raises(InvalidValueError, match="page_size"):
            await store.list_sessions_page(app_name=APP, user_id=USER, page_size=size)  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------
# GetSessionConfig


async def test_after_timestamp_nan_is_refused_or_filters_as_adk_does(
    store: DatabaseSessionService,
) -> None:
    """Observed: ``GetSessionConfig(after_timestamp=float('nan'))`` returns the session with
    *no* events, without a word. ADK's ``InMemorySessionService`` returns every event (no
    event is older than NaN) and ADK's ``DatabaseSessionService`` raises
    ``ValueError: Invalid value NaN``. The store refuses NaN everywhere else (timestamps,
    state) as an ``InvalidValueError``; here an empty history comes back as if the session had
    none. Expected: ``InvalidValueError`` naming ``after_timestamp``, or ADK's in-memory
    answer (every event)."""
    session = await _session_with_events(store, ["e0", "e1", "e2"])
    config = GetSessionConfig(after_timestamp=math.nan)
    try:
        got = await store.get_session(app_name=APP, user_id=USER, session_id=session.id,
                                      config=config)
    except InvalidValueError as exc:
        assert "after_timestamp" in str(exc)
        return
    adk = InMemorySessionService()
    ref = await _session_with_events(adk, ["e0", "e1", "e2"])
    want = await adk.get_session(app_name=APP, user_id=USER, session_id=ref.id, config=config)
    assert got is not None and _texts(got) == _texts(want)


@pytest.mark.parametrize(
    "config",
    [dict(num_recent_events=0), dict(num_recent_events=10**30), dict(after_timestamp=1001.0),
     dict(after_timestamp=math.inf), dict(after_timestamp=-math.inf),
     dict(after_timestamp=-1.0), dict(after_timestamp=1e20),
     dict(num_recent_events=1, after_timestamp=1000.0),
     dict(num_recent_events=2, after_timestamp=1001.5)],
    ids=repr,
)
async def test_get_session_config_edges_match_adk_in_memory(
    store: DatabaseSessionService, config: dict[str, Any]
) -> None:
    session = await _session_with_events(store, ["e0", "e1", "e2"])
    adk = InMemorySessionService()
    ref = await _session_with_events(adk, ["e0", "e1", "e2"])
    cfg = GetSessionConfig(**config)
    got = await store.get_session(app_name=APP, user_id=USER, session_id=session.id, config=cfg)
    want = await adk.get_session(app_name=APP, user_id=USER, session_id=ref.id, config=cfg)
    assert _texts(got) == _texts(want)


# --------------------------------------------------------------------------------------------
# last_update_time


async def test_last_update_time_never_goes_back_a_documented_difference_from_adk(
    store: DatabaseSessionService,
) -> None:
    """After an event whose timestamp is *earlier* than the session's last update (an
    imported or replayed event, a clock step back), ADK sets ``last_update_time`` to the
    event's timestamp; ours keeps the latest of the session's times (its creation included),
    so newest-first pages and retention never see a session move back in time. A deliberate
    difference, in the README's comparison table."""
    adk = InMemorySessionService()
    results = []
    for service in (store, adk):
        session = await service.create_session(app_name=APP, user_id=USER)
        created = session.last_update_time
        await service.append_event(session, text_event("late", timestamp=2000.0))
        await service.append_event(session, text_event("early", timestamp=1000.0))
        got = await service.get_session(app_name=APP, user_id=USER, session_id=session.id)
        results.append((created, session.last_update_time, got.last_update_time))
    ours, theirs = results
    assert ours[1] == ours[2] == max(ours[0], 2000.0)
    assert theirs[1] == theirs[2] == 1000.0
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    assert "`last_update_time` after an event with an earlier timestamp" in readme


# --------------------------------------------------------------------------------------------
# Two OS processes


_USER_KEY_WRITER = r"""
import asyncio, sys
from multi_agent import DatabaseSessionService, StaleSession
from tests.helpers import text_event

async def main(url, app, user, sid, tag, count):
    retries = 0
    async with DatabaseSessionService(url) as store:
        done = 0
        while done < count:
            copy = await store.get_session(app_name=app, user_id=user, session_id=sid)
            event = text_event(f"{tag} {done}", state={
                "user:last": f"{tag}-{done}",
                f"user:count_{tag}": copy.state.get(f"user:count_{tag}", 0) + 1})
            try:
                await store.append_event(copy, event)
            except StaleSession as exc:
                retries += 1
                continue
            print("ACK", event.id, flush=True)
            done += 1
    print("RETRIES", retries, flush=True)

asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5], int(sys.argv[6])))
"""


@pytest.mark.timeout(300)
@pytest.mark.parametrize("backend", ["sqlite_file", "postgres"], indirect=True)
async def test_two_processes_writing_one_user_key_from_two_sessions_lose_nothing(
    db_url: str, app_name: str
) -> None:
    count = 30
    async with DatabaseSessionService(db_url) as store:
        sessions = [await store.create_session(app_name=app_name, user_id="u") for _ in "AB"]
    outs = await run_processes([
        ["-c", _USER_KEY_WRITER, db_url, app_name, "u", s.id, tag, str(count)]
        for s, tag in zip(sessions, "AB")])
    acked = [line.split()[1] for out in outs for line in out.splitlines()
             if line.startswith("ACK")]
    assert len(acked) == len(set(acked)) == 2 * count
    async with DatabaseSessionService(db_url) as store:
        stored = []
        for s in sessions:
            got = await store.get_session(app_name=app_name, user_id="u", session_id=s.id)
            stored += [e.id for e in got.events]
        user_state = await store.get_user_state(app_name=app_name, user_id="u")
    assert sorted(stored) == sorted(acked)
    assert user_state["count_A"] == user_state["count_B"] == count
    # Last writer wins: the final value is one process's last write, never an older one.
    assert user_state["last"] in {f"A-{count - 1}", f"B-{count - 1}"}


_STALE_WRITER = r"""
import asyncio, sys
from multi_agent import DatabaseSessionService, StaleSession
from tests.helpers import text_event

async def main(url, app, user, sid, tag, count):
    async with DatabaseSessionService(url) as store:
        copy = await store.get_session(app_name=app, user_id=user, session_id=sid)
        for i in range(count):
            event = text_event(f"{tag} {i}", state={f"n_{tag}": i})
            try:
                await store.append_event(copy, event)
            except StaleSession as exc:
                print("STALE", exc.reason, str(exc).replace("\n", " "), flush=True)
                continue
            print("ACK", event.id, flush=True)

asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5], int(sys.argv[6])))
"""


@pytest.mark.timeout(300)
@pytest.mark.parametrize("backend", ["sqlite_file", "postgres"], indirect=True)
async def test_two_processes_on_one_session_without_reload_get_a_clear_stale_error(
    db_url: str, app_name: str
) -> None:
    count = 40
    async with DatabaseSessionService(db_url) as store:
        session = await store.create_session(app_name=app_name, user_id="u")
    outs = await run_processes([
        ["-c", _STALE_WRITER, db_url, app_name, "u", session.id, tag, str(count)]
        for tag in "AB"])
    lines = [line for out in outs for line in out.splitlines()]
    acked = {line.split()[1] for line in lines if line.startswith("ACK")}
    stale = [line for line in lines if line.startswith("STALE")]
    assert len(acked) + len(stale) == 2 * count
    for line in stale:
        assert "get_session" in line and "Nothing was written" in line, line
    async with DatabaseSessionService(db_url) as store:
        got = await store.get_session(app_name=app_name, user_id="u", session_id=session.id)
    assert {e.id for e in got.events} == acked and len(got.events) == len(acked)
    # Each process's last acknowledged write of its own key is the stored value.
    for tag in "AB":
        mine = [e for e in got.events if e.content.parts[0].text.startswith(tag)]
        if mine:
            assert got.state[f"n_{tag}"] == mine[-1].actions.state_delta[f"n_{tag}"]


# --------------------------------------------------------------------------------------------
# A database another session service wrote


async def _adk_database_session_service_db(backend: str, tmp_path: Any) -> str:
    if backend == "postgres":
        return await fresh_pg_database()
    return f"sqlite+aiosqlite:///{tmp_path / 'adk_sessions.db'}"


@pytest.mark.parametrize("backend", ["sqlite_file", "postgres"], indirect=True)
async def test_a_database_of_adks_own_service_is_not_silently_shown_as_empty(
    backend: str, tmp_path: Any
) -> None:
    """Observed: pointing ``multi_agent.DatabaseSessionService`` (the README's "drop-in") at
    a database that ADK's own ``DatabaseSessionService`` wrote - the migration every ADK user
    of a database makes - shows none of its sessions: ``get_session`` returns ``None`` and
    ``list_sessions`` ``[]`` without a word, and our ``ma_*`` tables are added to the database
    beside ADK's. A user would believe the history gone. The README says nothing about moving
    from ADK's store (no import, no warning). Expected: ADK's sessions readable (a migration),
    or a ``MultiAgentError`` naming ADK's tables and what to do, before anything is written."""
    from google.adk.sessions.database_session_service import (
        DatabaseSessionService as AdkDatabaseSessionService,
    )

    url = await _adk_database_session_service_db(backend, tmp_path)
    adk = AdkDatabaseSessionService(url)
    session = await adk.create_session(app_name=APP, user_id=USER, state={"k": 1})
    await adk.append_event(session, text_event("hello from ADK"))
    await adk.close()
    store = DatabaseSessionService(url)
    try:
        try:
            got = await store.get_session(app_name=APP, user_id=USER, session_id=session.id)
            listed = await store.list_sessions(app_name=APP, user_id=USER)
        except MultiAgentError as exc:
            assert "ADK" in str(exc) or "adk" in str(exc), str(exc)
            return
        assert got is not None, "ADK's session is invisible: get_session returned None"
        assert _texts(got) == ["hello from ADK"] and got.state["k"] == 1
        assert [s.id for s in listed.sessions] == [session.id]
    finally:
        await store.close()


async def test_the_file_of_adks_default_sqlite_service_is_not_silently_shown_as_empty(
    tmp_path: Any,
) -> None:
    """Observed: the same with the file of ADK's ``SqliteSessionService`` (``adk web``'s
    default store, ``<agent>/.adk/session.db``): every session invisible, no word.
    Expected: readable, or a clear error naming ADK's tables."""
    from google.adk.sessions.sqlite_session_service import SqliteSessionService

    path = tmp_path / "session.db"
    adk = SqliteSessionService(str(path))
    session = await adk.create_session(app_name=APP, user_id=USER, state={"k": 1})
    await adk.append_event(session, text_event("hello from adk web"))
    store = DatabaseSessionService(f"sqlite+aiosqlite:///{path}")
    try:
        try:
            got = await store.get_session(app_name=APP, user_id=USER, session_id=session.id)
        except MultiAgentError as exc:
            assert "ADK" in str(exc) or "adk" in str(exc), str(exc)
            return
        assert got is not None, "ADK's session is invisible: get_session returned None"
        assert _texts(got) == ["hello from adk web"]
    finally:
        await store.close()


async def test_a_file_that_is_not_a_database_is_refused_and_left_as_it_was(
    tmp_path: Any,
) -> None:
    path = tmp_path / "notes.db"
    path.write_text("hello, this is not a database\n" * 100)
    before = path.read_bytes()
    store = DatabaseSessionService(f"sqlite+aiosqlite:///{path}")
    try:
        with pytest.raises(MultiAgentError) as info:
            await store.create_session(app_name=APP, user_id=USER)
        assert getattr(info.value, "cause", None) == "corrupt"
        assert "not a valid SQLite database" in str(info.value)
    finally:
        await store.close()
    assert path.read_bytes() == before


async def test_a_zero_byte_file_becomes_a_working_store(tmp_path: Any) -> None:
    path = tmp_path / "empty.db"
    path.touch()
    async with DatabaseSessionService(f"sqlite+aiosqlite:///{path}") as store:
        s = await store.create_session(app_name=APP, user_id=USER, state={"k": 1})
    async with DatabaseSessionService(f"sqlite+aiosqlite:///{path}") as store:
        got = await store.get_session(app_name=APP, user_id=USER, session_id=s.id)
    assert got is not None and got.state == {"k": 1}


# --------------------------------------------------------------------------------------------
# create_session's returned copy


async def test_create_session_returns_a_state_the_caller_cannot_change_afterwards(
    store: DatabaseSessionService,
) -> None:
    """Observed: the ``Session`` that ``create_session(state=st)`` returns shares ``st``'s
    nested values: after ``st["prefs"]["theme"] = "light"`` the returned session's state says
    ``light`` while storage (and every reload) says ``dark``. ADK's ``InMemorySessionService``
    (deep copy) and ``DatabaseSessionService`` (read back from storage) both return a state of
    their own. Expected: the returned state does not change with the caller's dict."""
    st = {"prefs": {"theme": "dark"}, "user:profile": {"name": "Ada"}}
    session = await store.create_session(app_name=APP, user_id=USER, state=st)
    st["prefs"]["theme"] = "light"
    st["user:profile"]["name"] = "Bob"
    assert session.state["prefs"] == {"theme": "dark"}
    assert session.state["user:profile"] == {"name": "Ada"}


async def test_create_session_returns_the_state_as_stored(
    store: DatabaseSessionService,
) -> None:
    """Observed: ``create_session(state={"pair": (1, 2)})`` is accepted (a tuple is stored as a
    JSON array) but the returned session holds the tuple ``(1, 2)`` while ``get_session``
    gives ``[1, 2]``, so the copy is not "equal to what was stored" (README) and
    ``created.state == reloaded.state`` is False. ADK's ``DatabaseSessionService`` returns
    ``[1, 2]`` from ``create_session``. Expected: the stored form (a list) in the returned
    copy (or the tuple refused like the store's other non-JSON values)."""
    try:
        session = await store.create_session(
            app_name=APP, user_id=USER, state={"pair": (1, 2), "user:one": (3,)})
    except StateNotSerializableError:
        return
    got = await store.get_session(app_name=APP, user_id=USER, session_id=session.id)
    assert session.state == got.state


# --------------------------------------------------------------------------------------------
# Edge cases that behave well (kept as regression tests)


async def test_prefixed_and_odd_keys_at_create_are_scoped_as_adk_does(
    store: DatabaseSessionService,
) -> None:
    state = {"user:a": 1, "app:b": 2, "temp:c": 3, "user:temp:x": 4, "": 5, "user:": 6,
             "app:": 7, "temp:": 8, "plain": 9}
    adk = InMemorySessionService()
    ours = await store.create_session(app_name=APP, user_id=USER, state=dict(state))
    ref = await adk.create_session(app_name=APP, user_id=USER, state=dict(state))
    assert ours.state == ref.state
    got = await store.get_session(app_name=APP, user_id=USER, session_id=ours.id)
    assert got.state == ref.state
    assert await store.get_user_state(app_name=APP, user_id=USER) == (
        await adk.get_user_state(app_name=APP, user_id=USER))


@pytest.mark.parametrize(
    ("value", "hint"),
    [(math.nan, "nan"), (math.inf, "inf"), (b"x", "bytes"), ({1}, "set"),
     (__import__("datetime").datetime(2024, 1, 1), "datetime"),
     (__import__("decimal").Decimal("1.5"), "Decimal"), ({1: 2}, "non-string key")],
    ids=["nan", "inf", "bytes", "set", "datetime", "decimal", "int_key"],
)
async def test_non_json_state_is_refused_naming_the_key_at_create_and_append(
    store: DatabaseSessionService, value: Any, hint: str
) -> None:
    with pytest.raises(StateNotSerializableError, match=hint) as info:
        await store.create_session(app_name=APP, user_id=USER, state={"bad": value})
    assert info.value.key == "bad" and "Nothing was written" in str(info.value)
    session = await store.create_session(app_name=APP, user_id=USER)
    with pytest.raises(StateNotSerializableError, match="user:bad"):
        await store.append_event(session, text_event("x", state={"user:bad": value}))
    got = await store.get_session(app_name=APP, user_id=USER, session_id=session.id)
    assert got.events == [] and session.events == []
    assert await store.get_user_state(app_name=APP, user_id=USER) == {}


async def test_partial_event_none_delta_and_artifact_delta_as_adk(
    store: DatabaseSessionService,
) -> None:
    session = await store.create_session(app_name=APP, user_id=USER,
                                         state={"k": 1, "user:uk": 2})
    partial = Event(author="a", invocation_id="i", partial=True,
                    actions=EventActions(state_delta={"p": 1}))
    await store.append_event(session, partial)
    await store.append_event(session, Event(
        author="a", invocation_id="i",
        actions=EventActions(state_delta={"k": None, "user:uk": None},
                             artifact_delta={"f.txt": 0})))
    got = await store.get_session(app_name=APP, user_id=USER, session_id=session.id)
    assert len(got.events) == 1 and "p" not in got.state
    assert got.state == {"k": None, "user:uk": None}
    assert got.events[0].actions.artifact_delta == {"f.txt": 0}


async def test_same_event_twice_is_a_no_op_and_a_different_one_is_refused(
    store: DatabaseSessionService,
) -> None:
    from multi_agent.errors import EventIdConflict

    session = await store.create_session(app_name=APP, user_id=USER)
    event = text_event("once")
    await store.append_event(session, event)
    await store.append_event(session, event)
    other = text_event("other")
    other.id = event.id
    with pytest.raises(EventIdConflict, match="Event.new_id"):
        await store.append_event(session, other)
    got = await store.get_session(app_name=APP, user_id=USER, session_id=session.id)
    assert _texts(got) == ["once"] and len(session.events) == 1


async def test_copies_of_a_deleted_or_recreated_session_are_refused_clearly(
    store: DatabaseSessionService,
) -> None:
    session = await store.create_session(app_name=APP, user_id=USER, session_id="same-id")
    old = await store.get_session(app_name=APP, user_id=USER, session_id="same-id")
    await store.delete_session(app_name=APP, user_id=USER, session_id="same-id")
    with pytest.raises(SessionNotFound, match="does not exist"):
        await store.append_event(old, text_event("into the void"))
    await store.create_session(app_name=APP, user_id=USER, session_id="same-id")
    with pytest.raises(StaleSession, match="deleted and created again") as info:
        await store.append_event(old, text_event("into the new one"))
    assert info.value.reason == "recreated"
    got = await store.get_session(app_name=APP, user_id=USER, session_id="same-id")
    assert got.events == []
    del session


async def test_a_stale_copy_is_refused_saying_what_to_do(store: DatabaseSessionService) -> None:
    session = await store.create_session(app_name=APP, user_id=USER)
    first = await store.get_session(app_name=APP, user_id=USER, session_id=session.id)
    second = await store.get_session(app_name=APP, user_id=USER, session_id=session.id)
    await store.append_event(first, text_event("a"))
    with pytest.raises(StaleSession) as info:
        await store.append_event(second, text_event("b"))
    assert "get_session()" in str(info.value) and "Nothing was written" in str(info.value)
    got = await store.get_session(app_name=APP, user_id=USER, session_id=session.id)
    assert _texts(got) == ["a"]


@pytest.mark.parametrize(
    "bad", [None, 5, "", "x" * 1000, "a\x00b"], ids=["none", "int", "empty", "long", "nul"])
async def test_bad_ids_are_refused_on_writes_and_find_nothing_on_reads(
    store: DatabaseSessionService, bad: Any
) -> None:
    from multi_agent.errors import InvalidIdError

    await store.create_session(app_name=APP, user_id=USER, session_id="kept")
    with pytest.raises(InvalidIdError):
        await store.create_session(app_name=APP, user_id=bad)
    if bad is not None:  # session_id=None: a new id is made
        with pytest.raises(InvalidIdError):
            await store.create_session(app_name=APP, user_id=USER, session_id=bad)
    reads = [
        lambda: store.get_session(app_name=APP, user_id=USER, session_id=bad),
        lambda: store.delete_session(app_name=APP, user_id=USER, session_id=bad),
        lambda: store.list_sessions(app_name=bad, user_id=USER),
        lambda: store.get_user_state(app_name=APP, user_id=bad),
    ]
    for read in reads:
        try:
            found = await read()
        except InvalidIdError:
            continue
        assert not isinstance(bad, int | type(None)), "a non-string id was accepted"
        assert found in (None, {}) or getattr(found, "sessions", None) == []
    assert [s.id for s in (await store.list_sessions(app_name=APP, user_id=USER)).sessions] == [
        "kept"]


async def test_ids_with_newline_and_emoji_round_trip(store: DatabaseSessionService) -> None:
    sid, uid = "line\nbreak 😀", "usér\t🙂"
    await store.create_session(app_name=APP, user_id=uid, session_id=sid)
    got = await store.get_session(app_name=APP, user_id=uid, session_id=sid)
    assert got is not None and got.id == sid and got.user_id == uid
    listed = await store.list_sessions(app_name=APP, user_id=None)
    assert [(s.user_id, s.id) for s in listed.sessions] == [(uid, sid)]


async def test_ten_megabyte_state_value_round_trips(store: DatabaseSessionService) -> None:
    big = "x" * (10 * 1024 * 1024)
    session = await store.create_session(app_name=APP, user_id=USER, state={"big": big})
    await store.append_event(session, text_event("b", state={"user:big": big}))
    got = await store.get_session(app_name=APP, user_id=USER, session_id=session.id)
    assert got.state["big"] == big and got.state["user:big"] == big
