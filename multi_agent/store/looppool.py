"""One connection pool per event loop, under one engine (PostgreSQL).

An asyncpg connection belongs to the event loop it was opened on. SQLAlchemy's
``AsyncAdaptedQueuePool`` keeps connections from every loop in one queue, so a service used
from a second loop gets the first loop's connections back: once that loop is closed, a call
fails with "Event loop is closed", and the connection it broke then fails every later call with
"another operation is in progress" (measured before this pool: every call after the first
failed, for good). That is what ADK's own sync ``Runner.run()`` does on every call: it runs the
turn with ``asyncio.run`` on a new thread, so a new loop each turn. So do programs that call
``asyncio.run`` per request from synchronous code (Flask, Django views, scripts, notebooks).

``LoopPool`` is the engine's pool: it hands each event loop connections of its own loop's pool
(an ``AsyncAdaptedQueuePool`` made on the loop's first checkout, with the same settings:
``pool_size`` and ``max_overflow`` are per loop). The engine stays one object (its event
listeners, instrumentation and dialect are shared). When a new loop's pool is made, the pools of
loops that have been closed are dropped: their connections cannot be closed through a loop any
more, so each is shut down on its socket (the server ends its backend at once) and terminated.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from typing import Any

from sqlalchemy.pool import AsyncAdaptedQueuePool

__all__ = ["LoopPool", "drop_driver_connection"]


def drop_driver_connection(driver: Any) -> None:
    """Ends an asyncpg connection whose event loop is closed, without that loop.

    asyncpg's ``terminate()`` marks it aborted, then fails to schedule the transport's clean-up
    on the closed loop (that error is ignored); the socket is shut down first, so the server
    sees the connection end now rather than when the collector frees it."""
    transport = getattr(driver, "_transport", None)
    sock = transport.get_extra_info("socket") if transport is not None else None
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:  # already closed or reset
            pass
    try:
        driver.terminate()
    except RuntimeError:  # "Event loop is closed": it is marked aborted all the same
        pass


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


class LoopPool(AsyncAdaptedQueuePool):
    """See the module docstring. Its own queue stays empty: every checkout goes to the calling
    loop's pool, and connections go back to the pool they came from."""

    def __init__(self, creator: Any, **kw: Any) -> None:
        super().__init__(creator, **kw)
        self._loops: dict[asyncio.AbstractEventLoop | None, AsyncAdaptedQueuePool] = {}
        self._loops_lock = threading.Lock()  # several threads may each run a loop

    def _loop_pool(self, create: bool = True) -> AsyncAdaptedQueuePool | None:
        loop = _running_loop()
        pool = self._loops.get(loop)
        if pool is None and create:
            with self._loops_lock:
                pool = self._loops.get(loop)
                if pool is None:
                    for closed in [lp for lp in self._loops if lp is not None and lp.is_closed()]:
                        _drop(self._loops.pop(closed))
                    pool = self._loops[loop] = AsyncAdaptedQueuePool(
                        self._creator,
                        pool_size=self._pool.maxsize,
                        max_overflow=self._max_overflow,
                        pre_ping=self._pre_ping,
                        use_lifo=self._pool.use_lifo,
                        timeout=self._timeout,
                        recycle=self._recycle,
                        echo=self.echo,
                        logging_name=self._orig_logging_name,
                        reset_on_return=self._reset_on_return,
                        _dispatch=self.dispatch,
                        dialect=self._dialect,
                    )
                    pool._invalidate_time = self._invalidate_time
        return pool

    def _do_get(self) -> Any:
        pool = self._loop_pool()
        assert pool is not None
        return pool._do_get()

    def _invalidate(self, connection: Any, exception: BaseException | None = None,
                    _checkin: bool = True) -> None:
        # A dead connection found (a server restart): every connection of this engine opened
        # before now is recycled at its next checkout, in every loop's pool.
        super()._invalidate(connection, exception, _checkin)
        for pool in list(self._loops.values()):
            pool._invalidate_time = max(pool._invalidate_time, self._invalidate_time)

    def dispose(self) -> None:
        """Closes the calling loop's idle connections (and those of no loop), drops closed
        loops' pools; another running loop's pool is left to that loop (its connections can
        only be closed there) and dropped from here."""
        here = _running_loop()
        with self._loops_lock:
            pools, self._loops = self._loops, {}
        for loop, pool in pools.items():
            if loop is None or loop is here:
                pool.dispose()
            elif loop.is_closed():
                _drop(pool)
        super().dispose()

    def _here(self, name: str) -> Any:
        """``name()`` of the calling loop's pool (this one's own, empty, when it has none)."""
        pool = self._loop_pool(create=False)
        return getattr(AsyncAdaptedQueuePool, name)(self if pool is None else pool)

    def status(self) -> str:
        return str(self._here("status"))

    def checkedin(self) -> int:
        return int(self._here("checkedin"))

    def overflow(self) -> int:
        return int(self._here("overflow"))

    def checkedout(self) -> int:
        return int(self._here("checkedout"))


def _drop(pool: AsyncAdaptedQueuePool) -> None:
    """Ends the idle connections of a closed loop's pool without that loop."""
    while True:
        try:
            record = pool._pool.get(False)
        except Exception:  # sqlalchemy.util.queue.Empty
            return
        adapted = getattr(record, "dbapi_connection", None)
        driver = getattr(adapted, "driver_connection", None)
        if driver is not None:
            try:
                drop_driver_connection(driver)
            except Exception:  # the connection is unusable either way
                pass
        record.dbapi_connection = None
