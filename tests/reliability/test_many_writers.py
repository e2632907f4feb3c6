"""Many writers: OS processes on the same session and on other sessions of the same user, at once.

tests/store/test_multiprocess.py covers writers on one session, and writers on separate
sessions, one kind at a time, with on_stale="raise". Here every kind runs at the same time:

* two writers on one session S0 (read-modify-write of a shared counter, reloading when stale),
* one writer on each of two more sessions S1, S2 of the same user,
* one writer of another user on a session with the same id as S0,

each incrementing its own counters in session and ``user:`` state; and the same layout with
``on_stale="merge"`` and blind writes, where no writer ever reloads. At the end the counters
equal the acknowledged appends exactly, every acknowledged event is stored once in the right
session, nothing leaks between the two users, and each writer's own copy agrees with storage.
"""

from __future__ import annotations

import asyncio
import json
import os
import time

import pytest

from multi_agent import DatabaseSessionService
from multi_agent.store.scopes import parse_marker
from tests.helpers import text_event

from ._util import PY, ROOT, check_session_invariants

COUNT = 30
SOAK_COUNT = 400


async def run_writers(url: str, app: str, jobs: list[tuple], count: int) -> list[dict]:
    procs = [
        await asyncio.create_subprocess_exec(
            PY, "-m", "tests.reliability._writer", url, app, user, sid, tag, str(count),
            on_stale, "1" if shared else "0",
            cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        for user, sid, tag, on_stale, shared in jobs
    ]
    results = []
    for (user, sid, tag, _, _), proc in zip(jobs, procs, strict=True):
        out, err = await asyncio.wait_for(proc.communicate(), timeout=3600)
        assert proc.returncode == 0, f"writer {tag} failed:\n{err.decode()[-3000:]}"
        lines = out.decode().splitlines()
        results.append({
            "user": user, "sid": sid, "tag": tag,
            "acks": [x.split()[1] for x in lines if x.startswith("ACK ")],
            "retries": int(next(x for x in lines if x.startswith("RETRIES ")).split()[1]),
            "copy": json.loads(next(x for x in lines if x.startswith("COPY "))[5:]),
        })
    return results


@pytest.mark.parametrize("backend", ["sqlite_file", "postgres"], indirect=True)
@pytest.mark.parametrize("on_stale", ["raise", "merge"])
async def test_mixed_writers_lose_nothing(db_url: str, app_name: str, on_stale: str) -> None:
    await mixed_run(db_url, app_name, on_stale, COUNT)


@pytest.mark.soak
@pytest.mark.parametrize("backend", ["sqlite_file", "postgres"], indirect=True)
@pytest.mark.parametrize("on_stale", ["raise", "merge"])
async def test_mixed_writers_soak(db_url: str, app_name: str, on_stale: str) -> None:
    await mixed_run(db_url, app_name, on_stale, SOAK_COUNT)


async def mixed_run(db_url: str, app_name: str, on_stale: str, count: int) -> None:
    async with DatabaseSessionService(db_url) as store:
        s0 = await store.create_session(app_name=app_name, user_id="u", session_id="shared-id")
        s1 = await store.create_session(app_name=app_name, user_id="u")
        s2 = await store.create_session(app_name=app_name, user_id="u")
        await store.create_session(app_name=app_name, user_id="v", session_id="shared-id")
    shared = on_stale == "raise"
    jobs = [
        ("u", s0.id, "w0", on_stale, shared),
        ("u", s0.id, "w1", on_stale, shared),
        ("u", s1.id, "w2", on_stale, False),
        ("u", s2.id, "w3", on_stale, False),
        ("v", s0.id, "w4", on_stale, False),
    ]
    t0 = time.monotonic()
    results = await run_writers(db_url, app_name, jobs, count)
    elapsed = time.monotonic() - t0

    async with DatabaseSessionService(db_url) as store:
        stored: dict[tuple[str, str], list] = {}
        for user, sid in {(r["user"], r["sid"]) for r in results}:
            stored[(user, sid)] = await check_session_invariants(store, app_name, user, sid)
        for r in results:
            assert len(r["acks"]) == count
            events = stored[(r["user"], r["sid"])]
            ids = [e.id for e in events]
            assert len(ids) == len(set(ids))
            assert set(r["acks"]) <= set(ids), f"writer {r['tag']}: acknowledged events lost"
            mine = [e for e in events if e.author == f"agent_{r['tag']}"]
            assert [e.id for e in mine] == r["acks"], f"writer {r['tag']}: order or extras"
            # The counter was read from the copy: the k-th event of the writer set it to k.
            assert [e.actions.state_delta[f"count_{r['tag']}"] for e in mine] == list(
                range(1, count + 1)
            )
            # The writer's own copy agrees with storage (merge mode brought it up to date).
            copy = r["copy"]
            assert copy["events"] == ids[: len(copy["events"])], f"{r['tag']}: copy diverged"
            session = await store.get_session(app_name=app_name, user_id=r["user"],
                                              session_id=r["sid"])
            for key in (f"count_{r['tag']}", f"user:count_{r['tag']}", f"last_{r['tag']}"):
                assert copy["state"][key] == session.state[key]
        for (user, sid), events in stored.items():
            writers = [r for r in results if (r["user"], r["sid"]) == (user, sid)]
            assert len(events) == count * len(writers), f"{user}/{sid}: extra or missing events"
            session = await store.get_session(app_name=app_name, user_id=user, session_id=sid)
            own = {}
            for r in writers:
                own[f"count_{r['tag']}"] = count
                own[f"last_{r['tag']}"] = f"{r['tag']} {count - 1}"
            if shared and len(writers) > 1:
                own["shared"] = count * len(writers)  # no lost read-modify-write update
            session_scope = {k: v for k, v in session.state.items() if ":" not in k}
            assert session_scope == own, f"{user}/{sid}: session state"
        u_state = await store.get_user_state(app_name=app_name, user_id="u")
        v_state = await store.get_user_state(app_name=app_name, user_id="v")
        assert u_state == {f"count_w{i}": count for i in range(4)}
        assert v_state == {"count_w4": count}
        assert await store.get_app_state(app_name=app_name) == {}
        retries = sum(r["retries"] for r in results)
        if on_stale == "merge":
            assert retries == 0
        print(
            f"writers[{store.dialect}, on_stale={on_stale}]: {len(jobs)} processes, "
            f"{len(jobs) * count} appends acknowledged and stored, {retries} stale reloads, "
            f"{elapsed:.1f} s"
        )


@pytest.mark.parametrize("backend", ["sqlite_file", "postgres"], indirect=True)
async def test_get_session_is_a_snapshot_while_another_writer_appends(
    db_url: str, app_name: str
) -> None:
    """A session read while another writer appends is one consistent point in time.

    Each event k sets ``n = k``, so in any committed state ``n`` equals the number of events,
    and the copy's revision marker names that same point. A read that takes the session row
    from one moment and the events from a later one hands ADK a history whose state lags
    behind it, and (merge mode) a copy that later receives the same events twice.
    """
    appends = 150
    async with DatabaseSessionService(db_url) as writer, DatabaseSessionService(db_url) as reader:
        s = await writer.create_session(app_name=app_name, user_id="u")

        async def write() -> None:
            for k in range(1, appends + 1):
                await writer.append_event(s, text_event(f"e{k}", state={"n": k}))

        task = asyncio.create_task(write())
        reads, torn = 0, []
        while not task.done() or reads == 0:
            got = await reader.get_session(app_name=app_name, user_id="u", session_id=s.id)
            reads += 1
            n = got.state.get("n", 0)
            marker = parse_marker(got._storage_update_marker)
            if n != len(got.events) or (marker.revision, marker.last_seq) != (n, n):
                torn.append((n, len(got.events), got._storage_update_marker))
        await task
    assert torn == [], (
        f"{len(torn)} of {reads} reads mixed two points in time "
        f"(state n, events, marker): {torn[:3]}"
    )
