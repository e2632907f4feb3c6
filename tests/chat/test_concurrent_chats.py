"""Several chats of one user at the same time: every change each of them made is kept.

Three real ``multi-agent chat`` processes of one user, each on its own session of one
database, add ten tickers each, as fast as they can (all lines are written at once, so the
processes' turns interleave on the database's write lock). Every process must say it added
each of its tickers, and the user's watch list and conversation log must hold all thirty:
the state tools write ``user:`` keys with atomic updates (``multi_agent.store.updates``), so
the store applies each change to the value stored when the turn is appended, instead of
writing a value computed from the session's older copy (which lost tickers before, and makes
the store refuse the turn with ``StaleSession`` now).

In-process tests below check the same for one turn that writes a ``user:`` key twice while
another session of the user writes it in between: sequential tool calls (what the offline
model does for "add AAPL and MSFT to my watchlist") and parallel ones (one model response);
and that two writers of one session (``on_stale="merge"``) merge the session keys the recorder
and the delegation tool write, marking a delegation completed included.
"""

from __future__ import annotations

import asyncio
import subprocess
import threading
import time
from pathlib import Path
from typing import IO, Any

import pytest
from google.adk.agents.llm_agent import LlmAgent
from google.adk.events.event import Event
from google.adk.runners import Runner
from multi_agent.team.state_tools.tools import add_to_stock_watchlist, wrap

from multi_agent import DatabaseSessionService
from multi_agent.store.updates import StateUpdates
from multi_agent.team.app import build_runner, get_or_create_session, user_message
from tests.agents._team import CallsAtOnce
from tests.chat._util import APP, MULTI_AGENT, TIMEOUT, clean_env, sqlite_url
from tests.conftest import fresh_pg_database

pytestmark = pytest.mark.timeout(300)

USER = "ann"
CHATS = 3
TICKERS = (
    "AAPL", "MSFT", "NVDA", "AMZN", "GOOG", "META", "TSLA", "NFLX", "INTC", "ORCL",
    "CSCO", "ADBE", "QCOM", "IBM", "SAP", "SONY", "UBER", "LYFT", "SNAP", "PYPL",
    "SHOP", "SQ", "COIN", "AMD", "MU", "TXN", "AVGO", "CRM", "NOW", "ZM",
)
PER_CHAT = len(TICKERS) // CHATS


def _pump(stream: IO[str], lines: list[str], ready: threading.Event) -> None:
    for line in stream:
        lines.append(line)
        if "New session" in line:
            ready.set()
    ready.set()  # EOF: the process ended (the assertions below say how)


def run_concurrent_chats(db: str, cwd: Path) -> list[tuple[int, str, list[str]]]:
    """Starts the chats, waits until each has its session, then sends every line at once.

    Starting takes a second or two per process (imports); waiting for all three sessions
    first has them work through their turns at the same time.
    """
    procs = []
    for _ in range(CHATS):
        proc = subprocess.Popen(
            [MULTI_AGENT, "chat", "--db", db, "--user", USER, "--new"],
            cwd=cwd, env=clean_env(), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True, bufsize=1,
        )
        out: list[str] = []
        err: list[str] = []
        ready = threading.Event()
        pumps = [threading.Thread(target=_pump, args=(proc.stdout, out, ready), daemon=True),
                 threading.Thread(target=_pump, args=(proc.stderr, err, threading.Event()),
                                  daemon=True)]
        for pump in pumps:
            pump.start()
        procs.append((proc, out, err, ready, pumps))
    try:
        for _, out, _, ready, _ in procs:
            assert ready.wait(TIMEOUT), "a chat did not start: " + "".join(out)
        for i, (proc, *_) in enumerate(procs):
            mine = TICKERS[i * PER_CHAT:(i + 1) * PER_CHAT]
            assert proc.stdin is not None
            proc.stdin.write("".join(f"add {t} to my watchlist\n" for t in mine))
            proc.stdin.close()
        results = []
        deadline = time.monotonic() + 2 * TIMEOUT
        for i, (proc, out, err, _, pumps) in enumerate(procs):
            code = proc.wait(max(1.0, deadline - time.monotonic()))
            for pump in pumps:
                pump.join(10)
            results.append((code, "".join(out) + "".join(err),
                            list(TICKERS[i * PER_CHAT:(i + 1) * PER_CHAT])))
        return results
    finally:
        for proc, *_ in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


async def _user_state(db: str) -> dict:
    async with DatabaseSessionService(db) as store:
        return await store.get_user_state(app_name=APP, user_id=USER)


def check_concurrent_chats(db: str, cwd: Path) -> None:
    started = time.monotonic()
    results = run_concurrent_chats(db, cwd)
    for code, output, mine in results:
        assert code == 0, (code, output[-3000:])
        for bad in ("StaleSession", "Traceback", "Nothing was written", "did not work"):
            assert bad not in output, output[-3000:]
        for ticker in mine:
            assert f"Added {ticker} to your watch list." in output, (ticker, output[-3000:])
    state = asyncio.run(_user_state(db))
    assert sorted(state["preferences"]["stock_watchlist"]) == sorted(TICKERS)
    log = state["conversation_log"]
    assert len(log) == len(TICKERS)
    assert sorted(e["user_input"] for e in log) == sorted(
        f"add {t} to my watchlist" for t in TICKERS
    )
    sessions = [e["session_id"] for e in log]  # in the order the turns were stored
    assert len(set(sessions)) == CHATS
    switches = sum(1 for a, b in zip(sessions, sessions[1:], strict=False) if a != b)
    assert switches > CHATS, sessions  # the chats' turns interleaved (not one after another)
    assert state["agent_stats"]["stock_analyst"]["delegations"] == len(TICKERS)
    assert time.monotonic() - started < 60


def test_three_chats_of_one_user_on_sqlite(tmp_path: Path) -> None:
    check_concurrent_chats(sqlite_url(tmp_path / "chat.db"), tmp_path)


def test_three_chats_of_one_user_on_postgres(tmp_path: Path) -> None:
    check_concurrent_chats(asyncio.run(fresh_pg_database()), tmp_path)


# -- one turn writing a user: key twice, another session writing it in between ---------------


@pytest.fixture(params=["sqlite", "postgres"])
async def team_db(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return sqlite_url(tmp_path / "team.db")
    return await fresh_pg_database()


async def add_from_other_session(store: DatabaseSessionService, ticker: str) -> None:
    """Another session of the user adds ``ticker`` (a separate copy, appended now)."""
    other = await store.create_session(app_name=APP, user_id=USER)
    event = Event(author="stock_analyst", invocation_id=f"other-{ticker}")
    StateUpdates.for_event(other, event).add_unique(
        "user:preferences", ("stock_watchlist",), ticker
    )
    await store.append_event(other, event)


async def test_sequential_calls_of_one_turn_keep_both_and_the_other_sessions(
    team_db: str,
) -> None:
    """The offline model adds "AAPL and MSFT" with two calls; between them (after the first
    call's result is stored) another session adds NVDA."""
    runner = build_runner(db_url=team_db, model="offline-rules")
    store = runner.session_service
    assert isinstance(store, DatabaseSessionService)
    try:
        session = await get_or_create_session(store, user_id=USER)
        texts: list[str] = []
        results = 0
        async for event in runner.run_async(
            user_id=USER, session_id=session.id,
            new_message=user_message("add AAPL and MSFT to my watchlist"),
        ):
            if any(r.name == "add_to_stock_watchlist" for r in event.get_function_responses()):
                results += 1
                if results == 1:  # stored; the second call has not run yet
                    await add_from_other_session(store, "NVDA")
            if event.content and event.content.parts:
                texts += [p.text for p in event.content.parts if p.text]
        assert results == 2
        text = "\n".join(texts)
        assert "Added AAPL to your watch list." in text
        assert "Added MSFT to your watch list." in text
        state = await store.get_user_state(app_name=APP, user_id=USER)
    finally:
        await runner.close()
    assert sorted(state["preferences"]["stock_watchlist"]) == ["AAPL", "MSFT", "NVDA"]
    assert len(state["conversation_log"]) == 1


class ParallelAdds(CallsAtOnce):
    """Answers with two add_to_stock_watchlist calls at once; another session adds a ticker
    while the calls run (after the session copy was loaded, before the result is stored)."""

    model: str = "parallel-adds"
    calls: list[tuple[str, dict[str, Any]]] = [
        ("add_to_stock_watchlist", {"ticker": t}) for t in ("AAPL", "MSFT")]
    store: object = None

    async def before_calls(self) -> None:
        await add_from_other_session(self.store, "NVDA")  # type: ignore[arg-type]


async def test_parallel_calls_of_one_turn_keep_both_and_the_other_sessions(
    team_db: str,
) -> None:
    async with DatabaseSessionService(team_db) as store:
        agent = LlmAgent(name="worker", model=ParallelAdds(store=store),
                         tools=wrap(add_to_stock_watchlist))
        runner = Runner(app_name=APP, agent=agent, session_service=store)
        session = await store.create_session(
            app_name=APP, user_id=USER, state={"user:preferences": {"stock_watchlist": ["IBM"]}}
        )
        async for _ in runner.run_async(user_id=USER, session_id=session.id,
                                        new_message=user_message("go")):
            pass
        await runner.close()
        state = await store.get_user_state(app_name=APP, user_id=USER)
    assert state["preferences"]["stock_watchlist"] == ["IBM", "NVDA", "AAPL", "MSFT"]


async def test_two_writers_of_one_session_merge_the_session_keys(team_db: str) -> None:
    """With ``on_stale="merge"`` another writer of the same session appends a delegation, a
    history entry and a turn while a turn runs; the turn's own writes (its delegation, then
    marking it completed, its history entry, the turn count) are applied on top of them."""
    store = DatabaseSessionService(team_db, on_stale="merge")
    runner = build_runner(session_service=store, model="offline-rules")
    try:
        session = await get_or_create_session(store, user_id=USER)
        other = {"id": "other-1", "timestamp": "t", "agent_name": "historian", "task": "recap",
                 "status": "delegated"}
        done = False
        async for event in runner.run_async(
            user_id=USER, session_id=session.id,
            new_message=user_message("tell me a joke about python"),
        ):
            if not done and any(r.name == "track_agent_delegation"
                                for r in event.get_function_responses()):
                done = True  # the turn's delegation is stored; its completion is not
                copy = await store.get_session(app_name=APP, user_id=USER,
                                               session_id=session.id)
                assert copy is not None
                extra = Event(author="historian", invocation_id="other-writer")
                change = StateUpdates.for_event(copy, extra)
                change.append("agent_delegations", (), other, keep_last=20)
                change.append("conversation_history", (), {"user_input": "elsewhere"})
                change.increment("session_metadata", ("total_interactions",))
                await store.append_event(copy, extra)
        assert done
        state = (await store.get_session(app_name=APP, user_id=USER,
                                         session_id=session.id)).state
    finally:
        await runner.close()
        await store.close()
    delegations = state["agent_delegations"]
    assert [(d["agent_name"], d["status"]) for d in delegations] == [
        ("historian", "delegated"), ("funny_nerd", "completed")
    ]
    assert [h["user_input"] for h in state["conversation_history"]] == [
        "elsewhere", "tell me a joke about python"
    ]
    assert state["session_metadata"]["total_interactions"] == 2
    assert state["user:agent_stats"]["funny_nerd"]["delegations"] == 1
