"""``multi-agent sessions`` and ``multi-agent state`` after a chat: what a user looks at."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.chat._util import ok, one_line_error, read_back, run_cli

pytestmark = pytest.mark.timeout(300)

USER = "ann"


@pytest.fixture(scope="module")
def chatted(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    """A database where ann chatted in two sessions (joke + watch list, then a new one)."""
    tmp = tmp_path_factory.mktemp("inspect")
    db = tmp / "chat.db"
    ok(run_cli("chat", "--user", USER, "--db", str(db), "--quiet", cwd=tmp,
               stdin="tell me a joke about python\nadd AAPL and GOOGL to my watch list\n"))
    ok(run_cli("chat", "--user", USER, "--db", str(db), "--quiet", "--new", cwd=tmp,
               stdin="what did we talk about?\n"))
    ids = [e["session"].id for e in read_back(db, USER)["sessions"]]
    assert len(ids) == 2
    return db, ids


def test_sessions_json(chatted: tuple[Path, list[str]]) -> None:
    db, ids = chatted
    rows = json.loads(ok(run_cli("sessions", "--user", USER, "--db", str(db), "--json",
                                 cwd=db.parent)))
    assert [r["id"] for r in rows] == ids  # oldest update first
    assert [r["interactions"] for r in rows] == [2, 1]
    assert rows[0]["last_update_time"] <= rows[1]["last_update_time"]
    assert all(isinstance(r["last_update"], str) and r["last_update"][:2] == "20" for r in rows)
    # Another user sees nothing of ann's.
    assert json.loads(ok(run_cli("sessions", "--user", "bob", "--db", str(db), "--json",
                                 cwd=db.parent))) == []


def test_sessions_table(chatted: tuple[Path, list[str]]) -> None:
    db, ids = chatted
    out = ok(run_cli("sessions", "--user", USER, "--db", str(db), cwd=db.parent))
    assert f"Sessions of {USER}" in out
    assert out.index(ids[0]) < out.index(ids[1])
    out = ok(run_cli("sessions", "--user", "bob", "--db", str(db), cwd=db.parent))
    assert "No sessions for user 'bob'" in out


def test_state_json(chatted: tuple[Path, list[str]]) -> None:
    db, ids = chatted
    latest = json.loads(ok(run_cli("state", "--user", USER, "--db", str(db), "--json",
                                   cwd=db.parent)))
    # The most recent session: its own history, and the user: keys shared by both sessions.
    assert [h["user_input"] for h in latest["conversation_history"]] == [
        "what did we talk about?"
    ]
    assert latest["user:preferences"]["joke_preferences"] == ["python"]
    assert latest["user:preferences"]["stock_watchlist"] == ["AAPL", "GOOGL"]
    assert {k: v["delegations"] for k, v in latest["user:agent_stats"].items()} == {
        "funny_nerd": 1, "stock_analyst": 1, "historian": 1
    }
    first = json.loads(ok(run_cli("state", "--user", USER, "--db", str(db), "--session",
                                  ids[0], "--json", cwd=db.parent)))
    assert [h["agent"] for h in first["conversation_history"]] == ["funny_nerd",
                                                                   "stock_analyst"]
    assert first["user:preferences"] == latest["user:preferences"]
    # No sessions: only app/user state (nothing for bob).
    assert json.loads(ok(run_cli("state", "--user", "bob", "--db", str(db), "--json",
                                 cwd=db.parent))) == {}


def test_state_unknown_session(chatted: tuple[Path, list[str]]) -> None:
    db, _ = chatted
    one_line_error(run_cli("state", "--user", USER, "--db", str(db), "--session", "nope",
                           "--json", cwd=db.parent), "'nope'", "does not exist")


@pytest.mark.parametrize("command", ["sessions", "state"])
def test_no_database_here(tmp_path: Path, command: str) -> None:
    """Looking in a directory without a database says so and does not create one."""
    one_line_error(run_cli(command, "--user", USER, "--json", cwd=tmp_path),
                   "No database at", str(tmp_path / "multi_agent_data.db"))
    assert list(tmp_path.iterdir()) == []
