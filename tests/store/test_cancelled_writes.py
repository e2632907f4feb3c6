"""A cancelled append is settled when its caller sees the cancellation: never run, or stored
and in the caller's copy.

Before, the store's writer went on with a write whose caller had been cancelled and could
commit it after the caller had moved on: a read made right after the cancellation did not see
an event that was then stored, and the copy, which never got it, was refused as stale on its
next append (``multi-agent chat`` worked around this for Ctrl-C).
"""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from multi_agent import DatabaseSessionService
from multi_agent.store import ops, rowcache
from tests.helpers import text_event

APP = "cancel"


async def _read(store: DatabaseSessionService, sid: str):
    return await store.get_session(app_name=APP, user_id="u", session_id=sid)


def _hold_the_writer(store: DatabaseSessionService, monkeypatch: pytest.MonkeyPatch,
                     text: str):
    """Makes the append of the event whose text is ``text`` take 0.4 s once the writer has it;
    returns a function that waits until it has."""
    if store.dialect == "sqlite":
        entered = threading.Event()
        original = ops.append_event

        def slow(conn, backend, req, **kw):
            if req.event.content.parts[0].text == text:
                entered.set()
                time.sleep(0.4)
            return original(conn, backend, req, **kw)

        monkeypatch.setattr(ops, "append_event", slow)

        async def wait() -> None:
            while not entered.is_set():
                await asyncio.sleep(0.005)

        return wait
    entered_async = asyncio.Event()
    original_send = rowcache.send_plan

    async def slow_send(conn, driver, plan, cache):
        if any(f'"text":"{text}"' in str(v) for v in plan.params.values()):
            entered_async.set()
            await asyncio.sleep(0.4)
        return await original_send(conn, driver, plan, cache)

    monkeypatch.setattr(rowcache, "send_plan", slow_send)

    async def wait_async() -> None:
        await entered_async.wait()

    return wait_async


async def test_cancelled_after_the_writer_took_it_the_append_is_stored_and_in_the_copy(
    store: DatabaseSessionService, monkeypatch: pytest.MonkeyPatch
) -> None:
    s = await store.create_session(app_name=APP, user_id="u", state={"n": 0})
    await store.append_event(s, text_event("first", state={"n": 1}))  # (caches its rows)
    entered = _hold_the_writer(store, monkeypatch, "held")
    task = asyncio.ensure_future(store.append_event(s, text_event("held", state={"n": 2})))
    await entered()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # Settled before the cancellation reached us: stored, and the copy knows it.
    got = await _read(store, s.id)
    assert [e.content.parts[0].text for e in got.events] == ["first", "held"]
    assert got.state["n"] == 2
    assert [e.content.parts[0].text for e in s.events] == ["first", "held"]
    assert s.state["n"] == 2
    await store.append_event(s, text_event("next", state={"n": 3}))  # not stale
    assert (await _read(store, s.id)).state["n"] == 3


async def test_cancelled_twice_while_stored_still_waits_for_the_outcome(
    store: DatabaseSessionService, monkeypatch: pytest.MonkeyPatch
) -> None:
    s = await store.create_session(app_name=APP, user_id="u")
    await store.append_event(s, text_event("first"))
    entered = _hold_the_writer(store, monkeypatch, "held")
    task = asyncio.ensure_future(store.append_event(s, text_event("held")))
    await entered()
    task.cancel()
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert [e.content.parts[0].text for e in (await _read(store, s.id)).events] == [
        "first", "held"]


async def test_cancelled_while_queued_the_append_never_runs(
    store: DatabaseSessionService, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Behind another session's slow append, so still in the writer's queue."""
    busy = await store.create_session(app_name=APP, user_id="u")
    s = await store.create_session(app_name=APP, user_id="u", state={"n": 0})
    await store.append_event(busy, text_event("warm"))
    await store.append_event(s, text_event("first", state={"n": 1}))
    entered = _hold_the_writer(store, monkeypatch, "slow")
    store.backend.limit_batches(1)  # PostgreSQL: one batch at a time, so the next one queues
    blocker = asyncio.ensure_future(store.append_event(busy, text_event("slow")))
    await entered()
    task = asyncio.ensure_future(store.append_event(s, text_event("queued", state={"n": 2})))
    await asyncio.sleep(0.05)
    assert not task.done()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await blocker
    await asyncio.sleep(0.1)  # had it been left in the queue, it would be stored by now
    got = await _read(store, s.id)
    assert [e.content.parts[0].text for e in got.events] == ["first"] and got.state["n"] == 1
    assert [e.content.parts[0].text for e in s.events] == ["first"] and s.state["n"] == 1
    await store.append_event(s, text_event("again", state={"n": 2}))  # the copy is current
    assert (await _read(store, s.id)).state["n"] == 2
