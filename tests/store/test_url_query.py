"""Our options in a plain SQLAlchemy URL's query (``--db``, ``DatabaseSessionService(url)``).

Before, only our URIs (``multi-agent+sqlite://``) read them: ``--db 'sqlite+aiosqlite:///x.db
?encryption_key_file=k'``, which the "no encryption key" error itself advises, stored the
conversation in clear without a word, and on PostgreSQL a bad or unknown option, or a port
past 65535, ended in a traceback from asyncpg.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from multi_agent import DatabaseSessionService
from multi_agent.errors import DatabaseUnavailableError, EncryptionKeyError, InvalidValueError
from multi_agent.store import sealing
from tests.conftest import fresh_pg_database
from tests.helpers import text_event

CLI = str(Path(sys.executable).with_name("multi-agent"))
SECRET = "Zorblatt-the-unforgettable"


def _key_file(tmp_path: Path) -> Path:
    path = tmp_path / "enc.key"
    path.write_text(sealing.generate_key() + "\n")
    path.chmod(0o600)
    return path


def _bytes(db: Path) -> bytes:
    return b"".join(p.read_bytes() for p in db.parent.glob(db.name + "*"))


async def test_the_key_file_in_the_url_encrypts(tmp_path: Path) -> None:
    db = tmp_path / "enc.db"
    url = f"sqlite+aiosqlite:///{db}?encryption_key_file={_key_file(tmp_path)}"
    async with DatabaseSessionService(url) as service:
        assert service.encrypted
        s = await service.create_session(app_name="a", user_id="u", state={"who": SECRET})
        await service.append_event(s, text_event(f"my name is {SECRET}", author="user"))
    assert SECRET.encode() not in _bytes(db)
    async with DatabaseSessionService(url) as again:
        s2 = await again.get_session(app_name="a", user_id="u", session_id=s.id)
        assert s2.state["who"] == SECRET
    with pytest.raises(EncryptionKeyError):  # the same file without the key
        async with DatabaseSessionService(f"sqlite+aiosqlite:///{db}") as keyless:
            await keyless.get_session(app_name="a", user_id="u", session_id=s.id)


def test_the_cli_with_the_key_file_in_db(tmp_path: Path) -> None:
    db = tmp_path / "chat.db"
    url = f"sqlite+aiosqlite:///{db}?encryption_key_file={_key_file(tmp_path)}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MULTI_AGENT_ENCRYPTION")}
    env.pop("GOOGLE_API_KEY", None)
    chat = subprocess.run([CLI, "chat", "--user", "eu", "--db", url],
                          input=f"my name is {SECRET}\n/quit\n", capture_output=True,
                          text=True, env=env, timeout=120)
    assert chat.returncode == 0, chat.stderr
    assert SECRET.encode() not in _bytes(db)
    keyless = subprocess.run([CLI, "sessions", "--user", "eu", "--db", f"sqlite+aiosqlite:///{db}"],
                             capture_output=True, text=True, env=env, timeout=60)
    assert keyless.returncode != 0 and "is encrypted" in keyless.stderr
    assert "Traceback" not in keyless.stderr
    keyed = subprocess.run([CLI, "sessions", "--user", "eu", "--db", url],
                           capture_output=True, text=True, env=env, timeout=60)
    assert keyed.returncode == 0 and "1" in keyed.stdout, keyed.stderr


async def test_service_options_in_the_url(tmp_path: Path) -> None:
    db = tmp_path / "o.db"
    async with DatabaseSessionService(
            f"sqlite+aiosqlite:///{db}?on_stale=merge&sqlite_synchronous=normal") as service:
        assert service.on_stale == "merge"
        await service.create_session(app_name="a", user_id="u")
        mode = await service.backend.run(
            lambda conn: conn.exec_driver_sql("PRAGMA synchronous").scalar(), write=False)
        assert mode == 1  # NORMAL
    # A name that is none of ours is the SQLite driver's, as before.
    async with DatabaseSessionService(f"sqlite+aiosqlite:///{db}?timeout=5") as service:
        assert await service.list_sessions(app_name="a", user_id="u")
    sqlite3.connect(db).close()


@pytest.mark.parametrize(("query", "says"), [
    ("sqlite_synchronous=BOGUS", "expected OFF, NORMAL, FULL or EXTRA"),
    ("on_stale=maybe", "expected raise or merge"),
    ("window=5", "BoundedSessionService"),
    ("search=hybrid", "memory service"),
    ("pool_size=3", "PostgreSQL only"),
])
def test_bad_options_in_a_sqlite_url(tmp_path: Path, query: str, says: str) -> None:
    with pytest.raises(InvalidValueError, match=says):
        DatabaseSessionService(f"sqlite+aiosqlite:///{tmp_path / 'b.db'}?{query}")
    assert not (tmp_path / "b.db").exists()


def test_an_option_given_twice(tmp_path: Path) -> None:
    with pytest.raises(InvalidValueError, match="given both"):
        DatabaseSessionService(f"sqlite+aiosqlite:///{tmp_path / 'c.db'}?on_stale=merge",
                               on_stale="merge")


def test_the_defaults_a_url_option_is_compared_with_are_the_signatures() -> None:
    """An argument left at its default does not clash with the URL's option: the defaults
    compared are read from the constructors (and ``open_backend``), not from a copy of them
    that could drift."""
    import inspect

    from multi_agent.memory import service as memory_service
    from multi_agent.store import service as store_service
    from multi_agent.store.backend import open_backend

    for names, functions in ((store_service._URL_SETTINGS, (DatabaseSessionService.__init__,)),
                             (memory_service._URL_SETTINGS,
                              (memory_service.DatabaseMemoryService.__init__, open_backend))):
        defaults = store_service.signature_defaults(names, *functions)
        assert set(defaults) == set(names)
        for name, value in defaults.items():
            declared = next(inspect.signature(f).parameters[name].default for f in functions
                            if name in inspect.signature(f).parameters)
            assert value == declared
    with pytest.raises(TypeError, match="no default for 'nope'"):
        store_service.signature_defaults(["nope"], open_backend)


@pytest.mark.parametrize(("url", "says"), [
    ("postgresql+asyncpg://postgres@127.0.0.1:1/x?command_timeout=abc", "expected seconds"),
    ("postgresql+asyncpg://postgres@127.0.0.1:1/x?command_timeout=-5", "expected seconds"),
    ("postgresql+asyncpg://postgres@127.0.0.1:1/x?statement_cache_size=x", "whole number"),
    ("postgresql+asyncpg://postgres@127.0.0.1:1/x?pool_timeout=nan", "expected seconds"),
    ("postgresql+asyncpg://postgres@127.0.0.1:1/x?sslmode=require", "Did you mean ssl"),
    ("postgresql+asyncpg://postgres@127.0.0.1:1/x?unknownopt=1", "Unknown option"),
    ("postgresql+asyncpg://postgres:pw@127.0.0.1:99999/x", "not a TCP port"),
])
def test_bad_postgresql_urls_through_the_cli(url: str, says: str) -> None:
    done = subprocess.run([CLI, "sessions", "--user", "u", "--db", url], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode != 0
    assert says in done.stderr and "Traceback" not in done.stderr, done.stderr
    assert "pw" not in done.stderr.replace("postgresql", "")


async def test_postgresql_options_in_the_url() -> None:
    pg_url = await fresh_pg_database()
    async with DatabaseSessionService(f"{pg_url}?command_timeout=2&pool_size=3") as service:
        s = await service.create_session(app_name="a", user_id="u")
        assert await service.get_session(app_name="a", user_id="u", session_id=s.id)
        engine = service.backend.async_engine
        assert engine.sync_engine.pool.size() == 3
        got = await service.backend.run(
            lambda conn: conn.exec_driver_sql("SHOW statement_timeout").scalar(), write=False)
        assert got is not None


# -- SQLite's own URI parameters (?mode=ro ...) -------------------------------------------------


@pytest.mark.parametrize("query", ["?mode=ro", "?mode=ro&uri=true"])
async def test_mode_ro_opens_the_file_read_only(tmp_path: Path, query: str) -> None:
    """Before: ``?mode=ro`` was dropped with a warning and the file written to; with
    ``uri=true`` a new file named ``x.db?mode=ro`` was created and written instead."""
    folder = tmp_path / "a dir #1"  # a space and a '#': quoted in the URI filename
    folder.mkdir()
    db = folder / "x.db"
    async with DatabaseSessionService(f"sqlite+aiosqlite:///{db}") as store:
        s = await store.create_session(app_name="a", user_id="u", state={"k": 1})
        await store.append_event(s, text_event("hello"))
    before = sorted(p.name for p in folder.iterdir())
    async with DatabaseSessionService(f"sqlite+aiosqlite:///{db}{query}") as ro:
        got = await ro.get_session(app_name="a", user_id="u", session_id=s.id)
        assert got.state == {"k": 1} and got.events[0].content.parts[0].text == "hello"
        assert len((await ro.list_sessions(app_name="a", user_id="u")).sessions) == 1
        with pytest.raises(DatabaseUnavailableError, match="opened read-only .mode=ro") as info:
            await ro.append_event(got, text_event("refused"))
        assert info.value.cause == "read_only" and "Nothing was written" in str(info.value)
        with pytest.raises(DatabaseUnavailableError, match="read-only"):
            await ro.create_session(app_name="a", user_id="u")
    assert sorted(p.name for p in folder.iterdir() if not p.name.endswith(("-wal", "-shm"))
                  ) == [n for n in before if not n.endswith(("-wal", "-shm"))]
    async with DatabaseSessionService(f"sqlite+aiosqlite:///{db}") as store:
        got = await store.get_session(app_name="a", user_id="u", session_id=s.id)
        assert [e.content.parts[0].text for e in got.events] == ["hello"]
        assert len((await store.list_sessions(app_name="a", user_id="u")).sessions) == 1


async def test_mode_ro_on_a_missing_file_creates_nothing(tmp_path: Path) -> None:
    store = DatabaseSessionService(f"sqlite+aiosqlite:///{tmp_path}/missing.db?mode=ro")
    with pytest.raises(DatabaseUnavailableError, match="Cannot open"):
        await store.list_sessions(app_name="a", user_id="u")
    await store.close()
    assert list(tmp_path.iterdir()) == []


def test_an_unparseable_url_is_not_echoed() -> None:
    """It may hold a password (ADK's own test of this, tests/store/test_adk_suite.py)."""
    with pytest.raises(InvalidValueError) as info:
        DatabaseSessionService("postgresql+asyncpg:/user:sup3r-s3cret@host/db ?")
    assert "sup3r-s3cret" not in str(info.value)
    assert "'postgresql+asyncpg:'" in str(info.value) and "not shown" in str(info.value)


async def test_prepare_tables_is_adks_name_for_prepare(tmp_path: Path) -> None:
    db = tmp_path / "p.db"
    async with DatabaseSessionService(f"sqlite+aiosqlite:///{db}") as store:
        await store.prepare_tables()
        await store.prepare_tables()  # idempotent, as ADK's
        tables = sqlite3.connect(db).execute(
            "SELECT name FROM sqlite_master WHERE type='table'").fetchall()
        assert ("ma_sessions",) in tables and ("ma_events",) in tables
