"""The command line's rough edges, each as a person or a script meets it (real processes).

* every command's ``--help`` has an example that works, and its text is wrapped;
* ``multi-agent ... | head -1`` (or a reader that leaves at once) gives no traceback;
* ``--version``; ``delete``; ``memory reindex`` with a progress bar on a terminal;
* exit codes: 2 for a usage error, 1 for a failure;
* a read-only database: one clear line, exit 1, and no "Everything is saved";
* Ctrl-C right after a complete answer does not mark that run cancelled;
* the semantic model loads in the background, and a turn that waits for it says so.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pexpect
import pytest

from tests.chat._util import (
    APP,
    BIN,
    MULTI_AGENT,
    TIMEOUT,
    Terminal,
    answer_on_terminal,
    clean_env,
    interrupt_piped_chat,
    ok,
    one_line_error,
    read_back,
    run_cli,
    sqlite_url,
)

pytestmark = pytest.mark.timeout(600)

USER = "ann"
RUN = "e-1a2b3c"  # a run id the help examples name


# -- a prepared database -------------------------------------------------------------------------


def seed(db: Path) -> None:
    """Session ``s1`` of ann: a run with a known id (e-1a2b3c), then a real chat turn."""
    from google.adk.events.event import Event
    from google.genai import types

    from multi_agent import DatabaseSessionService
    from multi_agent.team.app import new_session_state

    async def write() -> None:
        async with DatabaseSessionService(sqlite_url(db)) as store:
            session = await store.create_session(
                app_name=APP, user_id=USER, session_id="s1", state=new_session_state()
            )
            for author, text in (("user", "tell me a joke about python"),
                                 ("funny_nerd", "A joke about python, stored by the test.")):
                await store.append_event(session, Event(
                    invocation_id=RUN, author=author, timestamp=time.time(),
                    content=types.Content(role="user" if author == "user" else "model",
                                          parts=[types.Part(text=text)]),
                ))

    asyncio.run(write())
    ok(run_cli("chat", "--user", USER, "--db", str(db), "--session", "s1", cwd=db.parent,
               stdin="add NVDA to my watch list\n"))


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    db = tmp_path_factory.mktemp("prepared") / "multi_agent_data.db"
    seed(db)
    assert not Path(f"{db}-wal").exists()  # closed cleanly: one file holds it all
    return db


@pytest.fixture
def db(prepared: Path, tmp_path: Path) -> Path:
    """A copy of the prepared database in this test's directory."""
    copy = tmp_path / prepared.name
    shutil.copy(prepared, copy)
    return copy


def shell(command: str, *, cwd: Path, db: Path | None = None, stdin: str = "",
          timeout: float = TIMEOUT * 2) -> subprocess.CompletedProcess[str]:
    """``sh -c command`` with the venv's multi-agent on PATH and $MULTI_AGENT_DB set."""
    env = clean_env(PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    if db is not None:
        env["MULTI_AGENT_DB"] = sqlite_url(db)
    return subprocess.run(["bash", "-c", command], cwd=cwd, env=env, input=stdin,
                          capture_output=True, text=True, timeout=timeout)


# -- --help, --version -----------------------------------------------------------------------------


def all_commands() -> list[list[str]]:
    """Every command and sub-command, as argv prefixes (``["memory", "reindex"]``...)."""
    import argparse

    from multi_agent.cli import build_parser

    out: list[list[str]] = []

    def walk(parser: argparse.ArgumentParser, prefix: list[str]) -> None:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, child in action.choices.items():
                    out.append([*prefix, name])
                    walk(child, [*prefix, name])

    walk(build_parser(), [])
    return out


def examples(help_text: str) -> list[str]:
    """The indented lines under ``Example:``/``Examples:`` in a --help text."""
    found: list[str] = []
    taking = False
    for line in help_text.splitlines():
        if re.fullmatch(r"Examples?:", line.strip()):
            taking = True
        elif taking and line.startswith("  ") and line.strip():
            found.append(line.strip())
        else:
            taking = False
    return found


def test_every_help_has_a_working_example(db: Path) -> None:
    """Each command's examples run as printed (only $MULTI_AGENT_DB points at a database
    prepared for them: user ann, session s1 with run e-1a2b3c)."""
    commands = all_commands()
    assert ["delete"] in commands and ["memory", "reindex"] in commands
    runs: list[tuple[list[str], str]] = []
    for command in commands:
        proc = run_cli(*command, "--help", cwd=db.parent, env=clean_env(COLUMNS="80"))
        text = ok(proc)
        found = examples(text)
        assert found, (command, text)
        for example in found:
            assert re.match(r"^(multi-agent |printf .*\| multi-agent )", example), example
            runs.append((command, example))
        # Wrapped to the terminal: only the example lines may be wider.
        for line in text.splitlines():
            assert len(line) <= 80 or line.strip() in found, (command, line)
    # Destructive examples last, so every other one finds session s1 (forget after delete:
    # ann still has user: state to forget then).
    runs.sort(key=lambda item: {"delete": 1, "forget": 2}.get(" ".join(item[0]), 0))
    for _command, example in runs:
        proc = shell(example, cwd=db.parent, db=db)
        assert proc.returncode == 0, (example, proc.stdout[-2000:], proc.stderr[-2000:])
        assert "Traceback" not in proc.stderr + proc.stdout, example
    stored = read_back(db, USER)
    assert "s1" not in [e["session"].id for e in stored["sessions"]]  # the delete example ran
    assert stored["sessions"] == [] and stored["user_state"] == {}  # the forget examples ran
    assert read_back(db, "bob")["sessions"][0]["session"].id == "s1-copy"  # import ran


def test_version(tmp_path: Path) -> None:
    from multi_agent import __version__

    proc = run_cli("--version", cwd=tmp_path)
    assert ok(proc).strip() == f"multi-agent {__version__}"


# -- pipes that close early ------------------------------------------------------------------------

READERS = ["head -1", "true"]  # true leaves before the first line: a write fails for sure

PIPED = [
    "printf 'tell me a joke\\n/state\\n' | multi-agent chat --user ann",
    "multi-agent chat --user ann --verbose < /dev/null",
    "multi-agent sessions --user ann",
    "multi-agent sessions --user ann --json",
    "multi-agent state --user ann",
    "multi-agent state --user ann --json",
    "multi-agent runs --user ann --session s1",
    "multi-agent runs --user ann --session s1 --json",
    "multi-agent messages --user ann",
    "multi-agent messages --user ann --json",
    "multi-agent export --user ann --session s1",
    "multi-agent branch --user ann --session s1 --from e-1a2b3c",
    "multi-agent memory reindex --user ann --no-embed",
    "multi-agent delete --user ann --session s1 --yes",
    "multi-agent --help",
    "multi-agent chat --help",
    "multi-agent --version",
]

# Drawn with a plain rich Console, which leaves with exit code 1 (rich's own handling, also
# without a traceback; multi_agent.cli.render.console() gives 141), or printed by argparse,
# which ignores a failed write (exit 0).
OTHER_STATUS = {
    "multi-agent runs --user ann --session s1": (1, 141),
    "multi-agent messages --user ann": (1, 141),
    "multi-agent --help": (0, 141),
    "multi-agent chat --help": (0, 141),
    "multi-agent --version": (0, 141),
}


@pytest.mark.parametrize("reader", READERS)
def test_piping_into_a_reader_that_leaves_early(prepared: Path, tmp_path: Path,
                                                reader: str) -> None:
    for command in PIPED:
        db = tmp_path / "multi_agent_data.db"
        shutil.copy(prepared, db)
        proc = shell(f'{command} | {reader}; echo "status=${{PIPESTATUS[*]}}" >&2',
                     cwd=tmp_path, db=db)
        statuses = re.search(r"status=([\d ]+)$", proc.stderr)
        assert statuses, proc.stderr
        status = int(statuses.group(1).split()[-2])  # multi-agent's, just before the reader's
        rest = proc.stderr[: statuses.start()].strip()
        assert "Traceback" not in rest and "Exception ignored" not in rest, (command, rest)
        assert "BrokenPipe" not in rest and not rest, (command, rest)
        if reader == "true" and command in OTHER_STATUS:
            assert status in OTHER_STATUS[command], (command, status)
        elif reader == "true":
            assert status == 141, (command, status)  # like a program killed by SIGPIPE
        else:
            assert status in (0, 141), (command, status)
            assert len(proc.stdout.splitlines()) == 1, (command, proc.stdout)


# -- exit codes -----------------------------------------------------------------------------------


def test_exit_codes_usage_2_failure_1(db: Path) -> None:
    cwd = db.parent
    for usage in (["chat", "--bogus"], ["delete", "--user", USER], ["state", "--limit", "x"], [],
                  ["memory"], ["chat", "--new", "--session", "s1"]):
        proc = run_cli(*usage, cwd=cwd)
        assert proc.returncode == 2, (usage, proc.stderr)
        assert "usage: multi-agent" in proc.stderr and "Traceback" not in proc.stderr
    common = ["--user", USER, "--db", str(db)]
    one_line_error(run_cli("state", *common, "--session", "nope", cwd=cwd), "does not exist")
    one_line_error(run_cli("state", *common, "--key", "nope", cwd=cwd), "No state key 'nope'")
    one_line_error(run_cli("chat", *common, "--session", "nope", cwd=cwd), "does not exist")
    empty = cwd / "empty"
    empty.mkdir()
    one_line_error(run_cli("sessions", "--user", USER, cwd=empty), "No database at")
    one_line_error(run_cli("delete", *common, "--session", "nope", "--yes", cwd=cwd),
                   "does not exist")
    # delete without --yes cannot ask when stdin is not a terminal: a usage error.
    proc = run_cli("delete", *common, "--session", "s1", cwd=cwd)
    assert proc.returncode == 2 and "pass --yes" in proc.stderr, proc.stderr
    assert "s1" in [e["session"].id for e in read_back(db, USER)["sessions"]]


# -- delete ---------------------------------------------------------------------------------------


def test_delete_removes_the_session_and_its_memory(db: Path) -> None:
    from multi_agent import DatabaseSessionService
    from multi_agent.memory import DatabaseMemoryService

    cwd, common = db.parent, ["--user", USER, "--db", str(db)]
    assert "Deleted session s1 of user ann (1 interaction)." in ok(
        run_cli("delete", *common, "--session", "s1", "--yes", cwd=cwd))
    assert read_back(db, USER)["sessions"] == []
    assert read_back(db, USER)["user_state"]["preferences"]["stock_watchlist"] == ["NVDA"]

    async def search() -> list[Any]:
        async with DatabaseSessionService(sqlite_url(db)) as store:
            memory = DatabaseMemoryService(store)
            return (await memory.search_memory(app_name=APP, user_id=USER,
                                               query="NVDA watch list")).memories

    assert asyncio.run(search()) == []
    one_line_error(run_cli("delete", *common, "--session", "s1", "--yes", cwd=cwd),
                   "does not exist")


def test_delete_asks_on_a_terminal(db: Path) -> None:
    def ask(answer: str) -> tuple[int | None, str]:
        return answer_on_terminal(
            ["delete", "--user", USER, "--db", str(db), "--session", "s1"],
            "Delete session s1 of user ann (1 interaction)?", answer, cwd=db.parent)

    code, out = ask("n")
    assert code == 1 and "Nothing was deleted." in out, out
    assert [e["session"].id for e in read_back(db, USER)["sessions"]] == ["s1"]
    code, out = ask("y")
    assert code == 0 and "Deleted session s1" in out, out
    assert read_back(db, USER)["sessions"] == []


# -- a read-only database -------------------------------------------------------------------------


def make_read_only(path: Path) -> None:
    """Even for root: the immutable attribute; otherwise permissions."""
    if os.geteuid() == 0:
        if shutil.which("chattr") is None or subprocess.run(
            ["chattr", "+i", str(path)], capture_output=True
        ).returncode != 0:
            pytest.skip("running as root on a file system without chattr +i")
    else:
        path.chmod(0o444)
        path.parent.chmod(0o555)


def undo_read_only(path: Path) -> None:
    if os.geteuid() == 0:
        subprocess.run(["chattr", "-i", str(path)], capture_output=True)
    else:
        path.parent.chmod(0o755)
        path.chmod(0o644)


def assert_stopped_clearly(proc: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert proc.returncode == 1, (proc.returncode, proc.stdout, proc.stderr)
    assert "Everything is saved" not in proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("multi-agent: "), proc.stderr
    assert "The chat stopped: nothing more could be saved." in lines[0]
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    assert "what did we talk about" not in proc.stdout  # it stopped reading


def test_read_only_sqlite_database(db: Path) -> None:
    make_read_only(db)
    try:
        proc = run_cli("chat", "--user", USER, "--db", str(db), cwd=db.parent,
                       stdin="tell me a joke about python\nwhat did we talk about?\n")
    finally:
        undo_read_only(db)
    assert "Welcome back, ann." in proc.stdout  # reading worked; the first write did not
    assert_stopped_clearly(proc, "read-only")
    # Nothing of that turn is stored, and the file is as it was.
    (entry,) = read_back(db, USER)["sessions"]
    assert entry["session"].state["session_metadata"]["total_interactions"] == 1


@pytest.mark.postgres
def test_read_only_postgresql_database(tmp_path: Path) -> None:
    import asyncpg

    from tests.conftest import fresh_pg_database, require_pg

    url = asyncio.run(fresh_pg_database())
    ok(run_cli("chat", "--user", USER, "--db", url, cwd=tmp_path,
               stdin="tell me a joke about python\n"))

    async def read_only() -> None:
        conn = await asyncpg.connect(require_pg().replace("postgresql+asyncpg://",
                                                          "postgresql://"))
        try:
            await conn.execute(f'ALTER DATABASE "{url.rsplit("/", 1)[1]}" '
                               "SET default_transaction_read_only = on")
        finally:
            await conn.close()

    asyncio.run(read_only())
    proc = run_cli("chat", "--user", USER, "--db", url, cwd=tmp_path,
                   stdin="tell me a joke about math\nwhat did we talk about?\n")
    assert "Welcome back, ann." in proc.stdout
    assert_stopped_clearly(proc, "read-only transaction")


# -- Ctrl-C after a complete answer ----------------------------------------------------------------

SLOW_SAVE = '''
import asyncio, sys
from multi_agent.memory.context import RememberTurnsPlugin

_original = RememberTurnsPlugin.after_run_callback


async def _slow(self, *, invocation_context):
    # After the answer: the run still indexes the turn in long memory. Slowly, here.
    print("(saving slowly)", flush=True)
    await asyncio.sleep({seconds})
    await _original(self, invocation_context=invocation_context)


RememberTurnsPlugin.after_run_callback = _slow

if __name__ == "__main__":
    from multi_agent.cli import main

    sys.exit(main(sys.argv[1:]))
'''


def slow_save_script(tmp_path: Path, seconds: float) -> list[str]:
    script = tmp_path / "slow_save.py"
    script.write_text(SLOW_SAVE.format(seconds=seconds))
    return [sys.executable, str(script)]


def remembered(db: Path, query: str) -> list[str]:
    from multi_agent import DatabaseSessionService
    from multi_agent.memory import DatabaseMemoryService

    async def search() -> list[str]:
        async with DatabaseSessionService(sqlite_url(db)) as store:
            found = await DatabaseMemoryService(store).search_memory(
                app_name=APP, user_id=USER, query=query)
            return [m.content.parts[0].text for m in found.memories]

    return asyncio.run(search())


def test_ctrl_c_after_a_complete_answer_is_not_a_cancel(tmp_path: Path) -> None:
    """On a terminal: one Ctrl-C while the answered run saves lets it finish; a second one
    stops waiting. Neither run is marked cancelled."""
    db = tmp_path / "chat.db"
    t = Terminal(["chat", "--user", USER, "--db", str(db)], cwd=tmp_path,
                 command=slow_save_script(tmp_path, 4))
    try:
        t.wait_prompt()
        t.type("tell me a joke about python")
        t.expect_exact("[funny_nerd]")
        t.expect_exact("(saving slowly)")
        t.key("c")
        t.expect_exact("The answer is complete; saving it (Ctrl-C again stops waiting).")
        before = t.wait_prompt()
        assert "Interrupted" not in before and "cancelled" not in before
        t.type("tell me a joke about math")
        t.expect_exact("[funny_nerd]")
        t.expect_exact("(saving slowly)")
        t.key("c")
        t.expect_exact("The answer is complete")
        time.sleep(0.3)
        t.key("c")
        t.expect_exact("Stopped waiting; the answer is stored.")
        t.wait_prompt()
        t.type("/runs")
        runs = t.expect_exact("◀ head")
        assert "cancelled" not in runs, runs
        t.wait_prompt()
        t.key("d")
        code, rest = t.finish()
        assert code == 0, rest
    finally:
        t.kill()
    (entry,) = read_back(db, USER)["sessions"]
    top = [r for r in entry["runs"] if r.kind == "invocation"]
    assert [r.status for r in top] == ["completed", "completed"]
    history = entry["session"].state["conversation_history"]
    assert [h["user_input"] for h in history] == ["tell me a joke about python",
                                                  "tell me a joke about math"]
    # The first run's save finished: the turn is in long memory.
    assert any("tell me a joke about python" in text for text in remembered(db, "python"))


def test_ctrl_c_after_a_complete_answer_when_piped(tmp_path: Path) -> None:
    """Piped, Ctrl-C means leave: after the answer, the run finishes saving first (exit 130,
    the run completed)."""
    db = tmp_path / "chat.db"
    code, out, err = interrupt_piped_chat(
        [*slow_save_script(tmp_path, 3), "chat", "--user", USER, "--db", str(db)], tmp_path,
        "tell me a joke about python\ntell me a joke about math\n", "(saving slowly)")
    assert "[funny_nerd]" in out, out
    assert code == 130, (out, err)
    assert "Traceback" not in err + out
    assert "[system] Interrupted. Everything so far is saved. Bye." in out
    assert "joke about math" not in out
    (entry,) = read_back(db, USER)["sessions"]
    assert [r.status for r in entry["runs"] if r.kind == "invocation"] == ["completed"]
    assert entry["session"].state["session_metadata"]["total_interactions"] == 1


# -- semantic memory: the model loads in the background; memory reindex ------------------------

SLOW_MODEL = '''
import sys, time
from multi_agent.memory.embeddings import MiniLMEmbedder

_original = MiniLMEmbedder.load


def _slow(self):
    time.sleep({seconds})  # a cold disk cache
    return _original(self)


MiniLMEmbedder.load = _slow

if __name__ == "__main__":
    from multi_agent.cli import main

    sys.exit(main(sys.argv[1:]))
'''


def test_semantic_model_loads_in_the_background(tmp_path: Path, minilm: object) -> None:
    script = tmp_path / "slow_model.py"
    script.write_text(SLOW_MODEL.format(seconds=3))
    db = tmp_path / "chat.db"
    ok(run_cli("chat", "--user", USER, "--db", str(db), cwd=tmp_path,
               stdin="My dog Rex loves chasing waves at the beach\n"))
    started = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, str(script), "chat", "--user", USER, "--db", str(db), "--new",
         "--memory-search", "hybrid"],
        cwd=tmp_path, env=clean_env(), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )
    try:
        assert proc.stdin and proc.stdout
        greeting = proc.stdout.readline()
        greeted_after = time.monotonic() - started
        out, err = proc.communicate("what did I say about my puppy?\n", timeout=TIMEOUT * 2)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, (out, err)
    assert "New session" in greeting
    lines = out.splitlines()
    i = lines.index("ann> what did I say about my puppy?")
    # The greeting came while the model was loading; the turn waited for it and said so.
    assert lines[i + 1] == "[system] Loading the semantic search model (first use; a few " \
                           "seconds)…", out
    assert re.search(r"\[historian\] .*My dog Rex loves chasing waves", out), out
    total = time.monotonic() - started
    assert greeted_after < total - 2, (greeted_after, total)


def forget_memory(db: Path) -> None:
    """Empties long memory (as in a database written before memory, or imported)."""
    import sqlite3

    with sqlite3.connect(db) as conn:
        for table in ("ma_memory_vectors", "ma_memory_entries", "ma_memory_sessions"):
            conn.execute(f"DELETE FROM {table}")


def test_memory_reindex(db: Path) -> None:
    forget_memory(db)
    assert remembered(db, "NVDA watch list") == []
    common = ["--user", USER, "--db", str(db)]
    out = ok(run_cli("memory", "reindex", *common, "--no-embed", cwd=db.parent))
    assert out.strip() == "Indexed 1 session of user ann in long memory."
    assert "add NVDA to my watch list" in remembered(db, "NVDA watch list")
    out = ok(run_cli("memory", "reindex", "--all-users", "--no-embed", "--db", str(db),
                     cwd=db.parent))
    assert out.strip() == "Indexed 1 session of 1 user in long memory."


def test_memory_reindex_embeds_with_a_progress_bar(db: Path, minilm: object) -> None:
    forget_memory(db)
    child = pexpect.spawn(MULTI_AGENT, ["memory", "reindex", "--user", USER, "--db", str(db)],
                          env=clean_env(), cwd=str(db.parent), encoding="utf-8",
                          timeout=TIMEOUT * 2, dimensions=(50, 200))
    try:
        child.expect_exact("Indexing sessions")
        child.expect_exact("Loading the semantic search model…")
        child.expect_exact("Embedding memories of ann")
        child.expect(r"100%.*4/4")
        child.expect_exact("Indexed 1 session of user ann in long memory; embedded 4 "
                           "memories for semantic search.")
        child.expect(pexpect.EOF)
        child.close()
        assert child.exitstatus == 0
    finally:
        if child.isalive():
            child.terminate(force=True)
    # Piped: no bar, the same summary; nothing left to embed.
    out = ok(run_cli("memory", "reindex", "--user", USER, "--db", str(db), cwd=db.parent))
    assert out == "Indexed 1 session of user ann in long memory; embedded 0 memories for " \
                  "semantic search.\n"


def test_progress_helper_counts_without_a_terminal() -> None:
    from multi_agent.cli.render import progress

    with progress("Importing", total=10, unit="bytes", show=False) as bar:
        bar.advance(4)
        bar(7, 12)
    assert (bar.done, bar.total) == (7, 12)


# -- piped tables keep ids whole ------------------------------------------------------------------


@pytest.mark.parametrize("columns", [None, "40"])
def test_piped_tables_keep_ids_whole(db: Path, columns: str | None) -> None:
    """In a pipe the tables are as wide as their rows (or $COLUMNS): an id is never wrapped."""
    env = clean_env()
    env.pop("COLUMNS")
    if columns:
        env["COLUMNS"] = columns
    common = ["--user", USER, "--db", str(db)]
    out = ok(run_cli("sessions", *common, cwd=db.parent, env=env))
    assert re.search(r"^s1\s+\S+ \S+\s+1$", out, flags=re.M), out
    if columns is None:  # another module's table, through the same wide console
        out = ok(run_cli("messages", *common, "--session", "s1", cwd=db.parent, env=env))
        ids = re.findall(r"\be-[0-9a-f-]+", out)
        assert RUN in ids and all(i == RUN or len(i) == 38 for i in ids), out
        assert not re.search(r" $", ok(run_cli("state", *common, cwd=db.parent, env=env)),
                             flags=re.M)
