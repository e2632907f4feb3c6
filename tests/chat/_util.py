"""Running the real ``multi-agent`` command the way a person does: a pseudo-terminal or a pipe."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pexpect

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
MULTI_AGENT = str(BIN / "multi-agent")
APP = "multi_agent"
TIMEOUT = 60  # the first ADK import alone takes 1-2 s per process; CI machines are slower


def clean_env(**extra: str) -> dict[str, str]:
    """The environment of a person's shell: no MULTI_AGENT_* settings, no model keys."""
    env = {
        k: v for k, v in os.environ.items()
        if not k.startswith(("MULTI_AGENT_", "GOOGLE_", "GEMINI_", "PYTEST_"))
    }
    env.update(COLUMNS="200", LINES="50", PYTHONPATH=str(ROOT), NO_COLOR="1")
    env.pop("FORCE_COLOR", None)
    env.update(extra)
    return env


def sqlite_url(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"


def run_cli(*args: str, cwd: Path, stdin: str | None = "", env: dict[str, str] | None = None,
            timeout: float = TIMEOUT * 2) -> subprocess.CompletedProcess[str]:
    """``multi-agent ARGS`` with ``stdin`` piped in (the chat's line-per-message mode)."""
    return subprocess.run(
        [MULTI_AGENT, *args], cwd=cwd, env=env or clean_env(), input=stdin,
        capture_output=True, text=True, timeout=timeout,
    )


def ok(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 0, (proc.returncode, proc.stdout[-3000:], proc.stderr[-3000:])
    assert "Traceback" not in proc.stderr + proc.stdout, proc.stderr
    return proc.stdout


def one_line_error(proc: subprocess.CompletedProcess[str], *fragments: str, code: int = 1) -> str:
    """Exit code 1 (a failure; 2 is for usage errors) and exactly one line on stderr,
    ``multi-agent: ...`` naming the problem."""
    assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr + proc.stdout
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("multi-agent: "), proc.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


# -- the pseudo-terminal ------------------------------------------------------------------------


class Terminal:
    """``multi-agent chat`` on a pseudo-terminal, driven key by key with pexpect."""

    def __init__(self, args: list[str], *, cwd: Path, term: str = "xterm",
                 command: list[str] | None = None) -> None:
        env = clean_env(TERM=term, PROMPT_TOOLKIT_NO_CPR="1")
        program, *first = command or [MULTI_AGENT]
        self.child = pexpect.spawn(program, [*first, *args], env=env, cwd=str(cwd),
                                   encoding="utf-8", timeout=TIMEOUT, dimensions=(50, 200))
        self.prompt = "> "
        self.user = args[args.index("--user") + 1] if "--user" in args else None

    def expect(self, pattern: Any) -> str:
        """Waits for ``pattern`` (a regex); returns what came before it."""
        self.child.expect(pattern)
        return str(self.child.before)

    def expect_exact(self, text: str) -> str:
        self.child.expect_exact(text)
        return str(self.child.before)

    def wait_prompt(self) -> str:
        """Waits for the ``user>`` prompt, then a moment for the line editor to take the keys.

        A person never types within milliseconds of the prompt appearing; keys sent before
        prompt_toolkit switched the terminal to raw mode would reach the terminal's own line
        discipline instead (where Ctrl-C is a signal, not a key).
        """
        before = self.expect_exact(f"{self.user}>")
        time.sleep(0.3)
        return before

    def type(self, line: str) -> None:
        self.child.sendline(line)

    def key(self, name: str) -> None:
        self.child.sendcontrol(name)

    def finish(self) -> tuple[int | None, str]:
        """Waits for the program to end; (exit status, the rest of its output)."""
        self.child.expect(pexpect.EOF)
        rest = str(self.child.before)
        self.child.close()
        return self.child.exitstatus, rest

    def kill(self) -> None:
        if self.child.isalive():
            self.child.terminate(force=True)


# -- the database, read back the way the library does --------------------------------------------


def read_back(db: Path, user: str) -> dict[str, Any]:
    """Everything the store holds for ``user``: sessions (with events), user state, runs."""
    from multi_agent import DatabaseSessionService

    async def load() -> dict[str, Any]:
        async with DatabaseSessionService(sqlite_url(db)) as store:
            listed = (await store.list_sessions(app_name=APP, user_id=user)).sessions
            sessions = []
            for s in listed:
                full = await store.get_session(app_name=APP, user_id=user, session_id=s.id)
                runs = await store.list_runs(app_name=APP, user_id=user, session_id=s.id)
                sessions.append({"session": full, "runs": runs})
            return {
                "sessions": sessions,
                "user_state": await store.get_user_state(app_name=APP, user_id=user),
            }

    return asyncio.run(load())


def texts(session: Any, author: str) -> list[str]:
    """The text parts of the events ``author`` wrote in ``session``."""
    out = []
    for event in session.events:
        if event.author == author and event.content and event.content.parts:
            out += [p.text for p in event.content.parts if p.text]
    return out


def answer_on_terminal(args: list[str], question: str, answer: str, *, cwd: Path
                       ) -> tuple[int | None, str]:
    """Runs ``multi-agent ARGS`` on a pseudo-terminal, waits for ``question`` and its
    ``[y/N]``, types ``answer``; returns (exit status, what it printed after the answer)."""
    import pexpect

    child = pexpect.spawn(MULTI_AGENT, args, env=clean_env(), cwd=str(cwd), encoding="utf-8",
                          timeout=TIMEOUT)
    try:
        child.expect_exact(question)
        child.expect_exact("[y/N]")
        child.sendline(answer)
        child.expect(pexpect.EOF)
        child.close()
        return child.exitstatus, str(child.before)
    finally:
        if child.isalive():
            child.terminate(force=True)


def interrupt_piped_chat(command: list[str], cwd: Path, lines: str, marker: str
                         ) -> tuple[int, str, str]:
    """Starts a piped chat (``command``), feeds it ``lines``, sends SIGINT once its output
    shows ``marker`` and waits for it to leave.

    Returns:
        ``(exit code, everything it printed on stdout, stderr)``.
    """
    import signal

    proc = subprocess.Popen(command, cwd=cwd, env=clean_env(), stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdin and proc.stdout
        proc.stdin.write(lines)
        proc.stdin.flush()
        seen = ""
        deadline = time.monotonic() + TIMEOUT
        while marker not in seen and time.monotonic() < deadline:
            seen += proc.stdout.readline()
        assert marker in seen, seen
        os.kill(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
    return proc.returncode, seen + out, err
