"""The child process: runs every phase for ONE service on a fresh database and writes JSON.

    python -m bench.worker --service NAME --sizes default|quick --out result.json

``bench.run`` starts one of these per service (a fresh interpreter each, so imports, caches and
peak RSS belong to that service alone). Phases:

(a) create_session rate          (b) append_event throughput and latency into one session
(c) get_session of a big session, whole and with num_recent_events=20
(d) last 20 events of a very big session
(e) list_sessions over many sessions of one user, checking that no events come back
(f) head-path read (issue 5; only when the service has ``branch``)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import logging
import os
import resource
import statistics
import sys
import tempfile
import time
import traceback
from collections.abc import Iterator
from typing import Any

from . import workload
from .workload import APP, Sizes


def log(msg: str) -> None:
    print(f"  [{os.environ.get('BENCH_SERVICE', '?')}] {msg}", file=sys.stderr, flush=True)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    if not s:
        return float("nan")
    k = min(len(s) - 1, max(0, round(q * (len(s) - 1))))
    return s[k]


def ms(seconds: float) -> float:
    return seconds * 1000.0


# ------------------------------------------------------------------------------------------------
# SQL statement counting (SQLAlchemy-based services only)


class StatementCounter:
    """Counts data statements (SELECT/INSERT/UPDATE/DELETE) sent to the database while ``active``.

    Two taps, so both SQLAlchemy-executed statements and statements a service sends straight to a
    pooled ``sqlite3`` connection are seen: SQLAlchemy's ``before_cursor_execute`` on every Engine
    (skipped for sqlite3 connections), and ``sqlite3.Connection.set_trace_callback`` on every
    sqlite3 connection a SQLAlchemy pool opens. Transaction control (BEGIN/COMMIT/SAVEPOINT/PRAGMA)
    is not counted. Services that open connections outside SQLAlchemy (ADK SqliteSessionService)
    are not counted (reported as n/a).
    """

    DATA = ("select", "insert", "update", "delete", "with", "replace")

    def __init__(self) -> None:
        self.statements: list[str] = []
        self.active = False
        self.installed = False

    def _record(self, statement: str) -> None:
        if self.active and statement.lstrip().lower().startswith(self.DATA):
            self.statements.append(statement)

    def install(self) -> None:
        try:
            import sqlite3

            from sqlalchemy import event
            from sqlalchemy.engine import Engine
            from sqlalchemy.pool import Pool
        except ImportError:
            return

        def before(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
            try:
                raw = conn.connection.dbapi_connection
            except Exception:  # noqa: BLE001
                raw = None
            if not isinstance(raw, sqlite3.Connection):
                self._record(statement)

        def on_connect(dbapi_connection: Any, _record: Any) -> None:
            if isinstance(dbapi_connection, sqlite3.Connection):
                dbapi_connection.set_trace_callback(self._record)

        event.listen(Engine, "before_cursor_execute", before)
        event.listen(Pool, "connect", on_connect)
        self.installed = True

    @contextlib.contextmanager
    def counting(self) -> Iterator[list[str]]:
        self.statements = []
        self.active = True
        try:
            yield self.statements
        finally:
            self.active = False


COUNTER = StatementCounter()


def touches_events(stmt: str) -> bool:
    s = " ".join(stmt.lower().split())
    return " from events" in s or " join events" in s


# ------------------------------------------------------------------------------------------------
# Phases for a session service


async def timed(coro: Any) -> tuple[Any, float]:
    t0 = time.perf_counter()
    out = await coro
    return out, time.perf_counter() - t0


async def phase_create(svc: Any, sz: Sizes, res: dict) -> None:
    lat = []
    t0 = time.perf_counter()
    for _ in range(sz.n_create):
        _, dt_ = await timed(svc.create_session(app_name=APP, user_id="creator"))
        lat.append(dt_)
    total = time.perf_counter() - t0
    res["create_per_s"] = sz.n_create / total
    res["create_p50_ms"] = ms(pct(lat, 0.5))
    with COUNTER.counting() as stmts:
        await svc.create_session(app_name=APP, user_id="creator")
    res["create_statements"] = len(stmts) if COUNTER.installed and stmts else None


async def phase_append(svc: Any, sz: Sizes, res: dict) -> None:
    s = await svc.create_session(app_name=APP, user_id="appender")
    lat = []
    ids = []
    t0 = time.perf_counter()
    cpu = 0.0
    for i in range(sz.n_append):
        ev = workload.make_event(i)  # built outside the timed call
        c1 = time.process_time()
        t1 = time.perf_counter()
        await svc.append_event(s, ev)
        lat.append(time.perf_counter() - t1)
        cpu += time.process_time() - c1
        ids.append(ev.id)
    wall = time.perf_counter() - t0
    res["append_cpu_ms"] = ms(cpu / sz.n_append)
    res["append_per_s"] = sz.n_append / sum(lat)
    res["append_wall_per_s"] = sz.n_append / wall  # includes building the events
    res["append_p50_ms"] = ms(pct(lat, 0.5))
    res["append_p99_ms"] = ms(pct(lat, 0.99))
    # Statements per append (untimed extra appends).
    n_extra = 20
    with COUNTER.counting() as stmts:
        for i in range(sz.n_append, sz.n_append + n_extra):
            ev = workload.make_event(i)
            await svc.append_event(s, ev)
            ids.append(ev.id)
    res["append_statements"] = len(stmts) / n_extra if COUNTER.installed and stmts else None
    # Correctness: what came back is what went in.
    got = await svc.get_session(app_name=APP, user_id="appender", session_id=s.id)
    ok = [e.id for e in got.events] == ids and got.state.get("turn") == len(ids) - 1
    res["append_check"] = "ok" if ok else f"MISMATCH ({len(got.events)} events, turn={got.state.get('turn')})"


async def read_phase(adapter: Any, svc: Any, user: str, n: int, sz: Sizes, res: dict, key: str,
                     *, full_reads: int, recent_reads: int) -> None:
    from google.adk.sessions.base_session_service import GetSessionConfig

    s = await svc.create_session(app_name=APP, user_id=user)
    sid = s.id
    if key == "big":
        s, written, secs, method = await adapter.fill_big(s, n, cap_s=sz.fill_cap_s)
    else:
        s, written, secs = await adapter.fill_events(s, n, cap_s=sz.fill_cap_s)
        method = adapter.fill_events_method
    res[f"{key}_n"] = written
    res[f"{key}_fill_method"] = method
    res[f"{key}_fill_s"] = secs
    if method == "append_event":
        res[f"{key}_fill_per_s"] = written / secs
    if written < n:
        res["notes"].append(f"{key}: fill through append_event stopped at {written:,} of {n:,} events "
                            f"after {secs:.0f} s (cap {sz.fill_cap_s:.0f} s)")
    log(f"{key}: filled {written:,} events in {secs:.1f} s ({method})")
    del s
    gc.collect()

    last_id = None
    if full_reads:
        times = []
        cpus = []
        for _ in range(full_reads):
            c1 = time.process_time()
            got, dt_ = await timed(svc.get_session(app_name=APP, user_id=user, session_id=sid))
            cpus.append(time.process_time() - c1)
            times.append(dt_)
            assert len(got.events) == written, (len(got.events), written)
            last_id = got.events[-1].id
            del got
            gc.collect()
        res[f"{key}_full_ms"] = ms(statistics.median(times))
        res[f"{key}_full_min_ms"] = ms(min(times))
        res[f"{key}_full_cpu_ms"] = ms(statistics.median(cpus))
    cfg = GetSessionConfig(num_recent_events=20)
    times = []
    for _ in range(recent_reads):
        got, dt_ = await timed(svc.get_session(app_name=APP, user_id=user,
                                               session_id=sid, config=cfg))
        times.append(dt_)
        assert len(got.events) == 20, len(got.events)
        if last_id is not None:
            assert got.events[-1].id == last_id
    res[f"{key}_recent20_ms"] = ms(statistics.median(times))
    res[f"{key}_recent20_max_ms"] = ms(max(times))
    with COUNTER.counting() as stmts:
        await svc.get_session(app_name=APP, user_id=user, session_id=sid, config=cfg)
    res[f"{key}_recent20_statements"] = len(stmts) if COUNTER.installed and stmts else None


async def phase_list(adapter: Any, svc: Any, sz: Sizes, res: dict) -> None:
    user = "lister"
    # A few sessions get real events through append_event, so "no events loaded" means something.
    with_events = min(20, sz.n_list)
    for k in range(with_events):
        s = await svc.create_session(app_name=APP, user_id=user)
        for i in range(5):
            await svc.append_event(s, workload.make_event(k * 5 + i))
    secs = await adapter.fill_sessions(user, sz.n_list - with_events)
    res["list_fill_method"] = adapter.fill_sessions_method
    log(f"list: {sz.n_list:,} sessions ready in {secs:.1f} s")
    times = []
    cpus = []
    for _ in range(sz.list_reps):
        c1 = time.process_time()
        got, dt_ = await timed(svc.list_sessions(app_name=APP, user_id=user))
        cpus.append(time.process_time() - c1)
        times.append(dt_)
        n_sessions = len(got.sessions)
        n_events = sum(len(x.events) for x in got.sessions)
        del got
    res["list_ms"] = ms(statistics.median(times))
    res["list_cpu_ms"] = ms(statistics.median(cpus))
    res["list_n"] = n_sessions
    res["list_events_loaded"] = n_events
    with COUNTER.counting() as stmts:
        await svc.list_sessions(app_name=APP, user_id=user)
    if COUNTER.installed and stmts:
        res["list_statements"] = len(stmts)
        res["list_event_queries"] = sum(touches_events(x) for x in stmts)
    if n_sessions != sz.n_list:
        res["notes"].append(f"list_sessions returned {n_sessions:,} sessions, expected {sz.n_list:,}")


PHASES = ("create", "append", "get", "big", "list", "head")


async def run_service(name: str, sz: Sizes, tmpdir: str, phases: tuple[str, ...] = PHASES) -> dict:
    """Every phase in ``phases`` for one service (all by default; fewer for quick iteration)."""
    from .adapters import ADAPTERS

    adapter = ADAPTERS[name](tmpdir)
    res: dict[str, Any] = {"service": name, "label": adapter.label, "is_ours": adapter.is_ours,
                           "notes": [], "errors": {}}
    t_start = time.perf_counter()
    svc = await adapter.open()
    prepare = getattr(svc, "prepare", None)
    if prepare is not None:
        await prepare()
    res["rss_after_open_mb"] = peak_rss_mb()
    pg_note = getattr(getattr(adapter, "pg", None), "note", "")
    if pg_note:
        res["notes"].append(pg_note)

    async def guarded(key: str, coro: Any) -> None:
        t0 = time.perf_counter()
        try:
            await coro
        except Exception as exc:  # noqa: BLE001 - a phase failing is a result, not a crash
            res["errors"][key] = f"{type(exc).__name__}: {exc}"
            log(f"{key} FAILED: {type(exc).__name__}: {exc}")
            traceback.print_exc(file=sys.stderr)
        res[f"{key}_phase_s"] = time.perf_counter() - t0
        res[f"rss_after_{key}_mb"] = peak_rss_mb()
        gc.collect()

    async def reads(user: str, n: int, key: str, full: int, recent: int) -> None:
        await read_phase(adapter, svc, user, n, sz, res, key, full_reads=full, recent_reads=recent)

    if "create" in phases:
        await guarded("create", phase_create(svc, sz, res))
        log(f"create done: {res.get('create_per_s', 0):,.0f}/s")
    if "append" in phases:
        await guarded("append", phase_append(svc, sz, res))
        log(f"append done: {res.get('append_per_s', 0):,.0f} ev/s")
    if "get" in phases:
        await guarded("get", reads("reader", sz.n_get, "get", sz.get_reps, sz.recent_reps))
        log(f"get done: {res.get('get_full_ms', float('nan')):,.1f} ms")
    if "big" in phases:
        await guarded("big", reads("big", sz.n_big, "big", 0, sz.recent_reps))
        log(f"big done: last 20 in {res.get('big_recent20_ms', float('nan')):,.2f} ms")
    if "list" in phases:
        await guarded("list", phase_list(adapter, svc, sz, res))
        log(f"list done: {res.get('list_ms', float('nan')):,.1f} ms")
    if adapter.is_ours and "head" in phases:
        from .headpath import head_path

        async def head() -> None:
            res["head"] = await head_path(svc, sz)

        await guarded("head", head())
    await adapter.close()
    res["db_mb"] = (adapter.db_bytes() or 0) / 1e6 or None
    res["peak_rss_mb"] = peak_rss_mb()
    res["total_s"] = time.perf_counter() - t_start
    return res


# ------------------------------------------------------------------------------------------------
# The physical limit: raw sqlite3


def run_raw_sqlite(sz: Sizes, tmpdir: str) -> dict:
    """A plain sqlite3 loop: WAL, synchronous=FULL, one ~600-byte row + COMMIT per event.

    Rows are serialised before the timed loop, so this is the database's cost alone. Reads fetch the
    rows and ``json.loads`` them (no ADK objects), the floor for any store that keeps JSON.
    """
    import sqlite3

    path = os.path.join(tmpdir, "raw.db")
    con = sqlite3.connect(path, isolation_level=None)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=FULL")
    con.executescript(
        """
        CREATE TABLE sessions (user_id TEXT, id TEXT, state TEXT, update_time REAL,
                               PRIMARY KEY (user_id, id));
        CREATE TABLE events (session_id TEXT, seq INTEGER, data TEXT, PRIMARY KEY (session_id, seq));
        """
    )
    res: dict[str, Any] = {"service": "raw-sqlite3", "is_ours": False, "notes": [], "errors": {},
                           "label": "raw sqlite3 (WAL, synchronous=FULL, 1 row + COMMIT per event)"}
    t_start = time.perf_counter()
    rows = [e.model_dump_json(exclude_none=True) for e in (workload.make_event(i) for i in range(sz.n_append))]
    res["row_bytes"] = len(rows[0])

    # (a) one session row + commit each
    lat = []
    t0 = time.perf_counter()
    for _ in range(sz.n_create):
        t1 = time.perf_counter()
        con.execute("BEGIN")
        con.execute("INSERT INTO sessions VALUES (?, ?, '{}', ?)", ("creator", workload.new_id(), time.time()))
        con.execute("COMMIT")
        lat.append(time.perf_counter() - t1)
    res["create_per_s"] = sz.n_create / (time.perf_counter() - t0)
    res["create_p50_ms"] = ms(pct(lat, 0.5))

    # (b) one event row + commit each
    lat = []
    c0 = time.process_time()
    for i, data in enumerate(rows):
        t1 = time.perf_counter()
        con.execute("BEGIN")
        con.execute("INSERT INTO events VALUES ('appender', ?, ?)", (i, data))
        con.execute("COMMIT")
        lat.append(time.perf_counter() - t1)
    res["append_cpu_ms"] = ms((time.process_time() - c0) / len(rows))
    res["append_per_s"] = len(rows) / sum(lat)
    res["append_p50_ms"] = ms(pct(lat, 0.5))
    res["append_p99_ms"] = ms(pct(lat, 0.99))

    def fill(sid: str, n: int) -> None:
        con.execute("BEGIN")
        con.executemany("INSERT INTO events VALUES (?, ?, ?)",
                        ((sid, i, json.dumps(d, separators=(",", ":")))
                         for i, d in enumerate(workload.bulk_event_dicts(n, start_ts=1e9))))
        con.execute("COMMIT")

    # (c) fetch + json.loads all rows
    fill("reader", sz.n_get)
    res["get_n"] = sz.n_get
    times = []
    cpus = []
    for _ in range(sz.get_reps):
        c1 = time.process_time()
        t1 = time.perf_counter()
        evs = [json.loads(r[0]) for r in con.execute(
            "SELECT data FROM events WHERE session_id='reader' ORDER BY seq")]
        times.append(time.perf_counter() - t1)
        cpus.append(time.process_time() - c1)
        assert len(evs) == sz.n_get
        del evs
    res["get_full_ms"] = ms(statistics.median(times))
    res["get_full_cpu_ms"] = ms(statistics.median(cpus))

    def last20(sid: str) -> float:
        times = []
        for _ in range(sz.recent_reps):
            t1 = time.perf_counter()
            evs = [json.loads(r[0]) for r in con.execute(
                "SELECT data FROM events WHERE session_id=? ORDER BY seq DESC LIMIT 20", (sid,))]
            evs.reverse()
            times.append(time.perf_counter() - t1)
            assert len(evs) == 20
        return ms(statistics.median(times))

    res["get_recent20_ms"] = last20("reader")
    # (d)
    fill("big", sz.n_big)
    res["big_n"] = sz.n_big
    res["big_recent20_ms"] = last20("big")
    # (e)
    con.execute("BEGIN")
    con.executemany("INSERT INTO sessions VALUES ('lister', ?, '{}', ?)",
                    ((workload.new_id(), float(i)) for i in range(sz.n_list)))
    con.execute("COMMIT")
    times = []
    for _ in range(sz.list_reps):
        t1 = time.perf_counter()
        got = [(r[0], json.loads(r[1])) for r in con.execute(
            "SELECT id, state FROM sessions WHERE user_id='lister' ORDER BY update_time")]
        times.append(time.perf_counter() - t1)
    res["list_ms"] = ms(statistics.median(times))
    res["list_n"] = len(got)
    res["list_events_loaded"] = 0
    con.close()
    res["db_mb"] = sum(os.path.getsize(path + s) for s in ("", "-wal") if os.path.exists(path + s)) / 1e6
    res["peak_rss_mb"] = peak_rss_mb()
    res["total_s"] = time.perf_counter() - t_start
    return res


async def run_raw_pg(sz: Sizes) -> dict:
    """The PostgreSQL limit: asyncpg, one prepared INSERT per event in its own (autocommit)
    transaction, default server settings (synchronous_commit=on, so one WAL flush per event)."""
    import asyncpg

    from .adapters import PG_ENV, PgScratch

    pg = PgScratch(os.environ[PG_ENV])
    await pg.create()
    dsn = pg._dsn(pg.name if pg.created else None)
    con = await asyncpg.connect(**dsn)
    res: dict[str, Any] = {"service": "raw-pg", "is_ours": False, "notes": [], "errors": {},
                           "label": "raw asyncpg (1 INSERT = 1 transaction per event)"}
    if pg.note:
        res["notes"].append(pg.note)
    t_start = time.perf_counter()
    try:
        await con.execute("""
            CREATE TABLE raw_sessions (user_id TEXT, id TEXT, state JSONB, update_time DOUBLE PRECISION,
                                       PRIMARY KEY (user_id, id));
            CREATE TABLE raw_events (session_id TEXT, seq INTEGER, data TEXT, PRIMARY KEY (session_id, seq));
        """)
        rows = [e.model_dump_json(exclude_none=True) for e in (workload.make_event(i) for i in range(sz.n_append))]
        ins_s = await con.prepare("INSERT INTO raw_sessions VALUES ($1, $2, '{}', $3)")
        lat = []
        t0 = time.perf_counter()
        for _ in range(sz.n_create):
            t1 = time.perf_counter()
            await ins_s.fetch("creator", workload.new_id(), time.time())
            lat.append(time.perf_counter() - t1)
        res["create_per_s"] = sz.n_create / (time.perf_counter() - t0)
        res["create_p50_ms"] = ms(pct(lat, 0.5))
        ins_e = await con.prepare("INSERT INTO raw_events VALUES ($1, $2, $3)")
        lat = []
        for i, data in enumerate(rows):
            t1 = time.perf_counter()
            await ins_e.fetch("appender", i, data)
            lat.append(time.perf_counter() - t1)
        res["append_per_s"] = len(rows) / sum(lat)
        res["append_p50_ms"] = ms(pct(lat, 0.5))
        res["append_p99_ms"] = ms(pct(lat, 0.99))

        async def fill(sid: str, n: int) -> None:
            await con.copy_records_to_table(
                "raw_events", records=[(sid, i, json.dumps(d, separators=(",", ":")))
                                       for i, d in enumerate(workload.bulk_event_dicts(n, start_ts=1e9))])

        async def reads(sql: str, arg: str, reps: int, expect: int) -> float:
            times = []
            for _ in range(reps):
                t1 = time.perf_counter()
                evs = [json.loads(r[0]) for r in await con.fetch(sql, arg)]
                times.append(time.perf_counter() - t1)
                assert len(evs) == expect
            return ms(statistics.median(times))

        await fill("reader", sz.n_get)
        res["get_n"] = sz.n_get
        res["get_full_ms"] = await reads("SELECT data FROM raw_events WHERE session_id=$1 ORDER BY seq",
                                         "reader", sz.get_reps, sz.n_get)
        last20 = "SELECT data FROM raw_events WHERE session_id=$1 ORDER BY seq DESC LIMIT 20"
        res["get_recent20_ms"] = await reads(last20, "reader", sz.recent_reps, 20)
        await fill("big", sz.n_big)
        await con.execute("ANALYZE raw_events")
        res["big_n"] = sz.n_big
        res["big_recent20_ms"] = await reads(last20, "big", sz.recent_reps, 20)
        await con.copy_records_to_table("raw_sessions", records=[
            ("lister", workload.new_id(), "{}", float(i)) for i in range(sz.n_list)])
        res["list_ms"] = await reads(
            "SELECT state::text, id FROM raw_sessions WHERE user_id=$1 ORDER BY update_time",
            "lister", sz.list_reps, sz.n_list)
        res["list_n"] = sz.n_list
        res["list_events_loaded"] = 0
    finally:
        await con.close()
        await pg.drop()
    res["db_mb"] = (pg.size or 0) / 1e6 or None
    res["peak_rss_mb"] = peak_rss_mb()
    res["total_s"] = time.perf_counter() - t_start
    return res


# ------------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--service", required=True)
    p.add_argument("--sizes", default="default", choices=sorted(workload.SIZES))
    p.add_argument("--out", required=True)
    p.add_argument("--fill-ours", choices=["auto", "append", "import"], default="auto",
                   help="how our (d) big session is filled (auto: append on SQLite, import on PostgreSQL)")
    p.add_argument("--phases", default=",".join(PHASES),
                   help=f"comma-separated phases to run (default: all of {','.join(PHASES)})")
    args = p.parse_args(argv)
    phases = tuple(x.strip() for x in args.phases.split(",") if x.strip())
    if set(phases) - set(PHASES):
        p.error(f"unknown phase(s) {sorted(set(phases) - set(PHASES))}; choose from {PHASES}")
    if args.fill_ours != "auto":
        from .adapters import OursPgAdapter, OursSqliteAdapter

        OursSqliteAdapter.big_fill = OursPgAdapter.big_fill = args.fill_ours
    os.environ["BENCH_SERVICE"] = args.service
    logging.basicConfig(level=logging.ERROR)
    for name in ("google_adk", "google", "sqlalchemy", "aiosqlite", "multi_agent"):
        logging.getLogger(name).setLevel(logging.ERROR)
    sz = workload.SIZES[args.sizes]
    with tempfile.TemporaryDirectory(prefix=f"bench-{args.service}-") as tmpdir:
        if args.service == "raw-sqlite3":
            res = run_raw_sqlite(sz, tmpdir)
        elif args.service == "raw-pg":
            res = asyncio.run(run_raw_pg(sz))
        else:
            COUNTER.install()
            res = asyncio.run(run_service(args.service, sz, tmpdir, phases))
    res["sizes"] = sz.to_dict()
    res["event_json_bytes"] = workload.event_json_size()
    with open(args.out, "w") as f:
        json.dump(res, f, indent=1, default=str)
    return 0


if __name__ == "__main__":
    sys.exit(main())
