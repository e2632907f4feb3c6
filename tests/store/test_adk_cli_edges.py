"""ADK's own command-line tools (``adk api_server``, ``adk web``, ``adk run``) with the
store plugged in, as README's "Using it from `adk web` / `adk api_server`" tells a user to.

Real ``.venv/bin/adk`` processes, real HTTP, real SQLite files and the PostgreSQL test server.
Tests whose docstring starts with "DEFECT" were defects found by probing (they failed on the
code of 8a6109d and pass since the fix); the others record behaviour that was checked and is
right.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from multi_agent import DatabaseSessionService
from tests.adk_cli import adk_server, adk_turn, free_port, texts
from tests.conftest import fresh_pg_database

ROOT = Path(__file__).resolve().parents[2]
ADK = Path(sys.executable).with_name("adk")

NOTES_AGENT = """
from tests.store.scripted_llm import build_agents

root_agent = build_agents()
"""


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "MULTI_AGENT_MODEL"}
    return {**env, "ADK_DISABLE_LOAD_DOTENV": "1", "PYTHONPATH": str(ROOT)}


@pytest.fixture
def agents(tmp_path: Path) -> Path:
    """An agents directory of the user's own, as README describes it: ``services.py`` with
    ``import multi_agent``, the team (``from multi_agent.team.adk_app import app``) and a small
    scripted app (``notes_app``: a tool that counts notes in session and ``user:`` state)."""
    root = tmp_path / "agents"
    (root / "team").mkdir(parents=True)
    (root / "notes_app").mkdir()
    (root / "services.py").write_text("import multi_agent\n")
    (root / "team" / "__init__.py").write_text("from . import agent\n")
    (root / "team" / "agent.py").write_text("from multi_agent.team.adk_app import app\n")
    (root / "notes_app" / "__init__.py").write_text("from . import agent\n")
    (root / "notes_app" / "agent.py").write_text(NOTES_AGENT)
    return root


def _server(command: str, agents: Path, args: list[str], tmp_path: Path, name: str = "srv",
            pids: list[int] | None = None):
    return adk_server(ADK, command, agents, args, cwd=tmp_path, env=_env(),
                      log=tmp_path / f"{name}.log", pids=pids)


def _start_output(agents: Path, args: list[str], tmp_path: Path, wait: float = 45
                  ) -> tuple[int | None, str]:
    """Starts ``adk api_server ARGS AGENTS``; returns (its exit code, or None if it came up
    and answered /list-apps, its output)."""
    port = free_port()
    log = tmp_path / f"start-{port}.log"
    with log.open("w") as out:
        proc = subprocess.Popen([str(ADK), "api_server", "--host", "127.0.0.1", "--port",
                                 str(port), *args, str(agents)], cwd=tmp_path, env=_env(),
                                stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + wait
        code: int | None = None
        try:
            while time.monotonic() < deadline:
                if proc.poll() is not None:
                    code = proc.returncode
                    break
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/list-apps", timeout=2).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                time.sleep(0.3)
        finally:
            if proc.poll() is None:
                proc.terminate()
                proc.wait(timeout=15)
    return code, log.read_text()


def _get(base: str, path: str) -> httpx.Response:
    with httpx.Client(base_url=base, timeout=60) as http:  # a fresh connection each time
        return http.get(path)


def _run_body(app: str, user: str, sid: str, text: str) -> dict:
    return {"app_name": app, "user_id": user, "session_id": sid,
            "new_message": {"role": "user", "parts": [{"text": text}]}}


async def _stored(url: str, app: str, user: str, sid: str):
    async with DatabaseSessionService(url) as store:
        return await store.get_session(app_name=app, user_id=user, session_id=sid)


async def _user_state(url: str, app: str, user: str) -> dict:
    async with DatabaseSessionService(url) as store:
        return await store.get_user_state(app_name=app, user_id=user)


# --------------------------------------------------------------------------------------------
# README's commands, literally
# --------------------------------------------------------------------------------------------


def test_readme_adk_web_command_with_multi_agent_uris_serves_the_team(agents: Path,
                                                                      tmp_path: Path) -> None:
    """``adk web --session_service_uri multi-agent:// --memory_service_uri multi-agent:// .``:
    the dev UI is served, the apps are listed, a turn is stored in ``multi_agent_data.db`` in
    the agents directory."""
    with _server("web", agents, ["--session_service_uri", "multi-agent://",
                                 "--memory_service_uri", "multi-agent://"], tmp_path) as base:
        root = httpx.get(f"{base}/", follow_redirects=True, timeout=30)
        assert root.status_code == 200 and "<html" in root.text.lower()
        assert httpx.get(f"{base}/list-apps").json() == ["notes_app", "team"]
        sid = httpx.post(f"{base}/apps/team/users/ann/sessions", json={}).json()["id"]
        events = adk_turn(base, "team", "ann", sid, "My name is Dana")
        assert any("Dana" in text for _, text in texts(events))
    db = agents / "multi_agent_data.db"
    assert db.exists()
    state = asyncio.run(_user_state(f"sqlite+aiosqlite:///{db}", "team", "ann"))
    assert state["user_name"] == "Dana"


def test_readme_api_server_sqlite_pwd_command(agents: Path, tmp_path: Path) -> None:
    """``adk api_server --session_service_uri multi-agent+sqlite:///$PWD/multi_agent_data.db .``
    (run in the agents directory): the file at that absolute path is the store; a restarted
    server sees the earlier sessions and state."""
    uri = f"multi-agent+sqlite:///{agents}/multi_agent_data.db"
    with _server("api_server", agents, ["--session_service_uri", uri], tmp_path) as base:
        sid = httpx.post(f"{base}/apps/notes_app/users/u/sessions",
                         json={"session_id": "keep", "state": {"user:name": "Ann"}}).json()["id"]
        events = adk_turn(base, "notes_app", "u", sid, "note this")
        assert events[-1]["content"]["parts"][0]["text"] == "Noted."
    with _server("api_server", agents, ["--session_service_uri", uri], tmp_path, "srv2") as base:
        got = _get(base, "/apps/notes_app/users/u/sessions/keep").json()
        assert got["state"] == {"notes": 1, "user:note_count": 1, "user:name": "Ann"}
        events = adk_turn(base, "notes_app", "u", "keep", "note this too")
        assert events[-1]["content"]["parts"][0]["text"] == "Noted."
        got = _get(base, "/apps/notes_app/users/u/sessions/keep").json()
        assert got["state"]["notes"] == 2 and got["state"]["user:note_count"] == 2


async def test_readme_api_server_postgresql_command(agents: Path, tmp_path: Path) -> None:
    """``adk api_server --session_service_uri multi-agent+postgresql://user:pw@host/db .``"""
    url = await fresh_pg_database()
    uri = url.replace("postgresql+asyncpg://", "multi-agent+postgresql://")
    with _server("api_server", agents, ["--session_service_uri", uri], tmp_path) as base:
        async with httpx.AsyncClient(base_url=base, timeout=60) as http:
            created = await http.post("/apps/team/users/ann/sessions", json={})
            run = await http.post("/run", json=_run_body("team", "ann", created.json()["id"],
                                                        "add NVDA to my watchlist"))
            assert run.status_code == 200, run.text
    state = await _user_state(url, "team", "ann")
    assert "NVDA" in state["preferences"]["stock_watchlist"]


# --------------------------------------------------------------------------------------------
# URI options at start-up
# --------------------------------------------------------------------------------------------


def test_unknown_uri_option_stops_the_server_naming_the_accepted_ones(agents: Path,
                                                                     tmp_path: Path) -> None:
    code, out = _start_output(
        agents, ["--session_service_uri", f"multi-agent+sqlite:///{tmp_path}/x.db?windw=5"],
        tmp_path)
    assert code not in (None, 0), out[-2000:]
    assert "Unknown option 'windw'" in out and "Did you mean window?" in out


@pytest.mark.parametrize("bad", ["0", "-1", "abc", "1e3"])
def test_bad_window_values_stop_the_server(agents: Path, tmp_path: Path, bad: str) -> None:
    code, out = _start_output(
        agents, ["--session_service_uri", f"multi-agent+sqlite:///{tmp_path}/x.db?window={bad}"],
        tmp_path)
    assert code not in (None, 0), out[-2000:]
    assert f"Invalid value window='{bad}'" in out


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
async def test_a_window_too_large_for_the_database_is_refused_at_start(
        agents: Path, tmp_path: Path, dialect: str) -> None:
    """DEFECT: ``?window=99999999999999999999`` passes the start-up check (README: "a bad value
    stops the server at start-up"), then every session read of the server fails with a 500
    (SQLite: ``OverflowError: Python int too large to convert to SQLite INTEGER``; PostgreSQL:
    ``DatabaseUnavailableError ... value out of int64 range``), creating a session included.
    Expected: refused at start-up like window=0, or clamped so that it works."""
    if dialect == "sqlite":
        uri = f"multi-agent+sqlite:///{tmp_path}/w.db?window=99999999999999999999"
    else:
        url = await fresh_pg_database()
        uri = (url.replace("postgresql+asyncpg://", "multi-agent+postgresql://")
               + "?window=99999999999999999999")
    code, out = _start_output(agents, ["--session_service_uri", uri], tmp_path)
    if code is not None:  # refused at start-up: fine if it names the option
        assert "window" in out
        return
    with _server("api_server", agents, ["--session_service_uri", uri], tmp_path) as base:
        async with httpx.AsyncClient(base_url=base, timeout=60) as http:
            created = await http.post("/apps/notes_app/users/u/sessions", json={"session_id": "s"})
            assert created.status_code == 200, created.text
            run = await http.post("/run", json=_run_body("notes_app", "u", "s", "hi"))
            assert run.status_code == 200, run.text
        assert _get(base, "/apps/notes_app/users/u/sessions/s").status_code == 200


def test_a_missing_directory_stops_the_server_with_a_clear_message(agents: Path,
                                                                  tmp_path: Path) -> None:
    code, out = _start_output(
        agents, ["--session_service_uri", f"multi-agent+sqlite:///{tmp_path}/nodir/x.db"],
        tmp_path)
    assert code == 2, out[-2000:]  # a usage error, with our line and no traceback
    assert "adk: Cannot create the SQLite database" in out
    assert f"the directory {tmp_path}/nodir does not exist" in out
    assert "Traceback" not in out, out[-3000:]


def test_a_file_that_is_not_a_database_is_named_in_the_error(agents: Path,
                                                            tmp_path: Path) -> None:
    """The server starts (ADK's DatabaseSessionService does the same); the first request says
    what is wrong with the file (ADK's: "file is not a database" and SQL)."""
    bad = tmp_path / "notdb.db"
    bad.write_text("hello, I am a text file, not a database\n" * 20)
    with _server("api_server", agents, ["--session_service_uri", f"multi-agent+sqlite:///{bad}"],
                 tmp_path) as base:
        created = httpx.post(f"{base}/apps/notes_app/users/u/sessions", json={}, timeout=30)
        assert created.status_code == 500
        assert "not a valid SQLite database" in created.json()["detail"]
    assert bad.read_text().startswith("hello, I am a text file")  # left alone


# --------------------------------------------------------------------------------------------
# ids the store cannot hold
# --------------------------------------------------------------------------------------------


def test_reading_ids_the_store_cannot_hold_answers_404_like_adk(agents: Path,
                                                              tmp_path: Path) -> None:
    """DEFECT: reading, listing, deleting or running on an id our store refuses to store (more
    than 256 characters, or a NUL) makes ``adk api_server`` answer ``500 Internal Server Error``
    (``InvalidIdError`` raised by get_session/list_sessions/delete_session, a traceback in the
    server's log). Such a session cannot exist, so it is simply not found: ADK's own
    DatabaseSessionService answers 404 / ``[]`` / 200 for the same requests, and creating
    such a session through our store is already a clear 400."""
    long = "x" * 300
    with _server("api_server", agents, ["--session_service_uri",
                                        f"multi-agent+sqlite:///{tmp_path}/ids.db"],
                 tmp_path) as base:
        with httpx.Client(base_url=base, timeout=60) as http:
            created = http.post("/apps/notes_app/users/u/sessions", json={"session_id": long})
        assert created.status_code == 400  # creating one: a clear refusal already
        answers = {
            "get": _get(base, f"/apps/notes_app/users/u/sessions/{long}").status_code,
            "get NUL": _get(base, "/apps/notes_app/users/u/sessions/a%00b").status_code,
            "list": _get(base, f"/apps/notes_app/users/{long}/sessions").status_code,
        }
        with httpx.Client(base_url=base, timeout=60) as http:
            answers["patch"] = http.patch(f"/apps/notes_app/users/u/sessions/{long}",
                                          json={"state_delta": {"a": 1}}).status_code
        with httpx.Client(base_url=base, timeout=60) as http:
            answers["run"] = http.post("/run", json=_run_body("notes_app", "u", long,
                                                              "hi")).status_code
    assert answers == {"get": 404, "get NUL": 404, "list": 200, "patch": 404, "run": 404}


def test_odd_but_valid_session_ids_round_trip(agents: Path, tmp_path: Path) -> None:
    from urllib.parse import quote

    with _server("api_server", agents, ["--session_service_uri",
                                        f"multi-agent+sqlite:///{tmp_path}/ids.db"],
                 tmp_path) as base:
        for sid in ["a b", "ünï", "😀", "%00", " ", "a%2Fb", "x" * 256, "'; drop table x;--"]:
            with httpx.Client(base_url=base, timeout=60) as http:
                made = http.post("/apps/notes_app/users/u/sessions", json={"session_id": sid})
            assert made.status_code == 200, (sid, made.text)
            got = _get(base, f"/apps/notes_app/users/u/sessions/{quote(sid, safe='')}")
            assert got.status_code == 200 and got.json()["id"] == sid


# --------------------------------------------------------------------------------------------
# two servers on one SQLite file, restarts, windows, streaming
# --------------------------------------------------------------------------------------------


async def test_two_api_servers_on_one_sqlite_file_keep_every_acknowledged_user_write(
        agents: Path, tmp_path: Path) -> None:
    """Two ``adk api_server`` processes on one file; 24 PATCHes of distinct ``user:`` keys and
    24 turns of a tool doing read-modify-write of ``user:note_count``, all at once. Every
    acknowledged PATCH is stored; a turn whose read-modify-write went stale is refused (500,
    README's per-key revisions) and the counter equals the number of stored increments."""
    db = tmp_path / "shared.db"
    uri = f"multi-agent+sqlite:///{db}"
    n = 12
    with _server("api_server", agents, ["--session_service_uri", uri], tmp_path, "a") as b1, \
            _server("api_server", agents, ["--session_service_uri", uri], tmp_path, "b") as b2:
        bases = [b1, b2]
        async with httpx.AsyncClient(timeout=120) as http:
            for i in range(2 * n):
                for prefix in ("s", "p"):
                    made = await http.post(f"{bases[i % 2]}/apps/notes_app/users/u/sessions",
                                           json={"session_id": f"{prefix}{i}"})
                    assert made.status_code == 200, made.text

            async def run(i: int) -> int:
                r = await http.post(f"{bases[i % 2]}/run",
                                    json=_run_body("notes_app", "u", f"s{i}", "note"))
                return r.status_code

            async def patch(i: int) -> int:
                r = await http.patch(f"{bases[i % 2]}/apps/notes_app/users/u/sessions/p{i}",
                                     json={"state_delta": {f"user:p{i}": i}})
                return r.status_code

            codes = await asyncio.gather(*[run(i) for i in range(2 * n)],
                                         *[patch(i) for i in range(2 * n)])
    runs, patches = codes[:2 * n], codes[2 * n:]
    assert set(runs) <= {200, 500} and 200 in runs
    url = f"sqlite+aiosqlite:///{db}"
    state = await _user_state(url, "notes_app", "u")
    acked = [i for i, code in enumerate(patches) if code == 200]
    assert all(state.get(f"p{i}") == i for i in acked)
    increments = 0
    async with DatabaseSessionService(url) as store:
        for i in range(2 * n):
            sess = await store.get_session(app_name="notes_app", user_id="u", session_id=f"s{i}")
            increments += sum(1 for e in sess.events
                              if "user:note_count" in (e.actions.state_delta or {}))
    assert state.get("note_count", 0) == increments >= runs.count(200)


def test_window_one_on_a_real_server_bounds_reads_and_keeps_everything(agents: Path,
                                                                      tmp_path: Path) -> None:
    db = tmp_path / "win.db"
    with _server("api_server", agents, ["--session_service_uri",
                                        f"multi-agent+sqlite:///{db}?window=1"],
                 tmp_path) as base:
        httpx.post(f"{base}/apps/notes_app/users/u/sessions", json={"session_id": "s"})
        for i in range(3):
            assert adk_turn(base, "notes_app", "u", "s", f"t{i}")[-1]["content"]["parts"][0][
                "text"] == "Noted."
            with httpx.Client(base_url=base, timeout=60) as http:
                assert http.patch("/apps/notes_app/users/u/sessions/s",
                                  json={"state_delta": {f"p{i}": i}}).status_code == 200
        got = _get(base, "/apps/notes_app/users/u/sessions/s").json()
    assert len(got["events"]) <= 2
    assert got["state"] == {"notes": 3, "user:note_count": 3, "p0": 0, "p1": 1, "p2": 2}
    stored = asyncio.run(_stored(f"sqlite+aiosqlite:///{db}", "notes_app", "u", "s"))
    assert len(stored.events) == 3 * 6 + 3


SLOW_AGENT = '''
import asyncio
from google.adk.agents.llm_agent import LlmAgent
from google.adk.models.base_llm import BaseLlm
from google.adk.models.llm_response import LlmResponse
from google.adk.tools.tool_context import ToolContext
from google.genai import types


class StepLlm(BaseLlm):
    """Calls step() three times after each user message, then answers "done"."""
    model: str = "steps"

    async def generate_content_async(self, llm_request, stream=False):
        contents = llm_request.contents
        last = max((i for i, c in enumerate(contents) if c.role == "user"
                    and any(p.text for p in (c.parts or []))), default=0)
        calls = sum(1 for c in contents[last:] for p in (c.parts or [])
                    if p.function_response is not None)
        part = (types.Part(function_call=types.FunctionCall(name="step", args={}))
                if calls < 3 else types.Part(text="done"))
        yield LlmResponse(content=types.Content(role="model", parts=[part]))


async def step(tool_context: ToolContext) -> dict:
    """One slow step, counted in session and user state."""
    await asyncio.sleep(1.0)
    state = tool_context.state
    state["steps"] = state.get("steps", 0) + 1
    state["user:steps"] = state.get("user:steps", 0) + 1
    return {"steps": state["steps"]}


root_agent = LlmAgent(name="stepper", model=StepLlm(), tools=[step], instruction="step")
'''


@pytest.fixture
def slow_agents(agents: Path) -> Path:
    (agents / "slow_app").mkdir()
    (agents / "slow_app" / "__init__.py").write_text("from . import agent\n")
    (agents / "slow_app" / "agent.py").write_text(SLOW_AGENT)
    return agents


def _consistent(session: dict) -> int:
    """The number of stored step results; asserts the state is their sum."""
    steps = sum(1 for e in session["events"]
                if "steps" in ((e.get("actions") or {}).get("stateDelta") or {}))
    assert session["state"].get("steps", 0) == steps
    assert session["state"].get("user:steps", 0) == steps
    return steps


async def test_run_sse_client_disconnect_leaves_a_consistent_session(slow_agents: Path,
                                                                    tmp_path: Path) -> None:
    """A ``/run_sse`` client that goes away after two events: ADK stops the run (as with its
    own DatabaseSessionService: the same four events); what is stored is consistent, and the
    next turn runs."""
    import json

    with _server("api_server", slow_agents, ["--session_service_uri",
                                             f"multi-agent+sqlite:///{tmp_path}/sse.db"],
                 tmp_path) as base:
        async with httpx.AsyncClient(base_url=base, timeout=60) as http:
            await http.post("/apps/slow_app/users/u/sessions", json={"session_id": "s"})
            seen = []
            async with http.stream("POST", "/run_sse", json={
                    **_run_body("slow_app", "u", "s", "go"), "streaming": True}) as stream:
                async for line in stream.aiter_lines():
                    if line.startswith("data:"):
                        seen.append(json.loads(line[5:]))
                        if len(seen) >= 2:
                            break
            await asyncio.sleep(5)
            first = (await http.get("/apps/slow_app/users/u/sessions/s")).json()
            before = _consistent(first)
            assert before >= 1
            run = await http.post("/run", json=_run_body("slow_app", "u", "s", "again"))
            assert run.status_code == 200, run.text
            after = _consistent((await http.get("/apps/slow_app/users/u/sessions/s")).json())
            assert after == before + 3


# --------------------------------------------------------------------------------------------
# PostgreSQL down at start and gone mid-run (a throw-away server of the test's own)
# --------------------------------------------------------------------------------------------


class ThrowawayPg:
    """A PostgreSQL cluster of this test alone (initdb as the postgres user), stoppable."""

    def __init__(self, root: Path, port: int) -> None:
        self.root, self.port = root, port
        self.data = root / "data"

    def _pg(self, cmd: str) -> None:
        subprocess.run(["su", "postgres", "-c", cmd], check=True, capture_output=True,
                       timeout=60)

    def start(self) -> None:
        self._pg(f"pg_ctl -D {self.data} -l {self.root}/log -o '-p {self.port} -k {self.root} "
                 f"-c fsync=off' -w start")

    def stop(self) -> None:
        self._pg(f"pg_ctl -D {self.data} -m immediate -w stop")

    @property
    def uri(self) -> str:
        return f"multi-agent+postgresql://postgres@127.0.0.1:{self.port}/probe"


@pytest.fixture
def throwaway_pg():
    import shutil
    import tempfile

    if os.geteuid() != 0 or not shutil.which("initdb") or not shutil.which("pg_ctl"):
        pytest.skip("needs root and PostgreSQL's initdb/pg_ctl for a throw-away server")
    root = Path(tempfile.mkdtemp(prefix="s17pg-", dir="/tmp"))
    shutil.chown(root, "postgres")
    subprocess.run(["su", "postgres", "-c", f"initdb -D {root}/data -A trust -U postgres"],
                   check=True, capture_output=True, timeout=120)
    pg = ThrowawayPg(root, free_port())
    pg.start()
    subprocess.run(["psql", "-h", "127.0.0.1", "-p", str(pg.port), "-U", "postgres", "-qc",
                    "create database probe"], check=True, capture_output=True, timeout=60)
    try:
        yield pg
    finally:
        with __import__("contextlib").suppress(subprocess.CalledProcessError):
            pg.stop()
        shutil.rmtree(root, ignore_errors=True)


async def test_postgresql_down_at_start_then_back_is_served_without_restart(
        agents: Path, tmp_path: Path, throwaway_pg: ThrowawayPg) -> None:
    """Down at start: ADK starts anyway (as with its own service); each request answers 500
    with a message saying the database cannot be reached and what to do; once the server is
    back the same process serves and stores turns."""
    throwaway_pg.stop()
    with _server("api_server", agents, ["--session_service_uri", throwaway_pg.uri],
                 tmp_path) as base:
        async with httpx.AsyncClient(base_url=base, timeout=60) as http:
            down = await http.post("/apps/notes_app/users/u/sessions", json={"session_id": "s"})
            assert down.status_code == 500
            assert "Cannot reach the database" in down.json()["detail"]
            await asyncio.to_thread(throwaway_pg.start)
            up = await http.post("/apps/notes_app/users/u/sessions", json={"session_id": "s"})
            assert up.status_code == 200, up.text
            run = await http.post("/run", json=_run_body("notes_app", "u", "s", "hi"))
            assert run.status_code == 200, run.text


async def test_postgresql_gone_mid_run_loses_nothing_acknowledged(
        slow_agents: Path, tmp_path: Path, throwaway_pg: ThrowawayPg) -> None:
    """The database stops (immediate) during a three-step turn: the turn fails, what was
    stored before is consistent, and after the restart the same server runs the next turn."""
    with _server("api_server", slow_agents, ["--session_service_uri", throwaway_pg.uri],
                 tmp_path) as base:
        async with httpx.AsyncClient(base_url=base, timeout=60) as http:
            await http.post("/apps/slow_app/users/u/sessions", json={"session_id": "m"})
            turn = asyncio.create_task(http.post("/run", json=_run_body("slow_app", "u", "m",
                                                                         "go")))
            await asyncio.sleep(1.6)
            await asyncio.to_thread(throwaway_pg.stop)
            failed = await turn
            assert failed.status_code == 500
            await asyncio.to_thread(throwaway_pg.start)
            first = (await http.get("/apps/slow_app/users/u/sessions/m")).json()
            before = _consistent(first)
            again = await http.post("/run", json=_run_body("slow_app", "u", "m", "again"))
            assert again.status_code == 200, again.text
            assert _consistent((await http.get("/apps/slow_app/users/u/sessions/m")).json()) \
                == before + 3


@pytest.mark.parametrize(("session", "memory", "message"), [
    ("multi-agent+sqlite:///{d}/m.db?search=hybrid", None,
     "search is an option of the memory service, not of the session service"),
    ("multi-agent+sqlite:///{d}/m.db", "multi-agent+sqlite:///{d}/m.db?window=5",
     "window is an option of the session service, not of the memory service"),
    ("memory://", "multi-agent+sqlite:///{d}/m.db?search=bogus",
     "Invalid value search='bogus'"),
    ("multi-agent+sqlite:///{d}/m.db", "multi-agent+sqlite:///{d}/nodir/m.db",
     "does not exist"),
    ("multi-agent+sqlite:///{d}/m.db?sqlite_synchronous=normal&sqlite_synchronous=full", None,
     "sqlite_synchronous is given twice"),
])
def test_session_and_memory_uri_mixups_stop_the_server(agents: Path, tmp_path: Path,
                                                      session: str, memory: str | None,
                                                      message: str) -> None:
    args = ["--session_service_uri", session.format(d=tmp_path)]
    if memory:
        args += ["--memory_service_uri", memory.format(d=tmp_path)]
    code, out = _start_output(agents, args, tmp_path)
    assert code == 2, out[-2000:]
    assert message in out
    assert "Traceback" not in out, out[-3000:]  # was click's ~40 lines, the message last


# --------------------------------------------------------------------------------------------
# adk run
# --------------------------------------------------------------------------------------------


def _adk_run(args: list[str], lines: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(ADK), "run", *args], input="".join(f"{x}\n" for x in lines),
                          cwd=cwd, env=_env(), capture_output=True, text=True, timeout=180)


def test_adk_run_multi_agent_uri_remembers_the_user_across_runs_and_resume(
        tmp_path: Path) -> None:
    """README: ``adk run --session_service_uri multi-agent:// AGENT`` (no services.py: the
    agent's own import registers the schemes). The database is beside the agent folder; a
    second run (a new session) knows the user's name; ``--save_session`` + ``--resume`` work."""
    folder = tmp_path / "runagents"
    (folder / "team").mkdir(parents=True)
    (folder / "team" / "__init__.py").write_text("from . import agent\n")
    (folder / "team" / "agent.py").write_text("from multi_agent.team.adk_app import app\n")
    uri = ["--session_service_uri", "multi-agent://"]
    first = _adk_run([*uri, "team"], ["My name is Dana", "exit"], folder)
    assert first.returncode == 0, first.stderr[-3000:]
    assert (folder / "multi_agent_data.db").exists()
    second = _adk_run([*uri, "--save_session", "--session_id", "keep1", "team"],
                      ["What is my name?", "exit"], folder)
    assert second.returncode == 0, second.stderr[-3000:]
    assert "Dana" in second.stdout
    saved = folder / "team" / "keep1.session.json"
    assert saved.exists()
    resumed = _adk_run([*uri, "--resume", str(saved), "team"], ["What is my name?", "exit"],
                       folder)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert resumed.stdout.count("Dana") >= 2  # the replayed answer and the new one
    assert "Traceback" not in resumed.stderr
