"""``multi-agent forget`` driven the way a person does: a real process, a real database file,
the serve's default token file beside it; the README's commands exactly as printed there."""

from __future__ import annotations

import asyncio
import json
import subprocess
from pathlib import Path

import pytest

from multi_agent import DatabaseSessionService
from multi_agent.memory import DatabaseMemoryService
from tests.chat._util import BIN, TIMEOUT, answer_on_terminal, clean_env, sqlite_url
from tests.conftest import fresh_pg_database
from tests.lifecycle._forget_util import ALL_TABLES, counts, file_hits, populate

from multi_agent.store import api_tokens as tokens_module

APP = "multi_agent"
ANN_PHRASE = "xqjannsaidwombatvelvet"
BOB_PHRASE = "xqjbobsaidwombatvelvet"

# The commands of the README's "Forgetting a user", run as printed.
README_DRY_RUN = "multi-agent forget --user ann --dry-run"
README_FORGET = "multi-agent forget --user ann --yes --json"


def test_readme_shows_these_commands() -> None:
    text = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    section = text.split("## Forgetting a user\n", 1)[1].split("\n## ", 1)[0]
    block = section.split("```\n", 2)[1]
    assert block.splitlines() == [README_DRY_RUN, README_FORGET]


def seed(url: str) -> dict[str, int]:
    """ann (3 sessions) and bob (2 sessions), each with memory and state; returns bob's
    counts."""
    async def write() -> dict[str, int]:
        async with DatabaseSessionService(url) as store:
            memory = DatabaseMemoryService(store, search="fulltext")
            await populate(store, memory, APP, "ann", ANN_PHRASE)
            await populate(store, memory, APP, "bob", BOB_PHRASE, sessions=2)
            await memory.close()
            return await counts(store, APP, "bob")

    return asyncio.run(write())


def left(url: str, user: str) -> dict[str, int]:
    async def read() -> dict[str, int]:
        async with DatabaseSessionService(url) as store:
            return await counts(store, APP, user)

    return asyncio.run(read())


def shell(command: str, *, cwd: Path, db: str, stdin: str = "") -> subprocess.CompletedProcess:
    env = clean_env(PATH=f"{BIN}:{clean_env().get('PATH', '')}", MULTI_AGENT_DB=db)
    return subprocess.run(["bash", "-c", command], cwd=cwd, env=env, input=stdin,
                          capture_output=True, text=True, timeout=TIMEOUT * 2)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "multi_agent_data.db"
    seed(sqlite_url(path))
    tokens = tokens_module.TokenFile(tmp_path / "multi_agent_tokens.json")  # the default file
    tokens.add("ann")
    tokens.add("bob")
    return path


def test_readme_commands(db: Path) -> None:
    url = sqlite_url(db)
    bob = left(url, "bob")
    proc = shell(README_DRY_RUN, cwd=db.parent, db=url)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == (
        "Would forget user ann in app multi_agent: 3 sessions, 18 events, 9 runs, "
        "1 user: state row, 18 memory entries, 0 memory vectors, 3 memory watermarks, "
        "1 API token.")
    assert left(url, "ann")["ma_events"] == 18

    # Not a terminal and no --yes: a usage error, nothing removed.
    proc = shell("multi-agent forget --user ann", cwd=db.parent, db=url, stdin="y\n")
    assert proc.returncode == 2 and "pass --yes" in proc.stderr
    assert left(url, "ann")["ma_events"] == 18

    proc = shell(README_FORGET, cwd=db.parent, db=url)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["rows"]["ma_events"] == 18 and report["tokens"] == 1
    assert report["found"] and report["wal_emptied"] and report["vacuumed"]
    assert report["tokens_file"] == str(db.parent / "multi_agent_tokens.json")
    assert left(url, "ann") == dict.fromkeys(ALL_TABLES, 0)
    assert left(url, "bob") == bob
    assert file_hits(db, [ANN_PHRASE, ANN_PHRASE[3:]]) == set()
    assert {n for _, n in file_hits(db, [BOB_PHRASE])} == {BOB_PHRASE}
    tokens = tokens_module.TokenFile(db.parent / "multi_agent_tokens.json")
    assert [r.user for r in tokens.records()] == ["bob"]

    # Again: nothing left, a clear message, exit 1.
    proc = shell("multi-agent forget --user ann --yes", cwd=db.parent, db=url)
    assert proc.returncode == 1
    assert proc.stderr.startswith("multi-agent: Nothing stored of user 'ann' in app "
                                  "'multi_agent'"), proc.stderr
    assert "Traceback" not in proc.stderr


def test_asks_on_a_terminal(db: Path) -> None:
    def ask(answer: str) -> tuple[int | None, str]:
        return answer_on_terminal(
            ["forget", "--user", "ann", "--db", str(db)],
            "Forget user ann in app multi_agent: remove 3 sessions, 18 events", answer,
            cwd=db.parent)

    code, out = ask("n")
    assert code == 1 and "Nothing was removed." in out, out
    assert left(sqlite_url(db), "ann")["ma_sessions"] == 3
    code, out = ask("y")
    assert code == 0 and "Forgot user ann in app multi_agent: removed 3 sessions" in out, out
    assert left(sqlite_url(db), "ann")["ma_sessions"] == 0


def test_postgresql(tmp_path: Path) -> None:
    url = asyncio.run(fresh_pg_database())
    bob = seed(url)
    tokens = tokens_module.TokenFile(tmp_path / "tokens.json")
    tokens.add("ann")
    proc = shell(f"multi-agent forget --db '{url}' --user ann --tokens tokens.json --yes",
                 cwd=tmp_path, db=url)
    assert proc.returncode == 0, proc.stderr
    assert "Forgot user ann in app multi_agent: removed 3 sessions, 18 events, 9 runs" \
        in proc.stdout and "1 API token." in proc.stdout
    assert left(url, "ann") == dict.fromkeys(ALL_TABLES, 0)
    assert left(url, "bob") == bob
    assert tokens.records() == []


# -- multi-agent prune -------------------------------------------------------------------------

README_PRUNE_DRY_RUN = "multi-agent prune --older-than 30d --dry-run"
README_PRUNE = "multi-agent prune --older-than 30d --yes"
README_INCREMENTAL = "sqlite3 multi_agent_data.db 'PRAGMA auto_vacuum=INCREMENTAL; VACUUM;'"


def test_readme_shows_the_prune_commands() -> None:
    text = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    section = text.split("## Retention\n", 1)[1].split("\n## ", 1)[0]
    blocks = [b.splitlines() for b in section.split("```\n")[1::2]]
    assert blocks == [[README_PRUNE_DRY_RUN, README_PRUNE], [README_INCREMENTAL]]


def age_all_but(url: str, keep: str, days: float) -> None:
    from sqlalchemy import text

    async def write() -> None:
        async with DatabaseSessionService(url) as store:
            await store.backend.run(lambda conn: conn.execute(text(
                "UPDATE ma_sessions SET update_time = :t WHERE id <> :keep"),
                {"t": __import__("time").time() - days * 86400, "keep": keep}), write=True)

    asyncio.run(write())


def test_prune_readme_commands(db: Path) -> None:
    url = sqlite_url(db)
    age_all_but(url, "bob-s1", 40)  # every session but bob's second is 40 days idle
    proc = shell(README_INCREMENTAL, cwd=db.parent, db=url)
    assert proc.returncode == 0, proc.stderr
    proc = shell(README_PRUNE_DRY_RUN, cwd=db.parent, db=url)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [
        "Would delete 4 sessions, 24 events, 12 runs, 24 memory entries (idle for more than "
        "30d):",
        "  multi_agent / ann: 3 sessions, 18 events, 9 runs, 18 memory entries",
        "  multi_agent / bob: 1 session, 6 events, 3 runs, 6 memory entries",
    ]
    proc = shell("multi-agent prune --older-than 30d", cwd=db.parent, db=url)
    assert proc.returncode == 2 and "pass --yes" in proc.stderr
    proc = shell(README_PRUNE, cwd=db.parent, db=url)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("Deleted 4 sessions, 24 events, 12 runs, 24 memory entries")
    assert lines[-1].startswith("Space: ") and "(incremental vacuum)" in lines[-1], lines
    assert left(url, "ann")["ma_sessions"] == 0 and left(url, "bob")["ma_sessions"] == 1
    proc = shell(README_PRUNE, cwd=db.parent, db=url)
    assert proc.returncode == 0 and proc.stdout.startswith(
        "No session has been idle for more than 30d: nothing to delete."), proc.stdout
    proc = shell("multi-agent prune --older-than soon --yes", cwd=db.parent, db=url)
    assert proc.returncode == 2 and "'soon' is not an age" in proc.stderr


def test_prune_json_on_postgresql() -> None:
    url = asyncio.run(fresh_pg_database())
    seed(url)
    age_all_but(url, "bob-s1", 40)
    proc = shell(f"multi-agent prune --db '{url}' --older-than 30d --yes --json",
                 cwd=Path.cwd(), db=url)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["totals"] == {"sessions": 4, "events": 24, "runs": 12, "memory_entries": 24}
    assert report["space"] == "autovacuum" and not report["dry_run"]
    assert [(u["user_id"], u["sessions"]) for u in report["by_user"]] == [("ann", 3), ("bob", 1)]
