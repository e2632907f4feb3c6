"""The chat loop: one ADK Runner on our store, one user, one current session."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import sys
import time
from collections.abc import Callable
from contextlib import aclosing
from typing import Any

from google.adk.errors.session_not_found_error import SessionNotFoundError
from google.adk.events.event import Event
from google.adk.sessions.base_session_service import GetSessionConfig
from google.genai import types
from rich.markup import escape

from ..cli import EXIT_FAILURE
from ..cli.render import CliConsole, event_text, tool_results, transfer_target
from ..defaults import APP_NAME
from ..errors import DatabaseUnavailableError, MultiAgentError, RunNotFound, SessionNotFound
from ..store.schema import ID_LENGTH

HELP = """\
Commands:
  /help            this help
  /sessions        your sessions (most recent last)
  /new             start a new session (your preferences carry over)
  /switch ID       continue another of your sessions
  /history         what we talked about in this session
  /prefs           your preferences (favourite agent, joke topics, watch list)
  /stats           how often each agent helped you
  /state [KEY]     the state this session sees, by scope; with a KEY, that value in full
  /details [RUN]   what the last answer (or run RUN) did: tool calls, results, state changes
  /verbose         show tool calls and state changes as they happen (again: stop)
  /runs            this session's runs as a tree
  /branch RUN_ID   continue from the end of an earlier run (the later runs stay stored)
  /quit            leave (Ctrl-D and Ctrl-C at the prompt work too; everything is saved)
/history, /prefs, /stats and /state take --json for the raw JSON.
Anything else is a message to the assistant. Ctrl-C while it answers stops that answer
(what was said so far is kept; the run shows as cancelled in /runs)."""


def to_json(value: Any) -> str:
    """Pretty JSON for the slash commands."""
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True, default=str)


MAX_SHOWN = 160
BYE = "Bye. Everything is saved."


class StorageLost(Exception):
    """The database cannot be written any more (read-only, full, gone): the chat stops, since
    nothing more it said would be saved."""

    def __init__(self, error: DatabaseUnavailableError) -> None:
        super().__init__(str(error))
        self.error = error


class Interrupted(Exception):
    """Ctrl-C stopped a run; what it appended is stored.

    ``answered``: Ctrl-C came after the answer was complete (the run is not cancelled).
    Otherwise ``outcome`` says what became of the run: ``cancelled`` (marked so),
    ``not_sent`` (stopped before the message reached the run: nothing of it is stored),
    ``unknown`` (stopped, by a second Ctrl-C, while the message was being stored: it may or
    may not be) or ``unmarked`` (stored, but marking it cancelled failed, which was reported).
    """

    def __init__(self, *, answered: bool = False, outcome: str = "cancelled") -> None:
        super().__init__("interrupted")
        self.answered = answered
        self.outcome = "answered" if answered else outcome


# What the chat says after Ctrl-C stopped a run, by Interrupted.outcome: on a terminal (the
# chat goes on) and piped (it leaves).
_LEAVE_HINT = " (Ctrl-C at the prompt, Ctrl-D or /quit leaves.)"
_INTERRUPTED = {
    "answered": "Stopped waiting; the answer is stored.",
    "cancelled": "Interrupted. The run is marked cancelled and everything said so far is saved.",
    "not_sent": "Interrupted before your message was sent: nothing of it was stored.",
    "unknown": "Interrupted while your message was being stored: it may not have been saved "
               "(/runs shows what was).",
    "unmarked": "Interrupted. Everything said so far is saved, but the run could not be marked "
                "cancelled (see above).",
}
_INTERRUPTED_PIPED = {
    "answered": "Interrupted. Everything so far is saved. Bye.",
    "cancelled": "Interrupted. Everything so far is saved. Bye.",
    "not_sent": "Interrupted before your message was sent: nothing of it was stored. Bye.",
    "unknown": "Interrupted while your message was being stored: it may not have been saved. "
               "Bye.",
    "unmarked": "Interrupted. Everything so far is saved, but the run could not be marked "
                "cancelled. Bye.",
}


class SessionGone(MultiAgentError):
    """The chat's session was deleted (another chat, ``multi-agent delete``) while it was open;
    nothing of the message was stored."""

    def __init__(self, session_id: str) -> None:
        super().__init__(
            f"This session ({session_id}) was deleted meanwhile (by another chat, or "
            "multi-agent delete), so your message was not stored. /new starts a new session; "
            "/sessions lists yours.")


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


def _swap_sigint(handler: Callable[..., Any] | int, sig: int = signal.SIGINT
                 ) -> Callable[..., Any] | int | None:
    """Installs a handler of ``sig`` (SIGINT); returns the previous one (None: not possible
    here)."""
    try:
        previous = signal.getsignal(sig)
        signal.signal(sig, handler)
    except (ValueError, OSError):  # not the main thread, or no signals on this platform
        return None
    return previous


_ENDING_SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP")
                        if hasattr(signal, name))
"""The terminal closed (SIGHUP) or the process asked to end (SIGTERM): the run under way is
marked cancelled before the chat exits, as after Ctrl-C (else it stays ``running``)."""


def _is_answer(event: Event) -> bool:
    """True for an agent's final text reply (what ends the answer the person waits for)."""
    if event.partial or event.author == "user" or not event.is_final_response():
        return False
    return bool(event_text(event))


def _same_message(stored: str, text: str) -> bool:
    """Whether a run's stored message (cut to 200 characters, "…" last) is ``text``."""
    return stored == text or (stored.endswith("…") and text.startswith(stored[:-1]))


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
        verbose: bool = False,
    ) -> None:
        self.db_url = db_url
        self.memory_search = memory_search
        self.user_id = user_id
        self.model = model
        self.quiet = quiet
        self.verbose = verbose and not quiet
        self.interactive = interactive
        self.console = CliConsole(highlight=False, soft_wrap=True)
        self.runner: Any = None
        self.session_id: str | None = None
        self.last_run_id: str | None = None
        self.model_load: asyncio.Task[float] | None = None

    # -- lifecycle --------------------------------------------------------------------------

    async def main(self, *, session_id: str | None, new: bool) -> int:
        from .app import build_runner

        quiet_library_logs()
        self.runner = build_runner(
            db_url=self.db_url, model=self.model, memory_search=self.memory_search
        )
        self.failures = 0
        try:
            memory = self.runner.memory_service
            if getattr(memory, "search_mode", "fulltext") != "fulltext":
                # A missing model is reported now; loading it (seconds) goes on in the
                # background while the person reads the greeting and types.
                await memory.prepare(load_model=False)
                self.model_load = asyncio.ensure_future(memory.load_model())
            await self.open_session(session_id=session_id, new=new)
            code = await self.loop()
        except Interrupted:
            return 130
        except (asyncio.CancelledError, KeyboardInterrupt):
            # Ctrl-C outside a prompt and outside a run (e.g. while a command ran).
            self.console.print()
            self.say("system", BYE)
            return 130
        except StorageLost as exc:
            # Not "Everything is saved": the database refused the last write.
            reason = str(exc).rstrip()
            reason += "" if reason.endswith((".", "!", "?", ")")) else "."
            print(f"multi-agent: {reason} The chat stopped: nothing more could be saved.",
                  file=sys.stderr)
            return EXIT_FAILURE
        except MultiAgentError as exc:
            # One line on stderr, like every other command (no rich wrapping of long lines).
            print(f"multi-agent: {exc}", file=sys.stderr)
            return EXIT_FAILURE
        finally:
            try:
                load = self.model_load
                if load is not None and not load.done():
                    load.cancel()  # the thread finishes on its own; nobody waits for it
                elif load is not None and not load.cancelled():
                    load.exception()  # a failed load nobody asked for: reported at first use
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
            from .app import new_session_state

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
        if getattr(self.store, "encrypted", False):
            self.say("system", "The store is encrypted: long memory (searching earlier "
                               "sessions) is off.")

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
                except EOFError:  # Ctrl-D
                    self.say("system", BYE)
                    return 0
                except KeyboardInterrupt:  # as everywhere: 130 (README, exit codes)
                    self.say("system", BYE)
                    return 130
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
        undecodable = bytes(ord(ch) - 0xDC00 for ch in text if 0xDC80 <= ord(ch) <= 0xDCFF)
        if undecodable or any(0xD800 <= ord(ch) <= 0xDFFF for ch in text):
            # Python reads bytes that are not UTF-8 as lone surrogates (surrogateescape):
            # the store would refuse the message with its JSON error, in its own words.
            self.failures += 1
            shown = " ".join(f"0x{b:02x}" for b in undecodable[:8]) or "a lone surrogate"
            self.say("system", f"That line is not UTF-8 text ({shown}), so it was not sent. "
                               "Set your terminal (or the file piped in) to UTF-8 and try "
                               "again.")
            return True
        try:
            if text.startswith("/"):
                return await self.command(text)
            await self.send(text)
        except DatabaseUnavailableError as exc:
            raise StorageLost(exc) from exc
        except MultiAgentError as exc:
            self.say("system", str(exc))
        except RunFailed as exc:
            self.failures += 1
            self.say("system", f"That did not work: {exc}. What was said so far is saved; try "
                               "again, or /quit.")
        except Interrupted as exc:
            if not self.interactive:
                self.say("system", _INTERRUPTED_PIPED[exc.outcome])
                raise
            self.say("system", _INTERRUPTED[exc.outcome] + _LEAVE_HINT)
        return True

    async def send(self, text: str) -> None:
        """Runs one message through the team, printing as it goes.

        Ctrl-C before the answer is complete cancels the run (marked ``cancelled``). While the
        message itself is being stored (the run's first write) a first Ctrl-C waits for that
        write: stopped in the middle of it, the chat could not tell the user whether the
        message was stored (the store settles a cancelled write, stored or dropped, before the
        cancellation goes on, but does not say which). A second Ctrl-C stops at once. Once
        the answer has been shown the run only has its saving left to do (state, memory): a
        Ctrl-C then lets it finish, so the run stays ``completed``; a second Ctrl-C stops
        waiting (the answer is stored either way).

        Raises:
            Interrupted: Ctrl-C during the run (``outcome`` says whether the run is marked
                cancelled), or in piped mode after the answer (the run completed).
            RunFailed: the run raised anything else (the run is marked failed).
        """
        message = types.Content(role="user", parts=[types.Part(text=text)])
        seen: dict[str, Any] = {}
        sent_at = time.time()

        async def consume() -> None:
            await self.wait_for_model()
            seen["sending"] = True
            # aclosing: when printing fails (the reader of a pipe left), the run is closed
            # now, while the loop still runs, not whenever the generator is collected.
            # yield_user_message: the stored message comes back first, so the run's id is
            # known from the moment the run exists.
            async with aclosing(self.runner.run_async(
                user_id=self.user_id, session_id=self.session_id, new_message=message,
                yield_user_message=True,
            )) as events:
                async for event in events:
                    seen["invocation_id"] = self.last_run_id = event.invocation_id
                    self.render(event)
                    if _is_answer(event):
                        seen["answered"] = True
                    if seen.get("stop"):
                        # Ctrl-C came while the message was being stored; it is now (this
                        # event came after it), and no other write of the run is under way.
                        raise asyncio.CancelledError

        task = asyncio.ensure_future(consume())
        loop = asyncio.get_running_loop()
        presses = 0

        def stopping_hint() -> None:
            if seen.get("stop") and "invocation_id" not in seen and not task.done():
                self.say("system", "Stopping once your message is stored (Ctrl-C again stops "
                                   "now; it may then not be saved).")

        def on_sigint(_signum: int, _frame: Any) -> None:
            nonlocal presses
            presses += 1
            if seen.get("answered") and presses == 1:
                # The answer is complete: let the run save it and end normally.
                loop.call_soon_threadsafe(
                    self.say, "system",
                    "The answer is complete; saving it (Ctrl-C again stops waiting).",
                )
                return
            if presses == 1 and seen.get("sending") and "invocation_id" not in seen:
                # The message is being stored: stop as soon as it is (see the docstring).
                seen["stop"] = True
                loop.call_soon_threadsafe(loop.call_later, 0.5, stopping_hint)
                return
            loop.call_soon_threadsafe(task.cancel)

        def on_ending(signum: int, _frame: Any) -> None:
            seen["ended_by"] = signum
            loop.call_soon_threadsafe(task.cancel)

        previous = _swap_sigint(on_sigint)
        ending = {sig: _swap_sigint(on_ending, sig) for sig in _ENDING_SIGNALS}
        # Restored only once what follows the run is done too: a second Ctrl-C pressed right
        # after the first (while the run is marked cancelled) is one more press, not
        # asyncio's own handler cancelling the whole chat.
        try:
            try:
                await task
            except asyncio.CancelledError:
                if "ended_by" in seen:  # (the terminal may be gone: nothing is printed)
                    signum = seen["ended_by"]
                    if not seen.get("answered"):
                        await self.mark_run(
                            seen.get("invocation_id"), "cancelled",
                            f"the chat was ended ({signal.Signals(signum).name})",
                            text=text, since=sent_at)
                    raise SystemExit(128 + signum) from None
                if not presses:
                    raise
                self.console.print()
                if seen.get("answered"):
                    raise Interrupted(answered=True) from None
                if not seen.get("sending"):
                    raise Interrupted(outcome="not_sent") from None
                marked = await self.mark_run(seen.get("invocation_id"), "cancelled",
                                             "interrupted by the user", text=text, since=sent_at)
                outcome = "cancelled" if marked else "unmarked"
                if marked is None:  # no run found: the message was not stored (yet)
                    outcome = "unknown"
                raise Interrupted(outcome=outcome) from None
            except BrokenPipeError:  # the reader of our output left: stop, say nothing more
                if not seen.get("answered"):
                    await self.mark_run(seen.get("invocation_id"), "cancelled",
                                        "the output was closed", text=text, since=sent_at)
                raise
            except SessionNotFoundError as exc:  # ADK's or ours: deleted since it was opened
                raise SessionGone(self.session_id) from exc
            except MultiAgentError as exc:
                await self.mark_run(seen.get("invocation_id"), "failed", str(exc)[:500],
                                    text=text, since=sent_at)
                raise
            except Exception as exc:
                if os.environ.get("MULTI_AGENT_DEBUG"):
                    self.console.print_exception()
                reason = f"{type(exc).__name__}: {exc}".strip().rstrip(":")
                reason = " ".join(reason.split())
                await self.mark_run(seen.get("invocation_id"), "failed", reason[:500],
                                    text=text, since=sent_at)
                raise RunFailed(reason if len(reason) <= 300 else reason[:299] + "…") from exc
        finally:
            if previous is not None:
                _swap_sigint(previous)
            for sig, handler in ending.items():
                if handler is not None:
                    _swap_sigint(handler, sig)
        if presses and not self.interactive:
            raise Interrupted(answered=True)  # piped: Ctrl-C means leave, once it is saved

    async def wait_for_model(self) -> None:
        """Waits for the semantic search model still loading in the background, saying so."""
        task = self.model_load
        if task is None or task.done():
            return
        self.say("system", "Loading the semantic search model (first use; a few seconds)…")
        if self.interactive:
            with self.console.status("loading the model…"):
                seconds = await asyncio.shield(task)
        else:
            seconds = await asyncio.shield(task)
        self.note(f"model loaded ({seconds:.1f} s)")

    async def mark_run(self, run_id: str | None, status: str, error: str, *,
                       text: str | None = None, since: float | None = None) -> bool | None:
        """Records how a run ended early: True when recorded, None when there is no such run
        (``run_id`` None: no running head run started at ``since`` or later with the message
        ``text``), False when recording failed (said in one line on stderr; the events
        themselves are stored either way, and the run shows as running until a later run
        starts)."""
        store = self.store
        try:
            if run_id is None:  # no event came back: is the message stored as the head run?
                runs = await store.list_runs(
                    app_name=APP_NAME, user_id=self.user_id, session_id=self.session_id
                )
                heads = [
                    r for r in runs
                    if r.is_head and r.status == "running" and r.kind == "invocation"
                    and (since is None or r.started_at >= since)
                    # (an encrypted store may not give the message back: then any)
                    and (text is None or r.message is None or _same_message(r.message, text))
                ]
                if not heads:
                    return None
                run_id = heads[-1].run_id
            await store.set_run_status(
                app_name=APP_NAME, user_id=self.user_id, session_id=self.session_id,
                run_id=run_id, status=status, error=error,
            )
        except Exception as exc:  # never fail the chat over it, but say so
            reason = " ".join(f"{type(exc).__name__}: {exc}".split())
            which = f"run {run_id}" if run_id else "the run"
            print(f"multi-agent: could not mark {which} {status}: {reason[:300]}",
                  file=sys.stderr, flush=True)
            return False
        return True

    # -- output -----------------------------------------------------------------------------

    def say(self, who: str, text: str) -> None:
        style = "bold cyan" if who != "system" else "dim"
        self.console.print(f"[{style}]\\[{escape(who)}][/{style}] {escape(text)}")

    def note(self, text: str) -> None:
        """A detail line (tool call, result, state change): shown with --verbose only."""
        if self.verbose:
            self.console.print(f"[dim]  {escape(text)}[/dim]")

    def render(self, event: Event) -> None:
        """Prints one event: by default the delegation and the answer; --verbose adds tool
        calls, their results and state changes; --quiet leaves only the answer."""
        if event.partial:
            return
        for call in event.get_function_calls():
            target = transfer_target(call)
            if target is None:
                self.note(f"→ {event.author} calls {call.name}({_short(call.args or {})})")
            elif not self.quiet:
                self.console.print(
                    f"[magenta]  ↪ {escape(event.author)} → {escape(target)}[/magenta]"
                )
        for response in tool_results(event):
            self.note(f"← {response.name}: {_short(response.response)}")
        delta = event.actions.state_delta if event.actions else {}
        if delta:
            self.note("state: " + ", ".join(sorted(delta)))
        said = event_text(event) if event.author != "user" else ""
        if said:
            self.say(event.author, said)

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
            elif len(arg) > ID_LENGTH:  # (the id echoed back would fill the screen)
                self.say("system", f"That session does not exist: its id would be "
                                   f"{len(arg):,} characters long, and ids have at most "
                                   f"{ID_LENGTH}. /sessions lists yours.")
            else:
                try:
                    await self.open_session(session_id=arg, new=False)
                except SessionNotFound as exc:
                    self.say("system", str(exc))
        elif name in ("/state", "/history", "/prefs", "/stats"):
            await self.view(name, arg)
        elif name == "/details":
            await self.details(arg or None)
        elif name == "/verbose":
            self.verbose = not self.verbose
            self.quiet = False
            self.say("system", "Tool calls and state changes are shown as they happen now "
                               "(/verbose again hides them)." if self.verbose else
                               "Tool calls and state changes are hidden now (/details shows "
                               "them for the last answer).")
        elif name == "/runs":
            from ..cli.tree import render_tree

            # The recent runs (about a screen); "/runs N" the last N, "/runs all" every one.
            last: int | None = 15
            if arg.lower() == "all":
                last = None
            elif arg.isdigit() and int(arg) > 0:
                last = int(arg)
            elif arg:
                self.say("system", "Usage: /runs (the recent runs), /runs N (the last N) or "
                                   "/runs all")
                return True
            runs = await store.list_runs(
                app_name=APP_NAME, user_id=self.user_id, session_id=self.session_id
            )
            if not runs:
                self.say("system", "No runs in this session yet.")
            else:
                self.console.print(render_tree(
                    runs, title=f"Runs of session {self.session_id}", last=last,
                    more="/runs all shows every run, /runs N the last N",
                ))
        elif name == "/branch":
            if not arg:
                self.say("system", "Usage: /branch RUN_ID (see /runs)")
            else:
                try:
                    result = await store.branch(
                        app_name=APP_NAME, user_id=self.user_id, session_id=self.session_id,
                        from_run_id=arg,
                    )
                except RunNotFound as exc:  # its advice is the shell's; here it is /runs
                    text = str(exc).replace(
                        "`multi-agent runs --user U --session S` shows the tree.",
                        "/runs shows the tree.")
                    self.say("system", text)
                    return True
                self.say("system", f"Continuing from the end of run {result.head_run_id}; "
                                   "later runs are kept as another branch (/runs).")
        else:
            self.say("system", f"Unknown command {name}. Type /help.")
        return True

    # -- views ------------------------------------------------------------------------------

    async def view(self, name: str, arg: str) -> None:
        """``/state [KEY]``, ``/history``, ``/prefs``, ``/stats``: a tree or a table, or the
        JSON with ``--json``."""
        from ..cli import render

        words = arg.split()
        as_json = "--json" in words
        key_arg = " ".join(w for w in words if w != "--json")
        session = await self.store.get_session(
            app_name=APP_NAME, user_id=self.user_id, session_id=self.session_id,
            config=GetSessionConfig(num_recent_events=0),
        )
        state = dict(session.state) if session else {}
        if name == "/state":
            if key_arg and key_arg not in state:
                self.say("system", f"No state key {key_arg!r} here; /state lists the keys.")
            elif key_arg:
                value = state[key_arg]
                render.show(self.console, escape(to_json(value)) if as_json else
                            render.value_tree(key_arg, value))
            elif as_json:
                self.console.print(escape(to_json(state)))
            else:
                render.show(self.console, render.state_tree(
                    state, title=f"State of session {self.session_id} (user {self.user_id}); "
                                 "/state KEY shows one in full"))
            return
        key, empty, make = {
            "/history": ("conversation_history", "Nothing said in this session yet.",
                         lambda v: render.history_table(v, title="This session so far")),
            "/prefs": ("user:preferences", "No preferences stored yet: ask for a joke about a "
                       "topic, or add a stock to your watch list.",
                       lambda v: render.prefs_table(v, title="Your preferences")),
            "/stats": ("user:agent_stats", "No agent has helped you yet.",
                       lambda v: render.stats_table(v, title="Agents that helped you")),
        }[name]
        value = state.get(key)
        if as_json:
            self.console.print(escape(to_json(value if value is not None else
                                              [] if name == "/history" else {})))
        elif not value or not isinstance(value, list | dict):
            self.say("system", empty)
        else:
            render.show(self.console, make(value))

    async def details(self, run_id: str | None) -> None:
        """``/details [RUN]``: what the last answer (or the run RUN) did, event by event."""
        from ..cli import render

        store = self.store
        if run_id is None:
            run_id = self.last_run_id
        if run_id is None:
            runs = await store.list_runs(
                app_name=APP_NAME, user_id=self.user_id, session_id=self.session_id
            )
            top = [r for r in runs if r.kind == "invocation" and r.on_path]
            run_id = top[-1].run_id if top else None
        if run_id is None:
            self.say("system", "No answer in this session yet: /details shows what the last "
                               "one did.")
            return
        session = await store.get_session(
            app_name=APP_NAME, user_id=self.user_id, session_id=self.session_id
        )
        events = [e for e in (session.events if session else []) if e.invocation_id == run_id]
        title = f"Run {run_id}"
        if not events:  # a sub-run, or a run of another branch: from every stored event
            events, title = await self._run_events(run_id)
        if not events:
            self.say("system", f"No events of run {run_id!r} in this session (/runs lists "
                               "the runs).")
            return
        render.show(self.console, render.details_tree(events, title=title))

    async def _run_events(self, run_id: str) -> tuple[list[Event], str]:
        """The events of a run that the current history does not hold: a delegation sub-run
        (its agent's part of the run it belongs to) or a run of another branch."""
        store = self.store
        runs = {r.run_id: r for r in await store.list_runs(
            app_name=APP_NAME, user_id=self.user_id, session_id=self.session_id)}
        run = runs.get(run_id)
        if run is None:
            return [], ""
        doc = await store.export_session(app_name=APP_NAME, user_id=self.user_id,
                                         session_id=self.session_id)
        rows = doc["events"] if doc else []
        if run.kind == "delegation":
            last = run.last_seq if run.last_seq is not None else run.first_seq
            rows = [r for r in rows if r["run_id"] == run.parent_run_id
                    and run.first_seq <= r["seq"] <= last and r["source"] == run.agent]
            title = f"Run {run_id} ({run.agent}'s part of run {run.parent_run_id})"
        else:
            rows = [r for r in rows if r["run_id"] == run_id]
            title = f"Run {run_id}" + ("" if run.on_path else " (on another branch)")
        return [Event.model_validate(r["event"]) for r in rows], title
