"""One process of the shared-scope counter test (tests/reliability/test_scope_writers.py).

    python -m tests.reliability._scope_writer URL APP USER SESSION KEY COUNT MODE

Increments state key KEY (``user:n`` or ``app:n``) COUNT times through its own session:
MODE ``rmw`` reads the value from its session copy and appends value + 1, reloading the copy
and trying again whenever the store refuses with StaleSession; MODE ``atomic`` appends
``StateUpdates.increment`` and never reloads. Prints ``ACK <event id>`` per acknowledged
append, then ``REFUSED <n>`` (StaleSession refusals, each retried) and ``OTHER <n>``.
"""

from __future__ import annotations

import asyncio
import sys

from multi_agent import DatabaseSessionService
from multi_agent.errors import StaleSession
from multi_agent.store.updates import StateUpdates
from tests.helpers import text_event


async def main(url: str, app: str, user: str, sid: str, key: str, count: int, mode: str) -> None:
    refused = 0
    async with DatabaseSessionService(url) as store:
        session = await store.get_session(app_name=app, user_id=user, session_id=sid)
        done = 0
        while done < count:
            if mode == "rmw":
                event = text_event(f"{user} {done}", state={key: session.state.get(key, 0) + 1})
            else:
                event = text_event(f"{user} {done}")
                StateUpdates.for_event(session, event).increment(key, ())
            try:
                await store.append_event(session, event)
            except StaleSession:
                refused += 1
                session = await store.get_session(app_name=app, user_id=user, session_id=sid)
                continue
            done += 1
            print("ACK", event.id, flush=True)
    print("REFUSED", refused, flush=True)


if __name__ == "__main__":
    url, app, user, sid, key, count, mode = sys.argv[1:8]
    asyncio.run(main(url, app, user, sid, key, int(count), mode))
