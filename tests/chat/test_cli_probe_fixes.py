"""What a probe of the CLI found, each case as the real command meets it (``python -m
multi_agent`` in a child process, a SQLite file the chat wrote):

* ``export -o FILE`` never leaves FILE cut off or empty (a full disk, a file-size limit), and
  refuses to write over the database it reads (``-o x.db``, its ``-wal``, a link to it);
  ``keygen --out`` leaves no half-written key;
* an output that cannot be written (``> /dev/full``) is one line on stderr and exit 1;
* stored times no date can hold (``1e300``, ``-1e12``) are shown, not a traceback;
* ``--json`` reports say ``dry_run`` only when one was asked for;
* bad option values are usage errors (exit 2) naming the option.
"""

from __future__ import annotations

import hashlib
import json
import os
import resource
import shutil
import signal
import sqlite3
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.chat._util import TIMEOUT, clean_env

pytestmark = pytest.mark.timeout(600)

USER = "ann"
CHAT_INPUT = "hello, my name is Ann\nTell me a joke about Python\nwatch AAPL\n/quit\n"
NO_SPACE = "multi-agent: cannot write the output: No space left on device"


def cli(*args: str, cwd: Path, stdin: str = "", stdout: int | None = subprocess.PIPE,
        preexec: Callable[[], None] | None = None) -> subprocess.CompletedProcess[str]:
    """``python -m multi_agent ARGS`` as a person runs it (a clean environment, no model key:
    the offline model)."""
    return subprocess.run([sys.executable, "-m", "multi_agent", *args], cwd=cwd,
                          env=clean_env(), input=stdin, stdout=stdout,
                          stderr=subprocess.PIPE, text=True, timeout=TIMEOUT * 2,
                          preexec_fn=preexec)


def no_traceback(proc: subprocess.CompletedProcess[str]) -> None:
    text = (proc.stdout or "") + proc.stderr
    assert "Traceback" not in text and "Exception ignored" not in text, text


def usage_error(proc: subprocess.CompletedProcess[str], *fragments: str) -> str:
    """Exit 2, no traceback, the last stderr line names the problem."""
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    no_traceback(proc)
    last = proc.stderr.strip().splitlines()[-1]
    for fragment in fragments:
        assert fragment in last, last
    return last


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def chatted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A database the chat wrote: three turns of ann."""
    where = tmp_path_factory.mktemp("chatted")
    proc = cli("chat", "--db", "sqlite:///x.db", "--user", USER, cwd=where, stdin=CHAT_INPUT)
    assert proc.returncode == 0, proc.stderr
    return where / "x.db"


@pytest.fixture
def db(chatted: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "x.db"
    shutil.copy(chatted, copy)
    return copy


# -- 1. export -o: all or nothing, never over the database -----------------------------------------


def file_size_limit(limit: int) -> Callable[[], None]:
    """A child's preexec: files it writes may not grow past ``limit`` bytes (a write past it
    fails with EFBIG, as on a full disk)."""
    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return apply


def test_export_that_fails_midway_leaves_the_old_file(db: Path, tmp_path: Path) -> None:
    full = cli("export", "--db", str(db), "--user", USER, cwd=tmp_path)
    limit = 40_000  # above SQLite's 32 KiB -shm (opening the database must work), below it
    assert full.returncode == 0 and len(full.stdout) > limit + 1_000
    keep = tmp_path / "keep.json"
    keep.write_text("the previous export\n" * 2_000)  # 40,000 bytes
    keep.chmod(0o640)
    before = digest(keep)
    proc = cli("export", "--db", str(db), "--user", USER, "-o", str(keep), cwd=tmp_path,
               preexec=file_size_limit(limit))
    assert proc.returncode == 1, (proc.returncode, proc.stderr)
    no_traceback(proc)
    assert proc.stderr.startswith(f"multi-agent: cannot write {keep}"), proc.stderr
    assert digest(keep) == before  # before: 40,000 bytes of cut-off JSON
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.json", "x.db"]  # no temp left
    # Without the limit it is replaced whole, with the file's permissions.
    proc = cli("export", "--db", str(db), "--user", USER, "-o", str(keep), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert keep.read_text() == full.stdout
    assert stat.S_IMODE(keep.stat().st_mode) == 0o640
    # A device is written, not replaced by a file.
    proc = cli("export", "--db", str(db), "--user", USER, "-o", os.devnull, cwd=tmp_path)
    assert proc.returncode == 0 and stat.S_ISCHR(os.stat(os.devnull).st_mode)


def test_export_on_a_full_disk_leaves_the_old_file(db: Path, tmp_path: Path) -> None:
    small = tmp_path / "small"
    small.mkdir()
    if os.geteuid() != 0 or subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=40k", "tmpfs", str(small)],
            capture_output=True).returncode != 0:
        pytest.skip("mounting a small tmpfs needs root")
    try:
        keep = small / "keep.json"
        keep.write_text("x" * 30_000)
        exported = cli("export", "--db", str(db), "--user", USER, cwd=tmp_path).stdout
        assert len(exported) > 45_000  # more than the file system holds
        proc = cli("export", "--db", str(db), "--user", USER, "-o", str(keep), cwd=tmp_path)
        assert proc.returncode == 1, (proc.returncode, proc.stderr)
        no_traceback(proc)
        assert "No space left on device" in proc.stderr
        assert keep.read_text() == "x" * 30_000  # before: 40 KiB of cut-off JSON
        assert [p.name for p in small.iterdir()] == ["keep.json"]
    finally:
        subprocess.run(["umount", str(small)], capture_output=True)


def test_export_refuses_to_write_over_its_database(db: Path, tmp_path: Path) -> None:
    before = digest(db)
    (tmp_path / "link.db").symlink_to(db)
    for target in ("x.db", str(db), "./x.db-wal", "x.db-journal", f"{db}-shm", "link.db"):
        proc = cli("export", "--db", "x.db", "--user", USER, "-o", target, cwd=tmp_path)
        usage_error(proc, target, "database")
        assert len(proc.stderr.strip().splitlines()) == 1 and proc.stdout == ""
        assert digest(db) == before  # before: "Exported session ... to x.db.", database gone
    for extra in ("x.db-wal", "x.db-journal", "x.db-shm"):
        assert not (tmp_path / extra).exists()
    proc = cli("export", "--db", f"sqlite:///{db}", "--user", USER, "-o", "link.db",
               cwd=tmp_path)
    usage_error(proc, "database")
    assert cli("sessions", "--db", str(db), "--user", USER, cwd=tmp_path).returncode == 0


def test_keygen_out_leaves_no_half_written_key(tmp_path: Path) -> None:
    proc = cli("keygen", "--out", "new.key", cwd=tmp_path, preexec=file_size_limit(10))
    assert proc.returncode == 1, (proc.returncode, proc.stderr)
    no_traceback(proc)
    assert "cannot write new.key" in proc.stderr
    assert not (tmp_path / "new.key").exists()  # before: a 10-byte "key", and a traceback


# -- 2. an output that cannot be written ------------------------------------------------------------


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full here")
@pytest.mark.parametrize("command", [
    ["export"], ["runs", "--json"], ["messages"], ["sessions"], ["sessions", "--json"],
    ["prune", "--older-than", "30d", "--dry-run"], ["keygen"],
])
def test_stdout_that_cannot_be_written(db: Path, tmp_path: Path, command: list[str]) -> None:
    args = [*command] if command == ["keygen"] else [*command, "--db", str(db)]
    if command[0] not in ("prune", "keygen"):
        args += ["--user", USER]
    with open("/dev/full", "w") as full:
        proc = cli(*args, cwd=tmp_path, stdout=full.fileno())
    assert proc.returncode == 1, (proc.returncode, proc.stderr)
    assert proc.stderr == NO_SPACE + "\n"  # before: a traceback (OSError: [Errno 28] ...)


# -- 3. stored times no date can hold ----------------------------------------------------------------


def test_times_out_of_range_are_shown(db: Path, tmp_path: Path) -> None:
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE ma_sessions SET update_time = -1e12")
        conn.execute("UPDATE ma_events SET timestamp = 1e300 WHERE seq = "
                     "(SELECT min(seq) FROM ma_events)")
        conn.execute("UPDATE ma_runs SET started_at = 1e300 WHERE run_id = "
                     "(SELECT min(run_id) FROM ma_runs WHERE kind = 'invocation')")
    conn.close()
    for command, shown in ((["sessions"], "? (-1e+12)"), (["sessions", "--json"], "? (-1e+12)"),
                           (["sessions", "--page-size", "5"], "? (-1e+12)"),
                           (["messages"], "? (1e+300)"), (["runs"], "? (1e+300)")):
        proc = cli(*command, "--db", str(db), "--user", USER, cwd=tmp_path)
        assert proc.returncode == 0, (command, proc.stderr)  # before: a traceback
        no_traceback(proc)
        assert shown in proc.stdout, (command, proc.stdout)
    proc = cli("runs", "--json", "--db", str(db), "--user", USER, cwd=tmp_path)
    assert proc.returncode == 0 and 1e300 in [r["started_at"] for r in json.loads(proc.stdout)]


# -- 4. dry_run in the --json reports -------------------------------------------------------------


def test_json_reports_say_dry_run_only_when_asked(db: Path, tmp_path: Path) -> None:
    def report(*args: str, code: int = 0) -> dict[str, object]:
        proc = cli(*args, "--db", str(db), "--json", cwd=tmp_path)
        assert proc.returncode == code, (args, proc.stderr)
        no_traceback(proc)
        return json.loads(proc.stdout)

    trimmed = report("prune", "--keep-last", "500", "--yes")  # nothing matches
    assert trimmed["dry_run"] is False  # before: true
    assert trimmed["limits"] == {"keep_last_events": 500, "keep_days": None}
    assert report("prune", "--keep-last", "500", "--dry-run")["dry_run"] is True
    assert report("prune", "--older-than", "3650d", "--yes")["dry_run"] is False
    assert report("prune", "--older-than", "3650d", "--dry-run")["dry_run"] is True
    assert report("forget", "--user", "nobody", "--yes", code=1)["dry_run"] is False
    assert report("forget", "--user", "nobody", "--dry-run", code=1)["dry_run"] is True
    done = report("prune", "--keep-last", "5", "--yes")  # this one trims
    assert done["dry_run"] is False and done["totals"]["events"] > 0
    assert done["limits"] == {"keep_last_events": 5, "keep_days": None}
    assert done["policies"] == {"multi_agent": {"keep_last_events": 5, "keep_days": None}}


# -- 5. bad option values ----------------------------------------------------------------------------


@pytest.mark.parametrize("args, names", [
    (["prune", "--older-than", "abc"], ["--older-than", "'abc' is not an age"]),
    (["prune", "--older-than=-1"], ["--older-than", "not an age"]),
    (["prune", "--older-than", "0"], ["--older-than", "not an age"]),
    (["prune", "--older-than", "nan"], ["--older-than", "not an age"]),
    (["prune", "--keep-days", "abc"], ["--keep-days", "not an age"]),
    (["prune", "--keep-last", "0", "--dry-run"], ["--keep-last", "from 1"]),
    (["prune", "--keep-last", "99999999999999999999999", "--dry-run"], ["--keep-last"]),
    (["prune", "--keep-last", "0", "--save-policy", "--app", "multi_agent"], ["--keep-last"]),
    (["messages", "--user", USER, "--limit", "99999999999999999999999"],
     ["--limit", "from 1 to 100000"]),
    (["rekey", "--batch", "0"], ["--batch"]),
])
def test_bad_option_values_are_usage_errors(db: Path, tmp_path: Path, args: list[str],
                                            names: list[str]) -> None:
    before = digest(db)
    line = usage_error(cli(*args, "--db", str(db), cwd=tmp_path), *names)
    assert "keep_last_events" not in line  # the option, not the Python parameter
    assert digest(db) == before


def test_prune_messages_say_what_happened(db: Path, tmp_path: Path) -> None:
    proc = cli("prune", "--db", str(db), "--save-policy", "--app", "multi_agent", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "no retention policy" in proc.stdout and "Removed" not in proc.stdout, proc.stdout
    proc = cli("prune", "--db", str(db), "--keep-last", "1000", "--dry-run", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == ("No session has history to trim (keep the last 1000 events): "
                           "nothing to delete.\n")  # before: "(no policy)"
    assert cli("prune", "--db", str(db), "--keep-last", "7", "--save-policy", "--app",
               "multi_agent", cwd=tmp_path).returncode == 0
    proc = cli("prune", "--db", str(db), "--save-policy", "--app", "multi_agent", cwd=tmp_path)
    assert proc.stdout == "Removed the retention policy of app multi_agent.\n"


# -- a refused import leaves no database behind ----------------------------------------------


def test_a_refused_import_into_a_new_file_leaves_no_database(db: Path, tmp_path: Path) -> None:
    """Before: "Nothing was imported." (exit 1), and yet a 64 KB database with the whole schema
    was left at the --db path; the other commands' "No database at ..." then no longer showed
    a mistyped path. A file that existed before keeps everything it held."""
    broken = tmp_path / "broken.json"
    broken.write_text("{")
    proc = cli("import", str(broken), "--db", "new.db", cwd=tmp_path)
    assert proc.returncode == 1 and "Nothing was imported" in proc.stderr, proc.stderr
    no_traceback(proc)
    assert sorted(p.name for p in tmp_path.glob("new.db*")) == []
    # a good file into a new database: kept; a refused one into an existing database: kept
    good = tmp_path / "a.json"
    assert cli("export", "--db", str(db), "--user", USER, "-o", str(good),
               cwd=tmp_path).returncode == 0
    assert cli("import", str(good), "--db", "new.db", cwd=tmp_path).returncode == 0
    assert cli("import", str(broken), "--db", "new.db", cwd=tmp_path).returncode == 1
    listed = cli("sessions", "--db", "new.db", "--user", USER, "--json", cwd=tmp_path)
    assert listed.returncode == 0 and len(json.loads(listed.stdout)) == 1, listed.stdout
