"""Small builders shared by the tests."""

from __future__ import annotations

import asyncio
import os
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from google.adk.events.event import Event
from google.adk.events.event_actions import EventActions
from google.genai import types

_ROOT = Path(__file__).resolve().parents[1]


def text_event(
    text: str,
    *,
    author: str = "agent",
    invocation_id: str | None = None,
    state: dict[str, Any] | None = None,
    timestamp: float | None = None,
    **kwargs: Any,
) -> Event:
    """An event with text content (role user for author 'user', model otherwise)."""
    return Event(
        invocation_id=invocation_id or "inv-" + uuid.uuid4().hex[:8],
        author=author,
        content=types.Content(
            role="user" if author == "user" else "model", parts=[types.Part(text=text)]
        ),
        actions=EventActions(state_delta=dict(state or {})),
        timestamp=timestamp if timestamp is not None else time.time(),
        **kwargs,
    )


def call_event(name: str, args: dict[str, Any], *, author: str, invocation_id: str) -> Event:
    return Event(
        invocation_id=invocation_id,
        author=author,
        content=types.Content(
            role="model",
            parts=[types.Part(function_call=types.FunctionCall(id="c1", name=name, args=args))],
        ),
    )


def result_event(
    name: str, response: dict[str, Any], *, author: str, invocation_id: str,
    transfer_to: str | None = None,
) -> Event:
    return Event(
        invocation_id=invocation_id,
        author=author,
        content=types.Content(
            role="user",
            parts=[
                types.Part(
                    function_response=types.FunctionResponse(id="c1", name=name, response=response)
                )
            ],
        ),
        actions=EventActions(transfer_to_agent=transfer_to),
    )


def record_loads(service: Any, monkeypatch: Any) -> list[int]:
    """How many events each ``get_session`` of ``service`` returns, in call order."""
    loads: list[int] = []
    original = service.get_session

    async def recording(**kwargs: Any) -> Any:
        session = await original(**kwargs)
        if session is not None:
            loads.append(len(session.events))
        return session

    monkeypatch.setattr(service, "get_session", recording)
    return loads


async def run_processes(argvs: list[list[str]], *, seconds: float = 300) -> list[str]:
    """Runs ``python ARGV...`` for every ARGV at once, from the repository root (importable as
    ``tests.*``); their outputs, in order (each must exit 0)."""
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable, *argv, cwd=_ROOT, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(_ROOT)},
        )
        for argv in argvs
    ]
    outputs = []
    for proc in procs:
        out, err = await asyncio.wait_for(proc.communicate(), timeout=seconds)
        assert proc.returncode == 0, err.decode()[-2000:]
        outputs.append(out.decode())
    return outputs


async def run_twice_at_once(script: str, url: str) -> list[str]:
    """Runs ``python -c script url`` in two OS processes at once; their outputs (each must
    exit 0)."""
    return await run_processes([["-c", script, url]] * 2, seconds=120)
