"""Helpers that drive the team through ADK's Runner, and read what it stored."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from typing import Any

from google.adk.events.event import Event
from google.adk.models.base_llm import BaseLlm
from google.adk.models.llm_request import LlmRequest
from google.adk.models.llm_response import LlmResponse
from google.adk.runners import Runner
from google.adk.sessions.session import Session
from google.genai import types

from multi_agent.team.app import APP_NAME, user_message


@dataclass
class Turn:
    """The events one user message produced."""

    events: list[Event] = field(default_factory=list)

    @property
    def reply(self) -> str:
        """The text of the last agent event with text."""
        for event in reversed(self.events):
            if event.content and event.content.parts:
                text = "".join(p.text or "" for p in event.content.parts)
                if text:
                    return text
        return ""

    @property
    def replier(self) -> str:
        for event in reversed(self.events):
            if event.content and any(p.text for p in event.content.parts or []):
                return event.author
        return ""

    def calls(self) -> list[tuple[str, str, dict]]:
        """(author, tool name, args) of every function call, in order."""
        return [
            (e.author, c.name, dict(c.args or {})) for e in self.events
            for c in e.get_function_calls()
        ]

    def transfers(self) -> list[tuple[str, str]]:
        """(author, target) of every event carrying actions.transfer_to_agent."""
        return [(e.author, e.actions.transfer_to_agent) for e in self.events
                if e.actions and e.actions.transfer_to_agent]


async def say(runner: Runner, user_id: str, session_id: str, text: str) -> Turn:
    """Sends ``text`` as ``user_id`` and collects the events."""
    turn = Turn()
    async for event in runner.run_async(
        user_id=user_id, session_id=session_id, new_message=user_message(text)
    ):
        turn.events.append(event)
    return turn


async def stored(runner: Runner, user_id: str, session_id: str) -> Session:
    """The session as the store has it now."""
    session = await runner.session_service.get_session(
        app_name=APP_NAME, user_id=user_id, session_id=session_id
    )
    assert session is not None
    return session


USAGE = types.GenerateContentResponseUsageMetadata(
    prompt_token_count=1, candidates_token_count=1, total_token_count=2
)


class CallsAtOnce(BaseLlm):
    """A scripted model: answers the first request with every call of ``calls`` in one
    response (parallel tool calls), and the request carrying their results with "done".
    :meth:`before_calls` runs just before the calls are returned (a subclass may make another
    writer act there)."""

    model: str = "calls-at-once"
    calls: list[tuple[str, dict[str, Any]]] = []

    async def before_calls(self) -> None:
        """Nothing by default."""

    async def generate_content_async(
        self, llm_request: LlmRequest, stream: bool = False
    ) -> AsyncGenerator[LlmResponse, None]:
        last = llm_request.contents[-1]
        if any(p.function_response for p in last.parts or []):
            parts = [types.Part(text="done")]
        else:
            await self.before_calls()
            parts = [types.Part(function_call=types.FunctionCall(name=n, args=a))
                     for n, a in self.calls]
        yield LlmResponse(content=types.Content(role="model", parts=parts), usage_metadata=USAGE)
