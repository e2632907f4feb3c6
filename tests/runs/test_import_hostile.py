"""Import trusts nothing in the file (issue "No lost update at any scope", item 9).

Every column must be what appending the events gives; counters, state values and events must
be ones append would accept; hostile files give one clear error, never a traceback; a large
file is read in bounded memory. Each refusal writes nothing.
"""

from __future__ import annotations

import copy
import io
import json
import os
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from google.adk.events.event import Event
from google.adk.events.event_actions import EventActions
from google.adk.sessions.base_session_service import GetSessionConfig
from google.genai import types

from multi_agent import DatabaseSessionService
from multi_agent.errors import InvalidValueError
from multi_agent.store import transfer
from multi_agent.store.codec import encode_event
from tests.runs._scenario import USER, Scenario, three_turns_branch_fourth

# Positions in the scripted conversation's export (tests/runs/_scenario.py): turn 1 is
# events 0-5 (human, coordinator's transfer call and its result, the worker's tool call and
# result, the worker's final reply), turns 2 and 3 (events 6-13) are off the path since the
# branch, turn 4 is events 14-17. runs: turn 1, worker@3 (delegation), turns 2, 3, 4.
HUMAN1, CALL, TRANSFER, TOOL_RESULT, REPLY, HUMAN2, HUMAN4 = 0, 1, 2, 4, 5, 6, 14


async def scenario_export(store: DatabaseSessionService, app_name: str) -> tuple[Scenario, dict]:
    sc = await three_turns_branch_fourth(store, app_name)
    doc = await store.export_session(app_name=app_name, user_id=USER, session_id="s1")
    assert doc is not None
    return sc, doc


async def assert_refused(
    store: DatabaseSessionService, app_name: str, doc: Any, fragment: str, name: str = ""
) -> str:
    """The import raises a one-line InvalidValueError naming ``fragment``, writing nothing."""
    with pytest.raises(InvalidValueError) as info:
        await store.import_session(doc, session_id="copy")
    message = str(info.value)
    assert fragment in message, (name, message)
    assert message.startswith("Not a valid multi-agent session export: "), (name, message)
    assert message.endswith("Nothing was imported.") and "\n" not in message, (name, message)
    await assert_nothing_imported(store, app_name, name)
    return message


async def assert_nothing_imported(store: DatabaseSessionService, app_name: str, name: str = ""):
    listed = await store.list_sessions(app_name=app_name)
    assert [(s.user_id, s.id) for s in listed.sessions] == [(USER, "s1")], name
    assert await store.list_runs(app_name=app_name, user_id=USER, session_id="copy") == [], name
    assert await store.query_messages(
        app_name=app_name, user_id=USER, session_id="copy", on_path_only=False
    ) == [], name


def setter(*path: Any, value: Any = None, fn: Callable[[Any], Any] | None = None):
    """Sets (or transforms with ``fn``) the value at ``path`` in the document."""

    def apply(doc: dict) -> None:
        target = doc
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = fn(target[path[-1]]) if fn is not None else value

    return apply


def both(*changes: Callable[[dict], None]) -> Callable[[dict], None]:
    def apply(doc: dict) -> None:
        for change in changes:
            change(doc)

    return apply


def deep(levels: int) -> Any:
    value: Any = 1
    for _ in range(levels):
        value = [value]
    return value


# --------------------------------------------------------------------------------------------
# 1. columns and session fields that disagree with the events


def _lies(sc: Scenario) -> list[tuple[str, Callable[[dict], None], str]]:
    t1, t2, t3, t4 = sc.turns

    def all_on_path(doc: dict) -> None:
        for item in doc["events"] + doc["runs"]:
            item["on_path"] = True

    def same_id(doc: dict) -> None:
        first = doc["events"][HUMAN2]["id"]
        doc["events"][HUMAN2 + 1]["id"] = first
        doc["events"][HUMAN2 + 1]["event"]["id"] = first

    def extra_run(kind: str, first_seq: int) -> Callable[[dict], None]:
        def apply(doc: dict) -> None:
            doc["runs"].append({**doc["runs"][0], "run_id": "extra", "kind": kind,
                                "parent_run_id": t1, "first_seq": first_seq})
        return apply

    ev = "events"
    return [
        ("timestamp", setter(ev, REPLY, "timestamp", fn=lambda t: t + 3600),
         f"events[{REPLY}].timestamp"),
        ("invocation_id", both(setter(ev, CALL, "invocation_id", value=t4),
                               setter(ev, CALL, "run_id", value=t4)),
         f"events[{CALL}].invocation_id"),
        ("run_id", setter(ev, CALL, "run_id", value=t4), f"events[{CALL}].run_id"),
        ("source", setter(ev, REPLY, "source", value="coordinator"), f"events[{REPLY}].source"),
        ("target", setter(ev, REPLY, "target", value="coordinator"), f"events[{REPLY}].target"),
        ("call_target", setter(ev, CALL, "target", value="somebody"), f"events[{CALL}].target"),
        ("human_target", setter(ev, HUMAN1, "target", value="worker"),
         f"events[{HUMAN1}].target is 'worker', but the agent that answered it is "
         "'coordinator'"),
        ("branch", setter(ev, 3, "branch", value="worker"), "events[3].branch"),
        ("message_type", setter(ev, REPLY, "message_type", value="system"),
         f"events[{REPLY}].message_type"),
        ("final", setter(ev, REPLY, "final", value=False), f"events[{REPLY}].final"),
        ("text", setter(ev, HUMAN1, "text", value="uno"), f"events[{HUMAN1}].text"),
        ("tokens", setter(ev, CALL, "prompt_tokens", value=11), f"events[{CALL}].prompt_tokens"),
        ("tokens_null", setter(ev, CALL, "total_tokens", value=None),
         f"events[{CALL}].total_tokens"),
        ("event_rewritten", setter(ev, REPLY, "event", "content", "parts", 0, "text",
                                   value="Changed."), f"events[{REPLY}].text"),
        ("event_coerced", setter(ev, REPLY, "event", "timestamp", fn=str),
         f"events[{REPLY}].event.timestamp does not survive"),
        ("event_on_path", setter(ev, HUMAN2, "on_path", value=True),
         f"events[{HUMAN2}].on_path is true, but its run"),
        ("run_on_path", setter("runs", 2, "on_path", value=True), "runs[2].on_path is true"),
        ("all_on_path", all_on_path, f"events[{HUMAN2}].on_path"),
        ("head", setter("session", "head_run_id", value=t2), "on_path"),
        ("run_parent", setter("runs", 4, "parent_run_id", value=t3), "on_path"),
        ("state_value", setter("session", "state", "notes", value=5), "session.state"),
        ("state_type", setter("session", "state", "notes", value=2.0), "session.state"),
        ("state_extra", setter("session", "state", "extra", value=1), "session.state"),
        ("initial_state", setter("session", "initial_state", "topic", value="x"),
         "session.state"),
        ("last_seq", setter("session", "last_seq", value=19), "session.last_seq is 19"),
        ("event_count", setter("session", "event_count", value=17), "session.event_count"),
        ("last_agent", setter("session", "last_agent", value="coordinator"),
         "session.last_agent"),
        ("agent_paths", setter("session", "agent_paths", "worker", value="worker"),
         "session.agent_paths"),
        ("awaiting_seq", setter("session", "awaiting_seq", value=HUMAN4 + 1),
         "session.awaiting_seq"),
        ("run_first_seq", setter("runs", 2, "first_seq", value=8), "runs[2].first_seq"),
        ("run_started_at", setter("runs", 2, "started_at", fn=lambda t: t + 1),
         "runs[2].started_at"),
        ("run_agent", setter("runs", 0, "agent", value="worker"), "runs[0].agent"),
        ("run_kind", setter("runs", 2, "kind", value="rewind"), "runs[2].kind"),
        ("delegation_missing", lambda d: d["runs"].pop(1),
         f"events[{TRANSFER}] hands over to 'worker'"),
        ("delegation_unstarted", extra_run("delegation", 4), "no event starts it"),
        ("sub_run_after_the_end", extra_run("agent_tool", 99), "after the last event"),
        ("seq_gap", setter(ev, 3, "seq", value=5), "events[3].seq is 5; expected 4"),
        ("duplicate_event_id", same_id, f"events[{HUMAN2 + 1}].id"),
        ("empty_event_id", both(setter(ev, 0, "id", value=""), setter(ev, 0, "event", "id",
                                                                         value="")),
         "events[0].id must not be empty"),
        ("nul_run_id", setter("runs", 0, "run_id", value="a\x00b"), "NUL"),
        ("long_event_id", setter(ev, 0, "id", value="x" * 300), "events[0].id is 300"),
    ]


async def test_columns_must_be_what_the_events_say(
    store: DatabaseSessionService, app_name: str
) -> None:
    sc, doc = await scenario_export(store, app_name)
    for name, mutate, fragment in _lies(sc):
        bad = copy.deepcopy(doc)
        mutate(bad)
        await assert_refused(store, app_name, bad, fragment, name)
    # The document as exported still imports, and reads exactly like the original.
    await store.import_session(copy.deepcopy(doc), session_id="copy")
    key = {"app_name": app_name, "user_id": USER}
    after = doc["events"][HUMAN4]["timestamp"]
    for config in (None, GetSessionConfig(after_timestamp=after),
                   GetSessionConfig(num_recent_events=3)):
        orig = await store.get_session(**key, session_id="s1", config=config)
        dup = await store.get_session(**key, session_id="copy", config=config)
        assert dup.events == orig.events and dup.state == orig.state
    for query in ({"target": "worker"}, {"source": "coordinator"}, {"message_type": "human"},
                  {"since": after}):
        got = [(m.seq, m.source, m.target, m.text) for m in
               await store.query_messages(**key, session_id="copy", **query)]
        want = [(m.seq, m.source, m.target, m.text) for m in
                await store.query_messages(**key, session_id="s1", **query)]
        assert got == want and got, query


async def test_a_retry_of_an_imported_event_is_a_no_op(
    store: DatabaseSessionService, app_name: str
) -> None:
    """The stored digest is computed from the stored event, so ADK's retry still matches."""
    _, doc = await scenario_export(store, app_name)
    await store.import_session(copy.deepcopy(doc), session_id="copy")
    key = {"app_name": app_name, "user_id": USER}
    orig = await store.get_session(**key, session_id="s1")
    dup = await store.get_session(**key, session_id="copy")
    await store.append_event(dup, orig.events[-1])  # already stored: nothing happens
    again = await store.export_session(**key, session_id="copy")
    assert again == {**doc, "session": {**doc["session"], "id": "copy"}}


# --------------------------------------------------------------------------------------------
# 2. counters the store could not go on incrementing


async def test_counters_are_bounded(store: DatabaseSessionService, app_name: str) -> None:
    _, doc = await scenario_export(store, app_name)
    cases = [
        ("revision", setter("session", "revision", value=2**63 - 1), "session.revision is"),
        ("revision_2_53", setter("session", "revision", value=2**53), "at most 2**53 - 1"),
        ("last_seq", setter("session", "last_seq", value=2**64), "session.last_seq is"),
        ("awaiting", setter("session", "awaiting_seq", value=2**70), "session.awaiting_seq"),
        ("first_seq", setter("runs", 0, "first_seq", value=2**60), "runs[0].first_seq"),
        ("seq", setter("events", 0, "seq", value=2**63), "events[0].seq"),
        ("tokens", setter("events", CALL, "prompt_tokens", value=2**31),
         f"events[{CALL}].prompt_tokens is 2147483648"),
        ("huge", setter("session", "revision", value=10**1000), "an integer of"),
    ]
    for name, mutate, fragment in cases:
        bad = copy.deepcopy(doc)
        mutate(bad)
        await assert_refused(store, app_name, bad, fragment, name)
    # The largest revision accepted can still be incremented by appends.
    top = copy.deepcopy(doc)
    top["session"]["revision"] = transfer.MAX_COUNT
    await store.import_session(top, session_id="copy")
    key = {"app_name": app_name, "user_id": USER, "session_id": "copy"}
    got = await store.get_session(**key)
    await store.append_event(got, Event(author="user", invocation_id="next", content=types.Content(
        role="user", parts=[types.Part(text="more")])))
    assert (await store.export_session(**key))["session"]["revision"] == transfer.MAX_COUNT + 1


# --------------------------------------------------------------------------------------------
# 3. values append would refuse


async def test_values_append_refuses_are_refused(
    store: DatabaseSessionService, app_name: str
) -> None:
    _, doc = await scenario_export(store, app_name)
    delta = ("events", TOOL_RESULT, "event", "actions", "state_delta")
    cases = [
        ("state_150_deep", setter("session", "state", "notes", value=deep(150)),
         "session.state: State value 'notes' is nested deeper than 100 levels"),
        ("initial_150_deep", setter("session", "initial_state", "topic", value=deep(150)),
         "session.initial_state: State value 'topic' is nested deeper"),
        ("delta_150_deep", setter(*delta, "notes", value=deep(150)),
         f"events[{TOOL_RESULT}].event.actions.state_delta: State value 'notes' is nested"),
        ("metadata_150_deep", setter("events", REPLY, "event", "custom_metadata",
                                     value={"x": deep(150)}),
         f"events[{REPLY}].event: State value 'custom_metadata' is nested deeper"),
        ("event_600_deep", setter("events", REPLY, "event", "custom_metadata",
                                  value={"x": deep(600)}),
         f"events[{REPLY}].event.custom_metadata.x"),
        ("state_surrogate", setter("session", "state", "notes", value="\ud800"),
         "lone surrogate"),
        ("state_key_surrogate", setter("session", "state", "\udfff", value=1),
         "lone surrogate"),
        ("event_surrogate", setter("events", REPLY, "event", "content", "parts", 0, "text",
                                   value="bad \ud800"),
         f"events[{REPLY}].event.content.parts[0].text holds a lone surrogate"),
        ("state_huge_int", setter("session", "state", "notes", value=10**5000), "bits"),
        ("state_nan", setter("session", "state", "notes", value=float("nan")), "nan"),
        ("time_inf", setter("session", "create_time", value=float("inf")),
         "session.create_time must be a finite number"),
        # finite, but no date: every listing that showed them failed (found probing the CLI)
        ("create_1e300", setter("session", "create_time", value=1e300),
         "session.create_time is 1e+300; a time must lie between the years 1 and 9999"),
        ("update_1e20", setter("session", "update_time", value=1e20),
         "session.update_time is 1e+20; a time must lie"),
        ("run_start_minus_1e12", setter("runs", 0, "started_at", value=-1e12),
         "runs[0].started_at is -1000000000000.0; a time must lie"),
        ("event_time_1e300", both(setter("events", REPLY, "timestamp", value=1e300),
                                  setter("events", REPLY, "event", "timestamp", value=1e300)),
         f"events[{REPLY}].timestamp is 1e+300; a time must lie"),
        ("event_nan", setter("events", REPLY, "event", "custom_metadata",
                             value={"x": float("nan")}),
         f"events[{REPLY}].event.custom_metadata.x"),
        ("event_set", setter("events", REPLY, "event", "custom_metadata", value={"x": {1}}),
         "is a set, which is not JSON"),
        ("scoped_state", setter("session", "state", "app:x", value=1),
         "app:, user: and temp: keys are never part of a session's own state"),
        ("temp_delta", setter(*delta, "temp:scratch", value=1), "temp: state is never stored"),
        ("agent_path_type", setter("session", "agent_paths", "worker", value=5),
         "session.agent_paths.worker must be an agent path"),
    ]
    for name, mutate, fragment in cases:
        bad = copy.deepcopy(doc)
        mutate(bad)
        await assert_refused(store, app_name, bad, fragment, name)


# --------------------------------------------------------------------------------------------
# realistic sessions round trip, from a dict and from a file, in any key order


async def _sessions_of_every_shape(store: DatabaseSessionService, app_name: str) -> list[str]:
    """Sessions whose exports exercise every derivation; returns their ids."""
    key = {"app_name": app_name, "user_id": USER}
    sc = await three_turns_branch_fourth(store, app_name, session_id="tree")
    # Ends with a branch: the head is an old run, later ones are off the path.
    ended = await three_turns_branch_fourth(store, app_name, session_id="ended")
    await store.branch(**key, session_id="ended", from_run_id=ended.turns[1])
    # Events without an invocation id share run "-" and return to it after other runs; a
    # branch, then more of both.
    s = await store.create_session(**key, session_id="dash", state={"n": 2**100})

    def ev(text: str, inv: str = "", author: str = "user", **kw: Any) -> Event:
        return Event(invocation_id=inv, author=author, content=types.Content(
            role="user" if author == "user" else "model", parts=[types.Part(text=text)]), **kw)

    for event in (ev("a"), ev("b", "x"), ev("c", "x", "helper"), ev("d"),
                  ev("e", author="helper", actions=EventActions(state_delta={"k": [1, "é"]}))):
        await store.append_event(s, event)
    await store.branch(**key, session_id="dash", from_run_id="-")
    s = await store.get_session(**key, session_id="dash")
    for event in (ev("f", "y"), ev("g\x00 ✓ 😀", "y", "helper"), ev("h"), ev("waiting")):
        await store.append_event(s, event)
    # An AgentTool sub-run with an outcome, and a session created with no events at all.
    await store.add_sub_run(**key, session_id="tree", run_id="tool@1",
                            parent_run_id=sc.turns[3], kind="agent_tool", agent="helper")
    await store.set_run_status(**key, session_id="tree", run_id="tool@1", status="completed")
    await store.create_session(**key, session_id="empty", state={"big": -(2**200)})
    return ["tree", "ended", "dash", "empty"]


async def test_real_exports_round_trip_exactly(
    store: DatabaseSessionService, app_name: str, tmp_path: Path
) -> None:
    key = {"app_name": app_name, "user_id": USER}
    for sid in await _sessions_of_every_shape(store, app_name):
        doc = await store.export_session(**key, session_id=sid)
        text = json.dumps(doc, indent=2, ensure_ascii=False, allow_nan=False)
        reversed_doc = dict(reversed(list(doc.items())))  # events before the session
        path = tmp_path / f"{sid}.json"
        rpath = tmp_path / f"{sid}-reversed.json"
        path.write_text(text, encoding="utf-8")
        rpath.write_text(json.dumps(reversed_doc), encoding="utf-8")
        transfer.validate_document(doc)
        imports: dict[str, Callable[[str], Any]] = {
            f"{sid}-dict": lambda new, doc=doc: store.import_session(
                copy.deepcopy(doc), session_id=new),
            f"{sid}-path": lambda new, path=path: store.import_session_file(
                path, session_id=new),
            f"{sid}-reversed": lambda new, rpath=rpath: store.import_session_file(
                str(rpath), session_id=new),
            f"{sid}-text": lambda new, path=path: import_text_file(store, path, new),
            f"{sid}-stream": lambda new, text=text: store.import_session_file(
                OneWay(text.encode()), session_id=new),
        }
        for new, run in imports.items():
            result = await run(new)
            assert (result.session_id, result.events) == (new, len(doc["events"]))
            again = await store.export_session(**key, session_id=new)
            assert again == {**doc, "session": {**doc["session"], "id": new}}, new
            orig = await store.get_session(**key, session_id=sid)
            dup = await store.get_session(**key, session_id=new)
            assert dup.events == orig.events and dup.state == orig.state, new
            assert await store.list_runs(**key, session_id=new) == (
                await store.list_runs(**key, session_id=sid)
            ), new


async def import_text_file(store: DatabaseSessionService, path: Path, new: str) -> Any:
    with open(path, encoding="utf-8") as fh:  # noqa: ASYNC230 (a text-mode file object)
        return await store.import_session_file(fh, session_id=new)


class OneWay(io.RawIOBase):
    """A stream that cannot seek (like stdin)."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        return self._data.readinto(buffer)


async def test_duplicate_ids_across_batches(
    store: DatabaseSessionService, app_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, doc = await scenario_export(store, app_name)
    monkeypatch.setattr(transfer.replay, "BATCH_ROWS", 2)
    bad = copy.deepcopy(doc)
    first = bad["events"][1]["id"]
    bad["events"][9]["id"] = bad["events"][9]["event"]["id"] = first
    await assert_refused(store, app_name, bad, f"events[9].id {first!r} appears twice (also "
                         "events[1])")
    with pytest.raises(InvalidValueError, match="appears twice"):
        transfer.validate_document(bad)
    await store.import_session(copy.deepcopy(doc), session_id="copy")  # small batches work


# --------------------------------------------------------------------------------------------
# 4. hostile files: the library and the real command line


def _hostile_files(tmp_path: Path, doc: dict) -> list[tuple[str, Path, str]]:
    """(name, file, fragment of the one-line error)."""
    text = json.dumps(doc, indent=2, ensure_ascii=False)
    out: list[tuple[str, Path, str]] = []

    def add(name: str, content: str | bytes, fragment: str) -> None:
        path = tmp_path / f"{name}.json"
        if isinstance(content, str):
            path.write_text(content, encoding="utf-8")
        else:
            path.write_bytes(content)
        out.append((name, path, fragment))

    def edited(change: Callable[[dict], None]) -> str:
        bad = copy.deepcopy(doc)
        change(bad)
        return json.dumps(bad)  # ensure_ascii: lone surrogates are written as \ud800 escapes

    nested = "[" * 100_000 + "]" * 100_000
    add("not_json", "hello, world", "the file is not JSON: Expecting value")
    add("list", "[1, 2, 3]", "must be a JSON object, got list")
    add("string", '"multi-agent-session"', "must be a JSON object, got str")
    add("events_object", edited(lambda d: d.update(events={})), "must be JSON arrays")
    add("event_not_object", edited(lambda d: d["events"].insert(0, 5)),
        "events[0] must be a JSON object, got int")
    add("deep_document", nested, "must be a JSON object, got list")
    add("deep_event", text.replace('"events": [', '"events": [' + nested + ",", 1),
        "events[0] is nested too deeply")
    add("deep_state", text.replace('"state": {', '"state": {"x": ' + nested + ",", 1),
        "session is nested too deeply")
    add("surrogate_text", edited(setter("events", 0, "text", value="\ud800")),
        "events[0].text holds a lone surrogate")
    add("surrogate_event", edited(setter("events", REPLY, "event", "content", "parts", 0,
                                         "text", value="\udc00!")), "lone surrogate")
    add("surrogate_state", edited(setter("session", "state", "notes", value="\ud83d")),
        "session.state: State value at 'notes' holds a lone surrogate")
    add("int_10000_digits", text.replace('"notes": 2', '"notes": ' + "7" * 10_000, 1),
        "session holds an integer too long to read")
    add("nan", text.replace('"update_time": ', '"update_time": NaN, "x": ', 1),
        "session holds NaN")
    add("infinity", text.replace('"timestamp": ', '"timestamp": -Infinity, "x": ', 1),
        "events[0] holds -Infinity")
    add("truncated", text[: len(text) // 2], "truncated")
    add("truncated_header", text[:200], "truncated")
    add("binary", bytes(range(256)) * 64, "not UTF-8 text")
    add("png", b"\x89PNG\r\n\x1a\n" + os.urandom(2000), "not UTF-8 text")
    add("empty", "", "the file is empty")
    add("blank", " \n\t ", "the file is empty")
    add("trailing", text + "\n{}", "unexpected data after the end of the document")
    add("twice", text[:-2] + ', "runs": []\n}', "the field 'runs' appears twice")
    add("unknown_after_events", text[:-2] + ', "extra": 1\n}', "unknown field(s) extra")
    add("bad_separator", text.replace('"version": 1,', '"version": 1;', 1),
        "the file is not JSON")
    add("lie", edited(setter("events", REPLY, "timestamp", value=1.0)),
        f"events[{REPLY}].timestamp")
    return out


async def test_hostile_files_are_refused_by_the_library(
    store: DatabaseSessionService, app_name: str, tmp_path: Path
) -> None:
    _, doc = await scenario_export(store, app_name)
    for name, path, fragment in _hostile_files(tmp_path, doc):
        with pytest.raises(InvalidValueError) as info:
            await store.import_session_file(path, session_id="copy")
        message = str(info.value)
        assert fragment in message, (name, message)
        assert message.endswith("Nothing was imported.") and "\n" not in message, (name, message)
        await assert_nothing_imported(store, app_name, name)
    for missing in (tmp_path / "missing.json", tmp_path):
        with pytest.raises(InvalidValueError, match="Cannot read the export file"):
            await store.import_session_file(missing, session_id="copy")


def test_hostile_files_through_the_real_cli(tmp_path: Path) -> None:
    """``multi-agent import FILE``: one line on stderr, exit code 2, never a traceback."""
    import asyncio

    from tests.runs.test_cli import APP, cli, one_line_error

    source = tmp_path / "source.db"
    target = tmp_path / "target.db"

    async def build() -> dict:
        async with DatabaseSessionService(f"sqlite+aiosqlite:///{source}") as store:
            await three_turns_branch_fourth(store, APP)
            doc = await store.export_session(app_name=APP, user_id=USER, session_id="s1")
        async with DatabaseSessionService(f"sqlite+aiosqlite:///{target}") as store:
            await store.prepare()
        return doc

    doc = asyncio.run(build())
    # One of each kind (every file goes through the library on every backend above; each CLI
    # start costs ~2 s of CPU).
    kinds = {"not_json", "list", "events_object", "deep_event", "deep_state", "surrogate_text",
             "surrogate_state", "int_10000_digits", "nan", "infinity", "truncated", "binary",
             "empty"}
    files = [(name, str(path), fragment) for name, path, fragment in
             _hostile_files(tmp_path, doc) if name in kinds]
    assert len(files) == len(kinds)
    files += [("directory", str(tmp_path), f"cannot read {tmp_path}: Is a directory"),
              ("missing", "missing.json", "cannot read missing.json: No such file")]

    def run(case: tuple[str, str, str]) -> None:
        name, path, fragment = case
        proc = cli("import", path, "--db", str(target), "--session", name, cwd=tmp_path)
        try:
            one_line_error(proc, fragment)
        except AssertionError as exc:
            raise AssertionError(f"{name}: {exc}") from None

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        list(pool.map(run, files))

    async def sessions() -> list[str]:
        async with DatabaseSessionService(f"sqlite+aiosqlite:///{target}") as store:
            listed = await store.list_sessions(app_name=APP)
            return [s.id for s in listed.sessions]

    assert asyncio.run(sessions()) == []


# --------------------------------------------------------------------------------------------
# 5. memory: a large file is read in bounded memory


def write_export(path: Path, *, turns: int, text_kb: int) -> int:
    """A valid export of ``turns`` human/agent turns with large texts, written as a stream;
    returns its size in bytes."""
    filler = ("lorem ipsum dolor sit amet, consectetur adipiscing elit é✓ " * 40)
    t0 = 1_700_000_000.0
    runs = []
    with path.open("w", encoding="utf-8") as fh:
        for i in range(turns):
            inv = f"inv-{i:05d}"
            runs.append({
                "run_id": inv, "parent_run_id": runs[-1]["run_id"] if runs else None,
                "kind": "invocation", "agent": None, "started_at": t0 + 2 * i,
                "first_seq": 2 * i + 1, "status": None, "error": None, "on_path": True,
            })
        last = runs[-1]["run_id"]
        session = {
            "id": "big", "state": {"turn": turns - 1}, "initial_state": {}, "create_time": t0,
            "update_time": t0 + 2 * turns, "revision": 2 * turns, "last_seq": 2 * turns,
            "event_count": 2 * turns, "head_run_id": last, "last_agent": "helper",
            "awaiting_seq": None, "agent_paths": {"helper": "helper"},
        }
        head = {"format": "multi-agent-session", "version": 1, "app_name": "multi_agent",
                "user_id": USER, "session": session, "runs": runs}
        fh.write(json.dumps(head, ensure_ascii=False)[:-1] + ', "events": [\n')
        for i in range(turns):
            inv = f"inv-{i:05d}"
            for author, k, size in (("user", 0, 1), ("helper", 1, text_kb)):
                text = f"{i}: " + (filler * (size * 1024 // len(filler) + 1))[: size * 1024]
                event = Event(
                    id=f"e{i}-{k}", invocation_id=inv, author=author, timestamp=t0 + 2 * i + k,
                    content=types.Content(role="user" if k == 0 else "model",
                                          parts=[types.Part(text=text)]),
                    actions=EventActions(state_delta={"turn": i} if k else {}),
                )
                columns = {
                    "seq": 2 * i + 1 + k, "id": event.id, "invocation_id": inv, "run_id": inv,
                    "timestamp": event.timestamp, "source": author,
                    "target": "helper" if k == 0 else "user",
                    "branch": None if k == 0 else "helper",
                    "message_type": "human" if k == 0 else "agent", "final": bool(k),
                    "text": text, "prompt_tokens": None, "completion_tokens": None,
                    "total_tokens": None, "on_path": True,
                }
                sep = "" if i == 0 and k == 0 else ",\n"
                fh.write(sep + json.dumps(columns, ensure_ascii=False)[:-1] + ', "event": '
                         + encode_event(event) + "}")
        fh.write("\n]}\n")
    return path.stat().st_size


_PEAK_RSS = """
import json, resource, subprocess, sys
proc = subprocess.run(sys.argv[1:], capture_output=True, text=True)
print(json.dumps({"rc": proc.returncode, "out": proc.stdout, "err": proc.stderr,
                  "rss_kb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}))
"""


def peak_rss_of_import(path: Path, db: Path) -> int:
    """Peak RSS (bytes) of ``multi-agent import PATH`` in a child of its own."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MULTI_AGENT_")}
    out = subprocess.run(
        [sys.executable, "-c", _PEAK_RSS, sys.executable, "-m", "multi_agent", "import",
         str(path), "--db", str(db)],
        capture_output=True, text=True, timeout=300, env=env, check=True,
    )
    got = json.loads(out.stdout)
    assert got["rc"] == 0 and "Imported session big" in got["out"], got["err"]
    return got["rss_kb"] * 1024


def test_a_large_file_imports_in_bounded_memory(tmp_path: Path) -> None:
    small = write_export(tmp_path / "small.json", turns=100, text_kb=9)
    large = write_export(tmp_path / "large.json", turns=2000, text_kb=9)
    assert large > 38e6
    base = peak_rss_of_import(tmp_path / "small.json", tmp_path / "small.db")
    peak = peak_rss_of_import(tmp_path / "large.json", tmp_path / "large.db")
    # Reading the whole file first would add several times its size (1.36 GB for 210 MB).
    assert peak - base < (large - small) / 4, (base, peak, small, large)


async def test_an_update_time_before_the_events_is_raised_to_them(
    store: DatabaseSessionService, app_name: str
) -> None:
    """A session of today's events whose file says ``update_time: 0`` (a store before the
    'latest of its times' rule, or a hand-made file) is imported with its newest event's
    time: ``prune --older-than 30d`` counted it as idle since 1970."""
    _, doc = await scenario_export(store, app_name)
    newest = max(e["timestamp"] for e in doc["events"])
    doc = copy.deepcopy(doc)
    doc["session"]["update_time"] = 0.0
    await store.import_session(doc, session_id="copy")
    got = await store.get_session(app_name=app_name, user_id=USER, session_id="copy")
    assert got is not None and got.last_update_time == newest
    again = await store.export_session(app_name=app_name, user_id=USER, session_id="copy")
    assert again is not None and again["session"]["update_time"] == newest
