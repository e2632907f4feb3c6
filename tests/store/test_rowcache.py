"""PostgreSQL's one-statement append (``multi_agent/store/rowcache.py``): a lone append on rows
this process wrote last is one compare-and-swap statement in autocommit; rows changed by anyone
else, in any column the append read, make it store nothing and the append run the usual way.

Real PostgreSQL, two services (two processes' caches) on one database, raw SQL for a writer that
changes a row without bumping its revision.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import event, text

from multi_agent import DatabaseSessionService
from multi_agent.store import sealing
from tests.helpers import text_event

pytestmark = pytest.mark.parametrize("backend", ["postgres"], indirect=True)


def _stats(store: DatabaseSessionService) -> Any:
    stats = store.backend.writer_stats()
    assert stats is not None
    return stats


class Traffic:
    """Statements and transactions sent through a service's engine."""

    def __init__(self, store: DatabaseSessionService) -> None:
        engine = store.backend.async_engine
        assert engine is not None
        self.statements: list[str] = []
        self.begins = 0
        event.listen(engine.sync_engine, "before_cursor_execute", self._statement)
        event.listen(engine.sync_engine, "begin", self._begin)

    def _statement(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        self.statements.append(statement)

    def _begin(self, conn: Any) -> None:
        self.begins += 1

    def reset(self) -> None:
        self.statements.clear()
        self.begins = 0


async def _raw(store: DatabaseSessionService, sql: str, **params: Any) -> list[Any]:
    engine = store.backend.async_engine
    assert engine is not None
    async with engine.begin() as conn:
        result = await conn.execute(text(sql), params)
        return list(result.all()) if result.returns_rows else []


async def test_a_lone_append_on_rows_it_wrote_is_one_statement(
    db_url: str, app_name: str
) -> None:
    """After the first append (the usual way: it fills the cache), each append is one
    statement and no transaction of SQLAlchemy's, with the session's, the user's and the app's
    rows, a new run's row and the human messages' target in it; all of it is stored."""
    async with DatabaseSessionService(db_url) as store:
        traffic = Traffic(store)  # (before any connection: they see the listeners)
        s = await store.create_session(app_name=app_name, user_id="u", state={"user:seen": 0})
        await store.append_event(s, text_event("first", state={"turn": 0, "user:n": 0,
                                                                "app:n": 0}))
        fast_before = _stats(store).fast
        for i in range(1, 9):
            inv = f"inv-{i // 2}"  # a new run every second event
            traffic.reset()
            if i % 4 == 0:  # a human message, then an agent answers it (target backfilled)
                await store.append_event(s, text_event(f"q{i}", author="user",
                                                       invocation_id=inv))
            await store.append_event(s, text_event(
                f"e{i}", invocation_id=inv,
                state={"turn": i, "user:n": i, **({"app:n": i} if i % 3 == 0 else {})}))
            assert traffic.begins == 0, traffic.statements
            assert len(traffic.statements) == (2 if i % 4 == 0 else 1), traffic.statements
        assert _stats(store).fast - fast_before == 10  # 8 agent events + 2 human ones
        assert _stats(store).declined == 0

        got = await store.get_session(app_name=app_name, user_id="u", session_id=s.id)
        assert got is not None
        texts = [e.content.parts[0].text for e in got.events]
        assert texts == ["first", "e1", "e2", "e3", "q4", "e4", "e5", "e6", "e7", "q8", "e8"]
        assert got.state["turn"] == 8 and got.state["user:n"] == 8 and got.state["app:n"] == 6
        assert got.state["user:seen"] == 0
        runs = await store.list_runs(app_name=app_name, user_id="u", session_id=s.id)
        assert [r.run_id for r in runs if r.kind == "invocation"][-5:] == [
            "inv-0", "inv-1", "inv-2", "inv-3", "inv-4"]
        targets = await _raw(
            store, "SELECT target FROM ma_events WHERE app_name = :a AND message_type = "
            "'human' ORDER BY seq", a=app_name)
        assert [t for (t,) in targets] == ["agent", "agent"]
        # The session's copy is current: the next append goes on from it.
        assert s.state["turn"] == 8 and s.events[-1].content.parts[0].text == "e8"


async def test_a_user_row_another_process_wrote_declines_and_keeps_both(
    db_url: str, app_name: str
) -> None:
    """Two services (two processes' caches), two sessions of one user: the user row one of
    them cached is behind once the other writes it; its next append stores nothing, runs the
    usual way, and both writes to the user's state are kept."""
    async with DatabaseSessionService(db_url) as a, DatabaseSessionService(db_url) as b:
        sa = await a.create_session(app_name=app_name, user_id="u")
        sb = await b.create_session(app_name=app_name, user_id="u")
        await a.append_event(sa, text_event("a1", state={"user:a": 1}))
        await a.append_event(sa, text_event("a2", state={"user:a": 2}))
        assert _stats(a).fast == 1
        await b.append_event(sb, text_event("b1", state={"user:b": 1}))
        await a.append_event(sa, text_event("a3", state={"user:a": 3}))
        assert _stats(a).declined == 1 and _stats(a).fast == 1
        await a.append_event(sa, text_event("a4", state={"user:a": 4}))  # cached again
        assert _stats(a).fast == 2
        assert await a.get_user_state(app_name=app_name, user_id="u") == {"a": 4, "b": 1}
        got = await b.get_session(app_name=app_name, user_id="u", session_id=sa.id)
        assert got is not None
        assert [e.content.parts[0].text for e in got.events] == ["a1", "a2", "a3", "a4"]


async def test_a_column_changed_without_a_new_revision_declines(
    db_url: str, app_name: str
) -> None:
    """Every column the append read is compared, not the revision alone: a writer that changes
    the session's state and leaves the revision as it was (raw SQL here) makes the append
    run the usual way, which merges into the stored state instead of overwriting it."""
    async with DatabaseSessionService(db_url) as store:
        s = await store.create_session(app_name=app_name, user_id="u")
        await store.append_event(s, text_event("one", state={"mine": 1}))
        await _raw(store, "UPDATE ma_sessions SET state = (state::jsonb || '{\"theirs\": 2}')"
                          "::text WHERE app_name = :a", a=app_name)
        await store.append_event(s, text_event("two", state={"mine": 3}))
        assert _stats(store).declined == 1
        got = await store.get_session(app_name=app_name, user_id="u", session_id=s.id)
        assert got is not None
        assert got.state == {"mine": 3, "theirs": 2}


async def test_the_same_event_appended_twice_is_stored_once(
    db_url: str, app_name: str
) -> None:
    """A retry of an acknowledged append (its event id is stored): the statement stores
    nothing (the unique index), the usual way answers it as the idempotent retry it is."""
    async with DatabaseSessionService(db_url) as store:
        s = await store.create_session(app_name=app_name, user_id="u")
        await store.append_event(s, text_event("one"))
        again = text_event("two")
        await store.append_event(s, again)
        assert _stats(store).fast == 1
        await store.append_event(s, again)
        assert _stats(store).declined == 1
        got = await store.get_session(app_name=app_name, user_id="u", session_id=s.id)
        assert got is not None
        assert [e.content.parts[0].text for e in got.events] == ["one", "two"]


async def test_an_encrypted_store_appends_the_usual_way(db_url: str, app_name: str) -> None:
    """Sealed values differ at every write: an encrypted store never compares them."""
    async with DatabaseSessionService(db_url, encryption_key=sealing.generate_key()) as store:
        s = await store.create_session(app_name=app_name, user_id="u")
        for i in range(3):
            await store.append_event(s, text_event(f"e{i}", state={"turn": i}))
        assert _stats(store).fast == 0 and _stats(store).declined == 0
        got = await store.get_session(app_name=app_name, user_id="u", session_id=s.id)
        assert got is not None and got.state == {"turn": 2} and len(got.events) == 3


async def test_a_killed_connection_under_the_one_statement_append_goes_the_usual_way(
    db_url: str, app_name: str
) -> None:
    """The one-statement append runs on the driver's own connection (no SQLAlchemy around
    it): when the server has ended that connection (a restart, ``pg_terminate_backend``), the
    append stores nothing there, the connection is thrown away, and the append runs the usual
    way on a new one; nothing is lost or stored twice, and the next append is one statement
    again."""
    async with DatabaseSessionService(db_url) as store:
        s = await store.create_session(app_name=app_name, user_id="u")
        await store.append_event(s, text_event("one", state={"user:n": 1}))
        await store.append_event(s, text_event("two", state={"user:n": 2}))
        assert (_stats(store).fast, _stats(store).declined) == (1, 0)
        killed = await _raw(store, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                   "WHERE datname = current_database() AND pid <> pg_backend_pid()")
        assert killed, "no connection of the store's to end"
        await store.append_event(s, text_event("three", state={"user:n": 3}))
        assert _stats(store).declined == 1
        await store.append_event(s, text_event("four", state={"user:n": 4}))
        assert _stats(store).fast == 2
        got = await store.get_session(app_name=app_name, user_id="u", session_id=s.id)
        assert got is not None
        assert [e.content.parts[0].text for e in got.events] == ["one", "two", "three", "four"]
        assert got.state["user:n"] == 4


async def test_any_other_driver_error_on_the_one_statement_append_goes_the_usual_way(
    db_url: str, app_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An error from the driver other than a row not as cached or a timeout (injected here:
    the server refusing the statement) is never raised as asyncpg's own: the append runs the
    usual way, which stores it (or raises what it must in the store's terms), once."""
    import asyncpg

    from multi_agent.store import sql

    async with DatabaseSessionService(db_url) as store:
        s = await store.create_session(app_name=app_name, user_id="u")
        await store.append_event(s, text_event("one"))
        real_send = sql.Prepared.send
        refused: list[str] = []

        async def refuse_once(self: Any, conn: Any, driver: Any, params: Any) -> None:
            if not refused:
                refused.append(self.name)
                raise asyncpg.exceptions.InternalServerError("injected")
            await real_send(self, conn, driver, params)

        monkeypatch.setattr(sql.Prepared, "send", refuse_once)
        await store.append_event(s, text_event("two"))
        assert refused and _stats(store).declined == 1 and _stats(store).fast == 0
        await store.append_event(s, text_event("three"))
        assert _stats(store).fast == 1
        got = await store.get_session(app_name=app_name, user_id="u", session_id=s.id)
        assert got is not None
        assert [e.content.parts[0].text for e in got.events] == ["one", "two", "three"]
