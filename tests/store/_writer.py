"""A writer process for the multi-process tests: appends events, reloading when stale.

    python -m tests.store._writer DB_URL APP USER SESSION TAG COUNT

Each append increments ``count_TAG`` (session scope), ``user:count_TAG`` (user scope) and the
shared read-modify-write counter ``shared`` from the copy it holds. Prints ``ACK <event id>``
after every acknowledged append and ``RETRIES <n>`` at the end.
"""

from __future__ import annotations

import asyncio
import sys

from multi_agent import DatabaseSessionService, StaleSession
from tests.helpers import text_event


async def main(url: str, app: str, user: str, session_id: str, tag: str, count: int) -> None:
    retries = 0
    async with DatabaseSessionService(url) as store:
        session = await store.get_session(app_name=app, user_id=user, session_id=session_id)
        done = 0
        while done < count:
            state = session.state
            delta = {
                f"count_{tag}": state.get(f"count_{tag}", 0) + 1,
                f"user:count_{tag}": state.get(f"user:count_{tag}", 0) + 1,
                "shared": state.get("shared", 0) + 1,
            }
            event = text_event(f"{tag} {done}", state=delta)
            try:
                await store.append_event(session, event)
            except StaleSession:
                retries += 1
                session = await store.get_session(
                    app_name=app, user_id=user, session_id=session_id
                )
                continue
            print(f"ACK {event.id}", flush=True)
            done += 1
    print(f"RETRIES {retries}", flush=True)


if __name__ == "__main__":
    url, app, user, sid, tag, count = sys.argv[1:7]
    asyncio.run(main(url, app, user, sid, tag, int(count)))
