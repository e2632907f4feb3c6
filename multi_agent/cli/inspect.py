"""``multi-agent sessions | state | delete | memory reindex``: looking inside, and tidying up."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from datetime import UTC, datetime
from typing import Any

from ..defaults import APP_NAME
from ..store.pages import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE
from . import EXIT_FAILURE, EXIT_USAGE, add_common, confirm, fail, is_terminal, whole_number


_page_size = whole_number(MAX_PAGE_SIZE)


def register(sub: argparse._SubParsersAction) -> None:
    """Adds ``sessions``, ``state``, ``delete`` and ``memory``."""
    p = sub.add_parser(
        "sessions",
        help="list a user's sessions, most recent last",
        description="List a user's sessions (no events are loaded), oldest update first: a "
        "table, or JSON with --json. With --page-size N: one page of N sessions, newest "
        "first, and the command that shows the next page (JSON: {\"sessions\": [...], "
        "\"next_page_token\": ...}); a page costs the same however many sessions there are. "
        "--all-users pages through every user's sessions of the app.",
        epilog="Examples:\n  multi-agent sessions --user ann\n"
        "  multi-agent sessions --user ann --json\n"
        "  multi-agent sessions --user ann --page-size 20\n"
        "  multi-agent sessions --all-users --page-size 50",
    )
    add_common(p)
    p.add_argument("--app", default=APP_NAME, help="app name (default: multi_agent)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--page-size", type=_page_size, metavar="N",
                   help=f"one page of N sessions (1 to {MAX_PAGE_SIZE}), newest first")
    p.add_argument("--page-token", metavar="TOKEN",
                   help="the next page, from the token the previous page printed")
    p.add_argument("--all-users", action="store_true",
                   help="every user's sessions of the app (pages; with --page-size)")
    p.set_defaults(func=cmd_sessions)

    p = sub.add_parser(
        "state",
        help="show the merged app/user/session state",
        description="Show the state a session sees: app:, user: and session keys merged, as "
        "a tree by scope with one line per key (--key KEY shows one value in full; --json "
        "prints everything as JSON). Without --session, the user's most recent session (or "
        "only user and app state if there is none).",
        epilog="Examples:\n  multi-agent state --user ann\n"
        "  multi-agent state --user ann --key user:preferences\n"
        "  multi-agent state --user ann --json",
    )
    add_common(p)
    p.add_argument("--app", default=APP_NAME, help="app name (default: multi_agent)")
    p.add_argument("--session", help="session id (default: the most recent one)")
    p.add_argument("--key", help="show only this key (e.g. user:preferences), in full")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_state)

    p = sub.add_parser(
        "delete",
        help="delete a session (its events, runs and memory)",
        description="Deletes one session with everything stored for it: events, runs and "
        "what long memory remembered of it. user: and app: state stay (they belong to the "
        "user and the app, not to one session). Asks first on a terminal; --yes does not "
        "ask, and is needed when stdin is not a terminal.",
        epilog="Example:\n  multi-agent delete --user ann --session s1 --yes",
    )
    add_common(p)
    p.add_argument("--app", default=APP_NAME, help="app name (default: multi_agent)")
    p.add_argument("--session", required=True, help="the session id (see multi-agent sessions)")
    p.add_argument("-y", "--yes", action="store_true", help="delete without asking")
    p.set_defaults(func=cmd_delete)

    p = sub.add_parser(
        "memory",
        help="maintain long memory (reindex)",
        description="Long memory: what the person and the agents said, searchable across "
        "sessions (see the README's \"Long memory\").",
        epilog="Example:\n  multi-agent memory reindex --user ann",
    )
    tasks = p.add_subparsers(dest="memory_command", metavar="TASK", required=True)
    r = tasks.add_parser(
        "reindex",
        help="index every stored message in long memory, and embed them for semantic search",
        description="Adds every stored session of the user (or of every user) to long memory: "
        "messages the chat has not indexed (sessions imported or written by another program, "
        "a turn whose indexing failed) become searchable. Then, when semantic search is "
        "installed, every memory without a sentence embedding gets one (about 10 ms each; a "
        "progress bar on a terminal). Safe to run any time; a second run finds nothing to do.",
        epilog="Examples:\n  multi-agent memory reindex --user ann\n"
        "  multi-agent memory reindex --all-users --no-embed",
    )
    add_common(r)
    r.add_argument("--app", default=APP_NAME, help="app name (default: multi_agent)")
    r.add_argument("--all-users", action="store_true", help="every user of the app")
    r.add_argument("--no-embed", action="store_true",
                   help="full-text index only (no sentence embeddings)")
    r.set_defaults(func=cmd_memory_reindex)


def sqlite_path(url: str) -> str | None:
    """The path of the SQLite file ``url`` names, else None (not SQLite, in memory, a
    ``file:`` URI, or a malformed URL: the store explains that one)."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except ArgumentError:
        return None
    path = parsed.database
    if parsed.get_backend_name() != "sqlite" or not path or path == ":memory:" or \
            path.startswith("file:"):
        return None
    return path


def new_sqlite_file(url: str) -> str | None:
    """The path of the SQLite file ``url`` names if no file is there yet, else None."""
    path = sqlite_path(url)
    return None if path is None or os.path.exists(path) else path


def remove_if_empty(path: str) -> None:
    """Removes the SQLite database at ``path`` (with its -wal, -shm, -journal) if it holds no
    session: what a command that failed made of a file that was not there before (a refused
    import must not leave a database behind). Under the write lock, so that no other process
    can store a session in it meanwhile; one that has it open finds it deleted at its next
    write (the store checks the file before each commit) and stores nothing there."""
    import sqlite3

    try:
        conn = sqlite3.connect(path, timeout=2, isolation_level=None)
    except sqlite3.Error:
        return
    try:
        conn.execute("BEGIN IMMEDIATE")
        tables = {row[0] for row in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'")}
        if "ma_sessions" in tables and conn.execute(
                "SELECT 1 FROM ma_sessions LIMIT 1").fetchone() is not None:
            return
        if any(not t.startswith(("ma_", "sqlite_")) for t in tables):
            return  # someone else's tables: not ours to remove
        for suffix in ("", "-wal", "-shm", "-journal"):
            try:
                os.unlink(path + suffix)
            except FileNotFoundError:
                pass
    except (sqlite3.Error, OSError):
        return  # best effort: the failure itself is what the user is told about
    finally:
        conn.close()


def missing_database(url: str) -> bool:
    """True (after saying so on stderr) when ``url`` is a SQLite file that does not exist.

    Looking inside must not create an empty database, e.g. when run in the wrong directory.
    """
    path = new_sqlite_file(url)
    if path is None:
        return False
    fail(f"No database at {os.path.abspath(path)}: nothing is stored there yet. Pass --db (or "
         "set MULTI_AGENT_DB) to the file multi-agent chat used, or run multi-agent chat here "
         "first.")
    return True


def fmt_time(ts: float | None) -> str:
    """Epoch seconds as a local ``YYYY-MM-DD HH:MM:SS`` ("-" for none).

    Never raises: a stored time no date can hold (``1e300``, ``-1e12``, NaN: an old database
    may have them) is shown as ``? (1e+300)``, so one odd row cannot stop a listing.
    """
    if ts is None:
        return "-"
    try:
        return datetime.fromtimestamp(ts, tz=UTC).astimezone().strftime("%Y-%m-%d %H:%M:%S")
    except (OverflowError, ValueError, OSError, TypeError):
        return f"? ({ts:g})" if isinstance(ts, int | float) else f"? ({ts!r})"


def _interactions(state: dict[str, Any]) -> int:
    meta = state.get("session_metadata") or {}
    count = meta.get("total_interactions", 0) if isinstance(meta, dict) else 0
    return count if isinstance(count, int) else 0


def _summary(s: Any, *, with_user: bool = False) -> dict[str, Any]:
    row = {
        "id": s.id,
        "last_update_time": s.last_update_time,
        "last_update": fmt_time(s.last_update_time),
        "interactions": _interactions(s.state),
    }
    if with_user:
        row["user_id"] = s.user_id
    return row


async def session_summaries(store: Any, app: str, user: str) -> list[dict[str, Any]]:
    """The user's sessions as plain dicts, oldest update first."""
    listed = await store.list_sessions(app_name=app, user_id=user)
    return [_summary(s) for s in listed.sessions]


async def latest_session_id(store: Any, app: str, user: str) -> str | None:
    """The id of the user's most recently updated session (None when there is none): one
    page of one session, whatever the number of sessions."""
    page = await store.list_sessions_page(app_name=app, user_id=user, page_size=1)
    return page.sessions[0].id if page.sessions else None


def _print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True,
                                default=str) + "\n")


def cmd_sessions(args: argparse.Namespace) -> int:
    from ..store import DatabaseSessionService
    from . import render

    if missing_database(args.db):
        return EXIT_FAILURE

    if args.page_size is not None or args.page_token is not None or args.all_users:
        return _sessions_page(args)

    async def run() -> list[dict[str, Any]]:
        async with DatabaseSessionService(args.db) as store:
            return await session_summaries(store, args.app, args.user)

    rows = asyncio.run(run())
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        print(f"No sessions for user {args.user!r} in app {args.app!r}.")
        return 0
    render.show(render.console(), render.sessions_table(rows, title=f"Sessions of {args.user}"))
    return 0


def _sessions_page(args: argparse.Namespace) -> int:
    """``sessions --page-size/--page-token/--all-users``: one page, newest first, and how to
    get the next one."""
    from ..store import DatabaseSessionService
    from . import render

    user = None if args.all_users else args.user
    size = args.page_size or DEFAULT_PAGE_SIZE

    async def run() -> tuple[list[dict[str, Any]], str | None]:
        async with DatabaseSessionService(args.db) as store:
            page = await store.list_sessions_page(
                app_name=args.app, user_id=user, page_size=size, page_token=args.page_token)
        return [_summary(s, with_user=user is None) for s in page.sessions], \
            page.next_page_token

    rows, token = asyncio.run(run())
    if args.json:
        print(json.dumps({"sessions": rows, "next_page_token": token}, indent=2))
        return 0
    whose = f"app {args.app!r}" if user is None else f"user {user!r} in app {args.app!r}"
    if not rows:
        print(f"No {'more ' if args.page_token else ''}sessions for {whose}.")
        return 0
    title = (f"Sessions of every user of {args.app}" if user is None else
             f"Sessions of {user}") + ", newest first"
    if user is None:
        table = render._table(title, ("user", render.ID), ("session id", render.ID),
                              ("last update", {"no_wrap": True}),
                              ("interactions", {"justify": "right"}))
        for row in rows:
            table.add_row(str(row["user_id"]), str(row["id"]), str(row["last_update"]),
                          str(row["interactions"]))
    else:
        table = render.sessions_table(rows, title=title)
    render.show(render.console(), table)
    if token:
        who = "--all-users" if user is None else f"--user {user}"
        print(f"Next page: multi-agent sessions {who} --app {args.app} --page-size {size} "
              f"--page-token {token}")
    return 0


def cmd_state(args: argparse.Namespace) -> int:
    from ..errors import SessionNotFound
    from ..store import DatabaseSessionService
    from . import render

    if missing_database(args.db):
        return EXIT_FAILURE

    async def run() -> tuple[str | None, dict[str, Any]]:
        async with DatabaseSessionService(args.db) as store:
            session_id = args.session
            if session_id is None:
                session_id = await latest_session_id(store, args.app, args.user)
                if session_id is None:
                    user = await store.get_user_state(app_name=args.app, user_id=args.user)
                    app = await store.get_app_state(app_name=args.app)
                    return None, {
                        **{f"app:{k}": v for k, v in app.items()},
                        **{f"user:{k}": v for k, v in user.items()},
                    }
            session = await store.get_session(
                app_name=args.app, user_id=args.user, session_id=session_id,
                config=_no_events(),
            )
            if session is None:
                raise SessionNotFound(args.app, args.user, session_id)
            return session_id, dict(session.state)

    session_id, state = asyncio.run(run())
    if args.key is not None:
        if args.key not in state:
            keys = ", ".join(sorted(state)) or "none"
            return fail(f"No state key {args.key!r} (the keys: {keys}).")
        if args.json:
            _print_json(state[args.key])
        else:
            render.show(render.console(), render.value_tree(args.key, state[args.key]))
        return 0
    if args.json:
        _print_json(state)
        return 0
    title = (f"State of session {session_id} (user {args.user})" if session_id else
             f"State of user {args.user} (no sessions yet)")
    render.show(render.console(), render.state_tree(state, title=title))
    return 0


def cmd_delete(args: argparse.Namespace) -> int:
    from ..errors import SessionNotFound
    from ..store import DatabaseSessionService

    if missing_database(args.db):
        return EXIT_FAILURE
    if not args.yes and not is_terminal(sys.stdin):
        print("multi-agent delete: stdin is not a terminal, so it cannot ask: pass --yes to "
              "delete without asking.", file=sys.stderr)
        return EXIT_USAGE

    async def run() -> int | None:
        async with DatabaseSessionService(args.db) as store:
            session = await store.get_session(
                app_name=args.app, user_id=args.user, session_id=args.session,
                config=_no_events(),
            )
            if session is None:
                raise SessionNotFound(args.app, args.user, args.session)
            count = _interactions(session.state)
            if not args.yes:
                question = (f"Delete session {args.session} of user {args.user} "
                            f"({count} interaction{'' if count == 1 else 's'})? It cannot be "
                            "undone (multi-agent export saves a copy first). [y/N] ")
                if not await confirm(question):
                    return None
            await store.delete_session(
                app_name=args.app, user_id=args.user, session_id=args.session
            )
            return count

    deleted = asyncio.run(run())
    if deleted is None:
        return fail("Nothing was deleted.")
    print(f"Deleted session {args.session} of user {args.user} "
          f"({deleted} interaction{'' if deleted == 1 else 's'}).")
    return 0


def cmd_memory_reindex(args: argparse.Namespace) -> int:
    from ..memory import DatabaseMemoryService
    from ..memory.embeddings import MiniLMEmbedder, SemanticSearchUnavailable
    from ..store import DatabaseSessionService
    from . import render

    if missing_database(args.db):
        return EXIT_FAILURE
    embed = not args.no_embed
    skipped = None
    if embed:
        try:
            MiniLMEmbedder().check()
        except SemanticSearchUnavailable as exc:
            embed, skipped = False, str(exc)

    async def run() -> tuple[int, int, int]:
        async with DatabaseSessionService(args.db) as store:
            user = None if args.all_users else args.user
            sessions = (await store.list_sessions(app_name=args.app, user_id=user)).sessions
            fulltext = DatabaseMemoryService(store, search="fulltext")
            with render.progress("Indexing sessions", total=len(sessions)) as bar:
                for session in sessions:
                    await fulltext.add_session_to_memory(session)
                    bar.advance()
            users = sorted({s.user_id for s in sessions} | ({args.user} if user else set()))
            embedded = 0
            if embed:
                semantic = DatabaseMemoryService(store, search="hybrid")
                if is_terminal(sys.stderr):
                    print("Loading the semantic search model…", file=sys.stderr)
                await semantic.prepare()
                for name in users:
                    with render.progress(f"Embedding memories of {name}") as bar:
                        embedded += await semantic.embed_pending(
                            app_name=args.app, user_id=name, progress=bar
                        )
            return len(sessions), len(users), embedded

    sessions, users, embedded = asyncio.run(run())
    who = f"{users} user{'' if users == 1 else 's'}" if args.all_users else f"user {args.user}"
    line = f"Indexed {sessions} session{'' if sessions == 1 else 's'} of {who} in long memory"
    if embed:
        line += f"; embedded {embedded} memor{'y' if embedded == 1 else 'ies'} for semantic search"
    print(line + ".")
    if skipped:
        print(f"Full-text only: {skipped}", file=sys.stderr)
    return 0


def _no_events() -> Any:
    from google.adk.sessions.base_session_service import GetSessionConfig

    return GetSessionConfig(num_recent_events=0)
