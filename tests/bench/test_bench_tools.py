"""The benchmarks keep working: ``bench.concurrency`` (one short cell per service, nothing lost),
``bench.served`` (a few served turns) and ``bench.pg_limit`` (plain asyncpg), each writing its
table."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import require_pg

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_a_short_run_counts_every_acknowledged_append(backend: str, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "MULTI_AGENT_BENCH_PG_URL"}
    only = "ours-sqlite,adk-db"
    if backend == "postgres":
        env["MULTI_AGENT_BENCH_PG_URL"] = require_pg()
        only = "ours-pg,adk-db-pg"
    md = tmp_path / "conc.md"
    settle = ["--settle-heap"] if backend == "sqlite" else []  # the flag works; PG: without
    done = subprocess.run(
        [sys.executable, "-m", "bench.concurrency", "--only", only, "--tasks", "4",
         "--processes", "1,2", "--seconds", "1", "--md", str(md), *settle],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    expected = 4 if backend == "postgres" else 2  # PostgreSQL also runs 4 tasks × 2 processes
    assert len(rows) == expected
    for row in rows:
        assert row["acked"] > 0 and row["lost"] == 0 and row["unacknowledged_stored"] == 0, row
        assert row["state_lost"] == 0, row
        assert row["full_gcs"] >= 0 and row["full_gc_max_ms"] >= 0, row
    table = md.read_text()
    assert table.count("\n| ours-") == expected // 2 and "x |" in table
    assert "full GCs (longest ms)" in table
    assert ("froze its start-up heap" in table) == bool(settle)


def test_served_turns_bench_runs(tmp_path: Path) -> None:
    """``bench.served``: the team behind a real ``adk api_server`` on ADK's store and on ours
    (with ``?window``), and behind ``multi-agent serve``."""
    md = tmp_path / "served.md"
    env = {k: v for k, v in os.environ.items() if k != "MULTI_AGENT_MODEL"}
    done = subprocess.run(
        [sys.executable, "-m", "bench.served", "--only", "adk-db,ours-window,serve", "--users", "2",
         "--turns", "2", "--prior", "30", "--md", str(md)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    table = md.read_text()
    for service in ("adk-db", "ours-window", "serve"):
        assert f"| {service} | 2 | 4 | 0 |" in table, table
    assert "holding 30 events" in table


def test_the_plain_asyncpg_ceiling_bench_runs(tmp_path: Path) -> None:
    """``bench.pg_limit``: each way stores every event it acknowledged (and says so)."""
    md = tmp_path / "limit.md"
    env = {**os.environ, "MULTI_AGENT_BENCH_PG_URL": require_pg()}
    done = subprocess.run(
        [sys.executable, "-m", "bench.pg_limit", "--tasks", "1,3", "--seconds", "0.5",
         "--md", str(md)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert [(r["mode"], r["tasks"]) for r in rows] == [
        (mode, k) for k in (1, 3) for mode in ("locked", "one statement", "batched")]
    for row in rows:
        assert row["acked"] > 0 and row["acked"] == row["stored"] and row["rows_behind"] == 0
    table = md.read_text()
    assert table.count("| yes |") == 6 and "| NO |" not in table


def test_the_plain_asyncpg_ceiling_bench_says_what_it_needs() -> None:
    env = {k: v for k, v in os.environ.items() if k != "MULTI_AGENT_BENCH_PG_URL"}
    done = subprocess.run([sys.executable, "-m", "bench.pg_limit"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "MULTI_AGENT_BENCH_PG_URL" in done.stderr
    assert "Traceback" not in done.stderr
