"""Trimming beside other processes: a writer process appending to a session while it is
trimmed loses nothing, and ``multi-agent prune --keep-last`` driven as a person does (a real
process, a real SQLite file; PostgreSQL with --json)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from multi_agent import DatabaseSessionService
from tests.chat._util import BIN, TIMEOUT, clean_env, sqlite_url
from tests.conftest import fresh_pg_database
from tests.lifecycle._trim_util import build, pairs_intact

APPENDS = 60

WRITER = textwrap.dedent("""
    import asyncio, json, os, sys, time
    from google.adk.events.event import Event
    from google.adk.events.event_actions import EventActions
    from google.genai import types
    from multi_agent import DatabaseSessionService

    async def main(url, app, count, stop):
        acked = []
        async with DatabaseSessionService(url) as store:
            session = await store.get_session(app_name=app, user_id="w", session_id="live")
            n = 0
            # At least count turns, and on until the test has seen trims run beside them.
            while n < count or not os.path.exists(stop):
                for author, words in (("user", f"ask {n}"), ("helper", f"reply {n}")):
                    event = Event(
                        invocation_id=f"w-{n}", author=author,
                        content=types.Content(role="user" if author == "user" else "model",
                                              parts=[types.Part(text=words)]),
                        actions=EventActions(state_delta={f"w{n}": n} if author != "user"
                                             else {}))
                    await store.append_event(session, event)
                    acked.append(event.id)
                time.sleep(0.01)
                n += 1
        print(json.dumps(acked))

    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]))
""")


@pytest.fixture(params=["sqlite_file", "postgres"])
async def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite_file":
        return sqlite_url(tmp_path / "store.db")
    return await fresh_pg_database()


async def test_a_writer_process_loses_nothing_during_trims(url: str, app_name: str,
                                                           tmp_path: Path) -> None:
    async with DatabaseSessionService(url) as store:
        for n in range(20):
            await build(store, app_name, "ann", f"s{n}")
        await build(store, app_name, "w", "live", runs=2)
        stop = tmp_path / "stop"  # the writer goes on until two trim passes ran beside it
        writer = subprocess.Popen(  # noqa: ASYNC220 - starts it, does not wait
            [sys.executable, "-c", WRITER, url, app_name, str(APPENDS), str(stop)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=clean_env())
        passes_during = deleted_during = 0
        try:
            while writer.poll() is None:
                report = await store.trim_sessions(keep_last_events=6, app_name=app_name,
                                                   max_events=3)
                if writer.poll() is None:
                    passes_during += 1
                    deleted_during += report.totals()["events"]
                    if passes_during >= 2 and deleted_during > 0:
                        stop.touch()
                await asyncio.sleep(0.05)
            out, err = writer.communicate(timeout=TIMEOUT)
        finally:
            if writer.poll() is None:
                writer.kill()
        assert writer.returncode == 0, err
        acked = json.loads(out)
        turns = len(acked) // 2
        assert len(acked) == 2 * turns and turns >= APPENDS
        # The trims ran while the writer appended, and trimmed its session too.
        assert passes_during >= 1 and deleted_during > 0, (passes_during, deleted_during)
        await store.trim_sessions(keep_last_events=6, app_name=app_name)
        live = await store.get_session(app_name=app_name, user_id="w", session_id="live")
        assert live is not None
        # Nothing acknowledged was lost: every append got its seq (8 events before it),
        # every state write is there, and the events kept are the newest ones.
        doc = await store.export_session(app_name=app_name, user_id="w", session_id="live")
        assert doc["session"]["last_seq"] == 8 + 2 * turns
        assert all(live.state[f"w{n}"] == n for n in range(turns))
        assert [e.id for e in live.events] == acked[-len(live.events):]
        assert doc["session"]["event_count"] == len(doc["events"]) == len(live.events)
        runs = await store.list_runs(app_name=app_name, user_id="w", session_id="live")
        ids = {r.run_id for r in runs}
        assert all(r.parent_run_id is None or r.parent_run_id in ids for r in runs)
        assert len(runs) == 2 + turns


def shell(command: str, *, cwd: Path, db: str, stdin: str = "") -> subprocess.CompletedProcess:
    env = clean_env(PATH=f"{BIN}:{clean_env().get('PATH', '')}", MULTI_AGENT_DB=db)
    return subprocess.run(["bash", "-c", command], cwd=cwd, env=env, input=stdin,
                          capture_output=True, text=True, timeout=TIMEOUT * 2)


def seed(url: str) -> None:
    async def write() -> None:
        async with DatabaseSessionService(url) as store:
            await build(store, "multi_agent", "ann", "s1")
            await build(store, "multi_agent", "ann", "s2", runs=2)
            await build(store, "multi_agent", "bob", "s3")

    asyncio.run(write())


def events_of(url: str, user: str, sid: str) -> list:
    async def read() -> list:
        async with DatabaseSessionService(url) as store:
            session = await store.get_session(app_name="multi_agent", user_id=user,
                                              session_id=sid)
            assert session is not None
            return session.events

    return asyncio.run(read())


def test_prune_keep_last_cli(tmp_path: Path) -> None:
    db = tmp_path / "multi_agent_data.db"
    url = sqlite_url(db)
    seed(url)
    proc = shell("multi-agent prune --keep-last 6 --dry-run", cwd=tmp_path, db=url)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [
        "Would trim 2 sessions, 32 events, 8 runs emptied, 0 memory entries (keep the last 6 "
        "events):",
        "  multi_agent / ann: 1 session, 16 events, 4 runs emptied, 0 memory entries",
        "  multi_agent / bob: 1 session, 16 events, 4 runs emptied, 0 memory entries",
    ]
    assert len(events_of(url, "ann", "s1")) == 25  # a dry run deletes nothing
    proc = shell("multi-agent prune --keep-last 6", cwd=tmp_path, db=url)
    assert proc.returncode == 2 and "pass --yes" in proc.stderr
    proc = shell("multi-agent prune --keep-last 6 --yes", cwd=tmp_path, db=url)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("Trimmed 2 sessions, 32 events"), proc.stdout
    assert proc.stdout.splitlines()[-1].startswith("Space: ")
    kept = events_of(url, "ann", "s1")
    assert len(kept) == 9 and pairs_intact(kept)
    assert len(events_of(url, "ann", "s2")) == 8
    # Branching into the pruned history: a clear message, no traceback.
    proc = shell("multi-agent branch --user ann --session s1 --from inv-2", cwd=tmp_path,
                 db=url)
    assert proc.returncode == 1 and "its history was pruned" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr
    proc = shell("multi-agent runs --user ann --session s1", cwd=tmp_path, db=url)
    assert proc.returncode == 0 and "4 pruned" in proc.stdout, proc.stdout
    # A stored policy, applied by --policy.
    proc = shell("multi-agent prune --app multi_agent --keep-last 4 --save-policy",
                 cwd=tmp_path, db=url)
    assert proc.returncode == 0 and "Stored the retention policy" in proc.stdout, proc.stderr
    proc = shell("multi-agent prune --policy --yes", cwd=tmp_path, db=url)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("Trimmed 3 sessions, 12 events"), proc.stdout
    # Bad input: a clear message.
    for command, words in (("multi-agent prune --keep-last 0 --yes",
                            "--keep-last: must be a whole number of events from 1"),
                           ("multi-agent prune --keep-days soon --yes", "is not an age"),
                           ("multi-agent prune --keep-last 5 --older-than 3d", "two commands"),
                           ("multi-agent prune", "say what to prune")):
        proc = shell(command, cwd=tmp_path, db=url)
        assert proc.returncode in (1, 2) and words in proc.stderr, (command, proc.stderr)
        assert "Traceback" not in proc.stderr


def test_prune_keep_last_json_on_postgresql(tmp_path: Path) -> None:
    url = asyncio.run(fresh_pg_database())
    seed(url)
    proc = shell(f"multi-agent prune --db '{url}' --keep-last 6 --keep-days 30 --yes --json",
                 cwd=tmp_path, db=url)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["totals"] == {"sessions": 2, "events": 32, "runs": 8, "memory_entries": 0}
    assert report["space"] == "autovacuum" and not report["dry_run"]
    assert [(u["user_id"], u["events"]) for u in report["by_user"]] == [("ann", 16),
                                                                      ("bob", 16)]
