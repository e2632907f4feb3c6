"""Several users at once from several OS processes, on two server processes sharing one
database: every acknowledged run is stored, finished, in its own user's thread, once."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from multi_agent.store.api_tokens import TokenFile
from tests.serve._server import serve

pytestmark = pytest.mark.timeout(300)

CLIENT = Path(__file__).with_name("_client_process.py")
USERS = 4
PROCESSES_PER_USER = 2
TURNS = 3


def test_every_acknowledged_run_is_stored(deployment) -> None:
    tokens = TokenFile(deployment.tokens)
    users = {f"crowd{i}": tokens.add(f"crowd{i}")[0] for i in range(USERS)}
    with serve(deployment.db, tmp=deployment.tmp, tokens=deployment.tokens,
               slow=False) as second:
        urls = [deployment.server.url, second.url]
        procs = []
        for n, (user, token) in enumerate(sorted(users.items()) * PROCESSES_PER_USER):
            procs.append((user, subprocess.Popen(
                [sys.executable, str(CLIENT), urls[n % 2], token, str(TURNS)],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            )))
        results: dict[str, list[dict]] = {}
        for user, proc in procs:
            out, err = proc.communicate(timeout=240)
            assert proc.returncode == 0, err[-3000:]
            results.setdefault(user, []).append(json.loads(out))
        for user, token in users.items():
            with deployment.server.client(token) as client:
                threads = {t["threadId"] for t in
                           client.get("/api/threads", params={"limit": 100}).json()["items"]}
                assert threads == {r["thread"] for r in results[user]}
                for result in results[user]:
                    assert not result["refused"], result
                    runs = client.get(f"/api/threads/{result['thread']}/runs").json()["items"]
                    assert [r["runId"] for r in runs] == result["acknowledged"]
                    assert all(r["status"] == "finished" for r in runs)
        total = sum(len(r["acknowledged"]) for rs in results.values() for r in rs)
        assert total == USERS * PROCESSES_PER_USER * TURNS
    assert "Traceback" not in deployment.server.stderr() + second.stderr()
