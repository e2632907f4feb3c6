"""Retention inside a session (issue 18): ``trim_sessions`` keeps the last N events and/or D
days of each session, whole runs, tool pairs, the head run and the newest compaction summary;
the run tree stays valid and the state unchanged. On a SQLite file, SQLite in memory and
PostgreSQL unless a test says otherwise.

The sessions of ``build`` have six runs of four events (question, tool call, tool result,
answer: seq 1-4, 5-8, 9-12), a compaction summary (seq 13) after run 3, and runs 4-6 at seq
14-17, 18-21, 22-25.
"""

from __future__ import annotations

import time

import pytest
from google.adk.agents import LlmAgent
from google.adk.runners import Runner
from google.genai import types
from sqlalchemy import text

from multi_agent import DatabaseSessionService
from multi_agent.errors import HistoryPrunedError, InvalidValueError, RunNotFound
from multi_agent.memory import DatabaseMemoryService
from tests.lifecycle._trim_util import DAY, build, compaction, pairs_intact, turn


async def session_of(store: DatabaseSessionService, app: str, user: str, sid: str):
    session = await store.get_session(app_name=app, user_id=user, session_id=sid)
    assert session is not None
    return session


async def columns(store: DatabaseSessionService, app: str, user: str, sid: str) -> dict:
    def read(conn) -> dict:
        key = {"a": app, "u": user, "s": sid}
        row = conn.execute(text("SELECT last_seq, event_count FROM ma_sessions WHERE "
                                "app_name = :a AND user_id = :u AND id = :s"), key).one()
        seqs = [r[0] for r in conn.execute(text(
            "SELECT seq FROM ma_events WHERE app_name = :a AND user_id = :u AND "
            "session_id = :s ORDER BY seq"), key)]
        return {"last_seq": row[0], "event_count": row[1], "seqs": seqs}

    return await store.backend.run(read, write=False)


def assert_valid_tree(runs) -> None:
    ids = {r.run_id for r in runs}
    for run in runs:
        assert run.parent_run_id is None or run.parent_run_id in ids, run
    assert sum(r.is_head for r in runs) == 1


async def test_trim_by_count_keeps_whole_runs_state_and_summary(
    store: DatabaseSessionService, app_name: str,
) -> None:
    await build(store, app_name, "ann", "s1")
    await build(store, app_name, "bob", "s2", runs=2)  # 8 events: a run is never split
    before = await session_of(store, app_name, "ann", "s1")
    planned = await store.trim_sessions(keep_last_events=6, dry_run=True)
    report = await store.trim_sessions(keep_last_events=6)
    # The 6th newest event (seq 20) is in run 5, which starts at 18: all of run 5 stays.
    assert report.totals() == planned.totals() == {
        "sessions": 1, "events": 16, "runs": 4, "memory_entries": 0}
    assert list(report.by_user) == [(app_name, "ann")]
    after = await session_of(store, app_name, "ann", "s1")
    assert after.state == before.state  # the state does not change
    kept = [e.id for e in before.events[12:13] + before.events[17:]]  # summary + runs 5, 6
    assert [e.id for e in after.events] == kept
    assert after.events[0].actions.compaction is not None
    assert pairs_intact(after.events)
    cols = await columns(store, app_name, "ann", "s1")
    assert cols == {"last_seq": 25, "event_count": 9, "seqs": [13, *range(18, 26)]}
    runs = await store.list_runs(app_name=app_name, user_id="ann", session_id="s1")
    assert_valid_tree(runs)
    assert [r.status for r in runs] == ["pruned"] * 4 + ["completed"] * 2
    assert [r.event_count for r in runs] == [0, 0, 0, 0, 4, 4]
    # Trimming again changes nothing; the untouched session is whole.
    again = await store.trim_sessions(keep_last_events=6)
    assert again.totals()["events"] == 0
    assert len((await session_of(store, app_name, "bob", "s2")).events) == 8
    # Export still works and shows the trimmed session as it is.
    doc = await store.export_session(app_name=app_name, user_id="ann", session_id="s1")
    assert [e["seq"] for e in doc["events"]] == [13, *range(18, 26)]
    assert doc["session"]["event_count"] == 9
    assert doc["session"]["state"] == {k: v for k, v in before.state.items()
                                       if not k.startswith("user:")}


async def test_an_export_of_a_trimmed_session_imports_as_it_was(
    store: DatabaseSessionService, app_name: str, tmp_path,
) -> None:
    import json

    await build(store, app_name, "ann", "s1")
    await store.trim_sessions(keep_last_events=6)
    doc = await store.export_session(app_name=app_name, user_id="ann", session_id="s1")
    path = tmp_path / "s1.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    await store.import_session(doc, session_id="copy")
    await store.import_session_file(path, user_id="bob")

    def comparable(d: dict) -> dict:
        session = {k: v for k, v in d["session"].items()
                   if k not in ("id", "create_time", "update_time", "revision")}
        return {"session": session, "runs": d["runs"], "events": d["events"]}

    for user, sid in (("ann", "copy"), ("bob", "s1")):
        again = await store.export_session(app_name=app_name, user_id=user, session_id=sid)
        assert comparable(again) == comparable(doc)
        original = await session_of(store, app_name, "ann", "s1")
        copy = await session_of(store, app_name, user, sid)
        assert [e.id for e in copy.events] == [e.id for e in original.events]
    # The copy behaves as the original: branching into its pruned history is refused, a
    # kept run can be branched to, and it takes more events.
    with pytest.raises(HistoryPrunedError):
        await store.branch(app_name=app_name, user_id="ann", session_id="copy",
                           from_run_id="inv-2")
    branched = await store.branch(app_name=app_name, user_id="ann", session_id="copy",
                                  from_run_id="inv-5")
    assert branched.session_state["turn"] == 5
    await turn(store, await session_of(store, app_name, "ann", "copy"), 7)
    # A changed document is refused, nothing written.
    bad = json.loads(json.dumps(doc))
    bad["session"]["state"]["turn"] = 99
    with pytest.raises(InvalidValueError, match="session.state"):
        await store.import_session(bad, session_id="bad")
    bad = json.loads(json.dumps(doc))
    bad["runs"][0]["status"] = "completed"  # a kept run before pruned ones
    with pytest.raises(InvalidValueError, match="a trim prunes exactly"):
        await store.import_session(bad, session_id="bad")
    assert await store.get_session(app_name=app_name, user_id="ann", session_id="bad") is None


async def test_branching_after_a_trim(store: DatabaseSessionService, app_name: str) -> None:
    await build(store, app_name, "ann", "s1")
    await store.trim_sessions(keep_last_events=6)
    for pruned in ("inv-1", "inv-4"):
        with pytest.raises(HistoryPrunedError, match="history was pruned") as caught:
            await store.branch(app_name=app_name, user_id="ann", session_id="s1",
                               from_run_id=pruned)
        assert isinstance(caught.value, RunNotFound)
    # A kept run: the state is exactly the state at its end (the trimmed runs' state was
    # folded into the initial state).
    branched = await store.branch(app_name=app_name, user_id="ann", session_id="s1",
                                  from_run_id="inv-5")
    expected = {"topic": "s1", "turn": 5, **{f"k{n}": n for n in range(1, 6)}}
    assert branched.session_state == expected
    session = await session_of(store, app_name, "ann", "s1")
    assert {k: v for k, v in session.state.items() if not k.startswith("user:")} == expected
    assert [e.invocation_id for e in session.events][-4:] == ["inv-5"] * 4
    # A run that forked off before a later trim's cut cannot be branched to.
    await turn(store, session, 7)  # inv-7 (seq 26-29), a child of inv-5
    await store.branch(app_name=app_name, user_id="ann", session_id="s1", from_run_id="inv-6")
    session = await session_of(store, app_name, "ann", "s1")
    await turn(store, session, 8)  # inv-8 (seq 30-33), a child of inv-6
    await store.trim_sessions(keep_last_events=8)  # keeps inv-7 and inv-8; base: inv-6
    with pytest.raises(HistoryPrunedError, match="forked off before"):
        await store.branch(app_name=app_name, user_id="ann", session_id="s1",
                           from_run_id="inv-7")
    runs = await store.list_runs(app_name=app_name, user_id="ann", session_id="s1")
    assert_valid_tree(runs)
    assert [r.run_id for r in runs if r.status != "pruned"] == ["inv-7", "inv-8"]
    session = await session_of(store, app_name, "ann", "s1")
    assert session.state["turn"] == 8 and session.state["k6"] == 6 and "k7" not in session.state
    assert session.events[0].actions.compaction is not None  # kept through both trims
    assert [e.invocation_id for e in session.events[1:]] == ["inv-8"] * 4


async def test_trim_by_age(store: DatabaseSessionService, app_name: str) -> None:
    now = time.time()
    # Runs 1-6 at 60, 50, ... 10 days ago.
    await build(store, app_name, "ann", "s1", start=now - 70 * DAY, step=10 * DAY)
    before = await session_of(store, app_name, "ann", "s1")
    report = await store.trim_sessions(keep_days=35)  # runs 4-6 (40 days ago: run 3 goes)
    assert report.totals()["events"] == 12 and report.totals()["runs"] == 3
    after = await session_of(store, app_name, "ann", "s1")
    assert after.state == before.state
    assert [e.id for e in after.events] == [e.id for e in before.events[12:]]
    # Both limits: at most 4 events and nothing older than 35 days: run 6 (the head) only.
    report = await store.trim_sessions(keep_days=35, keep_last_events=4)
    after = await session_of(store, app_name, "ann", "s1")
    assert [e.invocation_id for e in after.events[1:]] == ["inv-6"] * 4
    assert after.events[0].actions.compaction is not None  # the newest summary stays


async def test_the_head_run_and_long_running_tool_pairs_stay(
    store: DatabaseSessionService, app_name: str,
) -> None:
    session = await store.create_session(app_name=app_name, user_id="ann", session_id="s1")
    await turn(store, session, 1)
    await turn(store, session, 2, call_id="slow-1")  # a call answered in run 5
    await turn(store, session, 3)
    await turn(store, session, 4)
    await turn(store, session, 5, answer_call="slow-1")
    await store.trim_sessions(keep_last_events=2)
    after = await session_of(store, app_name, "ann", "s1")
    assert pairs_intact(after.events)
    assert {e.invocation_id for e in after.events} == {"inv-2", "inv-3", "inv-4", "inv-5"}
    # The head run keeps all its events even when it holds more than the limit.
    runs = await store.list_runs(app_name=app_name, user_id="ann", session_id="s1")
    assert [r.status for r in runs] == ["pruned", "completed", "completed", "completed",
                                        "completed"]


async def test_memory_entries_follow_their_events(
    store: DatabaseSessionService, app_name: str,
) -> None:
    memory = DatabaseMemoryService(store, search="fulltext")
    try:
        await build(store, app_name, "ann", "s1")
        await memory.add_session_to_memory(await session_of(store, app_name, "ann", "s1"))

        def entries(conn) -> list[str]:
            return [r[0] for r in conn.execute(text(
                "SELECT text FROM ma_memory_entries WHERE app_name = :a ORDER BY text"),
                {"a": app_name})]

        assert len(await store.backend.run(entries, write=False)) == 12
        planned = await store.trim_sessions(keep_last_events=8, dry_run=True)
        report = await store.trim_sessions(keep_last_events=8)
        # Runs 1-4 go, with their questions and answers (two entries per run).
        assert report.totals()["memory_entries"] == planned.totals()["memory_entries"] == 8
        assert await store.backend.run(entries, write=False) == [
            "answer 5", "answer 6", "question 5", "question 6"]
        found = await memory.search_memory(app_name=app_name, user_id="ann", query="answer")
        assert {m.content.parts[0].text for m in found.memories} == {"answer 5", "answer 6"}
    finally:
        await memory.close()


async def test_policies_per_app(store: DatabaseSessionService, app_name: str) -> None:
    other = app_name + "_b"
    await build(store, app_name, "ann", "s1")
    await build(store, other, "ann", "s1")
    with pytest.raises(InvalidValueError, match="No retention policy"):
        await store.trim_sessions()
    await store.set_retention_policy(app_name=app_name, keep_last_events=6)
    await store.set_retention_policy(app_name=other, keep_last_events=100)
    assert (await store.retention_policies())[app_name].keep_last_events == 6
    report = await store.trim_sessions()
    assert report.totals()["events"] == 16 and list(report.by_user) == [(app_name, "ann")]
    # A call's own limit overrides the stored policy.
    report = await store.trim_sessions(app_name=other, keep_last_events=6)
    assert report.totals()["events"] == 16
    await store.set_retention_policy(app_name=app_name)  # removed
    assert app_name not in await store.retention_policies()
    for bad in ({"keep_last_events": 0}, {"keep_days": -1}, {"keep_last_events": True}):
        with pytest.raises(InvalidValueError):
            await store.trim_sessions(**bad)


async def test_the_runner_takes_another_turn(store: DatabaseSessionService,
                                             app_name: str) -> None:
    """ADK's real Runner with the offline model: a tool call per turn, trimmed between
    turns; every turn after a trim runs on the trimmed session."""

    def get_weather(city: str) -> dict:
        """Returns the current weather report for a city."""
        return {"status": "success", "report": f"It is sunny in {city}."}

    agent = LlmAgent(name="helper", model="offline-rules", tools=[get_weather])
    runner = Runner(app_name=app_name, agent=agent, session_service=store)
    session = await store.create_session(app_name=app_name, user_id="ann")
    cities = ["Paris", "Rome", "Oslo", "Lima", "Kyiv", "Riga"]
    for n, city in enumerate(cities):
        message = types.Content(role="user", parts=[types.Part(
            text=f"what's the weather in {city}?")])
        answers = [e async for e in runner.run_async(user_id="ann", session_id=session.id,
                                                     new_message=message)]
        assert any(city in (p.text or "") for e in answers if e.content
                   for p in e.content.parts), answers
        if n >= 2:
            await store.trim_sessions(keep_last_events=5, session_id=session.id)
            stored = await session_of(store, app_name, "ann", session.id)
            assert pairs_intact(stored.events)
            assert stored.events[0].author == "user"  # a run's first event: the question
    runs = await store.list_runs(app_name=app_name, user_id="ann", session_id=session.id)
    assert_valid_tree(runs)
    assert [r.status for r in runs][-1] == "completed"
    assert [r.status for r in runs].count("pruned") >= 3
    await runner.close()


async def test_a_second_summary_replaces_the_kept_one(
    store: DatabaseSessionService, app_name: str,
) -> None:
    session = await build(store, app_name, "ann", "s1", runs=2, summary_after=1)
    await turn(store, session, 3)
    await compaction(store, session, time.time() + 1)
    for n in (4, 5, 6):
        await turn(store, session, n)
    await store.trim_sessions(keep_last_events=4)
    after = await session_of(store, app_name, "ann", "s1")
    summaries = [e for e in after.events if e.actions.compaction is not None]
    assert len(summaries) == 1 and summaries[0].timestamp > time.time() - 60
    assert [e.invocation_id for e in after.events[1:]] == ["inv-6"] * 4
