"""The chat on a pseudo-terminal, as a person uses it: type, read, quit, come back.

Each test drives the real ``multi-agent chat`` through pexpect (prompt_toolkit line editing,
Ctrl-C and Ctrl-D as keys) and then reads the database back through the library to check that
nothing was lost.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.chat._util import Terminal, read_back, texts

pytestmark = pytest.mark.timeout(300)

USER = "ann"
GAP = r"(?:\s|\x1b\[[0-9;]*m)+"  # between two table cells: spaces and style codes


def chat(tmp_path: Path, *extra: str, term: str = "xterm", **kw) -> Terminal:
    return Terminal(["chat", "--user", USER, "--db", str(tmp_path / "chat.db"), *extra],
                    cwd=tmp_path, term=term, **kw)


@pytest.mark.parametrize("term", ["xterm", "dumb"])
def test_joke_quit_come_back_remembered(tmp_path: Path, term: str) -> None:
    # First visit: a greeting for a new user, a joke from funny_nerd, /quit.
    t = chat(tmp_path, term=term)
    try:
        t.expect_exact(f"Hello {USER}!")
        t.wait_prompt()
        t.type("tell me a joke about python")
        t.expect_exact("manager → funny_nerd")  # the delegation, shown as it happens
        reply = t.expect_exact("[funny_nerd]")
        assert "tell_joke" not in reply  # tool calls only with --verbose or /details
        t.expect_exact("remember that you like python jokes")
        t.wait_prompt()
        t.type("/quit")
        t.expect_exact("Bye. Everything is saved.")
        code, rest = t.finish()
        assert code == 0, rest
    finally:
        t.kill()

    # Second visit: welcomed back with what it remembers; /prefs shows it; Ctrl-D leaves.
    t = chat(tmp_path, term=term)
    try:
        t.expect_exact(f"Welcome back, {USER}. Resuming session")
        t.expect_exact("(1 interaction so far)")
        t.expect_exact("I remember: you like jokes about python")
        t.wait_prompt()
        t.type("/prefs")
        t.expect_exact("Your preferences")
        t.expect(rf"joke topics{GAP}python")
        t.wait_prompt()
        t.key("d")
        t.expect_exact("Bye. Everything is saved.")
        code, rest = t.finish()
        assert code == 0, rest
        assert "Traceback" not in rest
    finally:
        t.kill()

    # Third visit: Ctrl-C at the prompt leaves cleanly too, with Ctrl-C's exit status (130,
    # as a piped chat's; Ctrl-D and /quit leave with 0).
    t = chat(tmp_path, term=term)
    try:
        t.expect_exact("Welcome back")
        t.wait_prompt()
        t.key("c")
        t.expect_exact("Bye. Everything is saved.")
        code, rest = t.finish()
        assert code == 130, rest
    finally:
        t.kill()

    # Nothing lost: one session holding the question, the answer and the preference.
    stored = read_back(tmp_path / "chat.db", USER)
    assert len(stored["sessions"]) == 1
    session = stored["sessions"][0]["session"]
    assert texts(session, "user") == ["tell me a joke about python"]
    (joke,) = texts(session, "funny_nerd")
    assert "remember that you like python jokes" in joke
    assert session.state["session_metadata"]["total_interactions"] == 1
    assert session.state["conversation_history"][0]["agent"] == "funny_nerd"
    assert stored["user_state"]["preferences"]["joke_preferences"] == ["python"]
    assert stored["user_state"]["agent_stats"]["funny_nerd"]["delegations"] == 1
    assert [r.status for r in stored["sessions"][0]["runs"] if r.kind == "invocation"] == [
        "completed"
    ]


def test_line_editing_and_history(tmp_path: Path) -> None:
    """Arrow keys edit the line; Up recalls the previous one."""
    t = chat(tmp_path)
    try:
        t.wait_prompt()
        # Type with a typo, go left over "python", fix it: "tell me a joke about pyhton".
        t.child.send("tell me a joke about pyhton")
        t.child.send("\x1b[D" * 3 + "\x7f" + "\x1b[C" + "h")  # ← ← ←, backspace, →, "h"
        t.child.send("\r")
        t.expect_exact("[funny_nerd]")
        t.expect_exact("remember that you like python jokes")
        t.wait_prompt()
        t.type("/stats")
        t.expect(rf"funny_nerd{GAP}1\s")
        t.wait_prompt()
        t.child.send("\x1b[A")  # ↑ recalls "/stats"
        t.child.send("\r")
        t.expect(rf"funny_nerd{GAP}1\s")
        t.wait_prompt()
        t.type("/quit")
        code, rest = t.finish()
        assert code == 0, rest
    finally:
        t.kill()
    session = read_back(tmp_path / "chat.db", USER)["sessions"][0]["session"]
    assert texts(session, "user") == ["tell me a joke about python"]


def test_ctrl_c_during_an_answer_stops_it_and_keeps_the_chat(tmp_path: Path) -> None:
    """Ctrl-C mid-run: the run is cancelled (and says so), the chat goes on, nothing is lost."""
    slow = [sys.executable, str(Path(__file__).with_name("_slow_chat.py"))]
    t = chat(tmp_path, command=slow)
    try:
        t.wait_prompt()
        t.type("tell me a joke about python, slowly")
        t.expect_exact("manager → funny_nerd")
        t.expect_exact("(stalling)")
        t.key("c")
        t.expect_exact("Interrupted. The run is marked cancelled")
        t.wait_prompt()
        t.type("tell me a joke about math")
        t.expect_exact("[funny_nerd]")
        t.wait_prompt()
        t.type("/runs")
        runs = t.expect_exact("◀ head")
        assert "cancelled" in runs and "interrupted by the user" in runs
        t.wait_prompt()
        t.key("d")
        code, rest = t.finish()
        assert code == 0, rest
        assert "Traceback" not in rest
    finally:
        t.kill()

    stored = read_back(tmp_path / "chat.db", USER)
    (entry,) = stored["sessions"]
    session, runs = entry["session"], entry["runs"]
    assert texts(session, "user") == ["tell me a joke about python, slowly",
                                      "tell me a joke about math"]
    top = [r for r in runs if r.kind == "invocation"]
    assert [(r.status, r.error) for r in top] == [
        ("cancelled", "interrupted by the user"), ("completed", None)
    ]
    # What the interrupted run did before Ctrl-C is stored: the manager's delegation.
    assert session.state["agent_delegations"][0]["agent_name"] == "funny_nerd"
