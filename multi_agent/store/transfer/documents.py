"""Importing a document already in memory."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy.engine import Connection

from ..backend import Backend
from .checks import (
    _bad,
)
from .format import (
    ImportResult,
)

# --------------------------------------------------------------------------------------------
# documents in memory


def _import_mapping(
    conn: Connection | None, backend: Backend | None, doc: Any, *, app_name: str | None,
    user_id: str | None, session_id: str | None,
) -> ImportResult:
    if not isinstance(doc, Mapping):
        raise _bad(f"the document must be a JSON object, got {type(doc).__name__}.")
    header = {k: v for k, v in doc.items() if k != "events"}
    from ..trim_import import import_class  # a trimmed session's export (``trim.py``)

    job = import_class(header)(conn, backend, header, doc.keys(), app_name=app_name,
                               user_id=user_id, session_id=session_id)
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
