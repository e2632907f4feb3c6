"""Paged session lists: newest first, per user or per app, with an opaque keyset token.

ADK's ``list_sessions`` returns every session of a user at once (kept unchanged, ADK's
contract). :meth:`PagesMixin.list_sessions_page` returns one page of them, newest update first,
and a ``next_page_token`` for the next page:

* **keyset, not offset**: the token names the last session returned (its update time, user id
  and id), and the next page starts strictly after it in the order ``update_time DESC, user_id
  DESC, id DESC``. Sessions created, appended to or deleted between two pages do not shift the
  others: no session is skipped unless it was updated in between (it moved ahead of the
  token: the first page shows it again), and none is returned twice unless it moved.
* **the same cost at any size**: the order is an index (schema 5, ``schema.py``):
  ``ix_ma_sessions_user_time`` (app, user, update time, id) for a user's pages,
  ``ix_ma_sessions_app_time`` (app, update time, user, id) for an app's. A page reads
  ``page_size + 1`` index entries from the token on, at 10,000 sessions as at 1,000,000.
* **opaque and checked**: the token is versioned, URL-safe base64 JSON with a checksum, bound
  to the listing it came from (app, and user or whole app). Garbage, a hand-edited token or
  one from another listing raises :class:`~multi_agent.errors.InvalidValueError` saying so;
  it never silently restarts. The checksum is not a secret: a token only says where to resume
  a listing its holder may read anyway.

Sessions come without events (as ADK's ``list_sessions``), with the merged ``app:``/``user:``/
session state and a marker, so an ``append_event`` on one works as on a ``get_session`` copy.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from google.adk.sessions.base_session_service import ListSessionsResponse
from sqlalchemy import literal, select, tuple_
from sqlalchemy.engine import Connection

from ..errors import InvalidValueError
from . import schema as s
from .codec import loads, make_session
from .ids import check_id
from .scopes import make_marker, read_scopes
from .state import merge_scopes
from .tracing import count, traced

if TYPE_CHECKING:
    from google.adk.sessions.session import Session

__all__ = ["DEFAULT_PAGE_SIZE", "MAX_PAGE_SIZE", "PagesMixin", "SessionPage"]

T = TypeVar("T")

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000
"""The largest page: a bigger one is one long transaction; follow the token instead."""

TOKEN_VERSION = 1


class SessionPage(ListSessionsResponse):
    """One page of sessions (``sessions``, newest first) and the token of the next page
    (``None`` on the last page). A ``ListSessionsResponse``, so code written for ADK's
    ``list_sessions`` result reads it unchanged."""

    next_page_token: str | None = None


@dataclass(slots=True, frozen=True)
class _Cursor:
    update_time: float
    user_id: str
    id: str


def _checksum(body: bytes) -> str:
    return hashlib.sha256(b"multi-agent session page\0" + body).hexdigest()[:16]


def encode_token(app_name: str, user_id: str | None, after: _Cursor) -> str:
    """The opaque token that resumes the listing of ``app_name`` (and ``user_id``, or the
    whole app when None) after ``after``."""
    body = json.dumps(
        {"v": TOKEN_VERSION, "a": app_name, "u": user_id,
         "k": [after.update_time, after.user_id, after.id]},
        separators=(",", ":"), ensure_ascii=False, allow_nan=False,
    ).encode()
    raw = body + b"." + _checksum(body).encode()
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def decode_token(token: str, app_name: str, user_id: str | None) -> _Cursor:
    """The position a token from :func:`encode_token` names, for this listing.

    Raises:
        InvalidValueError: not such a token, changed by hand, another version's, or one
            handed out for another listing (another app, user, or user vs whole app).
    """
    if not isinstance(token, str):
        raise InvalidValueError(
            f"page_token must be the string a page's next_page_token gave, not "
            f"{type(token).__name__}.")
    bad = (f"page_token {token[:40]!r}{'...' if len(token) > 40 else ''} is not a token this "
           "listing handed out (damaged or edited). Start again without a page token.")
    if not isinstance(token, str) or not token or len(token) > 4 * 1024:
        raise InvalidValueError(bad)
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        body, dot, check = raw.rpartition(b".")
        if not dot or check.decode("ascii") != _checksum(body):
            raise ValueError("checksum")
        value = json.loads(body)
        version = value["v"]
        if version != TOKEN_VERSION:
            raise InvalidValueError(
                f"page_token is of version {version!r}; this multi-agent reads version "
                f"{TOKEN_VERSION}. Start again without a page token."
            )
        when, user, sid = value["k"]
        if (isinstance(when, bool) or not isinstance(when, int | float)
                or not isinstance(user, str) or not isinstance(sid, str)):
            raise ValueError("key")
        scope = (value["a"], value["u"])
    except InvalidValueError:
        raise
    except (ValueError, KeyError, TypeError, UnicodeError, binascii.Error, RecursionError):
        raise InvalidValueError(bad) from None
    if scope != (app_name, user_id):
        whose = "the whole app" if scope[1] is None else f"user {scope[1]!r}"
        raise InvalidValueError(
            f"page_token belongs to the listing of {whose} in app {scope[0]!r}, not to this "
            "one. Start again without a page token."
        )
    return _Cursor(float(when), user, sid)


def check_page_size(page_size: Any) -> int:
    """``page_size`` as an int from 1 to :data:`MAX_PAGE_SIZE`.

    Raises:
        InvalidValueError: anything else.
    """
    if isinstance(page_size, bool) or not isinstance(page_size, int) or \
            not 1 <= page_size <= MAX_PAGE_SIZE:
        raise InvalidValueError(
            f"page_size must be a whole number from 1 to {MAX_PAGE_SIZE}, got {page_size!r}."
        )
    return page_size


# -- the query ---------------------------------------------------------------------------------

_ss = s.sessions.c


def _page_statement(app_name: str, user_id: str | None, after: _Cursor | None,
                    limit: int) -> Any:
    """Newest first from ``after`` on: the index's order read backwards, ``limit`` rows.

    The keyset condition is a row-value comparison, which both databases turn into the
    exact start of a range of the index (``tests/store/test_pages.py`` checks the plans).
    """
    cols = (_ss.user_id, _ss.id, _ss.state, _ss.update_time, _ss.revision, _ss.last_seq,
            _ss.incarnation)
    stmt = select(*cols).where(_ss.app_name == app_name)
    if user_id is not None:
        stmt = stmt.where(_ss.user_id == user_id)
        key = (_ss.update_time, _ss.id)
        start = None if after is None else (after.update_time, after.id)
    else:
        key = (_ss.update_time, _ss.user_id, _ss.id)
        start = None if after is None else (after.update_time, after.user_id, after.id)
    if start is not None:
        stmt = stmt.where(tuple_(*key) < tuple_(*(literal(v) for v in start)))
    order = tuple(c.desc() for c in key)
    return stmt.order_by(*order).limit(limit)


@dataclass(slots=True)
class _PageRows:
    rows: list[Any]
    app_state: dict[str, Any]
    app_rev: int
    users: dict[str, tuple[dict[str, Any], int]]


def read_page(conn: Connection, *, app_name: str, user_id: str | None,
              after: _Cursor | None, page_size: int) -> _PageRows:
    """One page's session rows (``page_size + 1`` at most: one more says there is a next
    page), the app state, and the state of the users on the page; one transaction."""
    rows = list(conn.execute(_page_statement(app_name, user_id, after, page_size + 1)))
    scopes = read_scopes(conn, app_name, None)
    users: dict[str, tuple[dict[str, Any], int]] = {}
    names = sorted({r.user_id for r in rows[:page_size]})
    if names:
        u = s.user_states.c
        for r in conn.execute(select(u.user_id, u.state, u.revision).where(
                u.app_name == app_name, u.user_id.in_(names))):
            users[r.user_id] = (loads(r.state), r.revision)
    return _PageRows(rows, scopes.app, scopes.app_rev, users)


class PagesMixin:
    """:meth:`list_sessions_page`, mixed into ``DatabaseSessionService``."""

    if TYPE_CHECKING:  # provided by HistoryMixin (a stub here would shadow it in the MRO)
        async def _run(self, fn: Callable[[Connection], T], *, write: bool) -> T: ...

    @traced("list_sessions_page", result=count("session_count", lambda page: page.sessions))
    async def list_sessions_page(
        self, *, app_name: str, user_id: str | None = None,
        page_size: int = DEFAULT_PAGE_SIZE, page_token: str | None = None,
    ) -> SessionPage:
        """One page of the sessions of ``user_id`` (or of every user of the app when None),
        newest update first (ties: user id, then session id, both descending), without
        events. Pass the result's ``next_page_token`` back for the next page; it is None
        after the last one. See the module docstring for what the token guarantees.

        Raises:
            InvalidValueError: a bad id, a ``page_size`` outside 1 to
                :data:`MAX_PAGE_SIZE`, or a ``page_token`` this listing did not hand out.
        """
        check_id("app_name", app_name)
        if user_id is not None:
            check_id("user_id", user_id)
        page_size = check_page_size(page_size)
        after = None if page_token is None else decode_token(page_token, app_name, user_id)
        got = await self._run(
            lambda conn: read_page(conn, app_name=app_name, user_id=user_id, after=after,
                                   page_size=page_size),
            write=False,
        )
        rows = got.rows[:page_size]
        sessions: list[Session] = []
        for r in rows:
            user_state, user_rev = got.users.get(r.user_id, ({}, 0))
            sessions.append(make_session(
                id=r.id, app_name=app_name, user_id=r.user_id,
                state=merge_scopes(got.app_state, user_state, loads(r.state)),
                events=[], last_update_time=r.update_time,
                marker=make_marker(r.incarnation, r.revision, r.last_seq, user_rev,
                                   got.app_rev),
            ))
        token = None
        if len(got.rows) > page_size:
            last = rows[-1]
            token = encode_token(app_name, user_id,
                                 _Cursor(float(last.update_time), last.user_id, last.id))
        return SessionPage.model_construct(sessions=sessions, next_page_token=token)
