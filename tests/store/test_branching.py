"""Runs as a tree: branch from an earlier run, switch back, delegation sub-runs, rewind."""

from __future__ import annotations

import pytest
from google.adk.models.base_llm import BaseLlm
from google.adk.runners import Runner
from google.genai import types

from multi_agent import DatabaseSessionService
from multi_agent.errors import RunNotFound
from tests.helpers import text_event
from tests.store.scripted_llm import build_agents


async def turn(store, s, n: int) -> str:
    inv = f"turn-{n}"
    await store.append_event(s, text_event(f"q{n}", author="user", invocation_id=inv))
    await store.append_event(s, text_event(f"a{n}", author="bot", invocation_id=inv,
                                           state={"last": n, f"t{n}": True, "user:seen": n}))
    return inv


async def texts(store, app, sid) -> list[str]:
    got = await store.get_session(app_name=app, user_id="u", session_id=sid)
    return [e.content.parts[0].text for e in got.events]


async def test_branch_and_switch_back(store: DatabaseSessionService, app_name: str) -> None:
    s = await store.create_session(app_name=app_name, user_id="u", state={"init": 1})
    for n in (1, 2, 3):
        await turn(store, s, n)
    result = await store.branch(app_name=app_name, user_id="u", session_id=s.id,
                                from_run_id="turn-1")
    assert result.runs_on_path == ["turn-1"]
    s = await store.get_session(app_name=app_name, user_id="u", session_id=s.id)
    assert s.state == {"init": 1, "last": 1, "t1": True, "user:seen": 3}  # user: not branched
    await turn(store, s, 4)
    assert await texts(store, app_name, s.id) == ["q1", "a1", "q4", "a4"]
    got = await store.get_session(app_name=app_name, user_id="u", session_id=s.id)
    assert got.state == {"init": 1, "last": 4, "t1": True, "t4": True, "user:seen": 4}
    runs = {r.run_id: r for r in await store.list_runs(app_name=app_name, user_id="u",
                                                       session_id=s.id)}
    assert runs["turn-2"].parent_run_id == "turn-1" and runs["turn-4"].parent_run_id == "turn-1"
    assert runs["turn-3"].parent_run_id == "turn-2"
    assert [r for r, info in runs.items() if info.on_path] == ["turn-1", "turn-4"]
    assert all(info.status == "completed" for info in runs.values())
    # Switch back to the sibling branch.
    await store.branch(app_name=app_name, user_id="u", session_id=s.id, from_run_id="turn-3")
    assert await texts(store, app_name, s.id) == ["q1", "a1", "q2", "a2", "q3", "a3"]
    got = await store.get_session(app_name=app_name, user_id="u", session_id=s.id)
    assert got.state == {"init": 1, "last": 3, "t1": True, "t2": True, "t3": True,
                         "user:seen": 4}


async def test_branch_makes_old_copies_stale(store: DatabaseSessionService, app_name: str) -> None:
    from google.adk.errors._stale_session_error import StaleSessionError

    s = await store.create_session(app_name=app_name, user_id="u")
    await turn(store, s, 1)
    await turn(store, s, 2)
    await store.branch(app_name=app_name, user_id="u", session_id=s.id, from_run_id="turn-1")
    with pytest.raises(StaleSessionError):
        await store.append_event(s, text_event("late"))


async def test_branch_unknown_run(store: DatabaseSessionService, app_name: str) -> None:
    s = await store.create_session(app_name=app_name, user_id="u")
    await turn(store, s, 1)
    with pytest.raises(RunNotFound, match="turn-1"):
        await store.branch(app_name=app_name, user_id="u", session_id=s.id, from_run_id="nope")


async def test_delegation_subruns_and_rewind_in_tree(
    store: DatabaseSessionService, app_name: str
) -> None:
    runner = Runner(app_name=app_name, agent=build_agents(), session_service=store)
    s = await store.create_session(app_name=app_name, user_id="u")
    invs = []
    for text in ("one", "two"):
        events = [
            e async for e in runner.run_async(
                user_id="u", session_id=s.id,
                new_message=types.Content(role="user", parts=[types.Part(text=text)]),
            )
        ]
        invs.append(events[0].invocation_id)
    await runner.rewind_async(user_id="u", session_id=s.id, rewind_before_invocation_id=invs[1])
    runs = await store.list_runs(app_name=app_name, user_id="u", session_id=s.id)
    kinds = [(r.kind, r.parent_run_id, r.agent, r.status) for r in runs]
    assert kinds[0] == ("invocation", None, "coordinator", "completed")
    assert kinds[1] == ("delegation", invs[0], "worker", "completed")
    assert runs[1].event_count == 3  # tool call, tool result, answer
    assert runs[1].total_tokens == 30
    assert kinds[2] == ("invocation", invs[0], "worker", "completed")  # routed to worker
    assert kinds[3][0] == "rewind" and kinds[3][1] == invs[1]


async def test_cancelled_run_is_visible(store: DatabaseSessionService, app_name: str) -> None:
    from multi_agent.errors import InvalidValueError

    s = await store.create_session(app_name=app_name, user_id="u")
    await store.append_event(s, text_event("q", author="user", invocation_id="cut"))
    await store.set_run_status(app_name=app_name, user_id="u", session_id=s.id, run_id="cut",
                               status="cancelled", error="interrupted by the user")
    runs = await store.list_runs(app_name=app_name, user_id="u", session_id=s.id)
    assert [(r.run_id, r.status, r.error, r.is_head) for r in runs] == [
        ("cut", "cancelled", "interrupted by the user", True)
    ]
    with pytest.raises(InvalidValueError):
        await store.set_run_status(app_name=app_name, user_id="u", session_id=s.id,
                                   run_id="cut", status="exploded")
    with pytest.raises(RunNotFound):
        await store.set_run_status(app_name=app_name, user_id="u", session_id=s.id,
                                   run_id="nope", status="failed")


class _AgentToolLlm(BaseLlm):
    """Coordinator: call the worker AgentTool, then answer. Worker: answer."""

    model: str = "scripted-agent-tool"

    async def generate_content_async(self, llm_request, stream: bool = False):
        from google.adk.models.llm_response import LlmResponse

        tools = llm_request.tools_dict or {}
        last = llm_request.contents[-1].parts[0] if llm_request.contents else None
        if "helper" not in tools:
            part = types.Part(text="helper says hi")
        elif last is not None and last.function_response is not None:
            part = types.Part(text="Done.")
        else:
            part = types.Part(
                function_call=types.FunctionCall(name="helper", args={"request": "hi"})
            )
        yield LlmResponse(content=types.Content(role="model", parts=[part]))


async def test_agent_tool_calls_are_sub_runs(store: DatabaseSessionService, app_name: str) -> None:
    from google.adk.agents.llm_agent import LlmAgent
    from google.adk.apps.app import App
    from google.adk.tools.agent_tool import AgentTool

    from multi_agent.store import RunTreePlugin

    llm = _AgentToolLlm()
    helper = LlmAgent(name="helper", model=llm, instruction="Help.")
    boss = LlmAgent(name="boss", model=llm, instruction="Use helper.", tools=[AgentTool(helper)])
    app = App(name=app_name, root_agent=boss, plugins=[RunTreePlugin()])
    runner = Runner(app=app, session_service=store)
    s = await store.create_session(app_name=app_name, user_id="u")
    events = [
        e async for e in runner.run_async(
            user_id="u", session_id=s.id,
            new_message=types.Content(role="user", parts=[types.Part(text="go")]),
        )
    ]
    assert events[-1].content.parts[0].text == "Done."
    runs = await store.list_runs(app_name=app_name, user_id="u", session_id=s.id)
    assert [(r.kind, r.parent_run_id, r.agent, r.status) for r in runs] == [
        ("invocation", None, "boss", "completed"),
        ("agent_tool", events[0].invocation_id, "helper", "completed"),
    ]
