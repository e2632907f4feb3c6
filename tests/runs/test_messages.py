"""The message query API on every backend: each filter, their combination, and bad input."""

from __future__ import annotations

import pytest

from multi_agent import DatabaseSessionService
from multi_agent.errors import InvalidIdError, InvalidValueError, RunNotFound
from tests.helpers import call_event, result_event, text_event

U = "u"


async def build(store: DatabaseSessionService, app: str) -> None:
    """Session a: two turns (the second delegated); session b: one turn; another user too."""
    a = await store.create_session(app_name=app, user_id=U, session_id="a")
    await store.append_event(a, text_event("Hello 50% off_sale", author="user",
                                           invocation_id="a1", timestamp=1000.0))
    await store.append_event(a, text_event("HELLO back", author="boss", invocation_id="a1",
                                           timestamp=1001.0))
    await store.append_event(a, text_event("ask the helper", author="user",
                                           invocation_id="a2", timestamp=2000.0))
    call = call_event("transfer_to_agent", {"agent_name": "helper"}, author="boss",
                      invocation_id="a2")
    call.timestamp = 2001.0
    await store.append_event(a, call)
    res = result_event("transfer_to_agent", {}, author="boss", invocation_id="a2",
                       transfer_to="helper")
    res.timestamp = 2002.0
    await store.append_event(a, res)
    await store.append_event(a, text_event("helper here: 50 percent", author="helper",
                                           invocation_id="a2", timestamp=2003.0))
    b = await store.create_session(app_name=app, user_id=U, session_id="b")
    await store.append_event(b, text_event("hello from b", author="user", invocation_id="b1",
                                           timestamp=1500.0))
    await store.append_event(b, text_event("b answer", author="boss", invocation_id="b1",
                                           timestamp=1501.0))
    other = await store.create_session(app_name=app, user_id="someone-else", session_id="a")
    await store.append_event(other, text_event("hello", author="user", invocation_id="a1",
                                               timestamp=1000.0))


async def q(store: DatabaseSessionService, app: str, **filters) -> list[tuple[str, int]]:
    rows = await store.query_messages(app_name=app, user_id=U, **filters)
    return [(m.session_id, m.seq) for m in rows]


async def test_filters(store: DatabaseSessionService, app_name: str) -> None:
    await build(store, app_name)
    app = app_name
    # All the user's sessions, in time order; never another user's.
    assert await q(store, app) == [("a", 1), ("a", 2), ("b", 1), ("b", 2), ("a", 3),
                                   ("a", 4), ("a", 5), ("a", 6)]
    assert await q(store, app, session_id="b") == [("b", 1), ("b", 2)]
    assert await q(store, app, session_id="nope") == []
    assert await q(store, app, source="boss") == [("a", 2), ("b", 2), ("a", 4), ("a", 5)]
    assert await q(store, app, source="boss", target="helper") == [("a", 4), ("a", 5)]
    # A human message targets the agent that spoke last; the session's first one, the agent
    # that answered it.
    assert await q(store, app, target="boss") == [("a", 1), ("b", 1), ("a", 3)]
    assert await q(store, app, message_type="human") == [("a", 1), ("b", 1), ("a", 3)]
    assert await q(store, app, message_type="tool_result") == [("a", 5)]
    assert await q(store, app, since=1500.0, until=2001.0) == [("b", 1), ("b", 2), ("a", 3)]
    assert await q(store, app, limit=2) == [("a", 1), ("a", 2)]
    assert await q(store, app, run_id="a2") == [("a", 3), ("a", 4), ("a", 5), ("a", 6)]
    assert await q(store, app, run_id="b1", source="boss") == [("b", 2)]


async def test_text_is_case_insensitive_and_escapes_wildcards(
    store: DatabaseSessionService, app_name: str
) -> None:
    await build(store, app_name)
    app = app_name
    assert await q(store, app, text="hello") == [("a", 1), ("a", 2), ("b", 1)]
    assert await q(store, app, text="HeLLo B") == [("a", 2)]
    # % and _ match themselves, not "anything".
    assert await q(store, app, text="50%") == [("a", 1)]
    assert await q(store, app, text="off_sale") == [("a", 1)]
    assert await q(store, app, text="off_s%") == []
    assert await q(store, app, text="b_answer") == []
    assert await q(store, app, text="o%f") == []


async def test_row_contents(store: DatabaseSessionService, app_name: str) -> None:
    await build(store, app_name)
    rows = await store.query_messages(app_name=app_name, user_id=U, session_id="a",
                                      source="boss", message_type="tool_call")
    assert len(rows) == 1
    m = rows[0]
    assert m.to_dict() == {
        "session_id": "a", "seq": 4, "event_id": m.event_id, "run_id": "a2",
        "timestamp": 2001.0, "source": "boss", "target": "helper", "branch": "boss",
        "message_type": "tool_call", "text": None, "total_tokens": None,
    }
    helper = await store.query_messages(app_name=app_name, user_id=U, source="helper")
    assert [(h.branch, h.target, h.text) for h in helper] == [
        ("boss.helper", "user", "helper here: 50 percent")
    ]


async def test_delegation_subrun_and_branches(
    store: DatabaseSessionService, app_name: str
) -> None:
    await build(store, app_name)
    runs = await store.list_runs(app_name=app_name, user_id=U, session_id="a")
    sub = next(r for r in runs if r.kind == "delegation")
    assert (sub.parent_run_id, sub.agent) == ("a2", "helper")
    assert await q(store, app_name, run_id=sub.run_id) == [("a", 6)]
    assert await q(store, app_name, session_id="a", run_id=sub.run_id) == [("a", 6)]
    # Branch back to run a1: a2's messages leave the path but stay queryable.
    await store.branch(app_name=app_name, user_id=U, session_id="a", from_run_id="a1")
    assert await q(store, app_name, session_id="a") == [("a", 1), ("a", 2)]
    assert await q(store, app_name, run_id="a2") == []
    assert await q(store, app_name, run_id="a2", on_path_only=False) == [
        ("a", 3), ("a", 4), ("a", 5), ("a", 6)
    ]


async def test_bad_filters(store: DatabaseSessionService, app_name: str) -> None:
    await build(store, app_name)
    with pytest.raises(RunNotFound, match="'nope'"):
        await q(store, app_name, run_id="nope")
    with pytest.raises(RunNotFound):
        await q(store, app_name, session_id="b", run_id="a1")  # a1 is a run of session a
    with pytest.raises(InvalidValueError, match="message type"):
        await q(store, app_name, message_type="chat")
    for limit in (0, -1, 10**9, 1.5, True):
        with pytest.raises(InvalidValueError, match="limit"):
            await q(store, app_name, limit=limit)
    with pytest.raises(InvalidValueError, match="since"):
        await q(store, app_name, since="yesterday")
    with pytest.raises(InvalidIdError):
        await store.query_messages(app_name=app_name, user_id="")
