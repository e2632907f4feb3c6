"""One adapter per service under test.

An adapter opens its service on a fresh database, closes it, and knows the fastest *faithful* way
to fill a session with many events or a user with many sessions:

* ADK's services are filled by bulk-inserting the very rows their own ``append_event`` /
  ``create_session`` would write (ADK's ``StorageEvent.from_event`` for DatabaseSessionService, the
  same INSERT for SqliteSessionService, the same in-memory list for InMemorySessionService).
  Filling 100,000 events through ADK's ``append_event`` at ~200 events/s would take 8 minutes.
* Our service is filled through its public ``append_event`` / ``create_session`` (no back door),
  so filling it is also a throughput measurement at large session sizes.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import sqlite3
import time
import uuid
from typing import Any

from google.adk.events import Event
from google.adk.sessions import BaseSessionService, Session

from . import workload

PG_ENV = "MULTI_AGENT_BENCH_PG_URL"


class Adapter:
    """Base adapter: fills through the public API."""

    big_fill = "append"

    async def fill_big(self, session: Session, n: int, *, cap_s: float) -> tuple[Session, int, float, str]:
        s, written, secs = await self.fill_events(session, n, cap_s=cap_s)
        return s, written, secs, self.fill_events_method

    name = "?"
    label = "?"
    is_ours = False

    def __init__(self, tmpdir: str) -> None:
        self.tmpdir = tmpdir
        self.svc: BaseSessionService | None = None
        self.db_path: str | None = None

    async def open(self) -> BaseSessionService:
        raise NotImplementedError

    async def close(self) -> None:
        close = getattr(self.svc, "close", None)
        if close is not None:
            await close()

    def db_bytes(self) -> int | None:
        if not self.db_path:
            return None
        total = 0
        for suffix in ("", "-wal", "-shm", "-journal"):
            p = self.db_path + suffix
            if os.path.exists(p):
                total += os.path.getsize(p)
        return total

    # -- fills ------------------------------------------------------------------------------------

    fill_events_method = "append_event"
    fill_sessions_method = "create_session"

    async def fill_events(self, session: Session, n: int, *, cap_s: float) -> tuple[Session, int, float]:
        """Append ``n`` workload events; returns (session object, events written, seconds).

        Stops early (and says so through the returned count) once ``cap_s`` seconds have passed.
        """
        assert self.svc is not None
        t0 = time.perf_counter()
        written = 0
        for i in range(n):
            await self.svc.append_event(session, workload.make_event(i))
            written += 1
            # Keep the caller's copy from growing without bound: appends only need the marker.
            if len(session.events) > 1000:
                del session.events[:-20]
            if (written & 255) == 0 and time.perf_counter() - t0 > cap_s:
                break
        return session, written, time.perf_counter() - t0

    async def fill_sessions(self, user_id: str, n: int) -> float:
        assert self.svc is not None
        t0 = time.perf_counter()
        for _ in range(n):
            await self.svc.create_session(app_name=workload.APP, user_id=user_id)
        return time.perf_counter() - t0


# ------------------------------------------------------------------------------------------------
# ADK DatabaseSessionService


class AdkDatabaseAdapter(Adapter):
    name = "adk-db"
    label = "ADK DatabaseSessionService (sqlite+aiosqlite)"
    fill_events_method = "bulk INSERT of StorageEvent.from_event-equivalent rows (what its append_event writes)"
    fill_sessions_method = "bulk INSERT of sessions rows (same rows as its create_session)"

    def url(self) -> str:
        self.db_path = os.path.join(self.tmpdir, "adk_db.db")
        return f"sqlite+aiosqlite:///{self.db_path}"

    async def open(self) -> BaseSessionService:
        from google.adk.sessions.database_session_service import DatabaseSessionService

        self.svc = DatabaseSessionService(db_url=self.url())
        await self.svc.prepare_tables()
        return self.svc

    def _schema(self) -> Any:
        return self.svc._get_schema_classes()  # type: ignore[union-attr]

    async def fill_events(self, session: Session, n: int, *, cap_s: float) -> tuple[Session, int, float]:
        from sqlalchemy import insert

        svc = self.svc
        t0 = time.perf_counter()
        StorageEvent = self._schema().StorageEvent
        table = StorageEvent.__table__
        cols = [c.key for c in table.columns]
        dicts = workload.bulk_event_dicts(n, start_ts=time.time() - n * 0.001 - 1)
        chunk = 5000
        for lo in range(0, n, chunk):
            rows = []
            for d in dicts[lo : lo + chunk]:
                # Exactly what StorageEvent.from_event(session, event) builds; ``d`` equals
                # event.model_dump(exclude_none=True, mode="json") without 100k pydantic round trips.
                row = StorageEvent(
                    id=d["id"],
                    invocation_id=d["invocation_id"],
                    session_id=session.id,
                    app_name=session.app_name,
                    user_id=session.user_id,
                    timestamp=_utc_naive(d["timestamp"]),
                    event_data=d,
                )
                rows.append({c: getattr(row, c) for c in cols})
            async with svc.db_engine.begin() as conn:  # type: ignore[union-attr]
                await conn.execute(insert(table), rows)
        return session, n, time.perf_counter() - t0

    async def fill_sessions(self, user_id: str, n: int) -> float:
        from sqlalchemy import insert

        svc = self.svc
        t0 = time.perf_counter()
        # Through the API once, so the app/user state rows exist exactly as ADK creates them.
        await svc.create_session(app_name=workload.APP, user_id=user_id)  # type: ignore[union-attr]
        table = self._schema().StorageSession.__table__
        now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        rows = [
            {"app_name": workload.APP, "user_id": user_id, "id": str(uuid.uuid4()), "state": {},
             "create_time": now, "update_time": now + dt.timedelta(microseconds=i)}
            for i in range(n - 1)
        ]
        async with svc.db_engine.begin() as conn:  # type: ignore[union-attr]
            for lo in range(0, len(rows), 5000):
                await conn.execute(insert(table), rows[lo : lo + 5000])
        return time.perf_counter() - t0


def _utc_naive(ts: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(ts, tz=dt.UTC).replace(tzinfo=None)


class _OnScratchPostgres:
    """Mixin: run the adapter it precedes on a scratch PostgreSQL database (made and dropped)."""

    def __init__(self, tmpdir: str) -> None:
        super().__init__(tmpdir)  # type: ignore[call-arg]
        self.pg = PgScratch(os.environ[PG_ENV])

    def url(self) -> str:
        return self.pg.url

    async def open(self) -> BaseSessionService:
        await self.pg.create()
        return await super().open()  # type: ignore[misc]

    async def close(self) -> None:
        await super().close()  # type: ignore[misc]
        await self.pg.drop()

    def db_bytes(self) -> int | None:
        return self.pg.size


class AdkDatabasePgAdapter(_OnScratchPostgres, AdkDatabaseAdapter):
    name = "adk-db-pg"
    label = "ADK DatabaseSessionService (postgresql+asyncpg)"


# ------------------------------------------------------------------------------------------------
# ADK SqliteSessionService


class AdkSqliteAdapter(Adapter):
    name = "adk-sqlite"
    label = "ADK SqliteSessionService"
    fill_events_method = "bulk INSERT of the rows its append_event writes"
    fill_sessions_method = "bulk INSERT of the rows its create_session writes"

    async def open(self) -> BaseSessionService:
        from google.adk.sessions.sqlite_session_service import SqliteSessionService

        self.db_path = os.path.join(self.tmpdir, "adk_sqlite.db")
        self.svc = SqliteSessionService(self.db_path)
        return self.svc

    def _bulk(self, sql: str, rows: list[tuple]) -> None:
        con = sqlite3.connect(self.db_path)  # type: ignore[arg-type]
        try:
            with con:
                con.executemany(sql, rows)
        finally:
            con.close()

    async def fill_events(self, session: Session, n: int, *, cap_s: float) -> tuple[Session, int, float]:
        t0 = time.perf_counter()
        dicts = workload.bulk_event_dicts(n, start_ts=time.time() - n * 0.001 - 1)
        rows = [
            (d["id"], session.app_name, session.user_id, session.id, d["invocation_id"],
             d["timestamp"], json.dumps(d, separators=(",", ":")))
            for d in dicts
        ]
        await asyncio.to_thread(
            self._bulk,
            "INSERT INTO events (id, app_name, user_id, session_id, invocation_id, timestamp,"
            " event_data) VALUES (?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
        return session, n, time.perf_counter() - t0

    async def fill_sessions(self, user_id: str, n: int) -> float:
        t0 = time.perf_counter()
        await self.svc.create_session(app_name=workload.APP, user_id=user_id)  # type: ignore[union-attr]
        now = time.time()
        rows = [(workload.APP, user_id, str(uuid.uuid4()), "{}", now, now + i * 1e-6) for i in range(n - 1)]
        await asyncio.to_thread(
            self._bulk,
            "INSERT INTO sessions (app_name, user_id, id, state, create_time, update_time)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            rows,
        )
        return time.perf_counter() - t0


# ------------------------------------------------------------------------------------------------
# ADK InMemorySessionService


class AdkMemoryAdapter(Adapter):
    name = "adk-memory"
    label = "ADK InMemorySessionService"
    fill_events_method = "extend its stored session's event list (its append_event is O(n) per call)"

    async def open(self) -> BaseSessionService:
        from google.adk.sessions import InMemorySessionService

        self.svc = InMemorySessionService()
        return self.svc

    async def fill_events(self, session: Session, n: int, *, cap_s: float) -> tuple[Session, int, float]:
        t0 = time.perf_counter()
        dicts = workload.bulk_event_dicts(n, start_ts=time.time() - n * 0.001 - 1)
        stored = self.svc.sessions[session.app_name][session.user_id][session.id]  # type: ignore[union-attr]
        stored.events.extend(Event.model_validate(d) for d in dicts)
        return session, n, time.perf_counter() - t0


# ------------------------------------------------------------------------------------------------
# Ours


def ours_available() -> tuple[bool, str]:
    try:
        from multi_agent import DatabaseSessionService  # noqa: F401
    except Exception as exc:  # noqa: BLE001 - report any import failure verbatim
        return False, f"`from multi_agent import DatabaseSessionService` failed: {type(exc).__name__}: {exc}"
    return True, ""


class OursSqliteAdapter(Adapter):
    name = "ours-sqlite"
    label = "ours multi_agent.DatabaseSessionService (sqlite+aiosqlite)"
    is_ours = True
    #: how the (d) big session is filled: "append" (public append_event, capped) or "import"
    #: (public export_session/import_session: 1,000 events appended, exported, tiled, imported).
    big_fill = "append"

    def url(self) -> str:
        self.db_path = os.path.join(self.tmpdir, "ours.db")
        return f"sqlite+aiosqlite:///{self.db_path}"

    async def open(self) -> BaseSessionService:
        from multi_agent import DatabaseSessionService

        self.svc = DatabaseSessionService(db_url=self.url())
        return self.svc

    async def fill_big(self, session: Session, n: int, *, cap_s: float) -> tuple[Session, int, float, str]:
        """Fills the (d) session; returns (session, events, seconds, method)."""
        if self.big_fill == "import":
            why = await self._can_import(n)
            if not why:
                s, secs = await self.fill_by_import(session, n)
                return s, n, secs, IMPORT_METHOD
            method = f"append_event (import fill unavailable: {why})"
        else:
            method = "append_event"
        s, written, secs = await self.fill_events(session, n, cap_s=cap_s)
        return s, written, secs, method

    async def _can_import(self, n: int) -> str:
        if not callable(getattr(self.svc, "import_session", None)) or not callable(
                getattr(self.svc, "export_session", None)):
            return "the service has no export_session/import_session"
        return ""

    async def fill_by_import(self, session: Session, n: int) -> tuple[Session, float]:
        """Appends ``k`` events to a template session through ``append_event``, exports it, tiles
        the document to ``n`` events (fresh event ids, shifted seq/timestamps, renamed runs chained
        parent→child) and imports it in place of ``session`` through ``import_session``."""
        svc: Any = self.svc
        t0 = time.perf_counter()
        k = 1000 if n % 1000 == 0 and n >= 1000 else n
        tpl = await svc.create_session(app_name=session.app_name, user_id="bench-template")
        tpl, _, _ = await Adapter.fill_events(self, tpl, k, cap_s=1e9)
        doc = await svc.export_session(app_name=tpl.app_name, user_id=tpl.user_id, session_id=tpl.id)
        await svc.delete_session(app_name=tpl.app_name, user_id=tpl.user_id, session_id=tpl.id)
        big, last_id = tile_export(doc, n, k)
        await svc.delete_session(app_name=session.app_name, user_id=session.user_id, session_id=session.id)
        await svc.import_session(big, app_name=session.app_name, user_id=session.user_id,
                                 session_id=session.id)
        from google.adk.sessions.base_session_service import GetSessionConfig

        got = await svc.get_session(app_name=session.app_name, user_id=session.user_id,
                                    session_id=session.id, config=GetSessionConfig(num_recent_events=1))
        if got is None or not got.events or got.events[-1].id != last_id:
            raise AssertionError("imported big session does not end with the last tiled event")
        return got, time.perf_counter() - t0


IMPORT_METHOD = ("its public import_session (1,000 events appended through append_event, exported, "
                 "tiled to size with fresh ids, imported in one transaction)")


def tile_export(doc: dict, n: int, k: int) -> tuple[dict, str]:
    """An export document of ``k`` events tiled to ``n`` events; returns (doc, last event id)."""
    import copy

    ev0 = sorted(doc["events"], key=lambda e: e["seq"])
    runs0 = sorted(doc["runs"], key=lambda r: r["first_seq"])
    assert len(ev0) == k and all(e["on_path"] for e in ev0), "template must be one linear path"
    span = ev0[-1]["timestamp"] - ev0[0]["timestamp"] + 0.001
    events: list[dict] = []
    runs: list[dict] = []
    prev_last_run = None
    for j in range((n + k - 1) // k):
        suffix = f"-c{j:05d}"
        rename = {r["run_id"]: r["run_id"] + suffix for r in runs0}
        for r in runs0:
            if r["first_seq"] + j * k > n:
                continue
            nr = dict(r)
            nr["run_id"] = rename[r["run_id"]]
            nr["parent_run_id"] = rename[r["parent_run_id"]] if r["parent_run_id"] else prev_last_run
            nr["first_seq"] = r["first_seq"] + j * k
            if nr.get("started_at") is not None:
                nr["started_at"] = r["started_at"] + j * span
            runs.append(nr)
        for e in ev0:
            if len(events) >= n:
                break
            ne = dict(e)
            ne["seq"] = e["seq"] + j * k
            ne["id"] = str(uuid.uuid4())
            ne["run_id"] = rename.get(e["run_id"], e["run_id"])
            ne["invocation_id"] = rename.get(e["invocation_id"], e["invocation_id"] + suffix)
            ne["timestamp"] = e["timestamp"] + j * span
            body = dict(e["event"])
            body.update(id=ne["id"], invocation_id=ne["invocation_id"], timestamp=ne["timestamp"])
            ne["event"] = body
            events.append(ne)
        prev_last_run = runs[-1]["run_id"]
    out = copy.deepcopy({k_: v for k_, v in doc.items() if k_ not in ("events", "runs")})
    sess = out["session"]
    sess["last_seq"] = n
    sess["event_count"] = n
    sess["revision"] = sess.get("revision", k) * n // k
    sess["head_run_id"] = runs[-1]["run_id"]
    sess["update_time"] = events[-1]["timestamp"]
    out["runs"] = runs
    out["events"] = events
    return out, events[-1]["id"]


class OursPgAdapter(_OnScratchPostgres, OursSqliteAdapter):
    name = "ours-pg"
    label = "ours multi_agent.DatabaseSessionService (postgresql+asyncpg)"
    big_fill = "import"  # ~200-400 appends/s here: 100k through append_event would take 5-9 minutes


# ------------------------------------------------------------------------------------------------
# PostgreSQL scratch database


class PgScratch:
    """A throw-away database on the server named by MULTI_AGENT_BENCH_PG_URL.

    Creates ``bench_<random>`` (needs CREATEDB) and drops it afterwards. Without the privilege the
    URL's own database is used as is, and a note says so.
    """

    def __init__(self, base_url: str) -> None:
        from sqlalchemy.engine import make_url

        self.base = make_url(base_url)
        self.name = f"bench_{uuid.uuid4().hex[:12]}"
        self.url = self.base.set(database=self.name).render_as_string(hide_password=False)
        self.created = False
        self.size: int | None = None
        self.note = ""

    def _dsn(self, database: str | None) -> dict:
        b = self.base
        return {"user": b.username, "password": b.password, "host": b.host or "localhost",
                "port": b.port or 5432, "database": database or b.database or "postgres"}

    async def create(self) -> None:
        import asyncpg

        conn = await asyncpg.connect(**self._dsn(None))
        try:
            await conn.execute(f'CREATE DATABASE "{self.name}"')
            self.created = True
        except Exception as exc:  # noqa: BLE001
            self.url = self.base.render_as_string(hide_password=False)
            self.note = f"could not CREATE DATABASE ({exc}); used the URL's database as is"
        finally:
            await conn.close()

    async def drop(self) -> None:
        import asyncpg

        if not self.created:
            return
        conn = await asyncpg.connect(**self._dsn(None))
        try:
            self.size = await conn.fetchval("SELECT pg_database_size($1)", self.name)
            await conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
        finally:
            await conn.close()


ADAPTERS: dict[str, type[Adapter]] = {
    a.name: a
    for a in (AdkDatabaseAdapter, AdkSqliteAdapter, AdkMemoryAdapter, OursSqliteAdapter,
              OursPgAdapter, AdkDatabasePgAdapter)
}
