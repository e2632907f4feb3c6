"""Helpers that drive the team through ADK's Runner, and read what it stored."""

from __future__ import annotations

from dataclasses import dataclass, field

from google.adk.events.event import Event
from google.adk.runners import Runner
from google.adk.sessions.session import Session

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
