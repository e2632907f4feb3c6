"""The README's "Trimming a session's history" and "Encryption at rest" commands, run as
printed (in a fresh directory, so on ./multi_agent_data.db; the pip line is the install hint
``tests/packaging/test_metadata.py`` checks)."""

from __future__ import annotations

import asyncio
import re
import subprocess
from pathlib import Path

from multi_agent import DatabaseSessionService
from tests.chat._util import BIN, ROOT, TIMEOUT, clean_env
from tests.lifecycle._trim_util import build


def block(heading: str) -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]
    (found,) = re.findall(r"```(?:bash)?\n(.*?)```", section, flags=re.S)
    return [line for line in found.splitlines() if line.strip()]


def shell(command: str, *, cwd: Path, stdin: str = "", **env: str) -> subprocess.CompletedProcess:
    full = clean_env(PATH=f"{BIN}:{clean_env().get('PATH', '')}", **env)
    proc = subprocess.run(["bash", "-ec", command], cwd=cwd, env=full, input=stdin,
                          capture_output=True, text=True, timeout=TIMEOUT * 2)
    assert "Traceback" not in proc.stdout + proc.stderr, (command, proc.stderr)
    return proc


def stored(db: Path) -> list[int]:
    async def read() -> list[int]:
        async with DatabaseSessionService(f"sqlite+aiosqlite:///{db}") as store:
            listed = await store.list_sessions(app_name="multi_agent", user_id="ann")
            counts = []
            for s in sorted(listed.sessions, key=lambda s: s.id):
                full = await store.get_session(app_name="multi_agent", user_id="ann",
                                               session_id=s.id)
                counts.append(len(full.events))
            return counts

    return asyncio.run(read())


def test_the_readme_trim_commands(tmp_path: Path) -> None:
    commands = block("Trimming a session's history")
    assert commands == [
        "multi-agent prune --keep-last 200 --dry-run",
        "multi-agent prune --keep-last 200 --keep-days 30d --yes",
        "multi-agent prune --app multi_agent --keep-last 200 --save-policy",
        "multi-agent prune --policy --yes",
    ]
    db = tmp_path / "multi_agent_data.db"

    async def seed() -> None:
        async with DatabaseSessionService(f"sqlite+aiosqlite:///{db}") as store:
            await build(store, "multi_agent", "ann", "long", runs=70, summary_after=30)
            await build(store, "multi_agent", "ann", "short", runs=3)

    asyncio.run(seed())
    before = stored(db)
    assert before[0] > 200  # "long"
    dry = shell(commands[0], cwd=tmp_path)
    assert dry.returncode == 0 and dry.stdout.startswith("Would trim 1 session"), dry.stdout
    assert stored(db) == before
    done = shell(commands[1], cwd=tmp_path)
    assert done.returncode == 0 and done.stdout.startswith("Trimmed 1 session"), done.stdout
    after = stored(db)
    assert after[0] <= 201 and after[1] == before[1]  # 200 kept (+ the summary), short untouched
    saved = shell(commands[2], cwd=tmp_path)
    assert saved.returncode == 0 and "Stored the retention policy" in saved.stdout, saved.stderr
    again = shell(commands[3], cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert stored(db) == after  # nothing more to trim under the same policy


def test_the_readme_encryption_commands(tmp_path: Path) -> None:
    lines = block("Encryption at rest")
    assert lines[0] == "pip install 'adk-lossless-sessions[encryption]'"
    script = "\n".join(lines[1:])
    proc = shell(script, cwd=tmp_path, stdin="add NVDA to my watchlist\n/quit\n")
    assert proc.returncode == 0, (proc.stdout[-2000:], proc.stderr[-2000:])
    assert "Your watch list: NVDA." in proc.stdout
    assert re.search(r"re-?seal", proc.stdout, flags=re.I), proc.stdout
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("multi_agent_data.db*"))
    assert b"NVDA" not in raw
