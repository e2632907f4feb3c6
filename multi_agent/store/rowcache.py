"""PostgreSQL appends in one round trip: the rows this process wrote last, and a
compare-and-swap statement that stores an append only if they are still as written.

An append normally locks the session row (and the user's, the app's), merges the event into
what it read and writes: ``BEGIN``, a locking ``SELECT``, the write, ``COMMIT``: four round trips
on PostgreSQL, most of an append's cost there. But the process that made the last append to a
session knows what that row holds afterwards: it wrote it. This module keeps those images
(``RowCache``, per service, bounded) and plans the next append on them with the very same steps
as a locked one (``ops._append_event`` with ``cached=``, no database access), then sends its
writes as one statement outside any transaction (``cas_statement``, ``send_plan``)::

    WITH cas_session AS (UPDATE ma_sessions SET ... WHERE <key> AND <every column the append
                         read> = <its cached value> RETURNING 1),
         inserted_event AS (INSERT INTO ma_events ...),
         cas_user AS (UPDATE ma_user_states SET ... WHERE <key> AND <state, revision, key_revs>
                      = <cached> AND (SELECT count(*) FROM cas_session) = 1 RETURNING 1),
         ... (the app's row likewise, a new run's row, the human messages' target)
    SELECT 1 / ((SELECT count(*) FROM cas_session) * (SELECT count(*) FROM cas_user) ...)

One statement is one transaction: it stores all of it or nothing. When a row is no longer as
cached (another process or another session of the user wrote it; a row that another writer
changed without bumping its revision counts too, as every column the append read is compared,
not the revision alone), its ``UPDATE`` matches nothing, the division fails, and nothing is
stored; a stored event id fails the unique index the same way. The append then runs the usual
way, locked, and the images are refreshed from it. So the outcome is always the one the locked
append would have had at the moment the statement ran: the rows it compared were locked by its
own ``UPDATE`` while it ran. The session row is locked first, then the user's, then the app's
(each ``UPDATE`` waits for the one before through its ``count(*)``), the LOCK ORDER of
``groupcommit.py``.

Used for a lone append on PostgreSQL, for a copy the store handed out and that is current,
when the store is not encrypted (sealed values differ at every write: they could not be
compared). Anything else the statement does not carry (a delegation's sub-run, a scope row
to create, a scope delta that changes nothing, which writes no row to compare) goes the usual
way too.

A batch (appends that share one transaction, ``groupcommit.py``) needs no cache: the statement
that locks its rows also reads them (``PostgresDialect.batch_lock(read=True)``), and each append
runs on those rows as the batch's earlier appends left them (``batch_images``,
``keep_batch_images``), locked, instead of reading them again.
"""

from __future__ import annotations

import functools
from collections import OrderedDict
from dataclasses import dataclass, fields
from typing import Any

from sqlalchemy import Text, bindparam, func, literal_column, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import Connection

from . import schema as s
from . import sql
from .backend import Backend
from .dialects.base import sqlstate
from .groupcommit import Declined, NoRows, RowsRead, row_keys
from .ops import AppendRequest, AppendResult, Deferred, RowImages, SessionImage, _append_event
from .scopes import LockedRow, Marker, parse_marker
from .sealing import Sealed

__all__ = ["CasFailed", "Plan", "RowCache", "batch_images", "cas_statement", "keep_batch_images",
           "plan_append", "send_plan"]

SESSIONS_KEPT = 10_000  # images of the sessions appended to last
SCOPES_KEPT = 10_000  # user rows; app rows share the bound
# A row whose state is larger is not kept (its appends go the usual way): the cache stays
# within ~SESSIONS_KEPT x this at worst, and a large state is not sent twice a statement.
IMAGE_MAX_CHARS = 16_384


class RowCache:
    """The rows this process's appends left, newest kept (``SESSIONS_KEPT``).

    Only an optimisation: an image that is behind storage makes the next compare-and-swap fail
    and that append run the usual way, never a wrong write.
    """

    def __init__(self, sessions: int = SESSIONS_KEPT, scopes: int = SCOPES_KEPT) -> None:
        self._sessions: OrderedDict[tuple[str, str, str], Any] = OrderedDict()
        self._users: OrderedDict[tuple[str, str], LockedRow] = OrderedDict()
        self._apps: OrderedDict[str, LockedRow] = OrderedDict()
        self._bounds = (sessions, scopes)

    def images(self, app_name: str, user_id: str, session_id: str, *, user: bool,
               app: bool) -> RowImages | None:
        """The cached rows an append to this session needs, or None when one is missing."""
        session = self._sessions.get((app_name, user_id, session_id))
        if session is None:
            return None
        user_row = self._users.get((app_name, user_id)) if user else None
        app_row = self._apps.get(app_name) if app else None
        if (user and user_row is None) or (app and app_row is None):
            return None
        return RowImages(session, user_row, app_row)

    def put(self, app_name: str, user_id: str, session_id: str, images: RowImages) -> None:
        """Keeps what a committed append left. A scope row's image older than the one kept
        (two sessions of a user committing in one order, returning in the other) is not kept."""
        sessions, scopes = self._bounds
        key = (app_name, user_id, session_id)
        if _small(images.session.state, images.session.key_revs, images.session.agent_paths):
            _keep(self._sessions, key, images.session, sessions)
        else:
            self._sessions.pop(key, None)
        if images.user is not None:
            _keep_newer(self._users, (app_name, user_id), images.user, scopes)
        if images.app is not None:
            _keep_newer(self._apps, app_name, images.app, scopes)

    def drop(self, app_name: str, user_id: str, session_id: str) -> None:
        """Forgets the rows of an append that found them changed, or failed."""
        self._sessions.pop((app_name, user_id, session_id), None)
        self._users.pop((app_name, user_id), None)
        self._apps.pop(app_name, None)

    def __len__(self) -> int:
        return len(self._sessions)


def _keep(cache: OrderedDict[Any, Any], key: Any, value: Any, bound: int) -> None:
    cache[key] = value
    cache.move_to_end(key)
    while len(cache) > bound:
        cache.popitem(last=False)


def _keep_newer(cache: OrderedDict[Any, LockedRow], key: Any, row: LockedRow,
                bound: int) -> None:
    kept = cache.get(key)
    if kept is not None and kept.revision > row.revision:
        return
    if not _small(row.state, row.key_revs):
        cache.pop(key, None)
        return
    _keep(cache, key, row, bound)


def _small(*texts: str) -> bool:
    return sum(len(t) for t in texts) <= IMAGE_MAX_CHARS


def batch_images(rows: RowsRead, req: AppendRequest) -> RowImages:
    """The rows this append reads, from what its PostgreSQL batch locked and read
    (``groupcommit.RowsRead``), as the batch's earlier appends left them.

    Raises:
        NoRows: one of them was not read (it does not exist yet, or an earlier append of the
            batch ran the usual way): the append runs the usual way.
    """
    session_key, user_key, app_key = row_keys(req.app_name, req.user_id, req.session_id)
    session = rows.get(session_key)
    if session is None:
        raise NoRows
    if isinstance(session, dict):
        session = SessionImage(**session)
    found: dict[str, LockedRow | None] = {"user": None, "app": None}
    for scope, key in (("user", user_key), ("app", app_key)):
        if not getattr(req.delta, scope):
            continue
        row = rows.get(key)
        if row is None:
            raise NoRows
        found[scope] = row if isinstance(row, LockedRow) else LockedRow(**row)
    return RowImages(session, found["user"], found["app"])


def keep_batch_images(rows: RowsRead, req: AppendRequest, images: RowImages | None) -> None:
    """Records in ``rows`` what the append left (None, a duplicate: its rows are dropped)."""
    keys = row_keys(req.app_name, req.user_id, req.session_id)
    if images is None:
        for key in keys:
            rows.pop(key, None)
        return
    for key, image in zip(keys, (images.session, images.user, images.app), strict=True):
        if image is not None:
            rows[key] = image


@dataclass(slots=True)
class Plan:
    """An append planned on cached rows: its statement's shape, parameters and result."""

    shape: tuple[bool, bool, bool, bool]  # user row, app row, run row, backfill
    params: dict[str, Any]
    result: AppendResult
    keys: tuple[tuple[str, ...], ...]  # the rows it writes (``groupcommit.row_keys``)

    @property
    def statement(self) -> sql.Prepared:
        return cas_statement(self.shape)


class CasFailed(Declined):
    """The rows were not as cached (or the event id is stored): nothing was written."""


def plan_append(req: AppendRequest, backend: Backend, cache: RowCache) -> Plan | None:
    """The append planned on the cached rows, or None when it must run the usual way."""
    copy = parse_marker(req.marker)
    if copy is None:
        return None
    images = cache.images(req.app_name, req.user_id, req.session_id,
                          user=bool(req.delta.user), app=bool(req.delta.app))
    if images is None:
        return None
    return _plan(req, backend, images, copy)


def plan_on_rows(req: AppendRequest, backend: Backend, rows: RowsRead) -> Plan:
    """The append planned on the rows its PostgreSQL batch locked and read, as the batch's
    earlier appends left them (``batch_images``); ``rows`` then holds what it will leave.

    Its compare-and-swap statement cannot fail on rows this transaction holds locked and has
    just read, so the batch sends the plans of many appends in one exchange
    (``groupcommit.AsyncWriter``); a statement that fails anyway (a duplicate event id) fails
    that exchange, and the batch runs again the usual way.

    Raises:
        NoRows: not plannable here (a row not read, a behind copy, a copy the store did not
            hand out, a write the statement does not carry): nothing was changed; the append
            runs the usual way, which decides (and raises what it must).
    """
    copy = parse_marker(req.marker)
    if copy is None:
        raise NoRows
    plan = _plan(req, backend, batch_images(rows, req), copy)
    if plan is None:
        raise NoRows
    keep_batch_images(rows, req, plan.result.images)
    return plan


def _plan(req: AppendRequest, backend: Backend, images: RowImages, copy: Marker) -> Plan | None:
    """The append planned on these rows (``copy``: the caller's marker, parsed), or None when
    it must run the usual way."""
    row = images.session
    if copy.incarnation != row.incarnation or copy.revision != row.revision:
        return None  # a behind copy (or the image is): the usual way decides
    deferred = Deferred()
    try:
        result = _append_event(None, backend, req, cached=images, plan=deferred)
    except Exception:  # noqa: BLE001
        # NotPlannable; or what this append raises on these rows (a key changed since the
        # copy read it...): the usual way decides, on the rows as stored.
        return None
    scopes = {u.scope: u.values for u in deferred.updates}
    if (req.delta.user and "user" not in scopes) or (req.delta.app and "app" not in scopes):
        return None  # a scope delta that changes nothing: no row UPDATE to compare with
    params: dict[str, Any] = {
        "app_name": req.app_name, "user_id": req.user_id, "session_id": req.session_id,
        **deferred.event_row, **deferred.session_row,
    }
    for old_name, name in _SESSION_COMPARED_AS:
        params[old_name] = getattr(row, name)
    for scope, old in (("user", images.user), ("app", images.app)):
        if scope in scopes:
            assert old is not None
            params.update({f"{scope}_{k}": v for k, v in scopes[scope].items()})
            params.update({f"{scope}_old_state": old.state,
                           f"{scope}_old_revision": old.revision,
                           f"{scope}_old_key_revs": old.key_revs})
    if deferred.run is not None:
        params.update({f"run_{k}": v for k, v in deferred.run.items()})
    if deferred.backfill is not None:
        params.update(backfill_target=deferred.backfill["target"],
                      backfill_since=deferred.backfill["since_seq"])
    shape = ("user" in scopes, "app" in scopes, deferred.run is not None,
             deferred.backfill is not None)
    session_key, user_key, app_key = row_keys(req.app_name, req.user_id, req.session_id)
    keys = (session_key, *((user_key,) if shape[0] else ()), *((app_key,) if shape[1] else ()))
    return Plan(shape, params, result, keys)


async def send_plan(conn: Connection, driver: Any, plan: Plan, cache: RowCache) -> AppendResult:
    """Sends the plan's statement on the driver's connection, outside any transaction: it is
    its own (``sql.Prepared.send``; ``Backend._run_on_driver``).

    Raises:
        CasFailed: the rows were not as cached, or the event id is stored; nothing written.
            The images are dropped (the append, run the usual way, keeps fresh ones).
    """
    try:
        await cas_statement(plan.shape).send(conn, driver, plan.params)
    except Exception as exc:
        if sqlstate(exc) in _NOT_AS_CACHED:
            p = plan.params
            cache.drop(p["app_name"], p["user_id"], p["session_id"])
            raise CasFailed(sqlstate(exc)) from exc
        raise
    return plan.result


# 22012: the division by the number of rows matched (a row was not as cached);
# 23505: the event's id (or its seq) is stored already.
_NOT_AS_CACHED = frozenset({"22012", "23505"})

# The session row's columns an append reads (ops.SessionImage's fields), all compared.
_SESSION_COMPARED = tuple(f.name for f in fields(SessionImage) if f.name != "duplicate_seq")
_SESSION_COMPARED_AS = tuple((f"old_{name}", name) for name in _SESSION_COMPARED)  # parameters


@functools.cache
def cas_statement(shape: tuple[bool, bool, bool, bool]) -> sql.Prepared:
    """The compare-and-swap statement for an append of this shape (built once)."""
    return _build(*shape)


def _build(user: bool, app: bool, run: bool, backfill: bool) -> sql.Prepared:
    ss, ev = s.sessions.c, s.events.c
    compared = [
        ss[name].is_not_distinct_from(bindparam(f"old_{name}")) if ss[name].nullable
        else ss[name] == bindparam(f"old_{name}", type_=_plain(ss[name].type))
        for name in _SESSION_COMPARED
    ]
    session = (
        update(s.sessions)
        .where(sql.session_where(s.sessions, "id"), *compared)
        .values(**sql.session_after_append())
        .returning(literal_column("1"))
        .cte("cas_session")
    )
    ctes: list[Any] = [
        session,
        s.events.insert().values({n: bindparam(n) for n in sql.EVENT_COLUMNS})
        .cte("inserted_event"),
    ]
    counted = [session]
    previous = session
    for scope, present in (("user", user), ("app", app)):
        if not present:
            continue
        table = s.user_states if scope == "user" else s.app_states
        where = sql.USER_WHERE if scope == "user" else sql.APP_WHERE
        c = table.c
        cte = (
            update(table)
            .where(
                where,
                c.state == bindparam(f"{scope}_old_state", type_=_plain(c.state.type)),
                c.revision == bindparam(f"{scope}_old_revision"),
                c.key_revs == bindparam(f"{scope}_old_key_revs"),
                # waits for the row before it: rows are locked in LOCK ORDER
                select(func.count()).select_from(previous).scalar_subquery() == 1,
            )
            .values(**sql.scope_values(scope))
            .returning(literal_column("1"))
            .cte(f"cas_{scope}")
        )
        ctes.append(cte)
        counted.append(cte)
        previous = cte
    if run:
        ctes.append(
            pg_insert(s.runs)
            .values({name: bindparam(name if name in _KEY else f"run_{name}")
                     for name in sql.run_row_values()})
            .on_conflict_do_nothing()
            .cte("inserted_run")
        )
    if backfill:
        ctes.append(
            update(s.events)
            .where(
                sql.session_where(s.events), ev.seq >= bindparam("backfill_since"),
                ev.message_type == "human", ev.target.is_(None),
                select(func.count()).select_from(session).scalar_subquery() == 1,
            )
            .values(target=bindparam("backfill_target"))
            .cte("backfilled")
        )
    product = " * ".join(f"(SELECT count(*) FROM {cte.name})" for cte in counted)
    stmt = select(literal_column(f"1 / ({product})").label("ok")).add_cte(*ctes)
    name = "cas_append" + "".join(
        f"+{part}" for part, on in (("user", user), ("app", app), ("run", run),
                                    ("backfill", backfill)) if on)
    return sql.Prepared(name, stmt)


_KEY = frozenset({"app_name", "user_id", "session_id"})


def _plain(column_type: Any) -> Any:
    """A comparison's bind type: the stored text as it is (a ``Sealed`` column's value is
    compared unsealed: only unencrypted stores use this module)."""
    return Text() if isinstance(column_type, Sealed) else column_type
