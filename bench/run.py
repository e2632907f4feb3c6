"""Compare our session store with ADK 2.13's, in one run, on one machine, on one workload.

    python -m bench.run                 # full run (~5-10 min on 2 cores), writes bench/results/latest.md
    python -m bench.run --quick         # smaller sizes (~1-2 min), writes bench/results/quick.md
    python -m bench.run --only ours-sqlite --only adk-db
    python -m bench.run --only ours-sqlite,adk-db --phases get --repeat 3   # get_session only
    python -m bench.run --json out.json

Services: adk-db (ADK DatabaseSessionService on sqlite+aiosqlite), adk-sqlite (ADK
SqliteSessionService), adk-memory (ADK InMemorySessionService), ours-sqlite
(multi_agent.DatabaseSessionService on a SQLite file), raw-sqlite3 (the physical limit), and with
MULTI_AGENT_BENCH_PG_URL=postgresql+asyncpg://... also ours-pg, adk-db-pg and raw-pg (the
PostgreSQL limit: one INSERT = one transaction per event). Each runs in its own
child process (``python -m bench.worker``) on a fresh temporary database.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from . import report

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"
PG_ENV = "MULTI_AGENT_BENCH_PG_URL"
ALL = ["raw-sqlite3", "adk-memory", "adk-sqlite", "adk-db", "ours-sqlite", "raw-pg", "adk-db-pg", "ours-pg"]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def ours_importable() -> tuple[bool, str]:
    """Checks ``from multi_agent import DatabaseSessionService`` in a throw-away interpreter."""
    p = subprocess.run([sys.executable, "-c", "from multi_agent import DatabaseSessionService"],
                       cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=120)
    if p.returncode == 0:
        return True, ""
    last = (p.stderr.strip().splitlines() or ["?"])[-1]
    return False, f"`from multi_agent import DatabaseSessionService` failed ({last})"


def meta_info() -> dict:
    import sqlite3
    from importlib.metadata import version

    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "date": dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
        "machine": f"{os.cpu_count()} CPU ({cpu}), {platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "adk": version("google-adk"),
        "sqlalchemy": version("sqlalchemy"),
        "load_start": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }


def merge_runs(runs: list[dict]) -> dict:
    """One result per service: the median of every numeric metric over the rounds."""
    if len(runs) == 1:
        return runs[0]
    out = dict(runs[0])
    for k, v in runs[0].items():
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            vals = [r[k] for r in runs if isinstance(r.get(k), (int, float))]
            out[k] = statistics.median(vals)
    out["notes"] = list(dict.fromkeys(x for r in runs for x in r.get("notes", [])))
    out["errors"] = {k: v for r in runs for k, v in r.get("errors", {}).items()}
    out["rounds"] = len(runs)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="smaller sizes (a smoke run, ~1-2 minutes)")
    p.add_argument("--only", action="append", metavar="NAME",
                   help=f"run only these services (repeat or comma-separate): {', '.join(ALL)}")
    p.add_argument("--json", metavar="PATH", help="also write all raw results as JSON")
    p.add_argument("--md", metavar="PATH",
                   help="markdown output (default: bench/results/latest.md for a full run of every "
                        "service, bench/results/quick.md with --quick, none with --only)")
    p.add_argument("--fill-ours", choices=["auto", "append", "import"], default="auto",
                   help="how OUR 100k-event session is filled: append (public append_event, capped at "
                        "150 s), import (public export/import_session, tiled), auto (default: append on "
                        "SQLite, import on PostgreSQL)")
    p.add_argument("--repeat", type=int, default=1, metavar="K",
                   help="run every service K times (rounds interleaved) and report per-metric medians; "
                        "use on a noisy box (default 1)")
    p.add_argument("--phases", metavar="LIST",
                   help="only these phases of the ours/ADK services, comma-separated, e.g. 'get' for the "
                        "get_session case alone (create,append,get,big,list,head; default all). Raw "
                        "sqlite3/asyncpg always run everything")
    p.add_argument("--timeout", type=float, default=900, help="seconds allowed per service (default 900)")
    args = p.parse_args(argv)

    sizes = "quick" if args.quick else "default"
    wanted = ALL
    if args.only:
        wanted = [n.strip() for x in args.only for n in x.split(",") if n.strip()]
        unknown = [n for n in wanted if n not in ALL]
        if unknown:
            p.error(f"unknown service(s) {unknown}; choose from {ALL}")

    skipped: dict[str, str] = {}
    plan = []
    has_ours, why = ours_importable()
    for n in wanted:
        if n.startswith("ours") and not has_ours:
            skipped[n] = why + "; our service is not available yet"
        elif n.endswith("-pg") and not os.environ.get(PG_ENV):
            if args.only:
                skipped[n] = f"set {PG_ENV}=postgresql+asyncpg://user:pass@host:port/db to run it"
        else:
            plan.append(n)
    if not os.environ.get(PG_ENV) and not args.only:
        skipped["ours-pg, adk-db-pg, raw-pg"] = f"{PG_ENV} is not set"

    meta = meta_info()
    print(f"bench: {sizes} sizes; services: {', '.join(plan)}", file=sys.stderr)
    for n, w in skipped.items():
        print(f"bench: skipping {n}: {w}", file=sys.stderr)

    runs: dict[str, list[dict]] = {n: [] for n in plan}
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-run-") as tmp:
        for rnd in range(args.repeat):
            for n in plan:
                out = os.path.join(tmp, f"{n}-{rnd}.json")
                tag = f" (round {rnd + 1}/{args.repeat})" if args.repeat > 1 else ""
                print(f"bench: --- {n}{tag} ---", file=sys.stderr, flush=True)
                t1 = time.perf_counter()
                try:
                    proc = subprocess.run(
                        [sys.executable, "-m", "bench.worker", "--service", n, "--sizes", sizes,
                         "--out", out, "--fill-ours", args.fill_ours]
                        + (["--phases", args.phases] if args.phases and not n.startswith("raw") else []),
                        cwd=ROOT, env=_env(), timeout=args.timeout)
                    rc: object = proc.returncode
                except subprocess.TimeoutExpired:
                    rc = "timeout"
                if rc == 0 and os.path.exists(out):
                    with open(out) as f:
                        runs[n].append(json.load(f))
                    print(f"bench: {n} finished in {time.perf_counter() - t1:.0f} s "
                          f"(peak RSS {runs[n][-1]['peak_rss_mb']:.0f} MB)", file=sys.stderr, flush=True)
                else:
                    print(f"bench: {n} FAILED (exit {rc})", file=sys.stderr, flush=True)
                    skipped[n] = f"child process failed (exit {rc}) in {len(runs[n]) + 1} of the rounds; see its output"
    results = {n: merge_runs(r) for n, r in runs.items() if r}
    meta["repeat"] = args.repeat
    meta["load_end"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    meta["wall_s"] = time.perf_counter() - t0
    if not results:
        print("bench: nothing ran", file=sys.stderr)
        return 1
    meta["event_bytes"] = f"~{round(next(iter(results.values()))['event_json_bytes'])}"

    md, verdicts = report.build(results, meta, skipped)
    md += f"\nTotal wall time {meta['wall_s']:.0f} s.\n"
    print()
    print(md)

    md_path = args.md
    if md_path is None and not args.only:
        md_path = str(RESULTS / ("quick.md" if args.quick else "latest.md"))
    if md_path:
        Path(md_path).parent.mkdir(parents=True, exist_ok=True)
        Path(md_path).write_text(md)
        print(f"bench: wrote {md_path}", file=sys.stderr)
    if args.json:
        Path(args.json).write_text(json.dumps({"meta": meta, "results": results, "skipped": skipped,
                                               "verdicts": verdicts}, indent=1, default=str))
        print(f"bench: wrote {args.json}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
