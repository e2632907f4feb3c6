"""Runs in flight: one per thread at a time, executed in the background, streamed as SSE.

* **One run per thread.** A second ``POST .../runs`` while one runs is ``409`` (not queued: a
  queued turn would answer a conversation the person has not seen yet). Also ``409`` when the
  store says the thread's head run is still running and it started less than the run time
  limit ago (another process, e.g. ``multi-agent chat``, is answering on the same thread).
* **In the background.** The run is an asyncio task that appends AG-UI frames to its stream;
  the response reads them. When the client goes away mid-run the run **finishes anyway**
  (everything is stored; the page shows it after a refresh); ``POST .../stop`` stops it.
* **Stop** sets ADK's abort signal: ADK seals the invocation (dangling tool calls get an
  error response), the run is recorded ``cancelled`` (shown as ``stopped``) and the stream
  ends with ``RUN_FINISHED`` whose ``outcome`` is ``{"type": "cancelled"}``.
* **Limits**: a run longer than ``run_timeout`` seconds is aborted the same way and ends with
  ``RUN_ERROR`` (code ``timeout``); a user has at most ``max_runs_per_user`` runs at once
  (``429``).
* The thread is released before the terminal event is sent, so a client may start its next
  run as soon as it has read ``RUN_FINISHED``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Any

from ag_ui.core import (
    BaseEvent,
    RunErrorEvent,
    RunFinishedEvent,
    RunStartedEvent,
    StateSnapshotEvent,
)
from ag_ui.encoder import EventEncoder
from google.adk.sessions.base_session_service import GetSessionConfig
from google.genai import types

from .errors import ApiError, public_database_error
from .translate import RunTranslator, visible_state
from .views import APP_NAME

__all__ = ["ActiveRun", "RunManager"]

log = logging.getLogger("multi_agent.serve")
STOP_POLL = 1.0
"""Seconds between a run's looks for a stop asked for in another process."""
ENCODER = EventEncoder()


@dataclass(eq=False)
class ActiveRun:
    """A run this process is executing."""

    user_id: str
    thread_id: str
    run_id: str
    abort: asyncio.Event = field(default_factory=asyncio.Event)
    frames: list[str] = field(default_factory=list)
    done: bool = False
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    stopped: bool = False
    timed_out: bool = False
    task: asyncio.Task[None] | None = None
    started: float = field(default_factory=time.time)

    def emit(self, *events: BaseEvent) -> None:
        for event in events:
            self.frames.append(ENCODER.encode(event))
        self.changed.set()

    async def stream(self) -> AsyncIterator[str]:
        """The run's SSE frames from the first; ends after the terminal event."""
        sent = 0
        while True:
            while sent < len(self.frames):
                yield self.frames[sent]
                sent += 1
            if self.done:
                return
            self.changed.clear()
            if sent < len(self.frames) or self.done:
                continue
            await self.changed.wait()


class RunManager:
    """Claims threads, executes runs on the team's Runner and stops them."""

    def __init__(self, runner: Any, *, run_timeout: float, max_runs_per_user: int) -> None:
        self.runner = runner
        self.run_timeout = run_timeout
        self.max_runs_per_user = max_runs_per_user
        self.active: dict[tuple[str, str], ActiveRun] = {}
        self.accepting = True

    @property
    def store(self) -> Any:
        return self.runner.session_service

    def live_ids(self, user_id: str, thread_id: str) -> set[str]:
        run = self.active.get((user_id, thread_id))
        return {run.run_id} if run else set()

    def busy(self, user_id: str, thread_id: str) -> bool:
        return (user_id, thread_id) in self.active

    def claim(self, user_id: str, thread_id: str, run_id: str) -> ActiveRun:
        """Reserves the thread for a new run (synchronously: no other request slips in).

        Raises:
            ApiError: 409 when a run of the thread is running here, 429 when the user has
                too many runs, 503 while shutting down.
        """
        if not self.accepting:
            raise ApiError(503, "shutting_down", "the server is shutting down")
        current = self.active.get((user_id, thread_id))
        if current is not None:
            raise ApiError(409, "run_in_progress",
                           f"run {current.run_id!r} of this thread is still running; wait for "
                           "it to finish or stop it (POST .../runs/{runId}/stop)")
        mine = sum(1 for (user, _thread) in self.active if user == user_id)
        if mine >= self.max_runs_per_user:
            raise ApiError(429, "too_many_runs",
                           f"you have {mine} runs going (the limit is "
                           f"{self.max_runs_per_user}); wait for one to finish")
        run = ActiveRun(user_id=user_id, thread_id=thread_id, run_id=run_id)
        self.active[(user_id, thread_id)] = run
        return run

    def release(self, run: ActiveRun) -> None:
        if self.active.get((run.user_id, run.thread_id)) is run:
            del self.active[(run.user_id, run.thread_id)]

    def start(self, run: ActiveRun, *, text: str, parent_run_id: str | None) -> None:
        """Starts executing ``run`` in the background."""
        run.task = asyncio.create_task(self._execute(run, text, parent_run_id),
                                       name=f"run {run.run_id}")

    def stop(self, user_id: str, thread_id: str, run_id: str) -> bool:
        """Asks a run executing here to stop; False when it is not one of ours."""
        run = self.active.get((user_id, thread_id))
        if run is None or run.run_id != run_id:
            return False
        run.stopped = True
        run.abort.set()
        return True

    async def _state(self, run: ActiveRun) -> dict[str, Any]:
        session = await self.store.get_session(
            app_name=APP_NAME, user_id=run.user_id, session_id=run.thread_id,
            config=GetSessionConfig(num_recent_events=0),
        )
        return visible_state(dict(session.state)) if session else {}

    async def _execute(self, run: ActiveRun, text: str, parent_run_id: str | None) -> None:
        translator = RunTranslator()
        terminal: list[BaseEvent] = []
        status: tuple[str, str] | None = None
        timer = asyncio.get_running_loop().call_later(self.run_timeout, self._time_out, run)
        watch = asyncio.create_task(self._watch_for_stop(run), name=f"stop watch {run.run_id}")
        try:
            run.emit(RunStartedEvent(thread_id=run.thread_id, run_id=run.run_id,
                                     parent_run_id=parent_run_id, timestamp=_ms()))
            run.emit(StateSnapshotEvent(snapshot=await self._state(run), timestamp=_ms()))
            message = types.Content(role="user", parts=[types.Part(text=text)])
            async with aclosing(self.runner.run_async(
                user_id=run.user_id, session_id=run.thread_id, invocation_id=run.run_id,
                new_message=message, abort_signal=run.abort,
            )) as events:
                async for event in events:
                    run.emit(*translator.translate(event))
            terminal += translator.close()
            usage = translator.usage() or None
            if run.timed_out:
                status = ("failed", f"stopped after the run time limit ({self.run_timeout:g} s)")
                terminal.append(RunErrorEvent(message=status[1], code="timeout", usage=usage,
                                              timestamp=_ms()))
            elif run.stopped:
                status = ("cancelled", "stopped by the user")
                terminal.append(RunFinishedEvent(thread_id=run.thread_id, run_id=run.run_id,
                                                 outcome={"type": "cancelled"}, usage=usage,
                                                 timestamp=_ms()))
            else:
                terminal.append(RunFinishedEvent(thread_id=run.thread_id, run_id=run.run_id,
                                                 usage=usage, timestamp=_ms()))
        except asyncio.CancelledError:
            status = ("cancelled", "the server shut down")
            terminal = [*translator.close(), RunErrorEvent(
                message="the server shut down during the run", code="shutdown",
                timestamp=_ms())]
            raise
        except Exception as exc:  # the model, a tool or the database failed
            reason = " ".join(f"{type(exc).__name__}: {exc}".split())[:500]
            log.error("run %s failed: %s", run.run_id, reason)
            status = ("failed", reason)
            code = _code(exc)
            terminal = [*translator.close(), RunErrorEvent(
                message=public_database_error(exc) if code == "database_unavailable" else reason,
                code=code, timestamp=_ms())]
        finally:
            timer.cancel()
            watch.cancel()
            if status is not None:
                await self._record(run, *status)
            self.release(run)
            run.emit(*terminal)
            run.done = True
            run.changed.set()

    async def _watch_for_stop(self, run: ActiveRun) -> None:
        """A stop that reached another server process is recorded in the store
        (``request_stop``): looked for every STOP_POLL seconds, one row read."""
        while not run.abort.is_set():
            await asyncio.sleep(STOP_POLL)
            try:
                asked = await self.store.stop_requested(
                    app_name=APP_NAME, user_id=run.user_id, session_id=run.thread_id,
                    run_id=run.run_id)
            except Exception as exc:  # the database is away: the run itself will say so
                log.debug("run %s: stop not checked: %s", run.run_id, exc)
                continue
            if asked:
                run.stopped = True
                run.abort.set()

    def _time_out(self, run: ActiveRun) -> None:
        run.timed_out = True
        run.abort.set()

    async def _record(self, run: ActiveRun, status: str, error: str) -> None:
        """Records how the run ended (best effort: its events are stored either way)."""
        try:
            await asyncio.shield(self.store.set_run_status(
                app_name=APP_NAME, user_id=run.user_id, session_id=run.thread_id,
                run_id=run.run_id, status=status, error=error,
            ))
        except Exception as exc:  # e.g. no event was stored, so there is no run row
            log.debug("run %s: status not recorded: %s", run.run_id, exc)

    async def shutdown(self, grace: float) -> None:
        """Lets running runs finish for ``grace`` seconds, then stops the rest."""
        self.accepting = False
        tasks = [r.task for r in self.active.values() if r.task is not None]
        if not tasks:
            return
        _done, pending = await asyncio.wait(tasks, timeout=grace)
        for run in list(self.active.values()):
            run.stopped = True
            run.abort.set()
        if pending:
            _done, pending = await asyncio.wait(pending, timeout=5)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending, timeout=5)


def _ms() -> int:
    return int(time.time() * 1000)


def _code(exc: Exception) -> str:
    from ...errors import DatabaseUnavailableError, StaleSession

    if isinstance(exc, DatabaseUnavailableError):
        return "database_unavailable"
    if isinstance(exc, StaleSession):
        return "conflict"
    return "run_failed"
