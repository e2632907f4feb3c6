"""The real ``multi-agent serve`` in a subprocess, and headless Chromium (Debian's package).

The README's "The web page" section lists the commands a person runs; ``readme_commands``
reads them and the tests run exactly those (a free port instead of the README's 8000, and
``--db URL`` added for PostgreSQL), in a fresh directory as the working directory.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.chat._util import MULTI_AGENT, ROOT, clean_env

PROGRAM = ".venv/bin/multi-agent"
README_PORT = "8000"
START_TIMEOUT = 90.0


def readme_commands() -> list[list[str]]:
    """The commands of the README section "The web page" (arguments after ``multi-agent``)."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## The web page", 1)[1].split("\n## ", 1)[0]
    (block,) = re.findall(r"```bash\n(.*?)```", section, flags=re.S)
    commands = []
    for line in block.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        program, *args = shlex.split(line)
        assert program == PROGRAM, line
        commands.append(args)
    return commands


def chromium() -> str:
    """Debian's Chromium; skipped without it, but a failure under CI (CI=... set)."""
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    message = "the chromium package is not installed (apt-get install -y chromium)"
    if os.environ.get("CI"):
        pytest.fail(f"CI is set but {message}")
    pytest.skip(message)


def require_playwright() -> None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        message = "playwright is not installed (pip install -e '.[dev]')"
        if os.environ.get("CI"):
            pytest.fail(f"CI is set but {message}")
        pytest.skip(message)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run(args: list[str], cwd: Path, extra: list[str] = ()) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([MULTI_AGENT, *args, *extra], cwd=cwd, env=clean_env(),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, (args, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stdout + proc.stderr
    return proc


def add_token(command: list[str], user: str, cwd: Path, extra: list[str] = ()) -> str:
    """Runs the README's ``serve token add USER`` (for ``user``) and returns the printed token."""
    assert command[:3] == ["serve", "token", "add"], command
    proc = run([*command[:3], user, *command[4:]], cwd, extra)
    lines = proc.stdout.split()
    assert len(lines) == 1, proc.stdout  # the token alone on stdout; the note goes to stderr
    return lines[0]


@dataclass
class Server:
    """A running ``multi-agent serve``."""

    args: list[str]
    cwd: Path
    port: int
    program: list[str] = field(default_factory=lambda: [MULTI_AGENT])
    proc: subprocess.Popen[str] | None = None
    log: Path = field(init=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Server:
        self.log = self.cwd / f"serve-{self.port}.log"
        out = self.log.open("a")
        self.proc = subprocess.Popen([*self.program, *self.args], cwd=self.cwd, env=clean_env(),
                                     stdout=out, stderr=subprocess.STDOUT, text=True)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"serve exited {self.proc.returncode}: {self.output()}")
            try:
                if httpx.get(f"{self.url}/api/info", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"serve did not answer in {START_TIMEOUT} s: {self.output()}")

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]

    def stop(self) -> str:
        """Ctrl-C, as a person stops it; returns what it printed."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        return self.output()


def serve_command(commands: list[list[str]]) -> list[str]:
    """The README's ``serve`` command with a free port instead of 8000."""
    (command,) = [c for c in commands if c[:1] == ["serve"] and "token" not in c]
    assert README_PORT in command, command
    return command


def api(server: Server, token: str) -> httpx.Client:
    return httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"},
                        timeout=60)
