"""The chat loop: one ADK Runner on our store, one user, one current session."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from google.adk.events.event import Event
from google.adk.sessions.base_session_service import GetSessionConfig
from google.genai import types
from rich.console import Console
from rich.markup import escape

from ..errors import MultiAgentError, SessionNotFound
from .chat import APP_NAME, HELP, to_json

MAX_SHOWN = 160


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
        self, *, db_url: str, user_id: str, model: str | None, quiet: bool, interactive: bool
    ) -> None:
        self.db_url = db_url
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

        self.runner = build_runner(db_url=self.db_url, model=self.model)
        try:
            await self.open_session(session_id=session_id, new=new)
            await self.loop()
        except (asyncio.CancelledError, KeyboardInterrupt):
            return 130
        except MultiAgentError as exc:
            self.console.print(f"[red]multi-agent: {escape(str(exc))}[/red]")
            return 2
        finally:
            await self.runner.close()
        return 0

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
                               f"({count} interactions so far).")
        elif memory:
            self.say("system", f"Welcome back, {name}. New session {self.session_id}.")
        else:
            self.say("system", f"Hello {name}! New session {self.session_id}. Type /help for "
                               "commands.")
        if memory:
            self.say("system", "I remember: " + "; ".join(memory) + ".")
        self.say("system", f"Model: {label}.")

    # -- input ------------------------------------------------------------------------------

    async def loop(self) -> None:
        if self.interactive:
            from prompt_toolkit import PromptSession
            from prompt_toolkit.history import InMemoryHistory

            prompt = PromptSession(history=InMemoryHistory())
            while True:
                try:
                    line = await prompt.prompt_async(f"{self.user_id}> ")
                except (EOFError, KeyboardInterrupt):
                    self.say("system", "Bye. Everything is saved.")
                    return
                if not await self.handle(line):
                    return
        else:
            import sys

            for line in sys.stdin:
                if not await self.handle(line.rstrip("\n")):
                    return
            self.say("system", "Bye. Everything is saved.")

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
        return True

    async def send(self, text: str) -> None:
        message = types.Content(role="user", parts=[types.Part(text=text)])
        invocation_id = None
        try:
            async for event in self.runner.run_async(
                user_id=self.user_id, session_id=self.session_id, new_message=message
            ):
                invocation_id = event.invocation_id
                self.render(event)
        except (asyncio.CancelledError, KeyboardInterrupt):
            # Ctrl-C during a run: what was appended is stored; the run is marked cancelled.
            if invocation_id:
                await self.store.set_run_status(
                    app_name=APP_NAME, user_id=self.user_id, session_id=self.session_id,
                    run_id=invocation_id, status="cancelled", error="interrupted by the user",
                )
            self.say("system", "Interrupted. Everything so far is saved. Bye.")
            raise

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
            self.say("system", "Bye. Everything is saved.")
            return False
        if name == "/help":
            self.console.print(escape(HELP))
        elif name == "/sessions":
            listed = (await store.list_sessions(app_name=APP_NAME, user_id=self.user_id)).sessions
            for s in listed:
                mark = "*" if s.id == self.session_id else " "
                when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(s.last_update_time))
                self.console.print(f"{mark} {escape(s.id)}  {when}")
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
            value = state if key is None else state.get(key, {} if key != "conversation_history"
                                                         else [])
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
