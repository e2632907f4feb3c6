"""The issue's scripted conversation, shared by the run-tree, transfer and CLI tests.

Three turns through ADK's own Runner with the scripted coordinator → worker pair (turn 1 is
delegated; later turns go straight to the worker, who spoke last), a branch from turn 1 and a
fourth turn. The worker's tool counts notes in session state and in ``user:`` state.
"""

from __future__ import annotations

from dataclasses import dataclass

from google.adk.runners import Runner
from google.genai import types

from multi_agent import DatabaseSessionService
from tests.store.scripted_llm import build_agents

USER = "ann"


async def say(runner: Runner, session_id: str, text: str, *, user_id: str = USER) -> str:
    """One turn; returns its invocation (run) id."""
    events = [
        e
        async for e in runner.run_async(
            user_id=user_id, session_id=session_id,
            new_message=types.Content(role="user", parts=[types.Part(text=text)]),
        )
    ]
    assert events, "the runner produced no events"
    return events[0].invocation_id


@dataclass
class Scenario:
    """The runs of the scripted conversation: turns[0] is turn 1."""

    app_name: str
    session_id: str
    turns: list[str]


async def three_turns_branch_fourth(
    store: DatabaseSessionService, app_name: str, *, session_id: str = "s1"
) -> Scenario:
    """Turns 1-3, ``branch`` from turn 1, turn 4."""
    runner = Runner(app_name=app_name, agent=build_agents(), session_service=store)
    await store.create_session(
        app_name=app_name, user_id=USER, session_id=session_id, state={"topic": "notes"}
    )
    turns = [await say(runner, session_id, text) for text in ("one", "two", "three")]
    await store.branch(
        app_name=app_name, user_id=USER, session_id=session_id, from_run_id=turns[0]
    )
    turns.append(await say(runner, session_id, "four"))
    return Scenario(app_name=app_name, session_id=session_id, turns=turns)
