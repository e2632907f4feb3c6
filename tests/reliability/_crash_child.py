"""A fork server for the crash tests: imports the store once, then forks one appender per life.

    python -m tests.reliability._crash_child DB_URL APP USER SESSION_1 SESSION_2 ACK_DIR SYNC

Importing ADK takes ~1.5 s; forking a warm process takes ~1 ms, so many more kills fit in the
test's time. Commands on stdin, one a line (answers on stdout):

    FORK <life> <seed>   fork an appender; answers ``PID <pid>``
    REAP <pid>           wait for it; answers ``STATUS <signal number or -exit code>``
    QUIT

An appender (the forked child) opens its own ``DatabaseSessionService``, reads the counters
from storage and appends events forever, alternating at random between the two sessions of
one user. Every event increments ``count`` in its session, ``user:count`` and ``app:count``
(this process is their only writer). Before each append it writes ``BEGIN <s> <event id>``,
after each acknowledged append ``ACK <s> <event id> <count> <user count>`` to
``ACK_DIR/life_<life>.log`` with a single ``write`` (a kill cannot leave half a line).
"""

from __future__ import annotations

import asyncio
import os
import random
import sys

from google.adk.sessions.base_session_service import GetSessionConfig

from multi_agent import DatabaseSessionService
from multi_agent.store.updates import StateUpdates
from tests.helpers import text_event

MAX_APPENDS_PER_LIFE = 100_000


async def life(
    url: str, app: str, user: str, sids: list[str], log_path: str, sync: str, seed: int
) -> None:
    rng = random.Random(seed)
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.write(fd, b"START\n")
    store = DatabaseSessionService(url, sqlite_synchronous=sync)
    recent = GetSessionConfig(num_recent_events=1)
    copies = [
        await store.get_session(app_name=app, user_id=user, session_id=sid, config=recent)
        for sid in sids
    ]
    user_count = (await store.get_user_state(app_name=app, user_id=user)).get("count", 0)
    os.write(fd, f"READY {user_count}\n".encode())
    for _ in range(MAX_APPENDS_PER_LIFE):
        i = rng.randrange(len(copies))
        session = copies[i]
        count = session.state.get("count", 0) + 1
        size = rng.choice([40, 300, 3_000, 20_000, 70_000])
        event = text_event(
            f"life event {count} " + rng.choice("abcdefgh") * size, state={"count": count}
        )
        # Two sessions of one user: user:/app: counters are atomic increments (a plain value
        # computed from one session's copy is refused once the other session moved it).
        updates = StateUpdates.for_event(session, event)
        updates.increment("user:count", ())
        updates.increment("app:count", ())
        os.write(fd, f"BEGIN {i} {event.id}\n".encode())
        await store.append_event(session, event)
        user_count = session.state["user:count"]
        os.write(fd, f"ACK {i} {event.id} {count} {user_count}\n".encode())


def main() -> None:
    url, app, user, sid1, sid2, ack_dir, sync = sys.argv[1:8]
    print("READY", flush=True)
    for line in sys.stdin:
        cmd, *args = line.split()
        if cmd == "FORK":
            life_no, seed = int(args[0]), int(args[1])
            pid = os.fork()
            if pid == 0:  # the appender
                code = 0
                try:
                    asyncio.run(
                        life(url, app, user, [sid1, sid2],
                             os.path.join(ack_dir, f"life_{life_no}.log"), sync, seed)
                    )
                except BaseException as exc:  # noqa: BLE001 - report, then exit hard
                    with open(os.path.join(ack_dir, f"life_{life_no}.err"), "w") as f:
                        f.write(f"{type(exc).__name__}: {exc}\n")
                    code = 3
                os._exit(code)
            print(f"PID {pid}", flush=True)
        elif cmd == "REAP":
            _, status = os.waitpid(int(args[0]), 0)
            if os.WIFSIGNALED(status):
                print(f"STATUS {os.WTERMSIG(status)}", flush=True)
            else:
                print(f"STATUS -{os.WEXITSTATUS(status)}", flush=True)
        elif cmd == "QUIT":
            break


if __name__ == "__main__":
    main()
