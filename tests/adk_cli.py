"""Driving HTTP servers and ADK's command-line tools in tests (adk web, api_server, run)."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def server_process(argv: Sequence[str], base: str, ready_path: str, *, cwd: Path,
                   env: dict[str, str] | None = None, timeout: float = 90, log: Path,
                   pids: list[int] | None = None) -> Iterator[str]:
    """Runs ``argv`` (an HTTP server listening at ``base``) until ``GET ready_path`` answers
    200; yields ``base``; stops it afterwards. Its output goes to ``log``; ``pids`` gets the
    server's process id."""
    with log.open("w") as out:
        proc = subprocess.Popen(list(argv), cwd=cwd, stdout=out, stderr=subprocess.STDOUT,
                                env=env or dict(os.environ))
        if pids is not None:
            pids.append(proc.pid)
        try:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    if httpx.get(f"{base}{ready_path}", timeout=2).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"{Path(argv[0]).name} {argv[1]} did not start:\n"
                                         + log.read_text()[-3000:])
                time.sleep(0.3)
            yield base
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@contextlib.contextmanager
def adk_server(adk: Path, command: str, agents: Path, args: Sequence[str], *, cwd: Path,
               env: dict[str, str] | None = None, timeout: float = 90,
               log: Path | None = None, pids: list[int] | None = None) -> Iterator[str]:
    """Runs ``adk <command> --port P <args> <agents>`` (``web`` or ``api_server``) until it
    answers ``/list-apps``; yields its base URL; stops it afterwards. Its output goes to
    ``log`` (default: a file in ``cwd``); ``pids`` gets the server's process id."""
    port = free_port()
    argv = [str(adk), command, "--host", "127.0.0.1", "--port", str(port), *args, str(agents)]
    with server_process(argv, f"http://127.0.0.1:{port}", "/list-apps", cwd=cwd, env=env,
                        timeout=timeout, log=log or cwd / f"adk-{command}-{port}.log",
                        pids=pids) as base:
        yield base


def adk_turn(base: str, app: str, user: str, session_id: str, text: str) -> list[dict[str, Any]]:
    """One ``POST /run`` turn; returns ADK's events as JSON."""
    run = httpx.post(f"{base}/run", timeout=120, json={
        "app_name": app, "user_id": user, "session_id": session_id,
        "new_message": {"role": "user", "parts": [{"text": text}]},
    })
    assert run.status_code == 200, run.text
    return run.json()


def texts(events: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """(author, text) of every text part."""
    return [(e["author"], p["text"]) for e in events
            for p in ((e.get("content") or {}).get("parts") or []) if p.get("text")]


def adk_run(adk: Path, agent: str, session_uri: str, lines: Sequence[str], *, cwd: Path,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``adk run --session_service_uri URI AGENT`` with ``lines`` piped to its prompt."""
    return subprocess.run(
        [str(adk), "run", "--session_service_uri", session_uri, agent],
        input="".join(f"{line}\n" for line in lines), cwd=cwd, env=env or dict(os.environ),
        capture_output=True, text=True, timeout=180,
    )
