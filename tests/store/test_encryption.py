"""Encryption at rest (``multi_agent.store.sealing``): on a real SQLite file and PostgreSQL.

The raw bytes are checked as an attacker with the files would see them: the SQLite database
file and its -wal after a checkpoint, the real ``pg_dump`` output of the PostgreSQL database.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from google.adk.events.event import Event, EventActions
from google.adk.runners import Runner
from google.genai import types

from multi_agent import DatabaseSessionService
from multi_agent.errors import EncryptionError, EncryptionKeyError
from multi_agent.store import sealing
from multi_agent.store.rekey import rekey
from tests.conftest import fresh_pg_database
from tests.store.scripted_llm import build_agents

# Words that appear only in the conversation and its state values: none may reach the disk.
WORDS = ["platypus", "marmalade", "zeppelin", "quokka", "obsidian", "userwombat", "appnarwhal"]
APP = "crypt_app"


@pytest.fixture(params=["sqlite_file", "postgres"])
async def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite_file":
        return f"sqlite+aiosqlite:///{tmp_path / 'store.db'}"
    return await fresh_pg_database()


@pytest.fixture
def key() -> str:
    return sealing.generate_key()


def _message(author: str, text: str, inv: str, delta: dict | None = None) -> Event:
    return Event(
        author=author, invocation_id=inv,
        content=types.Content(role="user" if author == "user" else "model",
                              parts=[types.Part(text=text)]),
        actions=EventActions(state_delta=delta or {}),
    )


async def _conversation(store: DatabaseSessionService, user: str = "ann") -> tuple[str, list]:
    session = await store.create_session(
        app_name=APP, user_id=user,
        state={"topic": "quokka facts", "user:pet": "userwombat", "app:motto": "appnarwhal"},
    )
    appended = []
    for i in range(4):
        appended.append(await store.append_event(
            session, _message("user", f"tell me about the platypus and marmalade {i}", f"i{i}")))
        appended.append(await store.append_event(session, _message(
            "helper", f"the zeppelin carried obsidian {i}", f"i{i}",
            {"last": f"zeppelin {i}", "user:seen": f"obsidian {i}"})))
    return session.id, appended


def _raw_bytes(url: str) -> bytes:
    """What an attacker with the database's files (or a dump) reads."""
    if url.startswith("sqlite"):
        path = url.split(":///", 1)[1]
        conn = sqlite3.connect(path)
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        conn.close()
        return b"".join(Path(p).read_bytes() for p in (path, path + "-wal")
                        if os.path.exists(p))
    pg_dump = shutil.which("pg_dump")
    assert pg_dump, "pg_dump must be on PATH for the PostgreSQL variant"
    dsn = url.replace("postgresql+asyncpg://", "postgresql://")
    return subprocess.run([pg_dump, "--data-only", dsn], check=True, capture_output=True).stdout


def _state_of(url: str) -> str:
    """A digest of everything stored (to show that a refused open wrote nothing)."""
    if url.startswith("sqlite"):
        path = url.split(":///", 1)[1]
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    # pg_dump writes a random token on its \restrict / \unrestrict lines (PostgreSQL 17.6+).
    lines = [ln for ln in _raw_bytes(url).splitlines() if not ln.startswith((b"\\restrict",
                                                                           b"\\unrestrict"))]
    return hashlib.sha256(b"\n".join(lines)).hexdigest()


async def test_no_word_of_the_conversation_reaches_the_disk(url: str, key: str) -> None:
    async with DatabaseSessionService(url, encryption_key=key) as store:
        sid, appended = await _conversation(store)
        got = await store.get_session(app_name=APP, user_id="ann", session_id=sid)
        assert got is not None
        assert [e.model_dump() for e in got.events] == [e.model_dump() for e in appended]
    raw = _raw_bytes(url)
    assert b"$ma1$" in raw  # the rows are there, sealed
    assert sid.encode() in raw  # ids stay in clear (the store queries them)
    for word in WORDS:
        assert word.encode() not in raw, word


async def test_reads_back_exactly_at_every_scope(url: str, key: str) -> None:
    async with DatabaseSessionService(url, encryption_key=key) as store:
        sid, appended = await _conversation(store)
        other = await store.create_session(app_name=APP, user_id="ann")
    async with DatabaseSessionService(url, encryption_key=key) as store:
        got = await store.get_session(app_name=APP, user_id="ann", session_id=sid)
        assert got.events == appended
        assert got.state == {
            "topic": "quokka facts", "last": "zeppelin 3", "user:pet": "userwombat",
            "user:seen": "obsidian 3", "app:motto": "appnarwhal",
        }
        assert (await store.get_session(app_name=APP, user_id="ann", session_id=other.id)
                ).state == {"user:pet": "userwombat", "user:seen": "obsidian 3",
                            "app:motto": "appnarwhal"}
        assert await store.get_user_state(app_name=APP, user_id="ann") == {
            "pet": "userwombat", "seen": "obsidian 3"}
        messages = await store.query_messages(app_name=APP, user_id="ann", session_id=sid)
        assert [m.text for m in messages][:2] == [
            "tell me about the platypus and marmalade 0", "the zeppelin carried obsidian 0"]


async def test_export_import_round_trip(url: str, key: str) -> None:
    async with DatabaseSessionService(url, encryption_key=key) as store:
        sid, _ = await _conversation(store)
        doc = await store.export_session(app_name=APP, user_id="ann", session_id=sid)
        assert doc is not None
        assert "platypus" in str(doc)  # the export is the user's own data, in clear
        await store.import_session(doc, user_id="bob", session_id="copy")
        copy = await store.get_session(app_name=APP, user_id="bob", session_id="copy")
        original = await store.get_session(app_name=APP, user_id="ann", session_id=sid)
        assert copy.events == original.events
        again = await store.export_session(app_name=APP, user_id="bob", session_id="copy")
        assert again["events"] == doc["events"]
    for word in WORDS[:4]:
        assert word.encode() not in _raw_bytes(url), word


async def test_missing_key_says_the_database_is_encrypted(url: str, key: str) -> None:
    async with DatabaseSessionService(url, encryption_key=key) as store:
        sid, _ = await _conversation(store)
    before = _state_of(url)
    async with DatabaseSessionService(url) as store:
        with pytest.raises(EncryptionKeyError) as raised:
            await store.get_session(app_name=APP, user_id="ann", session_id=sid)
        with pytest.raises(EncryptionKeyError):
            await store.create_session(app_name=APP, user_id="eve")
    message = str(raised.value)
    assert "is encrypted" in message and sealing.ENV_KEY in message
    assert "encryption_key_file" in message and "Nothing was written" in message
    assert _state_of(url) == before


async def test_wrong_key_refuses_and_writes_nothing(url: str, key: str) -> None:
    async with DatabaseSessionService(url, encryption_key=key) as store:
        sid, _ = await _conversation(store)
    before = _state_of(url)
    wrong = sealing.generate_key()
    async with DatabaseSessionService(url, encryption_key=wrong) as store:
        with pytest.raises(EncryptionKeyError) as raised:
            await store.create_session(app_name=APP, user_id="eve", state={"x": "y"})
        with pytest.raises(EncryptionKeyError):
            await store.get_session(app_name=APP, user_id="ann", session_id=sid)
    assert "not among the keys given" in str(raised.value)
    assert sealing.Keyring.from_text(key, "k").current in str(raised.value)
    assert _state_of(url) == before
    async with DatabaseSessionService(url, encryption_key=key) as store:  # still fine
        assert (await store.list_sessions(app_name=APP, user_id="eve")).sessions == []


async def test_rotation_then_the_old_key_is_retired(url: str, key: str) -> None:
    async with DatabaseSessionService(url, encryption_key=key) as store:
        sid, appended = await _conversation(store)
    new = sealing.generate_key()
    async with DatabaseSessionService(url, encryption_key=f"{new},{key}") as store:
        # During the rotation both keys read; new rows are sealed with the new key.
        await store.append_event(
            await store.get_session(app_name=APP, user_id="ann", session_id=sid),
            _message("user", "one more platypus", "i9"))
        dry = await rekey(store, dry_run=True)
        assert not dry.done and dry.rows["ma_events"] == 8 and dry.rows["ma_sessions"] == 1
        report = await rekey(store, batch_size=3)
        assert report.rows == {"ma_app_states": 1, "ma_user_states": 1, "ma_sessions": 1,
                               "ma_events": 8}
        assert report.batches >= 4  # ma_events alone took three batches of at most 3 rows
        assert report.retired == [sealing.Keyring.from_text(key, "k").current]
        assert (await rekey(store, dry_run=True)).total == 0  # resumable: nothing left
    async with DatabaseSessionService(url, encryption_key=new) as store:
        got = await store.get_session(app_name=APP, user_id="ann", session_id=sid)
        assert got.events[:-1] == appended
        assert got.events[-1].content.parts[0].text == "one more platypus"
        assert got.state["user:pet"] == "userwombat" and got.state["app:motto"] == "appnarwhal"
    async with DatabaseSessionService(url, encryption_key=key) as store:
        with pytest.raises(EncryptionKeyError):  # the old key alone no longer opens it
            await store.get_session(app_name=APP, user_id="ann", session_id=sid)
    raw = _raw_bytes(url)
    assert ("$ma1$" + sealing.Keyring.from_text(key, "k").current[:8]).encode() not in raw


async def test_clear_rows_stay_readable_and_rekey_seals_them(url: str, key: str) -> None:
    async with DatabaseSessionService(url) as store:
        sid, appended = await _conversation(store)
    assert b"platypus" in _raw_bytes(url)
    async with DatabaseSessionService(url, encryption_key=key) as store:
        got = await store.get_session(app_name=APP, user_id="ann", session_id=sid)
        assert got.events == appended  # old rows: readable as they are
        await store.append_event(got, _message("user", "a sealed quokka", "i7"))
        report = await rekey(store)
        assert report.rows["ma_events"] == 8 and report.rows["ma_sessions"] == 1
    async with DatabaseSessionService(url, encryption_key=key) as store:
        got = await store.get_session(app_name=APP, user_id="ann", session_id=sid)
        assert got.events[:-1] == appended
    async with DatabaseSessionService(url) as store:  # now it is an encrypted database
        with pytest.raises(EncryptionKeyError):
            await store.get_session(app_name=APP, user_id="ann", session_id=sid)


async def test_adk_runner_on_an_encrypted_store(url: str, key: str) -> None:
    async with DatabaseSessionService(url, encryption_key=key) as store:
        runner = Runner(app_name=APP, agent=build_agents(), session_service=store)
        s = await store.create_session(app_name=APP, user_id="u")
        for text in ("please note the marmalade", "again the marmalade"):
            async for _ in runner.run_async(
                user_id="u", session_id=s.id,
                new_message=types.Content(role="user", parts=[types.Part(text=text)]),
            ):
                pass
        stored = await store.get_session(app_name=APP, user_id="u", session_id=s.id)
        assert stored.state["notes"] == 2 and stored.state["user:note_count"] == 2
        assert stored.events[0].content.parts[0].text == "please note the marmalade"
        await runner.close()
    assert b"marmalade" not in _raw_bytes(url)


async def test_a_changed_value_fails_authentication(tmp_path: Path, key: str) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'store.db'}"
    async with DatabaseSessionService(url, encryption_key=key) as store:
        sid, _ = await _conversation(store)
    conn = sqlite3.connect(tmp_path / "store.db")
    sealed = conn.execute("SELECT state FROM ma_sessions").fetchone()[0]
    # Another table's ciphertext, and a flipped character: both refused.
    conn.execute("UPDATE ma_sessions SET state = (SELECT state FROM ma_user_states)")
    conn.commit()
    async with DatabaseSessionService(url, encryption_key=key) as store:
        with pytest.raises(EncryptionError, match="fails authentication"):
            await store.get_session(app_name=APP, user_id="ann", session_id=sid)
    flipped = sealed[:-6] + ("A" if sealed[-6] != "A" else "B") + sealed[-5:]
    conn.execute("UPDATE ma_sessions SET state = ?", (flipped,))
    conn.commit()
    conn.close()
    async with DatabaseSessionService(url, encryption_key=key) as store:
        with pytest.raises(EncryptionError, match="fails authentication"):
            await store.get_session(app_name=APP, user_id="ann", session_id=sid)


async def test_key_file_and_malformed_keys(tmp_path: Path, key: str) -> None:
    key_file = tmp_path / "key"
    key_file.write_text(f"# the store's key\n{key}\n")
    url = f"sqlite+aiosqlite:///{tmp_path / 'store.db'}"
    async with DatabaseSessionService(url, encryption_key_file=key_file) as store:
        sid, _ = await _conversation(store)
    async with DatabaseSessionService(url, encryption_key=key) as store:  # the same key
        assert await store.get_session(app_name=APP, user_id="ann", session_id=sid)
    with pytest.raises(EncryptionKeyError, match="32 random bytes"):
        DatabaseSessionService(url, encryption_key="not-a-key")
    with pytest.raises(EncryptionKeyError, match="Cannot read the encryption key file"):
        DatabaseSessionService(url, encryption_key_file=tmp_path / "missing")


async def test_uri_option_encryption_key_file(tmp_path: Path, key: str) -> None:
    from multi_agent.services import session_service_from_uri

    key_file = tmp_path / "key"
    key_file.write_text(key)
    db = tmp_path / "store.db"
    store = session_service_from_uri(f"multi-agent+sqlite:///{db}?encryption_key_file={key_file}")
    try:
        sid, _ = await _conversation(store)
    finally:
        await store.close()
    assert b"platypus" not in _raw_bytes(f"sqlite+aiosqlite:///{db}")
    async with DatabaseSessionService(f"sqlite+aiosqlite:///{db}", encryption_key=key) as s:
        assert await s.get_session(app_name=APP, user_id="ann", session_id=sid)


async def test_memory_is_off_on_an_encrypted_store(url: str, key: str) -> None:
    from multi_agent.memory import DatabaseMemoryService

    async with DatabaseSessionService(url, encryption_key=key) as store:
        sid, _ = await _conversation(store)
        session = await store.get_session(app_name=APP, user_id="ann", session_id=sid)
        memory = DatabaseMemoryService(store)
        try:
            with pytest.raises(EncryptionError, match="clear-text copy"):
                await memory.add_session_to_memory(session)
        finally:
            await memory.close()
    assert b"platypus" not in _raw_bytes(url)


def test_without_the_extra_the_error_names_the_pip_command(tmp_path: Path, key: str) -> None:
    script = (
        "import sys; sys.modules['cryptography'] = None\n"
        "from multi_agent import DatabaseSessionService\n"
        "from multi_agent.errors import EncryptionUnavailableError\n"
        "try:\n"
        f"    DatabaseSessionService('sqlite+aiosqlite:///{tmp_path}/x.db',\n"
        f"                           encryption_key='{key}')\n"
        "except EncryptionUnavailableError as exc:\n"
        "    print(exc)\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         check=True, cwd=Path(__file__).parents[2]).stdout
    assert "pip install 'adk-lossless-sessions[encryption]'" in out
    assert not (tmp_path / "x.db").exists()  # nothing was opened


def test_without_a_keyring_the_columns_have_no_processor() -> None:
    """Encryption off costs nothing: SQLAlchemy runs no Python per value of these columns."""
    from sqlalchemy.dialects import postgresql, sqlite

    from multi_agent.store import schema

    for dialect in (sqlite.dialect(), postgresql.dialect()):
        for table, column in ((schema.events, "event_data"), (schema.sessions, "state")):
            sealed = table.c[column].type
            assert isinstance(sealed, sealing.Sealed)
            assert sealed.bind_processor(dialect) is None
            assert sealed.result_processor(dialect, None) is None


async def test_two_keyrings_on_one_engine_are_refused(tmp_path: Path, key: str) -> None:
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'x.db'}")
    try:
        DatabaseSessionService(db_engine=engine, encryption_key=key)
        DatabaseSessionService(db_engine=engine, encryption_key=key)  # the same keys: fine
        with pytest.raises(EncryptionKeyError, match="other encryption keys"):
            DatabaseSessionService(db_engine=engine, encryption_key=sealing.generate_key())
    finally:
        await engine.dispose()


async def test_message_text_filter_reads_through_the_seal(url: str, key: str) -> None:
    """``query_messages(text=...)`` (``multi-agent messages --text``) cannot match sealed text
    in SQL: it matches the opened rows, case-folded, and finds what a clear store finds."""
    async with DatabaseSessionService(url, encryption_key=key) as store:
        sid, _ = await _conversation(store)
        found = await store.query_messages(app_name=APP, user_id="ann", text="PLATYPUS and")
        assert [m.text for m in found] == [
            f"tell me about the platypus and marmalade {i}" for i in range(4)]
        two = await store.query_messages(app_name=APP, user_id="ann", session_id=sid,
                                         text="obsidian", limit=2)
        assert [m.text for m in two] == [f"the zeppelin carried obsidian {i}" for i in (0, 1)]
        assert await store.query_messages(app_name=APP, user_id="ann", text="nowhere") == []


async def test_bounded_context_finds_a_sealed_compaction_summary(url: str, key: str) -> None:
    """The window (``?window=N``) puts the newest compaction summary before it: found on an
    encrypted store too (its JSON is opened, not matched with LIKE)."""
    from multi_agent.memory.bounded_service import BoundedSessionService
    from tests.lifecycle._trim_util import build

    async with BoundedSessionService(url, window=8, encryption_key=key) as store:
        session = await build(store, APP, "ann", "long", runs=6, summary_after=2)
        loaded = await store.get_session(app_name=APP, user_id="ann", session_id=session.id)
        assert loaded.events[0].actions.compaction is not None
        assert loaded.events[0].actions.compaction.compacted_content.parts[0].text == (
            "summary so far")
    assert b"summary so far" not in _raw_bytes(url)
