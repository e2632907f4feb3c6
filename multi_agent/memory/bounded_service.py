"""A session service whose ``get_session`` without a config returns the bounded context.

ADK's own servers (``adk api_server``, ``adk web``) ask for whole sessions on every turn, so a
served turn's cost grows with the session's history (ADK rebuilds the model input from every
event and copies the whole session). With ``--session_service_uri 'multi-agent://?window=60'``
the store answers such a call with what the team's Runner loads anyway: the last ``window``
events, their start moved so that no tool result is separated from its call and no delegation
is cut (:func:`~multi_agent.memory.window.trim_window`), and, when older events exist, the
newest compaction summary stored before the window in front of it.

**A deliberate deviation from ADK's contract**, off by default: a ``get_session`` call without
a config no longer returns every event. Storage keeps every event; a call *with* a
``GetSessionConfig`` is answered exactly as asked, and export, the CLI and memory see
everything. Use it where the agents do not need the raw history beyond the window (older turns
stay reachable through memory search and the compaction summaries).
"""

from __future__ import annotations

import sys
from typing import Any

from google.adk.events.event import Event
from google.adk.sessions.base_session_service import GetSessionConfig
from google.adk.sessions.session import Session

from ..store import DatabaseSessionService
from .window import is_compaction, trim_window

__all__ = ["BoundedSessionService"]


def _for_rewind() -> bool:
    """Whether ADK's ``Runner.rewind_async`` is asking (its ``_get_or_create_session`` calls
    ``get_session`` without a config): a rewind needs the whole history, for the invocation
    to rewind to and for the artifacts to restore, so it gets the whole session."""
    from google.adk.runners import Runner

    target = Runner.rewind_async.__code__
    frame = sys._getframe(2)
    for _ in range(8):  # rewind_async -> _get_or_create_session -> (tracing) -> get_session
        if frame is None:
            return False
        if frame.f_code is target:
            return True
        frame = frame.f_back
    return False


def _rewind_target(event: Event) -> str | None:
    return event.actions.rewind_before_invocation_id if event.actions else None


def _rewound_in_window(events: list[Event]) -> int:
    """How many of the window's first events a rewind in it took back: a rewind to an
    invocation that began before the window rewinds every event before it in the window, but
    ADK (``_apply_rewinds``) finds no start for it there and drops the rewind alone. Walked
    backwards as ADK does, so that a rewind inside a span a later rewind took back counts for
    nothing. 0: none."""
    first: dict[str, int] = {}
    for i, event in enumerate(events):
        first.setdefault(event.invocation_id, i)
    i = len(events) - 1
    while i >= 0:
        target = _rewind_target(events[i])
        if target is not None:
            start = first.get(target)
            if start is None:
                return i
            i = min(i, start)
        i -= 1
    return 0


class BoundedSessionService(DatabaseSessionService):
    """:class:`DatabaseSessionService` that bounds ``get_session`` calls without a config.

    Args:
        db_url: as for :class:`DatabaseSessionService`.
        window: how many of the latest events such a call loads (1 or more).
        summary_scan_events: how far before the window to look for a compaction summary.
        **kwargs: the other options of :class:`DatabaseSessionService`.
    """

    def __init__(self, db_url: str, *, window: int, summary_scan_events: int = 2000,
                 **kwargs: Any) -> None:
        if window < 1:
            raise ValueError(f"window must be 1 or more (got {window})")
        super().__init__(db_url, **kwargs)
        self.window = window
        self.summary_scan_events = summary_scan_events

    async def get_session(
        self, *, app_name: str, user_id: str, session_id: str,
        config: GetSessionConfig | None = None,
    ) -> Session | None:
        if config is not None or _for_rewind():
            return await super().get_session(app_name=app_name, user_id=user_id,
                                             session_id=session_id, config=config)
        session = await super().get_session(
            app_name=app_name, user_id=user_id, session_id=session_id,
            config=GetSessionConfig(num_recent_events=self.window),
        )
        if session is None or len(session.events) < self.window:
            return session  # the whole session fits: nothing older to summarise
        events = session.events
        trim_window(events)
        rewound = _rewound_in_window(events)
        if rewound:  # taken back by a rewind to before the window: not context any more
            del events[:rewound]
        elif events and not any(is_compaction(e) for e in events):
            raw = await self.latest_compaction_before(
                app_name=app_name, user_id=user_id, session_id=session_id,
                first_event_id=events[0].id, scan=self.summary_scan_events,
            )
            if raw is not None:
                summary = Event.model_validate_json(raw)
                if is_compaction(summary):
                    events.insert(0, summary)
        return session
