"""The SQLite file deleted or replaced under a running service.

SQLite does not notice either: its open descriptors keep reading and writing the old inode, so
after ``rm data.db`` the next appends are acknowledged into a file that no other process can
see, and after ``mv backup.db data.db`` (or ``os.replace``) into the old file, while the old
file's ``-wal`` stays beside the path and is replayed over the restored file by the next
process that opens it (measured with SQLite 3.40.1: the restore is undone; see
``Backend._retire``). The backend records the file's (st_dev, st_ino) when its first
connection opens it and compares the path's before every transaction; on a mismatch it raises
``DatabaseUnavailableError`` (cause ``deleted`` / ``replaced``), empties the old file's
``-wal``, closes its connections and fails every later call the same way.

Checked here, on real files and, where it matters, real processes:

* delete: the next append fails, nothing is acknowledged after the delete, every later call
  fails, the old file's descriptors are closed, ``close()`` works;
* replace: the next append and get_session fail; a new process sees exactly the replacement
  file — while the old service is still open, after it closed, after it was SIGKILLed (having
  noticed), and when it was closed without noticing; appends racing the change;
* a process SIGKILLed *before* it noticed leaves a full ``-wal``, which SQLite replays over the
  new file: what is guaranteed is that removing the ``-wal``/``-shm`` (as the error says)
  restores exactly the new file;
* a restart, checkpoints (automatic, TRUNCATE, VACUUM) and other processes closing do not trip
  the check.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import shutil
import signal
import sqlite3
import subprocess
from pathlib import Path

import pytest

from multi_agent import DatabaseSessionService, DatabaseUnavailableError
from tests.helpers import text_event

from ._util import PY, ROOT

DUMP = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1])
print(conn.execute("PRAGMA integrity_check").fetchall())
for line in conn.iterdump():
    print(line)
"""


def url_of(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"


def dump(path: Path) -> list[str]:
    """The whole database as SQL, read by a new process (plain sqlite3)."""
    assert path.exists(), f"{path} does not exist"
    out = subprocess.run([PY, "-c", DUMP, str(path)], capture_output=True, text=True, check=True)
    return out.stdout.splitlines()


def wal_size(path: Path) -> int:
    wal = Path(f"{path}-wal")
    return wal.stat().st_size if wal.exists() else -1


def open_fds_to(path: Path) -> list[str]:
    """This process's descriptors on ``path`` (also once it was unlinked: "... (deleted)")."""
    found = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target in (str(path), f"{path} (deleted)"):
            found.append(target)
    return found


async def make_db(path: Path, *, app: str, sessions: int = 2, events: int = 10) -> dict:
    """A database written through the public API; returns {session id: [event ids]}."""
    out = {}
    async with DatabaseSessionService(url_of(path)) as store:
        for k in range(sessions):
            session = await store.create_session(app_name=app, user_id="u", state={"k": k})
            for j in range(events):
                await store.append_event(
                    session, text_event(f"{app} {k}/{j} " + "r" * 300, state={"j": j})
                )
            out[session.id] = [e.id for e in session.events]
    return out


async def contents(store: DatabaseSessionService, app: str) -> dict:
    listed = await store.list_sessions(app_name=app, user_id="u")
    out = {}
    for s in listed.sessions:
        got = await store.get_session(app_name=app, user_id="u", session_id=s.id)
        assert got is not None
        out[s.id] = [e.id for e in got.events]
    return out


async def old_service(path: Path, events: int = 30):
    """A service on ``path`` with a session of ``events`` events (their pages in the -wal)."""
    store = DatabaseSessionService(url_of(path))
    session = await store.create_session(app_name="old", user_id="u")
    for i in range(events):
        await store.append_event(session, text_event(f"old {i} " + "o" * 500, state={"i": i}))
    assert wal_size(path) > 0
    return store, session


async def replacement(tmp_path: Path) -> tuple[Path, dict, list[str]]:
    """A valid multi-agent database with other content, on the same file system."""
    other = tmp_path / "restore" / "backup.db"
    other.parent.mkdir()
    restored = await make_db(other, app="restored")
    assert wal_size(other) == -1  # closed: the whole database is in the one file
    return other, restored, dump(other)


def assert_lost(exc: DatabaseUnavailableError, cause: str, path: Path) -> None:
    assert exc.cause == cause
    message = str(exc)
    assert str(path) in message
    assert ("was deleted" if cause == "deleted" else "was replaced") in message
    assert "Nothing was written" in message
    assert "Restart the program" in message
    assert "-wal" in message and "stop every process" in message


class Child:
    """``_identity_child`` in its own process."""

    def __init__(self, url: str) -> None:
        self.proc = subprocess.Popen(
            [PY, "-m", "tests.reliability._identity_child", url],
            cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        assert self.readline() == "READY"

    def readline(self) -> str:
        line = self.proc.stdout.readline()
        assert line, "the child service died"
        return line.strip()

    def ask(self, cmd: str) -> str:
        self.proc.stdin.write(cmd + "\n")
        self.proc.stdin.flush()
        return self.readline()

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        assert self.proc.wait(timeout=10) == -signal.SIGKILL

    def quit(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.write("QUIT\n")
            self.proc.stdin.flush()
            self.proc.wait(timeout=10)


# ---------------------------------------------------------------------------------------------
# Deleted


async def test_deleted_file_fails_every_later_call(tmp_path: Path) -> None:
    path = tmp_path / "data.db"
    store, session = await old_service(path)
    before = [e.id for e in session.events]
    os.unlink(path)

    event = text_event("after the delete")
    with pytest.raises(DatabaseUnavailableError) as info:
        await store.append_event(session, event)
    assert_lost(info.value, "deleted", path)
    assert [e.id for e in session.events] == before  # not applied to the session either
    # Every later call fails the same way, reads too; the old file is closed already.
    for call in (
        store.append_event(session, text_event("again")),
        store.get_session(app_name="old", user_id="u", session_id=session.id),
        store.create_session(app_name="old", user_id="u"),
        store.list_sessions(app_name="old", user_id="u"),
    ):
        with pytest.raises(DatabaseUnavailableError) as info:
            await call
        assert info.value.cause == "deleted"
    assert open_fds_to(path) == []
    assert wal_size(path) == 0  # emptied before the connections closed
    await store.close()
    await store.close()

    # A new service at the path starts an empty database; the old -wal does not come back.
    async with DatabaseSessionService(url_of(path)) as fresh:
        assert await contents(fresh, "old") == {}
        new = await fresh.create_session(app_name="old", user_id="u")
        await fresh.append_event(new, text_event("new file"))
    async with DatabaseSessionService(url_of(path)) as again:
        assert await contents(again, "old") == {new.id: [new.events[0].id]}


# ---------------------------------------------------------------------------------------------
# Replaced


async def test_replaced_file_new_process_sees_exactly_the_replacement(tmp_path: Path) -> None:
    path = tmp_path / "data.db"
    other, restored, expected = await replacement(tmp_path)
    store, session = await old_service(path)
    before = [e.id for e in session.events]
    os.replace(other, path)

    with pytest.raises(DatabaseUnavailableError) as info:
        await store.append_event(session, text_event("after the replacement"))
    assert_lost(info.value, "replaced", path)
    assert [e.id for e in session.events] == before
    with pytest.raises(DatabaseUnavailableError) as info:
        await store.get_session(app_name="old", user_id="u", session_id=session.id)
    assert info.value.cause == "replaced"
    assert open_fds_to(path) == []
    assert wal_size(path) == 0

    assert dump(path) == expected  # a new process, the old service still open
    await store.close()
    assert dump(path) == expected  # and after it closed
    async with DatabaseSessionService(url_of(path)) as fresh:
        assert await contents(fresh, "restored") == restored
        assert await contents(fresh, "old") == {}


async def test_replaced_while_idle_then_closed(tmp_path: Path) -> None:
    """Restore, then a graceful restart with no call in between: close() notices."""
    path = tmp_path / "data.db"
    other, _, expected = await replacement(tmp_path)
    store, _ = await old_service(path)
    os.replace(other, path)
    await store.close()
    assert dump(path) == expected


async def test_replaced_then_old_process_sigkilled(tmp_path: Path) -> None:
    path = tmp_path / "data.db"
    other, restored, expected = await replacement(tmp_path)
    child = Child(url_of(path))
    try:
        assert child.ask("SETUP 30").startswith("OK ")
        assert wal_size(path) > 0
        os.replace(other, path)
        assert child.ask("APPEND") == "ERR replaced"
        assert child.ask("GET") == "ERR replaced"
        child.kill()
    finally:
        child.quit()
    assert wal_size(path) == 0
    assert dump(path) == expected
    async with DatabaseSessionService(url_of(path)) as fresh:
        assert await contents(fresh, "restored") == restored


async def test_sigkilled_before_noticing_leaves_a_wal_that_must_be_removed(
    tmp_path: Path,
) -> None:
    """What SQLite does when the old process dies before its next call (nothing we can do).

    The -wal by the path still holds the old file's pages; a process opening the path replays
    them over the new file. What is guaranteed: removing the -wal and -shm, as the error
    message says, leaves exactly the new file.
    """
    path = tmp_path / "data.db"
    other, _, expected = await replacement(tmp_path)
    child = Child(url_of(path))
    try:
        assert child.ask("SETUP 30").startswith("OK ")
        os.replace(other, path)
        child.kill()
    finally:
        child.quit()
    assert wal_size(path) > 0

    aside = tmp_path / "aside"
    aside.mkdir()
    for suffix in ("", "-wal", "-shm"):
        shutil.copy(f"{path}{suffix}", aside / f"data.db{suffix}")
    assert dump(aside / "data.db") != expected, (
        "SQLite no longer replays a stale -wal over a replaced file: the warnings about it in "
        "backend._lose/_retire can go"
    )

    os.unlink(f"{path}-wal")
    os.unlink(f"{path}-shm")
    assert dump(path) == expected


# ---------------------------------------------------------------------------------------------
# Appends racing the change


@pytest.mark.parametrize("cause", ["deleted", "replaced"])
async def test_appends_racing_the_change(tmp_path: Path, cause: str) -> None:
    """4 appenders at once; every append begun after the change fails."""
    path = tmp_path / "data.db"
    other, _, expected = await replacement(tmp_path)
    store = DatabaseSessionService(url_of(path))
    sessions = [await store.create_session(app_name="old", user_id="u") for _ in range(4)]
    ticks = itertools.count()  # one event loop: a total order of starts and the change
    results: list[tuple[int, str]] = []
    warmed_up = asyncio.Event()

    async def appender(session) -> None:
        while True:
            start = next(ticks)
            try:
                await store.append_event(session, text_event("racing " + "x" * 300))
                results.append((start, "ok"))
                if len(results) >= 100:
                    warmed_up.set()
            except DatabaseUnavailableError as exc:
                results.append((start, exc.cause))
                return

    tasks = [asyncio.create_task(appender(s)) for s in sessions]
    await asyncio.wait_for(warmed_up.wait(), timeout=30)
    changed = next(ticks)
    if cause == "deleted":
        os.unlink(path)
    else:
        os.replace(other, path)
    await asyncio.wait_for(asyncio.gather(*tasks), timeout=30)

    after = [r for start, r in results if start > changed]
    # With group commit the four appends queued at the change may be the ones that fail (their
    # batch checks the file after it): then none begins after it.
    assert "ok" not in after, "an append begun after the change was acknowledged"
    assert [r for _, r in results if r != "ok"] == [cause] * 4
    assert open_fds_to(path) == []
    await store.close()
    if cause == "replaced":
        assert dump(path) == expected
    else:
        assert not path.exists()


# ---------------------------------------------------------------------------------------------
# What must not trip the check


async def test_restart_checkpoints_and_other_processes_do_not_trip_it(tmp_path: Path) -> None:
    path = tmp_path / "data.db"
    url = url_of(path)
    store = DatabaseSessionService(url)
    session = await store.create_session(app_name="app", user_id="u")
    for i in range(10):
        await store.append_event(session, text_event(f"first life {i}"))
    await store.close()
    assert wal_size(path) == -1  # a normal close checkpoints and removes the -wal

    store = DatabaseSessionService(url)  # a plain restart on the same path
    session = await store.get_session(app_name="app", user_id="u", session_id=session.id)
    assert session is not None and len(session.events) == 10
    # Enough appends for SQLite's automatic checkpoints (every 1,000 pages) to run and the
    # log to restart several times.
    for i in range(400):
        await store.append_event(session, text_event(f"second life {i} " + "y" * 2000))
    outside = sqlite3.connect(path, isolation_level=None)
    assert outside.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0] == 0
    assert wal_size(path) == 0
    await store.append_event(session, text_event("after TRUNCATE"))
    outside.execute("VACUUM")  # rewrites the file's pages in place: the same inode
    outside.close()
    await store.append_event(session, text_event("after VACUUM"))
    # Another process opens the file, writes, and closes (its close cannot remove our -wal).
    child = Child(url)
    try:
        assert child.ask("SETUP 3").startswith("OK ")
        assert child.ask("CLOSE") == "OK"
    finally:
        child.quit()
    await store.append_event(session, text_event("after the other process"))
    loaded = await store.get_session(app_name="app", user_id="u", session_id=session.id)
    assert loaded is not None and len(loaded.events) == 10 + 400 + 3
    await store.close()
    async with DatabaseSessionService(url) as fresh:
        again = await fresh.get_session(app_name="app", user_id="u", session_id=session.id)
        assert [e.id for e in again.events] == [e.id for e in session.events]
        assert len((await fresh.list_sessions(app_name="old", user_id="u")).sessions) == 1


def test_sqlite_own_moved_error_is_translated(tmp_path: Path) -> None:
    """In rollback-journal mode SQLite itself refuses (SQLITE_READONLY_DBMOVED)."""
    path = tmp_path / "a.db"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("CREATE TABLE t (x)")
    conn.execute("INSERT INTO t VALUES (1)")
    sqlite3.connect(tmp_path / "b.db").close()
    os.replace(tmp_path / "b.db", path)
    with pytest.raises(sqlite3.OperationalError) as info:
        conn.execute("INSERT INTO t VALUES (2)")
    conn.close()
    store = DatabaseSessionService(url_of(path))
    translated = store.backend.translate(info.value)
    assert translated.cause == "replaced"
    assert "renamed or replaced" in str(translated) and "Nothing was written" in str(translated)
    asyncio.run(store.close())


# A long write: an import


@pytest.mark.parametrize("cause", ["deleted", "replaced"])
async def test_an_import_during_which_the_file_changes_fails(
    tmp_path: Path, cause: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An import is one transaction of thousands of rows; the file deleted or replaced while
    it writes must fail it (before, it was acknowledged into the old inode: 'Imported ...,
    6000 events', and the session was nowhere)."""
    from multi_agent.store.transfer import replay
    from tests.runs.test_import_hostile import write_export

    path = tmp_path / "data.db"
    other, _, expected = await replacement(tmp_path)
    await make_db(path, app="old", sessions=1, events=2)
    export = tmp_path / "big.json"
    write_export(export, turns=400, text_kb=2)
    flush, flushes = replay._Import._flush, []

    def changing_flush(self) -> None:  # the change, as the first batch is written
        flushes.append(1)
        if len(flushes) == 1:
            if cause == "deleted":
                os.unlink(path)
            else:
                os.replace(other, path)
        flush(self)

    monkeypatch.setattr(replay._Import, "_flush", changing_flush)
    store = DatabaseSessionService(url_of(path))
    try:
        with pytest.raises(DatabaseUnavailableError) as failed:
            await store.import_session_file(export, session_id="imported")
        assert_lost(failed.value, cause, path)
        assert len(flushes) >= 2  # the import went on writing after the change
    finally:
        await store.close()
    if cause == "replaced":
        assert dump(path) == expected
    else:
        assert not path.exists()
