"""Runs store calls on a SQLite file as an unprivileged user, for the read-only file tests.

    python -m tests.reliability._unprivileged DB_PATH APP USER SESSION_ID

The tests run as root, which ignores file permissions. This script is started as root (so it
can import the project from root's Python), loads every module the store will need by using an
in-memory store once, then drops to user ``nobody`` (setgid/setuid, no supplementary groups)
before it touches DB_PATH; from then on the kernel checks permissions for real. Without root
it just runs as the current user. Prints one JSON line per call: ``{"call", "ok", "error",
"cause", "message", "state"}``.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys

from multi_agent import DatabaseSessionService, DatabaseUnavailableError
from tests.helpers import text_event


async def warm_up() -> None:
    async with DatabaseSessionService("sqlite+aiosqlite://") as store:
        s = await store.create_session(app_name="a", user_id="u", state={"user:x": 1})
        await store.append_event(s, text_event("x", state={"k": 1}))
        await store.get_session(app_name="a", user_id="u", session_id=s.id)
        await store.list_sessions(app_name="a")
    try:
        raise DatabaseUnavailableError("warm", cause="other")
    except DatabaseUnavailableError:
        pass


async def calls(path: str, app: str, user: str, sid: str) -> None:
    async with DatabaseSessionService(f"sqlite+aiosqlite:///{path}") as store:
        async def get():
            s = await store.get_session(app_name=app, user_id=user, session_id=sid)
            return None if s is None else s.state

        async def append():
            s = await store.get_session(app_name=app, user_id=user, session_id=sid)
            await store.append_event(s, text_event("as nobody", state={"by": "nobody"}))

        async def create():
            await store.create_session(app_name=app, user_id=user, state={"new": 1})

        for name, call in (("get_session", get), ("append_event", append),
                           ("create_session", create)):
            out = {"call": name}
            try:
                out.update(ok=True, state=await call())
            except Exception as exc:  # noqa: BLE001 - reported to the test
                out.update(ok=False, error=type(exc).__name__, cause=getattr(exc, "cause", None),
                           message=str(exc))
            print(json.dumps(out), flush=True)


def main() -> None:
    path, app, user, sid = sys.argv[1:5]
    asyncio.run(warm_up())
    if os.getuid() == 0:
        os.setgroups([])
        os.setgid(65534)
        os.setuid(65534)
        assert os.getuid() == 65534
    print(json.dumps({"uid": os.getuid()}), flush=True)
    asyncio.run(calls(path, app, user, sid))


if __name__ == "__main__":
    main()
