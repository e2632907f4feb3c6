"""``bench.encryption`` keeps working: one tiny round (SQLite, and PostgreSQL when configured),
encryption off and on, and the code of the previous commit, each in its own process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import PG_URL

ROOT = Path(__file__).resolve().parents[2]


def test_encryption_bench_runs(tmp_path: Path) -> None:
    md = tmp_path / "encryption.md"
    command = [sys.executable, "-m", "bench.encryption", "--events", "40", "--reads", "2",
               "--rounds", "1", "--before", "HEAD", "--md", str(md)]
    if PG_URL:
        command += ["--pg", PG_URL]
    env = {k: v for k, v in os.environ.items() if not k.startswith("MULTI_AGENT_ENCRYPTION")}
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    backends = 2 if PG_URL else 1
    assert len(rows) == 3 * backends
    assert {r["variant"] for r in rows} == {"off", "on", "before"}
    assert all(r["append_ms"] > 0 and r["get_ms"] > 0 for r in rows)
    table = md.read_text()
    assert table.count("| sqlite |") == 3 and "| on |" in table and "x |" in table
