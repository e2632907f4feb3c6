"""Threads and runs as the API shows them, read through the store's public methods.

A thread is a session of the app ``multi_agent``; its title is the session key
``thread_title`` (written by a content-less ``user`` event, which the store keeps out of the
run tree, as ``adk api_server`` does for a state update). Until one is set the title is the
thread's first message (80 characters at most); ``null`` for a thread without runs.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import uuid
from typing import Any

from google.adk.events.event import Event
from google.adk.events.event_actions import EventActions
from google.adk.sessions.base_session_service import GetSessionConfig
from google.adk.sessions.session import Session

from ...defaults import APP_NAME
from ...errors import StaleSession
from .errors import ApiError
from .translate import to_messages

__all__ = [
    "APP_NAME", "TITLE_KEY", "decode_cursor", "encode_cursor", "iso", "run_view", "set_title",
    "thread_view", "top_level", "lineage", "run_events", "thread_events",
]

TITLE_KEY = "thread_title"
SUB_RUN_KINDS = ("delegation", "agent_tool")
STATUS = {"completed": "finished", "failed": "error", "cancelled": "stopped",
          "running": "running"}
TITLE_PREVIEW = 80


def iso(epoch: float | None) -> str | None:
    """Epoch seconds as ISO-8601 UTC (``2026-05-01T12:00:00.123Z``)."""
    if epoch is None:
        return None
    stamp = dt.datetime.fromtimestamp(epoch, dt.UTC)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}Z"


def _created(session: Session, runs: list[Any]) -> float:
    meta = session.state.get("session_metadata")
    raw = meta.get("created_at") if isinstance(meta, dict) else None
    if isinstance(raw, str):
        try:
            parsed = dt.datetime.fromisoformat(raw.replace("Z", "+00:00"))
            if parsed.tzinfo is None:
                parsed = parsed.replace(tzinfo=dt.UTC)
            return parsed.timestamp()
        except ValueError:
            pass
    if runs:
        return float(runs[0].started_at)
    return float(session.last_update_time)


def encode_cursor(value: Any) -> str:
    raw = json.dumps(value, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> Any:
    """The value of a cursor this API handed out.

    Raises:
        ApiError: 400 for anything else.
    """
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        return json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    except (ValueError, binascii.Error, UnicodeError, RecursionError):
        raise ApiError(400, "invalid_cursor", "cursor is not one this API handed out") from None


async def thread_page(store: Any, user_id: str, *, limit: int, cursor: str | None) -> Any:
    """One page of the user's threads, newest activity first: the store's keyset page
    (``list_sessions_page``), whose token is the API's opaque ``nextCursor``; a page costs
    the same however many threads the user has.

    Raises:
        ApiError: 400 ``invalid_cursor`` for a cursor this listing did not hand out.
    """
    from ...errors import InvalidValueError

    try:
        return await store.list_sessions_page(app_name=APP_NAME, user_id=user_id,
                                              page_size=limit, page_token=cursor or None)
    except InvalidValueError:
        raise ApiError(400, "invalid_cursor", "cursor is not one this API handed out") \
            from None


def top_level(runs: list[Any]) -> list[Any]:
    return [r for r in runs if r.kind not in SUB_RUN_KINDS]


def thread_view(session: Session, runs: list[Any]) -> dict[str, Any]:
    """The thread JSON: ``threadId, title, createdAt, updatedAt, headRunId, runCount``."""
    tops = top_level(runs)
    head = next((r.run_id for r in runs if r.is_head), None)
    title = session.state.get(TITLE_KEY)
    if not isinstance(title, str) or not title:
        first = next((r.message for r in tops if r.message), None)
        title = first[:TITLE_PREVIEW] if first else None
    return {
        "threadId": session.id,
        "title": title,
        "createdAt": iso(_created(session, tops)),
        "updatedAt": iso(session.last_update_time),
        "headRunId": head,
        "runCount": len(tops),
    }


def _answering_agent(run: Any, subs: list[Any]) -> str | None:
    delegated = [s.agent for s in subs if s.kind == "delegation" and s.agent]
    return delegated[-1] if delegated else run.agent


def run_view(run: Any, runs: list[Any], *, live: set[str] | frozenset[str] = frozenset()
             ) -> dict[str, Any]:
    """One run's JSON, with its sub-runs (``subRuns``) when it is a top-level run.

    ``live``: run ids this process is running now (their status is ``running`` whatever
    the events say so far).
    """
    subs = [r for r in runs if r.parent_run_id == run.run_id and r.kind in SUB_RUN_KINDS]
    status = STATUS.get(run.status, run.status)
    if run.run_id in live or run.parent_run_id in live and run.kind in SUB_RUN_KINDS:
        status = "running"
    view: dict[str, Any] = {
        "runId": run.run_id,
        "parentRunId": run.parent_run_id,
        "kind": run.kind,
        "status": status,
        "agent": _answering_agent(run, subs) if run.kind not in SUB_RUN_KINDS else run.agent,
        "startedAt": iso(run.started_at),
        "finishedAt": None if status == "running" else iso(run.ended_at),
        "usage": {"promptTokens": run.prompt_tokens,
                  "completionTokens": run.completion_tokens,
                  "totalTokens": run.total_tokens},
        "userText": run.message,
        "onPath": run.on_path,
        "isHead": run.is_head,
        "error": run.error if status in ("error", "stopped") else None,
        "eventCount": run.event_count,
    }
    if run.kind not in SUB_RUN_KINDS:
        view["subRuns"] = [run_view(s, runs, live=live) for s in subs]
    return view


def lineage(runs: list[Any], run_id: str | None) -> list[str]:
    """The top-level run ids from the first run to ``run_id`` (default: the head)."""
    by_id = {r.run_id: r for r in runs}
    if run_id is None:
        run_id = next((r.run_id for r in runs if r.is_head), None)
    elif by_id[run_id].kind in SUB_RUN_KINDS:
        run_id = by_id[run_id].parent_run_id
    path: list[str] = []
    while run_id is not None and run_id not in path and run_id in by_id:
        path.append(run_id)
        run_id = by_id[run_id].parent_run_id
    return path[::-1]


async def thread_events(store: Any, user_id: str, thread_id: str) -> list[dict[str, Any]]:
    """Every stored event of the thread (all branches) as the export has them: ``seq``,
    ``run_id``, ``source``, ``on_path`` and ``event`` (the ADK event's JSON)."""
    doc = await store.export_session(app_name=APP_NAME, user_id=user_id, session_id=thread_id)
    if doc is None:
        raise ApiError(404, "thread_not_found", f"no thread {thread_id!r}")
    return list(doc["events"])


def run_events(rows: list[dict[str, Any]], runs: list[Any], run_ids: list[str] | None = None,
               *, sub_run: Any = None) -> list[dict[str, Any]]:
    """The AG-UI messages of the given runs' events (in order); or of one delegation sub-run
    (the events its agent wrote from the hand-over on)."""
    chosen: list[tuple[str, Event]] = []
    if sub_run is not None:
        last = sub_run.last_seq if sub_run.last_seq is not None else -1
        for row in rows:
            if (row["run_id"] == sub_run.parent_run_id and row["source"] == sub_run.agent
                    and sub_run.first_seq <= row["seq"] <= last):
                chosen.append((row["run_id"], Event.model_validate(row["event"])))
    else:
        wanted = set(run_ids or [])
        for row in rows:
            if row["run_id"] in wanted:
                chosen.append((row["run_id"], Event.model_validate(row["event"])))
    return to_messages(chosen)


async def set_title(store: Any, user_id: str, thread_id: str, title: str) -> None:
    """Stores the title in the session key ``thread_title`` (a content-less ``user`` event:
    no run, the head does not move). A rename is a blind write: an atomic ``set``
    (``StateUpdates``), which the store (``on_stale="merge"``) applies on top of whatever
    was stored meanwhile (50 renames at once: 42 were refused as plain writes). Retried on
    any other concurrent change."""
    from ...store.updates import StateUpdates

    for attempt in range(5):
        session = await store.get_session(
            app_name=APP_NAME, user_id=user_id, session_id=thread_id,
            config=GetSessionConfig(num_recent_events=0),
        )
        if session is None:
            raise ApiError(404, "thread_not_found", f"no thread {thread_id!r}")
        event = Event(invocation_id=f"title-{uuid.uuid4()}", author="user",
                      actions=EventActions())
        StateUpdates.for_event(session, event).set(TITLE_KEY, (), title)
        try:
            await store.append_event(session, event)
            return
        except StaleSession:
            if attempt == 4:
                raise
