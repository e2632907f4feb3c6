"""``bench.scale`` keeps working: run tiny (50 sessions / 2,000 events, ours beside ADK's on
SQLite, and on PostgreSQL), and its ``--index-cost`` mode; what it measured is read back (no
timing is asserted: speed is the bench's business)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import require_pg

ROOT = Path(__file__).resolve().parents[2]
KEYS = {"last20", "list_user", "page_first", "page_deep", "user_page"}


def run_bench(tmp_path: Path, *args: str, pg: str | None = None) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "MULTI_AGENT_BENCH_PG_URL"}
    out = tmp_path / "scale.json"
    extra = ["--pg", pg] if pg else []
    done = subprocess.run([sys.executable, "-m", "bench.scale", *args, *extra,
                           "--json", str(out)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "load" in done.stdout and "Traceback" not in done.stderr
    return json.loads(out.read_text())


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_tiny_scale_run(tmp_path: Path, backend: str) -> None:
    pg = require_pg() if backend == "postgresql" else None
    got = run_bench(tmp_path, "--sessions", "50", "--events", "2000", "--users", "7",
                    "--reps", "3", pg=pg)
    r = got["backends"][backend]
    assert r["events"] == 2000 and r["walked"] == 50
    assert set(r["medians_ms"]["ours"]) == KEYS and set(r["medians_ms"]["adk"]) == KEYS
    assert r["bytes_per_event"]["ours"] > 0 and r["bytes_per_event"]["adk"] > 0


def test_index_cost_mode(tmp_path: Path) -> None:
    got = run_bench(tmp_path, "--index-cost", "--sessions", "20", "--appends", "20",
                    "--rounds", "1")
    rows = got["backends"]["sqlite"]
    assert set(rows) == {"no page index", "user index only", "both (schema 5)"}
    assert all(v["ev_s"] > 0 and v["cpu_ms"] > 0 for v in rows.values())


def test_page_scale_mode(tmp_path: Path) -> None:
    got = run_bench(tmp_path, "--page-scale", "60,200", "--reps", "2")
    assert set(got["sizes"]) == {"60", "200"}
    assert all(set(r) == {"first", "deep", "user"} for r in got["sizes"].values())
