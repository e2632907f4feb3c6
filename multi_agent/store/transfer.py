"""Export a session with its run tree as one JSON document, and import it again.

The document (``format`` ``multi-agent-session``, ``version`` 1)::

    {
      "format": "multi-agent-session", "version": 1,
      "app_name": "multi_agent", "user_id": "ann",
      "session": {"id", "state", "initial_state", "create_time", "update_time", "revision",
                  "last_seq", "event_count", "head_run_id", "last_agent", "awaiting_seq",
                  "agent_paths"},
      "runs":   [{"run_id", "parent_run_id", "kind", "agent", "started_at", "first_seq",
                  "status", "error", "on_path"}, ...],            # every column, by first_seq
      "events": [{"seq", "id", "invocation_id", "run_id", "timestamp", "source", "target",
                  "branch", "message_type", "final", "text", "prompt_tokens",
                  "completion_tokens", "total_tokens", "on_path",
                  "event": {...the ADK Event as JSON...}}, ...]   # every event, by seq
    }

Every branch is in it (off-path runs and events too), so the imported session has the same
tree, head and history. ``state``/``initial_state``/``agent_paths`` and ``event`` are JSON
values, not strings.

Round trip: export → import → export gives an identical document. When the import is given
another ``user_id`` or ``session_id`` (or ``app_name``), exactly those fields (``user_id``,
``session.id``, ``app_name``) differ; nothing else is rewritten (times, run ids, event ids,
revision are kept). The imported session gets a new ``incarnation`` (copies loaded from
anywhere else never match it), no per-key revisions and ``branch_rev`` 0; each event's
``digest`` is computed from the event as stored.

Not exported: ``app:`` and ``user:`` state. They belong to the app and the user, are shared by
all their sessions, and are not part of any one session's history; importing never touches
them.

Import trusts nothing in the file. Every event must be an ADK event that re-encodes exactly,
with values ``append_event`` would accept (state limits, finite numbers, no lone surrogates);
every column is what appending the events in ``seq`` order gives (``run_id``, ``source``,
``target``, ``branch``, ``message_type``, ``final``, ``text``, tokens: from the event; a human
message's ``target`` from the agent that answered it; ``branch`` and ``agent_paths`` from the
transfers before it); the runs are the ones those appends create (plus ``agent_tool`` sub-runs),
the ``on_path`` flags are the path from the first run to the head (after the latest branch),
and the session's ``state``, ``last_agent``, ``awaiting_seq``, ``last_seq`` and ``event_count``
follow from the events on it. Counters must stay below 2**53, so that appends can go on
incrementing them. Anything else raises :class:`~multi_agent.errors.InvalidValueError` naming
the exact place (e.g. ``events[3].timestamp``) and writes nothing: everything is written in
one transaction, or nothing.

Files are read incrementally (:func:`import_session_file`): one top-level value or one event at
a time with the standard library's decoder (the same semantics as ``json.loads``: integers of
any size the store keeps, lone surrogate escapes reported rather than altered), events written
in batches, so memory stays bounded whatever the file's size. When the events come before the
session in a file (not the order ``export`` writes), the file is read twice.
"""

from __future__ import annotations

import codecs
import io
import json
import math
import os
import re
import shutil
import tempfile
import time
from array import array
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import IO, Any

from google.adk.events.event import Event
from pydantic import ValidationError
from pydantic_core import PydanticSerializationError
from sqlalchemy import select
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from ..errors import InvalidIdError, InvalidValueError, SessionAlreadyExists
from . import schema as s
from .backend import Backend
from .codec import (
    MAX_INT_BITS,
    check_event_numbers,
    check_json_value,
    check_text,
    dumps,
    encode_event,
    event_digest,
    loads,
)
from .facts import MESSAGE_TYPES, event_facts
from .ops import new_incarnation
from .runs import RUN_STATUSES
from .state import split_delta

__all__ = [
    "FORMAT",
    "MAX_COUNT",
    "VERSION",
    "ImportResult",
    "ImportSource",
    "export_session",
    "import_session",
    "import_session_file",
    "open_source",
    "validate_document",
]

FORMAT = "multi-agent-session"
"""The ``format`` value of every export document."""

VERSION = 1
"""The document version this code writes and reads."""

MAX_COUNT = 2**53 - 1
"""Largest revision, sequence number or count an import accepts: far below the 2**63 - 1 a
BIGINT holds, so every later append can still increment it (and JSON readers that use doubles
read it exactly)."""

MAX_TOKENS = 2**31 - 1
"""Largest token count: the token columns are 32-bit INTEGERs."""

MAX_NESTING = 512
"""Deepest nesting of an event object the import reads. ``append_event`` stores nothing deeper
than pydantic can serialise (a few hundred levels); the check keeps every later step (encoding,
comparing) far from Python's recursion limit."""

BATCH_ROWS = 500
BATCH_CHARS = 1 << 20
"""Events are written in batches of at most this many rows / characters of event JSON."""

RUN_KINDS = ("invocation", "delegation", "agent_tool", "rewind", "branch")
_EVENT_RUN_KINDS = ("invocation", "rewind", "delegation")  # created by an append
# Other kinds (agent_tool sub-runs) are recorded between appends, under an existing run.

# field -> (kind, nullable). Kinds: id (an id the store accepts), str, short (<= 16 chars),
# path (<= 1024 chars), key (<= 256 chars, may be empty), count (0..MAX_COUNT), tokens
# (0..MAX_TOKENS), num, bool, object (JSON object), type (message type).
_SESSION_SPEC: dict[str, tuple[str, bool]] = {
    "id": ("id", False), "state": ("object", False), "initial_state": ("object", False),
    "create_time": ("num", False), "update_time": ("num", False),
    "revision": ("count", False), "last_seq": ("count", False),
    "event_count": ("count", False), "head_run_id": ("id", True),
    "last_agent": ("id", True), "awaiting_seq": ("count", True),
    "agent_paths": ("object", False),
}
_RUN_SPEC: dict[str, tuple[str, bool]] = {
    "run_id": ("id", False), "parent_run_id": ("id", True), "kind": ("short", False),
    "agent": ("id", True), "started_at": ("num", False), "first_seq": ("count", False),
    "status": ("short", True), "error": ("str", True), "on_path": ("bool", False),
}
_EVENT_SPEC: dict[str, tuple[str, bool]] = {
    "seq": ("count", False), "id": ("id", False), "invocation_id": ("key", False),
    "run_id": ("id", False), "timestamp": ("num", False), "source": ("id", False),
    "target": ("id", True), "branch": ("path", True), "message_type": ("type", False),
    "final": ("bool", False), "text": ("str", True), "prompt_tokens": ("tokens", True),
    "completion_tokens": ("tokens", True), "total_tokens": ("tokens", True),
    "on_path": ("bool", False), "event": ("object", False),
}
_DOC_KEYS = ("format", "version", "app_name", "user_id", "session", "runs", "events")
_HEADER_KEYS = frozenset(_DOC_KEYS) - {"events"}

_SESSION_COLUMNS = tuple(k for k in _SESSION_SPEC if k != "id")
_RUN_COLUMNS = tuple(_RUN_SPEC)
_EVENT_COLUMNS = tuple(k for k in _EVENT_SPEC if k != "event")
_JSON_SESSION_COLUMNS = ("state", "initial_state", "agent_paths")
# The columns an append derives from the event alone, in the order they are compared.
_DERIVED_COLUMNS = (
    "invocation_id", "run_id", "timestamp", "source", "target", "branch", "message_type",
    "final", "text", "prompt_tokens", "completion_tokens", "total_tokens",
)


@dataclass(slots=True, frozen=True)
class ImportResult:
    """Where an imported session landed and how much it held."""

    app_name: str
    user_id: str
    session_id: str
    runs: int
    events: int


# --------------------------------------------------------------------------------------------
# export


def export_session(
    conn: Connection, *, app_name: str, user_id: str, session_id: str
) -> dict[str, Any] | None:
    """The session, its runs and all its events (every branch) as a version-1 document.

    Returns:
        The document, or ``None`` when there is no such session.
    """
    ss, r, e = s.sessions.c, s.runs.c, s.events.c
    row = conn.execute(
        select(*(ss[k] for k in _SESSION_COLUMNS)).where(
            ss.app_name == app_name, ss.user_id == user_id, ss.id == session_id
        )
    ).first()
    if row is None:
        return None
    session: dict[str, Any] = {"id": session_id}
    for key in _SESSION_COLUMNS:
        value = getattr(row, key)
        session[key] = loads(value) if key in _JSON_SESSION_COLUMNS else value
    runs = [
        _normalise(dict(run._mapping), _RUN_SPEC)
        for run in conn.execute(
            select(*(r[k] for k in _RUN_COLUMNS))
            .where(r.app_name == app_name, r.user_id == user_id, r.session_id == session_id)
            .order_by(r.first_seq, r.run_id)
        )
    ]
    events = []
    for ev in conn.execute(
        select(*(e[k] for k in _EVENT_COLUMNS), e.event_data)
        .where(e.app_name == app_name, e.user_id == user_id, e.session_id == session_id)
        .order_by(e.seq)
    ):
        item = _normalise({k: ev._mapping[k] for k in _EVENT_COLUMNS}, _EVENT_SPEC)
        item["event"] = loads(ev.event_data)
        events.append(item)
    return {
        "format": FORMAT,
        "version": VERSION,
        "app_name": app_name,
        "user_id": user_id,
        "session": _normalise(session, _SESSION_SPEC),
        "runs": runs,
        "events": events,
    }


def _normalise(record: dict[str, Any], spec: dict[str, tuple[str, bool]]) -> dict[str, Any]:
    """Same Python types from every database (SQLite may hand back 0/1 or ints for floats)."""
    for key, (kind, _) in spec.items():
        value = record.get(key)
        if value is None:
            continue
        if kind == "bool":
            record[key] = bool(value)
        elif kind in ("count", "tokens"):
            record[key] = int(value)
        elif kind == "num":
            record[key] = float(value)
    return record


# --------------------------------------------------------------------------------------------
# small helpers


def _bad(detail: str) -> InvalidValueError:
    return InvalidValueError(
        f"Not a valid multi-agent session export: {detail} Nothing was imported."
    )


def _reason(exc: Exception) -> str:
    """An error's message without its own "Nothing was written." ending."""
    text = str(exc)
    for tail in (" Nothing was written.", " Nothing was imported."):
        if text.endswith(tail):
            text = text[: -len(tail)]
    return text if text.endswith(".") else text + "."


def _short(value: Any) -> str:
    """A value for an error message: JSON-like, at most ~60 characters."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int) and value.bit_length() > 200:
        return f"an integer of {value.bit_length()} bits"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _rep(value: Any) -> str:
    """``repr`` for an error message, at most ~60 characters."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 200:
        return f"an integer of {value.bit_length()} bits"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _canon(value: Any) -> str:
    """Type-exact, order-insensitive form of a JSON value (1, 1.0 and true all differ)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False)


def _lone_surrogate(text: str) -> bool:
    if text.isascii():
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _plain_json(value: Any) -> bool:
    """Fast check: only JSON types, string keys, finite floats, no lone surrogates, integers the
    store keeps, nesting of at most MAX_NESTING levels."""
    stack = [(value, 0)]
    pop, push = stack.pop, stack.append
    while stack:
        v, depth = pop()
        t = type(v)
        if t is str:
            if not v.isascii() and _lone_surrogate(v):
                return False
        elif t is dict:
            if depth >= MAX_NESTING:
                return False
            for k, item in v.items():
                if type(k) is not str or (not k.isascii() and _lone_surrogate(k)):
                    return False
                push((item, depth + 1))
        elif t is list:
            if depth >= MAX_NESTING:
                return False
            for item in v:
                push((item, depth + 1))
        elif t is int:
            if v.bit_length() > MAX_INT_BITS:
                return False
        elif t is float:
            if not math.isfinite(v):
                return False
        elif v is not None and t is not bool:
            return False
    return True


def _json_problem(value: Any) -> tuple[str, str]:
    """Where and why ``value`` fails ``_plain_json`` (the slow walk, for the message)."""
    stack: list[tuple[Any, int, str]] = [(value, 0, "")]
    while stack:
        v, depth, path = stack.pop()
        t = type(v)
        if t is str:
            if _lone_surrogate(v):
                return path, "holds a lone surrogate, which is not valid Unicode text"
        elif t is dict or t is list:
            if depth >= MAX_NESTING:
                return path, f"is nested deeper than {MAX_NESTING} levels"
            if t is list:
                stack.extend((item, depth + 1, f"{path}[{i}]") for i, item in enumerate(v))
                continue
            for k, item in v.items():
                if type(k) is not str:
                    return path, f"has a key that is not a string ({_short(k)})"
                if _lone_surrogate(k):
                    return path, "has a key holding a lone surrogate"
                stack.append((item, depth + 1, f"{path}.{k}"))
        elif t is int:
            if v.bit_length() > MAX_INT_BITS:
                return path, (f"is an integer of {v.bit_length()} bits; the store keeps at "
                              f"most {MAX_INT_BITS}")
        elif t is float:
            if not math.isfinite(v):
                return path, f"is {v!r}, which JSON cannot represent"
        elif v is not None and t is not bool:
            return path, f"is a {t.__name__}, which is not JSON"
    return "", "is not plain JSON"


def _first_difference(a: Any, b: Any, path: str = "") -> str:
    """The path of the first place where two JSON values differ (type-exact)."""
    if type(a) is not type(b):
        return path or "(root)"
    if isinstance(a, dict):
        for key in list(a) + [k for k in b if k not in a]:
            if key not in a or key not in b:
                return f"{path}.{key}"
            if _canon(a[key]) != _canon(b[key]):
                return _first_difference(a[key], b[key], f"{path}.{key}")
        return path or "(root)"
    if isinstance(a, list):
        if len(a) != len(b):
            return path or "(root)"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            if _canon(x) != _canon(y):
                return _first_difference(x, y, f"{path}[{i}]")
    return path or "(root)"


def _check_value(where: str, kind: str, value: Any) -> None:
    from .ids import check_id

    if kind == "id":
        try:
            check_id(where, value)
        except InvalidIdError as exc:
            raise _bad(str(exc)) from None
        return
    if kind in ("str", "short", "path", "key", "type"):
        if not isinstance(value, str):
            raise _bad(f"{where} must be a string, got {type(value).__name__}.")
        if "\x00" in value:
            raise _bad(f"{where} contains a NUL character.")
        if _lone_surrogate(value):
            raise _bad(f"{where} holds a lone surrogate, which is not valid Unicode text.")
        limit = {"short": 16, "path": 1024, "key": s.ID_LENGTH}.get(kind)
        if limit is not None and len(value) > limit:
            raise _bad(f"{where} is longer than {limit} characters.")
        if kind == "type" and value not in MESSAGE_TYPES:
            raise _bad(f"{where} is {value!r}; expected one of {', '.join(MESSAGE_TYPES)}.")
    elif kind in ("count", "tokens"):
        if isinstance(value, bool) or not isinstance(value, int):
            raise _bad(f"{where} must be an integer, got {_short(value)}.")
        if value < 0:
            raise _bad(f"{where} must not be negative, got {_short(value)}.")
        limit = MAX_COUNT if kind == "count" else MAX_TOKENS
        if value > limit:
            what = "2**53 - 1: appends must be able to go on counting" if kind == "count" else (
                "2**31 - 1 (a 32-bit column)"
            )
            raise _bad(f"{where} is {_short(value)}; it must be at most {what}.")
    elif kind == "num":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _bad(f"{where} must be a number, got {_short(value)}.")
        try:
            finite = math.isfinite(value)
        except OverflowError:  # an int beyond any float
            finite = False
        if not finite:
            raise _bad(f"{where} must be a finite number, got {_short(value)}.")
    elif kind == "bool":
        if not isinstance(value, bool):
            raise _bad(f"{where} must be true or false, got {_short(value)}.")
    elif kind == "object" and not isinstance(value, dict):
        raise _bad(f"{where} must be a JSON object, got {type(value).__name__}.")


def _check_record(where: str, record: Any, spec: dict[str, tuple[str, bool]]) -> None:
    if not isinstance(record, dict):
        raise _bad(f"{where} must be a JSON object, got {type(record).__name__}.")
    missing = [k for k in spec if k not in record]
    if missing:
        raise _bad(f"{where} lacks {', '.join(missing)}.")
    if len(record) != len(spec):
        unknown = sorted(str(k) for k in record if k not in spec)
        raise _bad(f"{where} has unknown field(s) {', '.join(unknown)}.")
    for key, (kind, nullable) in spec.items():
        value = record[key]
        if value is None:
            if not nullable:
                raise _bad(f"{where}.{key} must not be null.")
            continue
        _check_value(f"{where}.{key}", kind, value)


def _check_state(where: str, state: dict[Any, Any]) -> None:
    """A session's own state: what ``append_event`` would accept, without scope prefixes."""
    for key, value in state.items():
        if not isinstance(key, str):
            raise _bad(f"{where} has a key that is not a string ({_short(key)}).")
        if key.startswith(("app:", "user:", "temp:")):
            raise _bad(f"{where} holds {key!r}: app:, user: and temp: keys are never part of a "
                       "session's own state.")
        try:
            check_text(key, key)
            check_json_value(key, value)
        except InvalidValueError as exc:
            raise _bad(f"{where}: {_reason(exc)}") from None


# --------------------------------------------------------------------------------------------
# the import itself: header, then events in seq order, then the checks that need them all


def _check_header(header: Mapping[str, Any], keys: Iterable[str]) -> None:
    """Everything but the events: format, version, fields, ids, the session record, the runs."""
    keys = set(keys)
    if header.get("format") != FORMAT:
        raise _bad(f"its format is {_rep(header.get('format'))}, expected {FORMAT!r}.")
    version = header.get("version")
    if version != VERSION or isinstance(version, bool):
        newer = isinstance(version, int) and not isinstance(version, bool) and version > VERSION
        hint = " It was written by a newer multi-agent; upgrade to import it." if newer else ""
        raise _bad(f"its version is {_rep(version)}; this multi-agent reads version "
                   f"{VERSION}.{hint}")
    missing = [k for k in _DOC_KEYS if k not in keys]
    if missing:
        raise _bad(f"it lacks {', '.join(missing)}.")
    unknown = sorted(str(k) for k in keys if k not in _DOC_KEYS)
    if unknown:
        raise _bad(f"it has unknown field(s) {', '.join(unknown)}.")
    _check_value("app_name", "id", header["app_name"])
    _check_value("user_id", "id", header["user_id"])
    session = header["session"]
    _check_record("session", session, _SESSION_SPEC)
    _check_state("session.state", session["state"])
    _check_state("session.initial_state", session["initial_state"])
    for agent, path in session["agent_paths"].items():
        if not isinstance(path, str) or _lone_surrogate(str(agent)) or _lone_surrogate(path):
            raise _bad(f"session.agent_paths.{agent} must be an agent path (a string).")
    runs = header["runs"]
    if not isinstance(runs, list):
        raise _bad("runs and events must be JSON arrays.")
    by_id: dict[str, int] = {}
    for i, run in enumerate(runs):
        _check_record(f"runs[{i}]", run, _RUN_SPEC)
        if run["kind"] not in RUN_KINDS:
            kinds = ", ".join(RUN_KINDS)
            raise _bad(f"runs[{i}].kind is {run['kind']!r}; expected one of {kinds}.")
        if run["status"] is not None and run["status"] not in RUN_STATUSES:
            raise _bad(f"runs[{i}].status is {run['status']!r}; expected null or one of "
                       f"{', '.join(RUN_STATUSES)}.")
        if run["run_id"] in by_id:
            raise _bad(f"runs[{i}].run_id {run['run_id']!r} appears twice.")
        by_id[run["run_id"]] = i
    for i, run in enumerate(runs):
        parent = run["parent_run_id"]
        if parent is None:
            continue
        if parent not in by_id:
            raise _bad(f"runs[{i}].parent_run_id {parent!r} is not a run of it.")
        if runs[by_id[parent]]["first_seq"] > run["first_seq"]:
            raise _bad(f"runs[{i}].parent_run_id {parent!r} starts after it (first_seq "
                       f"{runs[by_id[parent]]['first_seq']} > {run['first_seq']}).")
    head = session["head_run_id"]
    if head is not None and head not in by_id:
        raise _bad(f"session.head_run_id {head!r} is not a run of it.")


class _Import:
    """One import: checks the header, then each event in seq order, then the whole.

    With a connection it writes as it goes (the caller's transaction makes it all or
    nothing); without one (``validate_document``) it only checks.
    """

    def __init__(
        self, conn: Connection | None, backend: Backend | None, header: Mapping[str, Any],
        keys: Iterable[str], *, app_name: str | None, user_id: str | None,
        session_id: str | None,
    ) -> None:
        from .ids import check_id

        _check_header(header, keys)
        self.conn, self.backend = conn, backend
        self.session: dict[str, Any] = header["session"]
        self.runs: list[dict[str, Any]] = header["runs"]
        self.app_name = check_id("app_name", app_name if app_name is not None
                                 else header["app_name"])
        self.user_id = check_id("user_id", user_id if user_id is not None
                                else header["user_id"])
        self.session_id = check_id("session_id", session_id if session_id is not None
                                   else self.session["id"])
        self.key = {"app_name": self.app_name, "user_id": self.user_id,
                    "session_id": self.session_id}
        self.run_index = {run["run_id"]: i for i, run in enumerate(self.runs)}
        self.depth = self._run_depths()
        # Runs that appends do not create (agent_tool sub-runs): they come into being between
        # the event of their first_seq and the next one, under a run that existed then.
        self.free = sorted(
            (i for i, run in enumerate(self.runs) if run["kind"] not in _EVENT_RUN_KINDS),
            key=lambda i: (self.runs[i]["first_seq"], self.depth[i]),
        )
        self.free_next = 0
        self.created: set[str] = set()
        # Replayed as appends replay them.
        self.count = 0
        self.head: str | None = None
        self.jumped = 0  # the latest seq whose new run does not continue from the head
        self.paths: dict[str, str] = {}
        self.paths_json = "{}"
        self.state = dict(self.session["initial_state"])
        self.last_agent: str | None = None
        self.pending: list[tuple[int, str | None]] = []  # human messages nobody answered yet
        # Per event, for the path check at the end: its run (index) and on_path flag.
        self.ev_run = array("l")
        self.ev_flag = bytearray()
        self.rows: list[dict[str, Any]] = []
        self.row_chars = 0
        self.ids: set[str] | None = set() if conn is None else None
        if conn is not None:
            self._write_header()

    # -- header ---------------------------------------------------------------------------

    def _run_depths(self) -> list[int]:
        """Each run's number of ancestors; refuses a parent cycle."""
        depth: list[int | None] = [None] * len(self.runs)
        for start in range(len(self.runs)):
            chain: list[int] = []
            cursor: int | None = start
            while cursor is not None and depth[cursor] is None:
                if cursor in chain:
                    raise _bad(f"runs[{start}] is its own ancestor (a parent_run_id cycle).")
                chain.append(cursor)
                parent = self.runs[cursor]["parent_run_id"]
                cursor = None if parent is None else self.run_index[parent]
            base = -1 if cursor is None else depth[cursor]
            assert base is not None
            for offset, i in enumerate(reversed(chain), start=1):
                depth[i] = base + offset
        return [d or 0 for d in depth]

    def _write_header(self) -> None:
        conn, backend = self.conn, self.backend
        assert conn is not None and backend is not None
        ss = s.sessions.c
        exists = conn.execute(
            select(ss.revision).where(ss.app_name == self.app_name, ss.user_id == self.user_id,
                                      ss.id == self.session_id)
        ).first()
        if exists is not None:
            raise SessionAlreadyExists(self.app_name, self.user_id, self.session_id)
        now = time.time()
        backend.ensure_app_row(conn, app_name=self.app_name, now=now)
        backend.ensure_user_row(conn, app_name=self.app_name, user_id=self.user_id, now=now)
        values = {k: self.session[k] for k in _SESSION_COLUMNS}
        for name in _JSON_SESSION_COLUMNS:
            values[name] = dumps(self.session[name])
        try:
            conn.execute(
                s.sessions.insert().values(
                    app_name=self.app_name, user_id=self.user_id, id=self.session_id,
                    incarnation=new_incarnation(), branch_rev=0, key_revs="{}", **values,
                )
            )
        except IntegrityError as exc:  # created by another process since the check above
            raise SessionAlreadyExists(self.app_name, self.user_id, self.session_id) from exc
        for lo in range(0, len(self.runs), BATCH_ROWS):
            chunk = self.runs[lo:lo + BATCH_ROWS]
            conn.execute(s.runs.insert(), [{**self.key, **run} for run in chunk])

    # -- events ---------------------------------------------------------------------------

    def event(self, item: Any) -> None:
        """Checks one event (the next in seq order), replays its append, queues its row."""
        i = self.count
        where = f"events[{i}]"
        _check_record(where, item, _EVENT_SPEC)
        seq = item["seq"]
        if seq != i + 1:
            if seq <= i:
                raise _bad(f"{where}.seq {seq} is a duplicate or out of order: events are "
                           f"listed by seq, from 1 without gaps (expected {i + 1}).")
            raise _bad(f"{where}.seq is {seq}; expected {i + 1}: events are listed by seq, "
                       "from 1 without gaps.")
        run_id = item["run_id"]
        if run_id not in self.run_index:
            raise _bad(f"{where}.run_id {run_id!r} is not a run of it.")
        data = item["event"]
        if not _plain_json(data):
            path, why = _json_problem(data)
            raise _bad(f"{where}.event{path} {why}.")
        if data.get("id") != item["id"]:
            raise _bad(f"{where}.event.id {_short(data.get('id'))} differs from {where}.id "
                       f"{item['id']!r}.")
        event, stored = self._event(where, data)
        self._add_free_runs(seq - 1)
        facts = event_facts(event, last_agent=None)
        author = facts.source
        derived = self._replay(where, i, seq, event, facts, item)
        for column in _DERIVED_COLUMNS:
            want = derived[column]
            given = item[column]
            if column == "timestamp":
                same = float(given) == want
            else:
                same = given == want and type(given) is type(want)
            if not same:
                raise _bad(f"{where}.{column} is {_short(given)}, but its event says "
                           f"{_short(want)}.")
        on_path = item["on_path"]
        self.ev_run.append(self.run_index[run_id])
        self.ev_flag.append(on_path)
        if on_path:
            self.state.update(self._session_delta(where, event))
            if author != "user":  # as branch_session: the agent that will answer next
                self.last_agent = facts.transfer_to or author
        else:
            self._session_delta(where, event)
        self.count += 1
        self._queue({
            **self.key, **derived, "seq": seq, "id": event.id, "target": item["target"],
            "on_path": on_path, "event_data": stored, "digest": event_digest(stored),
        }, i)

    def _event(self, where: str, data: dict[str, Any]) -> tuple[Event, str]:
        """The ADK event, and its stored JSON, which must say exactly what the file says."""
        try:
            event = Event.model_validate(data)
        except ValidationError as exc:
            first = exc.errors()[0]
            loc = ".".join(str(p) for p in first.get("loc", ())) or "(root)"
            raise _bad(f"{where}.event is not an ADK event: {loc}: {first.get('msg')}.") from None
        try:
            stored = encode_event(event)
        except (PydanticSerializationError, ValueError) as exc:
            raise _bad(f"{where}.event cannot be stored as JSON ({_reason(exc)})") from None
        again = loads(stored)
        if _canon(again) != _canon(data):
            path = _first_difference(data, again)
            raise _bad(f"{where}.event{path if path != '(root)' else ''} does not survive ADK's "
                       "validation unchanged; an export holds each event as ADK encodes it.")
        try:
            check_event_numbers(event, stored)
            if event.custom_metadata:
                check_json_value("custom_metadata", event.custom_metadata)
            if event.output is not None:
                check_json_value("output", event.output)
        except InvalidValueError as exc:
            raise _bad(f"{where}.event: {_reason(exc)}") from None
        return event, stored

    def _session_delta(self, where: str, event: Event) -> dict[str, Any]:
        raw = event.actions.state_delta if event.actions else None
        if not raw:
            return {}
        temp = next((k for k in raw if isinstance(k, str) and k.startswith("temp:")), None)
        if temp is not None:
            raise _bad(f"{where}.event.actions.state_delta holds {temp!r}: temp: state is "
                       "never stored.")
        try:
            return split_delta(raw).session
        except InvalidValueError as exc:
            raise _bad(f"{where}.event.actions.state_delta: {_reason(exc)}") from None

    def _replay(
        self, where: str, i: int, seq: int, event: Event, facts: Any, item: dict[str, Any]
    ) -> dict[str, Any]:
        """What ``ops._append_event`` derives for this event, in this place of the sequence."""
        author = facts.source
        # Agent paths: the first agent is a root; a transfer makes the target its child
        # (the same text test as append, so that exactly the same paths come out).
        if (author != "user" and f'"{author}"' not in self.paths_json) or facts.transfer_to:
            paths = self.paths
            if author != "user" and author not in paths:
                paths[author] = author
            if facts.transfer_to and facts.transfer_to not in paths:
                paths[facts.transfer_to] = f"{paths.get(author, author)}.{facts.transfer_to}"
            self.paths_json = dumps(paths)
        branch = event.branch
        if branch is None and author != "user":
            branch = self.paths.get(author)
        target = facts.target
        if facts.message_type == "human":
            # Filled in by the agent that answers it (checked when that agent speaks).
            target = item["target"]
            self.pending.append((i, target))
        elif author != "user":
            self._answer(where, author)
        invocation_id = event.invocation_id or ""
        run_id = invocation_id or "-"
        self._record_run(where, seq, event, facts, run_id)
        return {
            "invocation_id": invocation_id, "run_id": run_id, "timestamp": event.timestamp,
            "source": author, "target": target, "branch": branch,
            "message_type": facts.message_type,
            "final": event.author != "user" and event.is_final_response(), "text": facts.text,
            "prompt_tokens": facts.prompt_tokens,
            "completion_tokens": facts.completion_tokens, "total_tokens": facts.total_tokens,
        }

    def _answer(self, where: str, agent: str) -> None:
        """An agent spoke: the human messages waiting for it are addressed to it, except those
        a branch stopped waiting for (null). Waiting ones come last."""
        addressed: int | None = None
        for index, target in self.pending:
            if target is None:
                if addressed is not None:
                    raise _bad(f"events[{index}].target is null, but the earlier message "
                               f"events[{addressed}] waiting for the same answer is addressed "
                               f"to {agent!r}: the agent that answers fills in every message "
                               "still waiting.")
            elif target == agent:
                addressed = index
            else:
                raise _bad(f"events[{index}].target is {target!r}, but the agent that answered "
                           f"it is {agent!r} ({where}).")
        self.pending.clear()

    def _add_free_runs(self, last_seq: int) -> None:
        """Sub-runs recorded while the session's newest event was ``last_seq``, or before."""
        free = self.free
        while self.free_next < len(free):
            j = free[self.free_next]
            run = self.runs[j]
            if run["first_seq"] > last_seq:
                return
            if run["first_seq"] < 1:
                raise _bad(f"runs[{j}].first_seq is {run['first_seq']}; a sub-run starts at an "
                           "event (1 or more).")
            parent = run["parent_run_id"]
            if parent is None or parent not in self.created:
                raise _bad(f"runs[{j}].parent_run_id is {_short(parent)}; a {run['kind']} run "
                           "starts under a run that exists by its first_seq.")
            self.created.add(run["run_id"])
            self.free_next += 1

    def _record_run(
        self, where: str, seq: int, event: Event, facts: Any, run_id: str
    ) -> None:
        """As ``ops._record_run``: a delegation sub-run per transfer, a run per invocation."""
        ts = event.timestamp
        if facts.transfer_to and facts.message_type == "tool_result":
            sub = f"{facts.transfer_to[:200]}@{seq}"
            j = self.run_index.get(sub)
            if j is None or sub in self.created:
                raise _bad(f"{where} hands over to {facts.transfer_to!r}, which starts the "
                           f"delegation run {sub!r}; runs lacks it.")
            self._check_run(j, where, kind="delegation", parent_run_id=run_id,
                            agent=facts.transfer_to, started_at=ts, first_seq=seq)
            self.created.add(sub)
        if run_id not in self.created:
            j = self.run_index[run_id]
            rewind = event.actions.rewind_before_invocation_id if event.actions else None
            author = facts.source
            self._check_run(j, where, kind="rewind" if rewind else "invocation",
                            agent=author if author != "user" else None, started_at=ts,
                            first_seq=seq)
            parent = self.runs[j]["parent_run_id"]
            if self.head is None and parent is not None:
                raise _bad(f"runs[{j}].parent_run_id is {parent!r}, but the run of the first "
                           "event has no parent.")
            if self.head is not None:
                # The run the head was at; a branch moved the head when it names another.
                if parent != self.head:
                    self.jumped = seq
                if parent is None or parent not in self.created:
                    raise _bad(f"runs[{j}].parent_run_id is {_short(parent)}, but a run "
                               "continues from a run that existed when it started.")
                if self.runs[self.run_index[parent]]["kind"] == "delegation":
                    raise _bad(f"runs[{j}].parent_run_id {parent!r} is a delegation sub-run; "
                               "runs continue from top-level runs.")
            self.created.add(run_id)
        self.head = run_id

    def _check_run(self, j: int, where: str, **expected: Any) -> None:
        run = self.runs[j]
        for field, want in expected.items():
            given = run[field]
            same = float(given) == want if field == "started_at" else (
                given == want and type(given) is type(want)
            )
            if not same:
                raise _bad(f"runs[{j}].{field} is {_short(given)}, but {where}, which starts "
                           f"the run, says {_short(want)}.")

    def _queue(self, row: dict[str, Any], index: int) -> None:
        if self.conn is None:
            assert self.ids is not None
            if row["id"] in self.ids:
                raise _bad(f"events[{index}].id {row['id']!r} appears twice.")
            self.ids.add(row["id"])
            return
        self.rows.append(row)
        self.row_chars += len(row["event_data"])
        if len(self.rows) >= BATCH_ROWS or self.row_chars >= BATCH_CHARS:
            self._flush()

    def _flush(self) -> None:
        rows, conn = self.rows, self.conn
        if not rows or conn is None:
            return
        first = rows[0]["seq"] - 1
        seen: dict[str, int] = {}
        for offset, row in enumerate(rows):
            earlier = seen.setdefault(row["id"], first + offset)
            if earlier != first + offset:
                raise _bad(f"events[{first + offset}].id {row['id']!r} appears twice "
                           f"(also events[{earlier}]).")
        e = s.events.c
        clash = conn.execute(
            select(e.id, e.seq).where(
                e.app_name == self.app_name, e.user_id == self.user_id,
                e.session_id == self.session_id, e.id.in_(list(seen)),
            ).limit(1)
        ).first()
        if clash is not None:
            raise _bad(f"events[{seen[clash.id]}].id {clash.id!r} appears twice (also "
                       f"events[{clash.seq - 1}]).")
        conn.execute(s.events.insert(), rows)
        self.rows = []
        self.row_chars = 0

    # -- the whole ------------------------------------------------------------------------

    def finish(self) -> ImportResult:
        """The checks that need every event; writes the last batch."""
        n = self.count
        session = self.session
        self._add_free_runs(n)
        for j in range(self.free_next, len(self.free)):
            run = self.runs[self.free[j]]
            raise _bad(f"runs[{self.free[j]}].first_seq is {run['first_seq']}, after the last "
                       f"event ({n}).")
        for j, run in enumerate(self.runs):
            if run["run_id"] not in self.created:
                raise _bad(f"runs[{j}] ({run['run_id']!r}) is a {run['kind']} run, but no "
                           "event starts it.")
        for field in ("last_seq", "event_count"):
            if session[field] != n:
                raise _bad(f"session.{field} is {session[field]}, but it holds {n} events.")
        self._check_paths()
        if _canon(session["agent_paths"]) != _canon(self.paths):
            raise _bad(f"session.agent_paths is {_short(session['agent_paths'])}, but its "
                       f"events give {_short(self.paths)}.")
        if session["last_agent"] != self.last_agent:
            raise _bad(f"session.last_agent is {_short(session['last_agent'])}, but the last "
                       f"agent on its path is {_short(self.last_agent)}.")
        waiting = [i + 1 for i, _ in self.pending]
        for index, target in self.pending:
            if target is not None:
                raise _bad(f"events[{index}].target is {target!r}, but no agent answered it.")
        if session["awaiting_seq"] is not None and session["awaiting_seq"] not in waiting:
            listed = ", ".join(map(str, waiting[:5])) or "there is none"
            raise _bad(f"session.awaiting_seq is {session['awaiting_seq']}; it must be null or "
                       f"the seq of a human message no agent answered yet ({listed}).")
        if _canon(session["state"]) != _canon(self.state):
            differs = _first_difference(session["state"], self.state)
            raise _bad(f"session.state is not its initial_state with the state deltas of the "
                       f"events on its path (first difference: state{differs}).")
        self._flush()
        return ImportResult(self.app_name, self.user_id, self.session_id, runs=len(self.runs),
                            events=n)

    def _check_paths(self) -> None:
        """The on_path flags must be what the latest branch and the appends after it left.

        A branch to run X puts exactly the path from the first run to X (with its delegation
        sub-runs) on the path; appends after it add their events and runs on the path. So
        either the flags are the head's path, or the head is the newest event's run and the
        flags are a branch's path, after which everything is on the path.
        """
        n, head = self.count, self.session["head_run_id"]
        if n == 0:
            if head is not None:
                raise _bad(f"session.head_run_id is {head!r}, but it has no events.")
            return
        if head is None:
            raise _bad("session.head_run_id is null, but it has events.")
        if self.runs[self.run_index[head]]["kind"] == "delegation":
            raise _bad(f"session.head_run_id {head!r} is a delegation sub-run; the head is a "
                       "top-level run.")
        problem = self._path_mismatch(head, n)
        if problem is None:
            return  # the head's path: no append since the latest branch changed it
        # Otherwise appends followed the latest branch, after event p, to run X: every flag
        # after p is true, events and runs before it are on X's path or off it, the head is
        # the newest event's run, and no run after p + 1 jumped away from the head. The
        # earliest such p explains the flags if any does.
        if head != self.runs[self.ev_run[n - 1]]["run_id"]:
            raise _bad(problem)
        p = self.ev_flag.rfind(b"\x00") + 1
        p = max([p, self.jumped - 1] + [r["first_seq"] for r in self.runs if not r["on_path"]])
        if p == 0:
            return  # everything on the path, and no branch left a trace
        if p >= n:
            raise _bad(problem)
        starts = [r for r in self.runs
                  if r["first_seq"] == p + 1 and r["kind"] in ("invocation", "rewind")]
        if starts and starts[0]["run_id"] == self.runs[self.ev_run[p]]["run_id"]:
            target = starts[0]["parent_run_id"]  # the run after the branch continues from it
        else:
            candidates = [j for j, r in enumerate(self.runs)
                          if r["on_path"] and r["kind"] != "delegation" and r["first_seq"] <= p]
            target = (self.runs[max(candidates, key=lambda j: self.depth[j])]["run_id"]
                      if candidates else None)
        if target is not None:
            run = self.runs[self.run_index[target]]
            if run["kind"] != "delegation" and run["first_seq"] <= p and (
                self._path_mismatch(target, p) is None
            ):
                return
        raise _bad(problem)

    def _path_mismatch(self, branch_to: str, upto: int) -> str | None:
        """The first flag that a branch to ``branch_to`` after event ``upto`` (followed by
        appends only) does not explain; None when all agree."""
        runs, index = self.runs, self.run_index
        path: set[str] = set()
        cursor: str | None = branch_to
        while cursor is not None:
            path.add(cursor)
            cursor = runs[index[cursor]]["parent_run_id"]
        in_path = bytes(run["run_id"] in path for run in runs)
        flags = self.ev_flag
        for i in range(min(upto, len(flags))):
            want = in_path[self.ev_run[i]]
            if flags[i] != want:
                run_id = runs[self.ev_run[i]]["run_id"]
                return (f"events[{i}].on_path is {_short(bool(flags[i]))}, but its run "
                        f"{run_id!r} is {'on' if want else 'off'} the path from the first run "
                        f"to the head run {self.session['head_run_id']!r}.")
        for j, run in enumerate(runs):
            if run["first_seq"] > upto:
                want = True
            elif run["first_seq"] == upto and run["kind"] not in _EVENT_RUN_KINDS:
                continue  # recorded before or after the branch: either is right
            else:
                want = run["run_id"] in path or (
                    run["kind"] == "delegation" and run["parent_run_id"] in path
                )
            if run["on_path"] != want:
                return (f"runs[{j}].on_path is {_short(run['on_path'])}, but run "
                        f"{run['run_id']!r} is {'on' if want else 'off'} the path from the "
                        f"first run to the head run {self.session['head_run_id']!r}.")
        return None


# --------------------------------------------------------------------------------------------
# documents in memory


def _import_mapping(
    conn: Connection | None, backend: Backend | None, doc: Any, *, app_name: str | None,
    user_id: str | None, session_id: str | None,
) -> ImportResult:
    if not isinstance(doc, Mapping):
        raise _bad(f"the document must be a JSON object, got {type(doc).__name__}.")
    header = {k: v for k, v in doc.items() if k != "events"}
    job = _Import(conn, backend, header, doc.keys(), app_name=app_name, user_id=user_id,
                  session_id=session_id)
    events = doc["events"]
    if not isinstance(events, list):
        raise _bad("runs and events must be JSON arrays.")
    for item in events:
        job.event(item)
    return job.finish()


def validate_document(doc: Any) -> None:
    """Checks that ``doc`` is a complete, consistent version-1 export (writes nothing).

    Raises:
        InvalidValueError: what is wrong and where (e.g. ``events[3].run_id``).
    """
    _import_mapping(None, None, doc, app_name=None, user_id=None, session_id=None)


def import_session(
    conn: Connection, backend: Backend, doc: Mapping[str, Any], *, app_name: str | None = None,
    user_id: str | None = None, session_id: str | None = None,
) -> ImportResult:
    """Checks and writes a document as a session (call inside one write transaction).

    ``app_name``/``user_id``/``session_id``: where to store it (default: the document's).

    Raises:
        InvalidValueError: the document is not a valid export (the transaction must be
            rolled back: rows may have been written before the problem was found).
        SessionAlreadyExists: the target session id is taken (nothing written).
    """
    return _import_mapping(conn, backend, doc, app_name=app_name, user_id=user_id,
                           session_id=session_id)


# --------------------------------------------------------------------------------------------
# documents in files, read incrementally


class _Refused(Exception):
    """NaN or an infinity literal: JSON has none (raised from inside the decoder)."""


def _refuse_constant(name: str) -> Any:
    raise _Refused(name)


_DECODER = json.JSONDecoder(parse_constant=_refuse_constant)
_WS = re.compile(r"[ \t\n\r]*")


class ImportSource:
    """A seekable file to import from: a path opened here, or the caller's file object."""

    def __init__(self, fh: IO[Any], *, owned: bool, name: str) -> None:
        self.fh, self.owned, self.name = fh, owned, name
        self.start = fh.tell()

    def rewind(self) -> IO[Any]:
        self.fh.seek(self.start)
        return self.fh

    def close(self) -> None:
        if self.owned:
            self.fh.close()


def open_source(source: str | os.PathLike[str] | IO[Any] | ImportSource) -> ImportSource:
    """Opens a path, or wraps a file object (bytes or text; a stream that cannot seek, such as
    stdin, is first copied to a temporary file, in bounded memory).

    Raises:
        InvalidValueError: the path cannot be opened (missing, a directory, no permission).
    """
    if isinstance(source, ImportSource):
        return source
    if isinstance(source, str | os.PathLike):
        name = os.fspath(source)
        try:
            if os.path.isdir(name):
                raise IsADirectoryError(21, "Is a directory")
            return ImportSource(open(name, "rb"), owned=True, name=name)  # noqa: SIM115
        except OSError as exc:
            raise InvalidValueError(
                f"Cannot read the export file {name}: {exc.strerror or exc}. Nothing was "
                "imported."
            ) from exc
    name = str(getattr(source, "name", "<stream>"))
    try:
        seekable = source.seekable()
    except (AttributeError, ValueError, OSError):
        seekable = False
    if seekable:
        return ImportSource(source, owned=False, name=name)
    spool = tempfile.TemporaryFile()  # noqa: SIM115
    try:
        if isinstance(source, io.TextIOBase):
            spool.close()
            spool = tempfile.TemporaryFile("w+", encoding="utf-8", newline="")  # noqa: SIM115
        shutil.copyfileobj(source, spool, 1 << 20)
        spool.seek(0)
    except OSError as exc:
        spool.close()
        raise InvalidValueError(
            f"Cannot read the export from {name}: {exc.strerror or exc}. Nothing was imported."
        ) from exc
    except UnicodeError as exc:
        spool.close()
        raise _bad(f"the file is not UTF-8 text ({exc}).") from None
    return ImportSource(spool, owned=True, name=name)


class _Reader:
    """JSON values one at a time from a file, with a buffer of about one chunk."""

    CHUNK = 1 << 18

    def __init__(self, fh: IO[Any]) -> None:
        self.fh = fh
        self.decoder = codecs.getincrementaldecoder("utf-8-sig")()
        self.text = None  # bytes or text: decided on the first read
        self.buf = ""
        self.pos = 0
        self.eof = False
        self.bytes_read = 0
        self.dropped_lines = 0

    def _more(self, grow: bool = False) -> None:
        """Drops what was consumed and reads a chunk; ``grow``: at least as much again as the
        buffer still holds (a value longer than a chunk takes a few doublings, not a re-read
        per chunk)."""
        if self.pos:
            self.dropped_lines += self.buf.count("\n", 0, self.pos)
            self.buf = self.buf[self.pos:]
            self.pos = 0
        try:
            data = self.fh.read(max(self.CHUNK, len(self.buf)) if grow else self.CHUNK)
        except OSError as exc:
            raise InvalidValueError(
                f"Cannot read the export file: {exc.strerror or exc}. Nothing was imported."
            ) from exc
        except UnicodeError as exc:  # a text stream with undecodable bytes
            raise _bad(f"the file is not UTF-8 text ({exc}).") from None
        if isinstance(data, str):
            if not self.bytes_read and data.startswith("\ufeff"):
                data = data[1:]
            self.bytes_read += len(data)
            text = data
        else:
            try:
                text = self.decoder.decode(data, final=not data)
            except UnicodeDecodeError as exc:
                offset = self.bytes_read + exc.start
                raise _bad(f"the file is not UTF-8 text (byte {offset} cannot be decoded); "
                           "an export is UTF-8 JSON.") from None
            self.bytes_read += len(data)
        if not data:
            self.eof = True
        self.buf += text

    def peek(self) -> str:
        """The next character that is not white space ('' at the end of the file)."""
        while True:
            self.pos = _WS.match(self.buf, self.pos).end()  # type: ignore[union-attr]
            if self.pos < len(self.buf) or self.eof:
                return self.buf[self.pos] if self.pos < len(self.buf) else ""
            self._more()

    def take(self, char: str, where: str) -> None:
        if self.peek() != char:
            raise self.syntax(f"expected {char!r} {where}")
        self.pos += 1

    def where(self, pos: int) -> str:
        line = self.dropped_lines + self.buf.count("\n", 0, pos) + 1
        column = pos - self.buf.rfind("\n", 0, pos)
        return f"line {line} column {column}"

    def syntax(self, what: str, pos: int | None = None) -> InvalidValueError:
        pos = self.pos if pos is None else pos
        if pos >= len(self.buf) and self.eof:
            return _bad(f"the file is not JSON: it ends early, {what} (truncated?).")
        return _bad(f"the file is not JSON: {what} at {self.where(pos)}.")

    def value(self, where: str) -> Any:
        """Decodes the JSON value that starts here (reading on until it is complete)."""
        self.peek()
        while True:
            try:
                value, end = _DECODER.raw_decode(self.buf, self.pos)
            except json.JSONDecodeError as exc:
                unterminated = exc.msg.startswith("Unterminated")
                if not self.eof and (unterminated or exc.pos >= len(self.buf) - 16):
                    self._more(grow=True)  # perhaps only cut off by the end of the buffer
                    continue
                if unterminated or exc.pos >= len(self.buf):
                    raise _bad(f"the file is not JSON: it ends in the middle of {where} "
                               "(truncated?).") from None
                raise self.syntax(f"{exc.msg} (in {where})", exc.pos) from None
            except _Refused as exc:
                raise _bad(f"the file is not JSON: {where} holds {exc.args[0]}, which JSON "
                           f"does not have (near {self.where(self.pos)}).") from None
            except RecursionError:
                raise _bad(f"{where} is nested too deeply to read (more than ~900 levels; an "
                           f"export nests at most {MAX_NESTING}).") from None
            except ValueError as exc:  # an integer of more than 4,300 digits
                raise _bad(f"{where} holds an integer too long to read ({_reason(exc)[:80]}).") \
                    from None
            if end >= len(self.buf) and not self.eof:
                self._more(grow=True)  # a number may go on in the next chunk
                continue
            self.pos = end
            return value


def _items(reader: _Reader) -> Iterable[Any]:
    """The items of the events array, one at a time."""
    if reader.peek() != "[":
        raise _bad("runs and events must be JSON arrays.")
    reader.pos += 1
    if reader.peek() == "]":
        reader.pos += 1
        return
    i = 0
    while True:
        yield reader.value(f"events[{i}]")
        char = reader.peek()
        reader.pos += 1
        if char == "]":
            return
        if char != ",":
            reader.pos -= 1
            raise reader.syntax(f"expected ',' or ']' after events[{i}]")
        i += 1


def _read(
    reader: _Reader, begin: Callable[[dict[str, Any], set[str]], _Import] | None,
    known: dict[str, Any] | None,
) -> tuple[dict[str, Any], bool, _Import | None]:
    """One pass over the document.

    Streams the events into ``begin(header, keys)`` when the header is complete by then
    (``known``: the header of an earlier pass); otherwise only checks that they are JSON.
    Returns the header, whether there were events, and the import (if it began).
    """
    char = reader.peek()
    if char == "":
        raise _bad("the file is empty.")
    if char != "{":
        if char == "[":
            raise _bad("the document must be a JSON object, got list.")
        value = reader.value("the document")
        raise _bad(f"the document must be a JSON object, got {type(value).__name__}.")
    reader.pos += 1
    header: dict[str, Any] = {}
    keys: set[str] = set()
    job: _Import | None = None
    if reader.peek() == "}":
        reader.pos += 1
    else:
        while True:
            if reader.peek() != '"':
                raise reader.syntax("expected a field name in double quotes")
            key = reader.value("a field name")
            reader.take(":", f"after the field name {key!r}")
            if key in keys:
                raise _bad(f"the field {key!r} appears twice.")
            keys.add(key)
            if job is not None and key not in _DOC_KEYS:  # after the streamed events
                raise _bad(f"it has unknown field(s) {key}.")
            if key == "events":
                source = known if known is not None else header
                if begin is not None and _HEADER_KEYS <= source.keys():
                    job = begin(source, set(source) | {"events"})
                    for item in _items(reader):
                        job.event(item)
                else:
                    for _ in _items(reader):
                        pass
            else:
                value = reader.value(key if key in _DOC_KEYS else f"the field {key!r}")
                if known is None:
                    header[key] = value
            char = reader.peek()
            reader.pos += 1
            if char == "}":
                break
            if char != ",":
                reader.pos -= 1
                raise reader.syntax("expected ',' or '}' between the document's fields")
    if reader.peek() != "":
        raise reader.syntax("unexpected data after the end of the document")
    return header, "events" in keys, job


def import_session_file(
    conn: Connection | None, backend: Backend | None,
    source: str | os.PathLike[str] | IO[Any] | ImportSource, *, app_name: str | None = None,
    user_id: str | None = None, session_id: str | None = None,
) -> ImportResult:
    """Imports an export file, reading it incrementally (call inside one write transaction;
    without a connection it only checks the file).

    Raises:
        InvalidValueError: the file is not a valid export, or cannot be read.
        SessionAlreadyExists: the target session id is taken.
    """
    opened = open_source(source)
    try:
        def begin(header: dict[str, Any], keys: set[str]) -> _Import:
            return _Import(conn, backend, header, keys, app_name=app_name, user_id=user_id,
                           session_id=session_id)

        header, has_events, job = _read(_Reader(opened.rewind()), begin, None)
        if job is None:
            # Events before the rest of the document (or none): check the rest, read again.
            _check_header(header, set(header) | ({"events"} if has_events else set()))
            _, _, job = _read(_Reader(opened.rewind()), begin, header)
            assert job is not None
        return job.finish()
    finally:
        if opened is not source:
            opened.close()
