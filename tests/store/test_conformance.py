"""The ADK session-service contract, on every backend (SQLite file, SQLite memory, PostgreSQL)."""

from __future__ import annotations

import asyncio

import pytest
from google.adk.errors._stale_session_error import StaleSessionError
from google.adk.errors.already_exists_error import AlreadyExistsError
from google.adk.errors.session_not_found_error import SessionNotFoundError
from google.adk.sessions.base_session_service import BaseSessionService, GetSessionConfig
from google.adk.sessions.session import Session

from multi_agent import (
    DatabaseSessionService,
    InvalidIdError,
    SessionAlreadyExists,
    StaleSession,
    StateNotSerializableError,
)
from tests.helpers import text_event


def test_is_an_adk_session_service() -> None:
    assert issubclass(DatabaseSessionService, BaseSessionService)


async def test_create_and_get_roundtrip(store: DatabaseSessionService, app_name: str) -> None:
    created = await store.create_session(
        app_name=app_name, user_id="u1", state={"topic": "python", "nested": {"a": [1, 2.5, None]}}
    )
    assert isinstance(created, Session) and created.id
    got = await store.get_session(app_name=app_name, user_id="u1", session_id=created.id)
    assert got == created
    assert got.state == {"topic": "python", "nested": {"a": [1, 2.5, None]}}
    assert got.events == []


async def test_state_scoping(store: DatabaseSessionService, app_name: str) -> None:
    s1 = await store.create_session(
        app_name=app_name, user_id="u1",
        state={"app:motd": "hi", "user:name": "Ann", "temp:scratch": 1, "k": "v"},
    )
    assert s1.state == {"app:motd": "hi", "user:name": "Ann", "k": "v"}
    # user: is shared by the user's sessions, app: by every user of the app.
    s2 = await store.create_session(app_name=app_name, user_id="u1")
    assert s2.state == {"app:motd": "hi", "user:name": "Ann"}
    s3 = await store.create_session(app_name=app_name, user_id="u2")
    assert s3.state == {"app:motd": "hi"}
    # temp: is applied in memory for the invocation but never stored.
    ev = text_event("x", state={"temp:t": 5, "user:name": "Bob", "app:motd": "yo", "k2": 2})
    await store.append_event(s2, ev)
    assert s2.state["temp:t"] == 5
    assert "temp:t" not in ev.actions.state_delta
    fresh = await store.get_session(app_name=app_name, user_id="u1", session_id=s2.id)
    assert fresh.state == {"app:motd": "yo", "user:name": "Bob", "k2": 2}
    other_user = await store.get_session(app_name=app_name, user_id="u2", session_id=s3.id)
    assert other_user.state == {"app:motd": "yo"}
    assert await store.get_user_state(app_name=app_name, user_id="u1") == {"name": "Bob"}
    assert await store.get_user_state(app_name=app_name, user_id="nobody") == {}
    assert await store.get_app_state(app_name=app_name) == {"motd": "yo"}
    # app: state stays within its app.
    other_app = await store.create_session(app_name=app_name + "_other", user_id="u1")
    assert other_app.state == {}


async def test_big_numbers_round_trip_exactly(
    store: DatabaseSessionService, app_name: str
) -> None:
    values = {"big": 2**70, "neg": -(2**65), "tiny": 5e-324, "float": 0.1, "neg0": -0.0}
    s = await store.create_session(app_name=app_name, user_id="u", state=values)
    await store.append_event(s, text_event("x", state={"user:big": 10**30}))
    got = await store.get_session(app_name=app_name, user_id="u", session_id=s.id)
    assert got.state == {**values, "user:big": 10**30}
    assert type(got.state["big"]) is int and type(got.state["float"]) is float


async def test_none_stores_null(store: DatabaseSessionService, app_name: str) -> None:
    s = await store.create_session(app_name=app_name, user_id="u", state={"a": 1})
    await store.append_event(s, text_event("x", state={"a": None}))
    got = await store.get_session(app_name=app_name, user_id="u", session_id=s.id)
    assert got.state == {"a": None}


async def test_duplicate_session_id(store: DatabaseSessionService, app_name: str) -> None:
    await store.create_session(app_name=app_name, user_id="u", session_id="s1", state={"a": 1})
    with pytest.raises(AlreadyExistsError) as info:
        await store.create_session(
            app_name=app_name, user_id="u", session_id="s1", state={"user:x": 1}
        )
    assert isinstance(info.value, SessionAlreadyExists)
    assert "already exists" in str(info.value)
    # Nothing of the failed create was written.
    assert await store.get_user_state(app_name=app_name, user_id="u") == {}
    # The same id for another user is a different session.
    await store.create_session(app_name=app_name, user_id="u2", session_id="s1")


async def test_get_missing_returns_none(store: DatabaseSessionService, app_name: str) -> None:
    assert await store.get_session(app_name=app_name, user_id="u", session_id="nope") is None


async def test_events_roundtrip_equal(store: DatabaseSessionService, app_name: str) -> None:
    s = await store.create_session(app_name=app_name, user_id="u")
    for i in range(5):
        await store.append_event(
            s, text_event(f"msg {i} ünïcødé \x00 nul", author="user" if i % 2 else "agent",
                          state={"i": i})
        )
    got = await store.get_session(app_name=app_name, user_id="u", session_id=s.id)
    assert got.events == s.events
    assert got.state == s.state == {"i": 4}
    assert got.last_update_time == s.last_update_time
    assert got == s


async def test_partial_events_not_stored(store: DatabaseSessionService, app_name: str) -> None:
    s = await store.create_session(app_name=app_name, user_id="u")
    ev = text_event("partial", state={"x": 1})
    ev.partial = True
    await store.append_event(s, ev)
    got = await store.get_session(app_name=app_name, user_id="u", session_id=s.id)
    assert got.events == [] and got.state == {}


async def test_get_session_config(store: DatabaseSessionService, app_name: str) -> None:
    s = await store.create_session(app_name=app_name, user_id="u")
    for i in range(10):
        await store.append_event(s, text_event(f"m{i}", timestamp=1000.0 + i))

    async def texts(config: GetSessionConfig) -> list[str]:
        got = await store.get_session(
            app_name=app_name, user_id="u", session_id=s.id, config=config
        )
        return [e.content.parts[0].text for e in got.events]

    assert await texts(GetSessionConfig(num_recent_events=3)) == ["m7", "m8", "m9"]
    assert await texts(GetSessionConfig(num_recent_events=0)) == []
    assert len(await texts(GetSessionConfig(num_recent_events=50))) == 10
    assert await texts(GetSessionConfig(after_timestamp=1007.0)) == ["m7", "m8", "m9"]
    assert await texts(GetSessionConfig(after_timestamp=1002.0, num_recent_events=2)) == [
        "m8", "m9"
    ]
    # Past the databases' integers (``?window=10**20``): every event, not OverflowError.
    for huge in (2**62, 2**63, 10**20):
        assert len(await texts(GetSessionConfig(num_recent_events=huge))) == 10
        assert await texts(GetSessionConfig(num_recent_events=huge, after_timestamp=1007.0)
                           ) == ["m7", "m8", "m9"]


async def test_list_sessions(store: DatabaseSessionService, app_name: str) -> None:
    a = await store.create_session(app_name=app_name, user_id="u1", state={"user:n": 1, "k": "a"})
    b = await store.create_session(app_name=app_name, user_id="u1", state={"k": "b"})
    c = await store.create_session(app_name=app_name, user_id="u2", state={"app:g": 1})
    await store.append_event(a, text_event("newest", state={"k": "a2"}))
    mine = (await store.list_sessions(app_name=app_name, user_id="u1")).sessions
    assert [x.id for x in mine] == [b.id, a.id]  # oldest update first
    assert all(x.events == [] for x in mine)
    assert {x.id: x.state for x in mine} == {
        a.id: {"k": "a2", "user:n": 1, "app:g": 1},
        b.id: {"k": "b", "user:n": 1, "app:g": 1},
    }
    everyone = (await store.list_sessions(app_name=app_name)).sessions
    assert {x.id for x in everyone} == {a.id, b.id, c.id}
    assert next(x for x in everyone if x.id == c.id).state == {"app:g": 1}
    assert (await store.list_sessions(app_name=app_name, user_id="ghost")).sessions == []


async def test_delete_session(store: DatabaseSessionService, app_name: str) -> None:
    s = await store.create_session(app_name=app_name, user_id="u", state={"user:keep": 1})
    await store.append_event(s, text_event("x"))
    await store.delete_session(app_name=app_name, user_id="u", session_id=s.id)
    assert await store.get_session(app_name=app_name, user_id="u", session_id=s.id) is None
    assert (await store.list_sessions(app_name=app_name, user_id="u")).sessions == []
    # user state outlives the session; deleting a missing session is a no-op (ADK contract).
    assert await store.get_user_state(app_name=app_name, user_id="u") == {"keep": 1}
    await store.delete_session(app_name=app_name, user_id="u", session_id=s.id)
    # The id can be reused.
    await store.create_session(app_name=app_name, user_id="u", session_id=s.id)


async def test_append_to_unknown_session(store: DatabaseSessionService, app_name: str) -> None:
    ghost = Session(id="ghost", app_name=app_name, user_id="u")
    with pytest.raises(SessionNotFoundError, match="does not exist"):
        await store.append_event(ghost, text_event("x"))


async def test_stale_copy_raises_and_writes_nothing(
    store: DatabaseSessionService, app_name: str
) -> None:
    s = await store.create_session(app_name=app_name, user_id="u")
    copy_a = await store.get_session(app_name=app_name, user_id="u", session_id=s.id)
    copy_b = await store.get_session(app_name=app_name, user_id="u", session_id=s.id)
    await store.append_event(copy_a, text_event("from a", state={"a": 1}))
    with pytest.raises(StaleSessionError) as info:
        await store.append_event(copy_b, text_event("from b", state={"b": 1, "user:b": 1}))
    assert isinstance(info.value, StaleSession)
    assert "Reload" in str(info.value)
    stored = await store.get_session(app_name=app_name, user_id="u", session_id=s.id)
    assert [e.content.parts[0].text for e in stored.events] == ["from a"]
    assert stored.state == {"a": 1}
    # Reload and retry: accepted.
    await store.append_event(stored, text_event("from b", state={"b": 1}))
    final = await store.get_session(app_name=app_name, user_id="u", session_id=s.id)
    assert final.state == {"a": 1, "b": 1} and len(final.events) == 2


async def test_merge_mode_brings_stale_copy_up_to_date(db_url: str, app_name: str) -> None:
    async with DatabaseSessionService(db_url, on_stale="merge") as store:
        s = await store.create_session(app_name=app_name, user_id="u")
        copy_a = await store.get_session(app_name=app_name, user_id="u", session_id=s.id)
        copy_b = await store.get_session(app_name=app_name, user_id="u", session_id=s.id)
        await store.append_event(copy_a, text_event("a", state={"a": 1, "user:ua": 1}))
        await store.append_event(copy_b, text_event("b", state={"b": 2}))
        assert copy_b.state == {"a": 1, "b": 2, "user:ua": 1}
        assert [e.content.parts[0].text for e in copy_b.events] == ["a", "b"]
        stored = await store.get_session(app_name=app_name, user_id="u", session_id=s.id)
        assert stored.events == copy_b.events and stored.state == copy_b.state
        # The merged copy is current again: a further append is not stale.
        await store.append_event(copy_b, text_event("c"))


async def test_concurrent_tasks_on_one_object(
    store: DatabaseSessionService, app_name: str
) -> None:
    s = await store.create_session(app_name=app_name, user_id="u")

    async def writer(tag: str) -> None:
        for i in range(20):
            await store.append_event(s, text_event(f"{tag}{i}", state={tag: i}))

    await asyncio.gather(writer("a"), writer("b"))
    got = await store.get_session(app_name=app_name, user_id="u", session_id=s.id)
    assert len(got.events) == 40 and got.state == {"a": 19, "b": 19}


async def test_foreign_session_object_fallback_check(
    store: DatabaseSessionService, app_name: str
) -> None:
    s = await store.create_session(app_name=app_name, user_id="u")
    await store.append_event(s, text_event("one"))
    # A Session built by hand (no revision marker) is checked by its newest event id.
    behind = Session(id=s.id, app_name=app_name, user_id="u", events=[])
    with pytest.raises(StaleSessionError):
        await store.append_event(behind, text_event("two"))
    current = Session(id=s.id, app_name=app_name, user_id="u", events=list(s.events))
    await store.append_event(current, text_event("two"))


async def test_append_is_idempotent_by_event_id(
    store: DatabaseSessionService, app_name: str
) -> None:
    s = await store.create_session(app_name=app_name, user_id="u")
    ev = text_event("once", state={"n": 1})
    await store.append_event(s, ev)
    stale = await store.get_session(app_name=app_name, user_id="u", session_id=s.id)
    await store.append_event(s, text_event("two"))
    # A retry of an acknowledged event (even from a stale copy) is a no-op, not an error.
    await store.append_event(stale, ev)
    got = await store.get_session(app_name=app_name, user_id="u", session_id=s.id)
    assert [e.content.parts[0].text for e in got.events] == ["once", "two"]


async def test_non_json_state_refused_nothing_written(
    store: DatabaseSessionService, app_name: str
) -> None:
    with pytest.raises(StateNotSerializableError, match="set") as info:
        await store.create_session(app_name=app_name, user_id="u", state={"bad": {1, 2}})
    assert info.value.key == "bad"
    assert (await store.list_sessions(app_name=app_name)).sessions == []
    s = await store.create_session(app_name=app_name, user_id="u", state={"ok": 1})
    for bad in (object(), float("nan"), {"nested": [1, {2: "int key"}]}, b"bytes"):
        with pytest.raises(StateNotSerializableError):
            await store.append_event(s, text_event("x", state={"ok": 2, "user:bad": bad}))
    got = await store.get_session(app_name=app_name, user_id="u", session_id=s.id)
    assert got.events == [] and got.state == {"ok": 1}
    assert await store.get_user_state(app_name=app_name, user_id="u") == {}


@pytest.mark.parametrize("bad", ["", "x" * 257, "nul\x00id", 42])
async def test_invalid_ids_refused(store: DatabaseSessionService, app_name: str, bad) -> None:
    with pytest.raises(InvalidIdError):
        await store.create_session(app_name=app_name, user_id="u", session_id=bad)
    if isinstance(bad, str):  # no session can have it: reads find nothing, as ADK's do
        assert await store.get_session(app_name=app_name, user_id=bad, session_id="s") is None
        assert (await store.list_sessions(app_name=app_name, user_id=bad)).sessions == []
        await store.delete_session(app_name=app_name, user_id="u", session_id=bad)
    else:  # not an id at all: the caller's mistake, said so
        for read in (store.get_session(app_name=app_name, user_id=bad, session_id="s"),
                     store.list_sessions(app_name=app_name, user_id=bad),
                     store.delete_session(app_name=app_name, user_id="u", session_id=bad)):
            with pytest.raises(InvalidIdError, match="must be a string"):
                await read


@pytest.mark.parametrize(
    "odd", ["it's \"quoted\"", "'; DROP TABLE ma_events; --", "../../etc/passwd", "  spaced  ",
            "ünï 😀", "x" * 256]
)
async def test_odd_ids_stored_exactly(store: DatabaseSessionService, app_name: str, odd) -> None:
    s = await store.create_session(app_name=app_name, user_id=odd, session_id=odd)
    await store.append_event(s, text_event("hi", state={odd: odd}))
    got = await store.get_session(app_name=app_name, user_id=odd, session_id=odd)
    assert got.id == odd and got.user_id == odd and got.state == {odd: odd}
    assert [x.id for x in (await store.list_sessions(app_name=app_name, user_id=odd)).sessions] == [
        odd
    ]


def test_gc_pause_restores_the_collector_with_overlapping_users() -> None:
    import gc
    import threading

    from multi_agent.store.ops import gc_paused

    assert gc.isenabled()
    inside = threading.Barrier(2)
    done = threading.Event()

    def other() -> None:
        with gc_paused():
            inside.wait()
            done.wait(5)

    thread = threading.Thread(target=other)
    thread.start()
    with gc_paused(promote=True):
        inside.wait()
    assert not gc.isenabled()  # the other user is still inside
    done.set()
    thread.join()
    assert gc.isenabled()


async def test_loaded_events_belong_to_the_returned_session_only(
    store: DatabaseSessionService, app_name: str
) -> None:
    """Nothing inside the store keeps a read's events alive after get_session returns.

    (The executor future that carried them used to live until the caller's next await, so
    the caller's next store call paid for freeing a big session it had already dropped.)
    """
    import sys

    s = await store.create_session(app_name=app_name, user_id="u")
    await store.append_event(s, text_event("x"))
    got = await store.get_session(app_name=app_name, user_id="u", session_id=s.id)
    refs = sys.getrefcount(got.events)
    assert refs == 2  # the session's field and this call's argument


def test_batch_parse_matches_the_standard_library() -> None:
    """loads_batch == [json.loads(r) ...]: big ints stay ints, floats exact, odd text kept."""
    import json

    from multi_agent.store.codec import loads_batch

    raws = [
        json.dumps({"big": 2**70, "neg": -(2**65), "tiny": 5e-324, "f": 0.1, "z": -0.0}),
        json.dumps({"s": "\u00e9\U0001f600", "n": None, "l": [1, [2, {"a": True}]]}),
        '{"a":1,"a":2}',
    ]
    assert loads_batch(raws) == [json.loads(r) for r in raws]
    got = loads_batch(raws)[0]
    assert type(got["big"]) is int and got["big"] == 2**70
    # What pydantic-core's parser refuses goes through the standard library.
    lone = ['{"t":"\\ud800"}']
    assert loads_batch(lone) == [{"t": "\ud800"}]
    deep = ["[" * 300 + "]" * 300]
    assert loads_batch(deep) == [json.loads(deep[0])]
    assert loads_batch(["1"]) == [1]
