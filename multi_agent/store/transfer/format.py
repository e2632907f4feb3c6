"""The export format: version, limits, field specifications."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import Table

from .. import schema as s

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

# Every column of the exported tables is either a field of the document (the specs above; a
# field may carry another name than its column, ``_FIELD_COLUMNS``) or listed here with the
# reason it is not one. ``spec_gaps`` finds a column that is neither: a column added to
# ``schema.py`` without export support (tests/runs/test_export_spec.py fails on it).
_KEY_COLUMNS = {"app_name": "the document's app_name", "user_id": "the document's user_id"}
SESSION_NOT_EXPORTED: dict[str, str] = {
    **_KEY_COLUMNS,
    "incarnation": "an imported session is a new creation: it gets a new incarnation",
    "branch_rev": "revisions of the importing store: restarts at 0",
    "key_revs": "revisions of the importing store: restarts empty",
}
RUN_NOT_EXPORTED: dict[str, str] = {**_KEY_COLUMNS, "session_id": "the session's id"}
EVENT_NOT_EXPORTED: dict[str, str] = {
    **RUN_NOT_EXPORTED,
    "digest": "derived from the stored event JSON when it is imported",
}
_FIELD_COLUMNS = {"event": "event_data"}  # the event's JSON, decoded into the document

EXPORTED_TABLES: tuple[tuple[Table, dict[str, tuple[str, bool]], Mapping[str, str]], ...] = (
    (s.sessions, _SESSION_SPEC, SESSION_NOT_EXPORTED),
    (s.runs, _RUN_SPEC, RUN_NOT_EXPORTED),
    (s.events, _EVENT_SPEC, EVENT_NOT_EXPORTED),
)
"""Each exported table with its document fields and the columns it leaves out."""


def spec_gaps(
    table: Table, spec: Mapping[str, tuple[str, bool]], not_exported: Mapping[str, str]
) -> tuple[set[str], set[str]]:
    """(columns of ``table`` that are neither a field of ``spec`` nor declared not exported,
    fields of ``spec`` that name no column): both empty when export covers the table."""
    columns = {c.name for c in table.c}
    fields = {_FIELD_COLUMNS.get(f, f) for f in spec}
    return columns - fields - set(not_exported), fields - columns


def _columns(table: Table, spec: Mapping[str, tuple[str, bool]], *skip: str) -> tuple[str, ...]:
    """The spec's fields that are plain columns, in the table's column order."""
    return tuple(c.name for c in table.c if c.name in spec and c.name not in skip)


_SESSION_COLUMNS = _columns(s.sessions, _SESSION_SPEC, "id")
_RUN_COLUMNS = _columns(s.runs, _RUN_SPEC)
_EVENT_COLUMNS = _columns(s.events, _EVENT_SPEC)
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
