"""``multi-agent``: the command line, a thin shell over the library.

Each command group lives in its own module that exposes ``register(subparsers)``; it adds its
sub-commands with ``set_defaults(func=...)``, where ``func(args) -> int`` runs the command and
returns the exit code. Errors of the library (``MultiAgentError``) are printed as one clear
line on stderr with exit code 2, never as a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

__all__ = ["main"]

# Command modules, in the order their commands appear in --help.
COMMAND_MODULES = (
    "multi_agent.cli.chat",
    "multi_agent.cli.inspect",
    "multi_agent.cli.tree",
)

DEFAULT_DB = "sqlite+aiosqlite:///./multi_agent_data.db"


def default_db() -> str:
    """``--db`` default: $MULTI_AGENT_DB, else multi_agent_data.db in the working directory."""
    return os.environ.get("MULTI_AGENT_DB", DEFAULT_DB)


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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="multi-agent",
        description="A persistent multi-agent assistant on Google ADK, and its session store.",
        epilog="Example: multi-agent chat --user ann",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:
                continue  # a command group not built yet
            raise
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``multi-agent`` console script."""
    try:
        return _main(argv)
    except KeyboardInterrupt:  # also during the 1-2 s it takes to import ADK
        return 130


def _main(argv: Sequence[str] | None) -> int:
    from ..errors import MultiAgentError

    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    if hasattr(args, "db"):
        args.db = normalise_db(args.db)
    try:
        return int(args.func(args) or 0)
    except MultiAgentError as exc:
        print(f"multi-agent: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
