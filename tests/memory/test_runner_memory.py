"""ADK's Runner with the memory service: load_memory and PreloadMemoryTool answer from memory.

A scripted model stands in for the LLM: the historian calls ``load_memory`` with the person's
question and repeats what came back; the manager (with ``PreloadMemoryTool``) repeats the
``PAST_CONVERSATIONS`` block ADK put in its request. The agents, tools and Runner are ADK's own.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator

from google.adk.agents.llm_agent import LlmAgent
from google.adk.memory.in_memory_memory_service import InMemoryMemoryService
from google.adk.models.base_llm import BaseLlm
from google.adk.models.llm_request import LlmRequest
from google.adk.models.llm_response import LlmResponse
from google.adk.runners import Runner
from google.adk.tools.load_memory_tool import load_memory_tool
from google.adk.tools.preload_memory_tool import PreloadMemoryTool
from google.genai import types

from multi_agent import DatabaseSessionService
from multi_agent.memory import DatabaseMemoryService

TOPICS = [
    "I want to buy Nvidia shares before the earnings call.",
    "Plan a dinner party with a mushroom risotto.",
    "Book the bullet train from Tokyo to Kyoto.",
]


class MemoryEchoLlm(BaseLlm):
    """Calls load_memory when it has the tool, then repeats the memories it was given."""

    model: str = "memory-echo"

    async def generate_content_async(
        self, llm_request: LlmRequest, stream: bool = False
    ) -> AsyncGenerator[LlmResponse, None]:
        last = llm_request.contents[-1].parts[-1]
        if "load_memory" in (llm_request.tools_dict or {}) and last.text:
            part = types.Part(function_call=types.FunctionCall(
                name="load_memory", args={"query": last.text}))
        elif last.function_response is not None:
            response = last.function_response.response
            result = response.get("result", response)
            if hasattr(result, "model_dump"):  # the live call carries the tool's own object
                result = result.model_dump(mode="json")
            memories = result.get("memories", [])
            said = [m["content"]["parts"][0]["text"] for m in memories]
            part = types.Part(text="From memory: " + json.dumps(said))
        else:
            blob = " ".join(p.text or "" for c in llm_request.contents for p in c.parts or [])
            past = blob.split("<PAST_CONVERSATIONS>")[1].split("</PAST_CONVERSATIONS>")[0] \
                if "<PAST_CONVERSATIONS>" in blob else ""
            part = types.Part(text="Preloaded: " + past.strip())
        yield LlmResponse(content=types.Content(role="model", parts=[part]))


async def turn(runner: Runner, memory: DatabaseMemoryService, store: DatabaseSessionService,
               sid: str, text: str) -> str:
    reply = ""
    async for event in runner.run_async(
        user_id="ann", session_id=sid,
        new_message=types.Content(role="user", parts=[types.Part(text=text)]),
    ):
        if event.content and event.content.parts and event.content.parts[0].text:
            reply = event.content.parts[0].text
    session = await store.get_session(app_name=runner.app_name, user_id="ann", session_id=sid)
    await memory.add_session_to_memory(session)  # after each turn
    return reply


async def fill_memory(runner: Runner, memory, store) -> None:
    for topic in TOPICS:
        session = await store.create_session(app_name=runner.app_name, user_id="ann")
        await turn(runner, memory, store, session.id, topic)


async def test_load_memory_recalls_an_earlier_session(
    store: DatabaseSessionService, memory: DatabaseMemoryService, app_name: str
) -> None:
    historian = LlmAgent(name="historian", model=MemoryEchoLlm(), tools=[load_memory_tool])
    runner = Runner(app_name=app_name, agent=historian, session_service=store,
                    memory_service=memory)
    await fill_memory(runner, memory, store)
    fresh = await store.create_session(app_name=app_name, user_id="ann")
    reply = await turn(runner, memory, store, fresh.id, "what did I say about Nvidia?")
    assert reply.startswith("From memory: ")
    recalled = json.loads(reply.removeprefix("From memory: "))
    assert TOPICS[0] in recalled
    assert not any("risotto" in r or "Kyoto" in r for r in recalled)


async def test_preload_memory_puts_the_past_into_the_request(
    store: DatabaseSessionService, memory: DatabaseMemoryService, app_name: str
) -> None:
    manager = LlmAgent(name="manager", model=MemoryEchoLlm(), tools=[PreloadMemoryTool()])
    runner = Runner(app_name=app_name, agent=manager, session_service=store,
                    memory_service=memory)
    await fill_memory(runner, memory, store)
    fresh = await store.create_session(app_name=app_name, user_id="ann")
    reply = await turn(runner, memory, store, fresh.id, "what did I say about the risotto?")
    assert "user: Plan a dinner party with a mushroom risotto." in reply
    assert "Nvidia" not in reply


async def test_remember_turns_plugin_indexes_every_turn(
    store: DatabaseSessionService, memory: DatabaseMemoryService, app_name: str
) -> None:
    from google.adk.apps.app import App

    from multi_agent.memory import BoundedContext, RememberTurnsPlugin

    ctx = BoundedContext(window_events=10)
    manager = LlmAgent(name="manager", model=MemoryEchoLlm(), tools=[PreloadMemoryTool()])
    app = App(name=app_name, root_agent=manager,
              plugins=[ctx.plugin(store), RememberTurnsPlugin()])
    runner = Runner(app=app, session_service=store, memory_service=memory)
    for topic in TOPICS:
        session = await store.create_session(app_name=app_name, user_id="ann")
        async for _ in runner.run_async(
            user_id="ann", session_id=session.id, run_config=ctx.run_config(),
            new_message=types.Content(role="user", parts=[types.Part(text=topic)]),
        ):
            pass
    found = await memory.search_memory(app_name=app_name, user_id="ann", query="Kyoto")
    assert found.memories[0].content.parts[0].text == TOPICS[2]  # the reply follows (context)
    fresh = await store.create_session(app_name=app_name, user_id="ann")
    reply = ""
    async for event in runner.run_async(
        user_id="ann", session_id=fresh.id, run_config=ctx.run_config(),
        new_message=types.Content(role="user", parts=[types.Part(text="Nvidia?")]),
    ):
        reply = event.content.parts[0].text
    assert "user: " + TOPICS[0] in reply


class CountingMemory(InMemoryMemoryService):
    """ADK's in-memory memory service (``adk api_server``'s default), counting its calls."""

    def __init__(self) -> None:
        super().__init__()
        self.whole: list[int] = []  # events handed over by each add_session_to_memory
        self.deltas: list[int] = []  # by each add_events_to_memory

    async def add_session_to_memory(self, session) -> None:
        self.whole.append(len(session.events))
        await super().add_session_to_memory(session)

    async def add_events_to_memory(self, **kwargs) -> None:
        self.deltas.append(len(kwargs["events"]))
        await super().add_events_to_memory(**kwargs)


async def test_remember_turns_hands_adks_memory_service_each_turn_once(
    store: DatabaseSessionService, app_name: str
) -> None:
    """ADK's memory service used to get the whole session every turn (its in-memory service
    deep-copies each event handed over); now it gets the session once, then each turn's new
    events, and still finds every turn."""
    from google.adk.apps.app import App

    from multi_agent.memory import BoundedContext, RememberTurnsPlugin

    ctx = BoundedContext(window_events=4)
    memory = CountingMemory()
    manager = LlmAgent(name="manager", model=MemoryEchoLlm(), tools=[PreloadMemoryTool()])
    app = App(name=app_name, root_agent=manager,
              plugins=[ctx.plugin(store), RememberTurnsPlugin()])
    runner = Runner(app=app, session_service=store, memory_service=memory)
    session = await store.create_session(app_name=app_name, user_id="ann")
    words = ["Nvidia", "risotto", "Kyoto", "tennis", "violin", "Lisbon"]
    for word in words:
        async for _ in runner.run_async(
            user_id="ann", session_id=session.id, run_config=ctx.run_config(),
            new_message=types.Content(role="user", parts=[types.Part(text=f"about {word}")]),
        ):
            pass
    assert len(memory.whole) == 1 and len(memory.deltas) == len(words) - 1
    assert all(n == 2 for n in memory.deltas)  # the person's message and the reply
    for word in words:  # the first turns are still there, long after the window moved on
        found = await memory.search_memory(app_name=app_name, user_id="ann", query=word)
        assert any(word in m.content.parts[0].text for m in found.memories), word
