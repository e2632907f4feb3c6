"""Moving from ADK's own session services: a database they wrote is refused with the way out
(nothing written), and ``multi-agent import-adk`` copies its sessions in.

Real ADK services write the data (``DatabaseSessionService`` on a SQLite file and on
PostgreSQL, ``SqliteSessionService``: ``adk web``'s ``.adk/session.db``); the real CLI and the
library function copy it; what the store then returns is compared with what ADK returns.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from google.adk.sessions.database_session_service import (
    DatabaseSessionService as AdkDatabaseSessionService,
)
from google.adk.sessions.sqlite_session_service import SqliteSessionService

from multi_agent import DatabaseSessionService
from multi_agent.errors import AdkTablesError
from multi_agent.store.adk_import import import_adk_sessions
from tests.conftest import fresh_pg_database
from tests.helpers import text_event

CLI = str(Path(sys.executable).with_name("multi-agent"))
APP = "notes_app"


async def _write_with_adk(adk: Any) -> list[tuple[str, str]]:
    """Two users, three sessions: state at creation in every scope, events with deltas (one
    with a temp: key), one user: key written by two sessions. Returns the (user, id) pairs."""
    made = []
    a1 = await adk.create_session(app_name=APP, user_id="ann", session_id="a1",
                                  state={"topic": "stocks", "user:name": "Ann",
                                         "app:motd": "hello"})
    await adk.append_event(a1, text_event("first", timestamp=1000.0, state={"step": 1}))
    await adk.append_event(a1, text_event("second", author="agent", timestamp=1001.0,
                                          state={"step": 2, "user:theme": "dark",
                                                 "temp:scratch": 9}))
    made.append(("ann", "a1"))
    a2 = await adk.create_session(app_name=APP, user_id="ann", session_id="a2")
    await adk.append_event(a2, text_event("other", timestamp=1002.0,
                                          state={"user:theme": "light", "app:count": 3}))
    made.append(("ann", "a2"))
    b1 = await adk.create_session(app_name=APP, user_id="bob", session_id="b1",
                                  state={"user:name": "Bob"})
    await adk.append_event(b1, text_event("bob here", timestamp=1003.0))
    made.append(("bob", "b1"))
    return made


def _view(session: Any) -> tuple[Any, ...]:
    return (session.id, session.user_id, dict(session.state),
            [(e.id, e.author, e.timestamp, e.content.parts[0].text if e.content else None)
             for e in session.events])


async def _same_as_adk(store: DatabaseSessionService, adk: Any,
                       made: list[tuple[str, str]]) -> None:
    for user, sid in made:
        ours = await store.get_session(app_name=APP, user_id=user, session_id=sid)
        theirs = await adk.get_session(app_name=APP, user_id=user, session_id=sid)
        assert ours is not None, (user, sid)
        assert _view(ours) == _view(theirs)
    for user in ("ann", "bob"):
        ours_list = await store.list_sessions(app_name=APP, user_id=user)
        theirs_list = await adk.list_sessions(app_name=APP, user_id=user)
        assert sorted(s.id for s in ours_list.sessions) == sorted(
            s.id for s in theirs_list.sessions)


def _tables(path: Path) -> set[str]:
    with sqlite3.connect(path) as db:
        return {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}


async def test_a_file_adk_wrote_is_refused_then_imported_by_the_cli(tmp_path: Path) -> None:
    path = tmp_path / "adk.db"
    url = f"sqlite+aiosqlite:///{path}"
    adk = AdkDatabaseSessionService(url)
    made = await _write_with_adk(adk)
    await adk.close()
    before = _tables(path)

    store = DatabaseSessionService(url)
    with pytest.raises(AdkTablesError, match="import-adk") as info:
        await store.get_session(app_name=APP, user_id="ann", session_id="a1")
    assert "3 sessions of ADK's own session service" in str(info.value)
    await store.close()
    assert _tables(path) == before  # nothing written

    done = subprocess.run([CLI, "import-adk", "--db", str(path)], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "Copied 3 sessions (4 events) from ADK's tables" in done.stdout, done.stdout
    again = subprocess.run([CLI, "import-adk", "--db", str(path)], capture_output=True,
                           text=True, timeout=120)
    assert again.returncode == 0 and "Copied 0 sessions" in again.stdout, again.stdout
    assert "3 already in the store" in again.stdout

    adk = AdkDatabaseSessionService(url)
    async with DatabaseSessionService(url) as store:
        await _same_as_adk(store, adk, made)
        assert await store.get_user_state(app_name=APP, user_id="ann") == {
            "name": "Ann", "theme": "light"}
        assert await store.get_app_state(app_name=APP) == {"motd": "hello", "count": 3}
        # The copy is an ordinary session of the store: it takes the next turn.
        a1 = await store.get_session(app_name=APP, user_id="ann", session_id="a1")
        await store.append_event(a1, text_event("after the move", state={"step": 3}))
        again_a1 = await store.get_session(app_name=APP, user_id="ann", session_id="a1")
        assert again_a1.state["step"] == 3 and len(again_a1.events) == 3
        assert [r.status for r in await store.list_runs(
            app_name=APP, user_id="ann", session_id="a1")]
    await adk.close()


async def test_adk_web_default_file_imported_into_another_database(tmp_path: Path) -> None:
    """``adk web``'s own store (``SqliteSessionService``) into a separate store file."""
    source = tmp_path / ".adk" / "session.db"
    source.parent.mkdir()
    adk = SqliteSessionService(str(source))
    made = await _write_with_adk(adk)
    target = tmp_path / "multi_agent_data.db"
    done = subprocess.run([CLI, "import-adk", "--from", str(source), "--db", str(target)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "Copied 3 sessions" in done.stdout
    async with DatabaseSessionService(f"sqlite+aiosqlite:///{target}") as store:
        await _same_as_adk(store, adk, made)
    assert not any(t.startswith("ma_") for t in _tables(source))  # ADK's file only read


def test_a_missing_source_file_is_said_plainly(tmp_path: Path) -> None:
    done = subprocess.run([CLI, "import-adk", "--from", str(tmp_path / "nope.db"), "--db",
                           str(tmp_path / "x.db")], capture_output=True, text=True, timeout=60)
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert "nope.db" in done.stderr


async def test_postgresql_written_by_adk_is_refused_then_imported() -> None:
    url = await fresh_pg_database()
    adk = AdkDatabaseSessionService(url)
    made = await _write_with_adk(adk)
    store = DatabaseSessionService(url)
    with pytest.raises(AdkTablesError):
        await store.list_sessions(app_name=APP)
    await store.close()
    async with DatabaseSessionService(url) as store:
        report = await import_adk_sessions(store)
        assert (report.sessions, report.events, report.skipped) == (3, 4, 0)
        assert report.differing == []
        await _same_as_adk(store, adk, made)
    await adk.close()


async def test_an_empty_adk_database_is_no_obstacle(tmp_path: Path) -> None:
    """ADK's tables with no session in them: nothing to lose, so nothing is refused."""
    path = tmp_path / "empty.db"
    adk = AdkDatabaseSessionService(f"sqlite+aiosqlite:///{path}")
    session = await adk.create_session(app_name=APP, user_id="ann")
    await adk.delete_session(app_name=APP, user_id="ann", session_id=session.id)
    await adk.close()
    async with DatabaseSessionService(f"sqlite+aiosqlite:///{path}") as store:
        assert (await store.list_sessions(app_name=APP)).sessions == []


def test_the_readme_commands(tmp_path: Path) -> None:
    """The README's block, run as printed in a directory holding both kinds of ADK file."""
    import asyncio
    import os

    text = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    section = text.split("## Moving from ADK's own session service\n", 1)[1].split("\n## ")[0]
    block = section.split("```bash\n", 1)[1].split("```", 1)[0].strip().splitlines()
    assert len(block) == 2 and all(line.startswith(".venv/bin/multi-agent import-adk ")
                                   for line in block)

    async def write() -> None:
        adk = AdkDatabaseSessionService(f"sqlite+aiosqlite:///{tmp_path / 'sessions.db'}")
        await _write_with_adk(adk)
        await adk.close()
        (tmp_path / "agents" / ".adk").mkdir(parents=True)
        await _write_with_adk(SqliteSessionService(str(tmp_path / "agents/.adk/session.db")))

    asyncio.run(write())
    (tmp_path / ".venv").symlink_to(Path(sys.executable).parents[1])
    env = {k: v for k, v in os.environ.items() if k != "MULTI_AGENT_DB"}
    for line in block:
        done = subprocess.run(["bash", "-c", line], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, (line, done.stderr)
        assert "Copied 3 sessions (4 events)" in done.stdout, (line, done.stdout)
