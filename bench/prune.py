"""Retention at scale (issue 18): prune and trim a 1,000,000-event database while a writer appends.

    python -m bench.prune                      # SQLite file, 1,000,000 events
    python -m bench.prune --events 20000 --pg postgresql+asyncpg://...   # also PostgreSQL
    python -m bench.prune --md bench/results/prune.md

**Bulk load.** One template session of ``--per-session`` events (default 500: runs of four
events, question / tool call / tool result / answer with a state delta) is written through the
store's real ``append_event``; its ``ma_sessions``, ``ma_events`` and ``ma_runs`` rows are then
copied ``events / per-session`` times with one ``INSERT ... SELECT`` per table, joined with a
generated series of session numbers (SQLite: a recursive CTE; PostgreSQL: ``generate_series``),
so every row is a row the store wrote, 1,000,000 events in seconds. Half of the sessions are
made idle for 60 days (their ``update_time``).

**Measured**, in this order, on one database:

1. *baseline*: a writer process appends to its own session (another app) for
   ``--baseline`` seconds, one event every 10 ms; nothing else runs;
2. *prune*: ``prune_sessions(older_than=30 days)`` deletes the idle half (whole sessions);
3. *trim*: ``trim_sessions(keep_last_events=100)`` trims every remaining session to its last
   100 events (whole runs: 100 of each 500).

The writer keeps appending throughout; its append latencies are split by phase (p50 / p99 /
max). The prune and trim rates are events deleted per second of wall time (their batches
include the 20 ms ``BATCH_PAUSE``). The load average is printed before and after: on a shared
machine, compare the phases of one run, not runs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

APP = "bench_prune"
WRITER_APP = "bench_writer"
DAY = 86400.0

WRITER = textwrap.dedent("""
    import asyncio, json, os, sys, time
    from google.adk.events.event import Event
    from google.genai import types
    from multi_agent import DatabaseSessionService

    async def main(url, stop, out):
        samples = []
        async with DatabaseSessionService(url) as store:
            session = await store.create_session(app_name="bench_writer", user_id="w")
            print("ready", flush=True)
            n = 0
            while not os.path.exists(stop):
                author = "user" if n % 2 == 0 else "helper"
                event = Event(invocation_id=f"w-{n // 2}", author=author,
                              content=types.Content(role="user" if author == "user" else "model",
                                                    parts=[types.Part(text=f"message {n}")]))
                started = time.time()
                t0 = time.perf_counter()
                await store.append_event(session, event)
                samples.append((started, time.perf_counter() - t0))
                n += 1
                await asyncio.sleep(0.01)
            stored = await store.get_session(app_name="bench_writer", user_id="w",
                                             session_id=session.id)
            lost = n - len(stored.events)
        with open(out, "w") as f:
            json.dump({"samples": samples, "appended": n, "lost": lost}, f)

    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3]))
""")


def _event(n: int, author: str, inv: str, **kw: Any) -> Any:
    from google.adk.events.event import Event
    from google.adk.events.event_actions import EventActions
    from google.genai import types

    parts = []
    if kw.get("text") is not None:
        parts.append(types.Part(text=kw["text"]))
    if kw.get("call"):
        parts.append(types.Part(function_call=types.FunctionCall(
            id=f"c{n}", name="lookup", args={"q": f"item {n}"})))
    if kw.get("result"):
        parts.append(types.Part(function_response=types.FunctionResponse(
            id=f"c{n}", name="lookup", response={"result": "x" * 120})))
    role = "user" if author == "user" else "model"
    return Event(invocation_id=inv, author=author, content=types.Content(role=role, parts=parts),
                 actions=EventActions(state_delta=kw.get("state") or {}))


async def build(url: str, events: int, per_session: int) -> int:
    """The database: a template session copied until ``events`` events; returns sessions."""
    from sqlalchemy import text

    from multi_agent import DatabaseSessionService
    from multi_agent.store import schema as s

    per_session -= per_session % 4
    sessions = max(1, events // per_session)
    async with DatabaseSessionService(url) as store:
        tmpl = await store.create_session(app_name=APP, user_id="tmpl", session_id="tmpl",
                                          state={"topic": "bench"})
        for r in range(per_session // 4):
            inv = f"inv-{r}"
            words = "lorem ipsum dolor sit amet " * 8
            for author, kw in (("user", {"text": f"question {r} {words}"}),
                               ("helper", {"call": True}), ("helper", {"result": True}),
                               ("helper", {"text": f"answer {r} {words}",
                                           "state": {"turn": r, f"k{r % 50}": r}})):
                await store.append_event(tmpl, _event(r, author, inv, **kw))
        pg = store.dialect == "postgresql"

        def copy(conn: Any) -> None:
            series = ("SELECT generate_series(0, :n - 1) AS i" if pg else
                      "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n "
                      "WHERE i + 1 < :n) SELECT i FROM n")
            sid = "('s' || lpad(n.i::text, 7, '0'))" if pg else "printf('s%07d', n.i)"
            for table, id_col, user_col in ((s.sessions, "id", "user_id"),
                                            (s.events, "session_id", "user_id"),
                                            (s.runs, "session_id", "user_id")):
                cols = [c.name for c in table.c]
                exprs = []
                for c in cols:
                    if c == id_col:
                        exprs.append(sid)
                    elif c == user_col:
                        exprs.append("('u' || (n.i % 100))" if not pg
                                     else "('u' || (n.i % 100)::text)")
                    else:
                        exprs.append(f"t.{c}")
                conn.execute(text(
                    f"INSERT INTO {table.name} ({', '.join(cols)}) SELECT {', '.join(exprs)} "
                    f"FROM {table.name} AS t, ({series}) AS n WHERE t.app_name = :app AND "
                    f"t.user_id = 'tmpl' AND t.{id_col} = 'tmpl'"),
                    {"n": sessions, "app": APP})
            conn.execute(text("INSERT INTO ma_user_states (app_name, user_id, state, "
                              "update_time, revision, key_revs) SELECT DISTINCT app_name, "
                              "user_id, '{}', 0, 0, '{}' FROM ma_sessions WHERE app_name = :app "
                              "AND user_id <> 'tmpl'"), {"app": APP})
            for table in ("ma_events", "ma_runs", "ma_sessions"):
                key = "id" if table == "ma_sessions" else "session_id"
                conn.execute(text(f"DELETE FROM {table} WHERE app_name = :app AND "
                                  f"user_id = 'tmpl' AND {key} = 'tmpl'"), {"app": APP})
            # Half the sessions idle for 60 days.
            conn.execute(text("UPDATE ma_sessions SET update_time = :t WHERE app_name = :app "
                              "AND " + ("(substr(id, 2)::int % 2) = 0" if pg else
                                        "(CAST(substr(id, 2) AS INTEGER) % 2) = 0")),
                         {"t": time.time() - 60 * DAY, "app": APP})

        await store.backend.run(copy, write=True)
        if pg:
            await store.backend.run(lambda c: c.execute(text("ANALYZE")), write=False)
    return sessions


def _stats(values: list[float]) -> dict[str, float]:
    if not values:
        return {"n": 0, "p50_ms": float("nan"), "p99_ms": float("nan"), "max_ms": float("nan")}
    ordered = sorted(values)
    p99 = ordered[min(len(ordered) - 1, int(round(0.99 * (len(ordered) - 1))))]
    return {"n": len(values), "p50_ms": statistics.median(ordered) * 1000,
            "p99_ms": p99 * 1000, "max_ms": ordered[-1] * 1000}


async def measure(url: str, *, baseline: float, keep_last: int) -> dict[str, Any]:
    from multi_agent import DatabaseSessionService
    from multi_agent.store import prune as prune_module

    max_events = prune_module.MAX_EVENTS

    work = Path(tempfile.mkdtemp(prefix="bench-prune-"))
    stop, out = work / "stop", work / "writer.json"
    writer = subprocess.Popen(  # noqa: ASYNC220 - started here, read after the stop file
        [sys.executable, "-c", WRITER, url, str(stop), str(out)], stdout=subprocess.PIPE,
        text=True)
    assert writer.stdout is not None
    ready = await asyncio.to_thread(writer.stdout.readline)
    if ready.strip() != "ready":
        raise SystemExit(f"the writer did not start: {ready!r}")
    phases: dict[str, tuple[float, float]] = {}
    result: dict[str, Any] = {}
    t0 = time.time()
    await asyncio.sleep(baseline)
    phases["baseline"] = (t0, time.time())
    async with DatabaseSessionService(url) as store:
        t0 = time.time()
        pruned = await store.prune_sessions(older_than=30 * DAY, app_name=APP,
                                            max_events=max_events)
        phases["prune"] = (t0, time.time())
        result["prune_events"] = pruned.totals()["events"]
        result["prune_sessions"] = pruned.totals()["sessions"]
        result["prune_batches"] = pruned.batches
        t0 = time.time()
        trimmed = await store.trim_sessions(keep_last_events=keep_last, app_name=APP,
                                            max_events=max_events)
        phases["trim"] = (t0, time.time())
        result["trim_events"] = trimmed.totals()["events"]
        result["trim_sessions"] = trimmed.totals()["sessions"]
        result["trim_batches"] = trimmed.batches
    t0 = time.time()
    await asyncio.sleep(min(baseline, 5))
    phases["after"] = (t0, time.time())
    stop.touch()
    await asyncio.to_thread(writer.wait, 120)
    data = json.loads(out.read_text())
    for name, (lo, hi) in phases.items():
        result[f"{name}_seconds"] = hi - lo
        result[f"writer_{name}"] = _stats([d for started, d in data["samples"]
                                           if lo <= started < hi])
    result["writer_appended"] = data["appended"]
    result["writer_lost"] = data["lost"]
    result["prune_rate"] = result["prune_events"] / result["prune_seconds"]
    result["trim_rate"] = result["trim_events"] / result["trim_seconds"]
    return result


def table(rows: list[dict[str, Any]]) -> str:
    out = ["| database | events | pause / batch | phase | deleted | seconds | events/s | "
           "writer appends | p50 ms | p99 ms | max ms |", "|---" * 11 + "|"]
    for r in rows:
        for phase in ("baseline", "prune", "trim", "after"):
            w = r[f"writer_{phase}"]
            deleted = r.get(f"{phase}_events", "")
            rate = f"{r[f'{phase}_rate']:,.0f}" if f"{phase}_rate" in r else ""
            out.append(f"| {r['database']} | {r['events']:,} | "
                       f"{r['pause'] * 1000:.0f} ms / {r['max_events']:,} | {phase} | "
                       f"{deleted if deleted == '' else f'{deleted:,}'} | "
                       f"{r[f'{phase}_seconds']:.1f} | {rate} | {w['n']} | "
                       f"{w['p50_ms']:.1f} | {w['p99_ms']:.1f} | {w['max_ms']:.1f} |")
    return "\n".join(out)


async def run_one(name: str, url: str, args: argparse.Namespace) -> dict[str, Any]:
    t0 = time.perf_counter()
    sessions = await build(url, args.events, args.per_session)
    built = time.perf_counter() - t0
    print(f"[{name}] built {sessions} sessions x {args.per_session} events in {built:.1f} s "
          f"(load {os.getloadavg()[0]:.1f})", file=sys.stderr)
    result = await measure(url, baseline=args.baseline, keep_last=args.keep_last)
    from multi_agent.store import prune as prune_module

    return {"database": name, "pause": prune_module.BATCH_PAUSE,
            "max_events": prune_module.MAX_EVENTS,
            "events": sessions * (args.per_session - args.per_session % 4),
            "sessions": sessions, "build_seconds": built, **result}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000, help="events to build")
    parser.add_argument("--per-session", type=int, default=500, help="events per session")
    parser.add_argument("--keep-last", type=int, default=100, help="the trim's keep_last_events")
    parser.add_argument("--baseline", type=float, default=10.0,
                        help="seconds of writer-only appends before the prune")
    parser.add_argument("--pause", type=float, default=None,
                        help="seconds between two batches (default: the store's BATCH_PAUSE)")
    parser.add_argument("--max-events", type=int, default=None,
                        help="events per batch (default: the store's MAX_EVENTS)")
    parser.add_argument("--pg", help="also on this PostgreSQL URL (an empty database)")
    parser.add_argument("--no-sqlite", action="store_true", help="PostgreSQL only")
    parser.add_argument("--md", help="write the table (markdown) to this file")
    args = parser.parse_args(argv)
    from multi_agent.store import prune as prune_module

    if args.pause is not None:
        prune_module.BATCH_PAUSE = args.pause
    if args.max_events is not None:
        prune_module.MAX_EVENTS = args.max_events
    load_before = os.getloadavg()
    rows = []
    work = Path(tempfile.mkdtemp(prefix="bench-prune-db-"))
    targets = [] if args.no_sqlite else [("sqlite", f"sqlite+aiosqlite:///{work / 'p.db'}")]
    if args.pg:
        targets.append(("postgresql", args.pg))
    for name, url in targets:
        row = asyncio.run(run_one(name, url, args))
        print(json.dumps(row), flush=True)
        rows.append(row)
    load_after = os.getloadavg()
    text = (f"{table(rows)}\n\nLoad average before: "
            f"{' '.join(f'{x:.2f}' for x in load_before)}; after: "
            f"{' '.join(f'{x:.2f}' for x in load_after)} ({os.cpu_count()} CPUs). Writer lost: "
            f"{', '.join(str(r['writer_lost']) for r in rows)} appends.\n")
    print(text)
    if args.md:
        Path(args.md).write_text(text, encoding="utf-8")
    return 0 if all(r["writer_lost"] == 0 for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
