"""ADK's real Runner on the store: transfers, tools, state scopes, rewind, reload."""

from __future__ import annotations

import pytest
from google.adk.runners import Runner
from google.adk.sessions.base_session_service import GetSessionConfig
from google.genai import types

from multi_agent import DatabaseSessionService
from tests.store.scripted_llm import build_agents


async def run_turn(runner: Runner, user: str, sid: str, text: str) -> list:
    events = []
    async for event in runner.run_async(
        user_id=user, session_id=sid,
        new_message=types.Content(role="user", parts=[types.Part(text=text)]),
    ):
        events.append(event)
    return events


async def test_runner_turns_are_stored(store: DatabaseSessionService, app_name: str) -> None:
    runner = Runner(app_name=app_name, agent=build_agents(), session_service=store)
    s = await store.create_session(app_name=app_name, user_id="u")
    yielded = await run_turn(runner, "u", s.id, "please note")
    assert yielded[-1].content.parts[0].text == "Noted."
    stored = await store.get_session(app_name=app_name, user_id="u", session_id=s.id)
    non_user = [e for e in stored.events if e.author != "user"]
    assert [e.id for e in non_user] == [e.id for e in yielded]
    assert stored.events[1:] == yielded
    assert stored.state == {"notes": 1, "user:note_count": 1}
    transfer = [e for e in stored.events if e.actions.transfer_to_agent == "worker"]
    assert transfer and transfer[0].author == "coordinator"
    # Turn two goes straight to the worker (the agent that replied last).
    await run_turn(runner, "u", s.id, "again")
    stored = await store.get_session(app_name=app_name, user_id="u", session_id=s.id)
    assert stored.state["notes"] == 2 and stored.state["user:note_count"] == 2
    # A new session of the same user sees user: state.
    s2 = await store.create_session(app_name=app_name, user_id="u")
    assert s2.state == {"user:note_count": 2}


async def test_runner_with_recent_events_window(
    store: DatabaseSessionService, app_name: str
) -> None:
    from google.adk.agents.run_config import RunConfig

    runner = Runner(app_name=app_name, agent=build_agents(), session_service=store)
    s = await store.create_session(app_name=app_name, user_id="u")
    for _ in range(3):
        async for _ in runner.run_async(
            user_id="u", session_id=s.id,
            new_message=types.Content(role="user", parts=[types.Part(text="note")]),
            run_config=RunConfig(get_session_config=GetSessionConfig(num_recent_events=4)),
        ):
            pass
    stored = await store.get_session(app_name=app_name, user_id="u", session_id=s.id)
    assert stored.state["notes"] == 3


async def test_rewind_async_keeps_working(store: DatabaseSessionService, app_name: str) -> None:
    runner = Runner(app_name=app_name, agent=build_agents(), session_service=store)
    s = await store.create_session(app_name=app_name, user_id="u")
    await run_turn(runner, "u", s.id, "first")
    second = await run_turn(runner, "u", s.id, "second")
    await runner.rewind_async(
        user_id="u", session_id=s.id, rewind_before_invocation_id=second[0].invocation_id
    )
    stored = await store.get_session(app_name=app_name, user_id="u", session_id=s.id)
    assert stored.state["notes"] == 1  # session state rewound
    assert stored.state["user:note_count"] == 2  # user: state is not rewound (ADK semantics)
    assert stored.events[-1].actions.rewind_before_invocation_id == second[0].invocation_id


@pytest.mark.parametrize("backend", ["sqlite_file"], indirect=True)
async def test_reload_through_a_new_service(db_url: str, app_name: str) -> None:
    async with DatabaseSessionService(db_url) as store:
        runner = Runner(app_name=app_name, agent=build_agents(), session_service=store)
        s = await store.create_session(app_name=app_name, user_id="u")
        await run_turn(runner, "u", s.id, "note")
        before = await store.get_session(app_name=app_name, user_id="u", session_id=s.id)
    async with DatabaseSessionService(db_url) as again:
        after = await again.get_session(app_name=app_name, user_id="u", session_id=s.id)
        assert after == before
        runner = Runner(app_name=app_name, agent=build_agents(), session_service=again)
        await run_turn(runner, "u", s.id, "note")
        assert (await again.get_user_state(app_name=app_name, user_id="u")) == {"note_count": 2}


async def test_a_tool_returning_nan_does_not_stop_the_turn(
    store: DatabaseSessionService, app_name: str
) -> None:
    """A tool whose result holds NaN (a mean of nothing, a pandas gap): the turn goes on, the
    model gets the result (as genai sends it: null), and later turns work; it was refused,
    every such turn stopped with InvalidValueError and left a call with no result."""
    import math
    from collections.abc import AsyncGenerator

    from google.adk.agents.llm_agent import LlmAgent
    from google.adk.models.base_llm import BaseLlm
    from google.adk.models.llm_request import LlmRequest
    from google.adk.models.llm_response import LlmResponse

    seen: list = []

    class CallsMean(BaseLlm):
        model: str = "calls-mean"

        async def generate_content_async(
            self, llm_request: LlmRequest, stream: bool = False
        ) -> AsyncGenerator[LlmResponse, None]:
            part = llm_request.contents[-1].parts[0]
            if part.function_response is not None:
                seen.append(types.Content.model_validate(
                    llm_request.contents[-1]).model_dump(mode="json", exclude_none=True))
                reply = types.Part(text="The mean is not defined.")
            else:
                reply = types.Part(function_call=types.FunctionCall(name="mean_of", args={}))
            yield LlmResponse(content=types.Content(role="model", parts=[reply]))

    def mean_of() -> dict:
        """The mean of no values."""
        return {"mean": math.nan, "count": 0}

    agent = LlmAgent(name="analyst", model=CallsMean(), tools=[mean_of])
    runner = Runner(app_name=app_name, agent=agent, session_service=store)
    s = await store.create_session(app_name=app_name, user_id="u")
    for text in ("mean?", "and now?"):
        yielded = await run_turn(runner, "u", s.id, text)
        assert yielded[-1].content.parts[0].text == "The mean is not defined."
    assert len(seen) == 2
    assert seen[0]["parts"][0]["function_response"]["response"] == {"mean": None, "count": 0}
    stored = await store.get_session(app_name=app_name, user_id="u", session_id=s.id)
    responses = [e.content.parts[0].function_response for e in stored.events
                 if e.content.parts[0].function_response is not None]
    assert [r.response for r in responses] == [{"mean": None, "count": 0}] * 2
    assert len(stored.events) == 8  # per turn: user, call, result, answer
