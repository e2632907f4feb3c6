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

Layout of this package: ``format`` (version, limits, field specs), ``export``, ``checks``
(value checks), ``replay`` (the import: every event replayed as an append), ``documents``
(a document in memory) and ``files`` (a file read incrementally, in bounded memory).
"""

from __future__ import annotations

from .documents import import_session, validate_document
from .export import export_session
from .files import ImportSource, import_session_file, open_source
from .format import FORMAT, MAX_COUNT, VERSION, ImportResult

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
