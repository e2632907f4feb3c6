"""Builders for the trim tests: sessions whose runs hold a tool call and its result."""

from __future__ import annotations

import time
from typing import Any

from google.adk.events.event import Event
from google.adk.events.event_actions import EventActions, EventCompaction
from google.genai import types

from multi_agent import DatabaseSessionService

DAY = 86400.0


def _event(author: str, invocation_id: str, ts: float, *, text: str | None = None,
           call: tuple[str, str] | None = None, response: tuple[str, str] | None = None,
           state: dict[str, Any] | None = None, **actions: Any) -> Event:
    parts = []
    if text is not None:
        parts.append(types.Part(text=text))
    if call is not None:
        parts.append(types.Part(function_call=types.FunctionCall(
            id=call[0], name=call[1], args={"x": 1})))
    if response is not None:
        parts.append(types.Part(function_response=types.FunctionResponse(
            id=response[0], name=response[1], response={"ok": True})))
    role = "user" if author == "user" else "model"
    return Event(invocation_id=invocation_id, author=author, timestamp=ts,
                 content=types.Content(role=role, parts=parts) if parts else None,
                 actions=EventActions(state_delta=dict(state or {}), **actions))


async def turn(store: DatabaseSessionService, session: Any, n: int, *, ts: float | None = None,
               call_id: str | None = None, answer_call: str | None = None) -> Any:
    """One run of four events: the question, a tool call, its result, the answer (which
    writes ``turn`` and ``k<n>`` into the session state and ``user:turns``)."""
    inv = f"inv-{n}"
    ts = time.time() if ts is None else ts
    cid = call_id or f"call-{n}"
    await store.append_event(session, _event("user", inv, ts, text=f"question {n}"))
    if answer_call is not None:  # a long-running tool's result, given in a later run
        await store.append_event(session, _event("user", inv, ts + 0.1,
                                                 response=(answer_call, "slow_tool")))
    await store.append_event(session, _event("helper", inv, ts + 0.2, call=(cid, "lookup")))
    if call_id is None:
        await store.append_event(session, _event("helper", inv, ts + 0.3,
                                                 response=(cid, "lookup")))
    await store.append_event(session, _event("helper", inv, ts + 0.4, text=f"answer {n}",
                                             state={"turn": n, f"k{n}": n,
                                                    "user:turns": n}))
    return session


async def compaction(store: DatabaseSessionService, session: Any, ts: float) -> None:
    """An ADK events-compaction summary (a bookkeeping event of no run)."""
    await store.append_event(session, _event(
        "user", f"compaction-{ts}", ts,
        compaction=EventCompaction(start_timestamp=0.0, end_timestamp=ts,
                                   compacted_content=types.Content(
                                       role="model", parts=[types.Part(text="summary so far")]))))


async def build(store: DatabaseSessionService, app: str, user: str, sid: str, runs: int = 6,
                *, start: float | None = None, step: float = 0.0, summary_after: int = 3) -> Any:
    """A session of ``runs`` four-event runs with a compaction summary after run
    ``summary_after``; run n is at ``start + n * step`` (default: now)."""
    session = await store.create_session(app_name=app, user_id=user, session_id=sid,
                                         state={"topic": sid})
    base = time.time() if start is None else start
    for n in range(1, runs + 1):
        await turn(store, session, n, ts=base + n * step)
        if n == summary_after:
            await compaction(store, session, base + n * step + 0.5)
    return session


def pairs_intact(events: list[Event]) -> bool:
    """Every function response has its call among the events, and every call its response."""
    calls = {c.id for e in events for c in e.get_function_calls()}
    responses = {r.id for e in events for r in e.get_function_responses()}
    return responses <= calls and calls <= responses
