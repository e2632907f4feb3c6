"""``multi-agent chat`` on an encrypted store (issue 18), as a person runs it: a key from
``multi-agent keygen`` in the environment, the default SQLite file in a fresh directory."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from tests.chat._util import clean_env, ok, one_line_error, run_cli

TURNS = "tell me a joke about python\nadd NVDA to my watchlist\n/quit\n"


def test_the_chat_on_an_encrypted_store_remembers_and_leaves_no_clear_words(
    tmp_path: Path,
) -> None:
    key = ok(run_cli("keygen", cwd=tmp_path)).strip()
    env = clean_env(MULTI_AGENT_ENCRYPTION_KEY=key)
    first = ok(run_cli("chat", "--user", "ann", cwd=tmp_path, stdin=TURNS, env=env))
    assert "[funny_nerd]" in first and "Your watch list: NVDA." in first
    # Long memory would keep a clear-text index: it is off, and the chat says so once.
    assert first.count("The store is encrypted: long memory") == 1
    assert "[warning]" not in first

    again = ok(run_cli("chat", "--user", "ann", cwd=tmp_path, stdin="/prefs\n/quit\n",
                       env=env))
    assert "your watch list: NVDA" in again and "watch list    NVDA" in again

    db = tmp_path / "multi_agent_data.db"
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("multi_agent_data.db*"))
    # (tool names stay in clear: a tool call's target, e.g. add_to_stock_watchlist)
    for word in (b"NVDA", b"RecursionError", b"punchline"):
        assert word not in raw, word

    # Without the key: one clear line, nothing written.
    before = db.read_bytes()
    proc = run_cli("chat", "--user", "ann", cwd=tmp_path, stdin="/quit\n")
    one_line_error(proc, "is encrypted", "MULTI_AGENT_ENCRYPTION_KEY", "Nothing was written")
    assert db.read_bytes() == before
