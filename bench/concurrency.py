"""Concurrent appends: K tasks (each on its own session) in P processes, ours against ADK's.

    python -m bench.concurrency                   # K = 1, 8, 64, 256; P = 1, 2, 4 on PostgreSQL
    python -m bench.concurrency --quick                 # K = 1, 64; P = 1, 4; shorter cells
    python -m bench.concurrency --tasks 64 --only ours-sqlite,adk-db

Every append carries a session key and a ``user:`` key (each task is its own user); every tenth
an ``app:`` key too (one per task, so no two tasks write the same key, but all share the app's
row), as the team's state tools do. Each cell runs for ``--seconds`` in fresh child processes on
a fresh database; afterwards the parent counts, through the service, the events each session
holds, against the appends that were acknowledged (``lost`` must be 0). Reported per cell:
acknowledged appends/s, latency p50/p99, CPU ms per append (user+system of the child
processes), errors (raised appends), lost, and the load average around the cell.

PostgreSQL (``MULTI_AGENT_BENCH_PG_URL``, as for ``bench.run``) should be durable (``fsync`` on);
the run says what the server reports. ``make bench`` starts one with fsync on.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import gc
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from . import workload
from .adapters import PG_ENV, PgScratch

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"
SERVICES = ["ours-sqlite", "adk-db", "ours-pg", "adk-db-pg"]
PEER = {"ours-sqlite": "adk-db", "ours-pg": "adk-db-pg"}  # the ADK service each is compared to
APP = workload.APP


async def _open(service: str, url: str):
    """The service on ``url``, its tables made (ADK's through its own ``prepare_tables``)."""
    if service.startswith("ours"):
        from multi_agent import DatabaseSessionService

        svc = DatabaseSessionService(url)
        await svc.prepare()
        return svc
    from google.adk.sessions.database_session_service import DatabaseSessionService

    svc = DatabaseSessionService(db_url=url)
    await svc.prepare_tables()
    return svc


def _event(task: int, n: int):
    event = workload.make_event(n, inv=f"c-{task}-{n // 4}")
    delta = {"turn": n, f"user:turns_{task}": n}
    if n % 10 == 0:
        delta[f"app:last_{task}"] = n
    event.actions.state_delta = delta
    return event


class _FullCollections:
    """The cyclic collector's full (generation-2) collections while it is installed: how many,
    and the longest, in ms. Each walks the whole heap (the imports alone: ~140,000 objects,
    ~100 ms on the 2-core box; more as the tasks' session copies grow), and every task waits
    meanwhile: they, not the store, set most of a cell's p99."""

    def __init__(self) -> None:
        self.pauses: list[float] = []
        self._started = 0.0

    def __call__(self, phase: str, info: dict) -> None:
        if info.get("generation") != 2:
            return
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.pauses.append(1000 * (time.perf_counter() - self._started))

    def __enter__(self) -> _FullCollections:
        gc.callbacks.append(self)
        return self

    def __exit__(self, *exc: object) -> None:
        gc.callbacks.remove(self)


async def _child(service: str, url: str, tasks: int, first_task: int, seconds: float,
                 start_at: float, settle: bool = False) -> dict:
    """One process: open the service, make its sessions, append until the deadline (with
    ``settle``: the heap frozen first, ``multi_agent.store.gcpause.settle_heap``)."""
    svc = await _open(service, url)
    ids = list(range(first_task, first_task + tasks))
    sessions = {i: await svc.create_session(app_name=APP, user_id=f"u{i}", session_id=f"s{i}")
                for i in ids}
    latencies: list[float] = []
    acked = {i: 0 for i in ids}
    last: dict[int, int] = {}  # the n of each task's last acknowledged append
    errors: dict[str, int] = {}
    if settle:
        from multi_agent.store.gcpause import settle_heap

        settle_heap()
    wait = start_at - time.time()
    if wait > 0:
        await asyncio.sleep(wait)
    usage0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    deadline = t0 + seconds

    async def run(i: int) -> None:
        session, n = sessions[i], 0
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            try:
                await svc.append_event(session, _event(i, n))
            except Exception as exc:  # noqa: BLE001  (counted, the cell goes on)
                name = type(exc).__name__
                errors[name] = errors.get(name, 0) + 1
                try:  # a fresh copy, as a caller would after an error
                    session = await svc.get_session(app_name=APP, user_id=f"u{i}",
                                                    session_id=f"s{i}")
                except Exception:  # noqa: BLE001
                    await asyncio.sleep(0.01)
                continue
            finally:
                n += 1
            latencies.append(time.perf_counter() - started)
            acked[i] += 1
            last[i] = n - 1

    with _FullCollections() as full:
        await asyncio.gather(*(run(i) for i in ids))
    elapsed = time.perf_counter() - t0
    usage1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (usage1.ru_utime - usage0.ru_utime) + (usage1.ru_stime - usage0.ru_stime)
    await svc.close()
    return {"acked": acked, "latencies": latencies, "errors": errors, "elapsed": elapsed,
            "cpu": cpu, "last": last, "full_gc_ms": full.pauses}


async def _count(service: str, url: str, tasks: int) -> tuple[dict[int, int], dict[int, object]]:
    """Events stored per session and each task's ``user:`` counter, read back through a fresh
    service."""
    svc = await _open(service, url)
    counts, turns = {}, {}
    for i in range(tasks):
        got = await svc.get_session(app_name=APP, user_id=f"u{i}", session_id=f"s{i}")
        counts[i] = len(got.events) if got else 0
        turns[i] = got.state.get(f"user:turns_{i}") if got else None
    await svc.close()
    return counts, turns


def _pg_durability(url: str) -> str:
    import asyncpg

    async def ask() -> str:
        scratch = PgScratch(url)
        conn = await asyncpg.connect(**scratch._dsn(None))
        try:
            fsync = await conn.fetchval("SHOW fsync")
            sync = await conn.fetchval("SHOW synchronous_commit")
        finally:
            await conn.close()
        return f"fsync={fsync}, synchronous_commit={sync}"

    return asyncio.run(ask())


def cell(service: str, tasks: int, processes: int, seconds: float, settle: bool = False
         ) -> dict:
    """Runs one cell in ``processes`` child processes; returns its figures."""
    scratch = None
    tmp = tempfile.mkdtemp(prefix="bench-conc-db-")
    if service.endswith("-pg"):
        scratch = PgScratch(os.environ[PG_ENV])
        asyncio.run(scratch.create())
        url = scratch.url
    else:
        url = f"sqlite+aiosqlite:///{tmp}/db.sqlite"
    async def prepare() -> None:  # once, before several processes race to create tables
        svc = await _open(service, url)
        await svc.close()

    asyncio.run(prepare())
    load_before = os.getloadavg()
    start_at = time.time() + 3.0 + processes  # every child has its sessions by then
    per = [tasks // processes + (1 if p < tasks % processes else 0) for p in range(processes)]
    children, first = [], 0
    for count in per:
        children.append(subprocess.Popen(
            [sys.executable, "-m", "bench.concurrency", "--child", service, "--url", url,
             "--tasks", str(count), "--first-task", str(first), "--seconds", str(seconds),
             "--start-at", str(start_at), *(["--settle-heap"] if settle else [])],
            cwd=ROOT, stdout=subprocess.PIPE, text=True))
        first += count
    outs = []
    for child in children:
        out, _ = child.communicate(timeout=seconds + 300)
        if child.returncode != 0:
            raise RuntimeError(f"{service} child failed ({child.returncode})")
        outs.append(json.loads(out.strip().splitlines()[-1]))
    load_after = os.getloadavg()
    stored, turns = asyncio.run(_count(service, url, tasks))
    if scratch is not None:
        asyncio.run(scratch.drop())
    acked: dict[int, int] = {}
    for out in outs:
        acked.update({int(k): v for k, v in out["acked"].items()})
    latencies = sorted(x for out in outs for x in out["latencies"])
    full_gc = [x for out in outs for x in out["full_gc_ms"]]
    total = sum(acked.values())
    elapsed = max(out["elapsed"] for out in outs)
    errors: dict[str, int] = {}
    for out in outs:
        for k, v in out["errors"].items():
            errors[k] = errors.get(k, 0) + v
    last: dict[int, int] = {}
    for out in outs:
        last.update({int(k): v for k, v in out["last"].items()})
    lost = sum(max(0, acked[i] - stored.get(i, 0)) for i in acked)
    # A task's user: counter must hold the value of its last acknowledged append.
    state_lost = sum(1 for i, n in last.items() if turns.get(i) != n)
    extra = sum(max(0, stored.get(i, 0) - acked[i]) for i in acked)
    return {
        "service": service, "tasks": tasks, "processes": processes, "acked": total,
        "per_s": total / elapsed if elapsed else 0.0,
        "p50_ms": 1000 * latencies[len(latencies) // 2] if latencies else None,
        "p99_ms": 1000 * latencies[int(len(latencies) * 0.99)] if latencies else None,
        "cpu_ms": 1000 * sum(out["cpu"] for out in outs) / total if total else None,
        "errors": errors, "lost": lost, "unacknowledged_stored": extra,
        "state_lost": state_lost,
        "full_gcs": len(full_gc), "full_gc_max_ms": max(full_gc, default=0.0),
        "load": [round(x, 2) for x in (*load_before, *load_after)],
    }


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def report(rows: list[dict], meta: dict) -> str:
    lines = [
        "# Concurrent appends (`python -m bench.concurrency`)", "",
        f"{meta['when']}, {meta['cpus']} CPUs, {meta['seconds']} s a cell. PostgreSQL: "
        f"{meta.get('pg', 'not run')}."
        + (" Every process froze its start-up heap before appending (`--settle-heap`)."
           if meta.get("settled") else ""),
        "Each task appends to its own session (a session key and a `user:` key each time, an "
        "`app:` key every tenth). Lost = acknowledged appends missing when the sessions are "
        "read back; dup = stored events never acknowledged; state lost = tasks whose `user:` "
        "key does not hold their last acknowledged value (all must be 0). Full GCs: the "
        "cyclic collector's full collections in the cell's processes, and the longest (every "
        "task of that process waits meanwhile).", "",
        "| service | tasks × processes | appends/s | ratio to ADK | p50 ms | p99 ms "
        "| CPU ms/append | full GCs (longest ms) "
        "| errors | lost | dup | state lost | load 1-min before → after |",
        "|---|---|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---|",
    ]
    rate = {(r["service"], r["tasks"], r["processes"]): r["per_s"] for r in rows}
    for r in rows:
        base = rate.get((PEER.get(r["service"], ""), r["tasks"], r["processes"]))
        ratio = f"{r['per_s'] / base:.1f}x" if base else ""
        errors = ", ".join(f"{k} {v}" for k, v in sorted(r["errors"].items())) or "0"
        lines.append(
            f"| {r['service']} | {r['tasks']} × {r['processes']} | {r['per_s']:,.0f} | {ratio} | "
            f"{_fmt(r['p50_ms'], '.1f')} | {_fmt(r['p99_ms'], '.1f')} | "
            f"{_fmt(r['cpu_ms'], '.2f')} | {r.get('full_gcs', 0)} "
            f"({r.get('full_gc_max_ms', 0.0):.0f}) | {errors} | {r['lost']} | "
            f"{r['unacknowledged_stored']} | {r.get('state_lost', 0)} | "
            f"{r['load'][0]} → {r['load'][3]} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", help="comma-separated services (default: all available)")
    parser.add_argument("--tasks", help="comma-separated K (default 1,8,64,256)")
    parser.add_argument("--processes", help="comma-separated P on PostgreSQL (default 1,2,4)")
    parser.add_argument("--seconds", type=float)
    parser.add_argument("--md", type=Path)
    parser.add_argument("--settle-heap", action="store_true",
                        help="every child freezes its start-up heap before appending "
                             "(gc.freeze(), as multi-agent serve does), ADK's as well as ours")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--first-task", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--start-at", type=float, default=0.0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        out = asyncio.run(_child(args.child, args.url, int(args.tasks), args.first_task,
                                 args.seconds, args.start_at, args.settle_heap))
        print(json.dumps(out))
        return 0
    seconds = args.seconds or (3.0 if args.quick else 8.0)
    ks = [int(k) for k in (args.tasks or ("1,64" if args.quick else "1,8,64,256")).split(",")]
    ps = [int(p) for p in (args.processes or ("1,4" if args.quick else "1,2,4")).split(",")]
    services = args.only.split(",") if args.only else list(SERVICES)
    meta = {"when": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "cpus": os.cpu_count(), "seconds": seconds, "settled": args.settle_heap}
    if not os.environ.get(PG_ENV):
        services = [s for s in services if not s.endswith("-pg")]
    else:
        meta["pg"] = _pg_durability(os.environ[PG_ENV])
    rows = []
    for k in ks:
        for service in services:
            rows.append(cell(service, k, 1, seconds, args.settle_heap))
            print(json.dumps(rows[-1]), flush=True)
    for p in [p for p in ps if p > 1]:
        k = max(ks)
        if k < p:
            continue
        for service in [s for s in services if s.endswith("-pg")]:
            rows.append(cell(service, min(k, 64), p, seconds, args.settle_heap))
            print(json.dumps(rows[-1]), flush=True)
    text = report(rows, meta)
    target = args.md or RESULTS / ("concurrency-quick.md" if args.quick else "concurrency.md")
    target.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
