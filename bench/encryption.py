"""What encryption at rest costs (issue 18): per append and per ``get_session`` of a long session.

    python -m bench.encryption                       # SQLite, 10,000 events, 2 rounds
    python -m bench.encryption --pg URL              # PostgreSQL too
    python -m bench.encryption --before 425e6b9^ --after 425e6b9   # the mechanism's own commit
    python -m bench.encryption --events 200 --reads 2 --rounds 1 --md /tmp/x.md   # smoke

Each cell is a fresh worker process on a fresh database: it appends ``--events`` events of
~600 bytes (text and a state delta, as ``bench/workload.py``) to one session through
``append_event`` (timing each), then reads the whole session ``--reads`` times with
``get_session``. Variants:

* ``off``: encryption off (no key): the default path;
* ``on``: the same with ``encryption_key`` (AES-256-GCM on event JSON, text and state);
* ``before``: encryption off, on the code of ``--before REV`` (``git archive`` into a temp
  folder, run with it first on ``sys.path``): shows that the mechanism costs nothing when off.
  ``--after REV`` runs ``off`` and ``on`` on that revision's code the same way (default: this
  working tree), so before/after can be one commit apart and nothing else differs.

The cells run interleaved (off, on, before, off, on, before, ...), so a loaded machine slows
them alike; the load average is printed with each. Results: a Markdown table (``--md``,
default ``bench/results/encryption.md``) with medians over rounds and the on/off ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "encryption.md"
TEXT = ("The quarterly report says revenue grew in every region; the analyst expects margins to "
        "hold while the new product line ramps up. Ask me about any ticker on your watch list.")


async def _worker(url: str, events: int, reads: int, key: str | None) -> dict[str, Any]:
    from google.adk.events.event import Event
    from google.adk.events.event_actions import EventActions
    from google.genai import types

    from multi_agent import DatabaseSessionService

    kwargs = {"encryption_key": key} if key else {}
    store = DatabaseSessionService(url, **kwargs)
    try:
        session = await store.create_session(app_name="bench", user_id="u")
        times = []
        cpu0 = time.process_time()
        for i in range(events):
            event = Event(
                author="agent" if i % 2 else "user", invocation_id=f"inv-{i // 4}",
                content=types.Content(role="model" if i % 2 else "user",
                                      parts=[types.Part(text=f"{TEXT} ({i})")]),
                actions=EventActions(state_delta={"turn": i, "topic": "benchmark-topic"}),
            )
            t0 = time.perf_counter()
            await store.append_event(session, event)
            times.append(time.perf_counter() - t0)
            if len(session.events) > 200:
                del session.events[:-20]
        append_cpu = (time.process_time() - cpu0) / events
        reads_ms, reads_cpu = [], []
        for _ in range(reads):
            t0, c0 = time.perf_counter(), time.process_time()
            got = await store.get_session(app_name="bench", user_id="u", session_id=session.id)
            reads_ms.append((time.perf_counter() - t0) * 1000)
            reads_cpu.append((time.process_time() - c0) * 1000)
            assert got is not None and len(got.events) == events
        times.sort()
        return {
            "append_ms": statistics.median(times) * 1000,
            "append_p99_ms": times[int(len(times) * 0.99) - 1 if len(times) > 1 else 0] * 1000,
            "get_ms": statistics.median(reads_ms),
            # CPU time of this process (its SQLite thread included): less sensitive than wall
            # time to other processes on a shared machine.
            "append_cpu_ms": append_cpu * 1000,
            "get_cpu_ms": statistics.median(reads_cpu),
            "load": os.getloadavg()[0],
        }
    finally:
        await store.close()


def _fresh_url(backend: str, pg: str | None, tmp: Path, n: int) -> str:
    if backend == "sqlite":
        return f"sqlite+aiosqlite:///{tmp / f'cell{n}.db'}"
    import asyncpg

    assert pg
    name = f"bench_enc_{os.getpid()}_{n}"
    admin = pg.replace("postgresql+asyncpg://", "postgresql://")

    async def create() -> None:
        conn = await asyncpg.connect(admin)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()

    asyncio.run(create())
    return pg.rsplit("/", 1)[0] + "/" + name


def _archive(rev: str, into: Path, name: str) -> Path:
    """The ``multi_agent`` package of ``rev``, unpacked under ``into/name``."""
    tar = into / f"{name}.tar"
    subprocess.run(["git", "archive", "-o", str(tar), rev, "multi_agent"], cwd=ROOT, check=True)
    with tarfile.open(tar) as t:
        t.extractall(into / name, filter="data")
    return into / name


def _drop(url: str) -> None:
    if url.startswith("sqlite"):
        return
    import asyncpg

    base, name = url.rsplit("/", 1)
    admin = base.replace("postgresql+asyncpg://", "postgresql://") + "/postgres"

    async def drop() -> None:
        conn = await asyncpg.connect(admin)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        finally:
            await conn.close()

    asyncio.run(drop())


def _cell(variant: str, url: str, args: argparse.Namespace, before: Path | None,
          after: Path | None) -> dict:
    env = dict(os.environ)
    env.pop("MULTI_AGENT_ENCRYPTION_KEY", None)
    env.pop("MULTI_AGENT_ENCRYPTION_KEY_FILE", None)
    path = str(before) if variant == "before" else str(after or ROOT)
    env["PYTHONPATH"] = path
    key = None
    if variant == "on":
        from multi_agent.store.sealing import generate_key

        key = generate_key()
    command = [sys.executable, "-c",
               "import sys, json, asyncio; sys.path.insert(0, sys.argv[1]);"
               "from importlib.util import spec_from_file_location, module_from_spec;"
               "s = spec_from_file_location('enc', sys.argv[2]); m = module_from_spec(s);"
               "s.loader.exec_module(m);"
               "print(json.dumps(asyncio.run(m._worker(sys.argv[3], int(sys.argv[4]),"
               " int(sys.argv[5]), sys.argv[6] or None))))",
               path, __file__, url, str(args.events), str(args.reads), key or ""]
    done = subprocess.run(command, env=env, capture_output=True, text=True, cwd=path)
    if done.returncode != 0:
        raise SystemExit(f"{variant} cell failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--events", type=int, default=10_000)
    p.add_argument("--reads", type=int, default=5)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--pg", default=os.environ.get("MULTI_AGENT_BENCH_PG_URL"),
                   help="a PostgreSQL URL (postgresql+asyncpg://...) to run there too")
    p.add_argument("--before", help="a git revision whose code runs the 'before' cells")
    p.add_argument("--after", help="a git revision whose code runs 'off' and 'on' (default: "
                   "this working tree)")
    p.add_argument("--md", default=str(RESULTS))
    args = p.parse_args(argv)
    backends = ["sqlite"] + (["postgres"] if args.pg else [])
    variants = ["off", "on"] + (["before"] if args.before else [])
    results: dict[tuple[str, str], list[dict]] = {}
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        before = _archive(args.before, tmp, "before") if args.before else None
        after = _archive(args.after, tmp, "after") if args.after else None
        n = 0
        for round_no in range(args.rounds):
            for backend in backends:
                for variant in variants:
                    n += 1
                    url = _fresh_url(backend, args.pg, tmp, n)
                    try:
                        row = _cell(variant, url, args, before, after)
                    finally:
                        _drop(url)
                    row.update(backend=backend, variant=variant, round=round_no)
                    print(json.dumps(row), flush=True)
                    results.setdefault((backend, variant), []).append(row)
    lines = [
        f"# Encryption at rest: cost per append and per get_session of {args.events:,} events",
        "",
        f"`python -m bench.encryption --events {args.events} --reads {args.reads} --rounds "
        f"{args.rounds}{' --before ' + args.before if args.before else ''}"
        f"{' --after ' + args.after if args.after else ''}`; "
        f"{platform.python_version()}, {platform.machine()}, {os.cpu_count()} cores (a shared "
        "machine: compare cells of the same run only). Medians over rounds of each cell's "
        "median; load = 1-minute load average when the cell ended.",
        "",
        "| database | variant | append p50 ms | append p99 ms | get_session ms | append CPU ms "
        "| get_session CPU ms | load | append vs off | get vs off | CPU append vs off | "
        "CPU get vs off |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for backend in backends:
        off = results[(backend, "off")]
        off_append = statistics.median(r["append_ms"] for r in off)
        off_get = statistics.median(r["get_ms"] for r in off)
        off_cpu_a = statistics.median(r["append_cpu_ms"] for r in off)
        off_cpu_g = statistics.median(r["get_cpu_ms"] for r in off)
        for variant in variants:
            rows = results[(backend, variant)]
            append = statistics.median(r["append_ms"] for r in rows)
            p99 = statistics.median(r["append_p99_ms"] for r in rows)
            get = statistics.median(r["get_ms"] for r in rows)
            cpu_a = statistics.median(r["append_cpu_ms"] for r in rows)
            cpu_g = statistics.median(r["get_cpu_ms"] for r in rows)
            load = ", ".join(f"{r['load']:.1f}" for r in rows)
            lines.append(
                f"| {backend} | {variant} | {append:.3f} | {p99:.2f} | {get:.0f} | {cpu_a:.3f} "
                f"| {cpu_g:.0f} | {load} | {append / off_append:.2f}x | {get / off_get:.2f}x | "
                f"{cpu_a / off_cpu_a:.2f}x | {cpu_g / off_cpu_g:.2f}x |")
    Path(args.md).parent.mkdir(parents=True, exist_ok=True)
    Path(args.md).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
