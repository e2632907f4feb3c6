"""Crash: an appender is SIGKILLed at random moments, many times; nothing acknowledged is lost.

A fork server (``_crash_child.py``) forks one appender per "life"; the test kills it with
SIGKILL after a random delay (during start-up, WAL recovery, between appends, in the middle of
a multi-page transaction or of its commit), then forks the next life on the same database.
Afterwards:

* every acknowledged event is stored, in its session, with the state change it carried;
* nothing half-written is visible: dense sequence numbers, the session row's ``last_seq``,
  ``event_count`` and ``revision`` equal the number of events, every event has its run row;
* the state counters agree with the events: session ``count`` = its events, ``user:count`` =
  ``app:count`` = the events of both sessions, and the events' ``user:count`` values are
  exactly 1..N (no increment lost or applied twice);
* at most one unacknowledged event per life (committed, then killed before the ACK);
* ``PRAGMA integrity_check`` is ``ok`` (SQLite), and the store still appends.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time
from pathlib import Path

import pytest

from multi_agent import DatabaseSessionService
from tests.conftest import fresh_pg_database
from tests.helpers import text_event

from ._util import PY, ROOT, check_session_invariants, sqlite_check, wait_for

KILLS = int(os.environ.get("MULTI_AGENT_CRASH_KILLS", "15"))
SOAK_KILLS = int(os.environ.get("MULTI_AGENT_SOAK_KILLS", "300"))


class ForkServer:
    def __init__(self, url: str, app: str, user: str, sids: list[str], ack_dir: Path,
                 sync: str) -> None:
        self.ack_dir = ack_dir
        self.proc = subprocess.Popen(
            [PY, "-m", "tests.reliability._crash_child", url, app, user, *sids, str(ack_dir),
             sync],
            cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        assert self.readline() == "READY"

    def readline(self) -> str:
        line = self.proc.stdout.readline()
        assert line, "fork server died"
        return line.strip()

    def ask(self, cmd: str) -> str:
        self.proc.stdin.write(cmd + "\n")
        self.proc.stdin.flush()
        return self.readline()

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write("QUIT\n")
                self.proc.stdin.flush()
                self.proc.wait(timeout=10)
            except Exception:
                self.proc.kill()
                self.proc.wait()


def read_log(path: Path) -> list[list[str]]:
    """Complete lines only (a kill cannot split one: each is a single write)."""
    if not path.exists():
        return []
    data = path.read_text()
    lines = data.split("\n")
    return [line.split() for line in lines[:-1]]  # the part after the last \n is incomplete


async def crash_run(url: str, tmp_path: Path, kills: int, sync: str, seed: int) -> str:
    rng = random.Random(seed)
    app, user = "crash_app", "crash_user"
    async with DatabaseSessionService(url) as store:
        sids = [
            (await store.create_session(app_name=app, user_id=user, session_id=f"s{i}")).id
            for i in range(2)
        ]
    ack_dir = tmp_path / "acks"
    ack_dir.mkdir()
    server = ForkServer(url, app, user, sids, ack_dir, sync)
    acked: dict[str, tuple[int, int, int]] = {}  # event id -> (session, count, user count)
    in_flight_kills = startup_kills = 0
    t0 = time.monotonic()
    try:
        for life_no in range(kills):
            log = ack_dir / f"life_{life_no}.log"
            pid = int(server.ask(f"FORK {life_no} {rng.randrange(2**31)}").split()[1])
            # Kill at a random moment: a third of the lives die young (start-up, recovery),
            # the others after a random number of appends plus a random few milliseconds.
            if rng.random() < 0.3:
                time.sleep(rng.uniform(0.0, 0.15))
            else:
                target = rng.randint(1, 40)
                wait_for(
                    lambda: len([x for x in read_log(log) if x[0] == "ACK"]) >= target
                    or (ack_dir / f"life_{life_no}.err").exists(),
                    60, f"life {life_no} to acknowledge {target} appends",
                )
                time.sleep(rng.uniform(0.0, 0.01))
            os.kill(pid, signal.SIGKILL)
            status = server.ask(f"REAP {pid}")
            err = ack_dir / f"life_{life_no}.err"
            assert not err.exists(), f"life {life_no} failed: {err.read_text()}"
            assert status == f"STATUS {signal.SIGKILL}", status
            lines = read_log(log)
            if not any(x[0] == "READY" for x in lines):
                startup_kills += 1
            if lines and lines[-1][0] == "BEGIN":
                in_flight_kills += 1
            for x in lines:
                if x[0] == "ACK":
                    acked[x[2]] = (int(x[1]), int(x[3]), int(x[4]))
    finally:
        server.close()
    elapsed = time.monotonic() - t0

    # Every acknowledged event and state change is there; nothing half-written.
    async with DatabaseSessionService(url) as store:
        per_session = []
        for i, sid in enumerate(sids):
            events = await check_session_invariants(store, app, user, sid)
            ids = [e.id for e in events]
            assert len(set(ids)) == len(ids), "an event is stored twice"
            for k, e in enumerate(events, start=1):
                assert e.actions.state_delta["count"] == k
            for eid, (s, count, ucount) in acked.items():
                if s == i:
                    assert eid in ids, f"acknowledged event {eid} is lost"
                    e = events[ids.index(eid)]
                    assert e.actions.state_delta["count"] == count
                    assert e.actions.state_delta["user:count"] == ucount
            session = await store.get_session(app_name=app, user_id=user, session_id=sid)
            assert session.state.get("count", 0) == len(events)
            per_session.append(events)
        total = sum(len(x) for x in per_session)
        user_values = sorted(
            e.actions.state_delta["user:count"] for events in per_session for e in events
        )
        assert user_values == list(range(1, total + 1)), "a user: increment was lost or doubled"
        assert (await store.get_user_state(app_name=app, user_id=user)).get("count", 0) == total
        assert (await store.get_app_state(app_name=app)).get("count", 0) == total
        unacked = total - len(acked)
        assert 0 <= unacked <= kills, f"{unacked} unacknowledged events after {kills} kills"
        if store.dialect == "sqlite":
            sqlite_check(store.backend.sqlite_path)
        # The store still appends, and reads back what it appended.
        session = await store.get_session(app_name=app, user_id=user, session_id=sids[0])
        after = text_event("after the crashes", state={"count": len(per_session[0]) + 1})
        await store.append_event(session, after)
        again = await store.get_session(app_name=app, user_id=user, session_id=sids[0])
        assert again.events[-1].id == after.id and again == session
    assert len(acked) >= kills, "too few appends were acknowledged for the test to mean much"
    figure = (
        f"crash[{url.split(':')[0]}, synchronous={sync}]: {kills} SIGKILLs survived "
        f"({startup_kills} during start-up, {in_flight_kills} inside an append), "
        f"{len(acked)} acknowledged appends all present, {total - len(acked)} committed but "
        f"unacknowledged, {elapsed:.1f} s"
    )
    print(figure)
    return figure


async def _url(backend: str, tmp_path: Path) -> str:
    if backend == "sqlite_file":
        return f"sqlite+aiosqlite:///{tmp_path / 'crash.db'}"
    return await fresh_pg_database()


@pytest.mark.parametrize("backend", ["sqlite_file", "postgres"])
async def test_sigkill_loses_nothing_acknowledged(backend: str, tmp_path: Path) -> None:
    url = await _url(backend, tmp_path)
    await crash_run(url, tmp_path, KILLS, "FULL", seed=random.randrange(2**31))


@pytest.mark.soak
@pytest.mark.parametrize(
    ("backend", "sync"),
    [("sqlite_file", "FULL"), ("sqlite_file", "NORMAL"), ("postgres", "FULL")],
)
async def test_sigkill_soak(backend: str, sync: str, tmp_path: Path) -> None:
    url = await _url(backend, tmp_path)
    await crash_run(url, tmp_path, SOAK_KILLS, sync, seed=random.randrange(2**31))
