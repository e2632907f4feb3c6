"""``adk api_server`` with our store plugged in through services.py, driven over HTTP."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import httpx
import pytest

from multi_agent import DatabaseSessionService
from tests.adk_cli import adk_server

ROOT = Path(__file__).resolve().parents[2]
AGENT = '''
from tests.store.scripted_llm import build_agents

root_agent = build_agents()
'''


def start_api_server(tmp_path: Path, agents: Path, extra: list[str]):
    db = tmp_path / "sessions.db"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with adk_server(Path(sys.executable).with_name("adk"), "api_server", agents,
                    ["--session_service_uri", f"multi-agent+sqlite:///{db}", *extra],
                    cwd=tmp_path, env=env, log=tmp_path / "server.log") as base:
        yield base, db


@pytest.fixture
def api_server(tmp_path: Path):
    agents = tmp_path / "agents"
    (agents / "notes_app").mkdir(parents=True)
    shutil.copy(ROOT / "services.py", agents / "services.py")
    (agents / "notes_app" / "__init__.py").write_text("from . import agent\n")
    (agents / "notes_app" / "agent.py").write_text(AGENT)
    yield from start_api_server(tmp_path, agents, [])


@pytest.fixture
def team_api_server(tmp_path: Path):
    """``adk api_server`` on the repository itself: the team as app ``multi_agent``."""
    db = tmp_path / "sessions.db"
    yield from start_api_server(
        tmp_path, ROOT, ["--memory_service_uri", f"multi-agent+sqlite:///{db}"]
    )


async def test_api_server_runs_the_team(team_api_server) -> None:
    base, db = team_api_server
    async with httpx.AsyncClient(base_url=base, timeout=60) as http:
        assert "multi_agent" in (await http.get("/list-apps")).json()
        created = await http.post("/apps/multi_agent/users/ann/sessions", json={})
        sid = created.json()["id"]
        run = await http.post(
            "/run",
            json={
                "app_name": "multi_agent", "user_id": "ann", "session_id": sid,
                "new_message": {"role": "user", "parts": [{"text": "Tell me a joke about Python"}]},
            },
        )
        assert run.status_code == 200, run.text
        authors = [e["author"] for e in run.json()]
        assert "funny_nerd" in authors
    async with DatabaseSessionService(f"sqlite+aiosqlite:///{db}") as store:
        user = await store.get_user_state(app_name="multi_agent", user_id="ann")
        assert "python" in user["preferences"]["joke_preferences"]


async def test_api_server_uses_our_store(api_server) -> None:
    base, db = api_server
    async with httpx.AsyncClient(base_url=base, timeout=60) as http:
        assert "notes_app" in (await http.get("/list-apps")).json()
        sessions = "/apps/notes_app/users/u1/sessions"
        created = await http.post(
            sessions, json={"session_id": "s1", "state": {"user:name": "Ann"}}
        )
        assert created.status_code == 200, created.text
        again = await http.post(sessions, json={"session_id": "s1"})
        assert again.status_code == 409  # a clear "already exists", not a 500
        other = await http.post(sessions, json={"session_id": "s2"})
        assert other.status_code == 200
        run = await http.post(
            "/run",
            json={
                "app_name": "notes_app", "user_id": "u1", "session_id": "s1",
                "new_message": {"role": "user", "parts": [{"text": "note this"}]},
            },
        )
        assert run.status_code == 200, run.text
        assert run.json()[-1]["content"]["parts"][0]["text"] == "Noted."
        got = (await http.get("/apps/notes_app/users/u1/sessions/s1")).json()
        assert got["state"]["notes"] == 1 and got["state"]["user:name"] == "Ann"
        listed = (await http.get("/apps/notes_app/users/u1/sessions")).json()
        assert {s["id"] for s in listed} == {"s1", "s2"}
    # The server wrote our database file, in our schema.
    async with DatabaseSessionService(f"sqlite+aiosqlite:///{db}") as store:
        stored = await store.get_session(app_name="notes_app", user_id="u1", session_id="s1")
        assert stored.state == {"notes": 1, "user:note_count": 1, "user:name": "Ann"}
        assert [e.author for e in stored.events][:2] == ["user", "coordinator"]


def test_api_server_non_finite_timestamp_is_refused_and_breaks_nothing(api_server) -> None:
    """One request with ``"timestamp": Infinity`` used to make the session and the user's
    session list answer 500 for good; now the event is refused and everything stays readable."""
    base, _ = api_server
    sids = []
    for literal in ("Infinity", "-Infinity", "NaN"):
        sid = f"s-{literal}"
        sids.append(sid)
        body = (
            f'{{"session_id": "{sid}", "events": [{{"author": "user", "invocation_id": "i1", '
            '"content": {"role": "user", "parts": [{"text": "hi"}]}, "timestamp": '
            + literal + "}]}"
        )
        with httpx.Client(base_url=base, timeout=30) as http:
            try:  # ADK answers our InvalidValueError with a 500 (or drops the connection)
                refused = http.post(
                    "/apps/notes_app/users/u/sessions", content=body,
                    headers={"content-type": "application/json"},
                )
                assert refused.status_code >= 400
            except httpx.TransportError:
                pass
        with httpx.Client(base_url=base, timeout=30) as http:  # a new connection
            got = http.get(f"/apps/notes_app/users/u/sessions/{sid}")
            assert got.status_code == 200 and got.json()["events"] == []
            listed = http.get("/apps/notes_app/users/u/sessions")
            assert listed.status_code == 200
            assert sorted(s["id"] for s in listed.json()) == sorted(sids)
    with httpx.Client(base_url=base, timeout=30) as http:
        ok = http.post("/apps/notes_app/users/u/sessions", json={"session_id": "ok", "events": [
            {"author": "user", "invocation_id": "i2",
             "content": {"role": "user", "parts": [{"text": "fine"}]}, "timestamp": 1.5e9},
        ]})
        assert ok.status_code == 200, ok.text
        assert len(http.get("/apps/notes_app/users/u/sessions/ok").json()["events"]) == 1
