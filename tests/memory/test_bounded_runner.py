"""Bounded context with ADK's real Runner on the store: what a turn loads and sends stays flat.

A scripted team stands in for the model: the manager hands off to the analyst, who calls a tool
and then answers. Every model request is recorded (contents, characters, whether it carries a
summary); every ``get_session`` the Runner makes is recorded (events loaded).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import AsyncGenerator

import pytest
from google.adk.agents.llm_agent import LlmAgent
from google.adk.apps.app import App
from google.adk.models.base_llm import BaseLlm
from google.adk.models.llm_request import LlmRequest
from google.adk.models.llm_response import LlmResponse
from google.adk.runners import Runner
from google.genai import types

from multi_agent import DatabaseSessionService
from multi_agent.memory.context import BoundedContext
from multi_agent.memory.summarizer import HEADER
from tests.helpers import call_event, record_loads, result_event, text_event

REQUESTS: list[dict] = []
PRIORS = (10, 100, 1000)


class TeamLlm(BaseLlm):
    """Manager: hand off to the analyst. Analyst: call get_price, then answer."""

    model: str = "team-script"

    async def generate_content_async(
        self, llm_request: LlmRequest, stream: bool = False
    ) -> AsyncGenerator[LlmResponse, None]:
        contents = llm_request.contents
        blob = " ".join(p.text or "" for c in contents for p in c.parts or [])
        REQUESTS.append({
            "contents": len(contents),
            "chars": sum(len(c.model_dump_json(exclude_none=True)) for c in contents),
            "summary": HEADER in blob,
        })
        last = contents[-1].parts[-1]
        if "get_price" not in (llm_request.tools_dict or {}):
            part = types.Part(function_call=types.FunctionCall(
                name="transfer_to_agent", args={"agent_name": "analyst"}))
        elif last.function_response is not None:
            part = types.Part(text="The price is 120 dollars. It rose today.")
        else:
            part = types.Part(function_call=types.FunctionCall(name="get_price", args={}))
        yield LlmResponse(content=types.Content(role="model", parts=[part]))


def get_price() -> dict:
    """Returns the price."""
    return {"price": 120}


def build(store: DatabaseSessionService, app_name: str, ctx: BoundedContext | None) -> Runner:
    llm = TeamLlm()
    analyst = LlmAgent(name="analyst", model=llm, tools=[get_price], instruction="Prices.")
    manager = LlmAgent(name="manager", model=llm, sub_agents=[analyst], instruction="Route.")
    app = App(
        name=app_name, root_agent=manager,
        events_compaction_config=ctx.compaction_config() if ctx else None,
        plugins=[ctx.plugin(store)] if ctx else [],
    )
    return Runner(app=app, session_service=store)


async def turn(runner: Runner, sid: str, ctx: BoundedContext | None, text: str) -> str:
    reply = ""
    async for event in runner.run_async(
        user_id="ann", session_id=sid,
        new_message=types.Content(role="user", parts=[types.Part(text=text)]),
        run_config=ctx.run_config() if ctx else None,
    ):
        if event.content and event.content.parts and event.content.parts[0].text:
            reply = event.content.parts[0].text
    return reply


async def test_many_turns_keep_a_window_and_a_summary(
    store: DatabaseSessionService, app_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    ctx = BoundedContext(window_events=16, compaction_interval=3, overlap_size=1)
    runner = build(store, app_name, ctx)
    session = await store.create_session(app_name=app_name, user_id="ann")
    loads = record_loads(store, monkeypatch)
    REQUESTS.clear()
    for i in range(24):
        assert await turn(runner, session.id, ctx, f"Price check {i}. Thanks.") \
            == "The price is 120 dollars. It rose today."
    assert len(loads) == 24 and max(loads) <= 16          # each turn loads the window only
    stored = await store.get_session(app_name=app_name, user_id="ann", session_id=session.id)
    assert len(stored.events) > 100                       # storage keeps every event
    late = REQUESTS[len(REQUESTS) // 2:]
    assert all(r["summary"] for r in late)                # ... plus a summary of the past
    assert max(r["chars"] for r in late) < 3 * min(r["chars"] for r in late)
    plugin = runner.plugin_manager.plugins[0]
    assert plugin.trimmed_events > 0


async def measure(
    store: DatabaseSessionService, app_name: str, monkeypatch: pytest.MonkeyPatch,
    priors: tuple[int, ...], backend: str,
) -> dict[tuple[int, str], tuple[int, int, float]]:
    """(prior events, context) -> (events loaded, ~tokens sent, median seconds of 3 turns)."""
    ctx = BoundedContext(window_events=40)
    report: dict[tuple[int, str], tuple[int, int, float]] = {}
    for prior in priors:
        session = await store.create_session(app_name=app_name, user_id="ann")
        for n in range(prior // 4):
            inv = f"old-{n}"
            for event in (
                text_event(f"Old question {n} about prices.", author="user", invocation_id=inv),
                call_event("get_price", {}, author="analyst", invocation_id=inv),
                result_event("get_price", {"price": n}, author="analyst", invocation_id=inv),
                text_event(f"Old answer {n}.", author="analyst", invocation_id=inv),
            ):
                await store.append_event(session, event)
        for label, config in (("bounded", ctx), ("adk default", None)):
            runner = build(store, app_name, config)
            await turn(runner, session.id, config, "Warm up.")  # first handoff, first summary
            loads = record_loads(store, monkeypatch)
            REQUESTS.clear()
            times = []
            for _ in range(3):
                started = time.perf_counter()
                await turn(runner, session.id, config, "What is the price now?")
                times.append(time.perf_counter() - started)
            monkeypatch.undo()
            report[prior, label] = (loads[0], max(r["chars"] for r in REQUESTS) // 4,
                                    statistics.median(times))
    print(f"\n[{backend}] prior events | context | events loaded | ~tokens sent | turn time")
    for (prior, label), (loaded, tokens, elapsed) in report.items():
        print(f"  {prior:>6} | {label:<11} | {loaded:>6} | {tokens:>6} | {elapsed * 1000:7.1f} ms")
    return report


async def test_turn_cost_is_flat_in_the_length_of_the_history(
    store: DatabaseSessionService, app_name: str, monkeypatch: pytest.MonkeyPatch,
    backend: str,
) -> None:
    report = await measure(store, app_name, monkeypatch, (12, 100, 1000), backend)
    assert report[1000, "adk default"][0] >= 1000          # ADK's default loads everything
    assert all(loaded <= 40 for (_, label), (loaded, _, _) in report.items()
               if label == "bounded")
    # Once the window is full, what a turn sends no longer grows with the history.
    assert report[1000, "bounded"][1] <= 1.2 * report[100, "bounded"][1]


@pytest.mark.soak
async def test_turn_cost_at_10000_prior_events(
    store: DatabaseSessionService, app_name: str, monkeypatch: pytest.MonkeyPatch,
    backend: str,
) -> None:
    report = await measure(store, app_name, monkeypatch, (12, 1000, 10_000), backend)
    small, big = report[12, "bounded"], report[10_000, "bounded"]
    assert big[0] <= 40 and big[2] <= 2 * max(small[2], 0.02)


async def test_plugin_puts_the_older_summary_before_a_full_window(
    store: DatabaseSessionService, app_name: str
) -> None:
    from types import SimpleNamespace

    from google.adk.sessions.base_session_service import GetSessionConfig

    from multi_agent.memory.summarizer import ExtractiveSummarizer

    session = await store.create_session(app_name=app_name, user_id="ann")
    early = [text_event(f"Early fact {i}. More.", author="user" if i % 2 else "analyst",
                        timestamp=1000.0 + i) for i in range(6)]
    for event in early:
        await store.append_event(session, event)
    compaction = await ExtractiveSummarizer().maybe_summarize_events(events=early)
    compaction.timestamp = 1006.0
    await store.append_event(session, compaction)
    for i in range(30):
        await store.append_event(session, text_event(
            f"Later {i}", author="user" if i % 2 == 0 else "analyst", timestamp=1010.0 + i))
    plugin = BoundedContext(window_events=10).plugin(store)

    async def before_run(window: int, scan: int = 400):
        plugin.summary_scan_events = scan
        loaded = await store.get_session(app_name=app_name, user_id="ann",
                                         session_id=session.id,
                                         config=GetSessionConfig(num_recent_events=window))
        loaded.events.append(text_event("Now?", author="user", timestamp=2000.0))
        await plugin.before_run_callback(invocation_context=SimpleNamespace(session=loaded))
        return loaded.events

    events = await before_run(10)
    assert events[0].actions.compaction is not None
    assert "Early fact 0." in events[0].actions.compaction.compacted_content.parts[0].text
    assert events[1].author == "user" and plugin.summaries_added == 1
    assert len(events) <= 12
    # The scan is bounded: a summary further back than it is not looked for.
    assert (await before_run(10, scan=5))[0].actions.compaction is None
    # A window that is the whole session needs no summary from outside it.
    plugin.window_events = 100
    whole = await before_run(100)
    assert sum(1 for e in whole if e.actions.compaction) == 1 and plugin.summaries_added == 1
