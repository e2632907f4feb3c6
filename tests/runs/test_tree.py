"""The issue's "Done when": branch from turn 1, a 4th turn, the tree, switching back."""

from __future__ import annotations

from google.adk.runners import Runner
from rich.console import Console

from multi_agent import DatabaseSessionService
from multi_agent.cli.tree import head_of, render_tree
from tests.runs._scenario import USER, say, three_turns_branch_fourth
from tests.store.scripted_llm import build_agents


def human_texts(session) -> list[str]:
    return [e.content.parts[0].text for e in session.events if e.author == "user"]


async def runs_by_id(store, app_name, session_id):
    runs = await store.list_runs(app_name=app_name, user_id=USER, session_id=session_id)
    return {r.run_id: r for r in runs}


async def test_branch_from_turn_one_then_fourth_turn(
    store: DatabaseSessionService, app_name: str
) -> None:
    sc = await three_turns_branch_fourth(store, app_name)
    t1, t2, t3, t4 = sc.turns
    got = await store.get_session(app_name=app_name, user_id=USER, session_id=sc.session_id)
    # History: turns 1 and 4 only, in order.
    assert human_texts(got) == ["one", "four"]
    assert [e.invocation_id for e in got.events] == [t1] * 6 + [t4] * 4
    # State: one note from turn 1 and one from turn 4; user: state is shared, not branched.
    assert got.state == {"topic": "notes", "notes": 2, "user:note_count": 4}

    runs = await runs_by_id(store, app_name, sc.session_id)
    assert runs[t2].parent_run_id == t1 and runs[t4].parent_run_id == t1  # siblings
    assert runs[t3].parent_run_id == t2
    assert [r.on_path for r in (runs[t1], runs[t2], runs[t3], runs[t4])] == [
        True, False, False, True
    ]
    assert all(r.status == "completed" for r in runs.values())
    assert head_of(list(runs.values())) == t4


async def test_tree_drawing_marks_sibling_branch_and_head(
    store: DatabaseSessionService, app_name: str
) -> None:
    sc = await three_turns_branch_fourth(store, app_name)
    t1, t2, t3, t4 = sc.turns
    runs = await store.list_runs(app_name=app_name, user_id=USER, session_id=sc.session_id)
    console = Console(record=True, width=400, color_system=None)
    console.print(render_tree(runs, title="tree"))
    lines = console.export_text().splitlines()
    line = {run: next(i for i, text in enumerate(lines) if f" {run} " in text)
            for run in sc.turns}

    def indent(i: int) -> int:
        return len(lines[i]) - len(lines[i].lstrip("│├╮─ "))

    # The current path (turns 1 and 4) is the left column; the sibling branch (turns 2 and
    # 3) one column to its right, drawn after the fork line, a chain as a flat list.
    assert indent(line[t1]) == indent(line[t4]) == 0
    assert indent(line[t2]) == indent(line[t3]) == 2
    assert line[t1] < line[t2] < line[t3] < line[t4]
    assert sum(text.endswith("├─╮") for text in lines) == 1
    assert lines[line[t2] - 1] == "├─╮"
    assert lines[line[t2]].startswith("│ ○ ") and lines[line[t3]].startswith("│ ○ ")
    assert lines[line[t1]].startswith("● ") and lines[line[t4]].startswith("● ")
    assert "◀ head" in lines[line[t4]]
    assert sum("◀ head" in text for text in lines) == 1
    # Turn 1's delegation to the worker is the line under it.
    assert lines[line[t1] + 1].startswith("│ ↪ worker@") and "delegation" in lines[line[t1] + 1]
    assert "○ other branch" in lines[-1]


async def test_switching_back_restores_turns_two_and_three(
    store: DatabaseSessionService, app_name: str
) -> None:
    sc = await three_turns_branch_fourth(store, app_name)
    t1, t2, t3, t4 = sc.turns
    result = await store.branch(
        app_name=app_name, user_id=USER, session_id=sc.session_id, from_run_id=t3
    )
    assert result.runs_on_path == [t1, t2, t3]
    got = await store.get_session(app_name=app_name, user_id=USER, session_id=sc.session_id)
    assert human_texts(got) == ["one", "two", "three"]
    assert got.state == {"topic": "notes", "notes": 3, "user:note_count": 4}
    runs = await runs_by_id(store, app_name, sc.session_id)
    assert [runs[t].on_path for t in sc.turns] == [True, True, True, False]
    assert head_of(list(runs.values())) == t3
    # And the conversation continues on that branch through ADK's Runner, unchanged.
    runner = Runner(app_name=app_name, agent=build_agents(), session_service=store)
    t5 = await say(runner, sc.session_id, "five")
    got = await store.get_session(app_name=app_name, user_id=USER, session_id=sc.session_id)
    assert human_texts(got) == ["one", "two", "three", "five"]
    assert got.state["notes"] == 4
    assert (await runs_by_id(store, app_name, sc.session_id))[t5].parent_run_id == t3


async def test_delegation_subrun_under_its_run(
    store: DatabaseSessionService, app_name: str
) -> None:
    sc = await three_turns_branch_fourth(store, app_name)
    t1 = sc.turns[0]
    runs = await store.list_runs(app_name=app_name, user_id=USER, session_id=sc.session_id)
    subs = [r for r in runs if r.kind == "delegation"]
    assert len(subs) == 1  # only turn 1 transferred; later turns went straight to the worker
    sub = subs[0]
    assert (sub.parent_run_id, sub.agent, sub.status, sub.on_path) == (
        t1, "worker", "completed", True
    )
    assert sub.event_count == 3  # record_note call, its result, the answer
    top = {r.run_id: r for r in runs}
    assert top[t1].agent == "coordinator"
    assert all(top[t].agent == "worker" for t in sc.turns[1:])
    # The sub-run's messages are exactly the worker's events of turn 1.
    msgs = await store.query_messages(
        app_name=app_name, user_id=USER, session_id=sc.session_id, run_id=sub.run_id
    )
    assert [(m.source, m.message_type, m.text) for m in msgs] == [
        ("worker", "tool_call", None), ("worker", "tool_result", None),
        ("worker", "agent", "Noted."),
    ]
    assert all(m.run_id == t1 and m.branch == "coordinator.worker" for m in msgs)


async def test_query_by_source_and_target_returns_exactly_the_expected_events(
    store: DatabaseSessionService, app_name: str
) -> None:
    sc = await three_turns_branch_fourth(store, app_name)
    t1, t2, t3, t4 = sc.turns
    got = await store.get_session(app_name=app_name, user_id=USER, session_id=sc.session_id)
    # The coordinator speaks to the worker only to hand turn 1 over: the transfer call and
    # its result.
    expected = [e.id for e in got.events if e.author == "coordinator"]
    assert len(expected) == 2
    msgs = await store.query_messages(
        app_name=app_name, user_id=USER, source="coordinator", target="worker"
    )
    assert [m.event_id for m in msgs] == expected
    assert [m.message_type for m in msgs] == ["tool_call", "tool_result"]
    assert all(m.run_id == t1 and m.session_id == sc.session_id for m in msgs)
    # The person speaks to the worker in turns 2-4 (it answered last); 2 and 3 are off path.
    msgs = await store.query_messages(app_name=app_name, user_id=USER, source="user",
                                      target="worker")
    assert [(m.text, m.run_id) for m in msgs] == [("four", t4)]
    msgs = await store.query_messages(app_name=app_name, user_id=USER, source="user",
                                      target="worker", on_path_only=False)
    assert [(m.text, m.run_id) for m in msgs] == [("two", t2), ("three", t3), ("four", t4)]
    # The worker answers the user.
    msgs = await store.query_messages(app_name=app_name, user_id=USER, source="worker",
                                      target="user", message_type="agent")
    assert [m.run_id for m in msgs] == [t1, t4] and {m.text for m in msgs} == {"Noted."}
