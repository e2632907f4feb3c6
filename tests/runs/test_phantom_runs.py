"""Bookkeeping events are no runs: compaction summaries, state-only ``user`` events.

ADK's events compaction appends a summary as a ``user`` event with an invocation id of its
own; ``adk api_server``'s state update appends a content-less ``user`` event with a ``p-``
id. Neither is a turn: it makes no run, never shows as failed or running, cannot be branched
from, leaves the head (and so the next run's parent) where it was, and follows the run it was
written after when the session branches. Databases written before (schema 2), which hold
a run for each, are folded when opened. And the real thing: a 40-turn piped chat with
compaction on has one run per turn plus one per delegation.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from google.adk.events.event import Event
from google.adk.events.event_actions import EventActions, EventCompaction
from google.genai import types
from sqlalchemy import bindparam, select, text

from multi_agent import DatabaseSessionService
from multi_agent.errors import RunNotFound
from multi_agent.store import ops, schema, sql
from tests.helpers import call_event, result_event, text_event

USER = "ann"


def compaction(start: float, end: float, *, inv: str | None = None) -> Event:
    """What ADK's sliding-window compaction appends after an invocation."""
    return Event(
        author="user", invocation_id=inv or Event.new_id(),
        actions=EventActions(compaction=EventCompaction(
            start_timestamp=start, end_timestamp=end,
            compacted_content=types.Content(role="model", parts=[types.Part(text="summary")]),
        )),
    )


def state_update(delta: dict, *, inv: str) -> Event:
    """What ``adk api_server``'s PATCH .../sessions/{id} appends."""
    return Event(invocation_id=inv, author="user", actions=EventActions(state_delta=delta))


T0 = 1_700_000_000.0


def fixed(event: Event, event_id: str, timestamp: float) -> Event:
    event.id, event.timestamp = event_id, timestamp
    return event


async def turn(store, s, n: int, *, delegate: bool = False) -> str:
    """One turn with fixed ids and times (the same turn gives the same rows anywhere)."""
    inv = f"turn-{n}"
    ts = T0 + 10 * n
    events = [fixed(text_event(f"q{n}", author="user", invocation_id=inv), f"{inv}-q", ts)]
    answerer = "bot"
    if delegate:
        events += [
            fixed(call_event("transfer_to_agent", {"agent_name": "worker"}, author="bot",
                             invocation_id=inv), f"{inv}-call", ts),
            fixed(result_event("transfer_to_agent", {"result": None}, author="bot",
                               invocation_id=inv, transfer_to="worker"), f"{inv}-result", ts),
        ]
        answerer = "worker"
    events.append(fixed(text_event(f"a{n}", author=answerer, invocation_id=inv,
                                   state={"last": n}), f"{inv}-a", ts + 1))
    for event in events:
        await store.append_event(s, event)
    return inv


async def conversation(store, app_name: str, session_id: str) -> list[str]:
    """Six turns, a compaction summary after turns 2, 4 and 6, a state update after turn 3."""
    s = await store.create_session(app_name=app_name, user_id=USER, session_id=session_id)
    turns = []
    for n in range(1, 7):
        turns.append(await turn(store, s, n, delegate=n % 2 == 1))
        if n % 2 == 0:
            event = compaction(T0 + 10 * (n - 1), T0 + 10 * n + 1, inv=f"c-{n}")
            await store.append_event(s, fixed(event, f"compaction-{n}", T0 + 10 * n + 2))
        if n == 3:
            event = state_update({"mood": "good"}, inv="p-1")
            await store.append_event(s, fixed(event, "patch-1", T0 + 10 * n + 2))
    return turns


async def test_bookkeeping_events_make_no_run(store: DatabaseSessionService,
                                              app_name: str) -> None:
    turns = await conversation(store, app_name, "s")
    key = {"app_name": app_name, "user_id": USER, "session_id": "s"}
    runs = await store.list_runs(**key)
    top = [r for r in runs if r.kind == "invocation"]
    assert [r.run_id for r in top] == turns  # one run per turn, none of the 4 extra events
    assert [r.kind for r in runs].count("delegation") == 3 and len(runs) == 9
    assert {r.status for r in runs} == {"completed"}
    # A linear conversation: each turn continues from the one before; the head is the last.
    assert [r.parent_run_id for r in top] == [None, *turns[:-1]]
    assert [r.run_id for r in runs if r.is_head] == [turns[-1]]
    assert [r.message for r in top] == [f"q{n}" for n in range(1, 7)]
    # The events are stored (the summary is what the next turns' prompts use), state applied.
    got = await store.get_session(**key)
    assert sum(bool(e.actions.compaction) for e in got.events) == 3
    assert got.state["mood"] == "good"
    # Not a branch point, not a run to query.
    for bogus in ("c-2", "p-1"):
        with pytest.raises(RunNotFound, match=f"has no run '{bogus}'"):
            await store.branch(**key, from_run_id=bogus)
        with pytest.raises(RunNotFound):
            await store.query_messages(app_name=app_name, user_id=USER, session_id="s",
                                       run_id=bogus)
    # Nor is a delegation sub-run a branch point.
    sub = next(r for r in runs if r.kind == "delegation")
    with pytest.raises(RunNotFound, match=f"branch from the run it belongs to, '{turns[0]}'"):
        await store.branch(**key, from_run_id=sub.run_id)
    # The next turn continues from the last turn, not from the summary written after it.
    s = await store.get_session(**key)
    t7 = await turn(store, s, 7)
    runs = {r.run_id: r for r in await store.list_runs(**key)}
    assert runs[t7].parent_run_id == turns[-1] and runs[turns[-1]].status == "completed"


async def test_a_long_error_lists_only_the_latest_runs(store: DatabaseSessionService,
                                                       app_name: str) -> None:
    s = await store.create_session(app_name=app_name, user_id=USER, session_id="s")
    turns = [await turn(store, s, n) for n in range(1, 31)]
    with pytest.raises(RunNotFound) as info:
        await store.branch(app_name=app_name, user_id=USER, session_id="s", from_run_id="x")
    message = str(info.value)
    assert ", ".join(turns[-5:]) + " (and 25 earlier)" in message and turns[0] not in message


async def test_bookkeeping_events_follow_their_run_when_branching(
    store: DatabaseSessionService, app_name: str
) -> None:
    turns = await conversation(store, app_name, "s")
    key = {"app_name": app_name, "user_id": USER, "session_id": "s"}

    async def history() -> list[str]:
        got = await store.get_session(**key)
        return [e.id if not e.content else e.content.parts[0].text or "call"
                for e in got.events if e.author == "user"]

    # From turn 4: the summary written after turn 4 is still history, the one after 6 not.
    await store.branch(**key, from_run_id=turns[3])
    assert await history() == ["q1", "q2", "compaction-2", "q3", "patch-1", "q4",
                               "compaction-4"]
    got = await store.get_session(**key)
    assert got.state["mood"] == "good" and got.state["last"] == 4
    # From turn 2: the state update after turn 3 is gone with turn 3.
    await store.branch(**key, from_run_id=turns[1])
    assert await history() == ["q1", "q2", "compaction-2"]
    got = await store.get_session(**key)
    assert "mood" not in got.state and got.state["last"] == 2
    # Back to the end: everything.
    await store.branch(**key, from_run_id=turns[5])
    assert await history() == ["q1", "q2", "compaction-2", "q3", "patch-1", "q4",
                               "compaction-4", "q5", "q6", "compaction-6"]
    assert {r.status for r in await store.list_runs(**key)} == {"completed"}


@pytest.mark.parametrize("branch_to", [None, 3, 1])
async def test_sessions_with_bookkeeping_events_export_and_import(
    store: DatabaseSessionService, app_name: str, branch_to: int | None
) -> None:
    """Compaction summaries and state updates (no run of their own) survive export → import
    → export unchanged, on the path and off it."""
    turns = await conversation(store, app_name, "s")
    key = {"app_name": app_name, "user_id": USER, "session_id": "s"}
    if branch_to is not None:
        await store.branch(**key, from_run_id=turns[branch_to])
        s = await store.get_session(**key)
        await store.append_event(s, fixed(
            compaction(T0, T0 + 1, inv="c-after"), "compaction-after", T0 + 500))
    doc = await store.export_session(**key)
    await store.import_session(doc, session_id="copy")
    again = await store.export_session(app_name=app_name, user_id=USER, session_id="copy")
    assert again["session"].pop("id") == "copy"
    doc["session"].pop("id")
    assert again == doc
    original = await store.get_session(**key)
    copied = await store.get_session(app_name=app_name, user_id=USER, session_id="copy")
    assert copied.events == original.events and copied.state == original.state


async def test_content_less_user_event_after_the_answer_keeps_it_completed(
    store: DatabaseSessionService, app_name: str
) -> None:
    s = await store.create_session(app_name=app_name, user_id=USER, session_id="s")
    await turn(store, s, 1)
    await store.append_event(s, state_update({"k": 1}, inv="turn-1"))  # same invocation
    await turn(store, s, 2)
    runs = await store.list_runs(app_name=app_name, user_id=USER, session_id="s")
    assert [(r.run_id, r.status) for r in runs] == [("turn-1", "completed"),
                                                   ("turn-2", "completed")]


# --------------------------------------------------------------------------------------------
# databases written before: schema 2 made a run of each bookkeeping event


# Schema 2's check whether a run's row exists (the store now writes it with an insert-ignore).
RUN_EXISTS = sql.Prepared(
    "run_exists_schema_2",
    select(schema.runs.c.run_id).where(
        schema.runs.c.app_name == bindparam("app_name"),
        schema.runs.c.user_id == bindparam("user_id"),
        schema.runs.c.session_id == bindparam("session_id"),
        schema.runs.c.run_id == bindparam("run_id"),
    ),
)


def schema_2_record_run(conn, backend, req, key, head_run_id, run_id, seq, now, author,
                        plan=None):
    """``ops._record_run`` as schema 2 had it: every new invocation id made a run, and the head
    moved to it. (Never in a one-statement append: ``rowcache.py`` writes today's runs.)"""
    if plan is not None:
        raise ops.NotPlannable("schema 2's run rows")
    facts = req.facts
    if facts.transfer_to and facts.message_type == "tool_result":
        sql.RUN_INSERT(
            conn, **key, run_id=f"{facts.transfer_to[:200]}@{seq}", parent_run_id=run_id,
            kind="delegation", agent=facts.transfer_to, started_at=now, first_seq=seq,
            on_path=True,
        )
    if run_id == head_run_id or RUN_EXISTS(conn, **key, run_id=run_id).first() is not None:
        return run_id
    rewind = req.event.actions.rewind_before_invocation_id if req.event.actions else None
    sql.RUN_INSERT(
        conn, **key, run_id=run_id, parent_run_id=head_run_id,
        kind="rewind" if rewind else "invocation",
        agent=author if author != "user" else None, started_at=now, first_seq=seq, on_path=True,
    )
    return run_id


@pytest.mark.parametrize("backend", ["sqlite_file", "postgres"], indirect=True)
async def test_schema_2_database_with_phantom_runs_is_folded(
    db_url: str, app_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = {"app_name": app_name, "user_id": USER}
    async with DatabaseSessionService(db_url) as store:
        # The same conversation written by this version ("new") and by schema 2 ("old"),
        # each ending with a summary (the old head was that summary's run).
        turns = await conversation(store, app_name, "new")
        with monkeypatch.context() as patch:
            patch.setattr(ops, "_record_run", schema_2_record_run)
            assert await conversation(store, app_name, "old") == turns
            old = await store.list_runs(**key, session_id="old")
        # What the issue saw: a run per summary, "failed", and "running" as the head.
        assert len(old) == 9 + 4
        assert [r.run_id for r in old if r.is_head] == ["c-6"]
        assert {r.run_id: r.status for r in old if r.kind == "invocation"
                and not r.run_id.startswith("turn")} == {
            "c-2": "failed", "p-1": "failed", "c-4": "failed", "c-6": "running"}
        assert {r.run_id: r.parent_run_id for r in old}["turn-3"] == "c-2"
        want = await store.list_runs(**key, session_id="new")
        want_events = (await store.get_session(**key, session_id="new")).events

        def downgrade(conn) -> None:
            conn.execute(text("UPDATE ma_meta SET value = '2' WHERE key = 'schema_version'"))

        await store.backend.run(downgrade, write=True)
    async with DatabaseSessionService(db_url) as store:  # opening upgrades
        got = await store.list_runs(**key, session_id="old")
        assert got == want  # the same tree, head, statuses and figures
        assert (await store.get_session(**key, session_id="old")).events == want_events
        with pytest.raises(RunNotFound):
            await store.branch(**key, session_id="old", from_run_id="c-4")
        s = await store.get_session(**key, session_id="old")
        t7 = await turn(store, s, 7)
        runs = {r.run_id: r for r in await store.list_runs(**key, session_id="old")}
        assert runs[t7].parent_run_id == turns[-1]

        def version(conn) -> str:
            return conn.execute(
                text("SELECT value FROM ma_meta WHERE key = 'schema_version'")
            ).scalar()

        assert await store.backend.run(version, write=False) == str(schema.SCHEMA_VERSION)


# --------------------------------------------------------------------------------------------
# the real chat: 40 turns through a pipe, compaction on (the default)

MESSAGES = [
    "tell me a joke about python", "add AAPL to my watch list", "what did we talk about?",
    "tell me a joke about databases", "add GOOGL to my watch list", "show my watchlist",
    "what is the price of MSFT?", "remove AAPL from my watchlist",
]


def multi_agent(*args: str, cwd: Path, stdin: str = "", columns: int = 200
                ) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("MULTI_AGENT_", "GOOGLE_", "GEMINI_", "PYTEST_"))}
    env.update(COLUMNS=str(columns), NO_COLOR="1")
    program = str(Path(sys.executable).parent / "multi-agent")
    return subprocess.run([program, *args], cwd=cwd, env=env, input=stdin,
                          capture_output=True, text=True, timeout=240)


def db_for(backend: str, tmp_path: Path) -> str:
    if backend == "postgres":
        from tests.conftest import fresh_pg_database

        return asyncio.run(fresh_pg_database())
    return f"sqlite+aiosqlite:///{tmp_path / 'chat.db'}"


@pytest.mark.timeout(600)
@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_forty_turn_piped_chat_has_one_run_per_turn(backend: str, tmp_path: Path) -> None:
    url = db_for(backend, tmp_path)
    script = [MESSAGES[i % len(MESSAGES)] for i in range(40)] + ["/runs", "/runs all"]
    started = time.monotonic()
    proc = multi_agent("chat", "--db", url, "--user", USER, cwd=tmp_path,
                       stdin="\n".join(script) + "\n")
    assert proc.returncode == 0, (proc.stdout[-3000:], proc.stderr[-3000:])
    assert "Traceback" not in proc.stderr + proc.stdout
    out = proc.stdout
    handovers = len(re.findall(r"^  ↪ \S+ → \S+$", out, flags=re.M))
    assert handovers >= 20  # most turns are delegated

    async def read_back() -> tuple[str, list, list]:
        async with DatabaseSessionService(url) as store:
            (session,) = (await store.list_sessions(app_name="multi_agent",
                                                    user_id=USER)).sessions
            runs = await store.list_runs(app_name="multi_agent", user_id=USER,
                                         session_id=session.id)
            full = await store.get_session(app_name="multi_agent", user_id=USER,
                                           session_id=session.id)
            return session.id, runs, full.events

    session_id, runs, events = asyncio.run(read_back())
    assert sum(bool(e.actions and e.actions.compaction) for e in events) >= 8  # compaction on
    kinds = [r.kind for r in runs]
    assert kinds.count("invocation") == 40 and kinds.count("delegation") == handovers
    assert len(runs) == 40 + handovers
    assert {r.status for r in runs} == {"completed"}  # none failed, none running
    top = [r for r in runs if r.kind == "invocation"]
    assert [r.parent_run_id for r in top] == [None] + [r.run_id for r in top[:-1]]
    assert top[-1].is_head and [r.message for r in top] == script[:40]

    # /runs in the chat: the recent part and how to see the rest; /runs all: everything.
    recent, everything = out.split(f"Runs of session {session_id}")[1:3]
    assert "⋮ 25 earlier runs not shown: /runs all shows every run, /runs N the last N" \
        in recent
    assert sum(r.run_id in recent for r in top) == 15
    assert top[-1].run_id in recent and top[24].run_id not in recent
    assert all(r.run_id in everything for r in top) and "⋮" not in everything

    # multi-agent runs (the latest session) at 80 columns: ~2 lines per turn, none wider.
    drawn = multi_agent("runs", "--db", url, "--user", USER, cwd=tmp_path, columns=80)
    assert drawn.returncode == 0, drawn.stderr
    lines = drawn.stdout.splitlines()
    assert len(lines) == 1 + 40 + handovers + 1 <= 2 * 40 + 2
    assert max(len(line) for line in lines) <= 80
    assert all(line.startswith(("● ", "│ ↪ ", "  ↪ ")) for line in lines[1:-1])
    print(f"{backend}: {len(lines)} lines, widest {max(len(line) for line in lines)}, "
          f"{len(runs)} runs, chat {time.monotonic() - started:.1f} s")
