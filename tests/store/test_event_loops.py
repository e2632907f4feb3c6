"""One service used from many event loops: one after another (ADK's sync ``Runner.run`` runs each
turn with ``asyncio.run`` on a new thread; so do programs that call ``asyncio.run`` per
request) and at once (several threads, each with its own loop). Every turn and every append is
counted afterwards, and on PostgreSQL the server's connections are counted too: a closed loop's
connections must be ended, not left until the collector finds them (``store/looppool.py``).
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest
from google.adk.runners import Runner
from google.genai import types

from multi_agent import DatabaseSessionService
from tests.conftest import fresh_pg_database
from tests.helpers import text_event
from tests.store.scripted_llm import build_agents

KINDS = ["sqlite_file", "postgres"]


def _url(kind: str, tmp_path: Path) -> str:
    if kind == "sqlite_file":
        return f"sqlite+aiosqlite:///{tmp_path / 'loops.db'}"
    return asyncio.run(fresh_pg_database())


def _server_connections(url: str) -> int:
    """Connections the PostgreSQL server has open to ``url``'s database (besides this one)."""
    import asyncpg

    async def count() -> int:
        conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
        try:
            return int(await conn.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid()"))
        finally:
            await conn.close()

    return asyncio.run(count())


@pytest.mark.parametrize("kind", KINDS)
def test_adk_sync_runner_run_turn_after_turn(kind: str, tmp_path: Path) -> None:
    """``Runner.run`` (a new thread and loop each turn) on one service: every turn is stored
    with its state, and on PostgreSQL the connections do not pile up with the turns (before
    the pool per loop, every turn after the first failed)."""
    url = _url(kind, tmp_path)
    store = DatabaseSessionService(url)
    runner = Runner(app_name="loops", agent=build_agents(), session_service=store)
    session = asyncio.run(store.create_session(app_name="loops", user_id="u"))
    after: list[int] = []
    for turn in range(8):
        replies = [e for e in runner.run(
            user_id="u", session_id=session.id,
            new_message=types.Content(role="user", parts=[types.Part(text=f"note {turn}")]))
            if e.content and e.content.parts and e.content.parts[0].text]
        assert replies[-1].content.parts[0].text == "Noted."
        if kind == "postgres":
            after.append(_server_connections(url))

    async def read() -> tuple[int, dict]:
        got = await store.get_session(app_name="loops", user_id="u", session_id=session.id)
        assert got is not None
        users = sum(1 for e in got.events if e.author == "user")
        await store.close()
        return users, dict(got.state)

    users, state = asyncio.run(read())
    assert users == 8
    assert state == {"notes": 8, "user:note_count": 8}
    if kind == "postgres":
        # One loop's connections at most (its pool: 5 + 10 overflow), never growing per turn.
        assert max(after) <= 15, after
        assert after[-1] <= after[1] + 1, after
        assert _server_connections(url) == 0  # closed: all gone


@pytest.mark.parametrize("kind", KINDS)
def test_manual_loops_closed_one_after_another(kind: str, tmp_path: Path) -> None:
    """A new loop per request, each closed right after its appends (``run_until_complete``,
    then ``close``; nothing cancelled): every append is stored, and the closed loops'
    connections are ended (the server does not keep one per request)."""
    url = _url(kind, tmp_path)
    store = DatabaseSessionService(url)
    session = asyncio.run(store.create_session(app_name="loops", user_id="u"))
    for request in range(10):
        loop = asyncio.new_event_loop()
        try:
            async def work(request: int = request) -> None:
                got = await store.get_session(app_name="loops", user_id="u",
                                              session_id=session.id)
                assert got is not None
                ev = text_event(f"r{request}")
                ev.actions.state_delta = {"user:requests": request + 1}
                await store.append_event(got, ev)
            loop.run_until_complete(work())
        finally:
            loop.close()
    if kind == "postgres":
        # The last loop's writer may still hold its connection; the earlier ones are gone.
        assert _server_connections(url) <= 2

    async def read() -> tuple[list[str], object]:
        got = await store.get_session(app_name="loops", user_id="u", session_id=session.id)
        await store.close()
        assert got is not None
        return [e.content.parts[0].text for e in got.events], got.state.get("user:requests")

    texts, requests = asyncio.run(read())
    assert texts == [f"r{i}" for i in range(10)]
    assert requests == 10


@pytest.mark.parametrize("kind", KINDS)
def test_threads_with_their_own_loops_append_at_once(kind: str, tmp_path: Path) -> None:
    """Four threads, each running its own loop with 8 tasks, append at once through one
    service: every acknowledged append is stored, each task's ``user:`` counter and the
    shared ``app:`` counter keys hold their last values."""
    url = _url(kind, tmp_path)
    store = DatabaseSessionService(url)
    acked: dict[tuple[int, int], int] = {}
    failures: list[BaseException] = []
    start = threading.Barrier(4)

    async def thread_main(t: int) -> None:
        sessions = [await store.create_session(app_name="loops", user_id=f"u{t}-{k}")
                    for k in range(8)]

        async def task(k: int) -> None:
            s = sessions[k]
            for n in range(25):
                ev = text_event(f"{t}-{k}-{n}")
                ev.actions.state_delta = {"n": n, "user:n": n, f"app:last_{t}_{k}": n}
                await store.append_event(s, ev)
                acked[(t, k)] = n + 1

        await asyncio.get_running_loop().run_in_executor(None, start.wait)
        await asyncio.gather(*(task(k) for k in range(8)))

    def run(t: int) -> None:
        try:
            asyncio.run(thread_main(t))
        except BaseException as exc:  # noqa: BLE001  (reported below)
            failures.append(exc)

    threads = [threading.Thread(target=run, args=(t,)) for t in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(300)
    assert not failures, failures

    async def check() -> None:
        try:
            for (t, k), count in acked.items():
                listed = await store.list_sessions(app_name="loops", user_id=f"u{t}-{k}")
                got = await store.get_session(app_name="loops", user_id=f"u{t}-{k}",
                                              session_id=listed.sessions[0].id)
                assert got is not None
                assert [e.content.parts[0].text for e in got.events] == [
                    f"{t}-{k}-{n}" for n in range(count)]
                assert got.state["n"] == count - 1 and got.state["user:n"] == count - 1
                assert got.state[f"app:last_{t}_{k}"] == count - 1
        finally:
            await store.close()

    assert sorted(acked.values()) == [25] * 32
    asyncio.run(check())


def test_an_injected_engine_on_a_second_loop_is_refused_clearly(tmp_path: Path) -> None:
    """An engine given to the service with SQLAlchemy's default pool cannot serve a second
    loop: the call says so and what to do, writing nothing; with ``LoopPool`` it works."""
    from sqlalchemy.ext.asyncio import create_async_engine

    from multi_agent.errors import StoreError
    from multi_agent.store.looppool import LoopPool

    url = _url("postgres", tmp_path)
    engine = create_async_engine(url)
    store = DatabaseSessionService(db_engine=engine)
    session = asyncio.run(store.create_session(app_name="loops", user_id="u"))
    with pytest.raises(StoreError, match="now closed.*poolclass=multi_agent.store.looppool"):
        asyncio.run(store.append_event(session, text_event("refused")))

    looped = create_async_engine(url, poolclass=LoopPool)
    other = DatabaseSessionService(db_engine=looped)

    async def append_one(text: str) -> int:
        got = await other.get_session(app_name="loops", user_id="u", session_id=session.id)
        assert got is not None
        await other.append_event(got, text_event(text))
        return len(got.events)

    assert [asyncio.run(append_one(f"t{i}")) for i in range(3)] == [1, 2, 3]  # none "refused"

    async def dispose() -> None:
        await other.close()
        await looped.dispose()

    asyncio.run(dispose())


@pytest.mark.parametrize("kind", KINDS)
def test_the_memory_service_from_one_loop_after_another(kind: str, tmp_path: Path) -> None:
    """The memory service beside the store, each call on its own loop (its set-up lock is
    per loop, its SQL on the store's pool per loop): what one loop adds, the next finds."""
    from multi_agent.memory import DatabaseMemoryService

    url = _url(kind, tmp_path)
    store = DatabaseSessionService(url)
    memory = DatabaseMemoryService(store)

    async def add(text: str) -> None:
        s = await store.create_session(app_name="loops", user_id="ann")
        await store.append_event(s, text_event(text, author="user"))
        got = await store.get_session(app_name="loops", user_id="ann", session_id=s.id)
        assert got is not None
        await memory.add_session_to_memory(got)

    async def search(query: str) -> list[str]:
        found = await memory.search_memory(app_name="loops", user_id="ann", query=query)
        return [m.content.parts[0].text for m in found.memories]

    asyncio.run(add("I bought Nvidia shares today."))
    assert asyncio.run(search("Nvidia shares")) == ["I bought Nvidia shares today."]
    asyncio.run(add("Pasta carbonara needs no cream."))
    assert asyncio.run(search("carbonara cream")) == ["Pasta carbonara needs no cream."]

    async def close() -> None:
        await memory.close()
        await store.close()

    asyncio.run(close())
