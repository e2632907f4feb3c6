"""``multi-agent keygen`` and ``multi-agent rekey``: keys for encryption at rest
(``multi_agent.store.sealing``; the operator's guide is docs/encryption.md)."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

from . import EXIT_FAILURE, add_common
from .inspect import missing_database

KEYS_HELP = (
    "The keys come from $MULTI_AGENT_ENCRYPTION_KEY (comma-separated, the first seals), or "
    "from the file in $MULTI_AGENT_ENCRYPTION_KEY_FILE or --key-file (one key a line)."
)


def register(sub: argparse._SubParsersAction) -> None:
    """Adds ``keygen`` and ``rekey``."""
    p = sub.add_parser(
        "keygen",
        help="print a new random encryption key (for encryption at rest)",
        description="Prints a new key for encryption at rest: 32 random bytes from the "
        "operating system, in URL-safe base64. Keep it out of the database's backups; "
        "without it the encrypted rows cannot be read.",
        epilog="Examples:\n  multi-agent keygen > /etc/multi-agent/key && chmod 600 "
        "/etc/multi-agent/key\n  export MULTI_AGENT_ENCRYPTION_KEY=$(multi-agent keygen)",
    )
    p.set_defaults(func=cmd_keygen)

    p = sub.add_parser(
        "rekey",
        help="re-encrypt every row with the new key (key rotation; seals clear rows too)",
        description="Re-encrypts every sealed value (event content and text, session, user "
        "and app state) with the first key given, in batches of --batch rows, each a short "
        "transaction, so writers keep going. Rows in clear (written before encryption was "
        "turned on) are sealed too. Interrupted, it resumes where it was when run again. "
        "When done, the old keys are retired: the store no longer asks for them. During a "
        "rotation give both keys, the new one first, to every process (they all read with "
        "either). " + KEYS_HELP,
        epilog="Examples:\n  MULTI_AGENT_ENCRYPTION_KEY=$NEW,$OLD multi-agent rekey --dry-run\n"
        "  MULTI_AGENT_ENCRYPTION_KEY=$NEW,$OLD multi-agent rekey --db store.db",
    )
    add_common(p, user=False)
    p.add_argument("--key-file", help="file with the keys, new key first (instead of the "
                   "environment)")
    p.add_argument("--batch", type=int, default=500, metavar="N",
                   help="rows per transaction (default 500)")
    p.add_argument("--dry-run", action="store_true", help="only count the rows to re-seal")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=cmd_rekey)


def cmd_keygen(args: argparse.Namespace) -> int:
    from ..store.sealing import generate_key

    print(generate_key())
    return 0


def cmd_rekey(args: argparse.Namespace) -> int:
    from ..store import DatabaseSessionService
    from ..store.rekey import rekey

    if args.batch < 1:
        print("multi-agent rekey: --batch must be 1 or more.", file=sys.stderr)
        return EXIT_FAILURE
    if missing_database(args.db):
        return EXIT_FAILURE

    def progress(table: str, done: int) -> None:
        if sys.stderr.isatty():
            print(f"\r{table}: {done} rows re-sealed", end="", file=sys.stderr, flush=True)

    async def run() -> Any:
        async with DatabaseSessionService(args.db, encryption_key_file=args.key_file) as store:
            return await rekey(store, batch_size=args.batch, dry_run=args.dry_run,
                               progress=progress)

    report = asyncio.run(run())
    if sys.stderr.isatty() and not args.dry_run:
        print(file=sys.stderr)
    if args.json:
        print(json.dumps({"key": report.key, "retired": report.retired, "rows": report.rows,
                          "total": report.total, "batches": report.batches,
                          "done": report.done, "dry_run": args.dry_run}))
        return 0
    rows = ", ".join(f"{table} {n}" for table, n in report.rows.items())
    if args.dry_run:
        print(f"Would re-seal {report.total} rows with key {report.key} ({rows}).")
        return 0
    print(f"Re-sealed {report.total} rows with key {report.key} in {report.batches} "
          f"batches ({rows}).")
    if report.retired:
        print(f"Retired key(s): {', '.join(report.retired)}; they are no longer needed.")
    return 0
