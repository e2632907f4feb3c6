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
        now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
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
    return dt.datetime.fromtimestamp(ts, tz=dt.timezone.utc).replace(tzinfo=None)


class AdkDatabasePgAdapter(AdkDatabaseAdapter):
    name = "adk-db-pg"
    label = "ADK DatabaseSessionService (postgresql+asyncpg)"

    def __init__(self, tmpdir: str) -> None:
        super().__init__(tmpdir)
        self.pg = PgScratch(os.environ[PG_ENV])

    def url(self) -> str:
        return self.pg.url

    async def open(self) -> BaseSessionService:
        await self.pg.create()
        return await super().open()

    async def close(self) -> None:
        await super().close()
        await self.pg.drop()

    def db_bytes(self) -> int | None:
        return self.pg.size


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

    def url(self) -> str:
        self.db_path = os.path.join(self.tmpdir, "ours.db")
        return f"sqlite+aiosqlite:///{self.db_path}"

    async def open(self) -> BaseSessionService:
        from multi_agent import DatabaseSessionService

        self.svc = DatabaseSessionService(db_url=self.url())
        return self.svc


class OursPgAdapter(OursSqliteAdapter):
    name = "ours-pg"
    label = "ours multi_agent.DatabaseSessionService (postgresql+asyncpg)"

    def __init__(self, tmpdir: str) -> None:
        super().__init__(tmpdir)
        self.pg = PgScratch(os.environ[PG_ENV])

    def url(self) -> str:
        return self.pg.url

    async def open(self) -> BaseSessionService:
        await self.pg.create()
        return await super().open()

    async def close(self) -> None:
        await super().close()
        await self.pg.drop()

    def db_bytes(self) -> int | None:
        return self.pg.size


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
