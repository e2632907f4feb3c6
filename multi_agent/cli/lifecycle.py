"""``multi-agent forget`` and ``multi-agent prune``: the data lifecycle (a user's data removed;
sessions idle for too long deleted)."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..store.api_tokens import default_tokens_path
from . import EXIT_FAILURE, EXIT_USAGE, add_common, confirm, fail, is_terminal, whole_number
from .inspect import APP_NAME, missing_database


MAX_KEEP_LAST = 2**63 - 1
"""The largest ``--keep-last``: SQLite's (and PostgreSQL's) largest integer."""


def _age(value: str) -> str:
    """argparse type of ``--older-than`` and ``--keep-days``: checked while the options are
    parsed, so that a bad age is a usage error (exit 2) like any other bad option value. The
    text is kept as given: the report says "idle for more than 30d"."""
    from ..errors import InvalidValueError
    from ..store.prune import parse_age

    try:
        parse_age(value)
    except InvalidValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return value


# argparse type of ``--keep-last`` (a larger number no database column holds; and it would
# keep everything anyway).
_keep_last = whole_number(MAX_KEEP_LAST, unit="of events", shown="2**63-1")


def register(sub: argparse._SubParsersAction) -> None:
    """Adds ``forget`` and ``prune``."""
    p = sub.add_parser(
        "forget",
        help="remove everything stored of a user (sessions, memory, state, API tokens)",
        description="Removes every row of the user in the app, in one transaction: sessions "
        "with their events and runs, user: state, long memory (entries, vectors, watermarks), "
        "and the user's API tokens of multi-agent serve (in --tokens FILE, or the default "
        "token file when it exists). app: state stays. On SQLite the deleted content is "
        "overwritten in the file (secure_delete, the full-text index merged) and the -wal "
        "emptied. Asks first on a terminal; --yes does not ask, and is needed when stdin is "
        "not a terminal. A user with nothing stored: says so and exits 1.",
        epilog="Examples:\n  multi-agent forget --user ann --dry-run\n"
        "  multi-agent forget --user ann --yes --json",
    )
    add_common(p, user=False)
    p.add_argument("--user", required=True, help="the user id to forget")
    p.add_argument("--app", default=APP_NAME, help="app name (default: multi_agent)")
    p.add_argument("--tokens", help="token file of multi-agent serve (default: "
                   "$MULTI_AGENT_TOKENS_FILE, else multi_agent_tokens.json beside the SQLite "
                   "file, or here for PostgreSQL; used when it exists)")
    p.add_argument("--dry-run", action="store_true", help="only say what would be removed")
    p.add_argument("-y", "--yes", action="store_true", help="remove without asking")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=cmd_forget)

    p = sub.add_parser(
        "prune",
        help="delete idle sessions (--older-than) or trim their history (--keep-last/--keep-days)",
        description="--older-than AGE deletes every session whose last update is older than "
        "AGE (30d, 12h, 2w; a plain number is days), in every app or only --app: whole "
        "sessions with their events, runs and long memory; user: and app: state stay. "
        "--keep-last N and/or --keep-days D trim each session's history instead: its oldest "
        "events go (with their memory entries), while the newest compaction summary, the "
        "current run, whole runs and tool calls with their results stay; run rows stay (shown "
        "as pruned), the session's state does not change. --save-policy stores --keep-last/"
        "--keep-days as --app's policy (in the database) and trims nothing; --policy trims "
        "every app that has one by it. Works in batches, each a short transaction, so the "
        "chat and the server keep writing meanwhile. On SQLite the space is returned to the "
        "file system when the file uses auto_vacuum=INCREMENTAL; otherwise it is reused by "
        "later writes, and --vacuum rewrites the file so that it shrinks (a VACUUM: other "
        "writers wait until it is done). PostgreSQL's autovacuum reclaims the space. "
        "--dry-run prints what would go, per app and user. Asks first on a terminal; --yes "
        "does not ask, and is needed when stdin is not a terminal.",
        epilog="Examples:\n  multi-agent prune --older-than 30d --dry-run\n"
        "  multi-agent prune --older-than 90d --yes\n"
        "  multi-agent prune --keep-last 200 --dry-run\n"
        "  multi-agent prune --keep-days 30 --app multi_agent --yes\n"
        "  multi-agent prune --app multi_agent --keep-last 200 --save-policy\n"
        "  multi-agent prune --policy --yes",
    )
    add_common(p, user=False)
    p.add_argument("--older-than", metavar="AGE", type=_age,
                   help="delete sessions idle for longer than this: 30d, 12h, 90m, 2w (a "
                   "number: days)")
    p.add_argument("--keep-last", type=_keep_last, metavar="N",
                   help="trim each session to its last N events (whole runs kept)")
    p.add_argument("--keep-days", metavar="AGE", type=_age,
                   help="trim each session's events older than this (30d, 12h; a number: days)")
    p.add_argument("--policy", action="store_true",
                   help="trim by the policies stored with --save-policy")
    p.add_argument("--save-policy", action="store_true",
                   help="store --keep-last/--keep-days as --app's policy (nothing is trimmed; "
                   "neither given: remove its policy)")
    p.add_argument("--app", help="only this app's sessions (default: every app)")
    p.add_argument("--dry-run", action="store_true", help="only say what would be deleted")
    p.add_argument("--vacuum", action="store_true",
                   help="SQLite: rewrite the file afterwards so that it shrinks (VACUUM)")
    p.add_argument("-y", "--yes", action="store_true", help="delete without asking")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=cmd_prune)


def tokens_file(args: argparse.Namespace) -> str | None:
    """``--tokens``, else the serve's default token file when it exists; None: no token
    file."""
    if args.tokens:
        return str(args.tokens)
    path = default_tokens_path(args.db)
    return str(path) if path.exists() else None


def describe(report: Any) -> str:
    """``3 sessions, 42 events, ..., 1 API token``: every count, zeros included."""
    parts = [f"{n} {name}" for n, name in report.labelled()]
    tokens = report.tokens
    if tokens is not None:
        parts.append(f"{tokens} API token{'' if tokens == 1 else 's'}")
    return ", ".join(parts)


def cmd_forget(args: argparse.Namespace) -> int:
    from ..store import DatabaseSessionService

    if missing_database(args.db):
        return EXIT_FAILURE
    if not (args.yes or args.dry_run) and not is_terminal(sys.stdin):
        print("multi-agent forget: stdin is not a terminal, so it cannot ask: pass --yes to "
              "remove without asking (or --dry-run to see what would go).", file=sys.stderr)
        return EXIT_USAGE
    tokens = tokens_file(args)

    async def run() -> tuple[Any, bool]:
        async with DatabaseSessionService(args.db) as store:
            planned = await store.forget_user(app_name=args.app, user_id=args.user,
                                              tokens_file=tokens, dry_run=True)
            # The plan is the report when nothing is removed; its dry_run says what was
            # asked for, not how the counts were made.
            planned.dry_run = bool(args.dry_run)
            if args.dry_run or not planned.found:
                return planned, False
            if not args.yes:
                question = (f"Forget user {args.user} in app {args.app}: remove "
                            f"{describe(planned)}? It cannot be undone "
                            "(multi-agent export saves a session first). [y/N] ")
                if not await confirm(question):
                    return planned, True
            done = await store.forget_user(app_name=args.app, user_id=args.user,
                                           tokens_file=tokens)
            return done, False

    report, declined = asyncio.run(run())
    if args.json:
        sys.stdout.write(json.dumps(report.to_dict(), indent=2, sort_keys=True) + "\n")
    if not report.found:
        where = f" or in {Path(tokens)}" if tokens else ""
        return fail(f"Nothing stored of user {args.user!r} in app {args.app!r}{where}: nothing "
                    "was removed. (Check --user, --app and --db.)")
    if declined:
        return fail("Nothing was removed.")
    what = describe(report)
    if report.dry_run:
        if not args.json:
            print(f"Would forget user {args.user} in app {args.app}: {what}.")
        return 0
    if not args.json:
        print(f"Forgot user {args.user} in app {args.app}: removed {what}.")
    if report.vacuum_error is not None:
        print(f"The VACUUM after the forget failed ({report.vacuum_error}): the rows are "
              "deleted, but older copies of them may remain in unused space of the file until "
              "a VACUUM succeeds: free some disk space and run sqlite3 FILE 'VACUUM'.",
              file=sys.stderr)
    if report.wal_emptied is False:
        print("The -wal could not be emptied now (another connection is reading): the deleted "
              "pages are overwritten, but old copies stay in the -wal until a checkpoint: run "
              "sqlite3 FILE 'PRAGMA wal_checkpoint(TRUNCATE)' once it is done.", file=sys.stderr)
    return 0


PRUNE_NAMES = (
    ("sessions", "session", "sessions"),
    ("events", "event", "events"),
    ("runs", "run", "runs"),
    ("memory_entries", "memory entry", "memory entries"),
)


def describe_counts(counts: dict[str, int], names: tuple[tuple[str, str, str], ...]) -> str:
    """``2 sessions, 40 events, ...``: each of ``names`` (key, singular, plural), zeros too."""
    return ", ".join(f"{counts.get(k, 0)} {one if counts.get(k, 0) == 1 else many}"
                     for k, one, many in names)


def describe_prune(counts: dict[str, int]) -> str:
    """``2 sessions, 40 events, 6 runs, 12 memory entries``."""
    return describe_counts(counts, PRUNE_NAMES)


TRIM_NAMES = (
    ("sessions", "session", "sessions"),
    ("events", "event", "events"),
    ("runs", "run emptied", "runs emptied"),
    ("memory_entries", "memory entry", "memory entries"),
)


def describe_trim(counts: dict[str, int]) -> str:
    """``2 sessions, 40 events, 6 runs emptied, 12 memory entries``."""
    return describe_counts(counts, TRIM_NAMES)


def usage(message: str) -> int:
    print(f"multi-agent prune: {message}", file=sys.stderr)
    return EXIT_USAGE


def cmd_prune(args: argparse.Namespace) -> int:
    trimming = args.keep_last is not None or args.keep_days is not None
    if args.save_policy:
        if args.policy or args.older_than is not None or args.dry_run:
            return usage("--save-policy only stores --keep-last/--keep-days for --app; give "
                         "it without --older-than, --policy or --dry-run.")
        if not args.app:
            return usage("--save-policy needs --app APP (the app the policy is for).")
        return save_policy(args)
    if args.older_than is not None and (trimming or args.policy):
        return usage("--older-than deletes whole sessions, --keep-last/--keep-days/--policy "
                     "trim their history: run them as two commands.")
    if args.policy and trimming:
        return usage("--policy trims by the stored policies: leave out --keep-last and "
                     "--keep-days (or give those without --policy).")
    if trimming or args.policy:
        return cmd_trim(args)
    if args.older_than is None:
        return usage("say what to prune: --older-than AGE (idle sessions), --keep-last N "
                     "and/or --keep-days AGE (each session's history), or --policy.")
    return cmd_prune_idle(args)


def _keep_days(args: argparse.Namespace) -> float | None:
    from ..store.prune import parse_age

    return None if args.keep_days is None else parse_age(args.keep_days) / 86400


def save_policy(args: argparse.Namespace) -> int:
    from ..store import DatabaseSessionService

    if missing_database(args.db):
        return EXIT_FAILURE
    from ..store.trim import RetentionPolicy

    days = _keep_days(args)
    removing = args.keep_last is None and days is None

    async def run() -> tuple[Any, bool]:
        async with DatabaseSessionService(args.db) as store:
            if removing and args.app not in await store.retention_policies():
                return RetentionPolicy(), False  # nothing to remove: nothing written
            policy = await store.set_retention_policy(
                app_name=args.app, keep_last_events=args.keep_last, keep_days=days)
            return policy, True

    policy, changed = asyncio.run(run())
    if args.json:
        sys.stdout.write(json.dumps({"app_name": args.app, **policy.to_dict()},
                                    sort_keys=True) + "\n")
    elif policy.empty and not changed:
        print(f"App {args.app} has no retention policy: nothing was removed.")
    elif policy.empty:
        print(f"Removed the retention policy of app {args.app}.")
    else:
        print(f"Stored the retention policy of app {args.app}: {describe_policy(policy)}. "
              "multi-agent prune --policy applies it.")
    return 0


def describe_policy(policy: Any) -> str:
    parts = []
    if policy.keep_last_events is not None:
        parts.append(f"the last {policy.keep_last_events} events")
    if policy.keep_days is not None:
        parts.append(f"{policy.keep_days:g} days")
    return "keep " + " and at most ".join(parts)


def cmd_trim(args: argparse.Namespace) -> int:
    from ..store.trim import RetentionPolicy

    days = _keep_days(args)
    limits = {"keep_last_events": args.keep_last, "keep_days": days, "app_name": args.app}
    # --keep-last/--keep-days: the limits given, whatever matched (the report's policies
    # name only the apps that had something to trim); --policy: the stored ones applied.
    given = None if args.policy else RetentionPolicy(args.keep_last, days)

    def text(report: Any) -> str:
        return describe_policy(given) if given is not None else policies_text(report)

    return _plan_then_delete(args, Deletion(
        method="trim_sessions", kwargs=limits, counted="events", progress="Trimming sessions",
        describe=describe_trim, would="Would trim", did="Trimmed",
        condition=text,
        question=lambda totals, report: f"Trim {describe_trim(totals)} ({text(report)})",
        nothing=lambda report: f"has history to trim ({text(report)})",
        limits=None if given is None else given.to_dict(),
    ))


@dataclass(frozen=True, slots=True)
class Deletion:
    """What one of prune's two commands deletes, and how its report reads."""

    method: str  # the store's method: called with dry_run=True first, then for real
    kwargs: dict[str, Any]
    counted: str  # the total that says whether anything would go (sessions / events)
    progress: str
    describe: Callable[[dict[str, int]], str]
    would: str
    did: str
    condition: Callable[[Any], str]  # "(idle for more than 30d)" without the brackets
    question: Callable[[dict[str, int], Any], str]
    nothing: Callable[[Any], str]
    limits: dict[str, Any] | None = None  # trim --json: the limits given (None: --policy)


def _plan_then_delete(args: argparse.Namespace, job: Deletion) -> int:
    """Plans (a dry run), asks unless --yes, deletes in the store's batches, reports."""
    from ..store import DatabaseSessionService
    from . import render

    if missing_database(args.db):
        return EXIT_FAILURE
    if not (args.yes or args.dry_run) and not is_terminal(sys.stdin):
        print("multi-agent prune: stdin is not a terminal, so it cannot ask: pass --yes to "
              "delete without asking (or --dry-run to see what would go).", file=sys.stderr)
        return EXIT_USAGE

    async def run() -> tuple[Any, bool]:
        async with DatabaseSessionService(args.db) as store:
            method = getattr(store, job.method)
            planned = await method(**job.kwargs, dry_run=True)
            # The plan is the report when nothing is deleted; its dry_run says what was
            # asked for, not how the counts were made.
            planned.dry_run = bool(args.dry_run)
            total = planned.totals()[job.counted]
            if args.dry_run or (not total and not args.vacuum):
                return planned, False
            if not args.yes:
                question = f"{job.question(planned.totals(), planned)}? It cannot be undone. [y/N] "
                if not await confirm(question):
                    return planned, True
            with render.progress(job.progress, total=total) as bar:
                done = await method(**job.kwargs, vacuum=args.vacuum,
                                    progress=lambda n: bar.update(n, max(total, n)))
            return done, False

    report, declined = asyncio.run(run())
    if declined:
        return fail("Nothing was deleted.")
    if args.json:
        out = report.to_dict()
        if job.method == "trim_sessions":
            out["limits"] = job.limits
        sys.stdout.write(json.dumps(out, indent=2, sort_keys=True) + "\n")
        return 0
    where = f" in app {args.app}" if args.app else ""
    totals = report.totals()
    if not totals[job.counted]:
        print(f"No session{where} {job.nothing(report)}: nothing to delete.")
    else:
        verb = job.would if report.dry_run else job.did
        print(f"{verb} {job.describe(totals)}{where} ({job.condition(report)}):")
        for (app, user), counts in sorted(report.by_user.items()):
            print(f"  {app} / {user}: {job.describe(counts)}")
    if getattr(report, "skipped", 0):
        print(f"{report.skipped} session(s) were branched during the trim and left as they "
              "were: run it again.")
    if report.dry_run:
        return 0
    print_space(report)
    return 0


def policies_text(report: Any) -> str:
    """``keep the last 200 events`` or, for several apps, ``a: keep ...; b: keep ...``."""
    texts = {describe_policy(p) for p in report.policies.values()}
    if len(texts) <= 1:
        return texts.pop() if texts else "no policy"
    return "; ".join(f"{a}: {describe_policy(p)}" for a, p in sorted(report.policies.items()))


def print_space(report: Any) -> None:
    if report.space == "incremental_vacuum" or report.space == "vacuum":
        how = "incremental vacuum" if report.space == "incremental_vacuum" else "VACUUM"
        print(f"Space: {report.pages_freed} pages returned to the file system ({how}).")
    elif report.space == "free_list":
        print("Space: the freed pages stay in the SQLite file and are reused by later writes "
              "(the file does not use auto_vacuum=INCREMENTAL); --vacuum shrinks the file.")
    elif report.space == "autovacuum":
        print("Space: PostgreSQL's autovacuum reclaims it.")


def cmd_prune_idle(args: argparse.Namespace) -> int:
    from ..store.prune import parse_age

    seconds = parse_age(args.older_than)
    idle = f"idle for more than {args.older_than}"
    return _plan_then_delete(args, Deletion(
        method="prune_sessions", kwargs={"older_than": seconds, "app_name": args.app},
        counted="sessions", progress="Pruning sessions", describe=describe_prune,
        would="Would delete", did="Deleted", condition=lambda _report: idle,
        question=lambda totals, _report: f"Delete {describe_prune(totals)} ({idle})",
        nothing=lambda _report: f"has been {idle}",
    ))
