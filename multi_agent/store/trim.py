"""Retention inside a session: trimming its history to the last N events and/or N days.

:func:`trim_sessions` (``DatabaseSessionService.trim_sessions``, ``multi-agent prune
--keep-last 200 --keep-days 30``) deletes a session's oldest events while keeping what the
model still needs. Per session it picks a **cut** (a sequence number): events from the cut on
stay, older ones go, except the newest compaction summary on the head path (when none is kept
after the cut). The cut is

1. the later of "the last ``keep_last_events`` events" and "the events of the last
   ``keep_days`` days" (both limits apply when both are given: at most N events and nothing
   older than D days);
2. moved back so that no kept event belongs to a run that started before the cut (a run keeps
   all its events or none: a tool call and its result, a handoff and the delegated agent's
   reply stay together), that no kept tool result loses its call (a long-running tool answered
   in a later run), and that the head run keeps its events;
3. moved forward to the start of a run, so that every run either keeps all its events or is
   **pruned**: its row stays (the run tree stays a valid tree, ``multi-agent runs`` still shows
   it) with the status ``pruned``.

The session's state does not change. Because branching (``runs.branch_session``) rebuilds the
session state from the initial state plus the path's events, the state that the deleted
head-path events wrote is folded into ``initial_state``, and the newest pruned run on the head
path is marked as the **base** of the kept history. Branching to a pruned run, or to a kept run
whose history does not continue from the base (it forked off before the cut, on another
branch), raises :class:`~multi_agent.errors.HistoryPrunedError`; branching to any other kept
run works as before. ``last_seq`` does not change (new events keep numbering on; sequence
numbers no longer start at 1 and have gaps), ``event_count`` counts the events still stored.

**Memory** follows the events: the long-memory entries (and their vectors) of deleted events are
deleted in the same transaction; the entries of kept events stay.

**Bounded batches**, as ``prune.py``: per session one read plans the cut; then the deletions
run in transactions of at most ``max_events`` events (oldest first), with
:data:`~multi_agent.store.prune.BATCH_PAUSE` between them, so a concurrent writer waits for at
most one batch. The first batch of a session re-checks that nobody branched since the plan
(the ``branch_rev`` and head are unchanged; otherwise the session is left for the next trim),
marks the pruned runs and folds the state; a trim interrupted after it is completed by the
next. Appends during a trim only add events after the cut, so they never conflict with it (the
trim changes no revision: a writer's copy of the session does not go stale).

**Policies per app** are stored in the database (``ma_meta``, key ``retention``, a JSON object
``{app_name: {"keep_last_events": N, "keep_days": D}}``), so every process that trims (a cron
job's ``multi-agent prune --policy``, a server) applies the same ones:
:func:`set_retention_policy` / :func:`retention_policies`. A call that names
``keep_last_events`` or ``keep_days`` overrides the stored policy.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, func, select
from sqlalchemy.engine import Connection

from ..errors import InvalidValueError
from . import memory_tables as mt
from . import schema as s
from .codec import dumps, loads
from .ids import check_id
from .prune import COUNT_KEYS, sum_counts
from .runs import PRUNED, PRUNED_BASE_ERROR, PRUNED_ERROR
from .state import split_delta

if TYPE_CHECKING:
    from .backend import Backend

__all__ = [
    "POLICY_KEY",
    "RetentionPolicy",
    "TrimReport",
    "retention_policies",
    "set_retention_policy",
    "trim_sessions",
]

POLICY_KEY = "retention"
"""The ``ma_meta`` key under which the per-app policies are stored."""

PAGE = 200
"""Sessions read per candidate query."""

_ss, _ev, _ru = s.sessions.c, s.events.c, s.runs.c


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    """How much of a session's history to keep (None: no limit of that kind).

    Attributes:
        keep_last_events: keep at most the last N events of each session.
        keep_days: keep no event older than D days.
    """

    keep_last_events: int | None = None
    keep_days: float | None = None

    def __post_init__(self) -> None:
        n, d = self.keep_last_events, self.keep_days
        if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
            raise InvalidValueError(f"keep_last_events must be a whole number of at least 1 "
                                    f"(got {n!r}).")
        if d is not None and (isinstance(d, bool) or not isinstance(d, int | float)
                              or not 0 < d < float("inf")):
            raise InvalidValueError(f"keep_days must be a positive number of days (got {d!r}).")

    @property
    def empty(self) -> bool:
        return self.keep_last_events is None and self.keep_days is None

    def to_dict(self) -> dict[str, Any]:
        return {"keep_last_events": self.keep_last_events, "keep_days": self.keep_days}


@dataclass(slots=True)
class TrimReport:
    """What :func:`trim_sessions` deleted (or, with ``dry_run``, would delete).

    Attributes:
        by_user: ``{(app_name, user_id): {"sessions": n, "events": n, "runs": n,
            "memory_entries": n}}``: sessions trimmed, events deleted, runs whose events
            were deleted (their rows stay, status ``pruned``), memory entries deleted.
        policies: ``{app_name: policy}`` applied.
        batches: write transactions used (0 for a dry run).
        skipped: sessions left alone because someone branched them during the trim.
        dry_run: nothing was deleted.
        space / pages_freed: as in :class:`~multi_agent.store.prune.PruneReport`.
    """

    by_user: dict[tuple[str, str], dict[str, int]] = field(default_factory=dict)
    policies: dict[str, RetentionPolicy] = field(default_factory=dict)
    batches: int = 0
    skipped: int = 0
    dry_run: bool = False
    space: str | None = None
    pages_freed: int = 0

    def add(self, app: str, user: str, counts: dict[str, int]) -> None:
        mine = self.by_user.setdefault((app, user), dict.fromkeys(COUNT_KEYS, 0))
        for key, n in counts.items():
            mine[key] += n

    def totals(self) -> dict[str, int]:
        """The counts summed over every app and user."""
        return sum_counts(self.by_user.values())

    def to_dict(self) -> dict[str, Any]:
        """The report as plain JSON values (``multi-agent prune --keep-last N --json``)."""
        return {
            "dry_run": self.dry_run, "batches": self.batches, "skipped": self.skipped,
            "space": self.space, "pages_freed": self.pages_freed, "totals": self.totals(),
            "policies": {a: p.to_dict() for a, p in sorted(self.policies.items())},
            "by_user": [{"app_name": a, "user_id": u, **c}
                        for (a, u), c in sorted(self.by_user.items())],
        }


# -- policies ----------------------------------------------------------------------------------


def _read_policies(conn: Connection) -> dict[str, RetentionPolicy]:
    raw = conn.execute(select(s.meta.c.value).where(s.meta.c.key == POLICY_KEY)).scalar()
    if raw is None:
        return {}
    return {app: RetentionPolicy(**spec) for app, spec in loads(raw).items()}


def _write_policy(conn: Connection, app_name: str, policy: RetentionPolicy | None) -> None:
    # Locks the row (PostgreSQL) so that two processes setting policies do not lose one.
    raw = conn.execute(
        select(s.meta.c.value).where(s.meta.c.key == POLICY_KEY).with_for_update()
    ).scalar()
    policies = {} if raw is None else loads(raw)
    if policy is None or policy.empty:
        policies.pop(app_name, None)
    else:
        policies[app_name] = policy.to_dict()
    value = dumps(dict(sorted(policies.items())))
    if raw is None:
        conn.execute(s.meta.insert().values(key=POLICY_KEY, value=value))
    else:
        conn.execute(s.meta.update().where(s.meta.c.key == POLICY_KEY).values(value=value))


async def set_retention_policy(
    service: Any, *, app_name: str, keep_last_events: int | None = None,
    keep_days: float | None = None,
) -> RetentionPolicy:
    """Stores the app's retention policy in the database (both None: removes it)."""
    check_id("app_name", app_name)
    policy = RetentionPolicy(keep_last_events, keep_days)
    await service.prepare()
    await service.backend.run(lambda conn: _write_policy(conn, app_name, policy), write=True)
    return policy


async def retention_policies(service: Any) -> dict[str, RetentionPolicy]:
    """The stored per-app policies."""
    await service.prepare()
    return await service.backend.run(_read_policies, write=False)


# -- planning one session ----------------------------------------------------------------------


@dataclass(slots=True)
class _Plan:
    app_name: str
    user_id: str
    session_id: str
    cut: int  # events with seq >= cut stay
    first: int  # the oldest stored seq
    keep_seq: int | None  # the compaction summary kept below the cut
    head_run_id: str | None
    branch_rev: int
    initial_state: str  # with the deleted head-path events' session deltas folded in
    base_run: str | None  # the newest pruned run on the head path
    pruned_runs: list[str]
    events: int  # events that go
    memory_entries: int

    @property
    def key(self) -> dict[str, str]:
        return {"app_name": self.app_name, "user_id": self.user_id,
                "session_id": self.session_id}


def _where(table: Any, app_name: str, user_id: str, session_id: str) -> Any:
    c = table.c
    return and_(c.app_name == app_name, c.user_id == user_id, c.session_id == session_id)


def _tool_ids(conn: Connection, where: Any, kind: str, above: int) -> set[str]:
    """The function-call (``tool_call``) or -response (``tool_result``) ids at seq >= above."""
    part = "function_call" if kind == "tool_call" else "function_response"
    out: set[str] = set()
    for (raw,) in conn.execute(select(_ev.event_data).where(
            where, _ev.message_type == kind, _ev.seq >= above)):
        for p in ((loads(raw).get("content") or {}).get("parts") or []):
            item = p.get(part)
            if item and item.get("id"):
                out.add(item["id"])
    return out


def _call_seq(conn: Connection, where: Any, call_ids: set[str], below: int) -> int | None:
    """The seq of the oldest event below ``below`` that makes one of ``call_ids``."""
    found = None
    for seq, raw in conn.execute(select(_ev.seq, _ev.event_data).where(
            where, _ev.message_type == "tool_call", _ev.seq < below).order_by(_ev.seq.desc())):
        parts = (loads(raw).get("content") or {}).get("parts") or []
        ids = {p["function_call"].get("id") for p in parts if p.get("function_call")}
        if ids & call_ids:
            found = seq
            call_ids = call_ids - ids
            if not call_ids:
                break
    return found


def plan_session(
    conn: Connection, row: Any, policy: RetentionPolicy, now: float
) -> _Plan | None:
    """Where this session's history is cut (see the module docstring); None: nothing goes."""
    app, user, sid = row.app_name, row.user_id, row.id
    where = _where(s.events, app, user, sid)
    first = conn.execute(select(func.min(_ev.seq)).where(where)).scalar()
    if first is None:
        return None
    cut = first
    if policy.keep_last_events is not None:
        nth = conn.execute(select(_ev.seq).where(where).order_by(_ev.seq.desc())
                           .offset(policy.keep_last_events - 1).limit(1)).scalar()
        if nth is not None:
            cut = max(cut, nth)
    if policy.keep_days is not None:
        since = now - policy.keep_days * 86400
        young = conn.execute(select(func.min(_ev.seq)).where(where, _ev.timestamp >= since)
                             ).scalar()
        cut = max(cut, row.last_seq + 1 if young is None else young)
    if cut <= first:
        return None
    runs = {r.run_id: r for r in conn.execute(
        select(_ru.run_id, _ru.parent_run_id, _ru.kind, _ru.first_seq, _ru.status, _ru.error)
        .where(_where(s.runs, app, user, sid)))}
    head = runs.get(row.head_run_id) if row.head_run_id else None
    rwhere = _where(s.runs, app, user, sid)
    while True:
        before = cut
        if head is not None:
            cut = min(cut, head.first_seq)
        # Every kept event's run starts at or after the cut.
        started = conn.execute(
            select(func.min(_ru.first_seq)).select_from(s.events.join(s.runs, and_(
                _ru.app_name == _ev.app_name, _ru.user_id == _ev.user_id,
                _ru.session_id == _ev.session_id, _ru.run_id == _ev.run_id)))
            .where(where, rwhere, _ev.seq >= cut)).scalar()
        if started is not None:
            cut = min(cut, started)
        # Every kept tool result keeps its call.
        orphans = _tool_ids(conn, where, "tool_result", cut) - _tool_ids(
            conn, where, "tool_call", cut)
        if orphans:
            call = _call_seq(conn, where, orphans, cut)
            if call is not None:
                cut = min(cut, call)
        if cut == before:
            break
    # Forward to the start of a run: each run keeps all its events or none.
    starts = sorted(r.first_seq for r in runs.values() if r.first_seq >= cut)
    if not starts:
        return None  # no run at or after the cut (bookkeeping events only): nothing to do
    cut = starts[0]
    if cut <= first:
        return None
    pruned = [r.run_id for r in runs.values() if r.first_seq < cut]
    # The head path's newest pruned run: the history kept continues from it.
    base = None
    cursor = head.parent_run_id if head is not None else None
    seen: set[str] = set()
    while cursor is not None and cursor in runs and cursor not in seen:
        seen.add(cursor)
        if runs[cursor].first_seq < cut:
            base = cursor
            break
        cursor = runs[cursor].parent_run_id
    # The newest compaction summary on the head path, kept when none is kept after the cut.
    keep_seq = None
    for seq, raw in conn.execute(select(_ev.seq, _ev.event_data).where(
            where, _ev.message_type == "system", _ev.on_path.is_(True))
            .order_by(_ev.seq.desc())):
        if (loads(raw).get("actions") or {}).get("compaction") is not None:
            keep_seq = seq if seq < cut else None  # after the cut: kept anyway
            break
    # Fold the session deltas of the head-path events that go into the initial state.
    state = loads(row.initial_state)
    for (raw,) in conn.execute(select(_ev.event_data).where(
            where, _ev.on_path.is_(True), _ev.seq < cut).order_by(_ev.seq)):
        actions = loads(raw).get("actions") or {}
        state.update(split_delta(actions.get("state_delta") or {}).session)
    going = and_(where, _ev.seq < cut) if keep_seq is None else and_(
        where, _ev.seq < cut, _ev.seq != keep_seq)
    events = int(conn.execute(select(func.count()).select_from(s.events).where(going))
                 .scalar() or 0)
    entries = mt.count_event_entries(conn, app_name=app, user_id=user, session_id=sid,
                                     lo=first, hi=cut, keep=keep_seq)
    newly = [r for r in pruned if runs[r].status != PRUNED]
    return _Plan(app, user, sid, cut, first, keep_seq, row.head_run_id, row.branch_rev,
                 dumps(state), base, newly, events, entries)


# -- the write transactions --------------------------------------------------------------------


def _start(conn: Connection, plan: _Plan) -> bool:
    """The first batch of a session: re-checks the plan, marks the pruned runs, folds the
    state. False: someone branched since the plan (nothing written)."""
    ss = _ss
    row = conn.execute(select(ss.head_run_id, ss.branch_rev).where(
        ss.app_name == plan.app_name, ss.user_id == plan.user_id, ss.id == plan.session_id)
        .with_for_update()).first()
    if row is None or row.head_run_id != plan.head_run_id or row.branch_rev != plan.branch_rev:
        return False
    rwhere = _where(s.runs, plan.app_name, plan.user_id, plan.session_id)
    conn.execute(s.runs.update().where(rwhere, _ru.first_seq < plan.cut)
                 .values(status=PRUNED, error=PRUNED_ERROR))
    if plan.base_run is not None:
        conn.execute(s.runs.update().where(rwhere, _ru.run_id == plan.base_run)
                     .values(error=PRUNED_BASE_ERROR))
    conn.execute(s.sessions.update().where(
        ss.app_name == plan.app_name, ss.user_id == plan.user_id, ss.id == plan.session_id)
        .values(initial_state=plan.initial_state))
    return True


def _delete(conn: Connection, plan: _Plan, lo: int, hi: int) -> tuple[int, int]:
    """Deletes the events in [lo, hi) (but the kept summary) and their memory entries."""
    entries = mt.forget_event_entries(conn, **plan.key, lo=lo, hi=hi, keep=plan.keep_seq)
    where = and_(_where(s.events, plan.app_name, plan.user_id, plan.session_id),
                 _ev.seq >= lo, _ev.seq < hi)
    if plan.keep_seq is not None:
        where = and_(where, _ev.seq != plan.keep_seq)
    n = max(conn.execute(s.events.delete().where(where)).rowcount, 0)
    if n:
        conn.execute(s.sessions.update().where(
            _ss.app_name == plan.app_name, _ss.user_id == plan.user_id,
            _ss.id == plan.session_id).values(event_count=_ss.event_count - n))
    return n, entries


def _candidates(conn: Connection, app_name: str | None, user_id: str | None,
                session_id: str | None, after: tuple[str, str, str] | None) -> list[Any]:
    q = select(_ss.app_name, _ss.user_id, _ss.id, _ss.last_seq, _ss.event_count,
               _ss.head_run_id, _ss.branch_rev, _ss.initial_state)
    if app_name is not None:
        q = q.where(_ss.app_name == app_name)
    if user_id is not None:
        q = q.where(_ss.user_id == user_id)
    if session_id is not None:
        q = q.where(_ss.id == session_id)
    if after is not None:
        a, u, i = after
        q = q.where((_ss.app_name > a) | and_(_ss.app_name == a, _ss.user_id > u)
                    | and_(_ss.app_name == a, _ss.user_id == u, _ss.id > i))
    q = q.order_by(_ss.app_name, _ss.user_id, _ss.id).limit(PAGE)
    return list(conn.execute(q).all())


class _Batcher:
    """Packs the sessions' deletions into write transactions of at most ``max_events`` events
    (several small sessions in one, a large one over several), with ``BATCH_PAUSE`` between
    two transactions."""

    def __init__(self, backend: Backend, report: TrimReport, max_events: int,
                 progress: Callable[[int], None] | None) -> None:
        self.backend, self.report, self.max_events = backend, report, max_events
        self.progress = progress
        self.pending: list[tuple[_Plan, int, int]] = []
        self.budget = 0
        self.deleted = 0
        self.skipped: set[int] = set()  # id() of plans whose first batch found a branch

    async def add(self, plan: _Plan) -> None:
        self.report.add(plan.app_name, plan.user_id, {
            "sessions": 1, "events": 0, "runs": len(plan.pruned_runs), "memory_entries": 0})
        lo = plan.first
        while lo < plan.cut:
            hi = min(plan.cut, lo + self.max_events)
            if self.pending and self.budget + (hi - lo) > self.max_events:
                await self.flush()
            self.pending.append((plan, lo, hi))
            self.budget += hi - lo
            lo = hi

    async def flush(self) -> None:
        if not self.pending:
            return
        chunks, self.pending, self.budget = self.pending, [], 0
        if self.report.batches:
            # Give the database to whoever waits for it (see prune.py's BATCH_PAUSE).
            from .prune import BATCH_PAUSE

            await asyncio.sleep(BATCH_PAUSE)
        skipped = self.skipped

        def work(conn: Connection) -> list[tuple[_Plan, int, int, bool]]:
            done = []
            new_skips: set[int] = set()
            for plan, lo, hi in chunks:
                if id(plan) in skipped or id(plan) in new_skips:
                    continue
                if lo == plan.first and not _start(conn, plan):
                    new_skips.add(id(plan))
                    done.append((plan, 0, 0, True))
                    continue
                n, m = _delete(conn, plan, lo, hi)
                done.append((plan, n, m, False))
            return done

        done = await self.backend.run(work, write=True)
        self.report.batches += 1
        for plan, n, m, skip in done:
            counts = self.report.by_user[(plan.app_name, plan.user_id)]
            if skip:
                skipped.add(id(plan))
                self.report.skipped += 1
                counts["sessions"] -= 1
                counts["runs"] -= len(plan.pruned_runs)
                continue
            counts["events"] += n
            counts["memory_entries"] += m
            self.deleted += n
        if self.progress is not None:
            self.progress(self.deleted)


async def trim_sessions(
    service: Any, *, keep_last_events: int | None = None, keep_days: float | None = None,
    app_name: str | None = None, user_id: str | None = None, session_id: str | None = None,
    dry_run: bool = False, vacuum: bool = False, max_events: int | None = None,
    now: float | None = None, progress: Callable[[int], None] | None = None,
) -> TrimReport:
    """Trims sessions' histories (see the module docstring).

    Args:
        service: the ``DatabaseSessionService``.
        keep_last_events: keep at most the last N events of each session.
        keep_days: keep no event older than D days.
            Neither given: each app's stored policy (:func:`set_retention_policy`).
        app_name / user_id / session_id: only these sessions (default: every app's).
        dry_run: only count, per app and user.
        vacuum: as for ``prune_sessions``: rewrite a SQLite file without incremental
            auto-vacuum afterwards.
        max_events: events deleted per transaction (default ``prune.MAX_EVENTS``).
        now: the current time (epoch seconds; default: now), for ``keep_days``.
        progress: called with the number of events deleted so far after each batch.

    Raises:
        InvalidValueError: a bad limit, or no limit given and no policy stored.
    """
    from .prune import MAX_EVENTS

    for kind, value in (("app_name", app_name), ("user_id", user_id),
                        ("session_id", session_id)):
        if value is not None:
            check_id(kind, value)
    max_events = MAX_EVENTS if max_events is None else max_events
    if max_events < 1:
        raise InvalidValueError("max_events must be at least 1.")
    given = RetentionPolicy(keep_last_events, keep_days)
    await service.prepare()
    backend: Backend = service.backend
    if given.empty:
        policies = await backend.run(_read_policies, write=False)
        if app_name is not None:
            policies = {a: p for a, p in policies.items() if a == app_name}
        if not policies:
            where = f" for app {app_name!r}" if app_name else ""
            raise InvalidValueError(
                f"No retention policy is stored{where}: give keep_last_events or keep_days "
                "(multi-agent prune --keep-last N / --keep-days D), or store one first "
                "(multi-agent prune --keep-last N --app APP --save-policy).")
    else:
        policies = {}
    now = time.time() if now is None else now
    report = TrimReport(dry_run=dry_run)
    apps = [app_name] if given.empty is False else sorted(policies)
    batcher = _Batcher(backend, report, max_events, progress)
    for app in apps:
        policy = given if not given.empty else policies[app]  # type: ignore[index]
        if app is not None:
            report.policies[app] = policy
        after: tuple[str, str, str] | None = None
        while True:
            rows = await backend.run(
                lambda conn, a=app, k=after: _candidates(conn, a, user_id, session_id, k),
                write=False)
            if not rows:
                break
            after = (rows[-1].app_name, rows[-1].user_id, rows[-1].id)
            for row in rows:
                if (policy.keep_days is None and policy.keep_last_events is not None
                        and row.event_count <= policy.keep_last_events):
                    continue  # nothing to cut: no read
                plan = await backend.run(
                    lambda conn, r=row, p=policy: plan_session(conn, r, p, now), write=False)
                if plan is None:
                    continue
                if app is None:
                    report.policies.setdefault(plan.app_name, policy)
                if dry_run:
                    report.add(plan.app_name, plan.user_id, {
                        "sessions": 1, "events": plan.events, "runs": len(plan.pruned_runs),
                        "memory_entries": plan.memory_entries})
                else:
                    await batcher.add(plan)
    await batcher.flush()
    if not dry_run and (report.by_user or vacuum):
        report.space, report.pages_freed = await backend.db.reclaim_space(
            backend, vacuum=vacuum)
    return report
