"""Bounded context: each turn loads a window of recent events plus a summary of what came before.

Storage keeps every event; only what a turn loads and sends to the model shrinks. Three pieces,
all ADK's own mechanisms, grouped by :class:`BoundedContext`:

* :meth:`BoundedContext.run_config`: a ``RunConfig`` whose ``GetSessionConfig`` loads only the
  last ``window_events`` events (ADK's default loads them all on every turn: #4673, #3039).
* :meth:`BoundedContext.compaction_config`: an ``EventsCompactionConfig`` (sliding window: every
  ``compaction_interval`` invocations, with ``overlap_size`` of overlap) whose summariser is
  :class:`~multi_agent.memory.summarizer.ExtractiveSummarizer`: no model needed, so it works
  with the offline model.
* :meth:`BoundedContext.plugin`: a Runner plugin that, before each run, (1) moves the window's
  start so it never orphans a tool result or splits a delegation (:mod:`.window`), and (2) when
  the window is full and holds no summary, puts the newest older summary in front of it (one
  bounded query over the store's events, ``DatabaseSessionService.latest_compaction_before``),
  so the model sees "summary + recent events".

Older history stays reachable through memory search (:class:`DatabaseMemoryService` with ADK's
``load_memory`` / ``PreloadMemoryTool``).

Wiring (in ``build_runner``)::

    ctx = BoundedContext(window_events=60)
    memory = DatabaseMemoryService(session_service)
    app = App(name=APP_NAME, root_agent=root,
              events_compaction_config=ctx.compaction_config(),
              plugins=[ctx.plugin(session_service), RememberTurnsPlugin()])
    runner = Runner(app=app, session_service=session_service, memory_service=memory)
    async for event in runner.run_async(..., run_config=ctx.run_config()):
        ...

(``RememberTurnsPlugin`` adds each turn to memory; without it, call
``await memory.add_session_to_memory(session)`` after each turn: cheap and idempotent.)
"""

from __future__ import annotations

import logging
import warnings
from collections import OrderedDict
from dataclasses import dataclass

from google.adk.agents.invocation_context import InvocationContext
from google.adk.agents.run_config import RunConfig
from google.adk.apps.app import EventsCompactionConfig
from google.adk.apps.base_events_summarizer import BaseEventsSummarizer
from google.adk.events.event import Event
from google.adk.memory.base_memory_service import BaseMemoryService
from google.adk.plugins.base_plugin import BasePlugin
from google.adk.sessions.base_session_service import BaseSessionService, GetSessionConfig
from google.adk.sessions.session import Session
from google.genai import types

from ..store.service import DatabaseSessionService
from .summarizer import ExtractiveSummarizer
from .window import is_compaction, safe_window_start, trim_window

__all__ = [
    "BoundedContext",
    "BoundedContextPlugin",
    "RememberTurnsPlugin",
    "ExtractiveSummarizer",
    "bounded_run_config",
    "events_compaction_config",
    "safe_window_start",
    "trim_window",
]

logger = logging.getLogger(__name__)

DEFAULT_WINDOW_EVENTS = 60
"""Events a turn loads by default: ~10-15 turns of a delegating team with tool calls."""

SUMMARY_SCAN_EVENTS = 400
"""How far before the window the plugin looks for an older summary (a bounded backward scan)."""

def bounded_run_config(
    *, window_events: int = DEFAULT_WINDOW_EVENTS, base: RunConfig | None = None
) -> RunConfig:
    """A ``RunConfig`` that loads only the last ``window_events`` events of the session.

    Args:
        window_events: how many recent events the Runner loads per turn (at least 2).
        base: a RunConfig to copy the other settings from.

    Raises:
        ValueError: ``window_events`` below 2.
    """
    if window_events < 2:
        raise ValueError("window_events must be at least 2 (the question and its answer).")
    config = GetSessionConfig(num_recent_events=window_events)
    if base is None:
        return RunConfig(get_session_config=config)
    return base.model_copy(update={"get_session_config": config})


def events_compaction_config(
    *,
    compaction_interval: int = 4,
    overlap_size: int = 1,
    summarizer: BaseEventsSummarizer | None = None,
) -> EventsCompactionConfig:
    """ADK sliding-window compaction with the extractive summariser (or the one given).

    Every ``compaction_interval`` new invocations, ADK summarises them (plus ``overlap_size``
    earlier ones) into one compaction event; prompt assembly then sends the summary instead of
    those events. ADK itself keeps the summarised range free of half tool-call pairs.
    """
    with warnings.catch_warnings():  # ADK marks the config experimental; we chose it knowingly
        warnings.filterwarnings("ignore", message=r"\[EXPERIMENTAL\] EventsCompactionConfig")
        return EventsCompactionConfig(
            summarizer=summarizer or ExtractiveSummarizer(),
            compaction_interval=compaction_interval,
            overlap_size=overlap_size,
        )


class BoundedContextPlugin(BasePlugin):
    """Cleans the loaded window's start and puts an older summary in front of a full window.

    Args:
        session_service: the session service the Runner uses; when it is this project's
            ``DatabaseSessionService`` an older summary can be fetched from the store.
        window_events: the window the RunConfig loads (a shorter load is the whole session,
            which needs no older summary).
        summary_scan_events: how many events before the window to look through for a summary.
    """

    def __init__(
        self,
        session_service: BaseSessionService | None = None,
        *,
        window_events: int = DEFAULT_WINDOW_EVENTS,
        summary_scan_events: int = SUMMARY_SCAN_EVENTS,
        name: str = "bounded_context",
    ) -> None:
        super().__init__(name=name)
        self.session_service = session_service
        self.window_events = window_events
        self.summary_scan_events = summary_scan_events
        self.trimmed_events = 0
        self.summaries_added = 0

    async def before_run_callback(
        self, *, invocation_context: InvocationContext
    ) -> types.Content | None:
        """Adjusts ``invocation_context.session.events`` in place; never halts the run."""
        session = invocation_context.session
        events = session.events
        # The Runner has appended the new human message: the load itself was one shorter.
        was_full = len(events) > self.window_events
        self.trimmed_events += trim_window(events)
        if was_full and events and not any(is_compaction(e) for e in events):
            summary = await self.older_summary(
                app_name=session.app_name, user_id=session.user_id, session_id=session.id,
                first_event_id=events[0].id,
                service=self.session_service or invocation_context.session_service,
            )
            if summary is not None:
                events.insert(0, summary)
                self.summaries_added += 1
        return None

    async def older_summary(
        self, *, app_name: str, user_id: str, session_id: str, first_event_id: str,
        service: BaseSessionService | None = None,
    ) -> Event | None:
        """The newest compaction event stored before ``first_event_id``, within the scan."""
        service = service or self.session_service
        if not isinstance(service, DatabaseSessionService):
            return None
        raw = await service.latest_compaction_before(
            app_name=app_name, user_id=user_id, session_id=session_id,
            first_event_id=first_event_id, scan=self.summary_scan_events,
        )
        if raw is None:
            return None
        event = Event.model_validate_json(raw)
        return event if is_compaction(event) else None


class RememberTurnsPlugin(BasePlugin):
    """Adds each turn to the Runner's memory service after every run.

    With :class:`~multi_agent.memory.DatabaseMemoryService` on the session store this costs one
    small write transaction: only the events stored since the last call are indexed, whatever
    window the Runner loaded. Another memory service (ADK's ``InMemoryMemoryService``, the
    default of ``adk api_server``) gets the whole session the first time this process sees it,
    then only the events that came after the ones it was given (``add_events_to_memory``), when
    it takes such deltas: handing it the whole session every turn (``add_session_to_memory``)
    made ADK's in-memory service deep-copy every event of the history on every turn, a cost
    that grew with the session. A failure to index is logged and never fails the turn.

    Args:
        sessions_tracked: sessions whose last indexed event this process remembers (oldest
            forgotten first; a forgotten one is handed over whole again).
    """

    def __init__(self, *, name: str = "remember_turns", sessions_tracked: int = 10_000) -> None:
        super().__init__(name=name)
        self._sessions_tracked = sessions_tracked
        # (app, user, session) -> id of the newest event handed to the memory service
        self._indexed: OrderedDict[tuple[str, str, str], str] = OrderedDict()

    async def after_run_callback(self, *, invocation_context: InvocationContext) -> None:
        """Indexes ``invocation_context.session`` in ``invocation_context.memory_service``."""
        memory = invocation_context.memory_service
        if memory is None:
            return
        session = invocation_context.session
        try:
            await self._remember(memory, session)
        except Exception:  # memory is best effort: the turn has already succeeded
            logger.warning("Could not add session %s to memory.", session.id, exc_info=True)

    async def _remember(self, memory: BaseMemoryService, session: Session) -> None:
        from .service import DatabaseMemoryService  # (imports this module)

        if isinstance(memory, DatabaseMemoryService):  # incremental by itself
            await memory.add_session_to_memory(session)
            return
        key = (session.app_name, session.user_id, session.id)
        events = session.events
        last = self._indexed.get(key)
        if last is None:  # not seen by this process: all of it
            await memory.add_session_to_memory(session)
        elif new := _events_after(events, last):
            try:
                await memory.add_events_to_memory(
                    app_name=session.app_name, user_id=session.user_id, events=new,
                    session_id=session.id,
                )
            except NotImplementedError:  # a service that takes whole sessions only
                await memory.add_session_to_memory(session)
        if events:
            self._indexed[key] = events[-1].id
            self._indexed.move_to_end(key)
            while len(self._indexed) > self._sessions_tracked:
                self._indexed.popitem(last=False)


def _events_after(events: list[Event], last_id: str) -> list[Event]:
    """The events after the one with ``last_id``; all of them when it is not among them (a
    window that moved past it, a rewind): as a delta, the service skips the ids it holds."""
    for i in range(len(events) - 1, -1, -1):
        if events[i].id == last_id:
            return events[i + 1:]
    return events


@dataclass(frozen=True, slots=True)
class BoundedContext:
    """The three settings of a bounded context, consistent with each other.

    Attributes:
        window_events: recent events loaded per turn.
        compaction_interval: invocations between two summaries.
        overlap_size: earlier invocations a summary also covers.
        summary_chars: the longest summary.
    """

    window_events: int = DEFAULT_WINDOW_EVENTS
    compaction_interval: int = 4
    overlap_size: int = 1
    summary_chars: int = 2000

    def run_config(self, base: RunConfig | None = None) -> RunConfig:
        """The RunConfig to pass to every ``run_async`` (see :func:`bounded_run_config`)."""
        return bounded_run_config(window_events=self.window_events, base=base)

    def compaction_config(self) -> EventsCompactionConfig:
        """For ``App(events_compaction_config=...)``."""
        return events_compaction_config(
            compaction_interval=self.compaction_interval,
            overlap_size=self.overlap_size,
            summarizer=ExtractiveSummarizer(max_chars=self.summary_chars),
        )

    def plugin(self, session_service: BaseSessionService | None = None) -> BoundedContextPlugin:
        """For ``App(plugins=[...])``."""
        return BoundedContextPlugin(session_service, window_events=self.window_events)
