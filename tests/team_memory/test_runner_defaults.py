"""What ``build_runner`` wires by default, how each part is turned off, and what it closes."""

from __future__ import annotations

import json
from typing import Any

import pytest
from google.adk.agents.run_config import RunConfig
from google.adk.sessions.base_session_service import GetSessionConfig
from sqlalchemy import text

from multi_agent import DatabaseSessionService
from multi_agent.memory import BoundedContextPlugin, DatabaseMemoryService, RememberTurnsPlugin
from multi_agent.memory.summarizer import ExtractiveSummarizer
from multi_agent.team.app import DEFAULT_WINDOW_EVENTS, build_runner, get_or_create_session
from tests.agents._team import say, stored
from tests.helpers import record_loads

USER = "bo"
# Long-ish messages the offline model understands (a joke, a watch-list change).
FILLER = " I had a long day at work and would love something nerdy to cheer me up. " * 3
MESSAGES = ["tell me a math joke." + FILLER, "add NVDA to my watchlist." + FILLER]


def url(tmp_path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'team.db'}"


async def test_memory_and_bounded_context_are_on_by_default(tmp_path) -> None:
    runner = build_runner(db_url=url(tmp_path), model="offline-rules")
    try:
        assert isinstance(runner.memory_service, DatabaseMemoryService)
        assert runner.memory_service.backend is runner.session_service.backend  # one database
        plugins = runner.plugin_manager.plugins
        from multi_agent.store import RunTreePlugin

        assert [type(p) for p in plugins[:3]] == [
            RunTreePlugin, BoundedContextPlugin, RememberTurnsPlugin
        ]
        assert plugins[1].window_events == DEFAULT_WINDOW_EVENTS
        compaction = runner.app.events_compaction_config
        assert compaction is not None and isinstance(compaction.summarizer, ExtractiveSummarizer)
        historian = runner.agent.find_agent("historian")
        assert [t.name for t in historian.tools][0] == "load_memory"
        # The window is filled in when the caller's RunConfig has none, and kept otherwise.
        assert runner.effective_run_config(None).get_session_config.num_recent_events == 60
        mine = runner.effective_run_config(RunConfig(max_llm_calls=7))
        assert mine.max_llm_calls == 7 and mine.get_session_config.num_recent_events == 60
        custom = RunConfig(get_session_config=GetSessionConfig(num_recent_events=5))
        assert runner.effective_run_config(custom) is custom
    finally:
        await runner.close()


async def test_each_turn_loads_a_window_while_storage_keeps_everything(
    tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner = build_runner(db_url=url(tmp_path), model="offline-rules", window=30)
    try:
        session = await get_or_create_session(runner.session_service, user_id=USER)
        loads = record_loads(runner.session_service, monkeypatch)
        for i in range(24):
            turn = await say(runner, USER, session.id, MESSAGES[i % 2])
            assert turn.replier in ("funny_nerd", "stock_analyst"), turn.reply
        monkeypatch.undo()
        whole = await stored(runner, USER, session.id)
    finally:
        await runner.close()
    assert len(whole.events) > 200
    turn_loads = [n for n in loads if n]  # the Runner's load at the start of each turn
    assert turn_loads and max(turn_loads) <= 30
    assert any(e.actions.compaction for e in whole.events)  # summaries of older turns


async def test_window_none_is_adks_default(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    runner = build_runner(db_url=url(tmp_path), model="offline-rules", window=None)
    try:
        assert runner.bounded_context is None and runner.app.events_compaction_config is None
        assert not any(isinstance(p, BoundedContextPlugin) for p in runner.plugin_manager.plugins)
        assert runner.effective_run_config(None) is None
        session = await get_or_create_session(runner.session_service, user_id=USER)
        for i in range(8):
            await say(runner, USER, session.id, MESSAGES[i % 2])
        total = len((await stored(runner, USER, session.id)).events)
        loads = record_loads(runner.session_service, monkeypatch)
        await say(runner, USER, session.id, MESSAGES[0])
    finally:
        await runner.close()
    assert total > DEFAULT_WINDOW_EVENTS and loads[0] == total  # the whole session


async def test_memory_false_has_no_memory(tmp_path) -> None:
    runner = build_runner(db_url=url(tmp_path), model="offline-rules", memory=False)
    try:
        assert runner.memory_service is None
        assert not any(isinstance(p, RememberTurnsPlugin) for p in runner.plugin_manager.plugins)
        session = await get_or_create_session(runner.session_service, user_id=USER)
        await say(runner, USER, session.id, "hi")
        tables = await runner.session_service.backend.run(
            lambda c: c.execute(text("SELECT name FROM sqlite_master")).scalars().all(),
            write=False,
        )
    finally:
        await runner.close()
    assert not any("memory" in name for name in tables)
    with pytest.raises(ValueError):
        build_runner(db_url=url(tmp_path), memory=False,
                     memory_service=DatabaseMemoryService(f"sqlite+aiosqlite:///{tmp_path}/m.db"))
    with pytest.raises(ValueError):
        build_runner(db_url=url(tmp_path), window=1)


class Spy:
    def __init__(self, target: Any) -> None:
        self.calls = 0
        self._close = target.close

    async def __call__(self) -> None:
        self.calls += 1
        await self._close()


async def test_close_closes_what_build_runner_opened(tmp_path) -> None:
    runner = build_runner(db_url=url(tmp_path), model="offline-rules")
    spies = {"session": Spy(runner.session_service), "memory": Spy(runner.memory_service)}
    runner.session_service.close = spies["session"]  # type: ignore[method-assign]
    runner.memory_service.close = spies["memory"]  # type: ignore[attr-defined]
    await runner.close()
    await runner.close()  # twice is harmless
    assert spies["session"].calls == 1 and spies["memory"].calls == 1


async def test_close_leaves_services_it_was_given_open(tmp_path) -> None:
    async with DatabaseSessionService(url(tmp_path)) as store:
        memory = DatabaseMemoryService(store)
        spies = {"session": Spy(store), "memory": Spy(memory)}
        store.close = spies["session"]  # type: ignore[method-assign]
        memory.close = spies["memory"]  # type: ignore[method-assign]
        runner = build_runner(session_service=store, memory_service=memory,
                              model="offline-rules")
        session = await get_or_create_session(store, user_id=USER)
        await say(runner, USER, session.id, "my name is Bo")
        await runner.close()
        assert spies["session"].calls == 0 and spies["memory"].calls == 0
        found = await memory.search_memory(app_name="multi_agent", user_id=USER, query="Bo")
        assert found.memories  # the turn was added to the memory it was given
        # With a session service that is not the store, memory falls back to ADK's in-memory.
        from google.adk.memory.in_memory_memory_service import InMemoryMemoryService
        from google.adk.sessions.in_memory_session_service import InMemorySessionService

        other = build_runner(session_service=InMemorySessionService(), model="offline-rules")
        assert isinstance(other.memory_service, InMemoryMemoryService)
        await other.close()


async def test_a_turn_adds_a_bounded_amount_to_the_database(tmp_path) -> None:
    """conversation_history, user:conversation_log and agent_delegations are rewritten whole
    into an event on every turn; bounded, a turn's bytes stop growing with the session."""
    runner = build_runner(db_url=url(tmp_path), model="offline-rules")

    async def stored_bytes() -> int:
        return await runner.session_service.backend.run(
            lambda c: c.execute(text("SELECT SUM(LENGTH(event_data)) FROM ma_events")).scalar(),
            write=False,
        )

    try:
        session = await get_or_create_session(runner.session_service, user_id=USER)
        sizes = []
        before = 0
        for i in range(60):  # the longest list (user:conversation_log, 50) is full at 50
            await say(runner, USER, session.id, MESSAGES[i % 2])
            now = await stored_bytes()
            sizes.append(now - before)
            before = now
        state = (await stored(runner, USER, session.id)).state
    finally:
        await runner.close()
    assert len(state["conversation_history"]) == 20
    assert len(json.dumps(state["conversation_history"])) < 20 * 800
    # ~43 KB a turn with the 50-entry user log (was ~65 KB with 100-entry lists)
    assert max(sizes[-5:]) < 48_000
    assert max(sizes[-5:]) < 1.1 * max(sizes[50:55])  # flat once the lists are full
