"""Paged session lists (issue 17): ``list_sessions_page``, newest first, keyset tokens.

Every backend (SQLite file, SQLite in memory, PostgreSQL). The order is ``update_time DESC``,
then user id and session id descending; a token resumes strictly after the last session it
names, so sessions updated, created or deleted between pages do not shift the others.
"""

from __future__ import annotations

import base64
import json

import pytest
from sqlalchemy import text

from multi_agent import DatabaseSessionService
from multi_agent.errors import InvalidValueError
from multi_agent.store.pages import MAX_PAGE_SIZE, SessionPage
from tests.helpers import text_event


async def set_times(store: DatabaseSessionService, app: str, times: dict[str, float]) -> None:
    """Gives sessions known update times (ties included), as if appended to at those times."""

    def write(conn) -> None:
        for sid, t in times.items():
            conn.execute(text("UPDATE ma_sessions SET update_time = :t "
                              "WHERE app_name = :a AND id = :s"), {"t": t, "a": app, "s": sid})

    await store.backend.run(write, write=True)


async def every_page(store: DatabaseSessionService, app: str, user: str | None,
                     size: int) -> list[list[str]]:
    pages, token = [], None
    while True:
        page = await store.list_sessions_page(app_name=app, user_id=user, page_size=size,
                                              page_token=token)
        pages.append([s.id for s in page.sessions])
        token = page.next_page_token
        if token is None:
            return pages


async def make(store: DatabaseSessionService, app: str, ids_by_user: dict[str, list[str]]
               ) -> None:
    for user, ids in ids_by_user.items():
        for sid in ids:
            await store.create_session(app_name=app, user_id=user, session_id=sid)


async def test_pages_newest_first_per_user_and_per_app_with_ties(
    store: DatabaseSessionService, app_name: str
) -> None:
    await make(store, app_name, {"ann": ["a1", "a2", "a3", "a4", "a5"], "bob": ["b1", "b2"]})
    await make(store, "elsewhere", {"ann": ["x1"]})
    # a2, a3 and b1 share one update time: ties go by user id, then id, descending.
    await set_times(store, app_name, {"a1": 10.0, "a2": 20.0, "a3": 20.0, "a4": 30.0,
                                      "a5": 5.0, "b1": 20.0, "b2": 40.0})
    assert await every_page(store, app_name, "ann", 2) == [["a4", "a3"], ["a2", "a1"], ["a5"]]
    assert await every_page(store, app_name, None, 3) == [
        ["b2", "a4", "b1"], ["a3", "a2", "a1"], ["a5"]]
    assert await every_page(store, app_name, "ann", 5) == [["a4", "a3", "a2", "a1", "a5"]]
    assert await every_page(store, app_name, "nobody", 5) == [[]]
    # The same sessions as ADK's list_sessions, which keeps its contract (oldest first).
    listed = await store.list_sessions(app_name=app_name, user_id="ann")
    assert [s.id for s in listed.sessions] == ["a5", "a1", "a2", "a3", "a4"]


async def test_a_page_is_a_list_response_with_state_and_a_usable_marker(
    store: DatabaseSessionService, app_name: str
) -> None:
    s = await store.create_session(app_name=app_name, user_id="ann", session_id="s1",
                                   state={"k": 1, "user:name": "Ann", "app:motd": "hi"})
    await store.append_event(s, text_event("hello", author="user", state={"k": 2}))
    page = await store.list_sessions_page(app_name=app_name)
    assert isinstance(page, SessionPage) and page.next_page_token is None
    (got,) = page.sessions
    assert got.events == [] and got.user_id == "ann"
    assert got.state == {"k": 2, "user:name": "Ann", "app:motd": "hi"}
    assert got.last_update_time == s.last_update_time
    # The copy is current: an append through it is not stale.
    await store.append_event(got, text_event("again", author="user", state={"k": 3}))
    fresh = await store.get_session(app_name=app_name, user_id="ann", session_id="s1")
    assert fresh.state["k"] == 3 and len(fresh.events) == 2


async def test_changes_between_pages_skip_nothing_and_repeat_nothing(
    store: DatabaseSessionService, app_name: str
) -> None:
    ids = [f"s{i:02d}" for i in range(12)]
    await make(store, app_name, {"ann": ids})
    await set_times(store, app_name, {sid: 100.0 + i for i, sid in enumerate(ids)})
    seen: list[str] = []
    page = await store.list_sessions_page(app_name=app_name, user_id="ann", page_size=4)
    seen += [s.id for s in page.sessions]
    assert seen == ["s11", "s10", "s09", "s08"]
    # Between pages: a session already shown is updated (moves to the front), one not yet
    # shown is updated (moves ahead of the token: the first page shows it again), one not yet
    # shown is deleted, and a new one is created.
    s10 = await store.get_session(app_name=app_name, user_id="ann", session_id="s10")
    await store.append_event(s10, text_event("moved", author="user"))
    s03 = await store.get_session(app_name=app_name, user_id="ann", session_id="s03")
    await store.append_event(s03, text_event("moved too", author="user"))
    await store.delete_session(app_name=app_name, user_id="ann", session_id="s06")
    await store.create_session(app_name=app_name, user_id="ann", session_id="new")
    token = page.next_page_token
    while token:
        page = await store.list_sessions_page(app_name=app_name, user_id="ann", page_size=4,
                                              page_token=token)
        seen += [s.id for s in page.sessions]
        token = page.next_page_token
    assert seen == ["s11", "s10", "s09", "s08", "s07", "s05", "s04", "s02", "s01", "s00"]
    assert len(set(seen)) == len(seen)
    first = await store.list_sessions_page(app_name=app_name, user_id="ann", page_size=3)
    assert [s.id for s in first.sessions] == ["new", "s03", "s10"]


def forge(token: str, change) -> str:
    raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    body, _, check = raw.rpartition(b".")
    value = json.loads(body)
    change(value)
    body = json.dumps(value, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(body + b"." + check).decode().rstrip("=")


async def test_bad_tokens_and_sizes_are_clear_errors(
    store: DatabaseSessionService, app_name: str
) -> None:
    await make(store, app_name, {"ann": ["a1", "a2", "a3"], "bob": ["b1"]})
    page = await store.list_sessions_page(app_name=app_name, user_id="ann", page_size=1)
    token = page.next_page_token
    assert token is not None
    bad = {
        "garbage": "not a token at all!",
        "empty": "",
        "truncated": token[:-5],
        "base64 of junk": base64.urlsafe_b64encode(b"hello.world").decode(),
        "edited position": forge(token, lambda v: v["k"].__setitem__(2, "zzz")),
        "edited user": forge(token, lambda v: v.__setitem__("u", "bob")),
    }
    for name, value in bad.items():
        with pytest.raises(InvalidValueError, match="not a token this listing handed out"):
            await store.list_sessions_page(app_name=app_name, user_id="ann",
                                           page_token=value)
        assert name
    for user, app in (("bob", app_name), (None, app_name), ("ann", "other_app")):
        with pytest.raises(InvalidValueError, match="belongs to the listing of user 'ann'"):
            await store.list_sessions_page(app_name=app, user_id=user, page_token=token)
    for size in (0, -1, MAX_PAGE_SIZE + 1, 2.5, "10", True, None):
        with pytest.raises(InvalidValueError, match="page_size must be a whole number"):
            await store.list_sessions_page(app_name=app_name, page_size=size)  # type: ignore
    # The good token still works after all that.
    nxt = await store.list_sessions_page(app_name=app_name, user_id="ann", page_size=1,
                                         page_token=token)
    assert len(nxt.sessions) == 1 and nxt.sessions[0].id != page.sessions[0].id


@pytest.mark.parametrize("backend", ["sqlite_file", "postgres"], indirect=True)
async def test_a_page_reads_the_index_not_the_table(
    store: DatabaseSessionService, app_name: str
) -> None:
    """The plan of both page queries starts a range of the schema-5 indexes at the token and
    sorts nothing, so a page reads page_size + 1 index entries at any table size."""
    from multi_agent.store.pages import _Cursor, _page_statement

    await make(store, app_name, {"ann": ["a1", "a2"]})
    after = _Cursor(100.0, "ann", "a2")
    statements = {
        "ix_ma_sessions_user_time": _page_statement(app_name, "ann", after, 51),
        "ix_ma_sessions_app_time": _page_statement(app_name, None, after, 51),
    }

    def plans(conn) -> dict[str, str]:
        out = {}
        for index, stmt in statements.items():
            compiled = stmt.compile(conn, compile_kwargs={"literal_binds": True})
            if conn.dialect.name == "sqlite":
                rows = conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}").fetchall()
                out[index] = " | ".join(str(r[-1]) for r in rows)
            else:
                conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
                rows = conn.exec_driver_sql(f"EXPLAIN {compiled}").fetchall()
                out[index] = " | ".join(r[0] for r in rows)
        return out

    for index, plan in (await store.backend.run(plans, write=False)).items():
        if store.dialect == "postgresql" and index == "ix_ma_sessions_user_time":
            # PostgreSQL's planner chooses between the two indexes by their statistics: on a
            # table of two rows the app index with a user filter costs the same, and it takes
            # either from run to run. Both start at the token and sort nothing; the page cost
            # at 1,000,000 sessions is measured by bench.scale.
            assert "ix_ma_sessions_user_time" in plan or "ix_ma_sessions_app_time" in plan, plan
        else:
            assert index in plan, plan
        assert "TEMP B-TREE" not in plan and "Sort" not in plan, plan
