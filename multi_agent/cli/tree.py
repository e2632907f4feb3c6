"""``multi-agent runs | branch | messages | export | import``: the run tree from the shell.

Each command opens the store, makes one library call and prints the result: a rich tree or
table for people, ``--json`` for programs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

from ..store.facts import MESSAGE_TYPES
from . import add_common

__all__ = ["head_of", "register", "render_tree"]

DEFAULT_APP = "multi_agent"

T = TypeVar("T")

RUNS_JSON_KEYS = (
    "run_id", "parent_run_id", "kind", "agent", "status", "started_at", "ended_at",
    "event_count", "on_path",
)


def _with_store(db: str, fn: Callable[[Any], Awaitable[T]]) -> T:
    """Opens the store, awaits ``fn(store)``, closes the store."""
    from ..store import DatabaseSessionService

    async def go() -> T:
        async with DatabaseSessionService(db) as store:
            return await fn(store)

    return asyncio.run(go())


async def _require_session(store: Any, args: argparse.Namespace) -> None:
    """Raises SessionNotFound unless ``args.session`` exists (reads return None otherwise)."""
    from google.adk.sessions.base_session_service import GetSessionConfig

    from ..errors import SessionNotFound

    got = await store.get_session(
        app_name=args.app, user_id=args.user, session_id=args.session,
        config=GetSessionConfig(num_recent_events=0),
    )
    if got is None:
        raise SessionNotFound(args.app, args.user, args.session)


def _when(ts: float | None) -> str:
    """Epoch seconds as local ``YYYY-MM-DD HH:MM:SS`` ("-" for none)."""
    if ts is None:
        return "-"
    return datetime.fromtimestamp(ts, tz=UTC).astimezone().strftime("%Y-%m-%d %H:%M:%S")


def _parse_time(value: str) -> float:
    """Epoch seconds or an ISO 8601 date/time (local time when it has no offset)."""
    try:
        return float(value)
    except ValueError:
        pass
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{value!r} is neither epoch seconds nor an ISO date/time (2026-05-01T14:30)"
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.astimezone()  # naive: the local time zone
    return parsed.timestamp()


def _positive(value: str) -> int:
    """argparse type: an integer of at least 1."""
    number = int(value) if value.isdigit() else 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"{value!r} is not a positive integer")
    return number


def _print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=2, ensure_ascii=False, allow_nan=False) + "\n")


# --------------------------------------------------------------------------------------------
# runs


def head_of(runs: list[Any]) -> str | None:
    """The session's head run (the one the next invocation continues from)."""
    return next((r.run_id for r in runs if r.is_head), None)


def _run_label(run: Any, head: str | None) -> Any:
    """One tree line: id, kind, agent, status, times, event count and markers."""
    from rich.text import Text

    style = "" if run.on_path else "dim"
    status_style = {"completed": "green", "running": "cyan", "failed": "red",
                    "cancelled": "yellow"}.get(run.status, "")
    label = Text(run.run_id, style=f"bold {style}".strip())
    label.append(f"  {run.kind}", style=style)
    label.append(f"  {run.agent or '-'}", style=f"magenta {style}".strip())
    label.append("  ")
    label.append(run.status, style=f"{status_style} {style}".strip())
    started, ended = _when(run.started_at), _when(run.ended_at)
    if ended[:10] == started[:10]:
        ended = ended[11:]  # same day: the time is enough
    label.append(f"  {started} → {ended}", style=style)
    label.append(f"  {run.event_count} event{'s' if run.event_count != 1 else ''}", style=style)
    if run.run_id == head:
        label.append("  ◀ head", style="bold yellow")
    if not run.on_path and run.kind != "delegation":
        label.append("  (off path: sibling branch)", style="italic dim")
    if run.error and run.status != "completed":
        label.append(f"  {run.error}", style="red dim")
    return label


def render_tree(runs: list[Any], *, title: str) -> Any:
    """A rich Tree of the runs: children under the run they continued from."""
    from rich.tree import Tree

    head = head_of(runs)
    tree = Tree(title)
    children: dict[str | None, list[Any]] = {}
    known = {r.run_id for r in runs}
    for run in runs:
        parent = run.parent_run_id if run.parent_run_id in known else None
        children.setdefault(parent, []).append(run)

    def add(node: Any, parent: str | None) -> None:
        for run in children.get(parent, []):
            add(node.add(_run_label(run, head)), run.run_id)

    add(tree, None)
    return tree


def cmd_runs(args: argparse.Namespace) -> int:
    """``multi-agent runs``: the session's run tree, or its runs as JSON."""
    async def go(store: Any) -> list[Any]:
        await _require_session(store, args)
        return list(
            await store.list_runs(app_name=args.app, user_id=args.user, session_id=args.session)
        )

    runs = _with_store(args.db, go)
    if args.json:
        _print_json([{k: getattr(r, k) for k in RUNS_JSON_KEYS} for r in runs])
        return 0
    from rich.console import Console

    console = Console()
    if not runs:
        console.print(f"Session {args.session} has no runs yet.")
        return 0
    console.print(render_tree(runs, title=f"session {args.session} (user {args.user})"))
    return 0


# --------------------------------------------------------------------------------------------
# branch


def cmd_branch(args: argparse.Namespace) -> int:
    """``multi-agent branch``: move the session's head to an earlier run."""
    result = _with_store(
        args.db,
        lambda store: store.branch(
            app_name=args.app, user_id=args.user, session_id=args.session,
            from_run_id=args.from_run,
        ),
    )
    path = " → ".join(result.runs_on_path)
    print(f"Session {args.session} now continues from run {result.head_run_id} (path: {path}).")
    return 0


# --------------------------------------------------------------------------------------------
# messages


def cmd_messages(args: argparse.Namespace) -> int:
    """``multi-agent messages``: stored messages as a table or JSON."""
    async def go(store: Any) -> list[Any]:
        if args.session is not None:
            await _require_session(store, args)
        return list(
            await store.query_messages(
                app_name=args.app, user_id=args.user, session_id=args.session,
                run_id=args.run, source=args.source, target=args.target,
                message_type=args.type, since=args.since, until=args.until, text=args.text,
                on_path_only=not args.all_branches, limit=args.limit,
            )
        )

    messages = _with_store(args.db, go)
    if args.json:
        _print_json([m.to_dict() for m in messages])
        return 0
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table(show_lines=False, title=f"{len(messages)} message(s)")
    if args.session is None:
        table.add_column("session", overflow="fold")
    for name in ("seq", "time", "run", "source → target", "type", "text"):
        table.add_column(name, overflow="fold")
    for m in messages:
        text = (m.text or "").replace("\n", " ")
        row = [
            Text(str(m.seq)), Text(_when(m.timestamp)), Text(m.run_id),
            Text(f"{m.branch or m.source} → {m.target or '-'}"), Text(m.message_type),
            Text(text if len(text) <= 200 else text[:199] + "…"),
        ]
        table.add_row(*([Text(m.session_id)] if args.session is None else []), *row)
    Console().print(table)
    return 0


# --------------------------------------------------------------------------------------------
# export / import


def cmd_export(args: argparse.Namespace) -> int:
    """``multi-agent export``: the session document to stdout or a file."""
    from ..errors import SessionNotFound

    doc = _with_store(
        args.db,
        lambda store: store.export_session(
            app_name=args.app, user_id=args.user, session_id=args.session
        ),
    )
    if doc is None:
        raise SessionNotFound(args.app, args.user, args.session)
    text = json.dumps(doc, indent=2, ensure_ascii=False, allow_nan=False) + "\n"
    if args.output in (None, "-"):
        sys.stdout.write(text)
    else:
        try:
            with open(args.output, "w", encoding="utf-8") as fh:
                fh.write(text)
        except OSError as exc:
            print(f"multi-agent: cannot write {args.output}: {exc.strerror}", file=sys.stderr)
            return 2
        print(f"Exported session {args.session} ({len(doc['runs'])} runs, "
              f"{len(doc['events'])} events) to {args.output}.", file=sys.stderr)
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    """``multi-agent import``: store a session document from a file or stdin.

    The file is read incrementally (bounded memory whatever its size); anything wrong with
    it is one line on stderr and a failure exit code, never a traceback.
    """
    import os

    from ..errors import SessionAlreadyExists

    if args.file == "-":
        source: Any = sys.stdin.buffer
    else:
        try:
            if os.path.isdir(args.file):
                raise IsADirectoryError(21, "Is a directory")
            source = open(args.file, "rb")  # noqa: SIM115 (closed below)
        except OSError as exc:
            print(f"multi-agent: cannot read {args.file}: {exc.strerror}", file=sys.stderr)
            return 2
    try:
        result = _with_store(
            args.db,
            lambda store: store.import_session_file(
                source, app_name=args.app, user_id=args.user, session_id=args.session
            ),
        )
    except SessionAlreadyExists as exc:
        print(f"multi-agent: {str(exc).split('. ')[0]}. Nothing was imported; choose another "
              "id with --session NEW (or --user), or delete the existing session first.",
              file=sys.stderr)
        return 2
    finally:
        if source is not sys.stdin.buffer:
            source.close()
    print(f"Imported session {result.session_id} of user {result.user_id} in app "
          f"{result.app_name}: {result.runs} runs, {result.events} events.")
    return 0


# --------------------------------------------------------------------------------------------
# registration


def _add_app(parser: argparse.ArgumentParser, default: str | None = DEFAULT_APP) -> None:
    parser.add_argument(
        "--app", default=default,
        help=f"app name (default: {default})" if default else
        "store under this app name (default: the one in the file)",
    )


def register(subparsers: Any) -> None:
    """Adds the runs, branch, messages, export and import commands."""
    fmt = argparse.RawDescriptionHelpFormatter
    p = subparsers.add_parser(
        "runs", help="draw a session's run tree (branches, sub-runs, the head)",
        description="Draws the session's runs as a tree: each run under the run it continued "
        "from, delegation sub-runs under their run, sibling branches dimmed, the head marked.",
        epilog="Example:\n  multi-agent runs --user ann --session s1\n"
        "  multi-agent runs --user ann --session s1 --json", formatter_class=fmt,
    )
    add_common(p)
    _add_app(p)
    p.add_argument("--session", required=True, help="session id")
    p.add_argument("--json", action="store_true", help="print the runs as a JSON list")
    p.set_defaults(func=cmd_runs)

    p = subparsers.add_parser(
        "branch", help="continue a session from the end of an earlier run",
        description="Moves the session's head to RUN_ID: the next turn sees the history and "
        "session state as they were when that run ended. Later runs stay stored as a sibling "
        "branch; branch to the last of them to switch back. user:/app: state is shared, not "
        "branched.",
        epilog="Example:\n  multi-agent branch --user ann --session s1 --from e-1a2b3c",
        formatter_class=fmt,
    )
    add_common(p)
    _add_app(p)
    p.add_argument("--session", required=True, help="session id")
    p.add_argument("--from", dest="from_run", required=True, metavar="RUN_ID",
                   help="the run to continue from (see `multi-agent runs`)")
    p.set_defaults(func=cmd_branch)

    p = subparsers.add_parser(
        "messages", help="who said what to whom: query stored messages",
        description="Lists stored messages (oldest first) matching every filter given, across "
        "all the user's sessions unless --session is given.",
        epilog="Example:\n  multi-agent messages --user ann --source coordinator --target worker\n"
        "  multi-agent messages --user ann --session s1 --type human --since 2026-05-01 --json",
        formatter_class=fmt,
    )
    add_common(p)
    _add_app(p)
    p.add_argument("--session", help="only this session")
    p.add_argument("--run", help="only this run or delegation sub-run")
    p.add_argument("--source", help="author: user or an agent name")
    p.add_argument("--target", help="addressee: an agent, user or a tool name")
    p.add_argument("--type", choices=MESSAGE_TYPES, help="message type")
    p.add_argument("--since", type=_parse_time, help="from this time (ISO or epoch, inclusive)")
    p.add_argument("--until", type=_parse_time, help="before this time (ISO or epoch)")
    p.add_argument("--text", help="text contains (case-insensitive)")
    p.add_argument("--all-branches", action="store_true",
                   help="include messages of sibling branches, not only the current history")
    p.add_argument("--limit", type=_positive, default=100, help="at most N messages (100)")
    p.add_argument("--json", action="store_true", help="print the messages as a JSON list")
    p.set_defaults(func=cmd_messages)

    p = subparsers.add_parser(
        "export", help="write a session with its run tree as JSON",
        description="Writes the session, its runs and every event (all branches) as one JSON "
        "document. user:/app: state is not included.",
        epilog="Example:\n  multi-agent export --user ann --session s1 -o s1.json",
        formatter_class=fmt,
    )
    add_common(p)
    _add_app(p)
    p.add_argument("--session", required=True, help="session id")
    p.add_argument("-o", "--output", help="file to write (default: stdout)")
    p.set_defaults(func=cmd_export)

    p = subparsers.add_parser(
        "import", help="load a session written by `multi-agent export`",
        description="Stores an exported session (same or another database), optionally "
        "under another user or session id. Refuses an id that exists; writes all or nothing.",
        epilog="Example:\n  multi-agent import s1.json --user bob --session s1-copy",
        formatter_class=fmt,
    )
    add_common(p, user=False)
    _add_app(p, default=None)
    p.add_argument("file", help="the JSON file (- for stdin)")
    p.add_argument("--user", help="store it for this user (default: the one in the file)")
    p.add_argument("--session", help="store it under this id (default: the one in the file)")
    p.set_defaults(func=cmd_import)
