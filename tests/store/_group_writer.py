"""A writer process for the group-commit tests: many tasks at once, each on its own session.

    python -m tests.store._group_writer DB_URL APP FIRST TASKS COUNT [USERS]

Task ``i`` (FIRST <= i < FIRST + TASKS) appends COUNT events to session ``s{i}`` of user
``u{i}`` (created by the parent), all tasks at once. Each event writes ``n`` (session scope),
``user:n`` and ``app:last_{i}`` as plain values, and increments ``app:total`` and
``user:total`` with atomic updates (``StateUpdates``: re-applied to the stored value, so
every process's increments must all count). Prints ``ACK <session> <event id>`` after every
acknowledged append, ``ERR <session> <error>`` after every failed one.

With USERS, users are shared: session ``s{i}`` belongs to user ``u{i % USERS}`` and is created
here (all of this process's sessions at once), and the plain user key is ``user:n_{i}`` (one
per session: sessions of one user would otherwise overwrite each other's value).
"""

from __future__ import annotations

import asyncio
import sys

from multi_agent import DatabaseSessionService
from multi_agent.store.updates import StateUpdates
from tests.helpers import text_event


async def task(store: DatabaseSessionService, app: str, i: int, count: int,
               users: int | None) -> None:
    if users is None:
        session = await store.get_session(app_name=app, user_id=f"u{i}", session_id=f"s{i}")
        user_key = "user:n"
    else:
        session = await store.create_session(app_name=app, user_id=f"u{i % users}",
                                             session_id=f"s{i}")
        user_key = f"user:n_{i}"
    assert session is not None
    for n in range(count):
        event = text_event(f"{i} {n}", state={"n": n, user_key: n, f"app:last_{i}": n})
        updates = StateUpdates.for_event(session, event)
        updates.increment("app:total", ())
        updates.increment("user:total", ())
        try:
            await store.append_event(session, event)
        except Exception as exc:  # noqa: BLE001 - reported to the parent, which fails
            print(f"ERR s{i} {type(exc).__name__}: {exc}", flush=True)
            return
        print(f"ACK s{i} {event.id}", flush=True)


async def main(url: str, app: str, first: int, tasks: int, count: int, users: int | None
               ) -> None:
    async with DatabaseSessionService(url) as store:
        await asyncio.gather(*(task(store, app, i, count, users)
                               for i in range(first, first + tasks)))


if __name__ == "__main__":
    url, app, first, tasks, count = sys.argv[1:6]
    users = int(sys.argv[6]) if len(sys.argv) > 6 else None
    asyncio.run(main(url, app, int(first), int(tasks), int(count), users))
