"""The official AG-UI client (npm ``@ag-ui/client``, run with the machine's node) against the
real ``multi-agent serve``: a turn (and a second one) through ``HttpAgent``, a "refreshed" client
that replays the whole thread (``connectAgent``), then a re-run from the first run that the run
tree shows as a sibling branch.

The client package is in ``agui_client/`` (exact versions, ``package-lock.json``); ``npm ci``
runs when its ``node_modules`` is missing. Without node or npm the test is skipped, except
under ``CI`` (set), where that fails it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from pydantic import TypeAdapter

from multi_agent.store.api_tokens import TokenFile
from tests.serve._server import serve

pytestmark = pytest.mark.timeout(400)

PACKAGE = Path(__file__).with_name("agui_client")


def unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"CI is set, so the AG-UI client test must run: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def node() -> str:
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node or not npm:
        unavailable("node and npm are needed for the @ag-ui/client test")
    assert node and npm
    if not (PACKAGE / "node_modules" / "@ag-ui" / "client").is_dir():
        proc = subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=PACKAGE,
                              capture_output=True, text=True, timeout=300)
        if proc.returncode != 0:
            unavailable(f"npm ci failed in {PACKAGE}: {proc.stderr[-2000:]}")
    return node


def test_the_official_client_runs_replays_and_branches(node: str, tmp_path: Path) -> None:
    from ag_ui.core import Event

    tokens = tmp_path / "tokens.json"
    token = TokenFile(tokens).add("ann")[0]
    with serve(str(tmp_path / "agui.db"), tmp=tmp_path, tokens=tokens, slow=False) as server, \
            server.client(token) as client:
        thread = client.post("/api/threads", json={"title": "AG-UI"}).json()["threadId"]
        env = {**os.environ, "BASE_URL": server.url, "TOKEN": token, "THREAD_ID": thread}
        proc = subprocess.run([node, "agui_turns.mjs"], cwd=PACKAGE, env=env,
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr[-5000:]
        lines = [json.loads(line) for line in proc.stdout.splitlines()]
        assert lines[-1] == {"done": True}
        stored = client.get(f"/api/threads/{thread}/messages",
                            params={"runId": "agui-run-2"}).json()["messages"]
        runs = {r["runId"]: r for r in client.get(f"/api/threads/{thread}/runs").json()["items"]}
    assert "Traceback" not in server.stderr()

    events: dict[str, list[dict[str, Any]]] = {}
    snapshots: dict[str, dict[str, Any]] = {}
    for line in lines[:-1]:
        if "event" in line:
            events.setdefault(line["phase"], []).append(line["event"])
        else:
            snapshots[line["phase"]] = line
    # Every event the client received is a valid AG-UI 1.0 event (ag-ui-protocol's schema), and
    # the client's own verification accepted the streams (it throws otherwise: exit code 1).
    adapter: TypeAdapter[Any] = TypeAdapter(Event)
    for phase_events in events.values():
        for event in phase_events:
            adapter.validate_python(event)
    for phase in ("run1", "run2", "branch", "connect"):
        kinds = [e["type"] for e in events[phase]]
        assert kinds[0] == "RUN_STARTED" and kinds[-1] == "RUN_FINISHED", (phase, kinds)
    run1 = events["run1"]
    assert run1[0]["runId"] == "agui-run-1" and "parentRunId" not in run1[0]
    assert {"TEXT_MESSAGE_START", "TOOL_CALL_START", "TOOL_CALL_RESULT", "STATE_DELTA",
            "STEP_STARTED", "CUSTOM"} <= {e["type"] for e in run1}
    assert events["run2"][0]["parentRunId"] == "agui-run-1"

    # What the client built from the live events...
    live = snapshots["after-runs"]["messages"]
    answers = [m for m in live if m["role"] == "assistant" and m.get("content")]
    assert [m["name"] for m in answers] == ["stock_analyst", "funny_nerd"]
    assert "NVDA" in snapshots["after-runs"]["state"]["user:preferences"]["stock_watchlist"]
    # ...is what a refreshed client gets back from the replay: every message (user, assistant,
    # tool) with the same ids (the server's own for user messages) and the same content.
    replayed = snapshots["after-connect"]["messages"]
    assert [m["id"] for m in replayed] == [m["id"] for m in stored]
    assert {m["role"] for m in replayed} == {"user", "assistant", "tool"}
    assert len(replayed) == len(live)
    for mine, theirs in zip(live, replayed, strict=True):
        assert mine["role"] == theirs["role"] and (mine.get("content") or "") == (
            theirs.get("content") or "")
        if mine["role"] != "user":
            assert mine["id"] == theirs["id"]
    replayed_state = snapshots["after-connect"]["state"]
    assert replayed_state["user:preferences"] == snapshots["after-runs"]["state"][
        "user:preferences"]
    assert not any(key.startswith(("app:", "temp:")) for key in replayed_state)

    # The re-run from the first run is a sibling of the second: the original is kept.
    assert events["branch"][0]["parentRunId"] == "agui-run-1"
    assert runs["agui-run-2"]["parentRunId"] == "agui-run-1"
    assert runs["agui-run-3"]["parentRunId"] == "agui-run-1"
    assert runs["agui-run-3"]["isHead"] and not runs["agui-run-2"]["onPath"]
    assert runs["agui-run-2"]["status"] == "finished"
    branch_answer = [m for m in snapshots["after-branch"]["messages"]
                     if m["role"] == "assistant" and m.get("content")]
    assert "NVDA" in branch_answer[-1]["content"]
