"""ADK's own command-line tools on this repository, with the store plugged in.

``adk web .`` and ``adk api_server .`` offer one app, the team under the chat's app name;
``adk run multi_agent`` (ADK imports the folder's ``services.py`` as a top-level module) runs
the team on the store.
"""

from __future__ import annotations

import os
import sys
import uuid
from pathlib import Path

import httpx
import pytest

from multi_agent import DatabaseSessionService
from tests.adk_cli import adk_run, adk_server, adk_turn, texts

ROOT = Path(__file__).resolve().parents[2]
ADK = Path(sys.executable).with_name("adk")


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("MULTI_AGENT_MODEL",)}
    return {**env, "ADK_DISABLE_LOAD_DOTENV": "1"}


async def _user_state(url: str, user: str) -> dict:
    async with DatabaseSessionService(url) as store:
        return await store.get_user_state(app_name="multi_agent", user_id=user)


async def test_adk_run_runs_the_team_on_the_store(store_uri: tuple[str, str]) -> None:
    uri, url = store_uri
    done = adk_run(ADK, "multi_agent", uri, ["tell me a joke about python",
                                             "add NVDA to my watch list", "exit"],
                   cwd=ROOT, env=_env())
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    assert "[funny_nerd]:" in done.stdout and "[stock_analyst]: Added NVDA" in done.stdout
    state = await _user_state(url, "test_user")  # adk run's user
    assert "python" in state["preferences"]["joke_preferences"]
    assert "NVDA" in state["preferences"]["stock_watchlist"]


@pytest.mark.parametrize("command", ["web", "api_server"])
async def test_adk_servers_offer_only_the_team(store_uri: tuple[str, str], tmp_path: Path,
                                               command: str) -> None:
    uri, url = store_uri
    user = "u-" + uuid.uuid4().hex[:6]
    with adk_server(ADK, command, ROOT, ["--session_service_uri", uri, "--memory_service_uri",
                                         uri], cwd=tmp_path, env=_env()) as base:
        assert httpx.get(f"{base}/list-apps").json() == ["multi_agent"]
        created = httpx.post(f"{base}/apps/multi_agent/users/{user}/sessions", json={})
        assert created.status_code == 200, created.text
        events = adk_turn(base, "multi_agent", user, created.json()["id"], "My name is Dana")
        assert any(author == "manager" and "Dana" in text for author, text in texts(events))
    assert (await _user_state(url, user))["user_name"] == "Dana"
