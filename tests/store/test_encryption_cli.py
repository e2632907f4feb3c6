"""``multi-agent keygen`` and ``multi-agent rekey`` driven the way an operator does: real
processes, a real SQLite file (and PostgreSQL), keys in the environment and in a key file."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import subprocess
from pathlib import Path

import pytest

from multi_agent import DatabaseSessionService
from multi_agent.store import sealing
from tests.chat._util import TIMEOUT, clean_env, run_cli
from tests.conftest import fresh_pg_database
from tests.store.test_encryption import APP, _conversation, _raw_bytes


def _seed(url: str, key: str | None) -> str:
    async def write() -> str:
        async with DatabaseSessionService(url, encryption_key=key) as store:
            sid, _ = await _conversation(store)
            return sid

    return asyncio.run(write())


def _cli(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return run_cli(*args, cwd=cwd, env=clean_env(**env), timeout=TIMEOUT * 2)


def test_keygen_prints_a_usable_key(tmp_path: Path) -> None:
    first = _cli(tmp_path, "keygen")
    second = _cli(tmp_path, "keygen")
    assert first.returncode == 0, first.stderr
    key = first.stdout.strip()
    assert len(key) == 44 and key != second.stdout.strip()
    assert sealing.Keyring.from_text(key, "keygen").current  # parses as a key


@pytest.mark.parametrize("backend", ["sqlite_file", "postgres"])
def test_rekey_rotates_and_retires_the_old_key(tmp_path: Path, backend: str) -> None:
    url = (f"sqlite+aiosqlite:///{tmp_path / 'store.db'}" if backend == "sqlite_file"
           else asyncio.run(fresh_pg_database()))
    old = _cli(tmp_path, "keygen").stdout.strip()
    new = _cli(tmp_path, "keygen").stdout.strip()
    sid = _seed(url, old)
    both = f"{new},{old}"
    dry = _cli(tmp_path, "rekey", "--db", url, "--dry-run", MULTI_AGENT_ENCRYPTION_KEY=both)
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.startswith("Would re-seal 11 rows with key ")
    done = _cli(tmp_path, "rekey", "--db", url, "--batch", "2", "--json",
                MULTI_AGENT_ENCRYPTION_KEY=both)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    new_fp = sealing.Keyring.from_text(new, "new").current
    old_fp = sealing.Keyring.from_text(old, "old").current
    assert report["key"] == new_fp and report["retired"] == [old_fp]
    assert report["total"] == 11 and report["done"] and report["batches"] >= 6
    # The new key alone reads everything; the old key alone is refused, cleanly.
    listed = _cli(tmp_path, "sessions", "--db", url, "--user", "ann", "--app", APP,
                  MULTI_AGENT_ENCRYPTION_KEY=new)
    assert listed.returncode == 0, listed.stderr
    assert sid in listed.stdout
    refused = _cli(tmp_path, "sessions", "--db", url, "--user", "ann", "--app", APP,
                   MULTI_AGENT_ENCRYPTION_KEY=old)
    assert refused.returncode == 1
    assert refused.stderr.startswith("multi-agent: ") and "Traceback" not in refused.stderr
    assert "not among the keys given" in refused.stderr
    assert f"$ma1${old_fp[:8]}$".encode() not in _raw_bytes(url)
    again = _cli(tmp_path, "rekey", "--db", url, MULTI_AGENT_ENCRYPTION_KEY=new)
    assert again.returncode == 0 and again.stdout.startswith("Re-sealed 0 rows")


def test_rekey_seals_a_clear_database_from_a_key_file(tmp_path: Path) -> None:
    db = tmp_path / "store.db"
    url = f"sqlite+aiosqlite:///{db}"
    sid = _seed(url, None)
    assert b"platypus" in _raw_bytes(url)
    key_file = tmp_path / "key"
    key_file.write_text(_cli(tmp_path, "keygen").stdout)
    done = _cli(tmp_path, "rekey", "--db", str(db), "--key-file", str(key_file))
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("Re-sealed 11 rows with key ")
    conn = sqlite3.connect(db)
    conn.execute("VACUUM")  # the clear rows' old pages go (docs/encryption.md says so)
    conn.close()
    assert b"platypus" not in _raw_bytes(url)
    shown = _cli(tmp_path, "messages", "--db", str(db), "--user", "ann", "--app", APP,
                 "--session", sid, MULTI_AGENT_ENCRYPTION_KEY_FILE=str(key_file))
    assert shown.returncode == 0, shown.stderr
    assert "platypus" in shown.stdout


def test_commands_on_an_encrypted_database_without_a_key(tmp_path: Path) -> None:
    db = tmp_path / "store.db"
    _seed(f"sqlite+aiosqlite:///{db}", sealing.generate_key())
    before = db.read_bytes()
    for args in (("sessions", "--user", "ann", "--app", APP), ("rekey",)):
        result = _cli(tmp_path, *args, "--db", str(db))
        assert result.returncode == 1, (args, result.stdout)
        assert result.stderr.startswith("multi-agent: ") and "Traceback" not in result.stderr
        assert "MULTI_AGENT_ENCRYPTION_KEY" in result.stderr
    assert db.read_bytes() == before
    bad = _cli(tmp_path, "sessions", "--db", str(db), "--user", "ann",
               MULTI_AGENT_ENCRYPTION_KEY="short")
    assert bad.returncode == 1 and "32 random bytes" in bad.stderr
    assert "multi-agent keygen" in bad.stderr
