"""Ctrl-C at any moment of a turn on a terminal: the run is never left ``running``.

A person sends a line to the real ``multi-agent chat`` (pseudo-terminal, SQLite file, offline
model) and presses Ctrl-C (SIGINT) a moment later: while the message itself is being stored,
before the first answer came back, or after the answer. Then ``/quit``, and the runs are read
back through the library. No run may stay ``running`` (the HTTP API would refuse the thread
with 409 run_in_progress until the run timeout); a run the chat says it marked cancelled is
``cancelled``; a run whose answer was shown is ``completed``; everything shown is stored.

(Ctrl-C in the few milliseconds while prompt_toolkit finishes the line does not stop the turn:
prompt_toolkit drops it, or keeps it for its next prompt, which then leaves; a few milliseconds
later it is taken as Ctrl-C at the prompt, and the chat leaves without sending the line. These
tests accept all three: the stored runs still have to agree with what was shown.)
"""

from __future__ import annotations

import io
import re
import signal
import time
from pathlib import Path

import pexpect
import pytest

from tests.chat._util import Terminal, read_back, texts

pytestmark = pytest.mark.timeout(120)

USER = "ann"
LINE = "tell me a joke about cats"
CANCELLED = "Interrupted. The run is marked cancelled"
SAVING = "The answer is complete; saving it"
BYE = "Bye. Everything is saved."
PROMPT = f"{USER}>"
LEFT_EDITOR = "\x1b[?2004l"  # prompt_toolkit on an xterm, once the line is accepted
_ESCAPES = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][A-Z0-9]|\r")


def plain(text: str) -> str:
    return _ESCAPES.sub("", text)


def interrupt_turn(t: Terminal, line: str, delay: float | None) -> str:
    """Types ``line``, sends SIGINT ``delay`` s after the line editor handed it over (None:
    once the answer is shown). Returns what the chat made of it: ``cancelled`` (it said the
    run is marked cancelled; it is at its prompt again), ``answered`` (the answer was shown;
    at its prompt again), ``left`` (SIGINT came at the prompt after the answer: it left) or
    ``unsent`` (SIGINT came while the line editor was still closing, before the chat took
    the line: it left as at the prompt, and nothing of the line is stored)."""
    t.type(line)
    t.expect_exact(LEFT_EDITOR)
    if delay is None:
        t.expect_exact("[funny_nerd]")
    else:
        time.sleep(delay)
    t.child.kill(signal.SIGINT)  # what Ctrl-C sends while the terminal is not in raw mode
    index = t.child.expect_exact(["Interrupted", SAVING, BYE, PROMPT])
    said = plain(str(t.child.before) + str(t.child.after))
    if index == 0:
        t.child.expect(r"[^\r\n]*")  # the rest of that line, to say what it was
        said += str(t.child.after)
        assert CANCELLED in said, said  # one Ctrl-C: the message is stored, the run marked
        t.wait_prompt()
        return "cancelled"
    if index == 2:
        return "left" if "[funny_nerd]" in said else "unsent"
    if index == 1:
        t.wait_prompt()
    elif t.child.expect_exact([BYE, pexpect.TIMEOUT], timeout=1) == 0:
        return "left"  # prompt_toolkit kept that Ctrl-C for its next prompt, which it left
    return "answered"


def check(db: Path, session_id: str | None, lines: list[str], outcomes: list[str],
          shown: str) -> None:
    """The stored runs of the session agree with what the chat said about each turn."""
    stored = read_back(db, USER)["sessions"]
    (entry,) = [e for e in stored if session_id is None or e["session"].id == session_id]
    session, runs = entry["session"], entry["runs"]
    statuses = [(r.kind, r.status, r.error, r.message) for r in runs]
    assert not [r for r in runs if r.status == "running"], (statuses, shown)
    top = [r for r in runs if r.kind == "invocation"]
    assert [r.message for r in top] == lines, (statuses, shown)
    assert texts(session, "user") == lines
    expected = [("cancelled", "interrupted by the user") if o == "cancelled" else
                ("completed", None) for o in outcomes]
    assert [(r.status, r.error) for r in top] == expected, (outcomes, statuses, shown)
    # Every line an agent was shown saying is stored, as said. (Not the chat's own lines, nor
    # library log lines such as ADK's "[warning] Dropping function calls with no matching
    # function response" after a cancelled delegation.)
    said_lines = re.findall(r"^\[(?!(?:system|debug|info|warning|error|critical)\])([a-z_]+)\] "
                            r"(.+)$", shown, re.MULTILINE)
    for author, said in said_lines:
        kept = [" ".join(text.split()) for text in texts(session, author)]
        assert " ".join(said.split()) in kept, (author, said, kept)


def one_turn(db: Path, cwd: Path, line: str, delay: float | None) -> tuple[str, str]:
    """``multi-agent chat`` (it resumes the most recent session, or starts one): one turn,
    interrupted ``delay`` s after it was sent (see interrupt_turn), then /quit. Returns (the
    outcome, everything it printed)."""
    t = Terminal(["chat", "--user", USER, "--db", str(db)], cwd=cwd)
    t.child.logfile_read = transcript = io.StringIO()
    try:
        t.wait_prompt()
        outcome = interrupt_turn(t, line, delay)
        if outcome not in ("left", "unsent"):
            t.type("/quit")
        code, _rest = t.finish()
    finally:
        t.kill()
    shown = plain(transcript.getvalue())
    assert code in (0, 130), shown
    assert "Traceback" not in shown and "could not mark" not in shown, shown
    return outcome, shown


@pytest.mark.parametrize("delay", [0.0, 0.05, 0.2, 0.4, None],
                         ids=["0s", "0.05s", "0.2s", "0.4s", "answered"])
def test_interrupted_run_is_cancelled_never_left_running(tmp_path: Path, delay: float | None
                                                         ) -> None:
    """The first turn of a fresh chat process, interrupted ``delay`` s after it was sent."""
    db = tmp_path / "chat.db"
    outcome, shown = one_turn(db, tmp_path, LINE, delay)
    if outcome == "unsent":
        assert read_back(db, USER)["sessions"][0]["runs"] == [], shown
        return
    check(db, None, [LINE], ["completed" if outcome == "left" else outcome], shown)


def test_interrupted_turns_of_one_session(tmp_path: Path) -> None:
    """One session, a turn per chat process (as someone who comes back), each interrupted
    soon after it was sent, before any answer came back: each run the chat said it cancelled
    is the cancelled one (no earlier run is taken for it), and none is left running or
    unmarked ("failed" once a later run started). (Only the first turn of a process takes
    long enough to be stopped before its first event: later ones answer in ~50 ms.)"""
    db = tmp_path / "chat.db"
    lines: list[str] = []
    outcomes: list[str] = []
    shown = ""
    for n, delay in enumerate([0.2, 0.4, 0.3]):
        line = f"{LINE} number {n}"
        outcome, printed = one_turn(db, tmp_path, line, delay)
        shown += printed
        if outcome != "unsent":
            lines.append(line)
            outcomes.append("completed" if outcome == "left" else outcome)
    assert "cancelled" in outcomes, (outcomes, shown)  # (else nothing was tested)
    check(db, None, lines, outcomes, shown)


def test_a_failure_to_mark_is_said_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    """mark_run never fails the chat, but never hides a failure either: one line on stderr,
    and False, so that the chat does not claim the run is marked."""
    import asyncio
    from types import SimpleNamespace

    from multi_agent.errors import DatabaseUnavailableError
    from multi_agent.team.chat_session import ChatSession

    class Store:
        async def list_runs(self, **_kw: object) -> list[object]:
            return []

        async def set_run_status(self, **_kw: object) -> None:
            raise DatabaseUnavailableError("attempt to write a readonly database")

    chat = ChatSession(db_url="sqlite+aiosqlite://", user_id=USER, model=None, quiet=False,
                       interactive=True)
    chat.runner = SimpleNamespace(session_service=Store())
    chat.session_id = "s1"
    assert asyncio.run(chat.mark_run("e-1", "cancelled", "interrupted by the user")) is False
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("multi-agent: could not mark run e-1 cancelled"), err
    assert "readonly database" in err[0]
    # No run id and no running head run with this message: nothing to mark, nothing said.
    assert asyncio.run(chat.mark_run(None, "cancelled", "x", text=LINE, since=0.0)) is None
    assert capsys.readouterr().err == ""
