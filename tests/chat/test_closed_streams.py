"""The command line started with a standard stream closed (``<&-``, ``>&-``, ``2>&-``).

Python sets ``sys.stdin`` (``sys.stdout``, ``sys.stderr``) to None then; a closed stream is
not the same as ``/dev/null`` (``subprocess.DEVNULL``), so each command runs under ``bash -c
'exec multi-agent ... <&-'``. The bar is the project's: one clear line, the right exit code,
never a traceback.

* stdin closed: no terminal and no input. A command that would ask says it cannot (exit 2, as
  with stdin not a terminal) and changes nothing; ``chat`` reads no messages (as from
  /dev/null); ``import -`` says stdin is closed; commands that read nothing just work.
* stdout closed: nowhere to write, so nothing is done: one line on stderr, exit 1.
* stderr closed: messages for it are dropped, not written to stdout; a progress bar (only for
  a terminal) does not break the command.
* ``messages --since nan`` (inf, -inf, 1e400): refused as a usage error, not an empty table.
"""

from __future__ import annotations

import asyncio
import json
import shlex
import subprocess
from pathlib import Path

import pytest

from tests.chat._util import APP, MULTI_AGENT, TIMEOUT, clean_env, sqlite_url

pytestmark = pytest.mark.timeout(300)

USER = "cu"
SESSION = "s1"


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A database with session s1 of user cu (one event), and its export in s1.json."""
    from google.adk.events.event import Event
    from google.genai import types

    from multi_agent import DatabaseSessionService

    path = tmp_path_factory.mktemp("closed") / "x.db"

    async def write() -> None:
        async with DatabaseSessionService(sqlite_url(path)) as store:
            session = await store.create_session(app_name=APP, user_id=USER, session_id=SESSION)
            await store.append_event(session, Event(
                invocation_id="e-1", author="user",
                content=types.Content(role="user", parts=[types.Part(text="hello")]),
            ))
            doc = await store.export_session(app_name=APP, user_id=USER, session_id=SESSION)
        (path.parent / "s1.json").write_text(json.dumps(doc), encoding="utf-8")

    asyncio.run(write())
    return path


def run(db: Path, redirect: str, *args: str) -> subprocess.CompletedProcess[str]:
    """``multi-agent ARGS --db DB REDIRECT`` (e.g. ``<&-``) under bash."""
    command = shlex.join([MULTI_AGENT, *args, "--db", sqlite_url(db)])
    return subprocess.run(
        ["bash", "-c", f"exec {command} {redirect}"], cwd=db.parent, env=clean_env(),
        capture_output=True, text=True, timeout=TIMEOUT,
    )


def one_line(proc: subprocess.CompletedProcess[str], code: int, *fragments: str) -> str:
    """Exit ``code``, no traceback, exactly one line on stderr naming the problem."""
    assert "Traceback" not in proc.stderr + proc.stdout, proc.stderr
    assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("multi-agent"), proc.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def still_there(db: Path) -> None:
    """Session s1 of cu is still stored (read with the library: no process to start)."""
    from multi_agent import DatabaseSessionService

    async def ids() -> list[str]:
        async with DatabaseSessionService(sqlite_url(db)) as store:
            listed = await store.list_sessions(app_name=APP, user_id=USER)
        return [s.id for s in listed.sessions]

    assert SESSION in asyncio.run(ids())


# -- stdin closed -------------------------------------------------------------------------------


def test_questions_with_stdin_closed_are_refused(db: Path) -> None:
    """forget, prune and delete would ask on a terminal: with stdin closed they say how to go
    on without asking (as when stdin is not a terminal) and delete nothing."""
    for args in (("forget", "--user", USER), ("prune", "--older-than", "1s"),
                 ("delete", "--user", USER, "--session", SESSION)):
        one_line(run(db, "<&-", *args), 2, "stdin is not a terminal", "--yes")
    still_there(db)


def test_chat_with_stdin_closed_reads_no_messages(db: Path) -> None:
    proc = run(db, "<&-", "chat", "--user", USER, "--session", SESSION)
    assert "Traceback" not in proc.stderr + proc.stdout, proc.stderr
    assert proc.returncode == 0, (proc.stdout, proc.stderr)
    assert "Bye" in proc.stdout, proc.stdout


def test_import_with_stdin_closed(db: Path) -> None:
    one_line(run(db, "<&-", "import", "-"), 1, "stdin is closed", "FILE")
    one_line(run(db, "<&-", "import", "/dev/null"), 1, "empty")  # a file: stdin is not needed


def test_reading_with_stdin_closed_works(db: Path) -> None:
    proc = run(db, "<&-", "sessions", "--user", USER)
    assert proc.returncode == 0 and SESSION in proc.stdout, (proc.stdout, proc.stderr)
    assert not proc.stderr


# -- stdout closed ------------------------------------------------------------------------------


def test_stdout_closed_is_one_line_and_does_nothing(db: Path) -> None:
    one_line(run(db, ">&-", "sessions", "--user", USER), 1, "stdout is closed")
    # a command that would change something changes nothing: the report of it could not be read
    one_line(run(db, ">&-", "delete", "--user", USER, "--session", SESSION, "--yes"), 1,
             "stdout is closed")
    still_there(db)


# -- stderr closed ------------------------------------------------------------------------------


def test_stderr_closed(db: Path) -> None:
    proc = run(db, "2>&-", "import", str(db.parent / "missing.json"))
    assert proc.returncode == 1 and proc.stdout == "", (proc.returncode, proc.stdout)
    proc = run(db, "2>&-", "import", str(db.parent / "s1.json"), "--session", "s2")
    assert proc.returncode == 0, (proc.returncode, proc.stdout)
    assert proc.stdout.startswith("Imported session s2"), proc.stdout


# -- times that are not times -------------------------------------------------------------------


def test_messages_refuses_non_finite_times(db: Path) -> None:
    """``float()`` takes nan and inf, which matched nothing: an empty table and exit 0."""
    import argparse

    from multi_agent.cli.tree import _parse_time

    proc = run(db, "", "messages", "--user", USER, "--since", "nan")
    assert "Traceback" not in proc.stderr + proc.stdout, proc.stderr
    assert proc.returncode == 2 and proc.stdout == "", (proc.returncode, proc.stdout)
    error = proc.stderr.strip().splitlines()[-1]  # after argparse's usage line
    assert error.startswith("multi-agent messages: error: argument --since: 'nan' is not a "
                            "time"), error
    for value in ("inf", "-inf", "Infinity", "1e400", "-NaN"):  # the same check, in-process
        with pytest.raises(argparse.ArgumentTypeError, match="is not a time"):
            _parse_time(value)
    assert _parse_time("1e9") == 1e9 and _parse_time("-1.5") == -1.5
