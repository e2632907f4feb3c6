"""Helpers shared by the reliability tests: PostgreSQL control, raw reads, invariants."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from multi_agent import DatabaseSessionService
from tests.conftest import REQUIRE_PG, require_pg

ROOT = Path(__file__).resolve().parents[2]
PY = sys.executable
TABLES = ("ma_app_states", "ma_user_states", "ma_sessions", "ma_events", "ma_runs")


# ---------------------------------------------------------------------------------------------
# PostgreSQL server control (the throw-away server of scripts/with_postgres.sh)


class PgServer:
    """Stops and starts the test PostgreSQL server the way scripts/with_postgres.sh started it."""

    def __init__(self) -> None:
        require_pg()
        self.dir = os.environ.get("MULTI_AGENT_TEST_PG_DIR")
        self.port = os.environ.get("MULTI_AGENT_TEST_PG_PORT")
        if not self.dir or not self.port:
            if REQUIRE_PG:
                pytest.fail(
                    "MULTI_AGENT_TEST_PG_DIR/PORT not set: run under scripts/with_postgres.sh"
                )
            pytest.skip("needs a PostgreSQL server this test may stop (scripts/with_postgres.sh)")
        self.options = (
            f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.dir} -c fsync=off "
            "-c max_connections=300"
        )

    def _cmd(self, *args: str) -> list[str]:
        base = ["pg_ctl", "-D", f"{self.dir}/data", "-w", "-t", "60", *args]
        if os.getuid() == 0:
            return ["runuser", "-u", "postgres", "--", *base]
        return base

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        bins = [str(p) for p in sorted(Path("/usr/lib/postgresql").glob("*/bin"))]
        env["PATH"] = os.pathsep.join([*bins, env.get("PATH", "")])
        return env

    async def stop(self, mode: str = "fast") -> float:
        """Stops the server (``fast``: clients are disconnected; ``immediate``: a crash)."""
        return await self._run("-m", mode, "stop")

    async def start(self) -> float:
        return await self._run("-l", f"{self.dir}/server.log", "-o", self.options, "start")

    def start_sync(self) -> None:
        """Makes sure the server runs (used in ``finally`` so later tests keep their server)."""
        status = subprocess.run(self._cmd("status"), env=self._env(), capture_output=True)
        if status.returncode != 0:
            subprocess.run(
                self._cmd("-l", f"{self.dir}/server.log", "-o", self.options, "start"),
                env=self._env(), capture_output=True, check=True,
            )

    def processes(self) -> list[int]:
        """The postmaster and every process it started (backends, background workers)."""
        postmaster = int(Path(f"{self.dir}/data/postmaster.pid").read_text().split()[0])
        children = subprocess.run(["pgrep", "-P", str(postmaster)], capture_output=True,
                                  text=True).stdout.split()
        return [postmaster, *(int(c) for c in children)]

    def pause(self) -> list[int]:
        """Stalls the server without closing anything (SIGSTOP): it accepts TCP connections
        (the kernel does) but answers nothing, like a hung machine. Returns the processes."""
        stopped = self.processes()
        for pid in stopped:
            os.kill(pid, signal.SIGSTOP)
        return stopped

    @staticmethod
    def resume(stopped: list[int]) -> None:
        for pid in stopped:
            try:
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:
                pass

    async def _run(self, *args: str) -> float:
        t0 = time.monotonic()
        proc = await asyncio.create_subprocess_exec(
            *self._cmd(*args), env=self._env(),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )
        out, err = await proc.communicate()
        assert proc.returncode == 0, f"pg_ctl {args}: {out.decode()} {err.decode()}"
        return time.monotonic() - t0


# ---------------------------------------------------------------------------------------------
# Raw reads


async def raw_rows(store: DatabaseSessionService, sql: str, **params: Any) -> list[tuple]:
    def q(conn):
        return [tuple(r) for r in conn.execute(text(sql), params)]

    return await store.backend.run(q, write=False)


async def table_counts(store: DatabaseSessionService) -> dict[str, int]:
    """Rows in every store table (to prove that a refused call wrote nothing)."""

    def q(conn):
        return {t: conn.execute(text(f"SELECT COUNT(*) FROM {t}")).scalar() for t in TABLES}

    await store.prepare()
    return await store.backend.run(q, write=False)


def sqlite_check(path: str | Path) -> None:
    """``PRAGMA integrity_check`` is ok and no foreign key points nowhere."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
    finally:
        conn.close()


async def check_session_invariants(
    store: DatabaseSessionService, app: str, user: str, session_id: str
) -> list[Any]:
    """Nothing half-written: dense seqs, counters in the row equal to the events; returns events.

    Also: every event's run has its row (no orphan), the session's ``count`` state equals its
    number of events, and the k-th event set ``count`` to k.
    """
    (row,) = await raw_rows(
        store,
        "SELECT last_seq, event_count, revision FROM ma_sessions "
        "WHERE app_name = :a AND user_id = :u AND id = :s",
        a=app, u=user, s=session_id,
    )
    last_seq, event_count, revision = row
    seqs = [
        r[0]
        for r in await raw_rows(
            store,
            "SELECT seq FROM ma_events WHERE app_name = :a AND user_id = :u AND session_id = :s "
            "ORDER BY seq",
            a=app, u=user, s=session_id,
        )
    ]
    assert seqs == list(range(1, len(seqs) + 1)), "event sequence numbers are not dense"
    assert last_seq == event_count == revision == len(seqs)
    orphans = await raw_rows(
        store,
        "SELECT e.seq FROM ma_events e LEFT JOIN ma_runs r ON r.app_name = e.app_name AND "
        "r.user_id = e.user_id AND r.session_id = e.session_id AND r.run_id = e.run_id "
        "WHERE e.app_name = :a AND e.user_id = :u AND e.session_id = :s AND r.run_id IS NULL",
        a=app, u=user, s=session_id,
    )
    assert orphans == [], "events whose run row is missing"
    session = await store.get_session(app_name=app, user_id=user, session_id=session_id)
    assert session is not None
    assert len(session.events) == len(seqs)
    return session.events


def wait_for(pred, timeout: float, what: str) -> None:
    end = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.005)
