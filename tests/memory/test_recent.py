"""recent_user_events: a user's latest messages across sessions in one SQL statement (#5300)."""

from __future__ import annotations

import pytest
from sqlalchemy import event

from multi_agent import DatabaseSessionService
from multi_agent.errors import InvalidValueError
from multi_agent.memory import DatabaseMemoryService
from tests.helpers import call_event, text_event


def count_statements(memory: DatabaseMemoryService) -> list[str]:
    """Records every SQL statement the memory's engine runs from now on."""
    backend = memory.backend
    engine = backend.sync_engine or backend.async_engine.sync_engine
    seen: list[str] = []
    event.listen(engine, "before_cursor_execute",
                 lambda conn, cur, stmt, params, ctx, many: seen.append(stmt))
    return seen


async def test_recent_messages_across_sessions_in_one_statement(
    store: DatabaseSessionService, memory: DatabaseMemoryService, app_name: str
) -> None:
    ts = 1_700_000_000.0
    sessions = []
    for n in range(5):
        session = await store.create_session(app_name=app_name, user_id="ann")
        sessions.append(session)
        for i in range(4):
            ts += 1
            author = "user" if i % 2 == 0 else "manager"
            await store.append_event(
                session, text_event(f"s{n} m{i}", author=author, timestamp=ts)
            )
        await store.append_event(
            session, call_event("tool", {}, author="manager", invocation_id="x")
        )
    other = await store.create_session(app_name=app_name, user_id="bob")
    await store.append_event(other, text_event("bob's", author="user", timestamp=ts + 100))
    await memory.prepare()

    statements = count_statements(memory)
    recent = await memory.recent_user_events(app_name=app_name, user_id="ann", limit=6)
    assert len([s for s in statements if "ma_events" in s]) == 1
    assert [m.text for m in recent] == ["s4 m3", "s4 m2", "s4 m1", "s4 m0", "s3 m3", "s3 m2"]
    assert [m.session_id for m in recent[:4]] == [sessions[4].id] * 4

    humans = await memory.recent_user_events(
        app_name=app_name, user_id="ann", limit=3, message_types=["human"],
        exclude_session_id=sessions[4].id,
    )
    assert [(m.text, m.source) for m in humans] == [
        ("s3 m2", "user"), ("s3 m0", "user"), ("s2 m2", "user")
    ]
    calls = await memory.recent_user_events(
        app_name=app_name, user_id="ann", limit=100, message_types=["tool_call"]
    )
    assert len(calls) == 5 and all(m.text is None for m in calls)
    assert await memory.recent_user_events(app_name=app_name, user_id="carol", limit=5) == []


@pytest.mark.parametrize(
    "kwargs", [{"limit": 0}, {"limit": 10_001}, {"limit": True}, {"message_types": []},
               {"message_types": ["gossip"]}],
)
async def test_recent_rejects_bad_arguments(
    memory: DatabaseMemoryService, app_name: str, kwargs: dict
) -> None:
    with pytest.raises(InvalidValueError):
        await memory.recent_user_events(app_name=app_name, user_id="ann", **kwargs)
