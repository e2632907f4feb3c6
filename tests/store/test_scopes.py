"""No lost update at any scope: per-key conflicts, atomic updates, incarnations, bad events.

One test per way an acknowledged write could vanish (issue "No lost update at any scope"),
on every backend. Multi-process versions are in tests/reliability/test_scope_writers.py.
"""

from __future__ import annotations

import math

import pytest
from google.adk.events.event import Event

from multi_agent import DatabaseSessionService
from multi_agent.errors import EventIdConflict, InvalidValueError, StaleSession
from multi_agent.store.scopes import parse_marker
from multi_agent.store.updates import StateUpdates
from tests.helpers import text_event


async def two_sessions(store: DatabaseSessionService, app: str, user: str = "u"):
    a = await store.create_session(app_name=app, user_id=user)
    b = await store.create_session(app_name=app, user_id=user)
    return a, b


# -- 1. user:/app: state across sessions --------------------------------------------------------


@pytest.mark.parametrize("on_stale", ["raise", "merge"])
@pytest.mark.parametrize("scope", ["user", "app"])
async def test_stale_read_modify_write_of_shared_scope_is_refused(
    db_url: str, app_name: str, on_stale: str, scope: str
) -> None:
    """Copies of two sessions read n = 0 and both write n = 1: the second is refused."""
    key = f"{scope}:n"
    async with DatabaseSessionService(db_url, on_stale=on_stale) as store:
        a, b = await two_sessions(store, app_name, "u")
        if scope == "app":  # app: state is shared across users too
            b = await store.create_session(app_name=app_name, user_id="v")
        assert a.state.get(key, 0) == b.state.get(key, 0) == 0
        await store.append_event(a, text_event("a", state={key: a.state.get(key, 0) + 1}))
        with pytest.raises(StaleSession) as caught:
            await store.append_event(b, text_event("b", state={key: b.state.get(key, 0) + 1}))
        assert caught.value.reason == "keys" and caught.value.keys == (key,)
        assert "StateUpdates" in str(caught.value) and "Nothing was written" in str(caught.value)
        # Nothing of the refused event was written; the reloaded copy computes right.
        fresh = await store.get_session(app_name=app_name, user_id=b.user_id, session_id=b.id)
        assert fresh.events == [] and fresh.state[key] == 1
        await store.append_event(fresh, text_event("b", state={key: fresh.state[key] + 1}))
        got = await store.get_session(app_name=app_name, user_id="u", session_id=a.id)
        assert got.state[key] == 2


async def test_other_keys_and_unchanged_values_do_not_conflict(
    store: DatabaseSessionService, app_name: str
) -> None:
    a, b = await two_sessions(store, app_name)
    await store.append_event(a, text_event("a", state={"user:x": 1, "app:same": 5}))
    # b never read user:x; writing other keys is safe.
    await store.append_event(b, text_event("b", state={"user:y": 2}))
    state = await store.get_user_state(app_name=app_name, user_id="u")
    assert state == {"x": 1, "y": 2}
    # b's copy was refreshed by its own user: write: it now sees a's user:x.
    assert b.state["user:x"] == 1
    # Rewriting a key with the value it already has writes nothing and moves no revision,
    # so it invalidates no other copy's read.
    c = await store.get_session(app_name=app_name, user_id="u", session_id=a.id)
    await store.append_event(b, text_event("b2", state={"user:y": 2}))
    await store.append_event(c, text_event("c", state={"user:y": 3}))
    assert (await store.get_user_state(app_name=app_name, user_id="u"))["y"] == 3


async def test_copy_refreshed_by_its_append_can_write_again(
    store: DatabaseSessionService, app_name: str
) -> None:
    a, b = await two_sessions(store, app_name)
    await store.append_event(a, text_event("a", state={"user:n": 1}))
    await store.append_event(b, text_event("b", state={"user:other": 1}))  # refreshes b
    assert b.state["user:n"] == 1
    await store.append_event(b, text_event("b", state={"user:n": b.state["user:n"] + 1}))
    assert (await store.get_user_state(app_name=app_name, user_id="u"))["n"] == 2


@pytest.mark.parametrize("on_stale", ["raise", "merge"])
async def test_atomic_updates_from_stale_copies_all_apply(
    db_url: str, app_name: str, on_stale: str
) -> None:
    """The same race with StateUpdates: nothing refused, nothing lost, event says the truth."""
    async with DatabaseSessionService(db_url, on_stale=on_stale) as store:
        copies = [await store.create_session(app_name=app_name, user_id="u") for _ in range(3)]
        events = []
        for i, copy in enumerate(copies):
            event = text_event(f"e{i}")
            updates = StateUpdates.for_event(copy, event)
            updates.increment("user:n", ())
            updates.add_unique("user:prefs", ("watch",), f"T{i}")
            updates.append("user:log", (), {"i": i}, keep_last=2)
            updates.increment("app:hits", ("total",), 2)
            await store.append_event(copy, event)
            events.append(event)
        user = await store.get_user_state(app_name=app_name, user_id="u")
        assert user["n"] == 3
        assert user["prefs"] == {"watch": ["T0", "T1", "T2"]}
        assert user["log"] == [{"i": 1}, {"i": 2}]
        assert (await store.get_app_state(app_name=app_name))["hits"] == {"total": 6}
        # Each copy and each stored event hold the value that was stored, not the stale one.
        last = copies[-1]
        assert last.state["user:n"] == 3 and events[-1].actions.state_delta["user:n"] == 3
        stored = await store.get_session(app_name=app_name, user_id="u", session_id=last.id)
        assert stored.events[-1].actions.state_delta["user:n"] == 3
        assert stored.events[-1] == events[-1]


async def test_atomic_updates_chain_within_one_event(
    store: DatabaseSessionService, app_name: str
) -> None:
    a, b = await two_sessions(store, app_name)
    await store.append_event(a, text_event("a", state={"user:prefs": {"watch": ["X"]}}))
    event = text_event("b")
    updates = StateUpdates.for_event(b, event)  # b's copy has no user:prefs yet
    updates.add_unique("user:prefs", ("watch",), "Y")
    updates.add_unique("user:prefs", ("watch",), "Z")
    updates.remove("user:prefs", ("watch",), "Y")
    updates.set("user:prefs", ("favorite",), "funny_nerd")
    await store.append_event(b, event)
    assert (await store.get_user_state(app_name=app_name, user_id="u"))["prefs"] == {
        "watch": ["X", "Z"], "favorite": "funny_nerd",
    }


async def test_a_plain_write_after_an_atomic_update_is_a_plain_write(
    store: DatabaseSessionService, app_name: str
) -> None:
    """An atomic update overwritten by a plain assignment before the append is not replayed."""
    a, b = await two_sessions(store, app_name)
    await store.append_event(a, text_event("a", state={"user:n": 5}))
    event = text_event("b")
    StateUpdates.for_event(b, event).increment("user:n", ())
    event.actions.state_delta["user:n"] = 100  # computed from b's stale copy
    with pytest.raises(StaleSession):
        await store.append_event(b, event)


# -- 3. ABA: delete and re-create --------------------------------------------------------------


@pytest.mark.parametrize("on_stale", ["raise", "merge"])
async def test_copy_of_deleted_session_cannot_write_into_recreated_one(
    db_url: str, app_name: str, on_stale: str
) -> None:
    async with DatabaseSessionService(db_url, on_stale=on_stale) as store:
        old = await store.create_session(
            app_name=app_name, user_id="u", session_id="acct", state={"balance": 100}
        )
        await store.delete_session(app_name=app_name, user_id="u", session_id="acct")
        new = await store.create_session(
            app_name=app_name, user_id="u", session_id="acct", state={"balance": 5}
        )
        # Same id, same revision (0) and seq (0): only the incarnation tells them apart.
        old_marker, new_marker = (parse_marker(s._storage_update_marker) for s in (old, new))
        assert (old_marker.revision, old_marker.last_seq) == (new_marker.revision, 0)
        with pytest.raises(StaleSession) as caught:
            await store.append_event(old, text_event("withdraw", state={"balance": 70}))
        assert caught.value.reason == "recreated"
        got = await store.get_session(app_name=app_name, user_id="u", session_id="acct")
        assert got.state["balance"] == 5 and got.events == []


# -- 4. non-finite numbers ---------------------------------------------------------------------


# 1e300 and -1e12 are finite but no date: accepted before, they broke every listing that
# shows the time (multi-agent sessions/messages/runs: OverflowError, "year -29719").
@pytest.mark.parametrize("bad", [math.inf, -math.inf, math.nan, 1e300, -1e12, 3e11])
async def test_non_finite_timestamp_is_refused_and_session_stays_readable(
    store: DatabaseSessionService, app_name: str, bad: float
) -> None:
    s = await store.create_session(app_name=app_name, user_id="u")
    await store.append_event(s, text_event("fine"))
    with pytest.raises(InvalidValueError, match="timestamp"):
        await store.append_event(s, text_event("bad", timestamp=bad))
    got = await store.get_session(app_name=app_name, user_id="u", session_id=s.id)
    assert [e.content.parts[0].text for e in got.events] == ["fine"]
    assert len((await store.list_sessions(app_name=app_name, user_id="u")).sessions) == 1
    await store.append_event(got, text_event("after"))


@pytest.mark.parametrize("where", ["custom_metadata", "state", "output"])
async def test_non_finite_numbers_in_the_developers_values_are_refused(
    store: DatabaseSessionService, app_name: str, where: str
) -> None:
    s = await store.create_session(app_name=app_name, user_id="u")
    if where == "custom_metadata":
        event = text_event("x", custom_metadata={"score": math.inf})
    elif where == "state":
        event = text_event("x", state={"user:score": math.nan})
    else:
        event = text_event("x")
        event.output = {"total": [1.0, -math.inf]}
    with pytest.raises(InvalidValueError, match=r"(custom_metadata\.score|"
                       r"user:score|output\.total\[1\]).*Nothing"):
        await store.append_event(s, event)
    got = await store.get_session(app_name=app_name, user_id="u", session_id=s.id)
    assert got.events == [] and "user:score" not in got.state


@pytest.mark.parametrize("where", ["call_args", "tool_result", "logprobs"])
async def test_non_finite_numbers_from_tools_and_models_are_stored_as_null(
    store: DatabaseSessionService, app_name: str, where: str, caplog: pytest.LogCaptureFixture
) -> None:
    """What the model was sent (genai serialises NaN as null) and what ADK's store keeps; a
    refusal here stopped every turn of a tool that can return NaN."""
    from google.genai import types

    s = await store.create_session(app_name=app_name, user_id="u")
    if where == "call_args":
        part = types.Part(function_call=types.FunctionCall(name="f", args={"x": [1, math.inf]}))
    else:
        part = types.Part(function_response=types.FunctionResponse(
            name="f", response={"mean": math.nan, "ok": 1.5}))
    event = Event(author="agent", content=types.Content(role="model", parts=[part]))
    if where == "logprobs":
        event = text_event("x", avg_logprobs=-math.inf)
    with caplog.at_level("WARNING", logger="multi_agent.store"):
        await store.append_event(s, event)
    assert any("stored as null" in r.getMessage() and event.id in r.getMessage()
               for r in caplog.records)
    got = await store.get_session(app_name=app_name, user_id="u", session_id=s.id)
    stored = got.events[0]
    if where == "call_args":
        assert stored.content.parts[0].function_call.args == {"x": [1, None]}
    elif where == "tool_result":
        assert stored.content.parts[0].function_response.response == {"mean": None, "ok": 1.5}
    else:
        assert stored.avg_logprobs is None and stored.content.parts[0].text == "x"
    await store.append_event(s, event)  # a retry is the same event: a no-op
    again = await store.get_session(app_name=app_name, user_id="u", session_id=s.id)
    assert len(again.events) == 1


async def test_integer_too_long_to_print_is_refused(
    store: DatabaseSessionService, app_name: str
) -> None:
    s = await store.create_session(app_name=app_name, user_id="u")
    await store.append_event(s, text_event("ok", state={"big": 2**1000}))
    with pytest.raises(InvalidValueError, match="bits"):
        await store.append_event(s, text_event("x", state={"huge": 10**5000}))
    got = await store.get_session(app_name=app_name, user_id="u", session_id=s.id)
    assert got.state["big"] == 2**1000 and "huge" not in got.state


# -- 5. event ids ------------------------------------------------------------------------------


async def test_retry_of_same_event_is_a_no_op_but_a_different_event_is_refused(
    store: DatabaseSessionService, app_name: str
) -> None:
    s = await store.create_session(app_name=app_name, user_id="u")
    first = text_event("hello", state={"k": 1})
    await store.append_event(s, first)
    await store.append_event(s, first)  # a retry: nothing new
    impostor = text_event("something else", state={"k": 2})
    impostor.id = first.id
    with pytest.raises(EventIdConflict, match="different event"):
        await store.append_event(s, impostor)
    # A copy that never saw the first event gets the same answer (same = no-op, else error).
    other = await store.get_session(app_name=app_name, user_id="u", session_id=s.id)
    with pytest.raises(EventIdConflict):
        await store.append_event(other, impostor)
    got = await store.get_session(app_name=app_name, user_id="u", session_id=s.id)
    assert [e.content.parts[0].text for e in got.events] == ["hello"]
    assert got.state["k"] == 1


# -- 7. merge mode and branching ---------------------------------------------------------------


async def test_merge_mode_refuses_a_copy_from_before_a_branch(
    db_url: str, app_name: str
) -> None:
    """An invocation half-way when the session is branched cannot finish on the new path."""
    async with DatabaseSessionService(db_url, on_stale="merge") as store:
        s = await store.create_session(app_name=app_name, user_id="u")
        await store.append_event(s, text_event("q1", author="user", invocation_id="r1"))
        await store.append_event(s, text_event("a1", invocation_id="r1"))
        await store.append_event(s, text_event("q2", author="user", invocation_id="r2"))
        writer = await store.get_session(app_name=app_name, user_id="u", session_id=s.id)
        await store.branch(app_name=app_name, user_id="u", session_id=s.id, from_run_id="r1")
        with pytest.raises(StaleSession) as caught:
            await store.append_event(writer, text_event("a2", invocation_id="r2"))
        assert caught.value.reason == "branched"
        got = await store.get_session(app_name=app_name, user_id="u", session_id=s.id)
        assert [e.content.parts[0].text for e in got.events] == ["q1", "a1"]
        runs = {r.run_id: r for r in await store.list_runs(
            app_name=app_name, user_id="u", session_id=s.id)}
        assert runs["r1"].is_head and runs["r1"].on_path and not runs["r2"].on_path
        # A copy loaded after the branch merges as before, and sees exactly the path.
        after = await store.get_session(app_name=app_name, user_id="u", session_id=s.id)
        other = await store.get_session(app_name=app_name, user_id="u", session_id=s.id)
        await store.append_event(other, text_event("q3", author="user", invocation_id="r3"))
        await store.append_event(after, text_event("a3", invocation_id="r3"))
        assert [e.content.parts[0].text for e in after.events] == ["q1", "a1", "q3", "a3"]


async def test_merge_mode_refuses_overwriting_a_session_key_written_since(
    db_url: str, app_name: str
) -> None:
    async with DatabaseSessionService(db_url, on_stale="merge") as store:
        s = await store.create_session(app_name=app_name, user_id="u", state={"n": 0})
        a = await store.get_session(app_name=app_name, user_id="u", session_id=s.id)
        b = await store.get_session(app_name=app_name, user_id="u", session_id=s.id)
        c = await store.get_session(app_name=app_name, user_id="u", session_id=s.id)
        await store.append_event(a, text_event("a", state={"n": a.state["n"] + 1}))
        # b is behind: its write of another key merges; its write of n would undo a's.
        with pytest.raises(StaleSession) as caught:
            await store.append_event(b, text_event("b", state={"n": b.state["n"] + 1}))
        assert caught.value.reason == "keys" and caught.value.keys == ("n",)
        await store.append_event(b, text_event("b", state={"other": 1}))
        # An atomic update of the same key from a behind copy merges.
        event = text_event("c")
        StateUpdates.for_event(c, event).increment("n", ())
        await store.append_event(c, event)
        got = await store.get_session(app_name=app_name, user_id="u", session_id=s.id)
        assert got.state["n"] == 2 and got.state["other"] == 1
        assert c.state["n"] == 2 and c.events == got.events
