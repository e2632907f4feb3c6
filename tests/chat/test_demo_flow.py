"""``demo_flow.py``: the tour runs straight through, step by step, and restarts for real."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.chat._util import ROOT, clean_env, ok, run_cli, sqlite_url

pytestmark = pytest.mark.timeout(300)

DEMO = str(ROOT / "demo_flow.py")
STEPS = 14  # 8 in the first process, 6 in the restarted one


def demo(*args: str, cwd: Path, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """Runs the tour; its temporary database goes under ``cwd``'s sibling ``tmp`` folder."""
    temp = cwd.parent / "tmp"
    temp.mkdir(exist_ok=True)
    return subprocess.run(
        [sys.executable, DEMO, *args], cwd=cwd, env=clean_env(TMPDIR=str(temp)), input=stdin,
        stdin=None if stdin is not None else subprocess.DEVNULL,
        capture_output=True, text=True, timeout=240,
    )


def check_tour(out: str) -> dict[str, str]:
    """Asserts what every run of the tour shows; returns facts to compare between runs."""
    steps = [int(n) for n in re.findall(r"^Step (\d+): ", out, flags=re.M)]
    assert steps == list(range(1, STEPS + 1)), steps
    (db,) = re.findall(r"^│ Database: (\S+)", out, flags=re.M)

    # Part 1: the database and its tables, the session with its initial state.
    assert re.search(r"SQLite file .*multi_agent_data\.db: did not exist; created it", out) \
        or "connected; schema created" in out
    for table in ("ma_sessions", "ma_events", "ma_runs", "ma_user_states", "ma_app_states"):
        assert re.search(rf"^{table}\s+│ \S", out, flags=re.M), table
    assert '"user:user_name": "Arvind Mehta"' in out
    assert '"total_interactions": 0' in out

    # Each interaction: the delegation and the state change it caused.
    part1, part2 = out.split("Step 9: ", 1)
    for agent in ("funny_nerd", "stock_analyst", "historian"):
        assert f"delegation: manager → {agent}" in part1
        assert re.search(rf"^\s*\d+\s+manager → {agent}\s+transfer_to_agent", part1, re.M)
    assert re.search(r"^user:preferences\.joke_preferences\s+│ user\s+│ \+1: python", part1,
                     re.M)
    assert re.search(r"^user:preferences\.stock_watchlist\s+│ user\s+│ \+2: AAPL; GOOGL",
                     part1, re.M)
    assert re.search(r"^session_metadata\.total_interactions\s+│ session\s+│ 3 → 4", part1,
                     re.M)
    assert "won't guess or make up a price" in " ".join(part1.split())  # honestly unavailable
    assert "We've had 3 exchanges across 1 session" in part1

    # The restart is a new process, and it restored everything.
    (parent,) = re.findall(r"^Process (\d+) has closed the database", part1, flags=re.M)
    child, started_by = re.findall(r"^This is process (\d+) \(started by process (\d+)\)",
                                   part2, flags=re.M)[0]
    assert started_by == parent and child != parent
    table = part2.split("Restored from the database", 1)[1].split("Step 11: ", 1)[0]
    restored = {
        key: value.strip() for key, value in re.findall(
            r"^(user name|joke preferences|watch list|agent stats)\s+│ (.*)$", table, re.M)
    }
    assert restored == {
        "user name": "Arvind Mehta",
        "joke preferences": "python",
        "watch list": "AAPL, GOOGL",
        "agent stats": "funny_nerd ×1, historian ×1, stock_analyst ×2",
    }
    assert re.search(r"^earlier session\s+│ [0-9a-f-]{36}: \d+ events, 4 exchanges", table, re.M)
    assert "Since you like python jokes" in part2  # the new session knows the user
    assert "We've had 5 exchanges across 2 sessions" in part2
    assert 'you said "Tell me a joke about Python"' in part2
    checks = re.findall(r"^(.+?)\s+│ ([✓✗]) │", part2.split("Nothing was lost", 1)[1], re.M)
    assert len(checks) == 7 and all(mark == "✓" for _, mark in checks), checks
    return {"db": db, **restored}


def test_runs_straight_through_and_twice_alike(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    first = ok(demo(cwd=work))
    assert "Press Enter" not in first
    facts = check_tour(first)
    second_facts = check_tour(ok(demo(cwd=work)))
    # Each run starts on its own fresh temporary database, so both show the same.
    assert facts.pop("db") != second_facts.pop("db")
    assert facts == second_facts
    assert list(work.iterdir()) == []  # nothing left in the working directory
    assert len(list((tmp_path / "tmp").glob("multi_agent_demo_*/multi_agent_data.db"))) == 2


def test_step_mode_waits_for_enter_in_both_processes(tmp_path: Path) -> None:
    out = ok(demo("--step", cwd=tmp_path, stdin="\n" * STEPS))
    check_tour(out)
    pauses = re.findall(r"Press Enter for step (\d+):", out)
    assert [int(n) for n in pauses] == list(range(2, STEPS + 1))  # 9-14: the new process
    assert "no more input" not in out


def test_step_mode_without_enough_input_runs_on(tmp_path: Path) -> None:
    out = ok(demo("--step", cwd=tmp_path, stdin="\n\n"))
    check_tour(out)
    assert "(no more input: continuing without pausing)" in out
    assert len(re.findall(r"Press Enter for step", out)) == 3


def test_given_database_is_kept_and_inspectable(tmp_path: Path) -> None:
    db = tmp_path / "tour.db"
    out = ok(demo("--db", str(db), "--user", "meera", "--name", "Meera Iyer", cwd=tmp_path))
    assert f"│ Database: {sqlite_url(db)}" in out
    assert "Nothing was lost" in out and "Meera Iyer" in out
    state = json.loads(ok(run_cli("state", "--user", "meera", "--db", str(db), "--json",
                                  cwd=tmp_path)))
    assert state["user:user_name"] == "Meera Iyer"
    assert state["user:preferences"]["stock_watchlist"] == ["AAPL", "GOOGL"]
    assert [h["agent"] for h in state["conversation_history"]] == ["funny_nerd", "historian"]
    sessions = json.loads(ok(run_cli("sessions", "--user", "meera", "--db", str(db), "--json",
                                     cwd=tmp_path)))
    assert [s["interactions"] for s in sessions] == [4, 2]


@pytest.mark.postgres
def test_on_postgresql(tmp_path: Path) -> None:
    from tests.conftest import fresh_pg_database

    url = asyncio.run(fresh_pg_database())
    out = ok(demo("--db", url, cwd=tmp_path))
    assert "postgresql database" in out and "connected; schema created" in out
    check_tour(out)
