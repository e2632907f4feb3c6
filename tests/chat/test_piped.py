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

from tests.chat._util import (
    clean_env,
    interrupt_piped_chat,
    ok,
    one_line_error,
    read_back,
    run_cli,
    texts,
)

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


def test_each_line_is_answered_with_the_delegation_and_the_answer(tmp_path: Path) -> None:
    out = ok(chat(tmp_path, "tell me a joke about python\n\nadd AAPL to my watch list\n"
                            "/prefs --json\n"))
    lines = out.splitlines()
    assert lines[0].startswith(f"[system] Hello {USER}! New session ")
    # The input is echoed, then the delegation and the answer; no tool calls by default.
    assert f"{USER}> tell me a joke about python" in lines
    i = lines.index(f"{USER}> tell me a joke about python")
    assert lines[i + 1] == "  ↪ manager → funny_nerd"
    assert lines[i + 2].startswith("[funny_nerd] ")
    assert "calls" not in out and "tell_joke" not in out and "state:" not in out
    assert any(line.startswith("[stock_analyst] ") and "AAPL" in line for line in lines)
    (prefs,) = json_blocks(out)
    assert prefs["joke_preferences"] == ["python"] and prefs["stock_watchlist"] == ["AAPL"]
    assert lines[-1] == "[system] Bye. Everything is saved."


def test_verbose_shows_tool_calls_and_state_changes(tmp_path: Path) -> None:
    out = ok(chat(tmp_path, "tell me a joke about python\n", "--verbose"))
    lines = out.splitlines()
    assert "  ↪ manager → funny_nerd" in lines
    assert any(line.startswith("  → funny_nerd calls tell_joke(") for line in lines)
    assert any(line.startswith("  ← tell_joke: ") for line in lines)
    assert any(line.startswith("  state: ") and "user:preferences" in line for line in lines)
    assert any(line.startswith("[funny_nerd] ") for line in lines)
    # /verbose turns it off and on again; /details shows the last answer's details on demand.
    out = ok(chat(tmp_path, "/verbose\nadd AAPL to my watch list\n/verbose\n"
                            "tell me a joke about math\n/details\n", "--verbose"))
    before, after = out.split("[system] Tool calls and state changes are shown", 1)
    analyst = before.split("add AAPL to my watch list", 1)[1]
    assert "[stock_analyst]" in analyst and "calls add_to_stock_watchlist" not in analyst
    joke, details = after.split(f"{USER}> /details", 1)
    assert "  → funny_nerd calls tell_joke(" in joke
    assert re.search(r"^Run e-\S+$", details, flags=re.M), details
    assert re.search(r'^├── → funny_nerd calls tell_joke\(\{"topic": "math"\}\)$', details,
                     flags=re.M), details
    assert re.search(r"^├── state: .*user:jokes_told", details, flags=re.M), details


def test_quiet_shows_only_the_answers(tmp_path: Path) -> None:
    out = ok(chat(tmp_path, "tell me a joke about python\n", "--quiet"))
    assert "[funny_nerd] " in out
    assert "calls" not in out and "tell_joke" not in out and "state:" not in out
    assert "↪" not in out  # the [funny_nerd] prefix still says who answered
    proc = chat(tmp_path, "hello\n", "--quiet", "--verbose")
    assert proc.returncode == 2 and "not allowed with" in proc.stderr  # a usage error


def test_new_session_keeps_preferences(tmp_path: Path) -> None:
    first = ok(chat(tmp_path, "tell me a joke about python\n"))
    second = ok(chat(tmp_path, "/prefs --json\n/sessions\n", "--new"))
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
    out = ok(chat(tmp_path, f"/switch nope\n/switch\n/switch {first_id}\n/history --json\n",
                  "--new"))
    assert ("[system] Session 'nope' of user 'ann' in app 'multi_agent' does not exist."
            in out)
    assert "Usage: /switch SESSION_ID" in out
    assert f"Welcome back, {USER}. Resuming session {first_id} (1 interaction so far)." in out
    (history,) = json_blocks(out)  # the chat went on after the unknown id
    assert [h["user_input"] for h in history] == ["tell me a joke about python"]


def test_state_help_and_unknown_commands(tmp_path: Path) -> None:
    out = ok(chat(tmp_path, "/help\n/bogus\n/history\n/state --json\n"
                            "add MSFT to my watch list\n/stats --json\n"))
    assert "/switch ID" in out and "/prefs" in out and "/quit" in out and "/details" in out
    assert "[system] Unknown command /bogus. Type /help." in out
    assert "[system] Nothing said in this session yet." in out
    state, stats = json_blocks(out)
    assert state["conversation_history"] == [] and state["agent_delegations"] == []
    assert state["session_metadata"]["total_interactions"] == 0
    assert stats["stock_analyst"]["delegations"] == 1


def test_views_are_tables_and_trees(tmp_path: Path) -> None:
    """/state, /history, /prefs and /stats for a person: a tree by scope and tables, one line
    per key or row, not the JSON."""
    turns = "".join(f"tell me a joke about {t}\n" for t in ["python", "math", "science"] * 4)
    out = ok(chat(tmp_path, turns + "add NVDA to my watch list\n/state\n/state user:preferences"
                                    "\n/state nope\n/history\n/prefs\n/stats\n"))
    views = out.split(f"{USER}> /state\n", 1)[1]
    state, rest = views.split(f"{USER}> /state user:preferences\n", 1)
    assert "{" not in state and len(state.splitlines()) < 30, state  # 13 turns: still short
    assert re.search(r"^├── session  this session only$", state, flags=re.M), state
    assert re.search(r"^│   ├── conversation_history  13 entries$", state, flags=re.M), state
    assert re.search(r"^│       ├── stock_watchlist  NVDA$", state, flags=re.M), state
    assert re.search(r"^└── app  shared by every user$", state, flags=re.M), state
    one, rest = rest.split(f"{USER}> /state nope\n", 1)
    assert one.splitlines()[0] == "user:preferences"
    assert "├── joke_preferences  python, math, science" in one
    assert "[system] No state key 'nope' here; /state lists the keys." in rest
    history = rest.split(f"{USER}> /history\n", 1)[1].split(f"{USER}> /prefs\n")[0]
    assert re.search(r"^13\s+\S+ \S+\s+add NVDA to my watch list\s+stock_analyst\s+Added NVDA",
                     history, flags=re.M), history
    prefs = rest.split(f"{USER}> /prefs\n", 1)[1].split(f"{USER}> /stats\n")[0]
    assert re.search(r"^joke topics\s+python, math, science$", prefs, flags=re.M), prefs
    assert re.search(r"^watch list\s+NVDA$", prefs, flags=re.M), prefs
    stats = rest.split(f"{USER}> /stats\n", 1)[1]
    assert re.search(r"^funny_nerd\s+12\s+\S+ \S+$", stats, flags=re.M), stats
    assert re.search(r"^stock_analyst\s+1\s+\S+ \S+$", stats, flags=re.M), stats
    assert not re.search(r" $", out, flags=re.M)  # no padding at the ends of piped lines


def test_quit_stops_reading(tmp_path: Path) -> None:
    out = ok(chat(tmp_path, "/quit\ntell me a joke about python\n"))
    assert "[funny_nerd]" not in out
    assert out.count("Bye. Everything is saved.") == 1
    assert read_back(tmp_path / "chat.db", USER)["sessions"][0]["session"].events == []


def test_unknown_session_exits_1_with_one_line(tmp_path: Path) -> None:
    proc = chat(tmp_path, "tell me a joke\n", "--session", "nope")
    one_line_error(proc, "'nope'", "does not exist", "multi-agent sessions --user ID")
    assert "[funny_nerd]" not in proc.stdout


@pytest.mark.parametrize("where", ["missing_dir", "a_directory"])
def test_bad_db_exits_1_with_one_line(tmp_path: Path, where: str) -> None:
    if where == "missing_dir":
        db, fragment = str(tmp_path / "no" / "such" / "dir" / "x.db"), "does not exist"
    else:
        (tmp_path / "adir").mkdir()
        db, fragment = str(tmp_path / "adir"), "Cannot open the database"
    proc = run_cli("chat", "--user", USER, "--db", db, cwd=tmp_path, stdin="hello\n")
    one_line_error(proc, fragment)
    assert not (tmp_path / "no").exists()


def test_model_without_key_exits_1(tmp_path: Path) -> None:
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
    code, out, err = interrupt_piped_chat(
        [sys.executable, str(slow), "chat", "--user", USER, "--db", str(tmp_path / "chat.db")],
        tmp_path, "tell me a joke about python, slowly\ntell me a joke about math\n",
        "(stalling)")
    assert code == 130, (out, err)
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
    asked about "my puppy"; a bad mode in the environment is one clear line, exit 1."""
    ok(chat(tmp_path, "My dog Rex loves chasing waves at the beach\n", "--quiet"))
    out = ok(chat(tmp_path, "what did I say about my puppy?\n", "--new", "--quiet",
                  "--memory-search", "hybrid"))
    assert re.search(r"\[historian\] You said something close to puppy on .*"
                     r"in another session: \"My dog Rex loves chasing waves", out), out
    bad = chat(tmp_path, "hello\n", env=clean_env(MULTI_AGENT_MEMORY_SEARCH="vectors"))
    one_line_error(bad, "MULTI_AGENT_MEMORY_SEARCH='vectors'", "fulltext, semantic, hybrid")
