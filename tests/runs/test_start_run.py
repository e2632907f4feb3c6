"""``start_run``: a session claimed for a run against the head the caller saw, in one
transaction (what ``multi-agent serve`` uses so that two servers on one database cannot run two
turns of a thread at once), and ``request_stop`` / ``stop_requested``. On every backend, with
ADK's real Runner taking the claimed run."""

from __future__ import annotations

import asyncio

import pytest
from google.adk.runners import Runner
from google.genai import types

from multi_agent import DatabaseSessionService
from multi_agent.errors import RunConflict, RunNotFound, SessionNotFound
from tests.runs._scenario import USER, say
from tests.store.scripted_llm import build_agents


async def _turn(runner: Runner, session_id: str, text: str, run_id: str) -> None:
    async for _event in runner.run_async(
        user_id=USER, session_id=session_id, invocation_id=run_id,
        new_message=types.Content(role="user", parts=[types.Part(text=text)]),
    ):
        pass


async def test_a_claimed_run_is_the_head_and_the_runner_continues_it(
    store: DatabaseSessionService, app_name: str
) -> None:
    runner = Runner(app_name=app_name, agent=build_agents(), session_service=store)
    await store.create_session(app_name=app_name, user_id=USER, session_id="s")
    first = await say(runner, "s", "one")
    await store.start_run(app_name=app_name, user_id=USER, session_id="s", run_id="r2",
                          expected_head=first)
    runs = {r.run_id: r for r in await store.list_runs(
        app_name=app_name, user_id=USER, session_id="s")}
    assert runs["r2"].status == "running" and runs["r2"].is_head
    assert runs["r2"].parent_run_id == first and runs["r2"].event_count == 0
    await _turn(runner, "s", "two", "r2")
    runs = {r.run_id: r for r in await store.list_runs(
        app_name=app_name, user_id=USER, session_id="s")}
    assert set(runs) >= {first, "r2"} and runs["r2"].status == "completed"
    assert runs["r2"].event_count > 1 and runs["r2"].message == "two"
    # Another claim against the old head: refused, nothing written.
    with pytest.raises(RunConflict, match="another run") as info:
        await store.start_run(app_name=app_name, user_id=USER, session_id="s", run_id="r3",
                              expected_head=first)
    assert info.value.head_run_id == "r2" and not info.value.exists
    with pytest.raises(RunConflict, match="already has a run"):
        await store.start_run(app_name=app_name, user_id=USER, session_id="s", run_id="r2",
                              expected_head="r2")
    assert "r3" not in {r.run_id for r in await store.list_runs(
        app_name=app_name, user_id=USER, session_id="s")}


async def test_a_claim_with_a_branch_and_the_errors(
    store: DatabaseSessionService, app_name: str
) -> None:
    runner = Runner(app_name=app_name, agent=build_agents(), session_service=store)
    await store.create_session(app_name=app_name, user_id=USER, session_id="s")
    first = await say(runner, "s", "one")
    second = await say(runner, "s", "two")
    await store.start_run(app_name=app_name, user_id=USER, session_id="s", run_id="b1",
                          expected_head=second, from_run_id=first)
    await _turn(runner, "s", "three", "b1")
    got = await store.get_session(app_name=app_name, user_id=USER, session_id="s")
    said = [e.content.parts[0].text for e in got.events if e.author == "user"]
    assert said == ["one", "three"]  # the branch: "two" is off the path, kept
    runs = {r.run_id: r for r in await store.list_runs(
        app_name=app_name, user_id=USER, session_id="s")}
    assert runs["b1"].parent_run_id == first and not runs[second].on_path
    with pytest.raises(SessionNotFound):
        await store.start_run(app_name=app_name, user_id=USER, session_id="gone",
                              run_id="x", expected_head=None)
    with pytest.raises(RunNotFound):
        await store.start_run(app_name=app_name, user_id=USER, session_id="s", run_id="x",
                              expected_head="b1", from_run_id="no-such-run")


async def test_of_many_claims_against_one_head_exactly_one_wins(
    store: DatabaseSessionService, app_name: str
) -> None:
    await store.create_session(app_name=app_name, user_id=USER, session_id="s")
    results = await asyncio.gather(*(
        store.start_run(app_name=app_name, user_id=USER, session_id="s", run_id=f"r{i}",
                        expected_head=None) for i in range(8)), return_exceptions=True)
    assert sum(r is None for r in results) == 1
    assert all(isinstance(r, RunConflict) for r in results if r is not None)


async def test_a_stop_asked_for_is_seen_and_leaves_the_status_derived(
    store: DatabaseSessionService, app_name: str
) -> None:
    await store.create_session(app_name=app_name, user_id=USER, session_id="s")
    await store.start_run(app_name=app_name, user_id=USER, session_id="s", run_id="r1",
                          expected_head=None)
    ids = {"app_name": app_name, "user_id": USER, "session_id": "s", "run_id": "r1"}
    assert not await store.stop_requested(**ids)
    assert await store.request_stop(**ids)
    assert await store.stop_requested(**ids)
    runs = await store.list_runs(app_name=app_name, user_id=USER, session_id="s")
    assert runs[0].status == "running"  # until the process running it records the outcome
    await store.set_run_status(**ids, status="cancelled", error="stopped by the user")
    assert not await store.stop_requested(**ids) and not await store.request_stop(**ids)
    assert not await store.request_stop(**{**ids, "run_id": "nope"})


async def test_a_run_that_answers_despite_a_stop_asked_for_is_completed_with_no_error(
    store: DatabaseSessionService, app_name: str
) -> None:
    runner = Runner(app_name=app_name, agent=build_agents(), session_service=store)
    await store.create_session(app_name=app_name, user_id=USER, session_id="s")
    await store.start_run(app_name=app_name, user_id=USER, session_id="s", run_id="r1",
                          expected_head=None)
    ids = {"app_name": app_name, "user_id": USER, "session_id": "s", "run_id": "r1"}
    assert await store.request_stop(**ids)
    await _turn(runner, "s", "one", "r1")  # the stop came too late: the run answered
    runs = {r.run_id: r for r in await store.list_runs(
        app_name=app_name, user_id=USER, session_id="s")}
    run = runs["r1"]
    assert run.status == "completed" and run.error is None
