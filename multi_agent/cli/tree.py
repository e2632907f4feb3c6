"""``multi-agent runs | branch | messages | export | import``: the run tree from the shell.

Each command opens the store, makes one library call and prints the result: a rich tree or
table for people, ``--json`` for programs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import sys
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, TypeVar

from ..defaults import APP_NAME
from ..store.facts import MESSAGE_TYPES
from ..store.messages import MAX_LIMIT
from . import add_common, fail, whole_number

__all__ = ["head_of", "register", "render_tree"]

DEFAULT_APP = APP_NAME

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
    """Epoch seconds as local ``YYYY-MM-DD HH:MM:SS`` ("-" for none; ``? (1e+300)`` for a
    time no date can hold: see :func:`multi_agent.cli.inspect.fmt_time`)."""
    from .inspect import fmt_time

    return fmt_time(ts)


def _parse_time(value: str) -> float:
    """Epoch seconds or an ISO 8601 date/time (local time when it has no offset)."""
    try:
        number = float(value)
    except ValueError:
        pass
    else:
        if not math.isfinite(number):  # nan, inf, 1e400: float() takes them, no time is
            raise argparse.ArgumentTypeError(
                f"{value!r} is not a time: give epoch seconds or an ISO date/time "
                "(2026-05-01T14:30)"
            )
        return number
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


# argparse type of ``messages --limit``: a number too large is a usage error, as 0 is.
_limit = whole_number(MAX_LIMIT)


def _print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=2, ensure_ascii=False, allow_nan=False) + "\n")


# --------------------------------------------------------------------------------------------
# runs


def head_of(runs: list[Any]) -> str | None:
    """The session's head run (the one the next invocation continues from)."""
    return next((r.run_id for r in runs if r.is_head), None)


SUB_RUN_KINDS = ("delegation", "agent_tool")
_STATUS_STYLE = {"completed": "green", "running": "cyan", "failed": "red",
                 "cancelled": "yellow"}


def _run_label(run: Any, head: str | None, *, day: str | None = None) -> Any:
    """One run's text after the graph: id, head mark, status (unless completed), start, the
    person's message, agent, event count, error.

    The most useful parts come first: a line too long for the screen is cut at its end.
    ``day`` is the date of the line above: the start shows its date only when it differs.
    """
    from rich.text import Text

    style = "" if run.on_path else "dim"
    label = Text(run.run_id, style=f"bold {style}".strip())
    if run.run_id == head:
        label.append(" ◀ head", style="bold yellow")
    if run.status != "completed":
        label.append("  ")
        label.append(run.status, style=f"{_STATUS_STYLE.get(run.status, '')} {style}".strip())
    sub = run.kind in SUB_RUN_KINDS
    if not sub:  # a sub-run starts within its run's minute
        started = _when(run.started_at)
        if not started[:1].isdigit():  # "?": shown whole, not cut like a date
            label.append(f"  {started}", style=style)
        else:
            label.append("  " + (started[11:16] if started[:10] == day else started[:16]),
                         style=style)
    message = getattr(run, "message", None)
    if message:
        label.append(f"  “{' '.join(message.split())}”", style=f"italic {style}".strip())
    if run.kind != "invocation":
        label.append(f"  {run.kind}", style=style)
    if not (sub and run.agent and run.run_id.startswith(f"{run.agent}@")):
        label.append(f"  {run.agent or '-'}", style=f"magenta {style}".strip())
    if run.kind != "agent_tool":  # an AgentTool's agent ran in a session of its own
        count = run.event_count
        label.append(f"  {count} event{'s' if count != 1 else ''}", style=style)
    if run.error and run.status != "completed":
        label.append(f"  {' '.join(run.error.split())}", style=f"red {style}".strip())
    return label


class RunGraph:
    """A session's runs drawn like ``git log --graph``: a chain of runs is a flat list.

    Each top-level run is one line (``●`` on the current path, ``○`` off it), its sub-runs
    (delegations, AgentTool calls) one line each under it (``↪``). The path from the first run
    to the head stays in the left column; where another branch continued from a run, a fork
    line (``├─╮``) leads to that branch, drawn one column to the right, and then the column
    goes on. Lines are cut to the screen's width, never wrapped.

    With ``last``, only the last ``last`` top-level runs in drawing order (and the head's) are
    drawn; each left-out stretch is one ``⋮`` line saying how many runs it holds, the first
    one followed by ``more`` (how to see them).
    """

    def __init__(self, runs: list[Any], *, title: str, last: int | None = None,
                 more: str = "") -> None:
        self.runs = list(runs)
        self.title = title
        self.last = last
        self.more = more

    def groups(self) -> list[tuple[str, list[Any]]]:
        """The drawing in order: per top-level run, its id and its rich Texts (the fork line
        leading to it, its own line, its sub-runs' lines)."""
        from rich.text import Text

        runs = self.runs
        head = head_of(runs)
        by_id = {r.run_id: r for r in runs}

        def top_of(run_id: str | None) -> str | None:
            seen: set[str] = set()
            while run_id in by_id and by_id[run_id].kind in SUB_RUN_KINDS and run_id not in seen:
                seen.add(run_id)
                run_id = by_id[run_id].parent_run_id
            return run_id if run_id in by_id else None

        children: dict[str | None, list[Any]] = {}
        subs: dict[str, list[Any]] = {}
        for run in runs:  # list_runs gives them in start order
            if run.kind in SUB_RUN_KINDS and run.parent_run_id in by_id:
                subs.setdefault(run.parent_run_id, []).append(run)
            else:
                children.setdefault(top_of(run.parent_run_id), []).append(run)

        def split(kids: list[Any]) -> tuple[Any, list[Any]]:
            """The child that continues the column (the one on the path, else the newest)
            and the others, which branch off to the right."""
            main = next((k for k in kids if k.on_path), kids[-1])
            return main, [k for k in kids if k is not main]

        groups: list[tuple[str, list[Any]]] = []
        # The title shows the first day; a line shows its date only when the day changed.
        day: list[str | None] = [_when(min(r.started_at for r in runs))[:10] if runs else None]
        visited: set[str] = set()  # a damaged tree with a parent cycle is still drawn once

        def line(prefix: str, mark: str, run: Any, mark_style: str) -> Any:
            text = Text(prefix, style="blue")
            text.append(mark, style=mark_style)
            text.append(" ")
            text.append_text(_run_label(run, head, day=day[0]))
            day[0] = _when(run.started_at)[:10]
            return text

        def add_subs(group: list[Any], prefix: str, run_id: str, depth: int) -> None:
            for sub in subs.get(run_id, []):
                if sub.run_id in visited:
                    continue
                visited.add(sub.run_id)
                group.append(line(prefix + "  " * depth, "↪", sub, "blue"))
                add_subs(group, prefix, sub.run_id, depth + 1)

        def chain(run: Any | None, prefix: str, fork: Any | None) -> None:
            while run is not None and run.run_id not in visited:
                visited.add(run.run_id)
                kids = children.get(run.run_id, [])
                group = [fork] if fork is not None else []
                fork = None
                group.append(line(prefix, "●" if run.on_path else "○", run,
                                  "bold" if run.on_path else "dim"))
                add_subs(group, prefix + ("│ " if kids else "  "), run.run_id, 0)
                groups.append((run.run_id, group))
                if not kids:
                    return
                main, sides = split(kids)
                for side in sides:
                    chain(side, prefix + "│ ", Text(prefix + "├─╮", style="blue"))
                run = main

        roots = children.get(None, [])
        if roots:
            main, sides = split(roots)
            for root in sides:  # runs that continue from no run (rare): chains of their own
                chain(root, "", None)
                groups[-1][1].append(Text(""))
            chain(main, "", None)
        for run in runs:  # unreachable from a first run (a damaged parent cycle): still shown
            if run.kind not in SUB_RUN_KINDS and run.run_id not in visited:
                if groups:
                    groups[-1][1].append(Text(""))
                chain(run, "", None)
        return groups

    def lines(self) -> list[Any]:
        """Every line (rich Texts, not yet cut to a width): title, drawing, summary."""
        from rich.text import Text

        groups = self.groups()
        tops = [r for r in self.runs if r.kind not in SUB_RUN_KINDS]
        title = Text(self.title, style="bold")
        if self.runs:
            title.append(f"  {_when(min(r.started_at for r in self.runs))[:10]}", style="dim")
        out: list[Any] = [title]
        keep = set(range(len(groups)))
        if self.last is not None and len(groups) > self.last:
            keep = set(range(len(groups) - self.last, len(groups)))
            head = head_of(self.runs)
            # The head stays in view, also when the newest runs are on another branch.
            keep |= {i for i, (run_id, _) in enumerate(groups) if run_id == head}
        hint = self.more
        i = 0
        while i < len(groups):
            if i in keep:
                out += groups[i][1]
                i += 1
                continue
            start = i
            while i < len(groups) and i not in keep:
                i += 1
            hidden = i - start
            earlier = "earlier " if start == 0 else ""
            out.append(Text(f"⋮ {hidden} {earlier}run{'s' if hidden != 1 else ''} not shown"
                            + (f": {hint}" if hint else ""), style="italic"))
            hint = ""
        statuses: dict[str, int] = {}
        for run in tops:
            statuses[run.status] = statuses.get(run.status, 0) + 1
        order = ("completed", "running", "failed", "cancelled")
        counts = ", ".join(f"{statuses.pop(s)} {s}" for s in order if s in statuses)
        counts += "".join(f", {n} {s}" for s, n in sorted(statuses.items()))
        sub_count = len(self.runs) - len(tops)
        out.append(Text(
            f"{len(tops)} run{'s' if len(tops) != 1 else ''}" + (f" ({counts})" if counts else "")
            + (f", {sub_count} sub-run{'s' if sub_count != 1 else ''}" if sub_count else "")
            + " · ● current path  ○ other branch  ↪ sub-run", style="dim",
        ))
        return out

    def __rich_console__(self, console: Any, options: Any) -> Any:
        width = options.max_width
        for text in self.lines():
            text.no_wrap = True
            text.overflow = "ellipsis"
            text.truncate(width, overflow="ellipsis")
            text.end = "\n"
            yield text


def render_tree(runs: list[Any], *, title: str, last: int | None = None,
                more: str = "") -> Any:
    """The runs as a printable graph (:class:`RunGraph`): a chain of runs is a flat list,
    indented only where the history forks, sub-runs under their run, lines cut to the
    screen's width. ``last``: only the last N top-level runs, after a line saying how many
    are not shown and ``more`` (how to see them)."""
    return RunGraph(runs, title=title, last=last, more=more)


async def _latest_session(store: Any, args: argparse.Namespace) -> None:
    """Without ``--session``: the user's most recently updated session (as ``state`` does).

    Raises:
        MultiAgentError: the user has no session in the app.
    """
    if args.session is not None:
        return
    from ..errors import MultiAgentError
    from .inspect import latest_session_id

    latest = await latest_session_id(store, args.app, args.user)
    if latest is None:
        raise MultiAgentError(
            f"User {args.user!r} has no sessions in app {args.app!r}. Check --user, --app and "
            "--db (multi-agent sessions --user ID lists a user's sessions)."
        )
    args.session = latest


def cmd_runs(args: argparse.Namespace) -> int:
    """``multi-agent runs``: the session's run tree, or its runs as JSON."""
    from . import EXIT_FAILURE
    from .inspect import missing_database

    if missing_database(args.db):
        return EXIT_FAILURE

    async def go(store: Any) -> list[Any]:
        await _latest_session(store, args)
        await _require_session(store, args)
        return list(
            await store.list_runs(app_name=args.app, user_id=args.user, session_id=args.session)
        )

    runs = _with_store(args.db, go)
    if args.json:
        _print_json([{k: getattr(r, k) for k in RUNS_JSON_KEYS} for r in runs])
        return 0
    from .render import CliConsole

    console = CliConsole()  # (control characters in stored text shown, not sent)
    if not runs:
        console.print(f"Session {args.session} has no runs yet.")
        return 0
    console.print(render_tree(
        runs, title=f"session {args.session} (user {args.user})", last=args.last,
        more="run without --last to see every run",
    ))
    return 0


# --------------------------------------------------------------------------------------------
# branch


def cmd_branch(args: argparse.Namespace) -> int:
    """``multi-agent branch``: move the session's head to an earlier run."""
    from . import EXIT_FAILURE
    from .inspect import missing_database

    if missing_database(args.db):
        return EXIT_FAILURE

    async def go(store: Any) -> Any:
        await _latest_session(store, args)
        return await store.branch(
            app_name=args.app, user_id=args.user, session_id=args.session,
            from_run_id=args.from_run,
        )

    result = _with_store(args.db, go)
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
    from rich.table import Table
    from rich.text import Text

    from .render import CliConsole

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
    CliConsole().print(table)
    return 0


# --------------------------------------------------------------------------------------------
# export / import


def cmd_export(args: argparse.Namespace) -> int:
    """``multi-agent export``: the session document to stdout or a file."""
    from ..errors import SessionNotFound
    from . import EXIT_FAILURE, EXIT_USAGE
    from .files import is_database_file, write_replacing
    from .inspect import missing_database

    to_file = args.output not in (None, "-")
    if to_file and is_database_file(args.output, args.db):
        print(f"multi-agent export: -o {args.output} is a file of the database it exports "
              "from (--db): nothing was written; give another file name.", file=sys.stderr)
        return EXIT_USAGE
    if missing_database(args.db):
        return EXIT_FAILURE

    async def go(store: Any) -> Any:
        await _latest_session(store, args)
        return await store.export_session(
            app_name=args.app, user_id=args.user, session_id=args.session
        )

    doc = _with_store(args.db, go)
    if doc is None:
        raise SessionNotFound(args.app, args.user, args.session)
    text = json.dumps(doc, indent=2, ensure_ascii=False, allow_nan=False) + "\n"
    if not to_file:
        sys.stdout.write(text)
    else:
        try:  # all or nothing: a full disk leaves an existing file as it was
            write_replacing(args.output, text.encode("utf-8"))
        except OSError as exc:
            return fail(f"cannot write {args.output}: {exc.strerror or exc}; nothing was "
                        "written (an existing file is as it was).")
        print(f"Exported session {args.session} ({len(doc['runs'])} runs, "
              f"{len(doc['events'])} events) to {args.output}.", file=sys.stderr)
    return 0


class _CountedReader:
    """A binary file that reports how far it has been read to a progress bar (the import
    reads a file incrementally, at most twice)."""

    def __init__(self, fh: Any, bar: Any) -> None:
        self._fh = fh
        self._bar = bar
        self.name = getattr(fh, "name", "<file>")

    def read(self, n: int = -1) -> bytes:
        data = self._fh.read(n)
        self._bar.update(self._fh.tell())
        return data

    def seek(self, offset: int, whence: int = 0) -> int:
        return int(self._fh.seek(offset, whence))

    def tell(self) -> int:
        return int(self._fh.tell())

    def seekable(self) -> bool:
        return True

    def close(self) -> None:
        self._fh.close()


def cmd_import_adk(args: argparse.Namespace) -> int:
    """``multi-agent import-adk``: ADK's sessions copied in (``store/adk_import.py``)."""
    from . import EXIT_FAILURE, normalise_db
    from .inspect import missing_database

    source = None if args.source is None else normalise_db(args.source)
    if missing_database(source or args.db):
        return EXIT_FAILURE

    async def go(store: Any) -> Any:
        from ..store.adk_import import import_adk_sessions

        return await import_adk_sessions(store, source)

    report = _with_store(args.db, go)
    print(f"Copied {report.sessions} session{'s' if report.sessions != 1 else ''} "
          f"({report.events} events) from ADK's tables; {report.skipped} already in the store "
          "were left as they are.")
    if report.differing:
        print("These values differ from ADK's tables (two sessions wrote them; the store keeps "
              "the last append's): " + ", ".join(report.differing), file=sys.stderr)
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    """``multi-agent import``: store a session document from a file or stdin.

    The file is read incrementally (bounded memory whatever its size); anything wrong with
    it is one line on stderr and a failure exit code, never a traceback.
    """
    import os

    from ..errors import SessionAlreadyExists

    from_stdin = args.file == "-"
    if from_stdin:
        if sys.stdin is None:  # started with stdin closed (<&-)
            return fail("stdin is closed, so there is nothing to import: name the FILE, or "
                        "pipe the document in (multi-agent import - < FILE).")
        source: Any = sys.stdin.buffer
    else:
        try:
            if os.path.isdir(args.file):
                raise IsADirectoryError(21, "Is a directory")
            source = open(args.file, "rb")  # noqa: SIM115 (closed below)
        except OSError as exc:
            return fail(f"cannot read {args.file}: {exc.strerror}")
    from .inspect import new_sqlite_file, remove_if_empty
    from .render import progress

    try:
        size = None if from_stdin else os.fstat(source.fileno()).st_size
    except (OSError, AttributeError, ValueError):
        size = None
    new_file = new_sqlite_file(args.db)  # a refused import leaves no database behind
    try:
        with progress("Importing", total=size or None, unit="bytes") as bar:
            counted = _CountedReader(source, bar) if size else source
            result = _with_store(
                args.db,
                lambda store: store.import_session_file(
                    counted, app_name=args.app, user_id=args.user, session_id=args.session
                ),
            )
    except BaseException as exc:
        if new_file is not None and os.path.exists(new_file):
            remove_if_empty(new_file)
        if isinstance(exc, SessionAlreadyExists):
            return fail(f"{str(exc).split('. ')[0]}. Nothing was imported; choose another id "
                        "with --session NEW (or --user), or delete the existing session "
                        "first.")
        raise
    finally:
        if not from_stdin:
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
        description="Draws the session's runs like `git log --graph`: one line per run, a "
        "conversation as a flat list, a fork where a branch continued from an earlier run "
        "(that branch one column to the right), delegation sub-runs under their run, the "
        "head marked. Lines are cut to the terminal's width.",
        epilog="Example:\n  multi-agent runs --user ann --session s1\n"
        "  multi-agent runs --user ann --last 20\n"
        "  multi-agent runs --user ann --session s1 --json", formatter_class=fmt,
    )
    add_common(p)
    _add_app(p)
    p.add_argument("--session", help="session id (default: the user's most recent session)")
    p.add_argument("--last", type=_positive, metavar="N",
                   help="draw only the last N runs (default: all)")
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
    p.add_argument("--session", help="session id (default: the user's most recent session)")
    p.add_argument("--from", dest="from_run", required=True, metavar="RUN_ID",
                   help="the run to continue from (see `multi-agent runs`)")
    p.set_defaults(func=cmd_branch)

    p = subparsers.add_parser(
        "messages", help="who said what to whom: query stored messages",
        description="Lists stored messages (oldest first) matching every filter given, across "
        "all the user's sessions unless --session is given.",
        epilog="Example:\n  multi-agent messages --user ann --source manager --target funny_nerd\n"
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
    p.add_argument("--limit", type=_limit, default=100, metavar="N",
                   help=f"at most N messages (default 100; at most {MAX_LIMIT})")
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
    p.add_argument("--session", help="session id (default: the user's most recent session)")
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

    p = subparsers.add_parser(
        "import-adk", help="copy in the sessions ADK's own session service wrote",
        description="Copies the sessions, events and app:/user: state that ADK's "
        "DatabaseSessionService or SqliteSessionService (adk web's .adk/session.db) wrote "
        "into the store: from --from, or from --db itself (ADK's tables beside ours). ADK's "
        "tables are only read; sessions already in the store are skipped, so it can be run "
        "again. adk web's own file into the store's: multi-agent import-adk --from "
        "agents/.adk/session.db --db multi_agent_data.db",
        epilog="Example:\n  multi-agent import-adk   # ADK's tables in the database of --db",
        formatter_class=fmt,
    )
    add_common(p, user=False)
    p.add_argument("--from", dest="source", help="the database ADK wrote, URL or file path "
                   "(default: --db)")
    p.set_defaults(func=cmd_import_adk)
