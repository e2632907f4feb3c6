"""The chat with stdin not a terminal: one message per line, each answered, scriptable."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.chat._util import clean_env, ok, one_line_error, read_back, run_cli, texts

pytestmark = pytest.mark.timeout(300)

USER = "ann"


def chat(tmp_path: Path, stdin: str, *extra: str, **kw) -> subprocess.CompletedProcess[str]:
    return run_cli("chat", "--user", USER, "--db", str(tmp_path / "chat.db"), *extra,
                   cwd=tmp_path, stdin=stdin, **kw)


def json_blocks(out: str) -> list[object]:
    """The pretty-printed JSON documents in the output (a line "{" or "[" to its closing line)."""
    blocks = re.findall(r"^([\[{]\n.*?\n[\]}])$", out, flags=re.S | re.M)
    return [json.loads(b) for b in blocks]


def session_ids(out: str) -> list[str]:
    return re.findall(r"(?:New session|Resuming session) ([0-9a-f-]{36})", out)


def test_each_line_is_answered_and_tool_lines_show(tmp_path: Path) -> None:
    out = ok(chat(tmp_path, "tell me a joke about python\n\nadd AAPL to my watch list\n/prefs\n"))
    lines = out.splitlines()
    assert lines[0].startswith(f"[system] Hello {USER}! New session ")
    # The input is echoed, then the delegation, tool calls, state changes and the answer.
    assert f"{USER}> tell me a joke about python" in lines
    assert "  ↪ manager → funny_nerd" in lines
    assert any(line.startswith("  → funny_nerd calls tell_joke(") for line in lines)
    assert any(line.startswith("  state: ") and "user:preferences" in line for line in lines)
    assert any(line.startswith("[funny_nerd] ") for line in lines)
    assert any(line.startswith("[stock_analyst] ") and "AAPL" in line for line in lines)
    (prefs,) = json_blocks(out)
    assert prefs["joke_preferences"] == ["python"] and prefs["stock_watchlist"] == ["AAPL"]
    assert lines[-1] == "[system] Bye. Everything is saved."


def test_quiet_hides_tool_calls_and_state_changes(tmp_path: Path) -> None:
    out = ok(chat(tmp_path, "tell me a joke about python\n", "--quiet"))
    assert "[funny_nerd] " in out
    assert "calls" not in out and "tell_joke" not in out and "state:" not in out
    assert "↪ manager → funny_nerd" in out  # who answered stays visible


def test_new_session_keeps_preferences(tmp_path: Path) -> None:
    first = ok(chat(tmp_path, "tell me a joke about python\n"))
    second = ok(chat(tmp_path, "/prefs\n/sessions\n", "--new"))
    (first_id,) = session_ids(first)
    (second_id,) = session_ids(second)
    assert first_id != second_id
    assert f"Welcome back, {USER}. New session {second_id}." in second
    assert "I remember: you like jokes about python" in second
    (prefs,) = json_blocks(second)
    assert prefs["joke_preferences"] == ["python"]
    # /sessions lists both, the current one marked.
    listed = re.findall(r"^([* ]) ([0-9a-f-]{36})  \S+ \S+  (\d+) interactions?$", second,
                        flags=re.M)
    assert [(mark, sid) for mark, sid, _ in listed] == [(" ", first_id), ("*", second_id)]
    assert [int(n) for _, _, n in listed] == [1, 0]
    assert "2 sessions; * is this one." in second
    stored = read_back(tmp_path / "chat.db", USER)
    assert [e["session"].id for e in stored["sessions"]] == [first_id, second_id]

    # Without --new the most recent session (the second) is resumed.
    third = ok(chat(tmp_path, "", "--quiet"))
    assert session_ids(third) == [second_id]


def test_switch(tmp_path: Path) -> None:
    first = ok(chat(tmp_path, "tell me a joke about python\n"))
    (first_id,) = session_ids(first)
    out = ok(chat(tmp_path, f"/switch nope\n/switch\n/switch {first_id}\n/history\n", "--new"))
    assert ("[system] Session 'nope' of user 'ann' in app 'multi_agent' does not exist."
            in out)
    assert "Usage: /switch SESSION_ID" in out
    assert f"Welcome back, {USER}. Resuming session {first_id} (1 interaction so far)." in out
    (history,) = json_blocks(out)  # the chat went on after the unknown id
    assert [h["user_input"] for h in history] == ["tell me a joke about python"]


def test_state_help_and_unknown_commands(tmp_path: Path) -> None:
    out = ok(chat(tmp_path, "/help\n/bogus\n/history\n/state\nadd MSFT to my watch list\n"
                            "/stats\n"))
    assert "/switch ID" in out and "/prefs" in out and "/quit" in out
    assert "[system] Unknown command /bogus. Type /help." in out
    assert "[system] Nothing said in this session yet." in out
    state, stats = json_blocks(out)
    assert state["conversation_history"] == [] and state["agent_delegations"] == []
    assert state["session_metadata"]["total_interactions"] == 0
    assert stats["stock_analyst"]["delegations"] == 1


def test_quit_stops_reading(tmp_path: Path) -> None:
    out = ok(chat(tmp_path, "/quit\ntell me a joke about python\n"))
    assert "[funny_nerd]" not in out
    assert out.count("Bye. Everything is saved.") == 1
    assert read_back(tmp_path / "chat.db", USER)["sessions"][0]["session"].events == []


def test_unknown_session_exits_2_with_one_line(tmp_path: Path) -> None:
    proc = chat(tmp_path, "tell me a joke\n", "--session", "nope")
    one_line_error(proc, "'nope'", "does not exist", "multi-agent sessions --user ID")
    assert "[funny_nerd]" not in proc.stdout


@pytest.mark.parametrize("where", ["missing_dir", "a_directory"])
def test_bad_db_exits_2_with_one_line(tmp_path: Path, where: str) -> None:
    if where == "missing_dir":
        db, fragment = str(tmp_path / "no" / "such" / "dir" / "x.db"), "does not exist"
    else:
        (tmp_path / "adir").mkdir()
        db, fragment = str(tmp_path / "adir"), "Cannot open the database"
    proc = run_cli("chat", "--user", USER, "--db", db, cwd=tmp_path, stdin="hello\n")
    one_line_error(proc, fragment)
    assert not (tmp_path / "no").exists()


def test_model_without_key_exits_2(tmp_path: Path) -> None:
    proc = chat(tmp_path, "hello\n", "--model", "gemini-2.5-flash")
    one_line_error(proc, "GOOGLE_API_KEY")


def test_model_failure_is_one_line_and_the_chat_goes_on(tmp_path: Path) -> None:
    """A model that cannot be reached: a clear line per message, no traceback, exit code 1."""
    env = clean_env(GOOGLE_API_KEY="not-a-key", GOOGLE_GEMINI_BASE_URL="http://127.0.0.1:9")
    proc = chat(tmp_path, "hello\n/prefs\nhello again\n", "--model", "gemini-2.5-flash",
                env=env)
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stdout + proc.stderr
    failures = [line for line in proc.stdout.splitlines() if "That did not work" in line]
    assert len(failures) == 2 and "ConnectError" in failures[0], proc.stdout
    assert "No preferences stored yet" in proc.stdout  # the command between still ran
    stored = read_back(tmp_path / "chat.db", USER)
    session, runs = stored["sessions"][0]["session"], stored["sessions"][0]["runs"]
    assert texts(session, "user") == ["hello", "hello again"]
    assert [r.status for r in runs] == ["failed", "failed"]
    assert "ConnectError" in (runs[0].error or "")


def test_ctrl_c_while_piped_leaves_with_130(tmp_path: Path) -> None:
    """Ctrl-C mid-run in piped mode: the run is marked cancelled and the chat leaves."""
    slow = Path(__file__).with_name("_slow_chat.py")
    proc = subprocess.Popen(
        [sys.executable, str(slow), "chat", "--user", USER, "--db", str(tmp_path / "chat.db")],
        cwd=tmp_path, env=clean_env(), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )
    try:
        assert proc.stdin and proc.stdout
        proc.stdin.write("tell me a joke about python, slowly\ntell me a joke about math\n")
        proc.stdin.flush()
        seen = ""
        deadline = time.monotonic() + 60
        while "(stalling)" not in seen and time.monotonic() < deadline:
            seen += proc.stdout.readline()
        assert "(stalling)" in seen, seen
        os.kill(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, (seen + out, err)
    assert "Traceback" not in err + out
    assert "[system] Interrupted. Everything so far is saved. Bye." in out
    assert "joke about math" not in out  # it left instead of reading on
    runs = read_back(tmp_path / "chat.db", USER)["sessions"][0]["runs"]
    assert [(r.kind, r.status) for r in runs if r.kind == "invocation"] == [
        ("invocation", "cancelled")
    ]


def test_ctrl_c_while_waiting_for_input(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "multi_agent", "chat", "--user", USER, "--db",
         str(tmp_path / "chat.db")],
        cwd=tmp_path, env=clean_env(), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )
    try:
        assert proc.stdout
        greeting = proc.stdout.readline() + proc.stdout.readline()
        assert "Hello ann!" in greeting
        time.sleep(0.5)
        os.kill(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, (out, err)
    assert "Traceback" not in err and "Bye. Everything is saved." in out


def test_memory_search_option_finds_other_words(tmp_path: Path, minilm: object) -> None:
    """``--memory-search hybrid``: the bundled sentence-embedding model finds "my dog" when
    asked about "my puppy"; a bad mode in the environment is one clear line, exit 2."""
    ok(chat(tmp_path, "My dog Rex loves chasing waves at the beach\n", "--quiet"))
    out = ok(chat(tmp_path, "what did I say about my puppy?\n", "--new", "--quiet",
                  "--memory-search", "hybrid"))
    assert re.search(r"\[historian\] You said something close to puppy on .*"
                     r"in another session: \"My dog Rex loves chasing waves", out), out
    bad = chat(tmp_path, "hello\n", env=clean_env(MULTI_AGENT_MEMORY_SEARCH="vectors"))
    one_line_error(bad, "MULTI_AGENT_MEMORY_SEARCH='vectors'", "fulltext, semantic, hybrid")
