"""The chat loop: one ADK Runner on our store, one user, one current session."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
import time
from collections.abc import Callable
from typing import Any

from google.adk.events.event import Event
from google.adk.sessions.base_session_service import GetSessionConfig
from google.genai import types
from rich.console import Console
from rich.markup import escape

from ..errors import MultiAgentError, SessionNotFound
from .chat import APP_NAME, HELP, to_json

MAX_SHOWN = 160
BYE = "Bye. Everything is saved."


class Interrupted(Exception):
    """Ctrl-C stopped a run; what it appended is stored and the run is marked cancelled."""


class RunFailed(Exception):
    """The run raised (model or network error...); what it appended is stored."""


# Library log records the chat does not show: it reports a failed run itself, in one line,
# and the cache advice is for developers configuring the App, not for the person chatting.
_HIDDEN_LOGS = (
    "Node execution failed with exception",
    "Root node %s failed.",
    'App "%s" can transfer between agents but has no',
)


class _OneLineLogs(logging.Formatter):
    """Library warnings and errors as one dim line each, never a traceback."""

    def format(self, record: logging.LogRecord) -> str:
        message = " ".join(record.getMessage().split())
        if len(message) > MAX_SHOWN:
            message = message[: MAX_SHOWN - 1] + "…"
        return f"[{record.levelname.lower()}] {message}"


def _keep_log(record: logging.LogRecord) -> bool:
    return not (isinstance(record.msg, str) and record.msg.startswith(_HIDDEN_LOGS))


def quiet_library_logs() -> None:
    """Routes library logs (warnings and up) to stderr as single lines, without tracebacks.

    Set ``MULTI_AGENT_DEBUG=1`` to see them as Python prints them, tracebacks included.
    """
    root = logging.getLogger()
    if os.environ.get("MULTI_AGENT_DEBUG") or root.handlers:
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setLevel(logging.WARNING)
    handler.setFormatter(_OneLineLogs())
    handler.addFilter(_keep_log)
    root.addHandler(handler)


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" + ("" if count == 1 else "s")


def _swap_sigint(handler: Callable[..., Any] | int) -> Callable[..., Any] | int | None:
    """Installs a SIGINT handler; returns the previous one (None: not possible here)."""
    try:
        previous = signal.getsignal(signal.SIGINT)
        signal.signal(signal.SIGINT, handler)
    except (ValueError, OSError):  # not the main thread, or no signals on this platform
        return None
    return previous


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else to_json(value).replace("\n", " ")
    text = " ".join(text.split())
    return text if len(text) <= MAX_SHOWN else text[: MAX_SHOWN - 1] + "…"


def remembered(state: dict[str, Any]) -> list[str]:
    """Lines saying what the assistant remembers about the user, from user-scoped state."""
    lines = []
    prefs = state.get("user:preferences") or {}
    if isinstance(prefs, dict):
        if prefs.get("joke_preferences"):
            lines.append("you like jokes about " + ", ".join(map(str, prefs["joke_preferences"])))
        if prefs.get("stock_watchlist"):
            lines.append("your watch list: " + ", ".join(map(str, prefs["stock_watchlist"])))
        if prefs.get("favorite_agent"):
            lines.append(f"your favourite agent is {prefs['favorite_agent']}")
        if prefs.get("nerd_topics"):
            lines.append("your nerd topics: " + ", ".join(map(str, prefs["nerd_topics"])))
    stats = state.get("user:agent_stats") or {}
    if isinstance(stats, dict) and stats:
        used = ", ".join(
            f"{name} ×{info.get('delegations', 0)}"
            for name, info in sorted(stats.items())
            if isinstance(info, dict)
        )
        lines.append(f"agents that helped you: {used}")
    return lines


class ChatSession:
    """Holds the runner, the user and the current session; renders replies as ``[agent] text``."""

    def __init__(
        self,
        *,
        db_url: str,
        user_id: str,
        model: str | None,
        quiet: bool,
        interactive: bool,
        memory_search: str | None = None,
    ) -> None:
        self.db_url = db_url
        self.memory_search = memory_search
        self.user_id = user_id
        self.model = model
        self.quiet = quiet
        self.interactive = interactive
        self.console = Console(highlight=False, soft_wrap=True)
        self.runner: Any = None
        self.session_id: str | None = None

    # -- lifecycle --------------------------------------------------------------------------

    async def main(self, *, session_id: str | None, new: bool) -> int:
        from ..app import build_runner

        quiet_library_logs()
        self.runner = build_runner(
            db_url=self.db_url, model=self.model, memory_search=self.memory_search
        )
        self.failures = 0
        try:
            memory = self.runner.memory_service
            if getattr(memory, "search_mode", "fulltext") != "fulltext":
                await memory.prepare()  # a missing embedding model is reported now, not mid-turn
            await self.open_session(session_id=session_id, new=new)
            code = await self.loop()
        except Interrupted:
            return 130
        except (asyncio.CancelledError, KeyboardInterrupt):
            # Ctrl-C outside a prompt and outside a run (e.g. while a command ran).
            self.console.print()
            self.say("system", BYE)
            return 130
        except MultiAgentError as exc:
            # One line on stderr, like every other command (no rich wrapping of long lines).
            print(f"multi-agent: {exc}", file=sys.stderr)
            return 2
        finally:
            await self.runner.close()
        return code

    @property
    def store(self) -> Any:
        return self.runner.session_service

    async def open_session(self, *, session_id: str | None, new: bool) -> None:
        """Resumes the given or most recent session, or starts one; prints the greeting."""
        store = self.store
        resumed = None
        if session_id is not None:
            resumed = await store.get_session(
                app_name=APP_NAME, user_id=self.user_id, session_id=session_id,
                config=GetSessionConfig(num_recent_events=0),
            )
            if resumed is None:
                raise SessionNotFound(APP_NAME, self.user_id, session_id)
        elif not new:
            listed = (await store.list_sessions(app_name=APP_NAME, user_id=self.user_id)).sessions
            resumed = listed[-1] if listed else None
        if resumed is None:
            from ..app import new_session_state

            session = await store.create_session(
                app_name=APP_NAME, user_id=self.user_id, state=new_session_state()
            )
            self.session_id = session.id
            self.greet(session.state, resumed=False)
        else:
            self.session_id = resumed.id
            self.greet(resumed.state, resumed=True)

    def greet(self, state: dict[str, Any], *, resumed: bool) -> None:
        name = state.get("user:user_name") or self.user_id
        model = getattr(self.runner.agent, "model", None)
        label = getattr(model, "display_label", None) or getattr(model, "model", None) or model
        memory = remembered(state)
        if resumed:
            meta = state.get("session_metadata") or {}
            count = meta.get("total_interactions", 0) if isinstance(meta, dict) else 0
            self.say("system", f"Welcome back, {name}. Resuming session {self.session_id} "
                               f"({_plural(count, 'interaction')} so far).")
        elif memory:
            self.say("system", f"Welcome back, {name}. New session {self.session_id}.")
        else:
            self.say("system", f"Hello {name}! New session {self.session_id}. Type /help for "
                               "commands.")
        if memory:
            self.say("system", "I remember: " + "; ".join(memory) + ".")
        self.say("system", f"Model: {label}.")

    # -- input ------------------------------------------------------------------------------

    async def loop(self) -> int:
        """Reads and handles lines until /quit or end of input; returns the exit code."""
        if self.interactive:
            from prompt_toolkit import PromptSession
            from prompt_toolkit.history import InMemoryHistory

            prompt: Any = PromptSession(history=InMemoryHistory())
            while True:
                try:
                    line = await prompt.prompt_async(f"{self.user_id}> ")
                except (EOFError, KeyboardInterrupt):
                    self.say("system", BYE)
                    return 0
                if not await self.handle(line):
                    return 0
        while True:
            line = self.read_piped_line()
            if line is None:
                break
            if line.strip():
                self.console.print(f"[dim]{escape(self.user_id)}> {escape(line.strip())}[/dim]")
            if not await self.handle(line):  # /quit (it said goodbye)
                return 1 if self.failures else 0
        self.say("system", BYE)
        return 1 if self.failures else 0

    @staticmethod
    def read_piped_line() -> str | None:
        """The next line of a non-terminal stdin (None at its end); Ctrl-C interrupts it.

        The read blocks, so asyncio's own Ctrl-C handling (which only cancels the task at the
        next await) is replaced by Python's default while it waits.
        """
        previous = _swap_sigint(signal.default_int_handler)
        try:
            line = sys.stdin.readline()
        finally:
            if previous is not None:
                _swap_sigint(previous)
        return line.rstrip("\n") if line else None

    async def handle(self, line: str) -> bool:
        """Handles one input line; False to leave."""
        text = line.strip()
        if not text:
            return True
        try:
            if text.startswith("/"):
                return await self.command(text)
            await self.send(text)
        except MultiAgentError as exc:
            self.say("system", str(exc))
        except RunFailed as exc:
            self.failures += 1
            self.say("system", f"That did not work: {exc}. What was said so far is saved; try "
                               "again, or /quit.")
        except Interrupted:
            if not self.interactive:
                self.say("system", "Interrupted. Everything so far is saved. Bye.")
                raise
            self.say("system", "Interrupted. The run is marked cancelled and everything said "
                               "so far is saved. (Ctrl-C at the prompt, Ctrl-D or /quit leaves.)")
        return True

    async def send(self, text: str) -> None:
        """Runs one message through the team, printing as it goes.

        Raises:
            Interrupted: Ctrl-C during the run (the run is marked cancelled).
            RunFailed: the run raised anything else (the run is marked failed).
        """
        message = types.Content(role="user", parts=[types.Part(text=text)])
        seen: dict[str, str] = {}

        async def consume() -> None:
            async for event in self.runner.run_async(
                user_id=self.user_id, session_id=self.session_id, new_message=message
            ):
                seen["invocation_id"] = event.invocation_id
                self.render(event)

        task = asyncio.ensure_future(consume())
        loop = asyncio.get_running_loop()
        interrupted = False

        def on_sigint(_signum: int, _frame: Any) -> None:
            nonlocal interrupted
            interrupted = True
            loop.call_soon_threadsafe(task.cancel)

        previous = _swap_sigint(on_sigint)
        try:
            try:
                await task
            finally:
                if previous is not None:
                    _swap_sigint(previous)
        except asyncio.CancelledError:
            if not interrupted:
                raise
            self.console.print()
            await self.mark_run(seen.get("invocation_id"), "cancelled", "interrupted by the user")
            raise Interrupted() from None
        except MultiAgentError as exc:
            await self.mark_run(seen.get("invocation_id"), "failed", str(exc)[:500])
            raise
        except Exception as exc:
            if os.environ.get("MULTI_AGENT_DEBUG"):
                self.console.print_exception()
            reason = f"{type(exc).__name__}: {exc}".strip().rstrip(":")
            reason = " ".join(reason.split())
            await self.mark_run(seen.get("invocation_id"), "failed", reason[:500])
            raise RunFailed(reason if len(reason) <= 300 else reason[:299] + "…") from exc

    async def mark_run(self, run_id: str | None, status: str, error: str) -> None:
        """Records how a run ended early (best effort: the events themselves are stored)."""
        store = self.store
        try:
            if run_id is None:  # stopped before the first event came back: the head run
                runs = await store.list_runs(
                    app_name=APP_NAME, user_id=self.user_id, session_id=self.session_id
                )
                heads = [r for r in runs if r.is_head and r.status == "running"]
                if not heads:
                    return
                run_id = heads[-1].run_id
            await store.set_run_status(
                app_name=APP_NAME, user_id=self.user_id, session_id=self.session_id,
                run_id=run_id, status=status, error=error,
            )
        except Exception:  # the run's status is a nicety; never fail the chat over it
            pass

    # -- output -----------------------------------------------------------------------------

    def say(self, who: str, text: str) -> None:
        style = "bold cyan" if who != "system" else "dim"
        self.console.print(f"[{style}]\\[{escape(who)}][/{style}] {escape(text)}")

    def note(self, text: str) -> None:
        if not self.quiet:
            self.console.print(f"[dim]  {escape(text)}[/dim]")

    def render(self, event: Event) -> None:
        if event.partial:
            return
        for call in event.get_function_calls():
            args = call.args or {}
            if call.name == "transfer_to_agent":
                self.console.print(
                    f"[magenta]  ↪ {escape(event.author)} → "
                    f"{escape(str(args.get('agent_name')))}[/magenta]"
                )
            else:
                self.note(f"→ {event.author} calls {call.name}({_short(args)})")
        for response in event.get_function_responses():
            if response.name != "transfer_to_agent":
                self.note(f"← {response.name}: {_short(response.response)}")
        delta = event.actions.state_delta if event.actions else {}
        if delta:
            self.note("state: " + ", ".join(sorted(delta)))
        if event.content and event.content.parts and event.author != "user":
            texts = [p.text for p in event.content.parts if p.text and not p.thought]
            if texts:
                self.say(event.author, "\n".join(texts))

    # -- slash commands ---------------------------------------------------------------------

    async def command(self, text: str) -> bool:
        name, _, arg = text.partition(" ")
        arg = arg.strip()
        store = self.store
        if name in ("/quit", "/exit", "/q"):
            self.say("system", BYE)
            return False
        if name == "/help":
            self.console.print(escape(HELP))
        elif name == "/sessions":
            listed = (await store.list_sessions(app_name=APP_NAME, user_id=self.user_id)).sessions
            for s in listed:
                mark = "*" if s.id == self.session_id else " "
                when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(s.last_update_time))
                meta = s.state.get("session_metadata") or {}
                count = meta.get("total_interactions", 0) if isinstance(meta, dict) else 0
                self.console.print(f"{mark} {escape(s.id)}  {when}  "
                                   f"{_plural(count, 'interaction')}")
            self.say("system", f"{_plural(len(listed), 'session')}; * is this one. "
                               "/switch ID continues another.")
        elif name == "/new":
            await self.open_session(session_id=None, new=True)
        elif name == "/switch":
            if not arg:
                self.say("system", "Usage: /switch SESSION_ID (see /sessions)")
            else:
                try:
                    await self.open_session(session_id=arg, new=False)
                except SessionNotFound as exc:
                    self.say("system", str(exc))
        elif name in ("/state", "/history", "/prefs", "/stats"):
            session = await store.get_session(
                app_name=APP_NAME, user_id=self.user_id, session_id=self.session_id,
                config=GetSessionConfig(num_recent_events=0),
            )
            state = session.state if session else {}
            key = {
                "/history": "conversation_history",
                "/prefs": "user:preferences",
                "/stats": "user:agent_stats",
            }.get(name)
            value = state if key is None else state.get(key)
            if key is not None and not value:
                empty = {
                    "/history": "Nothing said in this session yet.",
                    "/prefs": "No preferences stored yet: ask for a joke about a topic, or "
                              "add a stock to your watch list.",
                    "/stats": "No agent has helped you yet.",
                }
                self.say("system", empty[name])
            else:
                self.console.print(escape(to_json(value)))
        elif name == "/runs":
            from .tree import render_tree

            runs = await store.list_runs(
                app_name=APP_NAME, user_id=self.user_id, session_id=self.session_id
            )
            self.console.print(render_tree(runs, title=f"Runs of session {self.session_id}"))
        elif name == "/branch":
            if not arg:
                self.say("system", "Usage: /branch RUN_ID (see /runs)")
            else:
                result = await store.branch(
                    app_name=APP_NAME, user_id=self.user_id, session_id=self.session_id,
                    from_run_id=arg,
                )
                self.say("system", f"Continuing from the end of run {result.head_run_id}; "
                                   "later runs are kept as another branch (/runs).")
        else:
            self.say("system", f"Unknown command {name}. Type /help.")
        return True
