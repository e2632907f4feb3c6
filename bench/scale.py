"""A big database (issue 17): 10,000 sessions / 1,000,000 events, ours beside ADK's.

    python -m bench.scale                                  # 10,000 sessions, 1,000,000 events
    python -m bench.scale --sessions 50 --events 2000      # the smoke test's size
    python -m bench.scale --pg postgresql+asyncpg://u:p@host/db   # also on PostgreSQL
    python -m bench.scale --pg postgresql+asyncpg://... --pg-only # PostgreSQL only
    python -m bench.scale --index-cost                     # what the page indexes cost an append
    python -m bench.scale --page-scale 10000,1000000       # a page at 10k and 1M sessions

Run by hand, not by ``make bench`` (the full size takes tens of minutes on a 2-core box).

**How the databases are built.** Ours through its own public code path: one template
session of ``events / sessions`` events is written by ``append_event``, exported
(``export_session``), and imported (``import_session``) once per session with fresh event ids and
shifted times: exactly the rows an append writes (events with their facts, runs, session
counters), without 1,000,000 separate transactions. ADK's ``DatabaseSessionService`` through its
own schema (``prepare_tables``; one ``create_session`` per user makes its state rows): the
sessions and events are bulk-inserted as the rows its ``create_session`` / ``append_event``
write (``StorageSession``, ``StorageEvent`` with ``event_data`` = the same event JSON), since 1M
events through its ``append_event`` at ~200 events/s would take over an hour. Both hold the
same sessions (same ids, users, update times) and the same events.

**What is measured** (median of ``--reps`` calls, ours and ADK's interleaved, same run):

* ``last20``: ``get_session`` with ``GetSessionConfig(num_recent_events=20)`` of a random session;
* ``page_first`` / ``page_deep``: a page of 50 of the app's sessions, newest first, at the
  start and half-way down the list (ours: ``list_sessions_page``; ADK has no page: the only way
  to see the newest sessions is ``list_sessions`` of the whole app, measured instead);
* ``user_page``: a page of 50 of one user's sessions (ADK: ``list_sessions`` of the user);
* ``list_user``: ``list_sessions`` of one user (both: ADK's contract);
* ``bytes_per_event``: the database's size on disk (SQLite: the file after a WAL checkpoint;
  PostgreSQL: ``pg_database_size``) divided by the events.

``--index-cost`` measures one append (single stream, on sessions picked at random among
``--sessions``) on three copies of our schema: without the two page indexes of schema 5,
with the user one only, with both; rounds interleaved; ev/s and CPU ms per append.
Load averages are printed before and after: on a shared box the figures are noisy.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from typing import Any

from google.adk.sessions.base_session_service import GetSessionConfig

from . import workload

APP = workload.APP
PAGE = 50
T0 = 1_700_000_000.0


def load() -> str:
    return "/".join(f"{x:.2f}" for x in os.getloadavg())


def user_of(i: int, users: int) -> str:
    return f"user{i % users:05d}"


def session_id(i: int) -> str:
    return f"s{i:07d}"


def session_time(i: int, per: int) -> float:
    """Session ``i``'s first event time: sessions follow each other, 1 ms between events."""
    return T0 + i * (per * 0.001 + 1.0)


# -- ours -----------------------------------------------------------------------------------------


async def build_ours(url: str, n_sessions: int, n_events: int, users: int,
                     progress: bool) -> tuple[Any, list[list[dict]], float]:
    """Our store filled through append_event (the template), export and import (see the
    module docstring); returns (service, each session's event bodies, seconds)."""
    from multi_agent import DatabaseSessionService

    per = max(1, n_events // n_sessions)
    svc = DatabaseSessionService(url)
    started = time.perf_counter()
    tpl = await svc.create_session(app_name=APP, user_id="bench-template")
    for i in range(per):
        await svc.append_event(tpl, workload.make_event(i))
    doc = await svc.export_session(app_name=APP, user_id=tpl.user_id, session_id=tpl.id)
    await svc.delete_session(app_name=APP, user_id=tpl.user_id, session_id=tpl.id)
    base = doc["events"][0]["timestamp"]
    bodies: list[list[dict]] = []
    for i in range(n_sessions):
        shift = session_time(i, per) - base
        one = retimed(doc, shift)
        bodies.append([e["event"] for e in one["events"]])
        await svc.import_session(one, app_name=APP, user_id=user_of(i, users),
                                 session_id=session_id(i))
        if progress and i % 500 == 499:
            print(f"  ours: {i + 1} sessions imported ({time.perf_counter() - started:.0f} s, "
                  f"load {load()})", file=sys.stderr)
    return svc, bodies, time.perf_counter() - started


def retimed(doc: dict, shift: float) -> dict:
    """The export document with fresh event ids and every time moved by ``shift``."""
    events = []
    for e in doc["events"]:
        ne = dict(e)
        ne["id"] = str(uuid.uuid4())
        ne["timestamp"] = e["timestamp"] + shift
        body = dict(e["event"])
        body.update(id=ne["id"], timestamp=ne["timestamp"])
        ne["event"] = body
        events.append(ne)
    runs = [dict(r, started_at=r["started_at"] + shift) if r.get("started_at") is not None
            else dict(r) for r in doc["runs"]]
    session = dict(doc["session"])
    for key in ("create_time", "update_time"):
        if session.get(key) is not None:
            session[key] = session[key] + shift
    return {**doc, "session": session, "events": events, "runs": runs}


# -- ADK ------------------------------------------------------------------------------------------


def _naive(ts: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(ts, tz=dt.UTC).replace(tzinfo=None)


async def build_adk(url: str, bodies: list[list[dict]], users: int, progress: bool
                    ) -> tuple[Any, float]:
    """ADK's DatabaseSessionService with the same sessions and events, bulk-inserted as the
    rows its create_session / append_event write."""
    from google.adk.sessions.database_session_service import DatabaseSessionService
    from sqlalchemy import insert

    svc = DatabaseSessionService(db_url=url)
    started = time.perf_counter()
    await svc.prepare_tables()
    classes = svc._get_schema_classes()
    for u in range(min(users, len(bodies))):  # ADK's own app/user state rows
        made = await svc.create_session(app_name=APP, user_id=user_of(u, users))
        await svc.delete_session(app_name=APP, user_id=made.user_id, session_id=made.id)
    s_table = classes.StorageSession.__table__
    e_table = classes.StorageEvent.__table__
    cols = [c.key for c in e_table.columns]
    StorageEvent = classes.StorageEvent
    chunk_sessions = 200
    for lo in range(0, len(bodies), chunk_sessions):
        srows, erows = [], []
        for i in range(lo, min(lo + chunk_sessions, len(bodies))):
            evs = bodies[i]
            user, sid = user_of(i, users), session_id(i)
            srows.append({"app_name": APP, "user_id": user, "id": sid, "state": {},
                          "create_time": _naive(evs[0]["timestamp"]),
                          "update_time": _naive(evs[-1]["timestamp"])})
            for d in evs:
                row = StorageEvent(id=d["id"], invocation_id=d["invocation_id"],
                                   session_id=sid, app_name=APP, user_id=user,
                                   timestamp=_naive(d["timestamp"]), event_data=d)
                erows.append({c: getattr(row, c) for c in cols})
        async with svc.db_engine.begin() as conn:
            await conn.execute(insert(s_table), srows)
            for j in range(0, len(erows), 5000):
                await conn.execute(insert(e_table), erows[j:j + 5000])
        if progress and (lo // chunk_sessions) % 10 == 9:
            print(f"  ADK: {lo + chunk_sessions} sessions inserted "
                  f"({time.perf_counter() - started:.0f} s, load {load()})", file=sys.stderr)
    return svc, time.perf_counter() - started


# -- sizes ----------------------------------------------------------------------------------------


def sqlite_bytes(url: str) -> int:
    import sqlite3

    path = url.split("///", 1)[1]
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return sum(os.path.getsize(p) for p in (path, path + "-wal") if os.path.exists(p))


async def pg_bytes(url: str) -> int:
    import asyncpg

    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        return int(await conn.fetchval("SELECT pg_database_size(current_database())"))
    finally:
        await conn.close()


async def db_bytes(url: str) -> int:
    return sqlite_bytes(url) if url.startswith("sqlite") else await pg_bytes(url)


class PgDatabases:
    """Throw-away databases on the server of ``base`` (dropped at the end)."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.names: list[str] = []

    def _admin(self) -> str:
        return self.base.replace("postgresql+asyncpg://", "postgresql://")

    async def new(self, label: str) -> str:
        import asyncpg

        name = f"scale_{label}_{uuid.uuid4().hex[:8]}"
        conn = await asyncpg.connect(self._admin())
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()
        self.names.append(name)
        return self.base.rsplit("/", 1)[0] + "/" + name

    async def drop(self) -> None:
        import asyncpg

        conn = await asyncpg.connect(self._admin())
        try:
            for name in self.names:
                await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()


# -- measuring ------------------------------------------------------------------------------------


async def timed(fn: Any, **kwargs: Any) -> tuple[float, Any]:
    """(milliseconds, result) of one ``await fn(**kwargs)``."""
    started = time.perf_counter()
    got = await fn(**kwargs)
    return (time.perf_counter() - started) * 1000, got


def deep_token(bodies: list[list[dict]], users: int) -> str:
    """The token a walk down the app's list hands out half-way (built directly): session
    ``i``'s update time is its last event's time."""
    from multi_agent.store.pages import _Cursor, encode_token

    i = len(bodies) // 2
    last = float(bodies[i][-1]["timestamp"])
    return encode_token(APP, None, _Cursor(last, user_of(i, users), session_id(i)))


async def measure(ours: Any, adk: Any | None, n_sessions: int, users: int, reps: int,
                  bodies: list[list[dict]]) -> dict[str, dict[str, float]]:
    per = len(bodies[0])
    token = deep_token(bodies, users)
    rng = random.Random(7)
    samples: dict[str, dict[str, list[float]]] = {"ours": {}, "adk": {}}
    slow_reps = max(1, min(reps, 5))  # ADK's whole-app list: a few calls are enough

    def add(who: str, what: str, ms: float) -> None:
        samples[who].setdefault(what, []).append(ms)

    for rep in range(reps):
        i = rng.randrange(n_sessions)
        user, sid = user_of(i, users), session_id(i)
        cfg = GetSessionConfig(num_recent_events=20)
        for who, svc in (("ours", ours), ("adk", adk)):
            if svc is None:
                continue
            ms, got = await timed(svc.get_session, app_name=APP, user_id=user,
                                  session_id=sid, config=cfg)
            add(who, "last20", ms)
            assert got is not None and len(got.events) == min(20, per), who
            assert got.events[-1].id == bodies[i][-1]["id"], who
            ms, _ = await timed(svc.list_sessions, app_name=APP, user_id=user)
            add(who, "list_user", ms)
            if who == "ours":
                add(who, "page_first", (await timed(
                    ours.list_sessions_page, app_name=APP, page_size=PAGE))[0])
                add(who, "page_deep", (await timed(
                    ours.list_sessions_page, app_name=APP, page_size=PAGE,
                    page_token=token))[0])
                add(who, "user_page", (await timed(
                    ours.list_sessions_page, app_name=APP, user_id=user, page_size=PAGE))[0])
            else:
                add(who, "user_page", ms)
                if rep < slow_reps:
                    ms, _ = await timed(svc.list_sessions, app_name=APP)
                    add(who, "page_first", ms)
                    add(who, "page_deep", ms)
    return {who: {k: statistics.median(v) for k, v in d.items()} for who, d in samples.items()}


async def check_page_walk(ours: Any, n_sessions: int) -> int:
    """A walk down the first pages returns distinct sessions, newest first."""
    token, seen, last = None, set(), None
    for _ in range(3):
        page = await ours.list_sessions_page(app_name=APP, page_size=PAGE, page_token=token)
        for s in page.sessions:
            assert s.id not in seen and (last is None or s.last_update_time <= last)
            seen.add(s.id)
            last = s.last_update_time
        token = page.next_page_token
        if token is None:
            break
    return len(seen)


async def scale(args: argparse.Namespace) -> dict[str, Any]:
    results: dict[str, Any] = {"sessions": args.sessions, "events": args.events,
                               "users": args.users, "load_before": load(), "backends": {}}
    print(f"# scale: {args.sessions} sessions, {args.events} events, {args.users} users "
          f"(load {load()}; shared box: noisy)", file=sys.stderr)
    backends = ([] if args.pg_only else ["sqlite"]) + (["postgresql"] if args.pg else [])
    for backend in backends:
        tmp = tempfile.mkdtemp(prefix="scale-")
        pg = PgDatabases(args.pg) if backend == "postgresql" else None
        try:
            if pg:
                ours_url, adk_url = await pg.new("ours"), await pg.new("adk")
            else:
                ours_url = f"sqlite+aiosqlite:///{tmp}/ours.db"
                adk_url = f"sqlite+aiosqlite:///{tmp}/adk.db"
            ours, bodies, ours_s = await build_ours(ours_url, args.sessions, args.events,
                                                    args.users, args.progress)
            events = sum(len(b) for b in bodies)
            adk = None
            adk_s = None
            if not args.no_adk:
                adk, adk_s = await build_adk(adk_url, bodies, args.users, args.progress)
            print(f"  {backend}: built ours in {ours_s:.0f} s, ADK in "
                  f"{adk_s if adk_s is None else round(adk_s)} s (load {load()})",
                  file=sys.stderr)
            walked = await check_page_walk(ours, args.sessions)
            medians = await measure(ours, adk, args.sessions, args.users, args.reps, bodies)
            sizes = {"ours": await db_bytes(ours_url) / events}
            if adk is not None:
                sizes["adk"] = await db_bytes(adk_url) / events
            results["backends"][backend] = {
                "events": events, "medians_ms": medians, "bytes_per_event": sizes,
                "build_s": {"ours": ours_s, "adk": adk_s}, "walked": walked,
            }
            await ours.close()
            if adk is not None:
                await adk.close()
        finally:
            if pg:
                await pg.drop()
            shutil.rmtree(tmp, ignore_errors=True)
    results["load_after"] = load()
    return results


def report(results: dict[str, Any]) -> str:
    lines = [f"Scale: {results['sessions']:,} sessions, {results['events']:,} events, "
             f"{results['users']:,} users; load {results['load_before']} -> "
             f"{results['load_after']} (shared 2-core box)", ""]
    names = {"last20": "get_session, last 20 events", "page_first": "page of 50, first",
             "page_deep": "page of 50, half-way down", "user_page": "page of 50 of one user",
             "list_user": "list_sessions of one user"}
    for backend, r in results["backends"].items():
        lines += [f"| {backend} | ours | ADK DatabaseSessionService | ADK / ours |",
                  "|---|---:|---:|---:|"]
        for key, label in names.items():
            o = r["medians_ms"]["ours"].get(key)
            a = r["medians_ms"].get("adk", {}).get(key)
            note = " (ADK: whole-app list_sessions)" if key.startswith("page_") and a else ""
            lines.append(f"| {label}{note} | {o:.2f} ms | "
                         + (f"{a:.2f} ms | {a / o:.1f}x |" if a else "- | - |"))
        o, a = r["bytes_per_event"]["ours"], r["bytes_per_event"].get("adk")
        lines.append(f"| bytes on disk per event | {o:.0f} | "
                     + (f"{a:.0f} | {a / o:.2f}x |" if a else "- | - |"))
        lines.append("")
    return "\n".join(lines)


# -- index cost -----------------------------------------------------------------------------------

VARIANTS = {"no page index": ("ix_ma_sessions_user_time", "ix_ma_sessions_app_time"),
            "user index only": ("ix_ma_sessions_app_time",),
            "both (schema 5)": ()}


async def index_cost(args: argparse.Namespace) -> dict[str, Any]:
    from multi_agent import DatabaseSessionService

    print(f"# index cost: {args.sessions} sessions, {args.appends} appends x {args.rounds} "
          f"rounds per variant (load {load()}; shared box: noisy)", file=sys.stderr)
    out: dict[str, Any] = {"load_before": load(), "backends": {}}
    for backend in ["sqlite"] + (["postgresql"] if args.pg else []):
        tmp = tempfile.mkdtemp(prefix="idxcost-")
        pg = PgDatabases(args.pg) if backend == "postgresql" else None
        stores: dict[str, Any] = {}
        try:
            for label, drop in VARIANTS.items():
                url = (await pg.new("idx") if pg else
                       f"sqlite+aiosqlite:///{tmp}/{len(stores)}.db")
                # SQLite: no automatic checkpoint, so a round's WAL frames can be counted
                svc = (DatabaseSessionService(url) if pg else DatabaseSessionService(
                    url, sqlite_pragmas={"wal_autocheckpoint": 0}))
                await svc.prepare()

                def drop_indexes(conn: Any, drop: tuple[str, ...] = drop) -> None:
                    for name in drop:
                        conn.exec_driver_sql(f"DROP INDEX {name}")

                await svc.backend.run(drop_indexes, write=True)
                sessions = [await svc.create_session(app_name=APP, user_id=user_of(i, 100),
                                                     session_id=session_id(i))
                            for i in range(args.sessions)]
                stores[label] = (svc, sessions)
            rates: dict[str, list[float]] = {k: [] for k in VARIANTS}
            cpu: dict[str, list[float]] = {k: [] for k in VARIANTS}
            writes: dict[str, list[float]] = {k: [] for k in VARIANTS}
            rng = random.Random(3)
            n = 0
            for _ in range(args.rounds):
                for label, (svc, sessions) in stores.items():
                    picks = [rng.randrange(len(sessions)) for _ in range(args.appends)]
                    before = await write_counter(svc)
                    c0, t0 = time.process_time(), time.perf_counter()
                    for k in picks:
                        await svc.append_event(sessions[k], workload.make_event(n))
                        n += 1
                    wall, used = time.perf_counter() - t0, time.process_time() - c0
                    after = await write_counter(svc)
                    rates[label].append(args.appends / wall)
                    cpu[label].append(used * 1000 / args.appends)
                    writes[label].append((after - before) / args.appends)
            out["backends"][backend] = {
                label: {"ev_s": statistics.median(rates[label]),
                        "cpu_ms": statistics.median(cpu[label]),
                        "writes": statistics.median(writes[label])} for label in VARIANTS}
            if pg:
                await asyncio.sleep(11)  # idle backends flush their statistics within 10 s
                for label, (svc, _) in stores.items():
                    got = await pg_update_stats(svc)
                    row = out["backends"][backend][label]
                    row["writes"] = 1 - got["hot"] / max(1.0, got["updates"])
                    row["index_bytes"] = got["index_bytes"]
        finally:
            for svc, _ in stores.values():
                await svc.close()
            if pg:
                await pg.drop()
            shutil.rmtree(tmp, ignore_errors=True)
    out["load_after"] = load()
    return out


async def write_counter(svc: Any) -> float:
    """SQLite: pages written to the WAL so far (its size in frames of page size + 24 bytes;
    the store runs here without automatic checkpoints, so the WAL only grows); PostgreSQL: 0
    here (see :func:`pg_update_stats`)."""
    if svc.dialect != "sqlite":
        return 0.0
    wal = svc.backend.sqlite_path + "-wal"
    size = os.stat(wal).st_size if os.path.exists(wal) else 0  # noqa: ASYNC240
    return size / (4096 + 24)


async def pg_update_stats(svc: Any) -> dict[str, float]:
    """``ma_sessions``: updates, HOT updates (no index entry written) and index bytes."""

    def read(conn: Any) -> dict[str, float]:
        row = conn.exec_driver_sql(
            "SELECT n_tup_upd, n_tup_hot_upd, pg_indexes_size('ma_sessions') "
            "FROM pg_stat_user_tables WHERE relname = 'ma_sessions'").first()
        return {"updates": float(row[0]), "hot": float(row[1]), "index_bytes": float(row[2])}

    return await svc.backend.run(read, write=False)


def index_report(out: dict[str, Any]) -> str:
    lines = [f"Append cost of the page indexes; load {out['load_before']} -> "
             f"{out['load_after']} (shared 2-core box)", ""]
    for backend, r in out["backends"].items():
        base = r["no page index"]["ev_s"]
        unit = ("WAL pages written per append" if backend == "sqlite" else
                "share of ma_sessions updates not HOT (each writes every index)")
        lines += [f"| {backend}, one stream | appends/s | vs no index | CPU ms/append | "
                  f"{unit} |", "|---|---:|---:|---:|---:|"]
        for label, v in r.items():
            lines.append(f"| {label} | {v['ev_s']:.0f} | {v['ev_s'] / base:.2f}x | "
                         f"{v['cpu_ms']:.2f} | {v['writes']:.2f} |")
        lines.append("")
    return "\n".join(lines)


# -- page cost against the number of sessions ----------------------------------------------------


async def page_scale(args: argparse.Namespace) -> dict[str, Any]:
    """A page of 50 (first, half-way, one user's) on SQLite files of each size in
    ``--page-scale``: the session rows are bulk-inserted with sqlite3 as ``create_session``
    writes them (no events), into the schema our store created."""
    import sqlite3

    from multi_agent import DatabaseSessionService
    from multi_agent.store.pages import _Cursor, encode_token

    out: dict[str, Any] = {"load_before": load(), "sizes": {}}
    for size in (int(x) for x in args.page_scale.split(",")):
        tmp = tempfile.mkdtemp(prefix="pagescale-")
        path = f"{tmp}/pages.db"
        try:
            svc = DatabaseSessionService(f"sqlite+aiosqlite:///{path}")
            await svc.create_session(app_name=APP, user_id=user_of(0, args.users),
                                     session_id="first")
            await svc.close()
            conn = sqlite3.connect(path)
            rows = ((APP, user_of(i, args.users), session_id(i), "{}", "{}",
                     T0 + i, T0 + i, uuid.uuid4().hex) for i in range(size))
            with conn:
                conn.executemany(
                    "INSERT INTO ma_sessions (app_name, user_id, id, state, initial_state, "
                    "create_time, update_time, revision, last_seq, event_count, agent_paths, "
                    "incarnation, branch_rev, key_revs) VALUES (?, ?, ?, ?, ?, ?, ?, 0, 0, 0, "
                    "'{}', ?, 0, '{}')", rows)
            conn.close()
            svc = DatabaseSessionService(f"sqlite+aiosqlite:///{path}")
            mid = size // 2
            token = encode_token(APP, None, _Cursor(T0 + mid, user_of(mid, args.users),
                                                    session_id(mid)))
            got: dict[str, list[float]] = {"first": [], "deep": [], "user": []}
            for _ in range(args.reps):
                got["first"].append((await timed(
                    svc.list_sessions_page, app_name=APP, page_size=PAGE))[0])
                got["deep"].append((await timed(
                    svc.list_sessions_page, app_name=APP, page_size=PAGE,
                    page_token=token))[0])
                got["user"].append((await timed(
                    svc.list_sessions_page, app_name=APP, user_id=user_of(7, args.users),
                    page_size=PAGE))[0])
            await svc.close()
            out["sizes"][size] = {k: statistics.median(v) for k, v in got.items()}
            print(f"  {size} sessions: {out['sizes'][size]} (load {load()})", file=sys.stderr)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    out["load_after"] = load()
    return out


def page_scale_report(out: dict[str, Any]) -> str:
    lines = [f"A page of 50 sessions (SQLite) against the number of sessions; load "
             f"{out['load_before']} -> {out['load_after']} (shared 2-core box)", "",
             "| sessions | first page | half-way down | one user's first page |",
             "|---:|---:|---:|---:|"]
    for size, r in out["sizes"].items():
        lines.append(f"| {size:,} | {r['first']:.2f} ms | {r['deep']:.2f} ms | "
                     f"{r['user']:.2f} ms |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.scale", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sessions", type=int, default=None,
                   help="sessions (default 10,000; --index-cost: 2,000)")
    p.add_argument("--events", type=int, default=1_000_000, help="events (default 1,000,000)")
    p.add_argument("--users", type=int, default=100, help="users the sessions belong to")
    p.add_argument("--reps", type=int, default=20, help="calls per measurement")
    p.add_argument("--pg", default=os.environ.get("MULTI_AGENT_BENCH_PG_URL"),
                   help="a PostgreSQL URL (postgresql+asyncpg://...) to run on it too "
                   "(default $MULTI_AGENT_BENCH_PG_URL)")
    p.add_argument("--no-adk", action="store_true", help="ours only")
    p.add_argument("--pg-only", action="store_true", help="with --pg: skip SQLite")
    p.add_argument("--progress", action="store_true", help="progress lines on stderr")
    p.add_argument("--index-cost", action="store_true",
                   help="measure what the page indexes cost an append instead")
    p.add_argument("--appends", type=int, default=300, help="--index-cost: appends a round")
    p.add_argument("--rounds", type=int, default=5, help="--index-cost: rounds per variant")
    p.add_argument("--page-scale", metavar="N,N,...",
                   help="measure a page at each number of sessions instead (e.g. "
                   "10000,1000000; session rows bulk-inserted, no events)")
    p.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    args = p.parse_args(argv)
    if args.pg_only and not args.pg:
        p.error("--pg-only needs --pg (or MULTI_AGENT_BENCH_PG_URL)")
    if args.page_scale:
        out = asyncio.run(page_scale(args))
        text = page_scale_report(out)
    elif args.index_cost:
        args.sessions = args.sessions or 2_000
        out = asyncio.run(index_cost(args))
        text = index_report(out)
    else:
        args.sessions = args.sessions or 10_000
        if args.sessions < 2 or args.events < args.sessions:
            p.error("need at least 2 sessions and one event per session")
        out = asyncio.run(scale(args))
        text = report(out)
    print(text)
    print(json.dumps(out))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
