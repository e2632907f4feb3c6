"""Server loss: PostgreSQL stopped and restarted under a running service, in one process.

Four tasks append continuously through ONE ``DatabaseSessionService`` while the server is
stopped (``-m fast``: connections terminated; ``-m immediate``: a server crash) and started
again. Calls during the outage must fail with ``DatabaseUnavailableError(cause="unreachable")``
and a message saying what to do; once the server is back the same service object works again;
nothing acknowledged is lost; and an append whose outcome was unknown (the connection died
during it) is retried with the same event and is stored exactly once.

The lost-acknowledgement case is also tested deterministically on every backend: the event is
committed through one copy of the session and retried through the caller's copy.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from multi_agent import DatabaseSessionService, DatabaseUnavailableError
from tests.conftest import fresh_pg_database
from tests.helpers import text_event

from ._util import PgServer, check_session_invariants

TASKS = 4


def unclear(exc: DatabaseUnavailableError, port: str) -> str | None:
    """Why this error is not the clear 'server unreachable' error; None when it is."""
    message = str(exc)
    if exc.cause != "unreachable":
        return f"cause {exc.cause!r}: {message}"
    for words in ("Cannot reach", port, "server is running", "retry"):
        if words not in message:
            return f"message lacks {words!r}: {message}"
    return None


async def test_postgres_restart_during_appends() -> None:
    await outage_run(["fast", "immediate", "fast"])


@pytest.mark.soak
async def test_postgres_restart_soak() -> None:
    await outage_run(["fast", "immediate"] * 10)


async def outage_run(modes: list[str]) -> None:
    server = PgServer()
    url = await fresh_pg_database()
    app, user = "loss_app", "loss_user"
    store = DatabaseSessionService(url)
    original_backend = store.backend
    acked: dict[int, list[str]] = {i: [] for i in range(TASKS)}
    failures: list[tuple[str, DatabaseUnavailableError]] = []  # (call, error)
    unknown = {"committed": 0, "not committed": 0}
    stop_writing = asyncio.Event()
    outages: list[dict] = []

    async def writer(i: int, sid: str) -> None:
        session = await store.get_session(app_name=app, user_id=user, session_id=sid)
        n = 0
        while not stop_writing.is_set():
            n += 1
            event = text_event(f"task {i} event {n}", state={"count": n, f"user:count_{i}": n})
            while True:
                try:
                    await store.append_event(session, event)
                    break
                except DatabaseUnavailableError as exc:
                    failures.append(("append_event", exc))
                # Outcome unknown: reload once the server answers, then retry the same event
                # (a no-op if it was stored).
                while True:
                    await asyncio.sleep(0.02)
                    try:
                        session = await store.get_session(
                            app_name=app, user_id=user, session_id=sid
                        )
                        break
                    except DatabaseUnavailableError as exc:
                        failures.append(("get_session", exc))
                committed = event.id in {e.id for e in session.events}
                unknown["committed" if committed else "not committed"] += 1
            acked[i].append(event.id)
            assert session.state["count"] == n
            await asyncio.sleep(0.002)

    async def other_calls_fail() -> int:
        """Every kind of call made during the outage fails."""
        calls = {
            "create_session": lambda: store.create_session(app_name=app, user_id=user),
            "list_sessions": lambda: store.list_sessions(app_name=app, user_id=user),
            "get_user_state": lambda: store.get_user_state(app_name=app, user_id=user),
            "delete_session": lambda: store.delete_session(
                app_name=app, user_id=user, session_id="nope"
            ),
        }
        for name, call in calls.items():
            with pytest.raises(DatabaseUnavailableError) as info:
                await call()
            failures.append((name, info.value))
        return len(calls)

    def healthy(tasks: list[asyncio.Task]) -> None:
        done = [t for t in tasks if t.done()]
        assert not done, f"a writer died: {[t.exception() for t in done]!r}"

    try:
        sids = [
            (await store.create_session(app_name=app, user_id=user, session_id=f"s{i}")).id
            for i in range(TASKS)
        ]
        tasks = [asyncio.create_task(writer(i, sid)) for i, sid in enumerate(sids)]
        for mode in modes:
            await asyncio.sleep(0.6)
            healthy(tasks)
            assert sum(len(a) for a in acked.values()) > 0
            n_fail = len(failures)
            t_stop = time.monotonic()
            await server.stop(mode)
            await asyncio.sleep(0.3)
            await other_calls_fail()
            await asyncio.sleep(0.5)
            await server.start()
            t_start = time.monotonic()
            # Appends resume on the same service object, without recreating anything.
            mark = sum(len(a) for a in acked.values())
            while sum(len(a) for a in acked.values()) < mark + 2 * TASKS:
                assert time.monotonic() - t_start < 30, "appends did not resume"
                healthy(tasks)
                await asyncio.sleep(0.01)
            assert len(failures) - n_fail > 4, "the writers saw no failure: nothing was tested"
            outages.append({
                "mode": mode, "down": t_start - t_stop, "recovered": time.monotonic() - t_start,
                "failed_calls": len(failures) - n_fail,
            })
        stop_writing.set()
        await asyncio.gather(*tasks)
        assert store.backend is original_backend

        # Nothing acknowledged is lost, nothing is stored twice, counters match exactly.
        for i, sid in enumerate(sids):
            events = await check_session_invariants(store, app, user, sid)
            ids = [e.id for e in events]
            assert ids == acked[i], f"task {i}: stored events differ from the acknowledged ones"
            session = await store.get_session(app_name=app, user_id=user, session_id=sid)
            assert session.state["count"] == len(events)
            assert [e.actions.state_delta["count"] for e in events] == list(
                range(1, len(events) + 1)
            )
        user_state = await store.get_user_state(app_name=app, user_id=user)
        assert user_state == {f"count_{i}": len(acked[i]) for i in range(TASKS)}
    finally:
        server.start_sync()
        await store.close()
    total = sum(len(a) for a in acked.values())
    summary = "; ".join(
        f"{o['mode']} stop: down {o['down']:.2f} s, {o['failed_calls']} calls failed, "
        f"appends resumed {o['recovered'] * 1000:.0f} ms after restart"
        for o in outages
    )
    print(
        f"server loss: {len(outages)} outages ({summary}); {total} appends acknowledged, all "
        f"present once; unknown outcomes retried: {unknown}"
    )
    # Every failure during the outages was the clear 'unreachable' error.
    bad = [f"{call}: {why}" for call, exc in failures if (why := unclear(exc, server.port))]
    assert not bad, f"{len(bad)} of {len(failures)} failures were not clear:\n" + "\n".join(
        sorted(set(bad))
    )


@pytest.mark.parametrize("on_stale", ["raise", "merge"])
async def test_retry_after_lost_acknowledgement_updates_the_copy(
    store: DatabaseSessionService, app_name: str, on_stale: str
) -> None:
    """The append committed but its acknowledgement was lost; the caller retries it.

    Simulated exactly: the event is committed through a second copy loaded at the same point
    (what the server did), then the caller retries through its own copy, as the error message
    tells it to. The retry must not duplicate the event; and since append_event returns
    normally, the caller's copy must then hold the event and its state like any appended
    copy (ADK's contract), so that the caller's next append is not refused as stale.
    """
    store.on_stale = on_stale
    s = await store.create_session(app_name=app_name, user_id="u", state={"k": 0})
    mine = await store.get_session(app_name=app_name, user_id="u", session_id=s.id)
    server_side = await store.get_session(app_name=app_name, user_id="u", session_id=s.id)
    event = text_event("committed, ack lost", state={"k": 1, "user:k": 1})
    await store.append_event(server_side, event)  # committed; the caller never heard back

    returned = await store.append_event(mine, event)  # the retry
    assert returned.id == event.id
    stored = await store.get_session(app_name=app_name, user_id="u", session_id=s.id)
    assert [e.id for e in stored.events] == [event.id], "the retry stored the event twice"
    assert [e.id for e in mine.events] == [event.id], (
        "append_event returned, but the caller's copy does not hold the event"
    )
    assert mine.state == stored.state == {"k": 1, "user:k": 1}
    # The caller carries on with its copy.
    await store.append_event(mine, text_event("next", state={"k": 2}))
    final = await store.get_session(app_name=app_name, user_id="u", session_id=s.id)
    assert [e.id for e in final.events] == [e.id for e in mine.events]
    assert final.state == {"k": 2, "user:k": 1}
