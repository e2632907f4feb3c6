"""Changes to the token file of ``multi-agent serve`` made at the same time, by separate OS
processes, lose nothing and bring nothing back; a file that is JSON but not an object is a clear
error, not a traceback.

Without the lock in ``TokenFile.add``/``revoke`` each writer read the file, changed its own copy
and renamed it over: of eight ``token add`` run at once some reported "saved" tokens that were
gone, and an ``add`` racing a ``revoke`` could write the revoked token back (so it kept working).

The real CLI is run once with eight processes (its start-up imports the whole package, ~3 s of
CPU each). The repeated races use small processes that load ``api_tokens.py`` alone (the real
module, only without the package's start-up) and wait at a barrier, so they call ``add`` and
``revoke`` within a millisecond of each other: that fails reliably without the lock.
"""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from multi_agent.store import api_tokens
from multi_agent.store.api_tokens import TokenError, TokenFile
from tests.chat._util import ROOT, clean_env

pytestmark = pytest.mark.timeout(120)

CLI = Path(sys.executable).with_name("multi-agent")

# A process that loads api_tokens.py, says "ready", waits for a line on stdin, then does one
# change: "add USER" prints the token, "revoke WHAT" prints "revoked N".
CHILD = """
import importlib.util, sys
spec = importlib.util.spec_from_file_location("api_tokens_child", sys.argv[1])
mod = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = mod
spec.loader.exec_module(mod)
tokens = mod.TokenFile(sys.argv[2])
print("ready", flush=True)
sys.stdin.readline()
try:
    if sys.argv[3] == "add":
        print(tokens.add(sys.argv[4])[0], flush=True)
    else:
        print(f"revoked {len(tokens.revoke(sys.argv[4]))}", flush=True)
except mod.TokenError as exc:
    print(f"error: {exc}", file=sys.stderr)
    sys.exit(1)
"""


def at_once(path: Path, jobs: list[tuple[str, str]]) -> list[str]:
    """Runs each (op, arg) in its own process, released together; their outputs, in order
    (each must succeed)."""
    procs = [subprocess.Popen([sys.executable, "-c", CHILD, api_tokens.__file__, str(path), op,
                               arg], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for op, arg in jobs]
    try:
        for p in procs:
            assert p.stdout is not None
            assert p.stdout.readline() == "ready\n", p.stderr.read() if p.stderr else ""
        for p in procs:  # the barrier: every process is loaded and waiting
            assert p.stdin is not None
            p.stdin.write("go\n")
            p.stdin.flush()
        outs = []
        for p in procs:
            out, err = p.communicate(timeout=30)
            assert p.returncode == 0, err
            outs.append(out.strip())
        return outs
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()


def users_in(path: Path) -> list[str]:
    return sorted(t["user"] for t in json.loads(path.read_text(encoding="utf-8"))["tokens"])


def test_eight_cli_token_adds_at_once_keep_every_token(tmp_path: Path) -> None:
    path = tmp_path / "tokens.json"
    users = [f"u{i}" for i in range(8)]
    env = clean_env()
    procs = [subprocess.Popen([str(CLI), "serve", "token", "add", u, "--tokens", str(path)],
                              cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for u in users]
    printed = {}
    for user, p in zip(users, procs, strict=True):
        out, err = p.communicate(timeout=90)
        assert p.returncode == 0, err
        assert "saved in" in err
        printed[user] = out.strip()
    assert users_in(path) == users
    tokens = TokenFile(path)
    for user, token in printed.items():
        assert tokens.verify(token) == user
    assert (path.stat().st_mode & 0o777) == 0o600
    assert (Path(f"{path}.lock").stat().st_mode & 0o777) == 0o600


@pytest.mark.parametrize("round_", range(3))
def test_eight_adds_released_together_keep_every_token(tmp_path: Path, round_: int) -> None:
    path = tmp_path / "tokens.json"
    TokenFile(path).add("before")  # the race is on an existing file, as well as a new one
    users = [f"r{round_}u{i}" for i in range(8)]
    printed = at_once(path, [("add", u) for u in users])
    assert users_in(path) == sorted(["before", *users])
    tokens = TokenFile(path)
    for user, token in zip(users, printed, strict=True):
        assert tokens.verify(token) == user


def test_a_revoked_token_stays_revoked_when_adds_race_the_revoke(tmp_path: Path) -> None:
    path = tmp_path / "tokens.json"
    back, lost = [], []
    for round_ in range(10):
        victim, _ = TokenFile(path).add(f"victim{round_}")
        users = [f"r{round_}u{i}" for i in range(3)]
        outs = at_once(path, [("revoke", f"victim{round_}"), *(("add", u) for u in users)])
        assert outs[0] == "revoked 1"  # the revoke reported success
        tokens = TokenFile(path)
        if tokens.verify(victim) is not None:
            back.append(f"victim{round_}")
        lost += [u for u, t in zip(users, outs[1:], strict=True) if tokens.verify(t) != u]
    assert back == [], "revoked tokens that work again"
    assert lost == [], "tokens reported saved that are gone"


def test_a_change_waits_for_the_lock_and_a_reader_does_not(tmp_path: Path) -> None:
    path = tmp_path / "tokens.json"
    token, _ = TokenFile(path).add("ann")
    before = path.read_bytes()
    fd = os.open(f"{path}.lock", os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        proc = subprocess.Popen([sys.executable, "-c", CHILD, api_tokens.__file__, str(path),
                                 "add", "bob"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        assert proc.stdout is not None and proc.stdin is not None
        assert proc.stdout.readline() == "ready\n"
        proc.stdin.write("go\n")
        proc.stdin.flush()
        time.sleep(0.5)
        assert proc.poll() is None  # blocked on the lock
        assert path.read_bytes() == before
        assert TokenFile(path).verify(token) == "ann"  # the server's read needs no lock
    finally:
        os.close(fd)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert TokenFile(path).verify(out.strip()) == "bob"
    assert users_in(path) == ["ann", "bob"]


def test_no_lock_file_is_a_clear_error_and_nothing_is_written(tmp_path: Path) -> None:
    path = tmp_path / "tokens.json"
    Path(f"{path}.lock").mkdir()  # the lock file cannot be made (as root too)
    with pytest.raises(TokenError, match=r"cannot write the token file .*lock"):
        TokenFile(path).add("ann")
    assert not path.exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes in a read-only directory")
def test_a_read_only_directory_is_a_clear_error(tmp_path: Path) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        with pytest.raises(TokenError, match=r"cannot write the token file .*lock"):
            TokenFile(folder / "tokens.json").add("ann")
        assert list(folder.iterdir()) == []
    finally:
        folder.chmod(0o700)


def test_a_json_file_that_is_not_an_object_is_a_clear_cli_error(tmp_path: Path) -> None:
    files = []
    for name, text in (("list.json", "[]\n"), ("strings.json", '["x"]\n')):
        (tmp_path / name).write_text(text, encoding="utf-8")
        files.append(tmp_path / name)
    procs = [subprocess.Popen([str(CLI), "serve", "token", "list", "--tokens", str(f)],
                              cwd=tmp_path, env=clean_env(), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for f in files]
    for f, p in zip(files, procs, strict=True):
        out, err = p.communicate(timeout=60)
        assert p.returncode != 0
        assert "Traceback" not in err, err
        assert len(err.strip().splitlines()) == 1, err
        assert f"{f} is not a multi-agent token file" in err
        assert "a JSON list" in err and "token add" in err
        assert out == ""


@pytest.mark.parametrize(("text", "held"), [("[]", "a JSON list"), ('["x"]', "a JSON list"),
                                            ('"x"', "a JSON string"), ("3", "a JSON number"),
                                            ("null", "JSON null"), ("true", "a JSON boolean")])
def test_a_non_object_token_file_is_a_token_error_for_every_use(tmp_path: Path, text: str,
                                                                held: str) -> None:
    path = tmp_path / "tokens.json"
    path.write_text(text, encoding="utf-8")
    tokens = TokenFile(path)
    for use in (tokens.records, lambda: tokens.verify("mat_0123abcd_secret"),  # the server: 503
                lambda: tokens.add("ann"), lambda: tokens.revoke("ann")):
        with pytest.raises(TokenError, match=f"not a multi-agent token file \\(it holds {held}"):
            use()
    assert path.read_text(encoding="utf-8") == text  # add and revoke wrote nothing


def test_the_module_reads_from_the_repository() -> None:
    # The child processes load api_tokens.py by path: the one under test, not an installed copy.
    assert Path(api_tokens.__file__).resolve() == ROOT / "multi_agent" / "store" / "api_tokens.py"


def test_a_user_id_with_control_characters_is_refused(tmp_path: Path) -> None:
    """``token add "$(printf 'a\\nb')"`` was accepted and broke ``token list``'s table."""
    tokens = tmp_path / "ctl.json"
    for user in ("a\nb", "tab\there", "", "x" * 300):
        with pytest.raises(TokenError, match="not a user id"):
            TokenFile(tokens).add(user)
    assert not tokens.exists()
