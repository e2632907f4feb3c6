"""Isolation: no API or CLI path lets one user read, list, modify or delete another user's
sessions or ``user:`` state, and ``app:`` state stays within its app.

The API takes the user id as a parameter (the application authenticates; the store scopes):
so the property is that every call is confined to the (app, user) it names, even when given
another user's session id, a Session object that claims another user, or ids that are LIKE
wildcards (``%``, ``_``) or prefixes of each other.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path

import pytest
from google.adk.sessions.session import Session
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from multi_agent import (
    DatabaseSessionService,
    SessionAlreadyExists,
    SessionNotFound,
    StaleSession,
)
from multi_agent.errors import MultiAgentError
from tests.helpers import text_event

from ._util import table_counts
from .test_hostile_input import Driver

A, B = "alice", "bob"


async def two_users(store: DatabaseSessionService, app: str) -> tuple[Session, Session]:
    """Alice and Bob each have a session with the SAME id, with state, user: state, events."""
    a = await store.create_session(app_name=app, user_id=A, session_id="same",
                                   state={"owner": A, "user:secret": "alice's"})
    b = await store.create_session(app_name=app, user_id=B, session_id="same",
                                   state={"owner": B, "user:secret": "bob's"})
    await store.append_event(a, text_event("alice speaks", author="user", invocation_id="ia"))
    await store.append_event(b, text_event("bob speaks", author="user", invocation_id="ib",
                                           state={"user:token": "bob-token"}))
    return a, b


async def snapshot(store: DatabaseSessionService, app: str, user: str) -> tuple:
    s = await store.get_session(app_name=app, user_id=user, session_id="same")
    return s, await store.get_user_state(app_name=app, user_id=user)


async def test_same_session_id_under_two_users_is_two_sessions(
    store: DatabaseSessionService, app_name: str
) -> None:
    a, b = await two_users(store, app_name)
    got_a = await store.get_session(app_name=app_name, user_id=A, session_id="same")
    got_b = await store.get_session(app_name=app_name, user_id=B, session_id="same")
    assert got_a == a and got_b == b
    assert got_a.state == {"owner": A, "user:secret": "alice's"}
    assert got_b.state == {"owner": B, "user:secret": "bob's", "user:token": "bob-token"}
    assert [e.content.parts[0].text for e in got_a.events] == ["alice speaks"]
    assert await store.get_user_state(app_name=app_name, user_id=A) == {"secret": "alice's"}


async def test_listing_is_confined_to_the_user(
    store: DatabaseSessionService, app_name: str
) -> None:
    await two_users(store, app_name)
    # Ids that are SQL LIKE wildcards or prefixes of other ids match only themselves.
    for user in ("%", "_", "a%", "alic", "alice ", "ALICE", "alice%"):
        await store.create_session(app_name=app_name, user_id=user, session_id="x",
                                   state={"user:who": user})
    mine = (await store.list_sessions(app_name=app_name, user_id=A)).sessions
    assert [(s.user_id, s.id) for s in mine] == [(A, "same")]
    assert mine[0].state == {"owner": A, "user:secret": "alice's"}
    for user in ("%", "_", "a%", "alic", "alice ", "ALICE", "alice%"):
        listed = (await store.list_sessions(app_name=app_name, user_id=user)).sessions
        assert [(s.user_id, s.id) for s in listed] == [(user, "x")]
        assert listed[0].state == {"user:who": user}
        assert await store.get_user_state(app_name=app_name, user_id=user) == {"who": user}
        assert await store.get_session(app_name=app_name, user_id=user, session_id="same") is None
    # Listing every user of the app: each session shows its own user's user: state.
    everyone = (await store.list_sessions(app_name=app_name)).sessions
    for s in everyone:
        user_keys = {k: v for k, v in s.state.items() if k.startswith("user:")}
        assert user_keys == {
            f"user:{k}": v
            for k, v in (await store.get_user_state(app_name=app_name, user_id=s.user_id)).items()
        }, s.user_id
    assert await store.get_session(app_name=app_name, user_id="nobody", session_id="same") is None


async def test_delete_by_another_user_leaves_the_session(
    store: DatabaseSessionService, app_name: str
) -> None:
    await two_users(store, app_name)
    bob_before = await snapshot(store, app_name, B)
    # Carol has no session "same"; deleting "her" session with Bob's id does nothing.
    await store.delete_session(app_name=app_name, user_id="carol", session_id="same")
    # Alice deletes her own "same": Bob's is untouched.
    await store.delete_session(app_name=app_name, user_id=A, session_id="same")
    assert await store.get_session(app_name=app_name, user_id=A, session_id="same") is None
    assert await snapshot(store, app_name, B) == bob_before
    # Wildcard user ids delete nothing else either.
    await store.delete_session(app_name=app_name, user_id="%", session_id="same")
    await store.delete_session(app_name=app_name, user_id=B, session_id="%")
    assert await snapshot(store, app_name, B) == bob_before
    runs = await store.list_runs(app_name=app_name, user_id=B, session_id="same")
    assert [r.run_id for r in runs] == ["ib"]


async def test_append_through_a_session_object_claiming_another_user(
    store: DatabaseSessionService, app_name: str
) -> None:
    a, b = await two_users(store, app_name)
    await store.create_session(app_name=app_name, user_id=B, session_id="bob-only")
    await store.create_session(app_name=app_name + "_other", user_id=A, session_id="elsewhere")
    bob_before = await snapshot(store, app_name, B)
    counts = await table_counts(store)
    forged = [
        # Alice's object pointed at Bob's session id that Alice does not have.
        Session(id="bob-only", app_name=app_name, user_id=A),
        # Bob's loaded session with its user id rewritten to a user who has no such session.
        b.model_copy(update={"user_id": "mallory"}),
        # Alice's session moved to an app where that id is not hers.
        a.model_copy(update={"app_name": app_name + "_other"}),
        # A user id that is a LIKE wildcard.
        Session(id="same", app_name=app_name, user_id="%"),
    ]
    for session in forged:
        with pytest.raises(SessionNotFound):
            await store.append_event(
                session, text_event("injected", state={"owner": "mallory",
                                                       "user:secret": "stolen",
                                                       "app:banner": "owned"})
            )
    assert await table_counts(store) == counts
    assert await snapshot(store, app_name, B) == bob_before
    assert await store.get_user_state(app_name=app_name, user_id=A) == {"secret": "alice's"}
    assert await store.get_app_state(app_name=app_name) == {}
    assert await store.get_user_state(app_name=app_name, user_id="mallory") == {}


async def test_read_paths_with_another_users_session_id(
    store: DatabaseSessionService, app_name: str
) -> None:
    await two_users(store, app_name)
    await store.create_session(app_name=app_name, user_id=B, session_id="bob-only")
    bob_only = await store.get_session(app_name=app_name, user_id=B, session_id="bob-only")
    await store.append_event(bob_only, text_event("bob's private note", author="user",
                                                  invocation_id="ib2"))
    assert await store.get_session(app_name=app_name, user_id=A, session_id="bob-only") is None
    assert await store.list_runs(app_name=app_name, user_id=A, session_id="bob-only") == []
    assert await store.export_session(app_name=app_name, user_id=A, session_id="bob-only") is None
    mine = await store.query_messages(app_name=app_name, user_id=A)
    assert [m.text for m in mine] == ["alice speaks"]
    try:
        found = await store.query_messages(app_name=app_name, user_id=A, session_id="bob-only")
    except MultiAgentError:
        found = []
    assert found == []
    with pytest.raises(MultiAgentError):
        await store.query_messages(app_name=app_name, user_id=A, run_id="ib2")
    # Branching Bob's session in Alice's name is refused and changes nothing.
    bob_before = await snapshot(store, app_name, B)
    with pytest.raises((SessionNotFound, LookupError)):
        await store.branch(app_name=app_name, user_id=A, session_id="bob-only",
                           from_run_id="ib2")
    with pytest.raises(LookupError):
        await store.branch(app_name=app_name, user_id=A, session_id="same", from_run_id="ib")
    assert await snapshot(store, app_name, B) == bob_before
    assert [r.run_id for r in await store.list_runs(app_name=app_name, user_id=A,
                                                     session_id="same")] == ["ia"]


async def test_import_never_lands_in_another_users_session(
    store: DatabaseSessionService, app_name: str
) -> None:
    await two_users(store, app_name)
    bob_before = await snapshot(store, app_name, B)
    doc = await store.export_session(app_name=app_name, user_id=A, session_id="same")
    # Alice's document imported as Bob's existing session id: refused, Bob untouched.
    with pytest.raises(SessionAlreadyExists):
        await store.import_session(doc, user_id=B)
    assert await snapshot(store, app_name, B) == bob_before
    # Imported for a new user, it is that user's copy; user: state is never carried over.
    await store.import_session(doc, user_id="carol")
    carol = await store.get_session(app_name=app_name, user_id="carol", session_id="same")
    assert [e.content.parts[0].text for e in carol.events] == ["alice speaks"]
    assert await store.get_user_state(app_name=app_name, user_id="carol") == {}
    assert await snapshot(store, app_name, B) == bob_before


async def test_app_state_stays_within_its_app(store: DatabaseSessionService) -> None:
    app1, app2 = "app_" + uuid.uuid4().hex[:8], "app_" + uuid.uuid4().hex[:8]
    s1 = await store.create_session(app_name=app1, user_id=A, session_id="s",
                                    state={"app:banner": "one", "user:name": "Alice@1"})
    s2 = await store.create_session(app_name=app2, user_id=A, session_id="s")
    await store.append_event(s1, text_event("x", state={"app:count": 1, "user:n": 1}))
    assert (await store.get_session(app_name=app2, user_id=A, session_id="s")).state == {}
    assert await store.get_app_state(app_name=app2) == {}
    assert await store.get_user_state(app_name=app2, user_id=A) == {}
    await store.append_event(s2, text_event("y", state={"app:banner": "two"}))
    assert await store.get_app_state(app_name=app1) == {"banner": "one", "count": 1}
    assert await store.get_app_state(app_name=app2) == {"banner": "two"}
    listed = (await store.list_sessions(app_name=app2)).sessions
    assert [(s.user_id, s.id, s.state) for s in listed] == [(A, "s", {"app:banner": "two"})]
    # An app name that is a prefix or a wildcard of another sees nothing of it.
    for other in (app1[:-1], app1 + "%", "%", "_" * len(app1)):
        assert await store.get_app_state(app_name=other) == {}
        assert (await store.list_sessions(app_name=other)).sessions == []


# ---------------------------------------------------------------------------------------------
# Random interleavings against a model (hypothesis)

USERS = ["alice", "bob", "%", "alice "]
SIDS = ["s", "S", "s%"]
op = st.one_of(
    st.tuples(st.just("create"), st.sampled_from(USERS), st.sampled_from(SIDS)),
    st.tuples(st.just("append"), st.sampled_from(USERS), st.sampled_from(SIDS)),
    st.tuples(st.just("forge"), st.sampled_from(USERS), st.sampled_from(SIDS)),
    st.tuples(st.just("delete"), st.sampled_from(USERS), st.sampled_from(SIDS)),
)


@pytest.fixture(params=["sqlite_file", "postgres"])
def drive(request, tmp_path: Path):
    from tests.conftest import fresh_pg_database

    if request.param == "sqlite_file":
        url = f"sqlite+aiosqlite:///{tmp_path / 'iso.db'}"
    else:
        url = asyncio.run(fresh_pg_database())
    driver = Driver(url)
    yield driver
    driver.close()


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(ops=st.lists(op, min_size=1, max_size=15))
def test_random_operations_stay_within_their_user(drive: Driver, ops: list) -> None:
    store, app = drive.store, "app_" + uuid.uuid4().hex[:10]
    sessions: dict[tuple[str, str], list[str]] = {}  # (user, sid) -> event texts
    user_state: dict[str, dict] = {}
    for n, (kind, user, sid) in enumerate(ops):
        key = (user, sid)
        if kind == "create":
            if key in sessions:
                with pytest.raises(SessionAlreadyExists):
                    drive(store.create_session(app_name=app, user_id=user, session_id=sid))
            else:
                drive(store.create_session(app_name=app, user_id=user, session_id=sid,
                                           state={"owner": user, f"user:c{n}": sid}))
                sessions[key] = []
                user_state.setdefault(user, {})[f"c{n}"] = sid
        elif kind == "append":
            s = drive(store.get_session(app_name=app, user_id=user, session_id=sid))
            if key not in sessions:
                assert s is None
                continue
            drive(store.append_event(s, text_event(f"{user}/{sid}/{n}",
                                                   state={f"user:a{n}": user})))
            sessions[key].append(f"{user}/{sid}/{n}")
            user_state.setdefault(user, {})[f"a{n}"] = user
        elif kind == "forge":
            # A hand-made Session object naming this user; only works if it is theirs.
            forged = Session(id=sid, app_name=app, user_id=user, events=[])
            if key in sessions and not sessions[key]:
                drive(store.append_event(forged, text_event(f"{user}/{sid}/{n}",
                                                            state={f"user:f{n}": user})))
                sessions[key].append(f"{user}/{sid}/{n}")
                user_state.setdefault(user, {})[f"f{n}"] = user
            elif key not in sessions:
                with pytest.raises(SessionNotFound):
                    drive(store.append_event(forged, text_event("x", state={"user:evil": 1})))
            else:  # theirs, but the object is behind storage: refused, nothing written
                with pytest.raises(StaleSession):
                    drive(store.append_event(forged, text_event("x", state={"user:evil": 1})))
        else:
            drive(store.delete_session(app_name=app, user_id=user, session_id=sid))
            sessions.pop(key, None)
    for user in USERS:
        listed = drive(store.list_sessions(app_name=app, user_id=user)).sessions
        assert sorted(s.id for s in listed) == sorted(sid for (u, sid) in sessions if u == user)
        assert drive(store.get_user_state(app_name=app, user_id=user)) == user_state.get(user, {})
        for sid in SIDS:
            got = drive(store.get_session(app_name=app, user_id=user, session_id=sid))
            if (user, sid) not in sessions:
                assert got is None
                continue
            assert got.state.get("owner") == user
            assert [e.content.parts[0].text for e in got.events] == sessions[(user, sid)]
    everyone = drive(store.list_sessions(app_name=app)).sessions
    assert sorted((s.user_id, s.id) for s in everyone) == sorted(sessions)


# ---------------------------------------------------------------------------------------------
# The command line


def cli(capsys, *argv: str) -> tuple[int, str, str]:
    from multi_agent.cli import main

    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_is_confined_to_the_user(tmp_path: Path, capsys) -> None:
    db = f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"
    app = "multi_agent"

    async def seed() -> None:
        async with DatabaseSessionService(db) as store:
            await two_users(store, app)
            s = await store.create_session(app_name=app, user_id=B, session_id="bob-only",
                                           state={"bob": "private"})
            await store.append_event(s, text_event("bob's private note", author="user",
                                                   invocation_id="ib2"))

    asyncio.run(seed())

    code, out, _ = cli(capsys, "sessions", "--db", db, "--user", A, "--app", app, "--json")
    assert code == 0 and [r["id"] for r in json.loads(out)] == ["same"]
    code, out, _ = cli(capsys, "state", "--db", db, "--user", A, "--app", app, "--json")
    assert code == 0 and json.loads(out) == {"owner": A, "user:secret": "alice's"}
    code, out, err = cli(capsys, "state", "--db", db, "--user", A, "--app", app,
                         "--session", "bob-only", "--json")
    assert code != 0 and "private" not in out + err
    code, out, err = cli(capsys, "messages", "--db", db, "--user", A, "--app", app, "--json")
    assert code == 0 and "bob" not in out and "alice speaks" in out
    code, out, err = cli(capsys, "messages", "--db", db, "--user", A, "--app", app,
                         "--session", "bob-only", "--json")
    assert "bob's private note" not in out + err
    code, out, err = cli(capsys, "runs", "--db", db, "--user", A, "--app", app,
                         "--session", "bob-only", "--json")
    assert "ib2" not in out
    code, out, err = cli(capsys, "export", "--db", db, "--user", A, "--app", app,
                         "--session", "bob-only")
    assert code != 0 and "private" not in out
    code, out, err = cli(capsys, "branch", "--db", db, "--user", A, "--app", app,
                         "--session", "bob-only", "--from", "ib2")
    assert code != 0

    async def check() -> None:
        async with DatabaseSessionService(db) as store:
            bob = await store.get_session(app_name=app, user_id=B, session_id="bob-only")
            assert bob.state == {"bob": "private", "user:secret": "bob's",
                                 "user:token": "bob-token"}
            assert [e.content.parts[0].text for e in bob.events] == ["bob's private note"]

    asyncio.run(check())
