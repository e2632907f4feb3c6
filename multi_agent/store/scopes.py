"""Concurrency control at every scope: revision markers and per-key conflict checks.

A session copy handed out by the store carries a marker (``Session._storage_update_marker``)::

    "<incarnation>:<revision>/<last_seq>/<user revision>/<app revision>"

* ``incarnation``: a random token chosen when the session was created. A copy of a deleted
  session never matches the session re-created under its id (no ABA).
* ``revision`` / ``last_seq``: the session row's revision and newest event when the copy was
  loaded (or last appended through).
* ``user revision`` / ``app revision``: the revisions of the user's and the app's state rows
  that the copy's ``user:`` and ``app:`` values are current with.

Each state row (session, user, app) keeps ``key_revs``: for every key, the row revision that
last wrote it. An append that writes a key with a plain value is a conflict when that key was
written after the copy's revision for its scope: the value may have been computed from what
the copy read, which is no longer what is stored. A key written through an atomic update
(``updates.py``) never conflicts: its operations are applied to the stored value.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.engine import Connection

from . import sql
from .backend import Backend
from .codec import dumps, loads
from .updates import Op, apply_ops

__all__ = [
    "Marker",
    "Scopes",
    "make_marker",
    "merge_keys",
    "parse_marker",
    "read_scopes",
    "write_scope",
]


@dataclass(slots=True, frozen=True)
class Marker:
    """What a session copy knows about storage (see the module docstring)."""

    incarnation: str
    revision: int
    last_seq: int
    user_rev: int
    app_rev: int


def make_marker(incarnation: str, revision: int, last_seq: int, user_rev: int,
                app_rev: int) -> str:
    return f"{incarnation}:{revision}/{last_seq}/{user_rev}/{app_rev}"


def parse_marker(marker: str | None) -> Marker | None:
    """The marker's parts; None for a marker this store did not write (or none at all)."""
    if not marker or ":" not in marker:
        return None
    incarnation, _, rest = marker.rpartition(":")
    parts = rest.split("/")
    if len(parts) != 4:
        return None
    try:
        rev, seq, user_rev, app_rev = (int(p) for p in parts)
    except ValueError:
        return None
    return Marker(incarnation, rev, seq, user_rev, app_rev)


@dataclass(slots=True)
class Scopes:
    """The app's and the user's state as stored, with their row revisions."""

    app: dict[str, Any] = field(default_factory=dict)
    app_rev: int = 0
    user: dict[str, Any] = field(default_factory=dict)
    user_rev: int = 0


def read_scopes(conn: Connection, app_name: str, user_id: str | None) -> Scopes:
    """The app and user state rows (empty, revision 0, when they do not exist yet)."""
    out = Scopes()
    out.app, out.app_rev = _read_row(conn, app_name, None)
    if user_id is not None:
        out.user, out.user_rev = _read_row(conn, app_name, user_id)
    return out


def _read_row(conn: Connection, app_name: str, user_id: str | None) -> tuple[dict[str, Any], int]:
    """The user's (``user_id`` given) or the app's state and revision, unlocked; ({}, 0) when
    the row does not exist yet."""
    row = (
        sql.APP_STATE(conn, app_name=app_name) if user_id is None
        else sql.USER_STATE(conn, app_name=app_name, user_id=user_id)
    ).first()
    return ({}, 0) if row is None else (loads(row.state), row.revision)


def merge_keys(
    state: dict[str, Any], key_revs: dict[str, int], delta: Mapping[str, Any],
    ops: Mapping[str, list[Op]], *, seen_rev: int | None, new_rev: int,
) -> tuple[list[str], dict[str, Any]]:
    """Applies ``delta`` to ``state`` in place (atomic ``ops`` on the stored values).

    Args:
        seen_rev: the row revision the caller's copy is current with; ``None`` skips the
            conflict check (the copy is known to be current, or its age is unknown).
        new_rev: the revision this write gives the row.

    Returns:
        (keys in conflict, {key: stored value} for keys whose operations gave a value other
        than the one in the delta). Nothing is changed when there is a conflict.
    """
    if seen_rev is not None:
        # Even a value equal to the stored one conflicts: two copies that read 0 and both
        # write 1 are two increments, of which storing one would lose the other.
        conflicts = [k for k in delta if k not in ops and key_revs.get(k, 0) > seen_rev]
        if conflicts:
            return conflicts, {}
    resolved: dict[str, Any] = {}
    for key, value in delta.items():
        key_ops = ops.get(key)
        if key_ops is not None:
            stored = apply_ops(state.get(key), key_ops)
            if stored != value:
                resolved[key] = stored
            value = stored
        if _same(state, key, value):
            continue  # unchanged: what other copies read of it is still true
        state[key] = value
        key_revs[key] = new_rev
    return [], resolved


def _same(state: dict[str, Any], key: str, value: Any) -> bool:
    """Whether storing ``value`` under ``key`` would leave ``state`` as it is."""
    return key in state and state[key] == value and type(state[key]) is type(value)


@dataclass(slots=True)
class ScopeWrite:
    """What writing one app or user state row did."""

    state: dict[str, Any]
    revision: int
    conflicts: list[str]
    resolved: dict[str, Any]


@dataclass(slots=True)
class LockedRow:
    """A state row already locked by the caller's statement (the append's first one)."""

    state: str
    revision: int
    key_revs: str


@dataclass(slots=True)
class ScopeUpdate:
    """A state row's new values, written later in the transaction by the caller (the append
    sends them with its event insert: ``Dialect.write_append``)."""

    scope: str  # "user" or "app"
    values: dict[str, Any]  # state, now, revision, key_revs


def write_scope(
    conn: Connection | None, backend: Backend, *, app_name: str, user_id: str | None,
    delta: Mapping[str, Any], ops: Mapping[str, list[Op]], seen_rev: int | None, now: float,
    locked: LockedRow | None = None, defer: list[ScopeUpdate] | None = None,
) -> ScopeWrite:
    """Merges a delta into the user's row (``user_id`` given) or the app's, under a row lock.

    Nothing is written when a key is in conflict (``ScopeWrite.conflicts``).

    Args:
        locked: the row, already read and locked by the caller (not read again).
        defer: where to put the row's UPDATE instead of running it (the caller runs it
            before its transaction ends).
    """
    if not delta:
        # Nothing to write (a session created without app:/user: keys): read what is
        # committed, lock nothing. (A lock here made every session creation of an app wait
        # for the app row behind every other writer's transaction, and, taken app row first,
        # deadlocked against appends that lock the user row first.)
        assert conn is not None
        state, revision = _read_row(conn, app_name, user_id)
        return ScopeWrite(state, revision, [], {})
    # The row is locked first and made only when missing (the usual case costs one statement,
    # one round trip on PostgreSQL, not two); a row another writer makes meanwhile is waited
    # for by the INSERT ... ON CONFLICT DO NOTHING, then locked.
    row: Any = locked
    if row is None:
        assert conn is not None  # (rows given by a planned append: rowcache.plan)
    if row is None and user_id is None:
        row = sql.APP_STATE_FOR_UPDATE(conn, app_name=app_name).first()
        if row is None:
            backend.ensure_app_row(conn, app_name=app_name, now=now)
            row = sql.APP_STATE_FOR_UPDATE(conn, app_name=app_name).first()
    elif row is None:
        row = sql.USER_STATE_FOR_UPDATE(conn, app_name=app_name, user_id=user_id).first()
        if row is None:
            backend.ensure_user_row(conn, app_name=app_name, user_id=user_id, now=now)
            row = sql.USER_STATE_FOR_UPDATE(conn, app_name=app_name, user_id=user_id).first()
    assert row is not None
    state = loads(row.state)
    key_revs = loads(row.key_revs)
    new_rev = row.revision + 1
    conflicts, resolved = merge_keys(
        state, key_revs, delta, ops, seen_rev=seen_rev, new_rev=new_rev
    )
    if conflicts:
        return ScopeWrite(state, row.revision, conflicts, {})
    if new_rev not in key_revs.values():  # nothing changed: no write, no new revision
        return ScopeWrite(state, row.revision, [], resolved)
    values = {"state": dumps(state), "now": now, "revision": new_rev,
              "key_revs": dumps(key_revs)}
    if defer is not None:
        defer.append(ScopeUpdate("app" if user_id is None else "user", values))
    elif user_id is None:
        sql.APP_STATE_UPDATE(conn, app_name=app_name, **values)
    else:
        sql.USER_STATE_UPDATE(conn, app_name=app_name, user_id=user_id, **values)
    return ScopeWrite(state, new_rev, [], resolved)
