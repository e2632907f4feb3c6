"""The real ``multi-agent serve`` as a subprocess, and a small HTTP client for it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from tests.chat._util import MULTI_AGENT, ROOT, clean_env

SLOW = Path(__file__).with_name("_slow_serve.py")
START_TIMEOUT = 60


def cli(*args: str, cwd: Path, env: dict[str, str] | None = None,
        stdin: str = "") -> subprocess.CompletedProcess[str]:
    """``multi-agent ARGS`` (output captured)."""
    return subprocess.run([MULTI_AGENT, *args], cwd=cwd, env=env or clean_env(), input=stdin,
                          capture_output=True, text=True, timeout=120)


def add_token(user: str, *, tokens: Path, cwd: Path) -> str:
    """``multi-agent serve token add USER --tokens FILE``: the token it prints."""
    proc = cli("serve", "token", "add", user, "--tokens", str(tokens), cwd=cwd)
    assert proc.returncode == 0, proc.stderr
    token = proc.stdout.strip()
    assert token.startswith("mat_") and "\n" not in token, proc.stdout
    return token


class Server:
    """A running ``multi-agent serve``: its base URL, its process and its output."""

    def __init__(self, proc: subprocess.Popen[str], url: str, log: Path) -> None:
        self.proc = proc
        self.url = url
        self.log = log

    def client(self, token: str | None = None, **kwargs: Any) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=60, **kwargs)

    def stderr(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")


@contextmanager
def serve(db: str, *, tmp: Path, tokens: Path, slow: bool = True,
          extra: tuple[str, ...] = ()) -> Iterator[Server]:
    """Starts ``multi-agent serve --db DB --port 0`` (with the stalling model when ``slow``),
    waits for its "Serving ... on URL" line, and stops it (SIGINT, then kill) afterwards."""
    program = [sys.executable, str(SLOW)] if slow else [MULTI_AGENT]
    log = tmp / f"serve-{uuid.uuid4().hex[:6]}.err"
    env = clean_env()
    with log.open("w") as err:
        proc = subprocess.Popen(
            [*program, "serve", "--db", db, "--port", "0", "--tokens", str(tokens), *extra],
            cwd=tmp, env=env, stdout=subprocess.PIPE, stderr=err, text=True,
        )
    try:
        assert proc.stdout is not None
        line = ""
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if line.startswith("Serving") or not line:
                break
        assert line.startswith("Serving"), (line, log.read_text())
        url = line.split(" on ", 1)[1].split(" ", 1)[0]
        yield Server(proc, url, log)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                if slow:  # what it was stuck on, for the failure report
                    proc.send_signal(signal.SIGUSR2)
                    proc.send_signal(signal.SIGUSR1)
                    time.sleep(1)
                proc.kill()
                proc.wait()
                print("multi-agent serve did not stop on SIGINT; its stderr:\n"
                      + log.read_text(errors="replace")[-20000:])


def sse(response: httpx.Response) -> list[dict[str, Any]]:
    """The AG-UI events of a ``text/event-stream`` response."""
    assert response.headers["content-type"].startswith("text/event-stream"), response.text
    events = []
    for block in response.text.split("\n\n"):
        if block.startswith("data: "):
            events.append(json.loads(block[len("data: "):]))
    return events


def run_input(thread_id: str, text: str, *, run_id: str | None = None,
              parent: str | None = None, history: list[dict[str, Any]] | None = None
              ) -> dict[str, Any]:
    """A ``RunAgentInput`` asking ``text``."""
    body: dict[str, Any] = {
        "threadId": thread_id, "runId": run_id or f"run-{uuid.uuid4().hex[:12]}",
        "messages": [*(history or []),
                     {"id": f"m-{uuid.uuid4().hex[:8]}", "role": "user", "content": text}],
        "state": {}, "tools": [], "context": [], "forwardedProps": {},
    }
    if parent is not None:
        body["parentRunId"] = parent
    return body


def run(client: httpx.Client, thread_id: str, text: str, **kwargs: Any) -> list[dict[str, Any]]:
    """One turn: POST .../runs, the whole event stream read."""
    body = run_input(thread_id, text, **kwargs)
    response = client.post(f"/api/threads/{thread_id}/runs", json=body)
    assert response.status_code == 200, response.text
    events = sse(response)
    assert events[0]["type"] == "RUN_STARTED" and events[-1]["type"] == "RUN_FINISHED", events
    return events


def wait_for(predicate: Any, timeout: float = 30.0, interval: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


__all__ = ["ROOT", "Server", "add_token", "cli", "os", "run", "run_input", "serve", "sse",
           "wait_for"]
