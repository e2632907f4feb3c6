"""``multi-agent``: the command line, a thin shell over the library.

Each command group lives in its own module that exposes ``register(subparsers)``; it adds its
sub-commands with ``set_defaults(func=...)``, where ``func(args) -> int`` runs the command and
returns the exit code.

Exit codes, as argparse and most command-line tools use them:

* ``0`` done; ``2`` a usage error (unknown option, missing argument, a bad option value such
  as ``--older-than abc`` or ``--limit 0``: checked by the option's argparse type, so
  argparse says which);
* ``1`` a failure: errors of the library (``MultiAgentError``) are printed as one clear line on
  stderr (``multi-agent: ...``), never as a traceback; :func:`fail` does the same for a
  command's own checks;
* ``130`` Ctrl-C; ``141`` the reader of the output went away (``multi-agent ... | head -1``):
  the command stops quietly, like a program killed by SIGPIPE;
* ``1`` too when the output cannot be written (``> /dev/full``, a full disk): one line,
  ``multi-agent: cannot write the output: No space left on device``, not a traceback.

Closed standard streams (``<&-``, ``>&-``, ``2>&-``: Python sets ``sys.stdin`` ... to None):
stdin closed is no terminal and no input (:func:`is_terminal`); stdout closed leaves nowhere to
write, so no command runs (one line on stderr, exit 1); stderr closed drops what would go there.

Output: while a command runs with stdout not a terminal, rich renders wide (``$COLUMNS``, when
set, wins), so piped tables and trees keep each row on one line and ids are never wrapped.
Long work reports progress with :func:`multi_agent.cli.render.progress` (on stderr, only on a
terminal).
"""

from __future__ import annotations

import argparse
import importlib
import os
import re
import sys
from collections.abc import Callable, Sequence
from typing import Any

from ..defaults import DEFAULT_DB_FILE, DEFAULT_DB_URL

__all__ = ["EXIT_FAILURE", "EXIT_USAGE", "confirm", "fail", "is_terminal", "main"]

# Command modules, in the order their commands appear in --help.
TEAM_CHAT = "multi_agent.team.chat"
TEAM_MISSING = (
    "the chat is part of the agent team, which is not installed here "
    "(this is the store alone): pip install multi-agent-team"
)
TEAM_SERVE = "multi_agent.team.serve.cli"
COMMAND_MODULES = (
    TEAM_CHAT,
    TEAM_SERVE,
    "multi_agent.cli.inspect",
    "multi_agent.cli.lifecycle",
    "multi_agent.cli.tree",
    "multi_agent.cli.keys",
)

DEFAULT_DB = DEFAULT_DB_URL

EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141


def whole_number(high: int, *, unit: str = "", shown: str | None = None
                 ) -> Callable[[str], int]:
    """An argparse type: a whole number from 1 to ``high``, checked while the options are
    parsed, so that a bad one is a usage error (exit 2) naming the option. ``unit`` ("events")
    and ``shown`` (how ``high`` is written, e.g. ``2**63-1``) go into the message."""

    def parse(value: str) -> int:
        try:
            number = int(value)
        except ValueError:
            number = 0
        if not 1 <= number <= high:
            raise argparse.ArgumentTypeError(
                f"must be a whole number {unit + ' ' if unit else ''}from 1 to "
                f"{shown or high}, got {value!r}")
        return number

    return parse


def fail(message: str) -> int:
    """Prints ``multi-agent: message`` on stderr; returns the failure exit code (1)."""
    print(f"multi-agent: {message}", file=sys.stderr)
    return EXIT_FAILURE


def is_terminal(stream: Any) -> bool:
    """True if ``stream`` (``sys.stdin``, ``sys.stdout``, ``sys.stderr``) is an open terminal.

    A stream the program was started without (``<&-``: Python sets it to None) or one that is
    closed is not: a command that would ask on a terminal behaves as with stdin piped.
    """
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False


def version() -> str:
    """``multi-agent --version``: the release (store and team share it), and whether the team
    is installed."""
    from .. import __version__

    try:
        import multi_agent.team  # noqa: F401
    except ImportError:
        return f"{__version__} (the store alone; the agent team is not installed)"
    return __version__


async def confirm(question: str) -> bool:
    """Asks ``question`` on the terminal (without blocking the event loop); True for y/yes.
    End of input counts as no."""
    import asyncio

    try:
        answer = await asyncio.to_thread(input, question)
    except EOFError:
        return False
    return answer.strip().lower() in ("y", "yes")


def default_db() -> str:
    """``--db`` default: $MULTI_AGENT_DB, else multi_agent_data.db in the working directory."""
    return os.environ.get("MULTI_AGENT_DB", "").strip() or DEFAULT_DB  # (set but empty: unset)


def default_user() -> str:
    """``--user`` default: $MULTI_AGENT_USER, else the OS user name."""
    import getpass

    return os.environ.get("MULTI_AGENT_USER") or getpass.getuser() or "user"


def add_common(parser: argparse.ArgumentParser, *, user: bool = True) -> None:
    """The options every command shares: --db and (usually) --user."""
    parser.add_argument(
        "--db", default=default_db(),
        help="database URL (default: $MULTI_AGENT_DB or sqlite file ./multi_agent_data.db); "
        "a plain file path is accepted too",
    )
    if user:
        parser.add_argument("--user", default=default_user(), help="user id (default: OS user)")


def normalise_db(value: str) -> str:
    """Accepts a URL or a plain SQLite file path."""
    if "://" in value:
        return value
    return f"sqlite+aiosqlite:///{os.path.abspath(os.path.expanduser(value))}"


class HelpFormatter(argparse.HelpFormatter):
    """Wraps the description and epilog to the terminal, paragraph by paragraph, and keeps
    indented lines (examples) exactly as written."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        out: list[str] = []
        for block in re.split(r"\n\s*\n", text.strip("\n")):
            plain: list[str] = []
            for line in [*block.splitlines(), None]:
                verbatim = line is None or line.startswith(" ") or line.rstrip().endswith(":")
                if verbatim and plain:
                    out.append(super()._fill_text(" ".join(plain), width, indent))
                    plain = []
                if line is None:
                    break
                if verbatim:
                    out.append(indent + line.rstrip())
                else:
                    plain.append(line.strip())
            out.append("")
        return "\n".join(out).rstrip("\n")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="multi-agent",
        description="A persistent multi-agent assistant on Google ADK, and its session store.",
        epilog="Example:\n  multi-agent chat --user ann\n\n"
        "Each command's --help has an example. Exit codes: 0 done, 1 failed, 2 usage error.",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"multi-agent {version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if name in (TEAM_CHAT, TEAM_SERVE) and exc.name and name.startswith(exc.name):
                _register_missing_team(sub, "chat" if name == TEAM_CHAT else "serve")
                continue
            raise
        module.register(sub)
    _wrap_help(parser)
    return parser


def _register_missing_team(sub: argparse._SubParsersAction, command: str = "chat") -> None:
    """``chat`` (or ``serve``) in a store-only install: says how to get the team instead of
    being unknown."""
    what = "talk to the team" if command == "chat" else "serve the team over HTTP"
    message = TEAM_MISSING if command == "chat" else TEAM_MISSING.replace(
        "the chat is", f"multi-agent {command} is")
    parser = sub.add_parser(command, help=f"{what} (not installed: multi-agent-team)")
    parser.add_argument("rest", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    parser.set_defaults(func=lambda args: fail(message))


def _wrap_help(parser: argparse.ArgumentParser) -> None:
    """Every (sub-)command's help is wrapped by :class:`HelpFormatter`."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                child.formatter_class = HelpFormatter
                _wrap_help(child)


class OutputError(OSError):
    """Writing to stdout failed (not a broken pipe): the disk is full, ``> /dev/full``, an I/O
    error. Its own class so that :func:`main` can tell it from any other ``OSError``."""


class _GuardedOutput:
    """``sys.stdout`` while a command runs: every other attribute is the real stream's, but
    a write or flush that fails raises :class:`OutputError` instead of a bare ``OSError``.

    Without it, ``main`` could only guess whether an ``OSError`` came from the output (worth
    one line: "cannot write the output") or from somewhere else (a bug: its traceback)."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def _guard(self, method: str, *args: Any) -> Any:
        try:
            return getattr(self._stream, method)(*args)
        except BrokenPipeError:
            raise  # the reader left: main() stops quietly (141)
        except OutputError:
            raise
        except OSError as exc:
            raise OutputError(exc.errno, exc.strerror or str(exc)) from exc

    def write(self, text: str) -> int:
        return int(self._guard("write", text))

    def writelines(self, lines: Any) -> None:
        self._guard("writelines", lines)

    def flush(self) -> None:
        self._guard("flush")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``multi-agent`` console script."""
    if sys.stderr is None:  # started with stderr closed (2>&-): print() would use stdout
        sys.stderr = open(os.devnull, "w", encoding="utf-8")  # noqa: SIM115 (until exit)
    real_stdout = sys.stdout
    if real_stdout is not None:
        sys.stdout = _GuardedOutput(real_stdout)  # type: ignore[assignment]
    try:
        try:
            try:
                return _main(argv)
            finally:  # also after --help: a reader that left shows up here, not at exit
                if sys.stdout is not None:
                    sys.stdout.flush()
        except KeyboardInterrupt:  # also during the 1-2 s it takes to import ADK
            return EXIT_INTERRUPTED
        except BrokenPipeError:
            _discard_stdout()
            return EXIT_BROKEN_PIPE
        except OutputError as exc:
            _discard_stdout()  # what is still buffered would fail again at exit
            try:
                print(f"multi-agent: cannot write the output: {exc.strerror}", file=sys.stderr)
            except (OSError, ValueError):  # stderr cannot be written either
                pass
            return EXIT_FAILURE
    finally:
        if isinstance(sys.stdout, _GuardedOutput):
            sys.stdout = real_stdout


def _discard_stdout() -> None:
    """Points stdout at /dev/null, so Python's last flush at exit finds no broken pipe."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):  # no real stdout (e.g. captured in a test)
        pass


def _main(argv: Sequence[str] | None) -> int:
    from ..errors import MultiAgentError

    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    if sys.stdout is None:  # started with stdout closed (>&-); --help went to stderr
        return fail("stdout is closed, so there is nowhere to write the output; nothing was "
                    "done: run it with stdout open (>/dev/null to discard the output).")
    if hasattr(args, "db"):
        if not str(args.db).strip():
            return fail("--db is empty: give a database URL or file, or leave it out for "
                        f"$MULTI_AGENT_DB or ./{DEFAULT_DB_FILE}.")
        args.db = normalise_db(args.db)
    if isinstance(getattr(args, "user", None), str) and not args.user.strip():
        return fail("--user is blank: give a user id, or leave it out for $MULTI_AGENT_USER "
                    "or your OS user name.")
    piped = _wide_when_piped()
    try:
        return int(args.func(args) or 0)
    except MultiAgentError as exc:
        return fail(str(exc))
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    finally:
        if piped:
            os.environ.pop("COLUMNS", None)


def _wide_when_piped() -> bool:
    """Sets $COLUMNS for the command when stdout is not a terminal and it is not set; True if
    it did (the caller removes it again)."""
    from .render import PIPE_WIDTH

    try:
        if sys.stdout.isatty() or os.environ.get("COLUMNS"):
            return False
    except (AttributeError, ValueError):
        return False
    os.environ["COLUMNS"] = str(PIPE_WIDTH)
    return True


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
