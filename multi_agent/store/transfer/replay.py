"""The import itself: the header, then every event in seq order, replayed as appends."""

from __future__ import annotations

import time
from array import array
from collections.abc import Iterable, Mapping
from typing import Any

from google.adk.events.event import Event
from pydantic import ValidationError
from pydantic_core import PydanticSerializationError
from sqlalchemy import select
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from ...errors import InvalidValueError, SessionAlreadyExists
from .. import schema as s
from ..backend import Backend
from ..codec import (
    check_event_numbers,
    check_json_value,
    dumps,
    encode_event,
    event_digest,
    loads,
)
from ..facts import event_facts
from ..ops import new_incarnation
from ..runs import RUN_STATUSES, is_bookkeeping
from ..state import split_delta
from .checks import (
    _bad,
    _canon,
    _check_record,
    _check_state,
    _check_value,
    _first_difference,
    _json_problem,
    _lone_surrogate,
    _plain_json,
    _reason,
    _rep,
    _short,
)
from .format import (
    _DERIVED_COLUMNS,
    _DOC_KEYS,
    _EVENT_RUN_KINDS,
    _EVENT_SPEC,
    _JSON_SESSION_COLUMNS,
    _RUN_SPEC,
    _SESSION_COLUMNS,
    _SESSION_SPEC,
    BATCH_CHARS,
    BATCH_ROWS,
    FORMAT,
    RUN_KINDS,
    VERSION,
    ImportResult,
)

# --------------------------------------------------------------------------------------------
# the import itself: header, then events in seq order, then the checks that need them all


def _check_header(header: Mapping[str, Any], keys: Iterable[str]) -> None:
    """Everything but the events: format, version, fields, ids, the session record, the runs."""
    keys = set(keys)
    if header.get("format") != FORMAT:
        raise _bad(f"its format is {_rep(header.get('format'))}, expected {FORMAT!r}.")
    version = header.get("version")
    if version != VERSION or type(version) is not int:  # 1.0 and true are not versions
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
        from ..ids import check_id

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
        self.newest = float(self.session["create_time"])  # the latest time of it seen so far
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
        data = item["event"]
        if not _plain_json(data):
            path, why = _json_problem(data)
            raise _bad(f"{where}.event{path} {why}.")
        if data.get("id") != item["id"]:
            raise _bad(f"{where}.event.id {_short(data.get('id'))} differs from {where}.id "
                       f"{item['id']!r}.")
        event, stored = self._event(where, data)
        # A bookkeeping event (a compaction summary...) belongs to no run: its run id names
        # none, and it follows the run of the event before it on and off the path.
        bookkeeping = is_bookkeeping(event)
        if run_id not in self.run_index and not bookkeeping:
            raise _bad(f"{where}.run_id {run_id!r} is not a run of it.")
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
        # A bookkeeping event follows the run before it when the session is branched, and
        # one appended right after a branch is on the path whatever came before it, so its
        # flag is not checked (the state check still covers its delta): index len(runs).
        self.ev_run.append(len(self.runs) if bookkeeping else self.run_index[run_id])
        self.ev_flag.append(on_path)
        if on_path:
            self.state.update(self._session_delta(where, event))
            if author != "user":  # as branch_session: the agent that will answer next
                self.last_agent = facts.transfer_to or author
        else:
            self._session_delta(where, event)
        self.count += 1
        if derived["timestamp"] > self.newest:
            self.newest = derived["timestamp"]
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
            check_event_numbers(event, stored, strict=True)
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
        if is_bookkeeping(event):
            self._record_transfer(where, seq, event, facts, run_id)
        else:
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

    def _record_transfer(
        self, where: str, seq: int, event: Event, facts: Any, run_id: str
    ) -> None:
        """As ``ops._record_run``: a delegation sub-run for each transfer."""
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

    def _record_run(
        self, where: str, seq: int, event: Event, facts: Any, run_id: str
    ) -> None:
        """As ``ops._record_run``: a delegation sub-run per transfer, a run per invocation."""
        ts = event.timestamp
        self._record_transfer(where, seq, event, facts, run_id)
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
        self._raise_update_time()
        return ImportResult(self.app_name, self.user_id, self.session_id, runs=len(self.runs),
                            events=n)

    def _raise_update_time(self) -> None:
        """The session's update time is at least its creation and every event's time, as an
        append keeps it (files of stores before that rule may hold less): newest-first pages
        and retention (``prune --older-than``) go by it, and a session of today's events
        written with ``update_time: 0`` would count as idle since 1970."""
        given = float(self.session["update_time"])
        if self.conn is None or self.newest <= given:
            return
        ss = s.sessions.c
        self.conn.execute(
            s.sessions.update()
            .where(ss.app_name == self.app_name, ss.user_id == self.user_id,
                   ss.id == self.session_id)
            .values(update_time=self.newest)
        )

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
        if head != self._run_id_of(n - 1):
            raise _bad(problem)
        p = self.ev_flag.rfind(b"\x00") + 1
        p = max([p, self.jumped - 1] + [r["first_seq"] for r in self.runs if not r["on_path"]])
        if p == 0:
            return  # everything on the path, and no branch left a trace
        if p >= n:
            raise _bad(problem)
        starts = [r for r in self.runs
                  if r["first_seq"] == p + 1 and r["kind"] in ("invocation", "rewind")]
        if starts and starts[0]["run_id"] == self._run_id_of(p):
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

    def _run_id_of(self, i: int) -> str | None:
        """The run event ``i`` belongs to; for a bookkeeping event, the run before it."""
        while i >= 0 and self.ev_run[i] == len(self.runs):
            i -= 1
        return self.runs[self.ev_run[i]]["run_id"] if i >= 0 else None

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
            if self.ev_run[i] == len(runs):
                continue  # a bookkeeping event (see ``event``)
            want = in_path[self.ev_run[i]]
            if flags[i] != want:
                run_id = self._run_id_of(i)
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
