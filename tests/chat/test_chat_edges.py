"""``multi-agent chat`` at its edges, driven like a person: piped stdin and a pseudo-terminal.

Slash commands with missing, unknown, huge and odd arguments; run ids the chat shows but then
refuses; stored text that carries terminal escape sequences (terminal injection); odd
``--db`` / ``MULTI_AGENT_DB`` values. Every test runs the real command on a real SQLite file.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.chat._util import (
    Terminal,
    clean_env,
    ok,
    one_line_error,
    read_back,
    run_cli,
    texts,
)

pytestmark = pytest.mark.timeout(300)

USER = "ann"
# Escape sequences an attacker (anyone whose text gets stored: another client of the HTTP
# service, a pasted message, a tool result) would like a terminal to obey: set the window
# title (OSC 0), clear the screen (CSI 2J).
OSC_TITLE = "\x1b]0;pwned\x07"
CLEAR = "\x1b[2J"


def chat(tmp_path: Path, stdin: str, *extra: str, user: str = USER,
         env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return run_cli("chat", "--user", user, "--db", str(tmp_path / "chat.db"), *extra,
                   cwd=tmp_path, stdin=stdin, env=env)


def runs_json(tmp_path: Path, user: str = USER) -> list[dict]:
    out = ok(run_cli("runs", "--user", user, "--db", str(tmp_path / "chat.db"), "--json",
                     cwd=tmp_path))
    return json.loads(out)


def no_traceback(proc: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in proc.stdout + proc.stderr, proc.stderr[-3000:]


# -- terminal injection ------------------------------------------------------------------------


def test_stored_escape_sequences_are_not_replayed_raw_when_piped(tmp_path: Path) -> None:
    """Observed: a message containing ``ESC ] 0 ; pwned BEL`` and ``ESC [ 2 J`` is stored as
    sent, and the chat prints the raw ESC bytes back (the echo of the line, ``/history``,
    ``/state conversation_history``): whoever reads the output on a terminal gets their
    window title set and their screen cleared by text somebody else stored. rich strips BEL
    but not ESC. Expected: control characters of stored text are shown escaped/replaced."""
    proc = chat(tmp_path, f"hello {CLEAR} there {OSC_TITLE} end\n/history\n"
                          "/state conversation_history\n")
    out = ok(proc)
    assert "\x1b" not in out, [line for line in out.splitlines() if "\x1b" in line]


def test_stored_escape_sequences_are_not_replayed_on_a_terminal(tmp_path: Path) -> None:
    """Observed: a message stored earlier (here by a piped chat: it could as well come from the
    HTTP service) containing ``ESC ] 0 ; pwned`` / ``ESC [ 2 J`` is written raw to the person's
    terminal by ``/history`` in an interactive chat. Expected: shown inert (escaped)."""
    ok(chat(tmp_path, f"hello {CLEAR} there {OSC_TITLE} end\n"))
    t = Terminal(["chat", "--user", USER, "--db", str(tmp_path / "chat.db")], cwd=tmp_path)
    try:
        t.wait_prompt()
        t.type("/history")
        shown = t.expect_exact("end")
        t.wait_prompt()
        t.type("/quit")
        t.expect_exact("Bye. Everything is saved.")
        code, _ = t.finish()
    finally:
        t.kill()
    assert code == 0
    assert "\x1b]0;pwned" not in shown and CLEAR not in shown, repr(shown[-400:])


def test_a_stored_name_with_escapes_is_not_replayed_in_the_greeting(tmp_path: Path) -> None:
    """Observed: ``user:user_name`` (set from what the user typed, or by any client sharing
    the store) is printed raw in the "Welcome back" greeting, ESC bytes included.
    Expected: the greeting shows the name without live escape sequences."""
    import asyncio

    from multi_agent import DatabaseSessionService
    from tests.chat._util import sqlite_url

    async def seed() -> None:
        from google.adk.events.event import Event, EventActions

        async with DatabaseSessionService(sqlite_url(tmp_path / "chat.db")) as store:
            s = await store.create_session(app_name="multi_agent", user_id=USER)
            await store.append_event(s, Event(
                author="user", invocation_id="e-seed",
                actions=EventActions(state_delta={"user:user_name": f"Eve{CLEAR}{OSC_TITLE}"}),
            ))

    asyncio.run(seed())
    out = ok(chat(tmp_path, ""))
    assert "Welcome back, Eve" in out, out
    assert "\x1b" not in out, repr(out[:400])


# -- run ids the chat shows ---------------------------------------------------------------------


def test_details_accepts_a_sub_run_id_that_runs_lists(tmp_path: Path) -> None:
    """Observed: ``/runs`` lists the delegation sub-run ``funny_nerd@N`` as a run, but
    ``/details funny_nerd@N`` answers "No events of run 'funny_nerd@N' in this session's
    history (/runs lists the runs)" - sending the person back to the list that showed it.
    Expected: the sub-run's events (or a sentence saying to use the parent run's id)."""
    ok(chat(tmp_path, "tell me a joke about python\n"))
    sub = next(r["run_id"] for r in runs_json(tmp_path) if r["kind"] == "delegation")
    out = ok(chat(tmp_path, f"/details {sub}\n"))
    assert "No events of run" not in out, out


def test_branch_on_a_sub_run_inside_the_chat_names_chat_commands(tmp_path: Path) -> None:
    """Observed: ``/branch funny_nerd@N`` inside the chat answers with advice for the shell:
    "`multi-agent runs --user U --session S` shows the tree", placeholders and all, where the
    chat has ``/runs``. Expected: the message inside the chat points at ``/runs`` (or at least
    names the real user and session)."""
    ok(chat(tmp_path, "tell me a joke about python\n"))
    sub = next(r["run_id"] for r in runs_json(tmp_path) if r["kind"] == "delegation")
    out = ok(chat(tmp_path, f"/branch {sub}\n"))
    line = next(line for line in out.splitlines() if "delegation sub-run" in line)
    assert "--user U --session S" not in line, line


def test_branch_edges_are_clear_sentences_and_lose_nothing(tmp_path: Path) -> None:
    """Checked, behaves: /branch with no argument, an unknown id, a run of another session,
    the current head; each is one [system] sentence, and the history is intact afterwards."""
    ok(chat(tmp_path, "tell me a joke about python\nadd NVDA to my watchlist\n"))
    runs = [r for r in runs_json(tmp_path) if r["kind"] == "invocation"]
    head = runs[-1]["run_id"]
    out = ok(chat(tmp_path, f"/branch\n/branch nope\n/branch {head}\n/new\n/branch {head}\n"))
    assert "Usage: /branch RUN_ID" in out
    assert "has no run 'nope'" in out
    assert f"Continuing from the end of run {head}" in out
    assert out.count("has no run '") == 2, out
    data = read_back(tmp_path / "chat.db", USER)
    first = next(s for s in data["sessions"] if len(s["runs"]) > 0)["session"]
    assert texts(first, "user") == ["tell me a joke about python", "add NVDA to my watchlist"]


# -- slash commands with odd arguments --------------------------------------------------------


ODD_LINES = [
    "/switch", "/switch nope-\u00e9\u4e2d", "/state user:", "/state a key with spaces",
    "/state temp:x", "/state app:", "/details nope", "/details", "/runs -1", "/runs 0",
    "/runs 99999999999999999999", "/runs all", "/history --json --json", "/state --json x",
    "/prefs --json", "/stats extra words", "/foo", "/", "//", "/\u00e9\u00e9", "   ", "",
    "/sessions", "/verbose", "/verbose",
]


def test_odd_slash_arguments_are_clear_sentences(tmp_path: Path) -> None:
    """Checked, behaves: every slash command with missing, unknown, unicode arguments
    answers in a sentence (no traceback), and the chat goes on to the end (exit 0)."""
    proc = chat(tmp_path, "\n".join(ODD_LINES) + "\n")
    out = ok(proc)
    assert "Usage: /switch SESSION_ID" in out
    assert "No state key 'a key with spaces' here" in out
    assert "Unknown command /foo. Type /help." in out
    assert out.rstrip().endswith("Bye. Everything is saved."), out[-500:]


def test_switch_to_another_users_session_reveals_nothing(tmp_path: Path) -> None:
    """Checked, behaves: /switch to a session id of another user says it does not exist for
    this user (no data of the other user shown); the chat stays on its session."""
    ok(chat(tmp_path, "my name is Bob\nadd NVDA to my watchlist\n", user="bob"))
    bob = read_back(tmp_path / "chat.db", "bob")["sessions"][0]["session"].id
    out = ok(chat(tmp_path, f"/switch {bob}\n/prefs\n"))
    assert "does not exist" in out
    assert "NVDA" not in out and "Bob" not in out.replace("bob", ""), out


def test_a_huge_switch_argument_is_not_echoed_back_whole(tmp_path: Path) -> None:
    """Observed: ``/switch`` with a 100 KB argument answers with a one-line error that quotes
    the whole 100 KB id back (twice that with the piped echo). Expected: the id is shortened
    in the message, as the chat does for every other long value (160 characters)."""
    arg = "x" * 100_000
    out = ok(chat(tmp_path, f"/switch {arg}\n"))
    line = next(line for line in out.splitlines() if "does not exist" in line)
    assert len(line) < 2000, len(line)


def test_a_100kb_message_is_stored_whole(tmp_path: Path) -> None:
    """Checked: a 100 KB line is a message like any other and is stored whole."""
    big = "tell me a joke about python " + "y" * 100_000
    ok(chat(tmp_path, big + "\n"))
    session = read_back(tmp_path / "chat.db", USER)["sessions"][0]["session"]
    assert texts(session, "user") == [big]


def test_a_line_with_a_nul_is_stored_or_refused_in_a_sentence(tmp_path: Path) -> None:
    """Checked: a line containing NUL either is stored exactly or is refused in a sentence."""
    proc = chat(tmp_path, "hello\x00world\n")
    no_traceback(proc)
    session = read_back(tmp_path / "chat.db", USER)["sessions"][0]["session"]
    assert texts(session, "user") in (["hello\x00world"], []), texts(session, "user")


# -- --db and MULTI_AGENT_DB -------------------------------------------------------------------


def test_a_database_of_a_newer_version_is_one_clear_line(tmp_path: Path) -> None:
    """Checked, behaves: a schema_version higher than this code knows: exit 1, one line."""
    import sqlite3

    ok(chat(tmp_path, ""))
    with sqlite3.connect(tmp_path / "chat.db") as db:
        db.execute("update ma_meta set value='99' where key='schema_version'")
    one_line_error(chat(tmp_path, "hi\n"), "newer", "Nothing was changed")


@pytest.mark.parametrize("what", ["directory", "junk"])
def test_db_that_is_not_a_database_file_is_one_clear_line(tmp_path: Path, what: str) -> None:
    """Checked, behaves: --db naming a directory or a text file: exit 1, one line."""
    target = tmp_path / "target"
    if what == "directory":
        target.mkdir()
    else:
        target.write_text("not a database\n")
    proc = run_cli("chat", "--user", USER, "--db", str(target), cwd=tmp_path, stdin="hi\n")
    one_line_error(proc)


def test_an_empty_multi_agent_db_means_the_default(tmp_path: Path) -> None:
    """Observed: ``MULTI_AGENT_DB=`` (set but empty, as ``export MULTI_AGENT_DB=`` leaves it)
    makes the chat open the current *directory* as the database: "Cannot open the database at
    sqlite+aiosqlite:////tmp/... (unable to open database file)", exit 1. Expected: an empty
    value is the same as unset (./multi_agent_data.db), or a sentence saying it is empty."""
    proc = run_cli("chat", "--user", USER, cwd=tmp_path, stdin="hi\n",
                   env=clean_env(MULTI_AGENT_DB=""))
    no_traceback(proc)
    assert proc.returncode == 0 or "MULTI_AGENT_DB" in proc.stderr, proc.stderr


def test_a_blank_multi_agent_db_does_not_create_a_file_named_by_spaces(tmp_path: Path) -> None:
    """Observed: ``MULTI_AGENT_DB='   '`` silently creates a SQLite file named three spaces in
    the current directory and chats on it (exit 0). Expected: a blank value is refused in a
    sentence (or treated as unset)."""
    run_cli("chat", "--user", USER, cwd=tmp_path, stdin="hi\n",
            env=clean_env(MULTI_AGENT_DB="   "))
    assert not (tmp_path / "   ").exists(), sorted(p.name for p in tmp_path.iterdir())


def test_a_blank_user_id_is_refused_like_an_empty_one(tmp_path: Path) -> None:
    """Observed: ``--user ''`` is refused ("user_id must not be empty.") but ``--user '   '``
    is accepted: the chat greets "Hello    !" and stores sessions under a user made of three
    spaces. Expected: a blank id is refused the same way (exit 1, one line)."""
    proc = chat(tmp_path, "hi\n", user="   ")
    one_line_error(proc)


# -- the session deleted under a running chat ---------------------------------------------------


def _delete_under_a_terminal_chat(tmp_path: Path) -> str:
    db = str(tmp_path / "chat.db")
    ok(chat(tmp_path, "tell me a joke about python\n"))
    sid = read_back(tmp_path / "chat.db", USER)["sessions"][0]["session"].id
    t = Terminal(["chat", "--user", USER, "--db", db], cwd=tmp_path)
    try:
        t.wait_prompt()
        ok(run_cli("delete", "--user", USER, "--db", db, "--session", sid, "--yes",
                   cwd=tmp_path))
        t.type("add NVDA to my watchlist")
        t.expect_exact("[system]")
        shown = t.expect_exact("\n")
        t.wait_prompt()
        t.key("d")
        t.expect_exact("Bye.")
        t.finish()
    finally:
        t.kill()
    return shown


def test_a_message_to_a_session_deleted_meanwhile_gets_a_clear_sentence(tmp_path: Path) -> None:
    """Observed: when the chat's session is deleted (``multi-agent delete``) while the chat is
    open, the next message answers "That did not work: SessionNotFoundError: Session not
    found: <id>. What was said so far is saved; try again, or /quit." - an exception class
    name, a false "saved", and advice (try again) that can never work. Expected: a sentence
    saying the session was deleted and what to do (/new, /sessions)."""
    shown = _delete_under_a_terminal_chat(tmp_path)
    assert "SessionNotFoundError" not in shown, shown[-600:]
    assert "try again" not in shown, shown[-600:]


def test_a_deleted_session_is_not_recalled_by_the_historian(tmp_path: Path) -> None:
    """Observed: after ``multi-agent delete --session S --yes`` (README: "delete a session
    with its events, runs and memory") a new session asked "what did we talk about last
    time?" still answers with what was said in S ("you said "tell me a joke about python"
    and funny_nerd answered ..."): the user-scoped ``user:conversation_log`` keeps it.
    Expected: nothing of the deleted session is recalled."""
    db = str(tmp_path / "chat.db")
    ok(chat(tmp_path, "tell me a joke about python\n"))
    sid = read_back(tmp_path / "chat.db", USER)["sessions"][0]["session"].id
    ok(run_cli("delete", "--user", USER, "--db", db, "--session", sid, "--yes", cwd=tmp_path))
    out = ok(chat(tmp_path, "what did we talk about last time?\n", "--new"))
    assert "tell me a joke about python" not in out.split("last time?", 1)[1], out


# -- keys and signals on a terminal ----------------------------------------------------------


SLOW = [__import__("sys").executable, str(Path(__file__).with_name("_slow_chat.py"))]


def terminal(tmp_path: Path, **kw) -> Terminal:
    return Terminal(["chat", "--user", USER, "--db", str(tmp_path / "chat.db")],
                    cwd=tmp_path, **kw)


def test_ctrl_c_at_the_terminal_prompt_exits_130_as_readme_says(tmp_path: Path) -> None:
    """Observed: Ctrl-C at the interactive prompt leaves with exit status 0, while the same
    Ctrl-C while a piped chat waits for input leaves with 130 (test_piped). README "CLI
    reference": "Exit codes: 0 done, 1 failed, 2 usage error, 130 Ctrl-C". Expected: 130
    (Ctrl-D and /quit are the ways to leave with 0)."""
    t = terminal(tmp_path)
    try:
        t.wait_prompt()
        t.key("c")
        t.expect_exact("Bye. Everything is saved.")
        code, _ = t.finish()
    finally:
        t.kill()
    assert code == 130, code


def test_ctrl_c_twice_quickly_during_an_answer_stops_the_answer_not_the_chat(
        tmp_path: Path) -> None:
    """Observed (2 runs in 3): an impatient person pressing Ctrl-C twice in a row during an
    answer is thrown out of the chat ("^C ^C [system] Bye. Everything is saved.", exit 130)
    instead of getting the "Interrupted. The run is marked cancelled ..." line and the prompt
    back, as after one Ctrl-C. /help: "Ctrl-C while it answers stops that answer". The second
    SIGINT lands after send() restored asyncio's own handler (chat_session.send, the
    ``finally: _swap_sigint(previous)``), which cancels the whole chat. Expected: the
    answer stops, the chat stays, the message is stored, the run cancelled."""
    t = terminal(tmp_path, command=SLOW)
    try:
        t.wait_prompt()
        t.type("tell me a joke about python, slowly")
        t.expect_exact("(stalling)")
        t.key("c")
        t.key("c")
        t.expect_exact("Interrupted")
        t.wait_prompt()
        t.key("d")
        code, rest = t.finish()
    finally:
        t.kill()
    assert code == 0 and "Traceback" not in rest
    (entry,) = read_back(tmp_path / "chat.db", USER)["sessions"]
    assert texts(entry["session"], "user") == ["tell me a joke about python, slowly"]
    assert [r.status for r in entry["runs"] if r.kind == "invocation"] == ["cancelled"]


def test_ctrl_z_and_window_resizes_do_not_disturb_the_chat(tmp_path: Path) -> None:
    """Checked, behaves: Ctrl-Z at the prompt, SIGTSTP+SIGCONT, and SIGWINCH (resizes) in
    the middle of an answer: the chat goes on and answers."""
    import os
    import signal
    import time

    t = terminal(tmp_path, command=SLOW)
    try:
        t.wait_prompt()
        t.key("z")
        os.kill(t.child.pid, signal.SIGTSTP)
        time.sleep(0.5)
        os.kill(t.child.pid, signal.SIGCONT)
        t.type("tell me a joke about python, slowly")
        t.expect_exact("(stalling)")
        t.child.setwinsize(20, 40)
        time.sleep(0.3)
        t.child.setwinsize(60, 250)
        t.key("c")
        t.expect_exact("Interrupted")
        t.wait_prompt()
        t.type("tell me a joke about math")
        t.expect_exact("[funny_nerd]")
        t.wait_prompt()
        t.key("d")
        code, rest = t.finish()
    finally:
        t.kill()
    assert code == 0 and "Traceback" not in rest
    (entry,) = read_back(tmp_path / "chat.db", USER)["sessions"]
    assert texts(entry["session"], "user")[-1] == "tell me a joke about math"


def test_details_shows_a_run_of_another_branch_that_runs_lists(tmp_path: Path) -> None:
    """Observed: after ``/branch`` back to the first run and a new message, ``/runs`` shows the
    second run as "○ other branch" (its events are kept: README, "the later runs stay
    stored"), but ``/details <that run>`` answers "No events of run '...' in this session's
    history (/runs lists the runs)". Expected: its events, or a sentence saying it is on
    another branch (and how to see it), not a claim that it has none."""
    ok(chat(tmp_path, "tell me a joke about python\nadd NVDA to my watchlist\n"))
    first, second = [r["run_id"] for r in runs_json(tmp_path) if r["kind"] == "invocation"]
    out = ok(chat(tmp_path, f"/branch {first}\nhello\n/details {second}\n"))
    assert f"No events of run '{second}'" not in out, out[-800:]


def test_two_terminal_chats_on_one_session_taking_turns_lose_nothing(tmp_path: Path) -> None:
    """Checked, behaves: two interactive chats on the same --session, alternating messages:
    every message stored once, in order, each run completed, both watch-list additions kept,
    the session's history has every turn."""
    db = str(tmp_path / "chat.db")
    ok(chat(tmp_path, "hello\n"))
    sid = read_back(tmp_path / "chat.db", USER)["sessions"][0]["session"].id
    a = Terminal(["chat", "--user", USER, "--db", db, "--session", sid], cwd=tmp_path)
    b = Terminal(["chat", "--user", USER, "--db", db, "--session", sid], cwd=tmp_path)
    sent = ["hello"]
    try:
        a.wait_prompt()
        b.wait_prompt()
        for i in range(2):
            for name, t in (("a", a), ("b", b)):
                msg = f"add T{name.upper()}{i} to my watchlist"
                t.type(msg)
                sent.append(msg)
                t.expect_exact("[stock_analyst]")
                t.wait_prompt()
        a.key("d")
        b.key("d")
        assert a.finish()[0] == 0 and b.finish()[0] == 0
    finally:
        a.kill()
        b.kill()
    data = read_back(tmp_path / "chat.db", USER)
    (entry,) = data["sessions"]
    assert texts(entry["session"], "user") == sent
    assert {r.status for r in entry["runs"] if r.kind == "invocation"} == {"completed"}
    history = entry["session"].state["conversation_history"]
    assert [h["user_input"] for h in history] == sent
    watch = json.dumps(data["user_state"])
    assert all(sym in watch for sym in ("TA0", "TB0", "TA1", "TB1")), watch


@pytest.mark.parametrize("signame", ["SIGHUP", "SIGTERM"])
def test_closing_the_terminal_mid_answer_does_not_leave_the_run_running(
        tmp_path: Path, signame: str) -> None:
    """Observed: closing the terminal window (SIGHUP) or ``kill`` (SIGTERM) while an answer
    is under way ends the chat at once and leaves the run and its sub-run ``running`` for
    good (``multi-agent runs``: "1 run (1 running)"); tests/chat/test_interrupt_marks_cancelled
    says why that matters: the HTTP API refuses the thread with 409 run_in_progress until the
    run timeout. Only SIGINT is handled (chat_session.send). Expected: the run is marked
    cancelled (or failed) before the process leaves, as after Ctrl-C."""
    import os
    import signal
    import time

    t = terminal(tmp_path, command=SLOW)
    try:
        t.wait_prompt()
        t.type("tell me a joke about python, slowly")
        t.expect_exact("(stalling)")
        os.kill(t.child.pid, getattr(signal, signame))
        deadline = time.monotonic() + 30
        while t.child.isalive() and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        t.kill()
    (entry,) = read_back(tmp_path / "chat.db", USER)["sessions"]
    assert texts(entry["session"], "user") == ["tell me a joke about python, slowly"]
    statuses = [(r.run_id, r.status) for r in entry["runs"]]
    assert all(status != "running" for _, status in statuses), statuses
