"""``multi-agent sessions --page-size/--page-token/--all-users``: paged listings, newest first,
through the real command (issue 17); ``state`` and ``runs`` pick the newest session from one
page of one."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

import pytest
from sqlalchemy import text

from multi_agent import DatabaseSessionService
from tests.chat._util import APP, ok, one_line_error, run_cli, sqlite_url

pytestmark = pytest.mark.timeout(300)

NEXT = re.compile(r"^Next page: multi-agent sessions (.+)$", re.M)


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """ann has s0..s6 (s6 newest), bob has b0 and b1, at known update times."""
    path = tmp_path_factory.mktemp("pages") / "pages.db"

    async def build() -> None:
        async with DatabaseSessionService(sqlite_url(path)) as store:
            times = {}
            for i in range(7):
                await store.create_session(app_name=APP, user_id="ann", session_id=f"s{i}",
                                           state={"i": i})
                times[f"s{i}"] = 1_700_000_000.0 + 10 * i
            for i in range(2):
                await store.create_session(app_name=APP, user_id="bob", session_id=f"b{i}")
                times[f"b{i}"] = 1_700_000_005.0 + 20 * i

            def write(conn) -> None:
                for sid, t in times.items():
                    conn.execute(text("UPDATE ma_sessions SET update_time=:t WHERE id=:s"),
                                 {"t": t, "s": sid})

            await store.backend.run(write, write=True)

    asyncio.run(build())
    return path


def follow(db: Path, *args: str) -> tuple[list[list[str]], list[str]]:
    """Every page of a table listing, following the printed next-page commands."""
    pages, commands = [], []
    argv = list(args)
    while True:
        out = ok(run_cli("sessions", "--db", str(db), *argv, cwd=db.parent))
        pages.append(re.findall(r"\b([sb]\d)\b", out))
        found = NEXT.search(out)
        if not found:
            return pages, commands
        commands.append(found.group(1))
        argv = found.group(1).split()


def test_table_pages_newest_first_with_the_next_command(db: Path) -> None:
    pages, commands = follow(db, "--user", "ann", "--page-size", "3")
    assert pages == [["s6", "s5", "s4"], ["s3", "s2", "s1"], ["s0"]]
    assert len(commands) == 2 and all("--page-token" in c for c in commands)
    pages, _ = follow(db, "--all-users", "--page-size", "4")
    assert pages == [["s6", "s5", "s4", "s3"], ["b1", "s2", "s1", "b0"], ["s0"]]
    # Without paging options: every session, oldest first, as before.
    out = ok(run_cli("sessions", "--db", str(db), "--user", "ann", cwd=db.parent))
    assert re.findall(r"\b(s\d)\b", out) == [f"s{i}" for i in range(7)]


def test_json_pages(db: Path) -> None:
    seen, token = [], None
    while True:
        extra = ["--page-token", token] if token else []
        body = json.loads(ok(run_cli("sessions", "--db", str(db), "--user", "ann", "--json",
                                     "--page-size", "5", *extra, cwd=db.parent)))
        assert set(body) == {"sessions", "next_page_token"}
        seen += [r["id"] for r in body["sessions"]]
        token = body["next_page_token"]
        if token is None:
            break
    assert seen == ["s6", "s5", "s4", "s3", "s2", "s1", "s0"]
    body = json.loads(ok(run_cli("sessions", "--db", str(db), "--all-users", "--json",
                                 "--page-size", "2", cwd=db.parent)))
    assert [(r["user_id"], r["id"]) for r in body["sessions"]] == [("ann", "s6"), ("ann", "s5")]


def test_bad_page_options_are_one_clear_line(db: Path) -> None:
    one_line_error(run_cli("sessions", "--db", str(db), "--user", "ann", "--page-token",
                           "garbage", cwd=db.parent), "not a token this listing handed out")
    body = json.loads(ok(run_cli("sessions", "--db", str(db), "--user", "ann", "--json",
                                 "--page-size", "1", cwd=db.parent)))
    one_line_error(run_cli("sessions", "--db", str(db), "--user", "bob", "--page-token",
                           body["next_page_token"], cwd=db.parent),
                   "belongs to the listing of user 'ann'")
    for size in ("0", "1001", "x"):
        proc = run_cli("sessions", "--db", str(db), "--user", "ann", "--page-size", size,
                       cwd=db.parent)
        assert proc.returncode == 2 and "--page-size: must be a whole number" in proc.stderr
        assert "Traceback" not in proc.stderr


def test_state_and_runs_default_to_the_newest_session(db: Path) -> None:
    state = json.loads(ok(run_cli("state", "--db", str(db), "--user", "ann", "--json",
                                  cwd=db.parent)))
    assert state["i"] == 6
    out = ok(run_cli("runs", "--db", str(db), "--user", "ann", cwd=db.parent))
    assert "s6" in out
