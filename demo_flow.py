#!/usr/bin/env python3
"""A step-by-step tour of the persistent multi-agent system, restart included.

    python demo_flow.py                 # straight through, on a fresh temporary SQLite file
    python demo_flow.py --step          # wait for Enter between steps
    python demo_flow.py --db sqlite+aiosqlite:///./tour.db --user arvind
    python demo_flow.py --db postgresql+asyncpg://user:pw@localhost/dbname

Part 1 (this process): the database is created, a session starts with its initial state, and
four messages go through the team. For each one the tour shows which agent delegated to which
(as the store recorded it) and which state keys the turn changed.

Part 2 (a NEW process, started by part 1 with ``--restored-part``): it opens the same database
with nothing in memory and shows what was restored: the user's name, preferences, watch list,
agent statistics, the earlier session, a new session that already knows the user, and the
historian's summary of the earlier conversation.

It uses the library (``multi_agent.team.app.build_runner``), not the CLI. Without ``--db`` every run
starts from an empty temporary database, so two runs show the same thing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from typing import Any

from rich.console import Console
from rich.json import JSON
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table

RESTORED_FLAG = "--restored-part"
DEFAULT_USER = "arvind"
DEFAULT_NAME = "Arvind Mehta"

# The seed's flow: what the user says in part 1, and what to look for.
FLOW: list[tuple[str, str]] = [
    ("Tell me a joke about Python",
     "The manager hands jokes to funny_nerd, which remembers that you like python jokes."),
    ("Add AAPL and GOOGL to my watch list",
     "Watch-list changes go to stock_analyst; the list is user state, so every session sees it."),
    ("What's the price of AAPL?",
     "No live price source is available offline: the analyst says so instead of making one up."),
    ("What did we talk about?",
     "The historian summarises the conversation from what the store recorded."),
]

# Part 2, in the new process: a new session that already knows the user.
RESTORED_FLOW: list[tuple[str, str]] = [
    ("Tell me a joke",
     "No topic given: funny_nerd picks one from the preferences restored from the database."),
    ("What did we talk about?",
     "The historian reads every session of the user, including the one from process 1."),
]

TABLE_NOTES = {
    "ma_meta": "schema version of the store",
    "ma_app_states": "app: state (shared by every user)",
    "ma_user_states": "user: state (shared by the user's sessions)",
    "ma_sessions": "one row per session: session state, revision, head run",
    "ma_events": "every event: who said what to whom (source, target, type, text)",
    "ma_runs": "one row per run (invocation) and delegation, as a tree",
    "ma_memory_sessions": "long memory: which sessions were added to it",
    "ma_memory_entries": "long memory: past messages the historian can search",
    "ma_memory_fts": "long memory: full-text index over those messages",
}


def table_note(name: str) -> str:
    if name in TABLE_NOTES:
        return TABLE_NOTES[name]
    return "multi-agent store" if name.startswith("ma_") else "(not created by multi-agent)"


def shown_tables(names: list[str]) -> list[str]:
    """Table names without SQLite's FTS5 shadow tables (ma_memory_fts_data...)."""
    return [n for n in names if not (n.startswith("ma_memory_fts_") and "ma_memory_fts" in names)]

console = Console(highlight=False, soft_wrap=False)


# -- presentation helpers ---------------------------------------------------------------------


class Tour:
    """Numbers the steps and, with ``--step``, waits for Enter before each one after the first."""

    def __init__(self, *, step: bool, first: int = 1) -> None:
        self.step_mode = step
        self.number = first - 1
        self.shown = 0

    def step(self, title: str) -> None:
        self.number += 1
        if self.step_mode and self.shown:
            self.pause(f"Press Enter for step {self.number}: {title} ")
        self.shown += 1
        console.print()
        console.rule(f"[bold]Step {self.number}: {escape(title)}[/bold]", align="left")

    def pause(self, prompt: str) -> None:
        console.print(f"[dim]{escape(prompt)}[/dim]", end="")
        sys.stdout.flush()
        if not read_line():
            console.print("[dim](no more input: continuing without pausing)[/dim]")
            self.step_mode = False
        elif not sys.stdin.isatty():
            console.print()  # the newline the terminal would have echoed


def read_line() -> bool:
    """Reads one line from stdin without reading ahead; False at end of input.

    Byte by byte on purpose: a buffered read would swallow the lines meant for the restored
    part, which runs in a child process sharing this stdin.
    """
    try:
        fd = sys.stdin.fileno()
    except (AttributeError, OSError, ValueError):
        return False
    while True:
        try:
            chunk = os.read(fd, 1)
        except OSError:
            return False
        if not chunk:
            return False
        if chunk == b"\n":
            return True


def show_json(value: Any) -> None:
    console.print(JSON(json.dumps(value, ensure_ascii=False, default=str), sort_keys=True))


def short(value: Any, limit: int = 90) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False,
                                                           default=str)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def scope_of(key: str) -> str:
    for prefix in ("app:", "user:", "temp:"):
        if key.startswith(prefix):
            return prefix[:-1]
    return "session"


TIME_KEYS = {"timestamp", "last_used", "last_activity", "created_at"}


def item_summary(item: Any) -> str:
    """One history/delegation entry in a few words."""
    if isinstance(item, dict):
        if "agent_name" in item and "task" in item:
            return f"{item['agent_name']}: {short(item['task'], 40)!r} ({item.get('status')})"
        if "user_input" in item:
            return f"{short(item['user_input'], 40)!r} answered by {item.get('agent')}"
        return short({k: v for k, v in item.items() if k not in TIME_KEYS}, 60)
    return short(item, 60)


def state_diff(before: dict[str, Any], after: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(key, scope, change) for every value the turn added, removed or changed.

    Dicts are compared key by key (``user:preferences.stock_watchlist``); lists that grew
    show what was appended; changes of timestamps alone are counted, not listed.
    """
    rows: list[tuple[str, str, str]] = []
    missing = object()
    times = 0

    def walk(path: str, scope: str, old: Any, new: Any) -> None:
        nonlocal times
        if old == new:
            return
        leaf = path.rsplit(".", 1)[-1]
        if leaf in TIME_KEYS and new is not missing:
            times += 1
            return
        if isinstance(new, dict) and (old is missing or old is None or isinstance(old, dict)):
            base = old if isinstance(old, dict) else {}
            for key in sorted(set(base) | set(new), key=str):
                walk(f"{path}.{key}", scope, base.get(key, missing), new.get(key, missing))
            return
        if new is missing:
            rows.append((path, scope, "removed"))
            return
        if isinstance(new, list) and (old is missing or isinstance(old, list)):
            base = old if isinstance(old, list) else []
            if new[: len(base)] == base:
                added = new[len(base):]
                shown = "; ".join(item_summary(item) for item in added[-2:])
                more = f"{len(added) - 2} more, " if len(added) > 2 else ""
                rows.append((path, scope, f"+{len(added)}: {more}{shown}"))
                return
            if len(base) == len(new):
                rows.append((path, scope, f"{len(new)} entries, last now: "
                                          f"{item_summary(new[-1])}"))
                return
        shown_old = "—" if old is missing else short(old, 40)
        rows.append((path, scope, f"{shown_old} → {short(new, 60)}"))

    for key in sorted(set(before) | set(after)):
        walk(key, scope_of(key), before.get(key, missing), after.get(key, missing))
    if times:
        rows.append(("(timestamps)", "", f"{times} updated"))
    return rows


def print_diff(rows: list[tuple[str, str, str]]) -> None:
    if not rows:
        console.print("[dim]  (no state change)[/dim]")
        return
    table = Table(title="State changes caused by this turn", title_justify="left",
                  show_edge=False, pad_edge=False)
    table.add_column("key", style="cyan", no_wrap=True)
    table.add_column("scope")
    table.add_column("change", overflow="fold")
    for key, scope, change in rows:
        table.add_row(escape(key), scope, escape(change))
    console.print(table)


# -- the library calls ------------------------------------------------------------------------


async def load_state(store: Any, app: str, user: str, session_id: str) -> dict[str, Any]:
    from google.adk.sessions.base_session_service import GetSessionConfig

    session = await store.get_session(app_name=app, user_id=user, session_id=session_id,
                                      config=GetSessionConfig(num_recent_events=0))
    return dict(session.state) if session else {}


async def interact(runner: Any, user: str, session_id: str, text: str, why: str) -> dict[str, Any]:
    """Sends one message and shows the delegation, the replies and the state changes."""
    from multi_agent.cli.render import event_text, transfer_target
    from multi_agent.team.app import APP_NAME, user_message

    store = runner.session_service
    console.print(Panel(f"[bold]{escape(text)}[/bold]\n[dim]{escape(why)}[/dim]",
                        title=f"{escape(user)} says", title_align="left", expand=False))
    before = await load_state(store, APP_NAME, user, session_id)
    delegations: list[tuple[str, str]] = []
    replies: list[tuple[str, str]] = []
    tools: list[str] = []
    run_id = None
    async for event in runner.run_async(user_id=user, session_id=session_id,
                                        new_message=user_message(text)):
        run_id = event.invocation_id
        if event.partial:
            continue
        for call in event.get_function_calls():
            target = transfer_target(call)
            if target is not None:
                delegations.append((event.author, target))
            else:
                tools.append(f"{event.author}: {call.name}({short(call.args or {}, 60)})")
        said = event_text(event) if event.author != "user" else ""
        if said:
            replies.append((event.author, said))
    after = await load_state(store, APP_NAME, user, session_id)

    for source, target in delegations:
        console.print(f"[magenta]  delegation: {escape(source)} → {escape(target)}[/magenta]")
    if not delegations:
        console.print("[magenta]  no delegation: the manager answered itself[/magenta]")
    for line in tools:
        console.print(f"[dim]  tool call {escape(line)}[/dim]")
    for author, said in replies:
        console.print(f"[bold cyan]\\[{escape(author)}][/bold cyan] {escape(said)}")

    if run_id is not None:
        await show_stored(store, user, session_id, run_id, agents=agent_names(runner.agent))
    print_diff(state_diff(before, after))
    return {"delegations": delegations, "replies": replies, "state": after}


def agent_names(agent: Any) -> set[str]:
    names = {agent.name}
    for sub in getattr(agent, "sub_agents", None) or []:
        names |= agent_names(sub)
    return names


async def show_stored(store: Any, user: str, session_id: str, run_id: str, *,
                      agents: set[str]) -> None:
    """What the store recorded for the run: its events by type, the hand-offs and replies."""
    from collections import Counter

    from multi_agent.team.app import APP_NAME

    messages = await store.query_messages(app_name=APP_NAME, user_id=user,
                                          session_id=session_id, run_id=run_id)
    kinds = Counter(m.message_type for m in messages)
    console.print(f"[dim]Stored: {len(messages)} events in ma_events for run {escape(run_id)} ("
                  + ", ".join(f"{n} {kind}" for kind, n in sorted(kinds.items())) + "); "
                  "the hand-offs and replies among them:[/dim]")
    table = Table(show_edge=False, pad_edge=False, box=None, show_header=False)
    table.add_column("seq", justify="right", style="dim")
    table.add_column("who", no_wrap=True)
    table.add_column("what", overflow="fold")
    for m in messages:
        if m.message_type == "tool_call" and m.target in agents and m.target != m.source:
            table.add_row(str(m.seq), escape(f"{m.source} → {m.target}"),
                          "transfer_to_agent (delegation)")
        elif m.message_type == "agent" and m.text:
            table.add_row(str(m.seq), escape(f"{m.source} → {m.target or '-'}"),
                          escape(short(m.text, 70)))
    console.print(table)


def condensed(state: dict[str, Any], longest: int = 2) -> dict[str, Any]:
    """The state with long lists shortened to their last entries, for display."""
    out: dict[str, Any] = {}
    for key, value in state.items():
        if isinstance(value, list) and len(value) > longest:
            out[key] = [f"… {len(value) - longest} earlier entries …", *value[-longest:]]
        else:
            out[key] = value
    return out


def database_label(url: str) -> str:
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return f"SQLite file {parsed.database}" if parsed.database else "SQLite in memory"
    return f"{parsed.get_backend_name()} database {parsed.database!r} on " \
           f"{parsed.host or 'localhost'} ({parsed.render_as_string(hide_password=True)})"


async def table_names(store: Any) -> list[str]:
    from sqlalchemy import inspect

    return await store.backend.run(lambda conn: sorted(inspect(conn).get_table_names()),
                                   write=False)


async def row_counts(store: Any) -> dict[str, int]:
    from sqlalchemy import inspect, text

    def count(conn: Any) -> dict[str, int]:
        names = shown_tables(sorted(inspect(conn).get_table_names()))
        return {
            name: int(conn.execute(text(f'SELECT COUNT(*) FROM "{name}"')).scalar() or 0)
            for name in names if name.startswith("ma_")
        }

    return await store.backend.run(count, write=False)


# -- part 1 -----------------------------------------------------------------------------------


async def part_one(args: argparse.Namespace, tour: Tour) -> dict[str, Any]:
    from multi_agent.team.app import APP_NAME, build_runner, get_or_create_session

    tour.step("the database")
    path = sqlite_path(args.db)
    existed = path is not None and os.path.exists(path)
    runner = build_runner(db_url=args.db, model=args.model)
    store = runner.session_service
    try:
        await store.prepare()  # creates the tables now (otherwise the first call would)
        label = database_label(args.db)
        if path is not None:
            state = "already existed; opened it" if existed else "did not exist; created it"
            console.print(f"{escape(label)}: {state} "
                          f"({os.path.getsize(path):,} bytes now).")
        else:
            console.print(f"{escape(label)}: connected; schema created if it was missing.")
        names = shown_tables(await table_names(store))
        table = Table(title="Tables", title_justify="left", show_edge=False, pad_edge=False)
        table.add_column("table", style="cyan")
        table.add_column("holds")
        for name in names:
            table.add_row(name, table_note(name))
        console.print(table)
        model = getattr(runner.agent, "model", None)
        label = getattr(model, "display_label", None) or getattr(model, "model", None) or model
        console.print(f"Agents: {escape(runner.agent.name)} with sub-agents "
                      f"{escape(', '.join(a.name for a in runner.agent.sub_agents))}; "
                      f"model: {escape(str(label))}.")

        tour.step("a session with its initial state")
        session = await get_or_create_session(store, user_id=args.user, user_name=args.name)
        console.print(f"Session [bold]{escape(session.id)}[/bold] of user "
                      f"[bold]{escape(args.user)}[/bold] in app {APP_NAME!r}. Its state:")
        show_json(dict(session.state))
        console.print("[dim]Keys without a prefix belong to this session (ma_sessions); "
                      "user: keys to the user across sessions (ma_user_states); app: keys to "
                      "everyone (ma_app_states).[/dim]")

        state: dict[str, Any] = dict(session.state)
        for number, (text, why) in enumerate(FLOW, 1):
            tour.step(f"interaction {number} of {len(FLOW)}")
            state = (await interact(runner, args.user, session.id, text, why))["state"]

        tour.step("what is stored before the restart")
        prefs = state.get("user:preferences") or {}
        stats = state.get("user:agent_stats") or {}
        events = await store.get_session(app_name=APP_NAME, user_id=args.user,
                                         session_id=session.id)
        console.print(f"Session {escape(session.id)}: {len(events.events) if events else 0} "
                      f"events, {len(state.get('conversation_history') or [])} exchanges in "
                      "conversation_history.")
        console.print(f"User {escape(args.user)}: name {state.get('user:user_name')!r}, "
                      f"joke topics {prefs.get('joke_preferences')}, watch list "
                      f"{prefs.get('stock_watchlist')}, agent stats "
                      f"{ {k: v.get('delegations') for k, v in stats.items()} }.")
        runs = await store.list_runs(app_name=APP_NAME, user_id=args.user,
                                     session_id=session.id)
        console.print(f"Runs recorded: {len(runs)} "
                      f"({sum(r.kind == 'delegation' for r in runs)} of them delegations).")
        counts = await row_counts(store)
        table = Table(title="Rows in the database now", title_justify="left", show_edge=False,
                      pad_edge=False)
        table.add_column("table", style="cyan")
        table.add_column("rows", justify="right")
        for name, count in counts.items():
            table.add_row(name, str(count))
        console.print(table)
        return {
            "session_id": session.id,
            "user_name": state.get("user:user_name"),
            "joke_preferences": prefs.get("joke_preferences") or [],
            "stock_watchlist": prefs.get("stock_watchlist") or [],
            "agent_stats": {k: v.get("delegations") for k, v in stats.items()},
            "exchanges": len(state.get("conversation_history") or []),
        }
    finally:
        await runner.close()


def sqlite_path(url: str) -> str | None:
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database or \
            parsed.database == ":memory:":
        return None
    return parsed.database


# -- part 2: the new process ------------------------------------------------------------------


async def part_two(args: argparse.Namespace, tour: Tour, expect: dict[str, Any]) -> int:
    from multi_agent.team.app import APP_NAME, build_runner, get_or_create_session

    tour.step("a new process opens the same database")
    console.print(f"This is process {os.getpid()} (started by process {os.getppid()}); "
                  "nothing of part 1 is in its memory.")
    console.print(f"Opening {escape(database_label(args.db))}.")
    runner = build_runner(db_url=args.db, model=args.model)
    store = runner.session_service
    checks: list[tuple[str, bool, str]] = []
    try:
        listed = (await store.list_sessions(app_name=APP_NAME, user_id=args.user)).sessions
        if not listed:
            console.print(f"[red]Nothing is stored for user {escape(args.user)!r}.[/red]")
            return 1
        table = Table(title=f"Sessions of {args.user}", title_justify="left", show_edge=False,
                      pad_edge=False)
        table.add_column("session id")
        table.add_column("last update")
        table.add_column("interactions", justify="right")
        for s in listed:
            meta = s.state.get("session_metadata") or {}
            table.add_row(s.id, time.strftime("%H:%M:%S", time.localtime(s.last_update_time)),
                          str(meta.get("total_interactions", 0)))
        console.print(table)
        earlier = listed[-1]

        tour.step("what was restored")
        user_state = await store.get_user_state(app_name=APP_NAME, user_id=args.user)
        prefs = user_state.get("preferences") or {}
        stats = user_state.get("agent_stats") or {}
        old = await store.get_session(app_name=APP_NAME, user_id=args.user,
                                      session_id=earlier.id)
        history = old.state.get("conversation_history") or [] if old else []
        restored = Table(title="Restored from the database", title_justify="left",
                         show_edge=False, pad_edge=False)
        restored.add_column("what", style="cyan")
        restored.add_column("value", overflow="fold")
        restored.add_row("user name", escape(str(user_state.get("user_name"))))
        restored.add_row("joke preferences", escape(", ".join(prefs.get("joke_preferences")
                                                              or []) or "-"))
        restored.add_row("watch list", escape(", ".join(prefs.get("stock_watchlist") or [])
                                              or "-"))
        restored.add_row("favourite agent", escape(str(prefs.get("favorite_agent"))))
        restored.add_row("agent stats", escape(", ".join(
            f"{name} ×{info.get('delegations', 0)}" for name, info in sorted(stats.items())
        ) or "-"))
        restored.add_row("earlier session", escape(
            f"{earlier.id}: {len(old.events) if old else 0} events, {len(history)} exchanges"))
        console.print(restored)
        for entry in history:
            console.print(f"[dim]  {escape(entry.get('agent', '?'))} answered "
                          f"{escape(short(entry.get('user_input', ''), 40))!r}[/dim]")
        if expect:
            checks += [
                ("user name", user_state.get("user_name") == expect.get("user_name"),
                 str(user_state.get("user_name"))),
                ("joke preferences",
                 prefs.get("joke_preferences") == expect.get("joke_preferences"),
                 str(prefs.get("joke_preferences"))),
                ("watch list", prefs.get("stock_watchlist") == expect.get("stock_watchlist"),
                 str(prefs.get("stock_watchlist"))),
                ("agent stats",
                 {k: v.get("delegations") for k, v in stats.items()}
                 == expect.get("agent_stats"),
                 str({k: v.get("delegations") for k, v in stats.items()})),
                ("earlier session", earlier.id == expect.get("session_id")
                 and len(history) == expect.get("exchanges"),
                 f"{earlier.id}, {len(history)} exchanges"),
            ]

        tour.step("a new session that knows the user")
        session = await get_or_create_session(store, user_id=args.user)
        console.print(f"New session [bold]{escape(session.id)}[/bold]. Its session keys start "
                      "empty; the user: keys come from the database:")
        show_json(condensed(dict(session.state)))
        console.print("[dim](long lists shortened to their last entries)[/dim]")
        knows = (session.state.get("user:preferences") or {}) == prefs and \
            session.state.get("user:user_name") == user_state.get("user_name")
        checks.append(("new session knows the user", knows,
                       f"user:user_name={session.state.get('user:user_name')!r}"))

        summary = ""
        for number, (text, why) in enumerate(RESTORED_FLOW, 1):
            tour.step(f"the new session, message {number} of {len(RESTORED_FLOW)}")
            result = await interact(runner, args.user, session.id, text, why)
            if text.startswith("What did we talk about"):
                summary = "\n".join(said for _, said in result["replies"])
        first_said = history[0].get("user_input", "") if history else None
        checks.append(("summary of the earlier conversation",
                       f"across {len(listed) + 1} sessions" in summary
                       and bool(first_said) and first_said in summary,
                       short(summary, 60)))

        tour.step("done")
        table = Table(title="Nothing was lost", title_justify="left", show_edge=False,
                      pad_edge=False)
        table.add_column("check")
        table.add_column("")
        table.add_column("restored value", overflow="fold")
        for name, ok, value in checks:
            table.add_row(name, "[green]✓[/green]" if ok else "[red]✗[/red]", escape(value))
        console.print(table)
        console.print(f"Continue this conversation yourself:\n  multi-agent chat --db "
                      f"{escape(args.db)} --user {escape(args.user)}")
        return 0 if all(ok for _, ok, _ in checks) else 1
    finally:
        await runner.close()


# -- entry point ------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="A step-by-step tour of the persistent multi-agent system: database, "
        "session, four interactions with their delegations and state changes, then a real "
        "restart in a new process that shows what was restored.",
    )
    parser.add_argument("--db", help="database URL or SQLite file path (default: a fresh "
                        "temporary SQLite file, printed at the start)")
    parser.add_argument("--step", action="store_true", help="wait for Enter between steps")
    parser.add_argument("--user", default=DEFAULT_USER, help=f"user id (default {DEFAULT_USER})")
    parser.add_argument("--name", default=DEFAULT_NAME,
                        help=f"the user's name stored in user state (default {DEFAULT_NAME!r})")
    parser.add_argument("--model", help="model name (default: $MULTI_AGENT_MODEL or the "
                        "built-in offline model)")
    parser.add_argument(RESTORED_FLAG, action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--first-step", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--expect", default="{}", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.db and "://" not in args.db:
        args.db = "sqlite+aiosqlite:///" + os.path.abspath(os.path.expanduser(args.db))
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        if args.restored_part:
            return restored_main(args)
        return first_main(args)
    except KeyboardInterrupt:
        console.print("\n[dim]Interrupted.[/dim]")
        return 130
    except Exception as exc:  # one clear line instead of a traceback
        from multi_agent.errors import MultiAgentError

        if not isinstance(exc, MultiAgentError):
            raise
        print(f"demo_flow: {exc}", file=sys.stderr)
        return 2


def first_main(args: argparse.Namespace) -> int:
    if args.db is None:
        folder = tempfile.mkdtemp(prefix="multi_agent_demo_")
        args.db = f"sqlite+aiosqlite:///{os.path.join(folder, 'multi_agent_data.db')}"
    console.print(Panel(
        f"Database: [bold]{escape(args.db)}[/bold]\n"
        f"User: [bold]{escape(args.user)}[/bold] ({escape(args.name)})\n"
        + ("Press Enter between steps." if args.step else "Running straight through "
           "(--step to pause between steps)."),
        title="Multi-agent persistent storage: the tour", title_align="left", expand=False,
    ))
    console.print("[dim]Part 1 runs in this process; part 2 in a new process on the same "
                  "database.[/dim]")
    tour = Tour(step=args.step)
    expect = asyncio.run(part_one(args, tour))

    tour.step("a real restart")
    console.print(f"Process {os.getpid()} has closed the database. It now starts a new Python "
                  "process that opens the same database from scratch:")
    command = [sys.executable, os.path.abspath(__file__), RESTORED_FLAG, "--db", args.db,
               "--user", args.user, "--first-step", str(tour.number + 1),
               "--expect", json.dumps(expect)]
    if args.model:
        command += ["--model", args.model]
    if tour.step_mode:
        command.append("--step")
    console.print(f"[dim]  $ {escape(' '.join(command[:7]))} …[/dim]")
    sys.stdout.flush()
    # The child shares this terminal (or pipe): --step keeps reading Enter from it.
    return subprocess.call(command)


def restored_main(args: argparse.Namespace) -> int:
    if args.db is None:
        print("demo_flow: --restored-part needs --db", file=sys.stderr)
        return 2
    tour = Tour(step=args.step, first=args.first_step)
    tour.shown = 1  # part 1 already showed steps: pause before the first one here too
    return asyncio.run(part_two(args, tour, json.loads(args.expect)))


if __name__ == "__main__":
    sys.exit(main())
