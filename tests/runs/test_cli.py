"""The run-tree commands as a person drives them: the real CLI in a subprocess, a SQLite file."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from multi_agent import DatabaseSessionService
from tests.runs._scenario import USER, Scenario, three_turns_branch_fourth

APP = "multi_agent"  # the CLI's default app name


def cli(*args: str, cwd: Path, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MULTI_AGENT_")}
    env["COLUMNS"] = "200"
    return subprocess.run(
        [sys.executable, "-m", "multi_agent", *args], cwd=cwd, env=env, input=stdin,
        capture_output=True, text=True, timeout=120,
    )


def ok(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    return proc.stdout


def one_line_error(proc: subprocess.CompletedProcess[str], fragment: str, code: int = 1) -> str:
    """The one-line error of a failed command (exit 1; 2 for a usage error)."""
    assert proc.returncode == code, (proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("multi-agent: "), proc.stderr
    assert fragment in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def db(tmp_path: Path) -> tuple[Path, Scenario]:
    """A SQLite file holding the scripted conversation (3 turns, branch from 1, turn 4)."""
    path = tmp_path / "data.db"

    async def build() -> Scenario:
        async with DatabaseSessionService(f"sqlite+aiosqlite:///{path}") as store:
            return await three_turns_branch_fourth(store, APP)

    return path, asyncio.run(build())


def test_runs_json_and_tree(db, tmp_path: Path) -> None:
    path, sc = db
    t1, t2, t3, t4 = sc.turns
    runs = json.loads(ok(cli("runs", "--db", str(path), "--user", USER, "--session", "s1",
                             "--json", cwd=tmp_path)))
    assert [set(r) for r in runs] == [{
        "run_id", "parent_run_id", "kind", "agent", "status", "started_at", "ended_at",
        "event_count", "on_path",
    }] * 5
    by_id = {r["run_id"]: r for r in runs}
    assert [by_id[t]["parent_run_id"] for t in sc.turns] == [None, t1, t2, t1]
    assert [by_id[t]["on_path"] for t in sc.turns] == [True, False, False, True]
    sub = next(r for r in runs if r["kind"] == "delegation")
    assert (sub["parent_run_id"], sub["agent"], sub["status"], sub["event_count"]) == (
        t1, "worker", "completed", 3
    )
    assert all(isinstance(r["started_at"], float) and r["ended_at"] >= r["started_at"]
               for r in runs)
    text = ok(cli("runs", "--db", str(path), "--user", USER, "--session", "s1", cwd=tmp_path))
    lines = text.splitlines()
    assert "◀ head" in next(line for line in lines if t4 in line)
    assert "○ " + t2 in next(line for line in lines if t2 in line)  # off the path
    assert "↪ worker@" in text and "delegation" in text


def test_branch_then_messages(db, tmp_path: Path) -> None:
    path, sc = db
    t1, t2, t3, t4 = sc.turns
    common = ("--db", str(path), "--user", USER)
    out = ok(cli("branch", *common, "--session", "s1", "--from", t3, cwd=tmp_path))
    assert t3 in out and f"{t1} → {t2} → {t3}" in out
    msgs = json.loads(ok(cli("messages", *common, "--session", "s1", "--type", "human",
                             "--json", cwd=tmp_path)))
    assert [m["text"] for m in msgs] == ["one", "two", "three"]
    msgs = json.loads(ok(cli("messages", *common, "--source", "user", "--target", "worker",
                             "--all-branches", "--json", cwd=tmp_path)))
    assert [(m["text"], m["run_id"]) for m in msgs] == [("two", t2), ("three", t3),
                                                        ("four", t4)]
    msgs = json.loads(ok(cli("messages", *common, "--source", "coordinator", "--target",
                             "worker", "--json", cwd=tmp_path)))
    assert [m["message_type"] for m in msgs] == ["tool_call", "tool_result"]
    assert set(msgs[0]) == {"session_id", "seq", "event_id", "run_id", "timestamp", "source",
                            "target", "branch", "message_type", "text", "total_tokens"}
    msgs = json.loads(ok(cli("messages", *common, "--run", t1, "--text", "NOTED", "--since",
                             "2000-01-01T00:00", "--limit", "5", "--json", cwd=tmp_path)))
    assert [(m["source"], m["text"]) for m in msgs] == [("worker", "Noted.")]
    table = ok(cli("messages", *common, "--session", "s1", cwd=tmp_path))
    assert "message(s)" in table and "Noted." in table and "coordinator.worker" in table


def test_export_import_round_trip(db, tmp_path: Path) -> None:
    path, sc = db
    other = tmp_path / "other.db"
    common = ("--db", str(path), "--user", USER, "--session", "s1")
    ok(cli("export", *common, "-o", "s1.json", cwd=tmp_path))
    exported = json.loads((tmp_path / "s1.json").read_text())
    assert exported == json.loads(ok(cli("export", *common, cwd=tmp_path)))  # stdout
    out = ok(cli("import", "s1.json", "--db", str(other), cwd=tmp_path))
    assert "5 runs, 18 events" in out
    again = ok(cli("export", "--db", str(other), "--user", USER, "--session", "s1",
                   cwd=tmp_path))
    assert again == (tmp_path / "s1.json").read_text()  # byte for byte
    # Under another user and session id, from stdin.
    ok(cli("import", "-", "--db", str(other), "--user", "bob", "--session", "s2",
           cwd=tmp_path, stdin=again))
    copy = json.loads(ok(cli("export", "--db", str(other), "--user", "bob", "--session", "s2",
                             cwd=tmp_path)))
    assert copy == {**exported, "user_id": "bob", "session": {**exported["session"], "id": "s2"}}
    # The same id again is refused, clearly.
    one_line_error(cli("import", "s1.json", "--db", str(other), cwd=tmp_path),
                   "already exists")


def test_errors_are_one_clear_line(db, tmp_path: Path) -> None:
    path, sc = db
    common = ("--db", str(path), "--user", USER)
    for command in (("runs", "--json"), ("export",), ("messages",)):
        one_line_error(cli(*command, *common, "--session", "nope", cwd=tmp_path),
                       "Session 'nope' of user 'ann' in app 'multi_agent' does not exist")
    one_line_error(cli("branch", *common, "--session", "nope", "--from", sc.turns[0],
                       cwd=tmp_path), "Session 'nope'")
    one_line_error(cli("branch", *common, "--session", "s1", "--from", "ghost", cwd=tmp_path),
                   "has no run 'ghost'")
    one_line_error(cli("messages", *common, "--run", "ghost", cwd=tmp_path), "Run 'ghost'")
    one_line_error(cli("runs", *common, "--app", "other", "--session", "s1", cwd=tmp_path),
                   "in app 'other' does not exist")
    (tmp_path / "bad.json").write_text(json.dumps({"format": "multi-agent-session",
                                                   "version": 99}))
    one_line_error(cli("import", "bad.json", "--db", str(path), cwd=tmp_path), "version is 99")
    (tmp_path / "broken.json").write_text("{")
    one_line_error(cli("import", "broken.json", "--db", str(path), cwd=tmp_path), "not JSON")
    one_line_error(cli("import", "missing.json", "--db", str(path), cwd=tmp_path),
                   "cannot read missing.json")


def test_every_command_has_an_example(capsys: pytest.CaptureFixture[str]) -> None:
    from multi_agent.cli import main

    for command in ("runs", "branch", "messages", "export", "import"):
        with pytest.raises(SystemExit) as exited:
            main([command, "--help"])
        assert exited.value.code == 0
        out = capsys.readouterr().out
        assert f"Example:\n  multi-agent {command} " in out, out


def test_import_on_a_terminal_shows_a_progress_bar(db, tmp_path: Path) -> None:
    """On a terminal `import` draws a progress bar on stderr; piped, it prints none."""
    import pexpect

    path, scenario = db
    doc = tmp_path / "s.json"
    ok(cli("export", "--db", str(path), "--user", USER, "--session", scenario.session_id,
           "-o", str(doc), cwd=tmp_path))
    env = {k: v for k, v in os.environ.items() if not k.startswith("MULTI_AGENT_")}
    child = pexpect.spawn(
        sys.executable, ["-m", "multi_agent", "import", str(doc), "--db", str(path),
                         "--user", USER, "--session", "copy"],
        cwd=str(tmp_path), env=env, encoding="utf-8", timeout=60, dimensions=(24, 100),
    )
    child.expect("Importing")
    child.expect("Imported session copy")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    piped = cli("import", str(doc), "--db", str(path), "--user", USER, "--session", "copy2",
                cwd=tmp_path)
    assert "Imported session copy2" in ok(piped) and "Importing" not in piped.stderr
