"""``multi-agent keygen`` and ``multi-agent rekey``: keys for encryption at rest
(``multi_agent.store.sealing``; the operator's guide is docs/encryption.md)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
from typing import Any

from . import EXIT_FAILURE, EXIT_USAGE, add_common
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
        "without it the encrypted rows cannot be read. --out writes it to a new file "
        "readable only by you instead. Use it with: export "
        "MULTI_AGENT_ENCRYPTION_KEY=$(multi-agent keygen).",
        epilog="Examples:\n  multi-agent keygen\n  multi-agent keygen --out new.key",
    )
    p.add_argument("--out", metavar="FILE", help="write the key to FILE (mode 600; an "
                   "existing file is not overwritten)")
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
        "either): MULTI_AGENT_ENCRYPTION_KEY=$NEW,$OLD multi-agent rekey. " + KEYS_HELP
        + " --dry-run counts the rows to re-seal and changes nothing.",
        epilog="Example:\n  multi-agent rekey --key-file new.key --dry-run",
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

    key = generate_key()
    if not args.out:
        print(key)
        return 0
    try:
        fd = os.open(args.out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        print(f"multi-agent keygen: {args.out} exists; not overwriting a key.", file=sys.stderr)
        return EXIT_FAILURE
    except OSError as exc:
        print(f"multi-agent keygen: cannot create {args.out}: {exc.strerror}.", file=sys.stderr)
        return EXIT_FAILURE
    try:  # a key file cut off by a full disk would look like a key: none is left instead
        with os.fdopen(fd, "w") as out:
            out.write(key + "\n")
            out.flush()
            os.fsync(out.fileno())
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(args.out)
        print(f"multi-agent keygen: cannot write {args.out}: {exc.strerror or exc}; no key "
              "file was left.", file=sys.stderr)
        return EXIT_FAILURE
    print(f"Wrote a new key to {args.out}.")
    return 0


def cmd_rekey(args: argparse.Namespace) -> int:
    from ..store import DatabaseSessionService
    from ..store.rekey import rekey

    if args.batch < 1:  # a bad option value: a usage error, as argparse's own
        print("multi-agent rekey: --batch must be 1 or more.", file=sys.stderr)
        return EXIT_USAGE
    if missing_database(args.db):
        return EXIT_FAILURE

    def progress(table: str, done: int) -> None:
        if sys.stderr.isatty():
            print(f"\r{table}: {done} rows re-sealed", end="", file=sys.stderr, flush=True)

    async def run() -> Any:
        from ..errors import EncryptionKeyError
        from ..store.sealing import ENV_KEY, ENV_KEY_FILE, load_keyring

        if args.dry_run:  # a clear database stays as it is: opened without the key
            keyring = load_keyring(key_file=args.key_file)
            saved = {k: os.environ.pop(k) for k in (ENV_KEY, ENV_KEY_FILE) if k in os.environ}
            try:
                keyless = DatabaseSessionService(args.db)
            finally:
                os.environ.update(saved)
            try:
                async with keyless as store:
                    return await rekey(store, dry_run=True, keyring=keyring)
            except EncryptionKeyError:
                pass  # encrypted: it needs its keys to be opened
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
