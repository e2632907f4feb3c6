"""Where does our service spend its time? cProfile of append_event and get_session.

    python -m bench.profile_ours [--append 2000] [--get 10000] [--list 10000] [--top 25] [--pg]

Our SQLite backend runs its SQL in worker threads, which a plain ``cProfile.run`` (main thread only)
cannot see. This script also profiles every thread started while it runs (through
``threading.setprofile``) and prints the main thread (the asyncio loop: event building, decoding if
done there, pydantic) and the worker threads (SQL, sqlite3, JSON) separately.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import os
import pstats
import sys
import tempfile
import threading
import time
from typing import Any

from . import workload
from .workload import APP


class ThreadProfiles:
    """cProfile in every thread started after ``start()``, plus the caller's thread."""

    def __init__(self) -> None:
        self.profiles: list[cProfile.Profile] = []
        self.main = cProfile.Profile()
        self._lock = threading.Lock()

    def _bootstrap(self, *_: Any) -> None:
        prof = cProfile.Profile()
        with self._lock:
            self.profiles.append(prof)
        prof.enable()  # replaces this bootstrap hook for the rest of the thread's life

    def start(self) -> None:
        threading.setprofile(self._bootstrap)

    def stop(self) -> None:
        threading.setprofile(None)  # type: ignore[arg-type]

    def reset(self) -> None:
        self.main = cProfile.Profile()
        for p in self.profiles:
            p.disable()
            p.clear()
            p.enable()

    def report(self, title: str, top: int) -> str:
        out = io.StringIO()
        main = pstats.Stats(self.main, stream=out)
        threads = [p for p in self.profiles if p.getstats()]
        for p in threads:
            p.disable()
        work = None
        if threads:
            work = pstats.Stats(threads[0], stream=out)
            for p in threads[1:]:
                work.add(p)
        for p in threads:
            p.enable()
        for label, st in (("main thread (asyncio loop)", main), (f"{len(threads)} worker thread(s)", work)):
            if st is None:
                continue
            _drop_idle(st)
            out.write(f"\n===== {title}: {label}: busy {st.total_tt:.3f} s; by bucket: "
                      + ", ".join(f"{k} {v:.3f}" for k, v in _buckets(st)) + " =====\n")
            st.strip_dirs().sort_stats("tottime").print_stats(top)
        return out.getvalue()


IDLE = ("method 'poll' of 'select.epoll'", "method 'get' of '_queue.SimpleQueue'",
        "method 'enable' of '_lsprof.Profiler'", "method 'acquire' of '_thread.lock'")


def _drop_idle(st: pstats.Stats) -> None:
    """Removes time spent waiting (event-loop poll, idle executor threads, the profiler itself)."""
    for key in [k for k in st.stats if any(i in k[2] for i in IDLE)]:  # type: ignore[attr-defined]
        del st.stats[key]  # type: ignore[attr-defined]
    st.total_tt = sum(v[2] for v in st.stats.values())  # type: ignore[attr-defined]


def _buckets(st: pstats.Stats) -> list[tuple[str, float]]:
    acc: dict[str, float] = {}
    for (fn, _line, func), v in st.stats.items():  # type: ignore[attr-defined]
        if "sqlite3" in func or "asyncpg" in fn or "asyncpg" in func:
            b = "database driver"
        elif "pydantic" in fn or "pydantic" in func:
            b = "pydantic"
        elif "/json/" in fn or "json" in func:
            b = "json"
        elif "/multi_agent/" in fn:
            b = "our code"
        elif "/google/adk/" in fn or "/google/genai/" in fn:
            b = "ADK/genai models"
        elif "sqlalchemy" in fn:
            b = "sqlalchemy"
        elif "/asyncio/" in fn or "concurrent/futures" in fn or "socket" in func or "_queue" in func \
                or "threading.py" in fn:
            b = "asyncio/thread hops"
        else:
            b = "other"
        acc[b] = acc.get(b, 0.0) + v[2]
    return sorted(acc.items(), key=lambda kv: -kv[1])


async def main_async(args: argparse.Namespace) -> None:
    from google.adk.sessions.base_session_service import GetSessionConfig

    from multi_agent import DatabaseSessionService

    tp = ThreadProfiles()
    tp.start()
    with tempfile.TemporaryDirectory() as tmp:
        url = os.environ.get("MULTI_AGENT_BENCH_PG_URL") if args.pg else None
        url = url or f"sqlite+aiosqlite:///{tmp}/prof.db"
        svc = DatabaseSessionService(db_url=url)
        prepare = getattr(svc, "prepare", None)
        if prepare:
            await prepare()
        s = await svc.create_session(app_name=APP, user_id="prof")
        await svc.append_event(s, workload.make_event(0))  # warm up threads and statements
        events = [workload.make_event(i) for i in range(1, args.append + 1)]

        tp.reset()
        t0 = time.perf_counter()
        tp.main.enable()
        for ev in events:
            await svc.append_event(s, ev)
        tp.main.disable()
        wall = time.perf_counter() - t0
        print(f"append_event x{args.append}: {wall * 1000 / args.append:.3f} ms each under the profiler "
              f"({args.append / wall:,.0f} ev/s; the profiler itself slows things down)")
        print(tp.report("append_event", args.top))

        # Grow the session to --get events (not profiled), then profile full reads.
        for i in range(args.append + 1, args.get):
            await svc.append_event(s, workload.make_event(i))
            if len(s.events) > 1000:
                del s.events[:-20]
        tp.reset()
        t0 = time.perf_counter()
        tp.main.enable()
        got = await svc.get_session(app_name=APP, user_id="prof", session_id=s.id)
        tp.main.disable()
        wall = time.perf_counter() - t0
        print(f"get_session of {len(got.events):,} events: {wall * 1000:.0f} ms under the profiler")
        print(tp.report("get_session (full)", args.top))
        del got

        tp.reset()
        cfg = GetSessionConfig(num_recent_events=20)
        t0 = time.perf_counter()
        tp.main.enable()
        for _ in range(50):
            await svc.get_session(app_name=APP, user_id="prof", session_id=s.id, config=cfg)
        tp.main.disable()
        print(f"get_session(num_recent_events=20) x50: {(time.perf_counter() - t0) * 20:.2f} ms each")
        print(tp.report("get_session (last 20)", args.top))
        if args.list:
            for _ in range(args.list):
                await svc.create_session(app_name=APP, user_id="lister")
            tp.reset()
            t0 = time.perf_counter()
            tp.main.enable()
            got = await svc.list_sessions(app_name=APP, user_id="lister")
            tp.main.disable()
            print(f"list_sessions over {len(got.sessions):,} sessions: "
                  f"{(time.perf_counter() - t0) * 1000:.0f} ms under the profiler")
            print(tp.report("list_sessions", args.top))
        await svc.close()
    tp.stop()
    for p in tp.profiles:
        p.disable()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.profile_ours", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--append", type=int, default=2000)
    p.add_argument("--get", type=int, default=10_000)
    p.add_argument("--list", type=int, default=0, metavar="N",
                   help="also profile list_sessions over N sessions (created through create_session)")
    p.add_argument("--top", type=int, default=25)
    p.add_argument("--pg", action="store_true", help="profile on MULTI_AGENT_BENCH_PG_URL instead of SQLite")
    args = p.parse_args(argv)
    asyncio.run(main_async(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
