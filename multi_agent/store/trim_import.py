"""Importing the export of a trimmed session (``trim.py``): the same trimmed session again.

An export of a session whose history a trim cut has runs with the status ``pruned`` (their
events are gone), sequence numbers that start after 1 and may have gaps, and an
``initial_state`` that holds the state the deleted head-path events wrote. The normal import
(``transfer/replay.py``) replays every event from the first, which such a document cannot pass,
so :func:`import_class` gives it :class:`TrimmedImport`, which checks what the kept events can
still prove and stores the rows as the export lists them:

* every field's format, every event as ADK encodes it, each event id once;
* the columns an event alone decides (invocation id, time, source, message type, final, text,
  token counts); the run, target and agent path of an event depend on the events before it,
  which are gone, and are taken as written (they must name runs of the document);
* seq strictly increasing, at most ``last_seq``; ``event_count`` the number of events;
* the cut: the runs that start before the first kept run are exactly the ``pruned`` ones, no
  kept event but one compaction summary lies before it, at most one run is the base;
* ``state`` is ``initial_state`` plus the session deltas of the kept events on the path.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .facts import event_facts
from .runs import PRUNED, PRUNED_BASE_ERROR, is_bookkeeping
from .transfer.checks import _bad, _canon, _check_record, _first_difference, _plain_json, _short
from .transfer.format import _DERIVED_COLUMNS, _EVENT_SPEC, ImportResult
from .transfer.replay import _Import

__all__ = ["TrimmedImport", "import_class", "is_trimmed"]

_OWN_COLUMNS = ("invocation_id", "timestamp", "source", "message_type", "final", "text",
                "prompt_tokens", "completion_tokens", "total_tokens")
"""The derived columns that depend on the event alone."""


def is_trimmed(header: Mapping[str, Any]) -> bool:
    """Whether a document's header is a trimmed session's (a run has the status pruned)."""
    runs = header.get("runs")
    return isinstance(runs, list) and any(
        isinstance(run, Mapping) and run.get("status") == PRUNED for run in runs)


def import_class(header: Mapping[str, Any]) -> type[_Import]:
    """The import job for a document with this header."""
    return TrimmedImport if is_trimmed(header) else _Import


class TrimmedImport(_Import):
    """The import of a trimmed session's export (see the module docstring)."""

    def __init__(self, conn: Any, backend: Any, header: Mapping[str, Any], keys: Any,
                 **targets: Any) -> None:
        runs = header["runs"] if isinstance(header.get("runs"), list) else []
        kept = [r for r in runs if isinstance(r, Mapping) and r.get("status") != PRUNED]
        pruned = [r for r in runs if isinstance(r, Mapping) and r.get("status") == PRUNED]
        # The header checks know the statuses of runs that events start, not pruned: check
        # the header with those as null, write it with them as they are.
        plain = {**header, "runs": [{**r, "status": None} if r in pruned else r for r in runs]}
        super().__init__(None, None, plain, keys, **targets)
        self.runs = runs
        self.conn, self.backend = conn, backend
        self.ids = set() if conn is None else None
        starts = [r["first_seq"] for r in kept]
        self.cut = min(starts) if starts else self.session["last_seq"] + 1
        for i, run in enumerate(runs):
            if (run["status"] == PRUNED) != (run["first_seq"] < self.cut):
                what = "is pruned but starts" if run["status"] == PRUNED else "starts"
                raise _bad(f"runs[{i}] {what} at {run['first_seq']}, and the first kept run "
                           f"at {self.cut}: a trim prunes exactly the runs before it.")
        if sum(r["error"] == PRUNED_BASE_ERROR for r in pruned) > 1:
            raise _bad("more than one run is the base of the kept history.")
        self.prev_seq = 0
        self.summaries = 0
        if conn is not None:
            self._write_header()

    def event(self, item: Any) -> None:
        i = self.count
        where = f"events[{i}]"
        _check_record(where, item, _EVENT_SPEC)
        seq = item["seq"]
        if seq <= self.prev_seq or seq > self.session["last_seq"]:
            raise _bad(f"{where}.seq is {seq}: events are listed by increasing seq, after "
                       f"{self.prev_seq} and at most session.last_seq "
                       f"({self.session['last_seq']}).")
        self.prev_seq = seq
        data = item["event"]
        if not _plain_json(data) or data.get("id") != item["id"]:
            raise _bad(f"{where}.event is not plain JSON, or its id differs from {where}.id.")
        event, stored = self._event(where, data)
        bookkeeping = is_bookkeeping(event)
        run_id = item["run_id"]
        if not bookkeeping:
            j = self.run_index.get(run_id)
            if j is None or self.runs[j]["status"] == PRUNED or self.runs[j]["first_seq"] > seq:
                raise _bad(f"{where}.run_id {run_id!r} is not a kept run of it that started "
                           "by then.")
        if seq < self.cut:
            if not (event.actions and event.actions.compaction) or self.summaries:
                raise _bad(f"{where} (seq {seq}) lies before the first kept run ({self.cut}): "
                           "a trim keeps only the newest compaction summary there.")
            self.summaries += 1
        facts = event_facts(event, last_agent=None)
        own = {
            "invocation_id": event.invocation_id or "", "timestamp": event.timestamp,
            "source": facts.source, "message_type": facts.message_type,
            "final": event.author != "user" and event.is_final_response(), "text": facts.text,
            "prompt_tokens": facts.prompt_tokens, "completion_tokens": facts.completion_tokens,
            "total_tokens": facts.total_tokens,
        }
        for column in _OWN_COLUMNS:
            given, want = item[column], own[column]
            same = (float(given) == want if column == "timestamp"
                    else given == want and type(given) is type(want))
            if not same:
                raise _bad(f"{where}.{column} is {_short(given)}, but its event says "
                           f"{_short(want)}.")
        if item["on_path"]:
            self.state.update(self._session_delta(where, event))
        else:
            self._session_delta(where, event)
        self.count += 1
        from .codec import event_digest

        self._queue({
            **self.key, **{c: item[c] for c in _DERIVED_COLUMNS}, "seq": seq, "id": event.id,
            "on_path": item["on_path"], "event_data": stored, "digest": event_digest(stored),
        }, i)

    def finish(self) -> ImportResult:
        session = self.session
        if session["event_count"] != self.count:
            raise _bad(f"session.event_count is {session['event_count']}, but it holds "
                       f"{self.count} events.")
        if session["head_run_id"] is not None and self.runs[
                self.run_index[session["head_run_id"]]]["status"] == PRUNED:
            raise _bad("session.head_run_id names a pruned run.")
        if _canon(session["state"]) != _canon(self.state):
            differs = _first_difference(session["state"], self.state)
            raise _bad(f"session.state is not its initial_state with the state deltas of the "
                       f"kept events on its path (first difference: state{differs}).")
        self._flush()
        return ImportResult(self.app_name, self.user_id, self.session_id, runs=len(self.runs),
                            events=self.count)
