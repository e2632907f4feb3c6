"""The run tree drawn like ``git log --graph``: a chain of runs is a flat list, forks indent.

A 200-turn session with 3 branches (each turn a delegation, a compaction summary every 4
turns) drawn at 80 columns: one line per run and per delegation, no line wider than the
screen, every fork drawn once, the current path in the left column, sibling branches to its
right; the recent part only, with a line saying how to see the rest. Then the real CLI:
``runs``, ``branch`` and ``export`` default to the user's latest session.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

from google.adk.events.event import Event
from google.adk.events.event_actions import EventActions, EventCompaction
from google.genai import types
from rich.cells import cell_len
from rich.console import Console

from multi_agent import DatabaseSessionService
from multi_agent.cli.tree import render_tree
from tests.helpers import call_event, result_event, text_event

USER = "ann"
APP = "multi_agent"  # the CLI's default app name


def compaction(start: float, end: float) -> Event:
    """What ADK's sliding-window compaction appends: a user event with its own invocation."""
    return Event(
        author="user", invocation_id=Event.new_id(),
        actions=EventActions(compaction=EventCompaction(
            start_timestamp=start, end_timestamp=end,
            compacted_content=types.Content(role="model", parts=[types.Part(text="summary")]),
        )),
    )


async def turn(store: DatabaseSessionService, s, n: int, *, clock: list[float]) -> str:
    """One turn as the team plays it: the question, a transfer to a worker, its answer."""
    inv = f"e-{n:04d}-{'0' * 31}"  # as long as ADK's ids (e- and a UUID: 38 characters)
    clock[0] += 3
    worker = ("funny_nerd", "stock_analyst", "historian")[n % 3]
    for event in (
        text_event(f"question {n}: tell me something about topic {n}", author="user",
                   invocation_id=inv, timestamp=clock[0]),
        call_event("transfer_to_agent", {"agent_name": worker}, author="manager",
                   invocation_id=inv),
        result_event("transfer_to_agent", {"result": None}, author="manager",
                     invocation_id=inv, transfer_to=worker),
        text_event(f"answer {n}", author=worker, invocation_id=inv),
    ):
        await store.append_event(s, event)
    if n % 4 == 0:
        await store.append_event(s, compaction(clock[0] - 12, clock[0]))
    return inv


async def two_hundred_turns_three_branches(store: DatabaseSessionService, app_name: str,
                                           session_id: str = "long") -> dict[str, object]:
    """Turns 1-60; branch from 50; 61-120; branch from 110; 121-170; branch from 55 (on the
    first old branch); 171-200. Returns the turn ids and the expected shape."""
    s = await store.create_session(app_name=app_name, user_id=USER, session_id=session_id)
    clock = [time.time() - 3600]
    turns: dict[int, str] = {}

    async def run(numbers: range) -> None:
        nonlocal s
        for n in numbers:
            turns[n] = await turn(store, s, n, clock=clock)

    async def branch(n: int) -> None:
        nonlocal s
        await store.branch(app_name=app_name, user_id=USER, session_id=session_id,
                           from_run_id=turns[n])
        s = await store.get_session(app_name=app_name, user_id=USER, session_id=session_id)

    await run(range(1, 61))
    await branch(50)
    await run(range(61, 121))
    await branch(110)
    await run(range(121, 171))
    await branch(55)
    await run(range(171, 201))
    return {"turns": turns, "forks": [turns[50], turns[55], turns[110]]}


def draw(runs, width: int, **kw) -> list[str]:
    console = Console(record=True, width=width, color_system=None)
    console.print(render_tree(runs, title="session long (user ann)", **kw))
    return console.export_text().splitlines()


def column(line: str) -> int:
    """Where the run's mark (● or ○) is on its line."""
    return min(i for i in (line.find("●"), line.find("○")) if i >= 0)


async def test_two_hundred_turns_three_branches_at_80_columns(
    store: DatabaseSessionService, app_name: str
) -> None:
    shape = await two_hundred_turns_three_branches(store, app_name)
    turns: dict[int, str] = shape["turns"]  # type: ignore[assignment]
    runs = await store.list_runs(app_name=app_name, user_id=USER, session_id="long")
    # One run per turn plus one per delegation: no run of the 50 compaction summaries.
    assert len(runs) == 400 and {r.kind for r in runs} == {"invocation", "delegation"}
    assert {r.status for r in runs} == {"completed"}
    lines = draw(runs, 80)
    assert max(cell_len(line) for line in lines) <= 80
    # One line per run and per delegation, 3 fork lines, the title and the summary.
    assert len(lines) == 400 + 3 + 2, len(lines)
    for run_id in turns.values():
        assert sum(run_id in line for line in lines) == 1, run_id
    assert sum("├─╮" in line for line in lines) == 3  # each fork once
    assert sum("◀ head" in line for line in lines) == 1
    assert "◀ head" in next(line for line in lines if turns[200] in line)
    at = {n: next(i for i, line in enumerate(lines) if run_id in line)
          for n, run_id in turns.items()}
    # The current path (1-55, 171-200) is the left column, a flat list in order.
    path = [*range(1, 56), *range(171, 201)]
    assert all(lines[at[n]].startswith("● ") for n in path)
    assert [at[n] for n in path] == sorted(at[n] for n in path)
    # Off the path, one column right: 56-60 (forked at 55) and 61-110 (forked at 50) with
    # its continuation 121-170; 111-120, the older branch at 110, one further right. Each
    # branch is drawn right after its fork, before the column it left goes on.
    off = [*range(56, 61), *range(61, 111), *range(121, 171)]
    assert all(column(lines[at[n]]) == 2 and "○ " in lines[at[n]] for n in off)
    assert all(column(lines[at[n]]) == 4 and "○ " in lines[at[n]] for n in range(111, 121))
    assert at[50] < at[61] < at[110] < at[111] < at[120] < at[121] < at[170] < at[51]
    assert at[55] < at[56] < at[60] < at[171]
    for fork, first in ((50, 61), (110, 111), (55, 56)):
        assert lines[at[first] - 1].endswith("├─╮"), fork
    # A delegation is the line right under its run, one step in.
    for n in turns:
        below = lines[at[n] + 1]
        assert "↪ " in below and "delegation" in below, (n, below)
        assert below.index("↪") == column(lines[at[n]]) + 2
    # A line cut to the screen ends with an ellipsis, never wraps.
    assert all(len(line) <= 80 for line in lines)
    # Wider screens show the whole line: the person's message, the agent, the events.
    wide = draw(runs, 200)
    line = next(line for line in wide if turns[7] in line)
    assert "“question 7: tell me something about topic 7”" in line
    assert "manager  4 events" in line


async def test_recent_part_says_how_to_see_the_rest(
    store: DatabaseSessionService, app_name: str
) -> None:
    s = await store.create_session(app_name=app_name, user_id=USER, session_id="s")
    clock = [time.time()]
    ids = [await turn(store, s, n, clock=clock) for n in range(1, 31)]
    runs = await store.list_runs(app_name=app_name, user_id=USER, session_id="s")
    lines = draw(runs, 80, last=10, more="/runs all shows every run")
    assert lines[1] == "⋮ 20 earlier runs not shown: /runs all shows every run"
    assert not any(run_id in "".join(lines) for run_id in ids[:20])
    assert all(sum(run_id in line for line in lines) == 1 for run_id in ids[20:])
    assert len(lines) == 1 + 1 + 20 + 1
    # Everything fits: no such line.
    assert not any("⋮" in line for line in draw(runs, 80, last=30))


async def test_failed_and_cancelled_runs_stand_out(
    store: DatabaseSessionService, app_name: str
) -> None:
    s = await store.create_session(app_name=app_name, user_id=USER, session_id="s")
    clock = [time.time()]
    await turn(store, s, 1, clock=clock)
    await store.append_event(s, text_event("cut short", author="user", invocation_id="cut"))
    await store.set_run_status(app_name=app_name, user_id=USER, session_id="s", run_id="cut",
                               status="cancelled", error="interrupted by the user")
    await store.append_event(s, text_event("crashed", author="user", invocation_id="crash"))
    await turn(store, s, 2, clock=clock)
    runs = await store.list_runs(app_name=app_name, user_id=USER, session_id="s")
    lines = draw(runs, 200)
    assert "cut  cancelled  " in next(line for line in lines if "cut" in line)
    crash = next(line for line in lines if "crash  " in line)
    assert "failed" in crash and "ended without a final response" in crash
    assert "completed" not in "".join(lines[1:-1])  # the normal case is not spelled out
    assert "4 runs (2 completed, 1 failed, 1 cancelled)" in lines[-1]


# --------------------------------------------------------------------------------------------
# the real CLI


def cli(*args: str, cwd: Path, columns: int = 80) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MULTI_AGENT_")}
    env.update(COLUMNS=str(columns), NO_COLOR="1")
    return subprocess.run([sys.executable, "-m", "multi_agent", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


def ok(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 0, (proc.stdout[-2000:], proc.stderr)
    assert "Traceback" not in proc.stderr
    return proc.stdout


def test_cli_draws_the_latest_session_at_80_columns(tmp_path: Path) -> None:
    path = tmp_path / "data.db"

    async def build() -> dict[str, object]:
        async with DatabaseSessionService(f"sqlite+aiosqlite:///{path}") as store:
            await store.create_session(app_name=APP, user_id=USER, session_id="older")
            return await two_hundred_turns_three_branches(store, APP)

    shape = asyncio.run(build())
    turns: dict[int, str] = shape["turns"]  # type: ignore[assignment]
    common = ("--db", str(path), "--user", USER)
    out = ok(cli("runs", *common, cwd=tmp_path))  # no --session: the latest, "long"
    lines = out.splitlines()
    assert lines[0].startswith("session long (user ann)")
    assert len(lines) <= 2 * 200 + 10 and max(len(line) for line in lines) <= 80
    assert sum("├─╮" in line for line in lines) == 3
    out = ok(cli("runs", *common, "--last", "5", cwd=tmp_path))
    lines = out.splitlines()
    assert lines[1] == "⋮ 195 earlier runs not shown: run without --last to see every run"
    assert turns[200] in out and turns[195] not in out and len(lines) == 1 + 1 + 10 + 1
    # branch and export also default to the latest session.
    out = ok(cli("branch", *common, "--from", turns[60], cwd=tmp_path))
    assert out.startswith(f"Session long now continues from run {turns[60]}")
    doc = json.loads(ok(cli("export", *common, cwd=tmp_path)))
    assert doc["session"]["id"] == "long" and doc["session"]["head_run_id"] == turns[60]
    # A user with no session: one clear line and a failing exit code; and a mistyped --db
    # is said so, not created empty.
    for command in (("runs",), ("export",), ("branch", "--from", "x")):
        proc = cli(*command, "--db", str(path), "--user", "nobody", cwd=tmp_path)
        assert proc.returncode != 0 and not proc.stdout, proc.stdout
        assert re.fullmatch(r"multi-agent: User 'nobody' has no sessions in app "
                            r"'multi_agent'\. [^\n]*\n", proc.stderr), proc.stderr
        proc = cli(*command, "--db", str(tmp_path / "typo.db"), cwd=tmp_path)
        assert proc.returncode != 0 and "No database at" in proc.stderr
    assert not (tmp_path / "typo.db").exists()
