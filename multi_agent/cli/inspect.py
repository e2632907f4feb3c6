"""``multi-agent sessions`` and ``multi-agent state``: what a user reaches for to look inside."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from datetime import UTC, datetime
from typing import Any

from . import add_common

APP_NAME = "multi_agent"


def register(sub: argparse._SubParsersAction) -> None:
    """Adds ``sessions`` and ``state``."""
    p = sub.add_parser(
        "sessions",
        help="list a user's sessions, most recent last",
        description="List a user's sessions (no events are loaded), oldest update first.",
        epilog="Example: multi-agent sessions --user ann --json",
    )
    add_common(p)
    p.add_argument("--app", default=APP_NAME, help="app name (default: multi_agent)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_sessions)

    p = sub.add_parser(
        "state",
        help="print the merged app/user/session state",
        description="Print the state a session sees: app:, user: and session keys merged. "
        "Without --session, the user's most recent session (or only user/app state if none).",
        epilog="Example: multi-agent state --user ann --session 1f0c... --json",
    )
    add_common(p)
    p.add_argument("--app", default=APP_NAME, help="app name (default: multi_agent)")
    p.add_argument("--session", help="session id (default: the most recent one)")
    p.add_argument("--json", action="store_true", help="print JSON (the default output too)")
    p.set_defaults(func=cmd_state)


def missing_database(url: str) -> bool:
    """True (after saying so on stderr) when ``url`` is a SQLite file that does not exist.

    Looking inside must not create an empty database, e.g. when run in the wrong directory.
    """
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except ArgumentError:
        return False  # the store explains a malformed URL
    path = parsed.database
    if parsed.get_backend_name() != "sqlite" or not path or path == ":memory:" or \
            path.startswith("file:") or os.path.exists(path):
        return False
    print(f"multi-agent: No database at {os.path.abspath(path)}: nothing is stored there yet. "
          "Pass --db (or set MULTI_AGENT_DB) to the file multi-agent chat used, or run "
          "multi-agent chat here first.", file=sys.stderr)
    return True


def fmt_time(ts: float | None) -> str:
    """Epoch seconds as a local, human-readable time."""
    if ts is None:
        return "-"
    return datetime.fromtimestamp(ts, tz=UTC).astimezone().strftime("%Y-%m-%d %H:%M:%S")


async def session_summaries(store: Any, app: str, user: str) -> list[dict[str, Any]]:
    """The user's sessions as plain dicts, oldest update first."""
    listed = await store.list_sessions(app_name=app, user_id=user)
    out = []
    for s in listed.sessions:
        meta = s.state.get("session_metadata") or {}
        out.append(
            {
                "id": s.id,
                "last_update_time": s.last_update_time,
                "last_update": fmt_time(s.last_update_time),
                "interactions": meta.get("total_interactions", 0)
                if isinstance(meta, dict) else 0,
            }
        )
    return out


def cmd_sessions(args: argparse.Namespace) -> int:
    from ..store import DatabaseSessionService

    if missing_database(args.db):
        return 2

    async def run() -> list[dict[str, Any]]:
        async with DatabaseSessionService(args.db) as store:
            return await session_summaries(store, args.app, args.user)

    rows = asyncio.run(run())
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    from rich.console import Console
    from rich.table import Table

    if not rows:
        print(f"No sessions for user {args.user!r} in app {args.app!r}.")
        return 0
    table = Table(title=f"Sessions of {args.user}")
    table.add_column("session id")
    table.add_column("last update")
    table.add_column("interactions", justify="right")
    for row in rows:
        table.add_row(row["id"], row["last_update"], str(row["interactions"]))
    Console().print(table)
    return 0


def cmd_state(args: argparse.Namespace) -> int:
    from ..errors import SessionNotFound
    from ..store import DatabaseSessionService

    if missing_database(args.db):
        return 2

    async def run() -> dict[str, Any]:
        async with DatabaseSessionService(args.db) as store:
            session_id = args.session
            if session_id is None:
                listed = (await store.list_sessions(app_name=args.app, user_id=args.user)).sessions
                if not listed:
                    user = await store.get_user_state(app_name=args.app, user_id=args.user)
                    app = await store.get_app_state(app_name=args.app)
                    return {
                        **{f"app:{k}": v for k, v in app.items()},
                        **{f"user:{k}": v for k, v in user.items()},
                    }
                session_id = listed[-1].id
            session = await store.get_session(
                app_name=args.app, user_id=args.user, session_id=session_id,
                config=_no_events(),
            )
            if session is None:
                raise SessionNotFound(args.app, args.user, session_id)
            return dict(session.state)

    print(json.dumps(asyncio.run(run()), indent=2, ensure_ascii=False, sort_keys=True))
    return 0


def _no_events() -> Any:
    from google.adk.sessions.base_session_service import GetSessionConfig

    return GetSessionConfig(num_recent_events=0)
