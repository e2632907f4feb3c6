"""ADK's ``Runner.rewind_async`` on the store: the state it leaves, at every scope.

ADK computes a rewind's state delta on the caller's copy from its events' deltas alone and
sets every other session key to ``None``: the state the session was created with was wiped by
every rewind (google/adk-python #4839, #4933), and under ``?window=N`` so was everything
written before the window, and a rewind to an invocation before the window failed with
``InvocationNotFoundError``. The store computes the delta from what it holds.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator

from google.adk.agents.llm_agent import LlmAgent
from google.adk.events.event import Event
from google.adk.events.event_actions import EventActions
from google.adk.models.base_llm import BaseLlm
from google.adk.models.llm_request import LlmRequest
from google.adk.models.llm_response import LlmResponse
from google.adk.runners import Runner
from google.adk.tools.tool_context import ToolContext
from google.genai import types

from multi_agent import DatabaseSessionService
from multi_agent.memory.bounded_service import BoundedSessionService, _rewound_in_window

APP = "rewind_app"


class KeyValueLlm(BaseLlm):
    """"set K V" -> calls remember(K, V), then answers "stored V"; records every request's
    texts (what the Runner gave the model)."""

    model: str = "scripted-kv"
    seen: list[list[str]] = []

    async def generate_content_async(
        self, llm_request: LlmRequest, stream: bool = False
    ) -> AsyncGenerator[LlmResponse, None]:
        texts = [p.text for c in llm_request.contents for p in (c.parts or []) if p.text]
        self.seen.append(texts)
        last = llm_request.contents[-1].parts[0]
        if last.function_response is not None:
            part = types.Part(text=f"stored {last.function_response.response['value']}")
        else:
            _, key, value = texts[-1].split()
            part = types.Part(function_call=types.FunctionCall(
                name="remember", args={"key": key, "value": value}))
        yield LlmResponse(content=types.Content(role="model", parts=[part]))


def remember(key: str, value: str, tool_context: ToolContext) -> dict:
    """Stores a value in session state, and counts in user: state."""
    tool_context.state[key] = value
    tool_context.state["user:writes"] = tool_context.state.get("user:writes", 0) + 1
    return {"value": value}


def _runner(service: DatabaseSessionService) -> tuple[Runner, KeyValueLlm]:
    llm = KeyValueLlm(seen=[])
    agent = LlmAgent(name="keeper", model=llm, tools=[remember], instruction="Keep values.")
    return Runner(app_name=APP, agent=agent, session_service=service), llm


async def _say(runner: Runner, sid: str, text: str) -> str:
    """One turn; returns its invocation id."""
    invocation = ""
    async for event in runner.run_async(
        user_id="u", session_id=sid,
        new_message=types.Content(role="user", parts=[types.Part(text=text)]),
    ):
        invocation = event.invocation_id
    return invocation


async def _state(service: DatabaseSessionService, sid: str) -> dict:
    from google.adk.sessions.base_session_service import GetSessionConfig

    stored = await service.get_session(app_name=APP, user_id="u", session_id=sid,
                                       config=GetSessionConfig(num_recent_events=10**6))
    assert stored is not None
    return dict(stored.state)


async def test_a_rewind_keeps_the_state_the_session_was_created_with(
    store: DatabaseSessionService, db_url: str, backend: str,
) -> None:
    runner, _ = _runner(store)
    s = await store.create_session(app_name=APP, user_id="u",
                                   state={"tenant": "t1", "colour": "red", "user:name": "Ann"})
    first = await _say(runner, s.id, "set colour blue")
    second = await _say(runner, s.id, "set size 9")
    await _say(runner, s.id, "set colour green")
    await runner.rewind_async(user_id="u", session_id=s.id, rewind_before_invocation_id=second)
    # ADK's own delta: tenant None, colour blue, size None. "tenant" was never in an event.
    assert await _state(store, s.id) == {
        "tenant": "t1", "colour": "blue", "size": None, "user:name": "Ann", "user:writes": 3}
    stored = await store.get_session(app_name=APP, user_id="u", session_id=s.id)
    assert stored.events[-1].actions.rewind_before_invocation_id == second
    assert stored.events[-1].actions.state_delta == {"size": None, "colour": "blue"}
    # Back to before the first turn: the creation's values, not None.
    await runner.rewind_async(user_id="u", session_id=s.id, rewind_before_invocation_id=first)
    assert await _state(store, s.id) == {
        "tenant": "t1", "colour": "red", "size": None, "user:name": "Ann", "user:writes": 3}
    # The Runner goes on from there, and a new service reads the same state.
    await _say(runner, s.id, "set size 4")
    assert (await _state(store, s.id))["size"] == "4"
    if backend != "sqlite_memory":  # (its database is the service's own)
        async with DatabaseSessionService(db_url) as again:
            assert (await _state(again, s.id))["colour"] == "red"


async def test_a_rewind_over_an_earlier_rewind(store: DatabaseSessionService) -> None:
    runner, _ = _runner(store)
    s = await store.create_session(app_name=APP, user_id="u", state={"a": "0"})
    await _say(runner, s.id, "set a 1")
    two = await _say(runner, s.id, "set a 2")
    await _say(runner, s.id, "set b 3")
    await runner.rewind_async(user_id="u", session_id=s.id, rewind_before_invocation_id=two)
    assert await _state(store, s.id) == {"a": "1", "b": None, "user:writes": 3}
    four = await _say(runner, s.id, "set c 4")
    await _say(runner, s.id, "set a 5")
    await runner.rewind_async(user_id="u", session_id=s.id, rewind_before_invocation_id=four)
    # The state just after the first rewind, its None for "b" included.
    assert await _state(store, s.id) == {"a": "1", "b": None, "c": None, "user:writes": 5}


async def test_a_rewind_after_a_trim(store: DatabaseSessionService) -> None:
    """The trimmed events' state lives in the session's initial state: a rewind keeps it."""
    runner, _ = _runner(store)
    s = await store.create_session(app_name=APP, user_id="u", state={"tenant": "t1"})
    invocations = [await _say(runner, s.id, f"set k{i} v{i}") for i in range(4)]
    report = await store.trim_sessions(keep_last_events=8, app_name=APP)
    assert report.totals()["events"] == 8
    await runner.rewind_async(user_id="u", session_id=s.id,
                              rewind_before_invocation_id=invocations[3])
    assert await _state(store, s.id) == {
        "tenant": "t1", "k0": "v0", "k1": "v1", "k2": "v2", "k3": None, "user:writes": 4}


async def test_a_rewind_under_a_window_sees_the_whole_history(db_url: str) -> None:
    async with BoundedSessionService(db_url, window=10) as service:
        runner, llm = _runner(service)
        s = await service.create_session(app_name=APP, user_id="u", state={"tenant": "t1"})
        invocations = [await _say(runner, s.id, f"set k{i} v{i}") for i in range(6)]
        window = await service.get_session(app_name=APP, user_id="u", session_id=s.id)
        # 4 events a turn, the window's start moved to a human message: the last two turns.
        assert [e.invocation_id for e in window.events] == [invocations[4]] * 4 + [
            invocations[5]] * 4
        # Into the window: what was written before it stays (ADK's delta set k0..k4 to None).
        await runner.rewind_async(user_id="u", session_id=s.id,
                                  rewind_before_invocation_id=invocations[5])
        assert await _state(service, s.id) == {
            "tenant": "t1", **{f"k{i}": f"v{i}" for i in range(5)}, "k5": None,
            "user:writes": 6}
        # To before the window (was InvocationNotFoundError).
        await runner.rewind_async(user_id="u", session_id=s.id,
                                  rewind_before_invocation_id=invocations[1])
        assert await _state(service, s.id) == {
            "tenant": "t1", "k0": "v0", **{f"k{i}": None for i in range(1, 6)},
            "user:writes": 6}
        # The window no longer offers the rewound turns as context, nor does the next turn's
        # model request hold them.
        window = await service.get_session(app_name=APP, user_id="u", session_id=s.id)
        texts = {p.text for e in window.events for p in (e.content.parts if e.content else [])
                 if p.text}
        assert not texts & {f"set k{i} v{i}" for i in range(1, 6)}
        llm.seen.clear()
        await _say(runner, s.id, "set k9 v9")
        assert llm.seen and not set(llm.seen[0]) & {f"stored v{i}" for i in range(1, 6)}
        assert (await _state(service, s.id))["k9"] == "v9"


def _event(invocation: str, rewind_to: str | None = None) -> Event:
    return Event(author="user", invocation_id=invocation,
                 actions=EventActions(rewind_before_invocation_id=rewind_to))


def test_the_window_cut_follows_adks_backward_walk() -> None:
    a, b, r1, c, r2 = (_event("a"), _event("b"), _event("r1", "x"), _event("c"),
                       _event("r2", "b"))
    assert _rewound_in_window([a, b, c]) == 0
    assert _rewound_in_window([a, b, r1, c]) == 2  # x began before the window
    # r2 took back b..r2, r1 with it: nothing is cut, ADK drops b..r2 itself.
    assert _rewound_in_window([a, b, r1, c, r2]) == 0
    assert _rewound_in_window([a, _event("r0", "a"), b]) == 0  # a rewind within the window
