"""Full disk and bad files: each gives a clear error naming the cause and the fix, and leaves
the data that was there intact.

* a database that cannot grow (SQLite ``max_page_count``), on an existing and on a new file;
* a read-only file and an unwritable directory, as an unprivileged user (the tests run as
  root, which ignores permissions: ``_unprivileged.py`` drops to ``nobody`` first);
* corrupt files: garbage bytes, a valid header over garbage pages, a real database truncated
  at several points, a damaged row written by another program;
* a database from a newer schema version, or with an unreadable version;
* paths that do not exist, or that are a directory.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import sqlite3
import subprocess
import tempfile
from pathlib import Path

import pytest
from sqlalchemy import text

from multi_agent import (
    DatabaseSessionService,
    DatabaseUnavailableError,
    SchemaVersionError,
    StoreError,
)
from multi_agent.store import schema
from tests.helpers import text_event

from ._util import PY, ROOT, sqlite_check, table_counts


def url_of(path: Path | str) -> str:
    return f"sqlite+aiosqlite:///{path}"


async def make_db(path: Path, sessions: int = 3, events: int = 20, size: int = 300) -> dict:
    """A database with a few users' sessions; returns {(user, id): Session} as stored."""
    out = {}
    async with DatabaseSessionService(url_of(path)) as store:
        for k in range(sessions):
            s = await store.create_session(
                app_name="app", user_id=f"user{k}", state={"k": k, "user:u": k, "app:a": 1}
            )
            for j in range(events):
                await store.append_event(
                    s, text_event(f"{k}/{j} " + "x" * (size * (j % 7)), state={"j": j})
                )
            out[(f"user{k}", s.id)] = s
    return out


async def assert_intact(path: Path, sessions: dict) -> None:
    """Every session reads back exactly as it was stored, and the file is sound."""
    sqlite_check(path)
    async with DatabaseSessionService(url_of(path)) as store:
        for (user, sid), s in sessions.items():
            got = await store.get_session(app_name="app", user_id=user, session_id=sid)
            assert got == s, f"{user}/{sid} changed"


# ---------------------------------------------------------------------------------------------
# A database that cannot grow


async def test_full_database_refuses_cleanly_and_keeps_data(tmp_path: Path) -> None:
    path = tmp_path / "full.db"
    before = await make_db(path, sessions=2, events=10)
    pages = sqlite3.connect(path).execute("PRAGMA page_count").fetchone()[0]
    async with DatabaseSessionService(
        url_of(path), sqlite_pragmas={"max_page_count": pages + 8}
    ) as store:
        (user, sid), _ = next(iter(before.items()))
        session = await store.get_session(app_name="app", user_id=user, session_id=sid)
        acked = list(session.events)
        user_state = await store.get_user_state(app_name="app", user_id=user)
        failed = None
        for n in range(200):
            event = text_event(f"filler {n} " + "y" * 6000, state={"n": n, "user:n": n})
            try:
                await store.append_event(session, event)
            except DatabaseUnavailableError as exc:
                failed = (event, exc)
                break
            acked.append(event)
            user_state["n"] = n
        assert failed is not None, "the database grew past max_page_count"
        event, exc = failed
        assert exc.cause == "disk_full", exc
        message = str(exc)
        assert "full" in message and "max_page_count" in message and "free space" in message
        assert "Nothing was written" in message
        # Nothing of the failed append: not in the copy, not in storage, state untouched.
        assert [e.id for e in session.events] == [e.id for e in acked]
        got = await store.get_session(app_name="app", user_id=user, session_id=sid)
        assert got == session
        assert await store.get_user_state(app_name="app", user_id=user) == user_state
        # The full database still serves reads.
        assert len((await store.list_sessions(app_name="app")).sessions) == 2
    # Room again (no limit): the refused event can be appended now; nothing else changed.
    async with DatabaseSessionService(url_of(path)) as store:
        await store.append_event(got, event)
        final = await store.get_session(app_name="app", user_id=user, session_id=sid)
        assert [e.id for e in final.events] == [e.id for e in acked] + [event.id]
    del before[(user, sid)]
    await assert_intact(path, before)


async def test_full_database_on_first_use_leaves_no_half_made_schema(tmp_path: Path) -> None:
    path = tmp_path / "tiny.db"
    async with DatabaseSessionService(url_of(path), sqlite_pragmas={"max_page_count": 3}) as s:
        with pytest.raises(DatabaseUnavailableError) as info:
            await s.create_session(app_name="app", user_id="u")
        assert info.value.cause == "disk_full"
    # Without the limit the same file opens as a new store (no half-made tables refused as
    # "another program's").
    async with DatabaseSessionService(url_of(path)) as store:
        s = await store.create_session(app_name="app", user_id="u", state={"k": 1})
        got = await store.get_session(app_name="app", user_id="u", session_id=s.id)
        assert got.state == {"k": 1}
    sqlite_check(path)


# ---------------------------------------------------------------------------------------------
# Read-only files


def run_unprivileged(path: Path, user: str, sid: str) -> dict[str, dict]:
    proc = subprocess.run(
        [PY, "-m", "tests.reliability._unprivileged", str(path), "app", user, sid],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = [json.loads(x) for x in proc.stdout.splitlines()]
    assert lines[0]["uid"] != 0 or os.getuid() != 0, "did not drop root"
    return {x["call"]: x for x in lines[1:]}


@pytest.fixture
def shared_dir():
    """A directory other users can enter (pytest's tmp_path is private to root)."""
    d = Path(tempfile.mkdtemp(prefix="ma_ro_", dir="/tmp"))
    d.chmod(0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.mark.parametrize(
    ("file_mode", "dir_mode"),
    [(0o644, 0o755), (0o444, 0o777), (0o666, 0o755)],
    ids=["file-and-dir-not-writable", "file-read-only", "dir-not-writable"],
)
async def test_read_only_database(shared_dir: Path, file_mode: int, dir_mode: int) -> None:
    path = shared_dir / "ro.db"
    before = await make_db(path, sessions=2, events=5)
    bytes_before = path.read_bytes()
    (user, sid), _ = next(iter(before.items()))
    path.chmod(file_mode)
    shared_dir.chmod(dir_mode)
    try:
        results = run_unprivileged(path, user, sid)
    finally:
        shared_dir.chmod(0o755)
        path.chmod(0o644)
    for call in ("append_event", "create_session"):
        r = results[call]
        assert not r["ok"], f"{call} wrote to a read-only database"
        assert r["error"] == "DatabaseUnavailableError" and r["cause"] == "read_only", r
        assert "read-only" in r["message"] and "write permission" in r["message"], r
    read = results["get_session"]
    # Reading may work or be refused; if refused, it is the same clear error.
    if read["ok"]:
        assert read["state"] == before[(user, sid)].state
    else:
        assert read["cause"] == "read_only", read
    assert path.read_bytes() == bytes_before
    for leftover in shared_dir.glob("ro.db-*"):  # -shm/-wal made by the reader
        leftover.unlink()
    await assert_intact(path, before)


async def test_new_database_in_unwritable_directory(shared_dir: Path) -> None:
    shared_dir.chmod(0o755)  # nobody may enter, not create
    path = shared_dir / "new.db"
    results = run_unprivileged(path, "u", "s")
    for call in ("get_session", "create_session"):
        r = results[call]
        assert not r["ok"] and r["error"] == "DatabaseUnavailableError", r
        # The directory exists: the cause is permissions, not a missing path.
        assert r["cause"] == "read_only", r
        assert "write permission" in r["message"] or "permission" in r["message"], r
    assert not path.exists()


# ---------------------------------------------------------------------------------------------
# Corrupt files


async def every_call(store: DatabaseSessionService, sessions: dict) -> list[tuple[str, object]]:
    """Runs every entry point; returns (call, result or exception)."""
    from google.adk.sessions.session import Session

    out: list[tuple[str, object]] = []

    async def attempt(name, coro_fn):
        try:
            out.append((name, await coro_fn()))
        except Exception as exc:  # noqa: BLE001 - judged by the caller
            out.append((name, exc))

    await attempt("list_sessions", lambda: store.list_sessions(app_name="app"))
    for (user, sid), s in sessions.items():
        await attempt(f"get_session {user}", lambda u=user, i=sid: store.get_session(
            app_name="app", user_id=u, session_id=i))
        await attempt(f"get_user_state {user}", lambda u=user: store.get_user_state(
            app_name="app", user_id=u))
    (user, sid), s = next(iter(sessions.items()))
    copy = Session.model_validate(s.model_dump())
    copy._storage_update_marker = s._storage_update_marker
    await attempt("append_event", lambda: store.append_event(copy, text_event("more")))
    await attempt("create_session", lambda: store.create_session(app_name="app", user_id="new"))
    await attempt("delete_session", lambda: store.delete_session(
        app_name="app", user_id=user, session_id=sid))
    return out


def assert_corrupt_or_correct(results, sessions) -> int:
    """Each call either failed with the clear 'corrupt' error or returned correct data."""
    refused = 0
    for name, result in results:
        if isinstance(result, BaseException):
            assert isinstance(result, DatabaseUnavailableError), (
                f"{name} raised {type(result).__name__}: {result}"
            )
            assert result.cause == "corrupt", f"{name}: {result.cause}: {result}"
            message = str(result)
            assert "corrupt" in message and "backup" in message and "integrity_check" in message
            refused += 1
        elif name.startswith("get_session"):
            user = name.split()[1]
            expected = next(s for (u, _), s in sessions.items() if u == user)
            assert result == expected, f"{name} returned wrong data from a damaged file"
    return refused


def damage_garbage(path: Path, data: bytes) -> None:
    path.write_bytes(random.Random(1).randbytes(len(data)))


def damage_pages(path: Path, data: bytes) -> None:
    # Keep page 1 (header and schema root), overwrite everything after it.
    path.write_bytes(data[:4096] + random.Random(2).randbytes(len(data) - 4096))


def damage_middle(path: Path, data: bytes) -> None:
    mid = len(data) // 2
    path.write_bytes(data[:mid] + b"\xff" * 8192 + data[mid + 8192:])


def truncate(fraction: float):
    def damage(path: Path, data: bytes) -> None:
        path.write_bytes(data[: int(len(data) * fraction) + 123])  # not on a page boundary

    damage.__name__ = f"truncate_{fraction}"
    return damage


@pytest.mark.parametrize(
    "damage",
    [damage_garbage, damage_pages, damage_middle, truncate(0.02), truncate(0.5), truncate(0.95)],
    ids=lambda d: d.__name__,
)
async def test_corrupt_file(tmp_path: Path, damage) -> None:
    good = tmp_path / "good.db"
    sessions = await make_db(good, sessions=3, events=25)
    data = good.read_bytes()
    bad = tmp_path / "bad.db"
    damage(bad, data)
    damaged = bad.read_bytes()
    async with DatabaseSessionService(url_of(bad)) as store:
        results = await every_call(store, sessions)
    refused = assert_corrupt_or_correct(results, sessions)
    assert refused > 0, "no call noticed the damage"
    writes = [r for n, r in results if n in ("append_event", "create_session", "delete_session")]
    if all(isinstance(r, BaseException) for r in writes):
        # Refused everything that writes: then the store did not touch the damaged file
        # (no "repair", no fresh schema laid over it).
        assert bad.read_bytes() == damaged
    # The undamaged original is of course still fine.
    await assert_intact(good, sessions)


async def test_damaged_row_gives_a_clear_error(tmp_path: Path) -> None:
    """A row another program (or a disk) damaged: SQLite is fine, our JSON in it is not."""
    path = tmp_path / "rows.db"
    sessions = await make_db(path, sessions=2, events=3)
    (user, sid), (other_user, other_sid) = list(sessions)
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("UPDATE ma_sessions SET state = '{\"k\": ' WHERE id = ?", (sid,))
        conn.execute("UPDATE ma_events SET event_data = 'not json' WHERE session_id = ? "
                     "AND seq = 2", (sid,))
    conn.close()
    async with DatabaseSessionService(url_of(path)) as store:
        with pytest.raises(StoreError) as info:
            await store.get_session(app_name="app", user_id=user, session_id=sid)
        assert isinstance(info.value, DatabaseUnavailableError), repr(info.value)
        assert info.value.cause == "corrupt" and "backup" in str(info.value)
        # The other sessions are unaffected.
        assert await store.get_session(
            app_name="app", user_id=other_user, session_id=other_sid
        ) == sessions[(other_user, other_sid)]


# ---------------------------------------------------------------------------------------------
# Schema versions


async def _set_version(url: str, value: str) -> None:
    async with DatabaseSessionService(url) as store:  # backend.run skips the version check

        def bump(conn):
            conn.execute(text("UPDATE ma_meta SET value = :v WHERE key = 'schema_version'"),
                         {"v": value})

        await store.backend.run(bump, write=True)


@pytest.mark.parametrize("backend", ["sqlite_file", "postgres"], indirect=True)
@pytest.mark.parametrize("version", ["newer", "unreadable"])
async def test_foreign_schema_version_refused_everywhere(
    db_url: str, app_name: str, version: str
) -> None:
    from google.adk.sessions.session import Session

    async with DatabaseSessionService(db_url) as store:
        s = await store.create_session(app_name=app_name, user_id="u", state={"k": 1})
        await store.append_event(s, text_event("kept", state={"user:x": 1}))
        counts = await table_counts(store)
    value = str(schema.SCHEMA_VERSION + 1) if version == "newer" else "banana"
    await _set_version(db_url, value)
    path = db_url.split("///", 1)[1] if db_url.startswith("sqlite") else None
    before = Path(path).read_bytes() if path else None

    async with DatabaseSessionService(db_url) as newer:
        ghost = Session(id=s.id, app_name=app_name, user_id="u", events=list(s.events))
        calls = {
            "get_session": lambda: newer.get_session(app_name=app_name, user_id="u",
                                                     session_id=s.id),
            "list_sessions": lambda: newer.list_sessions(app_name=app_name),
            "get_user_state": lambda: newer.get_user_state(app_name=app_name, user_id="u"),
            "create_session": lambda: newer.create_session(app_name=app_name, user_id="u2"),
            "append_event": lambda: newer.append_event(ghost, text_event("x", state={"k": 9})),
            "delete_session": lambda: newer.delete_session(app_name=app_name, user_id="u",
                                                           session_id=s.id),
        }
        for name, call in calls.items():
            with pytest.raises(SchemaVersionError) as info:
                await call()
            message = str(info.value)
            if version == "newer":
                assert info.value.found == schema.SCHEMA_VERSION + 1, name
                assert f"schema version {schema.SCHEMA_VERSION + 1}" in message
                assert "Upgrade multi-agent" in message and "Nothing was changed" in message
            else:
                assert "backup" in message, message
    if path:
        assert Path(path).read_bytes() == before, "a refused database was modified"
    await _set_version(db_url, str(schema.SCHEMA_VERSION))
    async with DatabaseSessionService(db_url) as store:
        assert await table_counts(store) == counts
        got = await store.get_session(app_name=app_name, user_id="u", session_id=s.id)
        assert got == s


# ---------------------------------------------------------------------------------------------
# Paths


async def test_directory_removed_after_start_then_restored(tmp_path: Path) -> None:
    d = tmp_path / "data"
    d.mkdir()
    store = DatabaseSessionService(url_of(d / "store.db"))
    try:
        d.rmdir()
        with pytest.raises(DatabaseUnavailableError) as info:
            await store.create_session(app_name="app", user_id="u")
        assert info.value.cause == "no_such_path"
        assert "does not exist" in str(info.value) and str(d) in str(info.value)
        d.mkdir()
        s = await store.create_session(app_name="app", user_id="u", state={"k": 1})
        got = await store.get_session(app_name="app", user_id="u", session_id=s.id)
        assert got.state == {"k": 1}
    finally:
        await store.close()


async def test_path_is_a_directory(tmp_path: Path) -> None:
    (tmp_path / "dir.db").mkdir()
    async with DatabaseSessionService(url_of(tmp_path / "dir.db")) as store:
        with pytest.raises(DatabaseUnavailableError) as info:
            await store.list_sessions(app_name="app")
    assert info.value.cause == "no_such_path", info.value
    assert "file" in str(info.value)
    assert (tmp_path / "dir.db").is_dir() and not any((tmp_path / "dir.db").iterdir())


async def test_missing_relative_directory(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DatabaseUnavailableError) as info:
        DatabaseSessionService("sqlite+aiosqlite:///./no/such/dir/store.db")
    assert info.value.cause == "no_such_path"
    assert "does not exist" in str(info.value) and "Create it" in str(info.value)
    assert not (tmp_path / "no").exists()
