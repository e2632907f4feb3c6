"""``?window=N``: get_session without a config returns the bounded context (opt-in deviation)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import httpx
import pytest
from google.adk.events.event import Event
from google.adk.events.event_actions import EventActions, EventCompaction
from google.adk.sessions.base_session_service import GetSessionConfig
from google.genai import types

from multi_agent import DatabaseSessionService
from multi_agent.memory.bounded_service import BoundedSessionService
from multi_agent.services import session_service_from_uri
from tests.adk_cli import adk_server, adk_turn, texts
from tests.helpers import call_event, result_event, text_event

WEATHER_AGENT = '''
import multi_agent
from google.adk.agents import LlmAgent


def get_weather(city: str) -> dict:
    """Returns the current weather report for a city."""
    return {"status": "success", "report": f"It is sunny in {city}."}


root_agent = LlmAgent(name="helper", model="offline-rules", tools=[get_weather])
'''


async def _turn(service: DatabaseSessionService, session, i: int) -> None:
    inv = f"inv-{i}"
    for event in (text_event(f"weather {i}?", author="user", invocation_id=inv),
                  call_event("get_weather", {"city": str(i)}, author="helper", invocation_id=inv),
                  result_event("get_weather", {"report": "sunny"}, author="helper",
                               invocation_id=inv),
                  text_event(f"sunny {i}", author="helper", invocation_id=inv)):
        await service.append_event(session, event)


def _summary(upto: float) -> Event:
    return Event(author="user", invocation_id="compaction", actions=EventActions(
        compaction=EventCompaction(start_timestamp=0.0, end_timestamp=upto,
                                   compacted_content=types.Content(
                                       role="model", parts=[types.Part(text="earlier: weather")]))))


async def test_a_call_without_config_gets_the_window_and_the_older_summary(db_url: str) -> None:
    service = BoundedSessionService(db_url, window=6)
    try:
        session = await service.create_session(app_name="a", user_id="u", session_id="s")
        for i in range(3):
            await _turn(service, session, i)
        await service.append_event(session, _summary(session.events[-1].timestamp))
        for i in range(3, 8):
            await _turn(service, session, i)
        bounded = await service.get_session(app_name="a", user_id="u", session_id="s")
        assert bounded is not None
        assert bounded.events[0].actions.compaction is not None  # the summary first
        window = bounded.events[1:]
        assert 1 <= len(window) <= 6
        assert not window[0].get_function_responses()  # no result without its call
        assert window[-1].content.parts[0].text == "sunny 7"
        whole = await service.get_session(app_name="a", user_id="u", session_id="s",
                                          config=GetSessionConfig())
        assert len(whole.events) == 8 * 4 + 1  # a call with a config is answered as asked
        # appending to the bounded copy works and stores everything
        await service.append_event(bounded, text_event("more", author="user",
                                                       invocation_id="inv-9"))
        again = await service.get_session(app_name="a", user_id="u", session_id="s",
                                          config=GetSessionConfig())
        assert len(again.events) == 8 * 4 + 2
    finally:
        await service.close()


async def test_a_short_session_comes_whole(db_url: str) -> None:
    service = BoundedSessionService(db_url, window=50)
    try:
        session = await service.create_session(app_name="a", user_id="u", session_id="s")
        await _turn(service, session, 0)
        got = await service.get_session(app_name="a", user_id="u", session_id="s")
        assert len(got.events) == 4
    finally:
        await service.close()


def test_the_uri_option(tmp_path: Path) -> None:
    service = session_service_from_uri(f"multi-agent+sqlite:///{tmp_path}/x.db?window=60")
    assert isinstance(service, BoundedSessionService) and service.window == 60
    plain = session_service_from_uri(f"multi-agent+sqlite:///{tmp_path}/x.db")
    assert not isinstance(plain, BoundedSessionService)
    for bad in ("0", "-3", "ten", "1.5", ""):
        with pytest.raises(ValueError, match="window"):
            session_service_from_uri(f"multi-agent+sqlite:///{tmp_path}/x.db?window={bad}")


def test_adk_api_server_with_a_window(tmp_path: Path) -> None:
    """Twelve turns through ``adk api_server``: each served turn loads a bounded session, the
    database keeps every event."""
    db = tmp_path / "sessions.db"
    agents = tmp_path / "agents"
    (agents / "helper").mkdir(parents=True)
    (agents / "services.py").write_text("import multi_agent\n")
    (agents / "helper" / "__init__.py").write_text("from . import agent\n")
    (agents / "helper" / "agent.py").write_text(WEATHER_AGENT)
    uri = f"multi-agent+sqlite:///{db}?window=8"
    env = {**os.environ, "ADK_DISABLE_LOAD_DOTENV": "1"}
    with adk_server(Path(sys.executable).with_name("adk"), "api_server", agents,
                    ["--session_service_uri", uri], cwd=tmp_path, env=env) as base:
        sid = httpx.post(f"{base}/apps/helper/users/u/sessions", json={}).json()["id"]
        for i in range(12):
            events = adk_turn(base, "helper", "u", sid, f"weather in City{i}?")
            assert any(f"sunny in City{i}" in text for _, text in texts(events)), events
        got = httpx.get(f"{base}/apps/helper/users/u/sessions/{sid}").json()
        assert len(got["events"]) <= 8
    import asyncio

    async def count() -> int:
        async with DatabaseSessionService(f"sqlite+aiosqlite:///{db}") as store:
            whole = await store.get_session(app_name="helper", user_id="u", session_id=sid)
            return len(whole.events)

    assert asyncio.run(count()) == 12 * 4
