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
revision are kept).

Not exported: ``app:`` and ``user:`` state. They belong to the app and the user, are shared by
all their sessions, and are not part of any one session's history; importing never touches
them.

Import validates the whole document before writing (wrong ``format``/``version``, missing or
unknown fields, wrong types, runs or events that refer to runs the document lacks, events that
are not ADK events) and raises :class:`~multi_agent.errors.InvalidValueError` with the exact
place; it writes everything in one transaction, or nothing.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from google.adk.events.event import Event
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from ..errors import InvalidIdError, InvalidValueError, SessionAlreadyExists
from . import schema as s
from .backend import Backend
from .codec import dumps, loads
from .facts import MESSAGE_TYPES
from .ops import new_incarnation

__all__ = [
    "FORMAT",
    "VERSION",
    "ImportResult",
    "export_session",
    "import_session",
    "validate_document",
]

FORMAT = "multi-agent-session"
"""The ``format`` value of every export document."""

VERSION = 1
"""The document version this code writes and reads."""

RUN_KINDS = ("invocation", "delegation", "agent_tool", "rewind", "branch")

# field -> (kind, nullable). Kinds: id (an id the store accepts), str, short (<= 16 chars),
# path (<= 1024 chars), key (<= 256 chars, may be empty), int, num, bool, object (JSON
# object), type (message type).
_SESSION_SPEC: dict[str, tuple[str, bool]] = {
    "id": ("id", False), "state": ("object", False), "initial_state": ("object", False),
    "create_time": ("num", False), "update_time": ("num", False), "revision": ("int", False),
    "last_seq": ("int", False), "event_count": ("int", False), "head_run_id": ("id", True),
    "last_agent": ("id", True), "awaiting_seq": ("int", True),
    "agent_paths": ("object", False),
}
_RUN_SPEC: dict[str, tuple[str, bool]] = {
    "run_id": ("id", False), "parent_run_id": ("id", True), "kind": ("short", False),
    "agent": ("id", True), "started_at": ("num", False), "first_seq": ("int", False),
    "status": ("short", True), "error": ("str", True), "on_path": ("bool", False),
}
_EVENT_SPEC: dict[str, tuple[str, bool]] = {
    "seq": ("int", False), "id": ("id", False), "invocation_id": ("key", False),
    "run_id": ("id", False), "timestamp": ("num", False), "source": ("id", False),
    "target": ("id", True), "branch": ("path", True), "message_type": ("type", False),
    "final": ("bool", False), "text": ("str", True), "prompt_tokens": ("int", True),
    "completion_tokens": ("int", True), "total_tokens": ("int", True),
    "on_path": ("bool", False), "event": ("object", False),
}
_DOC_KEYS = ("format", "version", "app_name", "user_id", "session", "runs", "events")

_SESSION_COLUMNS = tuple(k for k in _SESSION_SPEC if k != "id")
_RUN_COLUMNS = tuple(_RUN_SPEC)
_EVENT_COLUMNS = tuple(k for k in _EVENT_SPEC if k != "event")
_JSON_SESSION_COLUMNS = ("state", "initial_state", "agent_paths")


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
        elif kind == "int":
            record[key] = int(value)
        elif kind == "num":
            record[key] = float(value)
    return record


# --------------------------------------------------------------------------------------------
# validation


def _bad(detail: str) -> InvalidValueError:
    return InvalidValueError(
        f"Not a valid multi-agent session export: {detail} Nothing was imported."
    )


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
        limit = {"short": 16, "path": 1024, "key": s.ID_LENGTH}.get(kind)
        if limit is not None and len(value) > limit:
            raise _bad(f"{where} is longer than {limit} characters.")
        if kind == "type" and value not in MESSAGE_TYPES:
            raise _bad(f"{where} is {value!r}; expected one of {', '.join(MESSAGE_TYPES)}.")
    elif kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise _bad(f"{where} must be an integer, got {value!r}.")
        if value < 0:
            raise _bad(f"{where} must not be negative, got {value}.")
    elif kind == "num":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _bad(f"{where} must be a number, got {value!r}.")
        if not math.isfinite(value):
            raise _bad(f"{where} must be a finite number, got {value!r}.")
    elif kind == "bool":
        if not isinstance(value, bool):
            raise _bad(f"{where} must be true or false, got {value!r}.")
    elif kind == "object" and not isinstance(value, dict):
        raise _bad(f"{where} must be a JSON object, got {type(value).__name__}.")


def _check_record(where: str, record: Any, spec: dict[str, tuple[str, bool]]) -> None:
    if not isinstance(record, dict):
        raise _bad(f"{where} must be a JSON object, got {type(record).__name__}.")
    missing = [k for k in spec if k not in record]
    if missing:
        raise _bad(f"{where} lacks {', '.join(missing)}.")
    unknown = sorted(set(record) - set(spec))
    if unknown:
        raise _bad(f"{where} has unknown field(s) {', '.join(unknown)}.")
    for key, (kind, nullable) in spec.items():
        value = record[key]
        if value is None:
            if not nullable:
                raise _bad(f"{where}.{key} must not be null.")
            continue
        _check_value(f"{where}.{key}", kind, value)


def validate_document(doc: Any) -> None:
    """Checks that ``doc`` is a complete, consistent version-1 export.

    Raises:
        InvalidValueError: what is wrong and where (e.g. ``events[3].run_id``).
    """
    if not isinstance(doc, Mapping):
        raise _bad(f"the document must be a JSON object, got {type(doc).__name__}.")
    if doc.get("format") != FORMAT:
        raise _bad(f"its format is {doc.get('format')!r}, expected {FORMAT!r}.")
    version = doc.get("version")
    if version != VERSION or isinstance(version, bool):
        newer = isinstance(version, int) and not isinstance(version, bool) and version > VERSION
        hint = " It was written by a newer multi-agent; upgrade to import it." if newer else ""
        raise _bad(f"its version is {version!r}; this multi-agent reads version {VERSION}.{hint}")
    missing = [k for k in _DOC_KEYS if k not in doc]
    if missing:
        raise _bad(f"it lacks {', '.join(missing)}.")
    unknown = sorted(set(doc) - set(_DOC_KEYS))
    if unknown:
        raise _bad(f"it has unknown field(s) {', '.join(unknown)}.")
    _check_value("app_name", "id", doc["app_name"])
    _check_value("user_id", "id", doc["user_id"])
    session = doc["session"]
    _check_record("session", session, _SESSION_SPEC)
    for key in _JSON_SESSION_COLUMNS:
        try:
            dumps(session[key])
        except (TypeError, ValueError) as exc:
            raise _bad(f"session.{key} is not strict JSON ({exc}).") from None
    runs, events = doc["runs"], doc["events"]
    if not isinstance(runs, list) or not isinstance(events, list):
        raise _bad("runs and events must be JSON arrays.")
    run_ids: set[str] = set()
    for i, run in enumerate(runs):
        _check_record(f"runs[{i}]", run, _RUN_SPEC)
        if run["kind"] not in RUN_KINDS:
            kinds = ", ".join(RUN_KINDS)
            raise _bad(f"runs[{i}].kind is {run['kind']!r}; expected one of {kinds}.")
        if run["run_id"] in run_ids:
            raise _bad(f"runs[{i}].run_id {run['run_id']!r} appears twice.")
        run_ids.add(run["run_id"])
    for i, run in enumerate(runs):
        if run["parent_run_id"] is not None and run["parent_run_id"] not in run_ids:
            raise _bad(f"runs[{i}].parent_run_id {run['parent_run_id']!r} is not a run of it.")
    if session["head_run_id"] is not None and session["head_run_id"] not in run_ids:
        raise _bad(f"session.head_run_id {session['head_run_id']!r} is not a run of it.")
    seqs: set[int] = set()
    ids: set[str] = set()
    for i, ev in enumerate(events):
        where = f"events[{i}]"
        _check_record(where, ev, _EVENT_SPEC)
        if ev["seq"] < 1 or ev["seq"] in seqs or ev["seq"] > session["last_seq"]:
            raise _bad(
                f"{where}.seq {ev['seq']} is a duplicate or outside 1..session.last_seq "
                f"({session['last_seq']})."
            )
        if ev["id"] in ids:
            raise _bad(f"{where}.id {ev['id']!r} appears twice.")
        if ev["run_id"] not in run_ids:
            raise _bad(f"{where}.run_id {ev['run_id']!r} is not a run of it.")
        seqs.add(ev["seq"])
        ids.add(ev["id"])
        _check_event(where, ev)


def _check_event(where: str, ev: dict[str, Any]) -> None:
    """The ``event`` object must be an ADK Event that agrees with the row's columns."""
    data = ev["event"]
    try:
        event = Event.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first.get("loc", ())) or "(root)"
        raise _bad(f"{where}.event is not an ADK event: {loc}: {first.get('msg')}.") from None
    if data.get("id") != ev["id"]:
        raise _bad(f"{where}.event.id {data.get('id')!r} differs from {where}.id {ev['id']!r}.")
    if (event.invocation_id or "") != ev["invocation_id"]:
        raise _bad(f"{where}.event.invocation_id differs from {where}.invocation_id.")
    try:
        dumps(data)
    except (TypeError, ValueError) as exc:
        raise _bad(f"{where}.event is not strict JSON ({exc}).") from None


# --------------------------------------------------------------------------------------------
# import


def import_session(
    conn: Connection, backend: Backend, doc: Mapping[str, Any], *, app_name: str, user_id: str,
    session_id: str,
) -> ImportResult:
    """Writes a validated document as session ``session_id`` (call inside one write transaction).

    Raises:
        SessionAlreadyExists: the target session id is taken (nothing written).
    """
    ss = s.sessions.c
    exists = conn.execute(
        select(ss.revision).where(
            ss.app_name == app_name, ss.user_id == user_id, ss.id == session_id
        )
    ).first()
    if exists is not None:
        raise SessionAlreadyExists(app_name, user_id, session_id)
    now = time.time()
    backend.ensure_app_row(conn, app_name=app_name, now=now)
    backend.ensure_user_row(conn, app_name=app_name, user_id=user_id, now=now)
    key = {"app_name": app_name, "user_id": user_id}
    session = doc["session"]
    values = {k: session[k] for k in _SESSION_COLUMNS}
    for name in _JSON_SESSION_COLUMNS:
        values[name] = dumps(session[name])
    try:
        conn.execute(
            s.sessions.insert().values(
                **key, id=session_id, incarnation=new_incarnation(), **values
            )
        )
    except IntegrityError as exc:  # created by another process since the check above
        raise SessionAlreadyExists(app_name, user_id, session_id) from exc
    runs = [{**key, "session_id": session_id, **run} for run in doc["runs"]]
    if runs:
        conn.execute(s.runs.insert(), runs)
    events = [
        {
            **key, "session_id": session_id, **{k: ev[k] for k in _EVENT_COLUMNS},
            "event_data": dumps(ev["event"]),
        }
        for ev in sorted(doc["events"], key=lambda ev: ev["seq"])
    ]
    if events:
        conn.execute(s.events.insert(), events)
    return ImportResult(app_name, user_id, session_id, runs=len(runs), events=len(events))
