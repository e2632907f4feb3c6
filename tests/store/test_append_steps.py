"""The append's steps that need no database: routing, and the event row's columns."""

from __future__ import annotations

from multi_agent.store import ops
from multi_agent.store.codec import dumps, encode_event, event_digest
from multi_agent.store.facts import event_facts
from multi_agent.store.sql import EVENT_COLUMNS
from multi_agent.store.state import ScopedDelta
from tests.helpers import call_event, result_event, text_event


def route(event, *, paths: str = "{}", awaiting: int | None = None, last: str | None = None,
          seq: int = 1) -> ops.Route:
    return ops.route_event(event_facts(event, last_agent=last), event_branch=event.branch,
                           agent_paths=paths, awaiting_seq=awaiting, last_agent=last, seq=seq)


def test_a_human_message_waits_for_the_agent_that_answers() -> None:
    got = route(text_event("hi", author="user"), seq=3)
    assert (got.target, got.awaiting_seq, got.backfill_since, got.last_agent) == (
        None, 3, None, None)
    assert got.branch is None and got.agent_paths == "{}"
    # A second one keeps the first unanswered message.
    assert route(text_event("again", author="user"), awaiting=3, seq=4).awaiting_seq == 3


def test_the_first_agent_reply_answers_the_waiting_messages() -> None:
    got = route(text_event("hello", author="manager"), awaiting=3, seq=5)
    assert (got.target, got.awaiting_seq, got.backfill_since, got.last_agent) == (
        "user", None, 3, "manager")
    assert got.branch == "manager" and got.agent_paths == dumps({"manager": "manager"})


def test_a_transfer_makes_the_target_a_child_of_the_author() -> None:
    paths = dumps({"manager": "manager"})
    call = call_event("transfer_to_agent", {"agent_name": "funny_nerd"}, author="manager",
                      invocation_id="i")
    assert route(call, paths=paths).target == "funny_nerd"
    done = result_event("transfer_to_agent", {"result": None}, author="manager",
                        invocation_id="i", transfer_to="funny_nerd")
    got = route(done, paths=paths, last="manager")
    assert got.last_agent == "funny_nerd"
    assert got.agent_paths == dumps({"manager": "manager", "funny_nerd": "manager.funny_nerd"})
    reply = route(text_event("a joke", author="funny_nerd"), paths=got.agent_paths)
    assert reply.branch == "manager.funny_nerd"


def test_the_event_row_has_every_event_column_but_the_session_key() -> None:
    event = text_event("hi", author="manager", state={"n": 1})
    event_json = encode_event(event)
    req = ops.AppendRequest(
        app_name="a", user_id="u", session_id="s", event=event, event_json=event_json,
        digest=event_digest(event_json), facts=event_facts(event, last_agent=None),
        delta=ScopedDelta(session={"n": 1}), ops=ops.ScopedOps(), is_final=True,
        marker=None, last_event_id=None, merge_when_stale=False,
    )
    row = ops.event_row(req, seq=1, run_id="r", route=route(event), resolved={"n": 2})
    assert set(row) | {"app_name", "user_id", "session_id"} == set(EVENT_COLUMNS)
    assert '"n":2' in row["event_data"].replace(" ", "")  # what was stored, not what was asked
