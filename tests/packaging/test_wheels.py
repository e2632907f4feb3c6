"""The two wheels, built from this tree and installed in fresh virtual environments.

* the store alone (``adk-lossless-sessions``): no ``manager``/``subagents``/``state_tools``
  import names, ``pip check`` clean, and a user's own agents folder works with it through ADK's
  ``Runner``, ``adk run`` (piped), ``adk web`` and ``adk api_server`` (over HTTP), on SQLite and
  PostgreSQL;
* the whole team (``multi-agent-team``): ``multi-agent chat`` works.

The README's install lines are the commands run here (with the wheels' folder for ``dist``).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.adk_cli import adk_run, adk_server, adk_turn, texts

ROOT = Path(__file__).resolve().parents[2]

WEATHER_AGENT = '''
import multi_agent  # registers the "offline-rules" model and the multi-agent:// URI schemes
from google.adk.agents import LlmAgent


def get_weather(city: str) -> dict:
    """Returns the current weather report for a city."""
    return {"status": "success", "report": f"It is sunny and 21 C in {city}."}


root_agent = LlmAgent(name="helper", model="offline-rules", tools=[get_weather])
'''

RUNNER_SCRIPT = '''
import asyncio, sys
from google.adk.runners import Runner
from google.genai import types
from multi_agent import DatabaseSessionService
sys.path.insert(0, sys.argv[2])
from helper.agent import root_agent

async def main(url, phase):
    service = DatabaseSessionService(url)
    runner = Runner(app_name="weather", agent=root_agent, session_service=service)
    if phase == "write":
        session = await service.create_session(app_name="weather", user_id="ann",
                                               session_id="s1", state={"user:city": "Paris"})
        async for event in runner.run_async(
                user_id="ann", session_id=session.id,
                new_message=types.Content(role="user",
                                          parts=[types.Part(text="weather in Paris?")])):
            pass
    else:
        session = await service.get_session(app_name="weather", user_id="ann", session_id="s1")
        print(len(session.events), session.state["user:city"])
        print(session.events[-1].content.parts[0].text)
    await runner.close()
    await service.close()

asyncio.run(main(sys.argv[1], sys.argv[3]))
'''


def _readme_install_lines() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("\n## Install\n", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```bash\n(.*?)```", section, re.DOTALL).group(1)
    return [line.split("  #", 1)[0].strip() for line in block.splitlines() if line.strip()]


def _run(args: list[str], **kwargs) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(args, capture_output=True, text=True, timeout=600, **kwargs)
    assert done.returncode == 0, f"{args}:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    return done


@pytest.fixture(scope="module")
def install_lines() -> list[str]:
    lines = _readme_install_lines()
    assert lines[0] == "python scripts/build_wheels.py --outdir dist", lines
    assert lines[1].startswith("pip install --find-links dist ")
    assert lines[2].startswith("pip install --find-links dist ")
    return lines


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory, install_lines: list[str]) -> Path:
    out = tmp_path_factory.mktemp("dist")
    command = install_lines[0].replace("python ", f"{sys.executable} ", 1)
    _run([*command.replace("--outdir dist", f"--outdir {out}").split()], cwd=ROOT)
    names = sorted(p.name for p in out.glob("*.whl"))
    assert [n.split("-")[0] for n in names] == ["adk_lossless_sessions", "multi_agent_team"]
    return out


def _venv(where: Path, dist: Path, line: str) -> Path:
    _run([sys.executable, "-m", "venv", str(where)])
    pip = where / "bin" / "pip"
    args = line.split()[1:]  # the README's "pip install --find-links dist NAME"
    args = [str(dist) if a == "dist" else a.strip("'") for a in args]
    _run([str(pip), "--disable-pip-version-check", "--quiet", *args])
    _run([str(pip), "check"])
    return where / "bin"


@pytest.fixture(scope="module")
def venvs(tmp_path_factory: pytest.TempPathFactory, dist: Path,
          install_lines: list[str]) -> dict[str, Path]:
    """Both fresh environments, installed side by side (pip's time is mostly waiting)."""
    with ThreadPoolExecutor(2) as pool:
        store = pool.submit(_venv, tmp_path_factory.mktemp("store-venv") / "venv", dist,
                            install_lines[1])
        team = pool.submit(_venv, tmp_path_factory.mktemp("team-venv") / "venv", dist,
                           install_lines[2])
        return {"store": store.result(), "team": team.result()}


@pytest.fixture
def store_bin(venvs: dict[str, Path]) -> Path:
    return venvs["store"]


@pytest.fixture
def team_bin(venvs: dict[str, Path]) -> Path:
    return venvs["team"]


def _clean_env(**extra: str) -> dict[str, str]:
    """No PYTHONPATH into the repository: only what the venv installed is importable."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "VIRTUAL_ENV", "MULTI_AGENT_MODEL", "MULTI_AGENT_DB")}
    return {**env, "ADK_DISABLE_LOAD_DOTENV": "1", **extra}


@pytest.fixture
def user_agents(tmp_path: Path) -> Path:
    """A user's own agents folder, as ADK's docs lay it out, plus the store's services.py."""
    agents = tmp_path / "agents"
    (agents / "helper").mkdir(parents=True)
    (agents / "services.py").write_text("import multi_agent  # our URI schemes for adk web\n")
    (agents / "helper" / "__init__.py").write_text("from . import agent\n")
    (agents / "helper" / "agent.py").write_text(WEATHER_AGENT)
    return agents


def _py(bin_dir: Path, code: str, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(bin_dir / "python"), "-c", code, *args], cwd=cwd,
                          capture_output=True, text=True, timeout=300, env=_clean_env())


def _stored_texts(bin_dir: Path, url: str, app: str, user: str, cwd: Path) -> list[str]:
    code = '''
import asyncio, json, sys
from multi_agent import DatabaseSessionService
async def main(url, app, user):
    async with DatabaseSessionService(url) as s:
        out = []
        for info in (await s.list_sessions(app_name=app, user_id=user)).sessions:
            got = await s.get_session(app_name=app, user_id=user, session_id=info.id)
            out += [p.text for e in got.events if e.content for p in e.content.parts or []
                    if p.text]
        print(json.dumps(out))
asyncio.run(main(*sys.argv[1:]))
'''
    done = _py(bin_dir, code, url, app, user, cwd=cwd)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


def test_the_store_alone_has_no_team_and_no_generic_names(store_bin: Path, tmp_path: Path) -> None:
    for name in ("manager", "subagents", "state_tools", "multi_agent.team"):
        done = _py(store_bin, f"import {name}", cwd=tmp_path)
        assert done.returncode == 1 and "ModuleNotFoundError" in done.stderr, name
    site = _py(store_bin, "import multi_agent, pathlib; print(pathlib.Path("
               "multi_agent.__file__).parent.parent)", cwd=tmp_path).stdout.strip()
    top = {p.name for p in Path(site).iterdir()} & {"manager", "subagents", "state_tools", "bench"}
    assert top == set()
    assert (Path(site) / "multi_agent" / "py.typed").is_file()
    version = subprocess.run([str(store_bin / "multi-agent"), "--version"], capture_output=True,
                             text=True, env=_clean_env())
    assert version.stdout.startswith("multi-agent 0.") and "the store alone" in version.stdout
    chat = subprocess.run([str(store_bin / "multi-agent"), "chat"], capture_output=True,
                          text=True, env=_clean_env(), cwd=tmp_path)
    assert chat.returncode == 1 and "pip install multi-agent-team" in chat.stderr
    assert "Traceback" not in chat.stderr
    team = _py(store_bin, "import multi_agent; multi_agent.build_runner", cwd=tmp_path)
    assert "pip install multi-agent-team" in team.stderr
    assert not (Path(site) / "multi_agent" / "agent.py").exists()  # the repository's ADK entry


async def test_a_runner_on_the_store_alone(store_bin: Path, user_agents: Path, tmp_path: Path,
                                           store_uri: tuple[str, str]) -> None:
    _, url = store_uri
    wrote = _py(store_bin, RUNNER_SCRIPT, url, str(user_agents), "write", cwd=tmp_path)
    assert wrote.returncode == 0, wrote.stderr[-3000:]
    read = _py(store_bin, RUNNER_SCRIPT, url, str(user_agents), "read", cwd=tmp_path)  # restart
    assert read.returncode == 0, read.stderr[-3000:]
    count, city = read.stdout.splitlines()[0].split()
    assert int(count) >= 3 and city == "Paris"
    assert "sunny and 21 C in Paris" in read.stdout


async def test_adk_run_piped_on_the_store_alone(store_bin: Path, user_agents: Path,
                                                store_uri: tuple[str, str]) -> None:
    uri, url = store_uri
    done = adk_run(store_bin / "adk", "helper", uri, ["what's the weather in Rome?", "exit"],
                   cwd=user_agents, env=_clean_env())
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    assert "sunny and 21 C in Rome" in done.stdout
    stored = _stored_texts(store_bin, url, "helper", "test_user", user_agents)
    assert "what's the weather in Rome?" in stored
    assert any("sunny and 21 C in Rome" in t for t in stored)


@pytest.mark.parametrize("command", ["web", "api_server"])
async def test_adk_servers_on_the_store_alone(store_bin: Path, user_agents: Path,
                                              store_uri: tuple[str, str], command: str) -> None:
    uri, url = store_uri
    user = "u-" + uuid.uuid4().hex[:6]
    args = ["--session_service_uri", uri, "--memory_service_uri", uri]
    with adk_server(store_bin / "adk", command, user_agents, args, cwd=user_agents.parent,
                    env=_clean_env()) as base:
        assert httpx.get(f"{base}/list-apps").json() == ["helper"]
        created = httpx.post(f"{base}/apps/helper/users/{user}/sessions", json={})
        assert created.status_code == 200, created.text
        events = adk_turn(base, "helper", user, created.json()["id"], "weather in Oslo please")
        assert any("sunny and 21 C in Oslo" in text for _, text in texts(events))
    stored = _stored_texts(store_bin, url, "helper", user, user_agents)
    assert stored[0] == "weather in Oslo please" and "sunny and 21 C in Oslo" in stored[-1]


def test_the_whole_team_chats(team_bin: Path, tmp_path: Path) -> None:
    db = tmp_path / "chat.db"
    chat = subprocess.run(
        [str(team_bin / "multi-agent"), "chat", "--user", "ann", "--db", str(db)],
        input="tell me a joke about python\nadd AAPL to my watch list\n/quit\n",
        capture_output=True, text=True, timeout=300, cwd=tmp_path, env=_clean_env())
    assert chat.returncode == 0, chat.stderr[-3000:]
    assert "[funny_nerd]" in chat.stdout and "Added AAPL to your watch list" in chat.stdout
    assert "not an LLM" in chat.stdout
    for name in ("manager", "subagents", "state_tools"):
        assert _py(team_bin, f"import {name}", cwd=tmp_path).returncode == 1, name
    team = _py(team_bin, "from multi_agent.team.adk_app import app; import multi_agent; "
               "print(app.name, multi_agent.team.manager.team.__name__)", cwd=tmp_path)
    assert team.stdout.split() == ["multi_agent", "multi_agent.team.manager.team"], team.stderr
