"""Served turns: the team behind ADK's own ``adk api_server``, on our store and on ADK's.

    python -m bench.served                  # C = 1, 8, 32 users x 10 turns; 2,000 prior events
    python -m bench.served --quick          # C = 1, 8 users x 4 turns; 500 prior events

The same agents (this repository's ``multi_agent`` app, the offline model), each server on a
fresh SQLite file:

* ``adk-db``: ``adk api_server`` on ADK's ``DatabaseSessionService`` (``sqlite+aiosqlite://``);
* ``ours``: ``adk api_server`` on ``multi-agent+sqlite://...``;
* ``ours-window``: the same with ``?window=60`` (a call without a config loads the bounded
  context; see ``multi_agent.memory.bounded_service``);
* ``serve``: ``multi-agent serve`` (the team's own AG-UI service; users by a trusted header, so
  no tokens need making), a turn being ``POST /api/threads/{id}/runs`` read to ``RUN_FINISHED``.

Part 1: C users at once, each in their own session, T turns each over HTTP (``POST /run``):
turns/s, turn latency p50/p99, failed turns (HTTP errors, dropped connections, ``RUN_ERROR``),
server CPU per turn (user+system time of the server process from ``/proc``). Part 2 (ADK's
server only): one user whose session already holds ``--prior`` events (synthetic delegated
turns appended through the service's own ``append_event`` before the server starts): server CPU
per turn, against the same on a fresh session. Load averages are printed with each row.
Results: ``bench/results/served.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from tests.adk_cli import adk_server, free_port, server_process

from .turn_cost import synthetic_turn

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"
APP = "multi_agent"
ADK = Path(sys.executable).with_name("adk")
SERVICES = ("adk-db", "ours", "ours-window", "serve")
USER_HEADER = "X-Bench-User"
MESSAGES = ("tell me a joke about python", "add NVDA to my watch list", "what's my watch list?",
            "tell me a joke about physics", "what did we talk about?")


def _uri(service: str, db: Path) -> str:
    if service == "adk-db":
        return f"sqlite+aiosqlite:///{db}"
    return f"multi-agent+sqlite:///{db}" + ("?window=60" if service == "ours-window" else "")


def _cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its waited-for children, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = sum(int(fields[i]) for i in (11, 12, 13, 14))
    return ticks / os.sysconf("SC_CLK_TCK")


async def _create(http: httpx.AsyncClient, service: str, user: str) -> str:
    if service == "serve":
        made = await http.post("/api/threads", json={}, headers={USER_HEADER: user})
        return made.json()["threadId"]
    made = await http.post(f"/apps/{APP}/users/{user}/sessions", json={})
    return made.json()["id"]


async def _turn(http: httpx.AsyncClient, service: str, user: str, session_id: str,
                text: str) -> bool:
    """One turn; True when it was answered."""
    if service != "serve":
        reply = await http.post("/run", json={
            "app_name": APP, "user_id": user, "session_id": session_id,
            "new_message": {"role": "user", "parts": [{"text": text}]}})
        return reply.status_code == 200
    body = {"threadId": session_id, "runId": f"r-{time.monotonic_ns()}", "state": {},
            "messages": [{"id": f"m-{time.monotonic_ns()}", "role": "user", "content": text}],
            "tools": [], "context": [], "forwardedProps": {}}
    finished = False
    async with http.stream("POST", f"/api/threads/{session_id}/runs", json=body,
                           headers={USER_HEADER: user}) as reply:
        if reply.status_code != 200:
            return False
        async for line in reply.aiter_lines():
            if line.startswith("data:") and '"RUN_ERROR"' in line:
                return False
            finished = finished or (line.startswith("data:") and '"RUN_FINISHED"' in line)
    return finished


async def _users(base: str, service: str, users: int, turns: int
                 ) -> tuple[int, int, float, list[float]]:
    """``users`` concurrent users, ``turns`` each; returns (done, failed, seconds, latencies)."""
    async with httpx.AsyncClient(base_url=base, timeout=300) as http:
        sessions = [await _create(http, service, f"bench{u}") for u in range(users)]
        done = failed = 0
        latencies: list[float] = []

        async def user(u: int) -> None:
            nonlocal done, failed
            for t in range(turns):
                started = time.perf_counter()
                try:
                    ok = await _turn(http, service, f"bench{u}", sessions[u],
                                     MESSAGES[(u + t) % len(MESSAGES)])
                except httpx.HTTPError:
                    ok = False
                if ok:
                    latencies.append(time.perf_counter() - started)
                done, failed = done + ok, failed + (not ok)

        t0 = time.perf_counter()
        await asyncio.gather(*(user(u) for u in range(users)))
        return done, failed, time.perf_counter() - t0, sorted(latencies)


async def _prefill(service: str, db: Path, prior: int) -> str:
    """A session of user ``hist`` holding ``prior`` synthetic events, through the service."""
    if service == "adk-db":
        from google.adk.sessions.database_session_service import DatabaseSessionService
        svc = DatabaseSessionService(db_url=_uri(service, db))
    elif service == "serve":
        return ""  # part 2 is about ADK's servers loading whole sessions
    else:
        from multi_agent import DatabaseSessionService
        svc = DatabaseSessionService(f"sqlite+aiosqlite:///{db}")
    session = await svc.create_session(app_name=APP, user_id="hist")
    start = time.time() - prior - 3600.0
    n = written = 0
    while written < prior:
        for event in synthetic_turn(n, start + written)[: prior - written]:
            await svc.append_event(session, event)
            written += 1
        n += 1
    await svc.close()
    return session.id


HISTORY_TURNS = 10
"""Turns measured together for part 2: /proc counts CPU in 10 ms ticks, so one turn's ~50 ms
cannot be told apart from 40 or 60; the mean of ten can (1 ms)."""


def _turn_cpu(base: str, pid: int, user: str, session_id: str, turns: int) -> float:
    """Mean server CPU ms of ``turns`` turns of one user, one after another."""

    async def turns_of_one_user() -> float:
        async with httpx.AsyncClient(base_url=base, timeout=300) as http:
            before = _cpu_seconds(pid)
            for t in range(turns):
                assert await _turn(http, "adk", user, session_id, MESSAGES[t % 5])
            return 1000 * (_cpu_seconds(pid) - before) / turns

    return asyncio.run(turns_of_one_user())


@contextlib.contextmanager
def _server(service: str, db: Path, tmp: Path, pids: list[int]) -> Iterator[str]:
    env = {**os.environ, "ADK_DISABLE_LOAD_DOTENV": "1"}
    env.pop("MULTI_AGENT_MODEL", None)
    if service != "serve":
        with adk_server(ADK, "api_server", ROOT, ["--session_service_uri", _uri(service, db)],
                        cwd=tmp, env=env, pids=pids) as base:
            yield base
        return
    port = free_port()
    argv = [str(ADK.with_name("multi-agent")), "serve", "--port", str(port), "--db", str(db),
            "--user-header", USER_HEADER, "--max-runs-per-user", "4"]
    with server_process(argv, f"http://127.0.0.1:{port}", "/api/info", cwd=tmp, env=env,
                        log=tmp / "serve.log", pids=pids) as base:
        yield base


def run_service(service: str, user_counts: list[int], turns: int, prior: int) -> list[dict]:
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-served-") as tmp:
        db = Path(tmp) / "sessions.db"
        history = asyncio.run(_prefill(service, db, prior)) if prior else None
        pids: list[int] = []
        with _server(service, db, Path(tmp), pids) as base:
            pid = pids[0]
            for users in user_counts:
                load = os.getloadavg()[0]
                cpu0 = _cpu_seconds(pid)
                done, failed, secs, lat = asyncio.run(_users(base, service, users, turns))
                cpu = _cpu_seconds(pid) - cpu0
                rows.append({"part": "users", "service": service, "users": users,
                             "turns": done, "failed": failed, "per_s": done / secs,
                             "p50_ms": 1000 * lat[len(lat) // 2] if lat else None,
                             "p99_ms": 1000 * lat[int(len(lat) * 0.99)] if lat else None,
                             "cpu_ms": 1000 * cpu / max(done, 1),
                             "load": (round(load, 2), round(os.getloadavg()[0], 2))})
                print(rows[-1], flush=True)
            if history:
                warm = httpx.post(f"{base}/apps/{APP}/users/warm/sessions", json={}).json()
                _turn_cpu(base, pid, "warm", warm["id"], 2)  # first turns of a server cost more
                fresh = httpx.post(f"{base}/apps/{APP}/users/fresh/sessions", json={}).json()
                load = os.getloadavg()[0]
                rows.append({"part": "history", "service": service, "prior": prior,
                             "fresh_ms": _turn_cpu(base, pid, "fresh", fresh["id"],
                                                   HISTORY_TURNS),
                             "history_ms": _turn_cpu(base, pid, "hist", history,
                                                     HISTORY_TURNS),
                             "load": (round(load, 2), round(os.getloadavg()[0], 2))})
                print(rows[-1], flush=True)
    return rows


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def report(rows: list[dict], meta: dict) -> str:
    out = ["# Served turns (`python -m bench.served`)", "",
           f"{meta['when']}, {meta['cpus']} CPUs; `adk api_server` on this repository's team "
           "(offline model), one SQLite file per service. CPU = the server process's user+system "
           "time.", "",
           "| service | users at once | turns | failed | turns/s | ratio to ADK "
           "| p50 / p99 ms | server CPU ms/turn | load 1-min before → after |",
           "|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    adk = {r["users"]: r["per_s"] for r in rows if r["part"] == "users" and
           r["service"] == "adk-db"}
    for r in (r for r in rows if r["part"] == "users"):
        base = adk.get(r["users"])
        ratio = f"{r['per_s'] / base:.1f}x" if base and r["service"] != "adk-db" else ""
        out.append(f"| {r['service']} | {r['users']} | {r['turns']} | {r['failed']} | "
                   f"{r['per_s']:.1f} | {ratio} | {_ms(r['p50_ms'])} / {_ms(r['p99_ms'])} | "
                   f"{r['cpu_ms']:.0f} | {r['load'][0]} → "
                   f"{r['load'][1]} |")
    history = [r for r in rows if r["part"] == "history"]
    if history:
        out += ["", f"One user, a session already holding {history[0]['prior']:,} events "
                f"(mean of {HISTORY_TURNS} turns in a row):", "",
                "| service | server CPU ms/turn, fresh session | with the history | ratio |",
                "|---|---:|---:|---:|"]
        for r in history:
            out.append(f"| {r['service']} | {r['fresh_ms']:.0f} | {r['history_ms']:.0f} | "
                       f"{r['history_ms'] / max(r['fresh_ms'], 1e-9):.1f}x |")
    return "\n".join(out) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--users", help="comma-separated C (default 1,8,32; 0: none)")
    parser.add_argument("--turns", type=int)
    parser.add_argument("--prior", type=int)
    parser.add_argument("--only", help="comma-separated services")
    parser.add_argument("--md", type=Path)
    args = parser.parse_args()
    users = [int(u) for u in (args.users or ("1,8" if args.quick else "1,8,32")).split(",")
             if int(u) > 0]  # --users 0: part 2 only
    turns = args.turns or (4 if args.quick else 10)
    prior = args.prior if args.prior is not None else (500 if args.quick else 2000)
    services = args.only.split(",") if args.only else list(SERVICES)
    rows = []
    for service in services:
        rows.extend(run_service(service, users, turns, prior))
    meta = {"when": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "cpus": os.cpu_count()}
    text = report(rows, meta)
    target = args.md or RESULTS / ("served-quick.md" if args.quick else "served.md")
    target.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
