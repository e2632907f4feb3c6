"""Export / import of a session with its run tree: identical round trips, clear refusals."""

from __future__ import annotations

import copy
import json
from collections.abc import AsyncIterator

import pytest

from multi_agent import DatabaseSessionService
from multi_agent.errors import InvalidValueError, SessionAlreadyExists
from tests.conftest import fresh_pg_database
from tests.helpers import text_event
from tests.runs._scenario import USER, three_turns_branch_fourth


@pytest.fixture(params=["same_kind", "sqlite_file"])
async def second(request, backend: str, tmp_path) -> AsyncIterator[DatabaseSessionService]:
    """Another, empty database: of the same kind as ``store``, or a SQLite file."""
    if request.param == "sqlite_file" or backend == "sqlite_file":
        url = f"sqlite+aiosqlite:///{tmp_path / 'second.db'}"
    elif backend == "sqlite_memory":
        url = "sqlite+aiosqlite://"
    else:
        url = await fresh_pg_database()
    service = DatabaseSessionService(url)
    try:
        yield service
    finally:
        await service.close()


async def export(store, app_name, session_id="s1", user_id=USER):
    doc = await store.export_session(app_name=app_name, user_id=user_id, session_id=session_id)
    assert doc is not None
    json.dumps(doc, allow_nan=False)  # JSON-ready as it is
    return doc


async def test_document_shape(store: DatabaseSessionService, app_name: str) -> None:
    sc = await three_turns_branch_fourth(store, app_name)
    doc = await export(store, app_name)
    assert (doc["format"], doc["version"], doc["app_name"], doc["user_id"]) == (
        "multi-agent-session", 1, app_name, USER
    )
    assert doc["session"]["head_run_id"] == sc.turns[3]
    assert doc["session"]["state"] == {"topic": "notes", "notes": 2}  # no user: state
    assert [r["run_id"] for r in doc["runs"] if r["kind"] == "invocation"] == sc.turns
    assert len(doc["events"]) == 18  # every branch: 6 + 4 + 4 + 4
    assert [e["seq"] for e in doc["events"]] == list(range(1, 19))
    assert sum(e["on_path"] for e in doc["events"]) == 10
    first = doc["events"][0]
    assert first["event"]["id"] == first["id"] and first["message_type"] == "human"
    assert await store.export_session(app_name=app_name, user_id=USER, session_id="x") is None


async def test_round_trip_same_database_new_ids(
    store: DatabaseSessionService, app_name: str
) -> None:
    await three_turns_branch_fourth(store, app_name)
    doc = await export(store, app_name)
    result = await store.import_session(copy.deepcopy(doc), session_id="copy")
    assert (result.session_id, result.runs, result.events) == ("copy", 5, 18)
    again = await export(store, app_name, "copy")
    assert again == {**doc, "session": {**doc["session"], "id": "copy"}}
    await store.import_session(copy.deepcopy(doc), user_id="bob")
    assert await export(store, app_name, user_id="bob") == {**doc, "user_id": "bob"}
    # The copy reads like the original, tree and all.
    orig = await store.get_session(app_name=app_name, user_id=USER, session_id="s1")
    dup = await store.get_session(app_name=app_name, user_id=USER, session_id="copy")
    assert dup.events == orig.events and dup.state == orig.state
    assert await store.list_runs(app_name=app_name, user_id=USER, session_id="copy") == (
        await store.list_runs(app_name=app_name, user_id=USER, session_id="s1")
    )


async def test_round_trip_into_second_database(
    store: DatabaseSessionService, second: DatabaseSessionService, app_name: str
) -> None:
    sc = await three_turns_branch_fourth(store, app_name)
    doc = await export(store, app_name)
    await second.import_session(json.loads(json.dumps(doc)))
    assert await export(second, app_name) == doc
    got = await second.get_session(app_name=app_name, user_id=USER, session_id="s1")
    orig = await store.get_session(app_name=app_name, user_id=USER, session_id="s1")
    assert got.events == orig.events
    assert got.state == {"topic": "notes", "notes": 2}  # user: state is not carried over
    # The imported tree works: switch back to turn 3, then keep appending.
    await second.branch(app_name=app_name, user_id=USER, session_id="s1",
                        from_run_id=sc.turns[2])
    got = await second.get_session(app_name=app_name, user_id=USER, session_id="s1")
    assert got.state["notes"] == 3
    await second.append_event(got, text_event("more", author="user", invocation_id="next"))
    runs = await second.list_runs(app_name=app_name, user_id=USER, session_id="s1")
    assert runs[-1].run_id == "next" and runs[-1].parent_run_id == sc.turns[2]


async def test_import_refuses_existing_session(
    store: DatabaseSessionService, app_name: str
) -> None:
    await three_turns_branch_fourth(store, app_name)
    doc = await export(store, app_name)
    with pytest.raises(SessionAlreadyExists):
        await store.import_session(copy.deepcopy(doc))
    assert await export(store, app_name) == doc


def _mutations():
    """(name, change the document in place, expected message fragment)."""

    def setter(path, value):
        def apply(doc):
            target = doc
            for key in path[:-1]:
                target = target[key]
            if value is _DELETE:
                del target[path[-1]]
            else:
                target[path[-1]] = value
        return apply

    return [
        ("not_object", lambda d: d.clear() or d.update({"x": 1}), "format is None"),
        ("format", setter(["format"], "adk-session"), "format is 'adk-session'"),
        ("newer_version", setter(["version"], 2), "newer multi-agent"),
        ("version_string", setter(["version"], "1"), "version is '1'"),
        ("version_float", setter(["version"], 1.0), "version is 1.0"),  # was accepted
        ("missing_runs", setter(["runs"], _DELETE), "lacks runs"),
        ("unknown_top", setter(["extra"], 1), "unknown field(s) extra"),
        ("bad_user", setter(["user_id"], ""), "must not be empty"),
        ("state_type", setter(["session", "state"], [1]), "session.state must be a JSON object"),
        ("session_missing", setter(["session", "last_seq"], _DELETE), "session lacks last_seq"),
        ("head_unknown", setter(["session", "head_run_id"], "ghost"), "head_run_id 'ghost'"),
        ("run_kind", setter(["runs", 0, "kind"], "weird"), "runs[0].kind is 'weird'"),
        ("run_parent", setter(["runs", 2, "parent_run_id"], "ghost"), "runs[2].parent_run_id"),
        ("run_dup", lambda d: d["runs"].append(copy.deepcopy(d["runs"][0])), "appears twice"),
        ("seq_type", setter(["events", 3, "seq"], "4"), "events[3].seq must be an integer"),
        ("seq_dup", setter(["events", 3, "seq"], 1), "events[3].seq 1 is a duplicate"),
        ("event_run", setter(["events", 5, "run_id"], "ghost"), "events[5].run_id 'ghost'"),
        ("event_type", setter(["events", 0, "message_type"], "chat"), "message_type"),
        ("on_path_type", setter(["events", 0, "on_path"], 1), "must be true or false"),
        ("time_nan", setter(["events", 0, "timestamp"], float("nan")), "finite"),
        ("event_id_mismatch", setter(["events", 1, "event", "id"], "zzz"), "differs"),
        ("not_adk_event", setter(["events", 1, "event", "content"], {"parts": 5}),
         "events[1].event is not an ADK event"),
        ("events_not_list", setter(["events"], {}), "must be JSON arrays"),
    ]


_DELETE = object()


async def test_bad_documents_are_refused_and_write_nothing(
    store: DatabaseSessionService, app_name: str
) -> None:
    await three_turns_branch_fourth(store, app_name)
    doc = await export(store, app_name)
    for name, mutate, fragment in _mutations():
        bad = copy.deepcopy(doc)
        mutate(bad)
        with pytest.raises(InvalidValueError) as info:
            await store.import_session(bad, session_id="copy")
        message = str(info.value)
        assert fragment in message, (name, message)
        assert message.startswith("Not a valid multi-agent session export"), name
        assert message.endswith("Nothing was imported.") and "\n" not in message, name
        listed = await store.list_sessions(app_name=app_name)
        assert [(s.user_id, s.id) for s in listed.sessions] == [(USER, "s1")], name
    assert await export(store, app_name) == doc


async def test_not_a_mapping(store: DatabaseSessionService) -> None:
    with pytest.raises(InvalidValueError, match="must be a JSON object, got list"):
        await store.import_session([])  # type: ignore[arg-type]


async def test_import_is_one_transaction(
    store: DatabaseSessionService, app_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failure after every row was written leaves no trace of the import."""
    from multi_agent.store.transfer import replay

    await three_turns_branch_fourth(store, app_name)
    doc = await export(store, app_name)

    def fail_at_the_end(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(replay, "ImportResult", fail_at_the_end)
    with pytest.raises(RuntimeError, match="disk on fire"):
        await store.import_session(doc, session_id="copy")
    monkeypatch.undo()
    assert await store.export_session(app_name=app_name, user_id=USER, session_id="copy") is None
    listed = await store.list_sessions(app_name=app_name)
    assert [s.id for s in listed.sessions] == ["s1"]
    assert await store.list_runs(app_name=app_name, user_id=USER, session_id="copy") == []
    assert await store.query_messages(app_name=app_name, user_id=USER, session_id="copy",
                                      on_path_only=False) == []
