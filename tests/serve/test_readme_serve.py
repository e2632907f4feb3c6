"""The README's "Serving the team over HTTP" commands, run as written in a fresh directory (so on
a fresh ./multi_agent_data.db and token file), with a free port instead of 8000."""

from __future__ import annotations

import json
import re
import shlex
import signal
import socket
import subprocess
from pathlib import Path

import pytest

from tests.chat._util import ROOT, clean_env

pytestmark = pytest.mark.timeout(300)


def readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Serving the team over HTTP", 1)[1].split("\n## ", 1)[0]
    (block,) = re.findall(r"```bash\n(.*?)```", section, flags=re.S)
    return [line.split("  #", 1)[0].strip() for line in block.splitlines() if line.strip()]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_the_readme_commands(tmp_path: Path) -> None:
    commands = readme_commands()
    assert any(c.startswith("TOKEN=$(.venv/bin/multi-agent serve token add ") for c in commands)
    port = free_port()
    env = clean_env()
    server = None
    outputs: list[str] = []
    try:
        for command in commands:
            line = command.replace(".venv/bin/", f"{ROOT}/.venv/bin/").replace(
                "127.0.0.1:8000", f"127.0.0.1:{port}")
            if line.endswith("&"):
                assert " serve" in line
                server = subprocess.Popen(
                    [*shlex.split(line[:-1]), "--port", str(port)], cwd=tmp_path, env=env,
                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                )
                assert server.stdout is not None
                first = server.stdout.readline()
                assert first.startswith(f"Serving the team on http://127.0.0.1:{port}"), (
                    first, server.stderr.read() if server.poll() is not None else "")
                outputs.append(first)
                continue
            assign = re.fullmatch(r"(\w+)=\$\((.*)\)", line)
            script = assign.group(2) if assign else line
            proc = subprocess.run(["bash", "-c", script], cwd=tmp_path, env=env,
                                  capture_output=True, text=True, timeout=120)
            assert proc.returncode == 0, (command, proc.stdout, proc.stderr)
            assert "Traceback" not in proc.stdout + proc.stderr
            if assign:
                env[assign.group(1)] = proc.stdout.strip()
            outputs.append(proc.stdout)
        token, info, thread, stream, runs, messages, listed, revoked = (
            env["TOKEN"], outputs[2], outputs[3], outputs[4], outputs[5], outputs[6],
            outputs[7], outputs[8])
        assert token.startswith("mat_")
        assert json.loads(info)["model"] == "offline-rules"
        assert json.loads(thread)["threadId"] == "stocks"
        assert '"type":"RUN_FINISHED"' in stream and "Added NVDA to your watch list" in stream
        assert [r["runId"] for r in json.loads(runs)["items"]] == ["run-1"]
        assert any(m.get("name") == "stock_analyst" for m in json.loads(messages)["messages"])
        assert "ann" in listed and token not in listed
        assert "Revoked token" in revoked
        after = subprocess.run(
            ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-H",
             f"Authorization: Bearer {token}", f"http://127.0.0.1:{port}/api/me"],
            capture_output=True, text=True, timeout=30)
        assert after.stdout == "401"
        assert (tmp_path / "multi_agent_data.db").exists()
        assert oct((tmp_path / "multi_agent_tokens.json").stat().st_mode & 0o777) == "0o600"
    finally:
        if server is not None and server.poll() is None:
            server.send_signal(signal.SIGINT)
            try:
                out, err = server.communicate(timeout=20)
            except subprocess.TimeoutExpired:
                server.kill()
                out, err = server.communicate()
            assert "Traceback" not in err, err
