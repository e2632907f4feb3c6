"""Where a window of recent events may start: never between a tool call and its result.

Loading only the last N events of a session (ADK's ``GetSessionConfig(num_recent_events=N)``)
cuts the history at an arbitrary event. Cut badly, the model request starts with a tool result
whose call is gone (other frameworks' users get their requests rejected for that: openai-agents
#4322, agno #9372), or with a sub-agent's reply whose handoff is gone, so the model cannot tell
who is speaking and why. :func:`safe_window_start` picks the earliest start that avoids both:

1. **No orphaned results.** Every function response at or after the start has its function
   call at or after the start (matched by call id; by tool name when a call has no id). A
   ``transfer_to_agent`` call and its result form such a pair, so a delegation's handoff is
   never split either.
2. **A clean boundary.** The start is preferably a human message (the beginning of a turn: the
   model sees the question before any answer) or a compaction summary. Only when the window
   holds no such event does it start at another event that is not a tool result and does not
   directly follow a handoff (the first words of a delegated agent without the handoff).

Everything after the start is kept; the function only ever drops events from the front.
"""

from __future__ import annotations

from collections.abc import Sequence

from google.adk.events.event import Event

from ..store.facts import TRANSFER_TOOL, content_texts

__all__ = [
    "TRANSFER_TOOL",
    "is_compaction",
    "is_human_message",
    "is_transfer_result",
    "safe_window_start",
    "trim_window",
]


def is_human_message(event: Event) -> bool:
    """The person's own message: author ``user`` with text and no function response."""
    if event.author != "user" or event.content is None or not event.content.parts:
        return False
    return bool(content_texts(event.content)) and not any(
        p.function_response for p in event.content.parts
    )


def is_compaction(event: Event) -> bool:
    """An ADK events-compaction summary."""
    return bool(event.actions and event.actions.compaction)


def is_transfer_result(event: Event) -> bool:
    """The function response that hands the conversation to another agent."""
    if event.actions and event.actions.transfer_to_agent:
        return True
    return any(r.name == TRANSFER_TOOL for r in event.get_function_responses())


def _call_keys(event: Event) -> set[str]:
    return {f"id:{c.id}" if c.id else f"name:{c.name}" for c in event.get_function_calls()}


def _response_keys(event: Event) -> set[str]:
    return {f"id:{r.id}" if r.id else f"name:{r.name}" for r in event.get_function_responses()}


def _orphan_free_starts(events: Sequence[Event]) -> list[bool]:
    """``ok[i]``: every function response in ``events[i:]`` has its call in ``events[i:]``.

    One backward pass: responses seen so far wait for their call; a call settles its own.
    A response whose call id has no call anywhere in ``events`` keeps every start before it
    unsafe (its call is outside the window, so the window must start after it).
    """
    ok = [False] * (len(events) + 1)
    ok[len(events)] = True
    waiting: set[str] = set()
    for i in range(len(events) - 1, -1, -1):
        event = events[i]
        waiting |= _response_keys(event)
        calls = _call_keys(event)
        if calls:
            waiting -= calls
            # A response without an id matches any earlier call of the same tool.
            waiting -= {f"name:{c.name}" for c in event.get_function_calls()}
        ok[i] = not waiting
    return ok


def safe_window_start(events: Sequence[Event]) -> int:
    """The index of the earliest event a window of ``events`` may start at.

    Args:
        events: a window of a session's events, oldest first (e.g. what
            ``get_session(config=GetSessionConfig(num_recent_events=N))`` returned).

    Returns:
        An index into ``events``: keep ``events[index:]``. ``0`` when the window is already
        clean; ``len(events)`` only when no event at all may start a window (every candidate
        would orphan a tool result or start a delegated agent without its handoff).
    """
    ok = _orphan_free_starts(events)
    fallback: int | None = None
    for i, event in enumerate(events):
        if not ok[i]:
            continue
        if is_human_message(event) or is_compaction(event):
            return i
        if fallback is None and not event.get_function_responses() and not (
            i > 0 and is_transfer_result(events[i - 1])
        ):
            fallback = i
    return fallback if fallback is not None else len(events)


def trim_window(events: list[Event]) -> int:
    """Drops, in place, the events before :func:`safe_window_start`; returns how many.

    The newest event is always kept (it is what the Runner continues from), even when no
    start is clean.
    """
    start = safe_window_start(events)
    if events and start >= len(events):
        start = len(events) - 1
    if start > 0:
        del events[:start]
    return max(start, 0)
