"""A writer process for the many-writers tests.

    python -m tests.reliability._writer DB_URL APP USER SESSION TAG COUNT ON_STALE [SHARED]

Appends COUNT events. Each increments ``count_TAG`` (session) and ``user:count_TAG`` (user),
which only this writer writes, read from the copy it holds, and sets ``last_TAG``.
With SHARED=1 it also increments the read-modify-write counter ``shared`` of the session (only
safe with on_stale="raise", where a stale copy is reloaded and the increment recomputed).

on_stale="raise": on StaleSession it reloads the session and recomputes. on_stale="merge":
blind writes, never reloads; a StaleSession is a failure (merge mode must never raise it).

Prints ``ACK <event id>`` after every acknowledged append, ``RETRIES <n>``, and at the end
``COPY <json>``: the event ids and state of the copy it holds, to compare with storage.
"""

from __future__ import annotations

import asyncio
import json
import sys

from multi_agent import DatabaseSessionService, StaleSession
from tests.helpers import text_event


async def main(url: str, app: str, user: str, sid: str, tag: str, count: int, on_stale: str,
               shared: bool) -> None:
    retries = 0
    async with DatabaseSessionService(url, on_stale=on_stale) as store:
        session = await store.get_session(app_name=app, user_id=user, session_id=sid)
        done = 0
        while done < count:
            state = session.state
            delta = {
                f"count_{tag}": state.get(f"count_{tag}", 0) + 1,
                f"user:count_{tag}": state.get(f"user:count_{tag}", 0) + 1,
                f"last_{tag}": f"{tag} {done}",
            }
            if shared:
                delta["shared"] = state.get("shared", 0) + 1
            event = text_event(f"{tag} {done}", author=f"agent_{tag}", state=delta)
            try:
                await store.append_event(session, event)
            except StaleSession:
                if on_stale == "merge":
                    raise
                retries += 1
                session = await store.get_session(app_name=app, user_id=user, session_id=sid)
                continue
            print(f"ACK {event.id}", flush=True)
            done += 1
        copy = {"events": [e.id for e in session.events], "state": session.state}
    print(f"RETRIES {retries}", flush=True)
    print("COPY " + json.dumps(copy), flush=True)


if __name__ == "__main__":
    url, app, user, sid, tag, count, on_stale = sys.argv[1:8]
    shared = len(sys.argv) > 8 and sys.argv[8] == "1"
    asyncio.run(main(url, app, user, sid, tag, int(count), on_stale, shared))
