"""Several OS processes writing one database: every acknowledged write is there, none lost.

ADK 2.13's own DatabaseSessionService loses one writer's state changes in exactly this test on
SQLite (its stale check is a plain SELECT before a whole-blob rewrite).
"""

from __future__ import annotations

import pytest

from multi_agent import DatabaseSessionService
from tests.helpers import run_processes


async def run_writers(url: str, app: str, jobs: list[tuple[str, str, str, int]]) -> list[str]:
    """Runs one writer process per job (user, session, tag, count); returns their outputs."""
    return await run_processes(
        [["-m", "tests.store._writer", url, app, user, sid, tag, str(count)]
         for user, sid, tag, count in jobs])


@pytest.mark.parametrize("backend", ["sqlite_file", "postgres"], indirect=True)
@pytest.mark.parametrize("writers", [2, 4])
async def test_writers_on_one_session_lose_nothing(
    db_url: str, app_name: str, writers: int
) -> None:
    count = 40
    async with DatabaseSessionService(db_url) as store:
        s = await store.create_session(app_name=app_name, user_id="u")
    outs = await run_writers(
        db_url, app_name, [("u", s.id, f"w{i}", count) for i in range(writers)]
    )
    acked = {line.split()[1] for out in outs for line in out.splitlines() if line.startswith("ACK")}
    assert len(acked) == writers * count
    async with DatabaseSessionService(db_url) as store:
        final = await store.get_session(app_name=app_name, user_id="u", session_id=s.id)
    assert {e.id for e in final.events} == acked
    assert len(final.events) == writers * count
    for i in range(writers):
        assert final.state[f"count_w{i}"] == count
        assert final.state[f"user:count_w{i}"] == count
    # The shared read-modify-write counter saw every increment: no lost update.
    assert final.state["shared"] == writers * count


@pytest.mark.parametrize("backend", ["sqlite_file", "postgres"], indirect=True)
async def test_writers_on_sessions_of_one_user(db_url: str, app_name: str) -> None:
    count, writers = 40, 4
    async with DatabaseSessionService(db_url) as store:
        sessions = [await store.create_session(app_name=app_name, user_id="u")
                    for _ in range(writers)]
    await run_writers(
        db_url, app_name, [("u", s.id, f"w{i}", count) for i, s in enumerate(sessions)]
    )
    async with DatabaseSessionService(db_url) as store:
        user_state = await store.get_user_state(app_name=app_name, user_id="u")
        for i, s in enumerate(sessions):
            got = await store.get_session(app_name=app_name, user_id="u", session_id=s.id)
            assert len(got.events) == count and got.state[f"count_w{i}"] == count
    assert {k: v for k, v in user_state.items()} == {f"count_w{i}": count for i in range(writers)}
