"""Copying the sessions that ADK's own session services wrote into the store.

ADK 2.13's ``DatabaseSessionService`` (schema 1: JSON ``event_data``) and its
``SqliteSessionService`` (``adk web``'s ``.adk/session.db``) keep the same four tables:
``sessions``, ``events``, ``app_states`` and ``user_states``. A database that holds them is
refused when the store would set itself up beside them (``migrations.ensure_schema``:
``AdkTablesError``): the store does not read ADK's tables, so ADK's sessions would look gone.
:func:`import_adk_sessions` (``multi-agent import-adk``) copies them in once, through the
store's own ``create_session`` and ``append_event``, so every check and the run tree apply:

* each session with the state it was created with (its state less the keys its events wrote)
  and then its events in ADK's order (timestamp); ``temp:`` keys and partial events are not
  stored, as always;
* ``user:``/``app:`` values no event wrote (given to ``create_session``) go with the user's
  (the app's) first session; sessions are copied oldest update first, so where two sessions
  wrote one key the last writer's value is the one kept, as in ADK's table. Any value that
  still differs from ADK's tables is named in the report, not overwritten;
* a session already in the store (same app, user and id) is skipped: the import can be run
  again after an interruption, and copies only what is missing.

ADK's tables are only read. ADK's schema 0 (pickled ``actions``) is refused: it is never
unpickled here; ADK's own migration (``adk migrate session``) turns it into schema 1.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from google.adk.events.event import Event
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection

from ..errors import InvalidValueError
from .state import scope_of

if TYPE_CHECKING:
    from .service import DatabaseSessionService

__all__ = ["ADK_TABLES", "AdkImportReport", "adk_session_count", "import_adk_sessions"]

ADK_TABLES = ("sessions", "events", "app_states", "user_states")


@dataclass
class AdkImportReport:
    """What :func:`import_adk_sessions` did."""

    sessions: int = 0
    events: int = 0
    skipped: int = 0
    """Sessions already in the store (left as they are)."""
    differing: list[str] = field(default_factory=list)
    """``app:``/``user:`` keys whose value in the store differs from ADK's table afterwards."""


def adk_session_count(conn: Connection) -> int:
    """How many sessions ADK's tables hold here (0: none, or no such tables)."""
    tables = set(inspect(conn).get_table_names())
    if not {"sessions", "events"} <= tables:
        return 0
    columns = {c["name"] for c in inspect(conn).get_columns("sessions")}
    if not {"app_name", "user_id", "id", "state"} <= columns:
        return 0  # some other program's "sessions" table
    return int(conn.execute(text("SELECT count(*) FROM sessions")).scalar() or 0)


def _json(value: Any) -> Any:
    if value is None:
        return {}
    if isinstance(value, (bytes, bytearray, memoryview)):
        value = bytes(value).decode("utf-8")
    return json.loads(value) if isinstance(value, str) else value


def _read_adk(conn: Connection) -> dict[str, Any]:
    """ADK's sessions, app and user states, and the scope keys its events wrote."""
    if adk_session_count(conn) == 0:
        return {"sessions": [], "app": {}, "user": {}, "written": set()}
    event_columns = {c["name"] for c in inspect(conn).get_columns("events")}
    if "event_data" not in event_columns:
        raise InvalidValueError(
            "These ADK tables are of ADK's schema 0 (pickled events), which this import does "
            "not read (unpickling is a code-execution risk). Upgrade them with ADK's own "
            "migration first (adk migrate session), then import again.")
    tables = set(inspect(conn).get_table_names())
    sessions = conn.execute(text(
        "SELECT app_name, user_id, id, state, update_time FROM sessions "
        "ORDER BY update_time, app_name, user_id, id")).all()
    app = {row[0]: _json(row[1]) for row in conn.execute(
        text("SELECT app_name, state FROM app_states"))} if "app_states" in tables else {}
    user = {(row[0], row[1]): _json(row[2]) for row in conn.execute(
        text("SELECT app_name, user_id, state FROM user_states"))} if (
        "user_states" in tables) else {}
    written: set[tuple[str, ...]] = set()  # ("app", app, key) / ("user", app, user, key)
    for app_name, user_id, data in conn.execute(
            text("SELECT app_name, user_id, event_data FROM events")):
        delta = ((_json(data).get("actions") or {}).get("state_delta") or {})
        for key in delta:
            scope, bare = scope_of(key)
            if scope == "app":
                written.add(("app", app_name, bare))
            elif scope == "user":
                written.add(("user", app_name, user_id, bare))
    return {"sessions": [tuple(row) for row in sessions], "app": app, "user": user,
            "written": written}


def _events_of(conn: Connection, app_name: str, user_id: str, session_id: str) -> list[str]:
    return [row[0] if isinstance(row[0], str) else json.dumps(row[0]) for row in conn.execute(
        text("SELECT event_data FROM events WHERE app_name = :a AND user_id = :u AND "
             "session_id = :s ORDER BY timestamp, id"),
        {"a": app_name, "u": user_id, "s": session_id})]


async def import_adk_sessions(service: DatabaseSessionService,
                              source_url: str | None = None) -> AdkImportReport:
    """Copies the sessions of ADK's tables (in ``source_url``, default: the service's own
    database) into ``service``; see the module docstring.

    Raises:
        InvalidValueError: ADK's schema 0 tables, or an event the store refuses (it names it).
        DatabaseUnavailableError: either database failed.
    """
    from .backend import open_backend

    service._adk_tables_allowed = True  # (the check that sent the user here)
    await service.prepare()
    source = service.backend if source_url is None else open_backend(source_url, None)
    report = AdkImportReport()
    try:
        adk = await source.run(_read_adk, write=False)
        seen_users: set[tuple[str, str]] = set()
        seen_apps: set[str] = set()
        for app_name, user_id, session_id, state, _update_time in adk["sessions"]:
            if await service.get_session(app_name=app_name, user_id=user_id,
                                         session_id=session_id) is not None:
                report.skipped += 1
                seen_users.add((app_name, user_id))
                seen_apps.add(app_name)
                continue
            raws = await source.run(
                lambda conn, a=app_name, u=user_id, s=session_id: _events_of(conn, a, u, s),
                write=False)
            events = [Event.model_validate_json(raw) for raw in raws]
            written = {key for event in events for key in (
                (event.actions.state_delta if event.actions else None) or {})}
            initial = {k: v for k, v in _json(state).items() if k not in written}
            if (app_name, user_id) not in seen_users:
                initial.update({f"user:{k}": v for k, v in
                                adk["user"].get((app_name, user_id), {}).items()
                                if ("user", app_name, user_id, k) not in adk["written"]})
            if app_name not in seen_apps:
                initial.update({f"app:{k}": v for k, v in adk["app"].get(app_name, {}).items()
                                if ("app", app_name, k) not in adk["written"]})
            seen_users.add((app_name, user_id))
            seen_apps.add(app_name)
            session = await service.create_session(app_name=app_name, user_id=user_id,
                                                   session_id=session_id, state=initial)
            for event in events:
                if not event.partial:
                    await service.append_event(session, event)
                    report.events += 1
            report.sessions += 1
        report.differing = await _differing(service, adk)
    finally:
        if source is not service.backend:
            await source.close()
    return report


async def _differing(service: DatabaseSessionService, adk: dict[str, Any]) -> list[str]:
    """The ``app:``/``user:`` keys whose stored value is not ADK's."""
    out: list[str] = []
    users: dict[str, set[str]] = defaultdict(set)
    for app_name, user_id, *_rest in adk["sessions"]:
        users[app_name].add(user_id)
    for app_name, user_ids in users.items():
        for user_id in sorted(user_ids):
            ours = await service.get_user_state(app_name=app_name, user_id=user_id)
            for key, value in adk["user"].get((app_name, user_id), {}).items():
                if ours.get(key, None) != value:
                    out.append(f"{app_name}/{user_id}: user:{key}")
        app_state = await service.get_app_state(app_name=app_name)
        for key, value in adk["app"].get(app_name, {}).items():
            if app_state.get(key, None) != value:
                out.append(f"{app_name}: app:{key}")
    return out
