"""``bench.prune`` keeps working: a tiny database (4 sessions of 40 events) pruned and trimmed
while its writer process appends, on SQLite and PostgreSQL; the writer loses nothing."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import fresh_pg_database

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_prune_bench_runs_tiny(backend: str, tmp_path: Path) -> None:
    md = tmp_path / "prune.md"
    command = [sys.executable, "-m", "bench.prune", "--events", "160", "--per-session", "40",
               "--keep-last", "8", "--baseline", "0.5", "--md", str(md)]
    if backend == "postgres":
        command += ["--pg", asyncio.run(fresh_pg_database()), "--no-sqlite"]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert [r["database"] for r in rows] == ["sqlite" if backend == "sqlite" else "postgresql"]
    row = rows[0]
    # Half the sessions were idle: pruned whole; the other two trimmed to their last 8 events.
    assert (row["prune_sessions"], row["prune_events"]) == (2, 80)
    assert (row["trim_sessions"], row["trim_events"]) == (2, 64)
    assert row["writer_lost"] == 0 and row["writer_appended"] > 0
    table = md.read_text()
    assert "| trim | 64 |" in table and "Load average before:" in table
