"""A PostgreSQL server that stops answering (SIGSTOP: connections stay open, nothing replies).

Calls fail with ``DatabaseUnavailableError(cause="timeout")`` after the configured statement
timeout (here ``?command_timeout=2``; the pool's liveness check can take one more timeout
before the statement's own), instead of waiting forever; after SIGCONT the same service works
again, and an append that timed out is stored once when retried. A pool with no free
connection says so (``cause="pool_exhausted"``).
"""

from __future__ import annotations

import asyncio
import time

import pytest

from multi_agent import DatabaseSessionService, DatabaseUnavailableError
from tests.conftest import fresh_pg_database
from tests.helpers import text_event

from ._util import PgServer

TIMEOUT = 2.0


async def test_a_stalled_server_gives_an_error_in_time_and_recovers() -> None:
    server = PgServer()
    url = await fresh_pg_database()
    service = DatabaseSessionService(f"{url}?command_timeout={TIMEOUT:g}")
    try:
        session = await service.create_session(app_name="a", user_id="u")
        await service.append_event(session, text_event("before", author="user"))
        stopped = server.pause()
        try:
            for call in ("get_session", "append_event"):
                t0 = time.monotonic()
                with pytest.raises(DatabaseUnavailableError) as failed:
                    if call == "get_session":
                        await asyncio.wait_for(service.get_session(
                            app_name="a", user_id="u", session_id=session.id), 60)
                    else:
                        pending = text_event("during", author="user")
                        await asyncio.wait_for(service.append_event(session, pending), 60)
                waited = time.monotonic() - t0
                assert failed.value.cause == "timeout", failed.value
                assert "did not answer in time" in str(failed.value)
                assert waited < 3 * TIMEOUT + 2, f"{call} waited {waited:.1f} s"
        finally:
            server.resume(stopped)
        # the same service object works again; the timed-out append, retried, is stored once
        fresh = await service.get_session(app_name="a", user_id="u", session_id=session.id)
        await service.append_event(fresh, pending)
        await service.append_event(fresh, pending)
        stored = await service.get_session(app_name="a", user_id="u", session_id=session.id)
        assert [e.content.parts[0].text for e in stored.events] == ["before", "during"]
    finally:
        await service.close()


async def test_many_calls_at_once_on_a_stalled_server_fail_in_time() -> None:
    """Calls queued for the pool wait no longer than the configured timeout for a connection
    (the pool's own default is 30 s: 60 calls with command_timeout=3 waited up to 33 s)."""
    server = PgServer()
    url = await fresh_pg_database()
    service = DatabaseSessionService(
        f"{url}?command_timeout={TIMEOUT:g}", pool_size=2, max_overflow=0)
    try:
        sessions = [await service.create_session(app_name="a", user_id="u", session_id=f"s{i}")
                    for i in range(4)]
        stopped = server.pause()
        try:
            async def call(i: int) -> tuple[float, BaseException | None]:
                t0 = time.monotonic()
                try:
                    if i % 4:
                        await asyncio.wait_for(service.get_session(
                            app_name="a", user_id="u", session_id=f"s{i % 4}"), 60)
                    else:
                        await asyncio.wait_for(service.append_event(
                            sessions[i // 4], text_event(f"during {i}", author="user")), 60)
                except Exception as exc:  # noqa: BLE001  (each is checked below)
                    return time.monotonic() - t0, exc
                return time.monotonic() - t0, None

            results = await asyncio.gather(*(call(i) for i in range(16)))
        finally:
            server.resume(stopped)
        for waited, exc in results:
            assert isinstance(exc, DatabaseUnavailableError), exc
            assert exc.cause in ("timeout", "pool_exhausted"), exc
            assert waited < 4 * TIMEOUT + 2, f"waited {waited:.1f} s"
        assert any(exc.cause == "pool_exhausted" for _, exc in results)
        # the same service works again (a timed-out append may have been stored: the server
        # may run what it had been sent; a retry would be a no-op, as above)
        for i in range(4):
            got = await service.get_session(app_name="a", user_id="u", session_id=f"s{i}")
            assert got is not None and len(got.events) <= 1
    finally:
        await service.close()


async def test_no_free_connection_says_so() -> None:
    url = await fresh_pg_database()
    service = DatabaseSessionService(url, pool_size=1, max_overflow=0, pool_timeout=0.5)
    try:
        await service.create_session(app_name="a", user_id="u", session_id="s")
        engine = service.backend.async_engine
        async with engine.connect():  # the pool's only connection, held
            with pytest.raises(DatabaseUnavailableError) as failed:
                await service.get_session(app_name="a", user_id="u", session_id="s")
        assert failed.value.cause == "pool_exhausted"
        assert "pool_size" in str(failed.value)
        assert await service.get_session(app_name="a", user_id="u", session_id="s")
    finally:
        await service.close()
