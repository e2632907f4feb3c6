"""A service in its own process, for the file-identity tests (the test SIGKILLs it).

    python -m tests.reliability._identity_child DB_URL

Commands on stdin, one a line; one answer line each on stdout:

    SETUP <n>   create a session (app ``old``, user ``u``) and append n events: ``OK <id>``
    APPEND      append one event to it: ``OK <event id>``, or ``ERR <cause>`` for a
                DatabaseUnavailableError
    GET         load it: ``OK <number of events>`` or ``ERR <cause>``
    CLOSE       close the service: ``OK``
    QUIT
"""

from __future__ import annotations

import asyncio
import sys

from multi_agent import DatabaseSessionService, DatabaseUnavailableError
from tests.helpers import text_event


async def main(url: str) -> None:
    store = DatabaseSessionService(url)
    session = None
    print("READY", flush=True)
    for line in sys.stdin:
        cmd, *args = line.split()
        try:
            if cmd == "SETUP":
                session = await store.create_session(app_name="old", user_id="u")
                for i in range(int(args[0])):
                    await store.append_event(
                        session, text_event(f"old {i} " + "o" * 500, state={"i": i})
                    )
                answer = f"OK {session.id}"
            elif cmd == "APPEND":
                assert session is not None
                event = text_event("old, after the replacement")
                await store.append_event(session, event)
                answer = f"OK {event.id}"
            elif cmd == "GET":
                assert session is not None
                got = await store.get_session(
                    app_name="old", user_id="u", session_id=session.id
                )
                answer = f"OK {len(got.events) if got else -1}"
            elif cmd == "CLOSE":
                await store.close()
                answer = "OK"
            elif cmd == "QUIT":
                return
            else:
                answer = f"BAD {cmd}"
        except DatabaseUnavailableError as exc:
            answer = f"ERR {exc.cause}"
        print(answer, flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
