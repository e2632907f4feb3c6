"""What plain asyncpg reaches on this machine's PostgreSQL: the ceiling for our store's appends.

    MULTI_AGENT_BENCH_PG_URL=postgresql+asyncpg://... python -m bench.pg_limit [--tasks 1,64]

K tasks (each on its own row, up to 8 pooled connections) append an event of ~600 bytes and
move their row's revision, as an append does, with no store around it: no ADK event to encode,
no state to merge, no SQLAlchemy. Three ways:

* ``locked``: ``BEGIN``, ``SELECT ... FOR UPDATE``, ``INSERT``, ``UPDATE``, ``COMMIT`` (the
  round trips of a locked append);
* ``one statement``: one ``UPDATE ... WHERE revision = <read>`` with the ``INSERT`` as a CTE, in
  autocommit (our one-statement append's shape, ``rowcache.py``);
* ``batched``: one writer takes every queued event into one transaction, two ``executemany``
  (group commit with nothing else in the way).

Prints ev/s, the client's CPU per event (user+system of this process) and the load averages,
and checks that every acknowledged event is stored once. Runs on a throw-away database
(``PgScratch``); the server should be durable (``fsync`` on), as for ``bench.concurrency``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import sys
import time
from pathlib import Path

from .adapters import PG_ENV, PgScratch

MODES = ("locked", "one statement", "batched")
PAYLOAD = json.dumps({"text": "x" * 560})
CONNECTIONS = 8


async def _cell(dsn: dict, mode: str, tasks: int, seconds: float) -> dict:
    import asyncpg

    setup = await asyncpg.connect(**dsn)
    try:
        await setup.execute(
            "DROP TABLE IF EXISTS lim_events, lim_sessions; "
            "CREATE TABLE lim_sessions (id int PRIMARY KEY, revision int NOT NULL, state text); "
            "CREATE TABLE lim_events (sid int, seq int, body text, PRIMARY KEY (sid, seq))")
        await setup.executemany("INSERT INTO lim_sessions VALUES ($1, 0, '{}')",
                                [(i,) for i in range(tasks)])
    finally:
        await setup.close()
    size = min(tasks, CONNECTIONS)
    pool = await asyncpg.create_pool(**dsn, min_size=size, max_size=size)
    acked = [0] * tasks
    queue: asyncio.Queue = asyncio.Queue()
    deadline = time.monotonic() + seconds

    async def direct(i: int) -> None:
        while time.monotonic() < deadline:
            seq = acked[i] + 1
            async with pool.acquire() as conn:
                if mode == "locked":
                    async with conn.transaction():
                        rev = await conn.fetchval(
                            "SELECT revision FROM lim_sessions WHERE id = $1 FOR UPDATE", i)
                        await conn.execute("INSERT INTO lim_events VALUES ($1, $2, $3)",
                                           i, seq, PAYLOAD)
                        await conn.execute("UPDATE lim_sessions SET revision = $2, state = $3 "
                                           "WHERE id = $1", i, rev + 1, f'{{"n": {seq}}}')
                else:
                    ok = await conn.fetchval(
                        "WITH u AS (UPDATE lim_sessions SET revision = $2, state = $4 "
                        "WHERE id = $1 AND revision = $2 - 1 RETURNING 1), "
                        "e AS (INSERT INTO lim_events VALUES ($1, $2, $3)) "
                        "SELECT 1 / (SELECT count(*) FROM u)", i, seq, PAYLOAD, f'{{"n": {seq}}}')
                    assert ok == 1
            acked[i] = seq

    async def queued(i: int) -> None:
        loop = asyncio.get_running_loop()
        while time.monotonic() < deadline:
            done = loop.create_future()
            await queue.put((i, acked[i] + 1, done))
            await done
            acked[i] += 1

    async def writer() -> None:
        async with pool.acquire() as conn:
            while True:
                items = [await queue.get()]
                while not queue.empty():
                    items.append(queue.get_nowait())
                async with conn.transaction():
                    await conn.executemany("INSERT INTO lim_events VALUES ($1, $2, $3)",
                                           [(i, seq, PAYLOAD) for i, seq, _ in items])
                    await conn.executemany(
                        "UPDATE lim_sessions SET revision = $2, state = $3 WHERE id = $1",
                        [(i, seq, f'{{"n": {seq}}}') for i, seq, _ in items])
                for *_, done in items:
                    done.set_result(None)

    load_before = os.getloadavg()
    r0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.monotonic()
    try:
        if mode == "batched":
            task = asyncio.create_task(writer())
            await asyncio.gather(*(queued(i) for i in range(tasks)))
            task.cancel()
        else:
            await asyncio.gather(*(direct(i) for i in range(tasks)))
        elapsed = time.monotonic() - t0
        r1 = resource.getrusage(resource.RUSAGE_SELF)
        async with pool.acquire() as conn:
            stored = await conn.fetchval("SELECT count(*) FROM lim_events")
            behind = await conn.fetchval(
                "SELECT count(*) FROM lim_sessions s WHERE s.revision <> "
                "(SELECT count(*) FROM lim_events e WHERE e.sid = s.id)")
    finally:
        await pool.close()
    total = sum(acked)
    cpu = r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime
    return {"mode": mode, "tasks": tasks, "per_s": total / elapsed,
            "cpu_ms": 1000 * cpu / max(total, 1), "acked": total, "stored": stored,
            "rows_behind": behind, "load": (load_before[0], os.getloadavg()[0])}


async def _main(url: str, tasks: list[int], seconds: float) -> list[dict]:
    scratch = PgScratch(url)
    await scratch.create()
    dsn = scratch._dsn(scratch.name if scratch.created else None)
    try:
        rows = []
        for k in tasks:
            for mode in MODES:
                row = await _cell(dsn, mode, k, seconds)
                print(json.dumps(row), flush=True)
                rows.append(row)
        return rows
    finally:
        await scratch.drop()


def _table(rows: list[dict], seconds: float) -> str:
    lines = [
        "# Plain asyncpg on this PostgreSQL (`python -m bench.pg_limit`)", "",
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {os.cpu_count()} CPUs, "
        f"{seconds} s a cell. Each task appends to its own row; stored = acknowledged checked.",
        "", "| way | tasks | events/s | client CPU ms/event | acknowledged = stored | "
        "load 1-min before → after |", "|---|---:|---:|---:|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['mode']} | {r['tasks']} | {r['per_s']:,.0f} | {r['cpu_ms']:.3f} | "
            f"{'yes' if r['acked'] == r['stored'] and not r['rows_behind'] else 'NO'} | "
            f"{r['load'][0]:.2f} → {r['load'][1]:.2f} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", default="1,64", help="comma-separated K (default 1,64)")
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--md", type=Path, help="also write the table here")
    args = parser.parse_args(argv)
    url = os.environ.get(PG_ENV)
    if not url:
        print(f"bench.pg_limit needs a PostgreSQL server: set {PG_ENV}=postgresql+asyncpg://...",
              file=sys.stderr)
        return 2
    rows = asyncio.run(_main(url, [int(k) for k in args.tasks.split(",")], args.seconds))
    table = _table(rows, args.seconds)
    print(table)
    if args.md:
        args.md.write_text(table)
    return 0 if all(r["acked"] == r["stored"] and not r["rows_behind"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
