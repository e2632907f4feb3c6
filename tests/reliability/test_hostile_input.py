"""Hostile and odd input: stored and returned exactly, or refused clearly with nothing written.

Property-based (hypothesis) on a SQLite file and on PostgreSQL:

* state values that are not JSON (sets, bytes, objects, NaN/Infinity, non-string keys,
  datetimes, Decimals) mixed into otherwise valid nested values, through create_session and
  append_event, in every scope (session, ``user:``, ``app:``, ``temp:``);
* ids (app, user, session) with quotes, SQL fragments, LIKE wildcards, path separators,
  whitespace, NUL, combining characters, emoji, and lengths around the 256 limit;
* event payloads (custom metadata) with the same hostile values.

And explicit cases: nesting at and beyond ``MAX_DEPTH``, 1 MB state values, a 5 MB event,
lone surrogates (not encodable as UTF-8) in state and in ids.

Refused means: ``StateNotSerializableError`` / ``InvalidIdError`` / ``InvalidValueError``
(never a driver error), the message says nothing was written, and every table has exactly the
rows it had before.
"""

from __future__ import annotations

import asyncio
import datetime
import decimal
import math
import uuid
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from multi_agent import (
    DatabaseSessionService,
    InvalidIdError,
    StateNotSerializableError,
)
from multi_agent.errors import InvalidValueError
from multi_agent.store.codec import MAX_DEPTH
from multi_agent.store.schema import ID_LENGTH
from tests.conftest import fresh_pg_database
from tests.helpers import text_event

from ._util import table_counts

HYPOTHESIS = settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large,
    ],
)

# ---------------------------------------------------------------------------------------------
# The service under test: one per test, driven from a sync test through its own event loop


class Driver:
    def __init__(self, url: str) -> None:
        self.runner = asyncio.Runner()
        self.store = self.runner.run(self._open(url))

    @staticmethod
    async def _open(url: str) -> DatabaseSessionService:
        store = DatabaseSessionService(url)
        await store.prepare()
        return store

    def __call__(self, coro) -> Any:
        return self.runner.run(coro)

    def close(self) -> None:
        self.runner.run(self.store.close())
        self.runner.close()


@pytest.fixture(params=["sqlite_file", "postgres"])
def drive(request, tmp_path: Path):
    if request.param == "sqlite_file":
        url = f"sqlite+aiosqlite:///{tmp_path / 'hostile.db'}"
    else:
        url = asyncio.run(fresh_pg_database())
    driver = Driver(url)
    yield driver
    driver.close()


# ---------------------------------------------------------------------------------------------
# Strategies and the oracle

ODD = [
    "\x00", "'", '"', "\\", "/", "%", "_", ";", "-", " ", "\t", "\n", "\r", "\x0b", "\u200b",
    "\ufeff", "\u202e", "é", "\u0301", "😀", "\U0010ffff", "ǅ", "İ", "\uffff",
]
FRAGMENTS = [
    "'; DROP TABLE ma_events; --", "\" OR 1=1 --", "%' OR '1'='1", "Robert'); DELETE FROM "
    "ma_sessions;--", "../../etc/passwd", "C:\\Windows\\system32", "/", ".", "..", " ", "\t\n",
    "NULL", "null", "None", "$1", ":name", "?", "%s", "{}", "[]", "%", "_", "*", "user:", "app:",
    "e\u0301", "--", "\x00",
]
# Lone surrogates (not UTF-8) have their own tests below, so they do not mask other findings.
odd_char = st.one_of(st.characters(codec="utf-8"), st.sampled_from(ODD))
odd_text = st.text(alphabet=odd_char, max_size=24)

json_leaf = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False), odd_text, st.sampled_from(FRAGMENTS),
)
bad_leaf = st.sampled_from([
    float("nan"), float("inf"), float("-inf"), b"bytes", bytearray(b"ba"), {1, 2},
    frozenset({"a"}), object(), datetime.datetime(2024, 1, 1), datetime.date(2024, 1, 1),
    decimal.Decimal("1.5"), complex(1, 2), Path("/tmp"), range(3), type,
])
bad_key = st.one_of(st.integers(), st.none(), st.booleans(), st.just((1, 2)), st.floats())


def values(allow_bad: bool, allow_tuples: bool = True):
    leaf = st.one_of(json_leaf, json_leaf, json_leaf, bad_leaf) if allow_bad else json_leaf
    key = st.one_of(odd_text, odd_text, odd_text, bad_key) if allow_bad else odd_text

    def extend(children):
        options = [
            st.lists(children, max_size=4),
            st.dictionaries(key, children, max_size=4),
        ]
        if allow_tuples:
            options.append(st.lists(children, max_size=3).map(tuple))
        return st.one_of(*options)

    return st.recursive(leaf, extend, max_leaves=12)


state_key = st.one_of(
    odd_text,
    st.sampled_from(FRAGMENTS),
    st.tuples(st.sampled_from(["user:", "app:", "temp:"]), odd_text).map("".join),
)


def json_ok(v: Any, depth: int = 0) -> bool:
    """What the store promises to accept: plain JSON no deeper than MAX_DEPTH."""
    if depth > MAX_DEPTH:
        return False
    if v is None or isinstance(v, bool | str | int):
        return True
    if isinstance(v, float):
        return math.isfinite(v)
    if isinstance(v, dict):
        return all(isinstance(k, str) and json_ok(x, depth + 1) for k, x in v.items())
    if isinstance(v, list | tuple):
        return all(json_ok(x, depth + 1) for x in v)
    return False


def normal(v: Any) -> Any:
    """The value as it reads back (tuples are stored as lists)."""
    if isinstance(v, dict):
        return {k: normal(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [normal(x) for x in v]
    return v


def same(a: Any, b: Any) -> bool:
    """Equal and of the same types all the way down (1 == 1.0 == True would hide changes)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float):
        return repr(a) == repr(b)
    return a == b


def scoped(delta: dict[str, Any]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {"app": {}, "user": {}, "session": {}}
    for k, v in delta.items():
        if k.startswith("temp:"):
            continue
        if k.startswith("app:"):
            out["app"][k[4:]] = normal(v)
        elif k.startswith("user:"):
            out["user"][k[5:]] = normal(v)
        else:
            out["session"][k] = normal(v)
    return out


def merged(scopes: dict[str, dict[str, Any]]) -> dict[str, Any]:
    out = dict(scopes["session"])
    out.update({f"app:{k}": v for k, v in scopes["app"].items()})
    out.update({f"user:{k}": v for k, v in scopes["user"].items()})
    return out


def acceptable(state: dict) -> bool:
    return all(
        isinstance(k, str) and (k.startswith("temp:") or json_ok(v)) for k, v in state.items()
    )


def fresh_app() -> str:
    return "app_" + uuid.uuid4().hex[:10]


# ---------------------------------------------------------------------------------------------
# State values


@HYPOTHESIS
@given(state=st.dictionaries(st.one_of(state_key, state_key, state_key, bad_key),
                             values(allow_bad=True), max_size=5))
def test_create_session_state_exact_or_refused(drive: Driver, state: dict) -> None:
    store, app = drive.store, fresh_app()
    if not acceptable(state):
        before = drive(table_counts(store))
        with pytest.raises(StateNotSerializableError) as info:
            drive(store.create_session(app_name=app, user_id="u", state=state))
        assert "Nothing was written" in str(info.value)
        assert drive(table_counts(store)) == before
        return
    s = drive(store.create_session(app_name=app, user_id="u", state=state))
    expected = scoped(state)
    got = drive(store.get_session(app_name=app, user_id="u", session_id=s.id))
    assert same(got.state, merged(expected))
    assert same(drive(store.get_user_state(app_name=app, user_id="u")), expected["user"])
    assert same(drive(store.get_app_state(app_name=app)), expected["app"])
    (listed,) = drive(store.list_sessions(app_name=app, user_id="u")).sessions
    assert same(listed.state, merged(expected))


@HYPOTHESIS
@given(delta=st.dictionaries(state_key, values(allow_bad=True, allow_tuples=False), max_size=5))
def test_append_state_exact_or_refused(drive: Driver, delta: dict) -> None:
    store, app = drive.store, fresh_app()
    base = {"base": 1, "user:base": 2, "app:base": 3}
    s = drive(store.create_session(app_name=app, user_id="u", state=base))
    event = text_event("hostile delta", state=delta)
    if not acceptable(delta):
        before = drive(table_counts(store))
        with pytest.raises(StateNotSerializableError) as info:
            drive(store.append_event(s, event))
        assert "Nothing was written" in str(info.value)
        assert drive(table_counts(store)) == before
        got = drive(store.get_session(app_name=app, user_id="u", session_id=s.id))
        assert got.events == [] and got.state == base
        assert s.events == []
        # The refused append left the copy usable.
        drive(store.append_event(s, text_event("fine", state={"base": 4})))
        got = drive(store.get_session(app_name=app, user_id="u", session_id=s.id))
        assert got.state == {**base, "base": 4} and len(got.events) == 1
        return
    drive(store.append_event(s, event))
    expected = scoped({**base, **delta})
    got = drive(store.get_session(app_name=app, user_id="u", session_id=s.id))
    assert same(got.state, merged(expected))
    assert got.events == s.events
    # The caller's copy shows the same state (plus temp: keys, which live in memory only).
    assert same(normal({k: v for k, v in s.state.items() if not k.startswith("temp:")}),
                got.state)
    stored_delta = got.events[0].actions.state_delta
    assert same(stored_delta, {k: normal(v) for k, v in delta.items() if not k.startswith("temp:")})
    assert same(drive(store.get_user_state(app_name=app, user_id="u")), expected["user"])
    assert same(drive(store.get_app_state(app_name=app)), expected["app"])


@HYPOTHESIS
@given(meta=st.dictionaries(odd_text, values(allow_bad=True, allow_tuples=False), max_size=4),
       body=odd_text)
def test_event_payload_exact_or_refused(drive: Driver, meta: dict, body: str) -> None:
    """What an event carries besides state (here custom_metadata and text) reads back exactly.

    A value JSON cannot hold exactly (NaN, bytes, a set) must be refused, not silently turned
    into null / base64 text / a list.
    """
    store, app = drive.store, fresh_app()
    s = drive(store.create_session(app_name=app, user_id="u"))
    event = text_event(body or "x", custom_metadata=meta)  # validated by pydantic
    before = drive(table_counts(store))
    try:
        drive(store.append_event(s, event))
    except InvalidValueError as exc:
        assert "Nothing was written" in str(exc)
        assert drive(table_counts(store)) == before
        return
    got = drive(store.get_session(app_name=app, user_id="u", session_id=s.id))
    assert got.events[0].content == event.content
    assert same(got.events[0].custom_metadata, meta), (
        f"stored {got.events[0].custom_metadata!r} for {meta!r}"
    )


# ---------------------------------------------------------------------------------------------
# Ids


def id_ok(v: str) -> bool:
    return 1 <= len(v) <= ID_LENGTH and "\x00" not in v


hostile_id = st.one_of(
    odd_text,
    st.sampled_from(FRAGMENTS),
    st.text(alphabet=odd_char, min_size=250, max_size=260),
    st.sampled_from(["😀" * 256, "😀" * 257, "x" * 256, "x" * 257, "", " ", "\x00"]),
)


@HYPOTHESIS
@given(app=hostile_id, user=hostile_id, sid=hostile_id)
def test_ids_exact_or_refused(drive: Driver, app: str, user: str, sid: str) -> None:
    store = drive.store
    if not (id_ok(app) and id_ok(user) and id_ok(sid)):
        before = drive(table_counts(store))
        with pytest.raises(InvalidIdError):
            drive(store.create_session(app_name=app, user_id=user, session_id=sid))
        # Reads find nothing (ADK's answers: None, a delete of nothing), never an error.
        assert drive(store.get_session(app_name=app, user_id=user, session_id=sid)) is None
        drive(store.delete_session(app_name=app, user_id=user, session_id=sid))
        assert drive(store.list_sessions(app_name=app, user_id=user)).sessions == [] or (
            id_ok(app) and id_ok(user))
        assert drive(table_counts(store)) == before
        return
    state = {"sid": sid, "user:user": user, "app:app": app}
    drive(store.delete_session(app_name=app, user_id=user, session_id=sid))  # a repeat example
    s = drive(store.create_session(app_name=app, user_id=user, session_id=sid, state=state))
    assert (s.app_name, s.user_id, s.id) == (app, user, sid)
    drive(store.append_event(s, text_event(sid, author="agent", state={"echo": user})))
    got = drive(store.get_session(app_name=app, user_id=user, session_id=sid))
    assert got == s
    assert (got.app_name, got.user_id, got.id) == (app, user, sid)
    assert got.state == {**state, "echo": user}
    listed = drive(store.list_sessions(app_name=app, user_id=user)).sessions
    assert [(x.user_id, x.id) for x in listed] == [(user, sid)]
    assert drive(store.get_user_state(app_name=app, user_id=user)) == {"user": user}
    drive(store.delete_session(app_name=app, user_id=user, session_id=sid))
    assert drive(store.get_session(app_name=app, user_id=user, session_id=sid)) is None
    assert drive(store.list_sessions(app_name=app, user_id=user)).sessions == []


async def test_ids_that_look_alike_are_different_sessions(store, app_name: str) -> None:
    """No normalisation of case, width, accents, or trailing spaces: each id is its own."""
    ids = ["x", "X", "x ", " x", "x\t", "ｘ", "é", "e\u0301", "x\u200b", "x/", "x\\", "x%", "x_"]
    for i, sid in enumerate(ids):
        await store.create_session(app_name=app_name, user_id="u", session_id=sid,
                                   state={"i": i})
        await store.create_session(app_name=app_name, user_id=sid, session_id="s",
                                   state={"user:i": i})
    for i, sid in enumerate(ids):
        got = await store.get_session(app_name=app_name, user_id="u", session_id=sid)
        assert got.state == {"i": i}
        assert (await store.get_user_state(app_name=app_name, user_id=sid)) == {"i": i}
        (only,) = (await store.list_sessions(app_name=app_name, user_id=sid)).sessions
        assert only.id == "s"
    listed = (await store.list_sessions(app_name=app_name, user_id="u")).sessions
    assert sorted(x.id for x in listed) == sorted(ids)


# ---------------------------------------------------------------------------------------------
# Lone surrogates: valid Python strings that UTF-8 (SQLite, PostgreSQL) cannot hold

SURROGATES = ["\ud800", "a\udfffb", "\udc80" * 3, "😀\ud83d"]


@pytest.mark.parametrize("backend", ["sqlite_file", "postgres"], indirect=True)
async def test_lone_surrogate_in_state_refused_clearly(
    store: DatabaseSessionService, app_name: str
) -> None:
    s = await store.create_session(app_name=app_name, user_id="u", state={"k": 1})
    for bad in SURROGATES:
        for delta in ({"v": bad}, {"v": {bad: 1}}, {bad: 1}, {"user:v": [bad]}):
            before = await table_counts(store)
            with pytest.raises(StateNotSerializableError) as info:
                await store.create_session(app_name=app_name, user_id="u", state=delta)
            assert "Nothing was written" in str(info.value)
            with pytest.raises(StateNotSerializableError):
                await store.append_event(s, text_event("x", state=delta))
            assert await table_counts(store) == before
    got = await store.get_session(app_name=app_name, user_id="u", session_id=s.id)
    assert got.state == {"k": 1} and got.events == []


@pytest.mark.parametrize("backend", ["sqlite_file", "postgres"], indirect=True)
async def test_lone_surrogate_in_id_refused_clearly(
    store: DatabaseSessionService, app_name: str
) -> None:
    for bad in SURROGATES:
        for which in ("app_name", "user_id", "session_id"):
            ids = {"app_name": app_name, "user_id": "u", "session_id": "s", which: bad}
            before = await table_counts(store)
            with pytest.raises(InvalidIdError):
                await store.create_session(**ids)
            assert await store.get_session(**ids) is None  # a read finds nothing
            assert await table_counts(store) == before


# ---------------------------------------------------------------------------------------------
# Depth and size


def nested(depth: int, kind: str) -> Any:
    v: Any = "leaf"
    for i in range(depth):
        v = [v] if kind == "list" else {f"k{i}": v}
    return v


@pytest.mark.parametrize("backend", ["sqlite_file", "postgres"], indirect=True)
@pytest.mark.parametrize("kind", ["list", "dict"])
async def test_nesting_limit(store: DatabaseSessionService, app_name: str, kind: str) -> None:
    deepest_ok = nested(MAX_DEPTH, kind)
    s = await store.create_session(app_name=app_name, user_id="u",
                                   state={"d": deepest_ok, "user:d": deepest_ok})
    got = await store.get_session(app_name=app_name, user_id="u", session_id=s.id)
    assert got.state == {"d": deepest_ok, "user:d": deepest_ok}
    for depth in (MAX_DEPTH + 1, 5_000, 200_000):
        before = await table_counts(store)
        with pytest.raises(StateNotSerializableError, match=f"deeper than {MAX_DEPTH}"):
            await store.append_event(
                s, text_event("too deep", state={"user:d": nested(depth, kind)})
            )
        with pytest.raises(StateNotSerializableError, match=f"deeper than {MAX_DEPTH}"):
            await store.create_session(app_name=app_name, user_id="u",
                                       state={"d": nested(depth, kind)})
        assert await table_counts(store) == before
    again = await store.get_session(app_name=app_name, user_id="u", session_id=s.id)
    assert again == got


@pytest.mark.parametrize("backend", ["sqlite_file", "postgres"], indirect=True)
@pytest.mark.parametrize("depth", [MAX_DEPTH - 10, MAX_DEPTH])
async def test_deepest_accepted_state_in_an_event_stays_readable(
    db_url: str, app_name: str, depth: int, monkeypatch
) -> None:
    """A state delta the store accepts must not make its session unreadable.

    The event carries an image part, which the fast decoder hands to pydantic (as it does
    any event its plan does not cover). Run without MULTI_AGENT_VERIFY_DECODE, as in
    production.
    """
    from google.genai import types

    monkeypatch.setenv("MULTI_AGENT_VERIFY_DECODE", "0")
    async with DatabaseSessionService(db_url) as store:
        s = await store.create_session(app_name=app_name, user_id="u")
        event = text_event("a picture and a deep value", state={"d": nested(depth, "list")})
        event.content.parts.append(
            types.Part(inline_data=types.Blob(mime_type="image/png", data=b"\x89PNG\r\n"))
        )
        try:
            await store.append_event(s, event)
        except InvalidValueError:
            return  # refused up front: fine
        got = await store.get_session(app_name=app_name, user_id="u", session_id=s.id)
        assert got.events == [event] and got.state == {"d": nested(depth, "list")}


@pytest.mark.parametrize("backend", ["sqlite_file", "postgres"], indirect=True)
async def test_huge_values_round_trip(store: DatabaseSessionService, app_name: str) -> None:
    mb = "ünï\x00😀'\"; DROP TABLE x; -- " * (1024 * 1024 // 24)
    many = {f"key {i} \x00 ü": i for i in range(20_000)}
    state = {"big": mb, "user:big": mb[::-1], "app:many": many, mb[:100_000]: "long key"}
    s = await store.create_session(app_name=app_name, user_id="u", state=state)
    event = text_event("ü" * (5 * 1024 * 1024), state={"also": [mb] * 2})
    await store.append_event(s, event)
    got = await store.get_session(app_name=app_name, user_id="u", session_id=s.id)
    assert got == s
    assert got.state == {**state, "also": [mb, mb]}
    assert got.events[0].content.parts[0].text == "ü" * (5 * 1024 * 1024)
    assert await store.get_app_state(app_name=app_name) == {"many": many}
