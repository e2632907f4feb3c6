"""Forgetting a user (issue 18): ``DatabaseSessionService.forget_user``.

Each test runs on a SQLite file, SQLite in memory and PostgreSQL (``store`` fixture). The user
to forget has several sessions (events, runs), ``user:`` and session state, long memory (with
semantic vectors when the ``[semantic]`` extra and its model are installed) and an API token; a
second user has the same and must keep all of it. After the forget, every table of the
database (all columns, as text; SQLite's FTS5 shadow tables included) is scanned for the user's
id, a phrase only they said and their full-text scope token, and on a SQLite file so are the
raw bytes of the database file and its ``-wal``.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from multi_agent import DatabaseSessionService
from multi_agent.memory import DatabaseMemoryService
from multi_agent.store.forget import ForgetReport
from tests.helpers import text_event
from tests.lifecycle._forget_util import (
    ALL_TABLES,
    checkpoint,
    counts,
    file_hits,
    needles_of,
    new_user,
    populate,
    sqlite_file,
    table_hits,
)

from multi_agent.store import api_tokens as tokens_module


@pytest.fixture
async def memory(
    store: DatabaseSessionService, request: pytest.FixtureRequest
) -> AsyncIterator[DatabaseMemoryService]:
    """Hybrid (vectors) when the model is installed, else full-text only; under
    MULTI_AGENT_REQUIRE_SEMANTIC=1 a missing model fails (the ``minilm`` fixture)."""
    try:
        embedder = request.getfixturevalue("minilm")
    except pytest.skip.Exception:
        embedder = None
    service = (DatabaseMemoryService(store, search="hybrid", embedder=embedder)
               if embedder is not None else DatabaseMemoryService(store, search="fulltext"))
    try:
        yield service
    finally:
        await service.close()


async def test_forgotten_user_leaves_no_trace(
    store: DatabaseSessionService, memory: DatabaseMemoryService, app_name: str,
    tmp_path: Path,
) -> None:
    gone, gone_phrase = new_user("ann")
    kept, kept_phrase = new_user("bob")
    await populate(store, memory, app_name, gone, gone_phrase)
    await populate(store, memory, app_name, kept, kept_phrase, sessions=2)
    # app: state belongs to the app and stays.
    app_session = await store.create_session(app_name=app_name, user_id=kept,
                                             state={"app:motd": "hello"})
    await store.append_event(app_session, text_event("hi", author="user"))
    tokens = tokens_module.TokenFile(tmp_path / "tokens.json")
    tokens.add(gone)
    tokens.add(gone)
    kept_token, _ = tokens.add(kept)

    before = await counts(store, app_name, gone)
    kept_before = await counts(store, app_name, kept)
    assert before["ma_sessions"] == 3 and before["ma_events"] == 18 and before["ma_runs"] == 9
    assert before["ma_user_states"] == 1 and before["ma_memory_entries"] == 18
    assert before["ma_memory_sessions"] == 3
    if memory.embedder is not None:  # semantic search installed: one vector per entry
        assert before["ma_memory_vectors"] == 18
    needles = needles_of(app_name, gone, gone_phrase)
    kept_needles = needles_of(app_name, kept, kept_phrase)
    # The scans see what is there: every needle of both users, before.
    hits = {n for _, n in await table_hits(store, needles + kept_needles)}
    assert hits == {n.lower() for n in needles + kept_needles}
    db = sqlite_file(store)
    if db is not None:
        checkpoint(db)
        assert {n for _, n in file_hits(db, needles)} == set(needles)

    started = time.perf_counter()
    report = await store.forget_user(app_name=app_name, user_id=gone,
                                     tokens_file=tmp_path / "tokens.json")
    elapsed = time.perf_counter() - started

    assert isinstance(report, ForgetReport) and report.found and not report.dry_run
    assert report.rows == before  # what was there is what the report says went
    assert report.tokens == 2
    assert report.wal_emptied is (True if db is not None else None)
    assert report.vacuumed is (True if db is not None else None)
    assert await counts(store, app_name, gone) == dict.fromkeys(ALL_TABLES, 0)
    assert await table_hits(store, needles) == set()
    if db is not None:
        assert file_hits(db, needles) == set(), f"found in the raw bytes after {elapsed:.3f} s"
    # The other user keeps every row, their memory, their token; app: state stays.
    assert await counts(store, app_name, kept) == kept_before
    assert {n for _, n in await table_hits(store, kept_needles)} == {
        n.lower() for n in kept_needles}
    found = await memory.search_memory(app_name=app_name, user_id=kept, query=kept_phrase)
    assert found.memories
    assert (await memory.search_memory(app_name=app_name, user_id=gone,
                                       query=gone_phrase)).memories == []
    assert await store.get_app_state(app_name=app_name) == {"motd": "hello"}
    assert [r.user for r in tokens.records()] == [kept]
    assert tokens.verify(kept_token) == kept
    assert (await store.list_sessions(app_name=app_name, user_id=gone)).sessions == []
    assert await store.get_user_state(app_name=app_name, user_id=gone) == {}


async def test_unknown_user_changes_nothing(
    store: DatabaseSessionService, memory: DatabaseMemoryService, app_name: str,
    tmp_path: Path,
) -> None:
    kept, phrase = new_user("bob")
    await populate(store, memory, app_name, kept, phrase, sessions=1)
    tokens = tokens_module.TokenFile(tmp_path / "tokens.json")
    tokens.add(kept)
    before = await counts(store, app_name, kept)
    # A user id that is also a prefix of bob's token id must not revoke that token.
    prefix = tokens.records()[0].id[:2]
    for who in ("nobody", prefix):
        report = await store.forget_user(app_name=app_name, user_id=who,
                                         tokens_file=tmp_path / "tokens.json")
        assert not report.found and report.tokens == 0
        assert report.rows == dict.fromkeys(ALL_TABLES, 0)
    # Another app's user of the same id keeps everything too.
    report = await store.forget_user(app_name=app_name + "_other", user_id=kept)
    assert not report.found and report.tokens is None
    assert await counts(store, app_name, kept) == before
    assert [r.user for r in tokens.records()] == [kept]


async def test_dry_run_counts_and_removes_nothing(
    store: DatabaseSessionService, memory: DatabaseMemoryService, app_name: str,
) -> None:
    user, phrase = new_user("ann")
    await populate(store, memory, app_name, user, phrase, sessions=2)
    before = await counts(store, app_name, user)
    report = await store.forget_user(app_name=app_name, user_id=user, dry_run=True)
    assert report.dry_run and report.rows == before and report.wal_emptied is None
    assert report.vacuumed is None
    assert await counts(store, app_name, user) == before
    assert report.to_dict()["rows"] == before


async def test_the_forgotten_user_can_start_afresh(
    store: DatabaseSessionService, memory: DatabaseMemoryService, app_name: str,
) -> None:
    """A forget is a point in time: the same id can be used again, from nothing."""
    user, phrase = new_user("ann")
    await populate(store, memory, app_name, user, phrase, sessions=1)
    report = await store.forget_user(app_name=app_name, user_id=user, vacuum=False)
    assert report.found and report.vacuumed is (False if sqlite_file(store) else None)
    session = await store.create_session(app_name=app_name, user_id=user,
                                         session_id=f"{user}-s0")
    assert session.state == {} and session.events == []
    await store.append_event(session, text_event("a new start", author="user"))
    await memory.add_session_to_memory(session)
    found = await memory.search_memory(app_name=app_name, user_id=user, query="start")
    assert [m.content.parts[0].text for m in found.memories] == ["a new start"]
    found = await memory.search_memory(app_name=app_name, user_id=user, query=phrase)
    assert [m.content.parts[0].text for m in found.memories] in ([], ["a new start"])


async def test_an_injected_aiosqlite_engine_is_erased_too(tmp_path: Path) -> None:
    """The file behind an injected ``AsyncEngine`` is vacuumed and checkpointed as well."""
    from sqlalchemy.ext.asyncio import create_async_engine

    path = tmp_path / "injected.db"
    engine = create_async_engine(f"sqlite+aiosqlite:///{path}")
    try:
        async with DatabaseSessionService(db_engine=engine) as store:
            memory = DatabaseMemoryService(store, search="fulltext")
            gone, phrase = new_user("ann")
            kept, kept_phrase = new_user("bob")
            await populate(store, memory, "app", gone, phrase, sessions=2)
            await populate(store, memory, "app", kept, kept_phrase, sessions=1)
            report = await store.forget_user(app_name="app", user_id=gone)
            assert report.wal_emptied is True and report.vacuumed is True
            assert await table_hits(store, needles_of("app", gone, phrase)) == set()
            assert file_hits(path, needles_of("app", gone, phrase)) == set()
            assert {n for _, n in file_hits(path, [kept_phrase])} == {kept_phrase}
            await memory.close()
    finally:
        await engine.dispose()


async def test_a_long_reader_and_a_failed_vacuum_are_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A reader in another connection keeps the -wal (``wal_emptied`` False, after a short
    wait); a VACUUM that fails (here: made to say the disk is full) is reported, not raised:
    the rows are deleted either way."""
    import sqlite3

    from multi_agent.store.dialects import sqlite as dialect

    path = tmp_path / "data.db"
    monkeypatch.setattr(dialect, "CHECKPOINT_WAIT_MS", 200)
    async with DatabaseSessionService(f"sqlite+aiosqlite:///{path}") as store:
        memory = DatabaseMemoryService(store, search="fulltext")
        for name in ("ann", "bob"):
            await populate(store, memory, "app", name, new_user(name)[1], sessions=1)
        reader = sqlite3.connect(path, isolation_level=None)
        reader.execute("BEGIN")
        reader.execute("SELECT count(*) FROM ma_events").fetchall()
        try:
            report = await store.forget_user(app_name="app", user_id="ann")
        finally:
            reader.close()
        assert report.rows["ma_events"] == 6
        assert report.vacuumed is True and report.wal_emptied is False

        real_connect = sqlite3.connect

        class FullDisk:
            def __init__(self, raw: sqlite3.Connection) -> None:
                self.raw = raw

            def execute(self, statement: str, *args: object) -> sqlite3.Cursor:
                if statement == "VACUUM":
                    raise sqlite3.OperationalError("database or disk is full")
                return self.raw.execute(statement, *args)

            def close(self) -> None:
                self.raw.close()

        monkeypatch.setattr(dialect.sqlite3, "connect",
                            lambda *a, **k: FullDisk(real_connect(*a, **k)))
        report = await store.forget_user(app_name="app", user_id="bob")
        monkeypatch.undo()
        assert report.rows["ma_events"] == 6 and report.vacuumed is False
        assert report.vacuum_error == "OperationalError: database or disk is full"
        assert report.wal_emptied is True
        assert await counts(store, "app", "bob") == dict.fromkeys(ALL_TABLES, 0)
        await memory.close()
