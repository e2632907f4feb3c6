"""The store's SQL statements, built once and compiled once per dialect.

Building a SQLAlchemy Core statement and its cache key costs 50-500 µs in Python, more than
SQLite takes to run it. So every statement the store runs is defined here, once, with named
parameters; :class:`Prepared` compiles it the first time a dialect uses it and from then on
hands the driver the SQL text and a parameter tuple (``Connection.exec_driver_sql``).
SQLite renders ``FOR UPDATE`` as nothing (``BEGIN IMMEDIATE`` already holds the write lock);
PostgreSQL renders it.
"""

from __future__ import annotations

import operator
from typing import Any

from sqlalchemy import and_, bindparam, delete, select, update
from sqlalchemy.engine import Connection, CursorResult

from . import schema as s
from .sealing import OpenedResult, keyring_of, sealed_binds, sealed_results

__all__ = ["Prepared"]


class Prepared:
    """A statement compiled once per dialect and executed as driver SQL."""

    __slots__ = ("_compiled", "_sealed", "name", "stmt")

    def __init__(self, name: str, stmt: Any) -> None:
        self.name = name
        self.stmt = stmt
        self._compiled: dict[str, tuple[str, tuple[str, ...] | None, dict[str, Any]]] = {}
        # Per dialect name: the sealed parameters and result columns (``sealing.py``).
        self._sealed: dict[str, tuple[dict[str, str], list[tuple[int, str]]]] = {}

    def _compiled_for(self, dialect: Any) -> tuple[str, tuple[str, ...] | None, dict[str, Any]]:
        """The statement's driver SQL for ``dialect``, its parameters' names in order (None:
        named), and the literal values written into it."""
        compiled = self._compiled.get(dialect.name)
        if compiled is None:
            c = self.stmt.compile(dialect=dialect)
            names = tuple(c.positiontup) if c.positiontup is not None else None
            # Literal values written into the statement (``values(state="{}")``) are binds too.
            literals = {
                c.bind_names[b]: b.value for b in c.binds.values() if not b.required
            }
            # Scalar column defaults of an INSERT (``Column(default=0)``) that SQLAlchemy
            # would fill in at execution time: here they are passed like literals.
            for column in getattr(c, "insert_prefetch", ()) or ():
                default = column.default
                if default is not None and default.is_scalar:
                    literals[column.key] = default.arg
            compiled = (str(c), names, literals)
            self._sealed[dialect.name] = (sealed_binds(c), sealed_results(c))
            self._compiled[dialect.name] = compiled
        return compiled

    def __call__(self, conn: Connection, **params: Any) -> CursorResult[Any]:
        dialect = conn.dialect
        sql, names, literals = self._compiled_for(dialect)
        if literals:
            params = {**literals, **params}
        keyring = keyring_of(dialect)
        if keyring is not None:  # encryption at rest: seal the content, open what is read
            return self._sealed_call(conn, keyring, sql, names, params)
        if dialect.driver == "pysqlite":
            # The standard sqlite3 driver needs no help from SQLAlchemy's result machinery;
            # going straight to its cursor halves the cost of a statement.
            raw = conn.connection.dbapi_connection
            return _SqliteResult(raw.execute(sql, [params[n] for n in names] if names else ()), sql)
        if names is None:
            return conn.exec_driver_sql(sql, params)
        args = tuple([params[n] for n in names])
        if dialect.driver == "asyncpg":
            return _driver_call(conn, sql, args)
        return conn.exec_driver_sql(sql, args)


    def executemany(self, conn: Connection, many: list[dict[str, Any]]) -> None:
        """Runs the statement once for each parameter set, in order, in one exchange with the
        server (asyncpg's ``executemany`` sends them all, then waits once); results are not
        read. PostgreSQL (asyncpg) only, and not for an encrypted store (nothing is sealed
        here). A failure fails the whole call (the transaction is then aborted).
        """
        dialect = conn.dialect
        if dialect.driver != "asyncpg" or keyring_of(dialect) is not None:
            raise TypeError("Prepared.executemany: asyncpg, unencrypted only")
        sql, names, literals = self._compiled_for(dialect)
        assert names is not None
        if literals:  # merged once a parameter set (not once a name: ~70 µs a set)
            many = [{**literals, **p} for p in many]
        args = [tuple([p[n] for n in names]) for p in many]
        _driver_call(conn, sql, args, many=True)

    async def send(self, conn: Connection, driver: Any, params: dict[str, Any]) -> None:
        """Runs the statement on asyncpg's own connection ``driver`` (``conn``'s, outside any
        transaction: the statement is its own) without SQLAlchemy's greenlet, adapted cursor
        and transaction bookkeeping: measured ~0.13 ms of CPU less for a lone append (of
        ~0.5) on this box. Results are not read. ``before_cursor_execute`` listeners are
        called, as ``_driver_call`` does (with no cursor). Errors are asyncpg's own
        (``Backend._run_on_driver`` deals with them). asyncpg, unencrypted only."""
        dialect = conn.dialect
        if dialect.driver != "asyncpg" or keyring_of(dialect) is not None:
            raise TypeError("Prepared.send: asyncpg, unencrypted only")
        sql, names, literals = self._compiled_for(dialect)
        if literals:
            params = {**literals, **params}
        sql, args = _listened(conn, None, sql, [params[n] for n in names or ()], False)
        await driver.execute(sql, *args)

    def _sealed_call(
        self, conn: Connection, keyring: Any, sql: str, names: tuple[str, ...] | None,
        params: dict[str, Any],
    ) -> Any:
        dialect = conn.dialect
        binds, results = self._sealed[dialect.name]
        params = dict(params)
        for name, column in binds.items():
            if params.get(name) is not None:
                params[name] = keyring.seal(column, params[name])
        if dialect.driver == "pysqlite":
            raw = conn.connection.dbapi_connection
            assert raw is not None
            result: Any = _SqliteResult(
                raw.execute(sql, tuple([params[n] for n in names or ()])), sql)
        elif names is None:
            result = conn.exec_driver_sql(sql, params)
        else:
            result = conn.exec_driver_sql(sql, tuple([params[n] for n in names]))
        return OpenedResult(result, results, keyring) if results else result


def _listened(conn: Connection, cursor: Any, sql: str, args: Any, many: bool) -> tuple[str, Any]:
    """The statement and arguments after SQLAlchemy's ``before_cursor_execute`` listeners
    (e.g. a statement counter: tests, bench), for a statement sent past its execute."""
    if conn._has_events or conn.engine._has_events:
        for fn in conn.dispatch.before_cursor_execute:
            sql, args = fn(conn, cursor, sql, args, None, many)
    return sql, args


def _driver_call(conn: Connection, sql: str, args: Any, *, many: bool = False) -> Any:
    """Runs ``sql`` on the driver's own cursor (SQLAlchemy's asyncpg adapter: it begins the
    transaction, keeps asyncpg's prepared statements and turns asyncpg's errors into DBAPI
    ones), without SQLAlchemy's execution context and result objects: measured 85 µs a
    statement instead of 132 on this box, ~0.3 ms of an append's CPU (``many``: ``args`` is a
    list of parameter tuples, sent with the cursor's ``executemany``). What SQLAlchemy does
    around a statement and the store relies on is kept: its ``before_cursor_execute``
    listeners are called, and a failure goes through its error handling (wrapped in
    ``DBAPIError``; a dead connection invalidated, as the retry in ``backend.py`` expects)."""
    raw = conn.connection.dbapi_connection
    assert raw is not None
    cursor = raw.cursor()
    compiled = sql  # the rows' class is kept under the statement's own text (a listener may
    # add to what is sent: a trace comment, different every time)
    sql, args = _listened(conn, cursor, sql, args, many)
    try:
        if many:
            cursor.executemany(sql, args)
        else:
            cursor.execute(sql, args)
    except BaseException as exc:  # as SQLAlchemy's own execute does: every failure (a
        # statement timeout too) goes through its handling, which resets the connection
        conn._handle_dbapi_exception(exc, sql, args, cursor, None)
    return _SqliteResult(cursor, compiled)


class _SqliteRow(tuple):
    """A result row whose columns are also attributes (``row.state``), like SQLAlchemy's."""

    __slots__ = ()
    _fields: tuple[str, ...] = ()

    def __getattr__(self, name: str) -> Any:
        try:
            return self[self._fields.index(name)]
        except ValueError:
            raise AttributeError(name) from None


# By statement text: a statement always gives rows of the same columns (~2 µs a row to name
# them again from the cursor's description).
_ROW_CLASSES: dict[str, type[_SqliteRow]] = {}


def _row_class(fields: tuple[str, ...]) -> type[_SqliteRow]:
    """A row class whose columns are properties (``row.state`` without the failed lookup and
    the linear search of ``__getattr__``: an append reads ~18 columns)."""
    attrs: dict[str, Any] = {"__slots__": (), "_fields": fields}
    for i, name in enumerate(fields):
        if not hasattr(tuple, name) and name not in attrs:
            attrs[name] = property(operator.itemgetter(i))
    return type("Row", (_SqliteRow,), attrs)


class _SqliteResult:
    """The slice of SQLAlchemy's ``CursorResult`` API the store uses, over a sqlite3 cursor."""

    __slots__ = ("_cursor", "_sql")

    def __init__(self, cursor: Any, sql: str) -> None:
        self._cursor = cursor
        self._sql = sql  # the statement's text: its rows' class is kept under it

    @property
    def rowcount(self) -> int:
        return int(self._cursor.rowcount)

    def first(self) -> Any:
        row = self._cursor.fetchone()
        self._cursor.close()
        if row is None:
            return None
        cls = _ROW_CLASSES.get(self._sql)
        if cls is None:
            fields = tuple(d[0] for d in self._cursor.description)
            cls = _ROW_CLASSES[self._sql] = _row_class(fields)
        return cls(row)

    def scalar(self) -> Any:
        row = self._cursor.fetchone()
        self._cursor.close()
        return None if row is None else row[0]

    def scalar_one(self) -> Any:
        row = self._cursor.fetchone()
        self._cursor.close()
        if row is None:
            raise LookupError("expected one row, found none")
        return row[0]

    def scalars(self) -> Any:
        return [row[0] for row in self._cursor.fetchall()]


def session_where(table: Any, id_column: str = "session_id") -> Any:
    """``table``'s row(s) of the session the binds ``app_name``, ``user_id``, ``session_id``
    name (``id_column``: the session id's column)."""
    return and_(
        table.c.app_name == bindparam("app_name"),
        table.c.user_id == bindparam("user_id"),
        table.c[id_column] == bindparam("session_id"),
    )


ss, ev = s.sessions.c, s.events.c

# -- sessions ---------------------------------------------------------------------------------

_duplicate_seq = (
    select(ev.seq)
    .where(
        ev.app_name == ss.app_name, ev.user_id == ss.user_id, ev.session_id == ss.id,
        ev.id == bindparam("event_id"),
    )
    .scalar_subquery()
)

SESSION_FOR_APPEND = Prepared(
    "session_for_append",
    # One round trip: the session row (locked) and whether the event is already stored.
    select(
        ss.state, ss.update_time, ss.revision, ss.last_seq, ss.head_run_id, ss.last_agent,
        ss.agent_paths, ss.awaiting_seq, ss.incarnation, ss.branch_rev, ss.key_revs,
        _duplicate_seq.label("duplicate_seq"),
    )
    .where(session_where(s.sessions, "id"))
    .with_for_update(of=s.sessions),
)

# An append that writes user: keys also locks the user's state row: in the same statement
# (one round trip fewer; rows are locked session first, user second, LOCK ORDER in
# groupcommit.py). No row when the user row does not exist yet: SESSION_FOR_APPEND then.
SESSION_AND_USER_FOR_APPEND = Prepared(
    "session_and_user_for_append",
    select(
        ss.state, ss.update_time, ss.revision, ss.last_seq, ss.head_run_id, ss.last_agent,
        ss.agent_paths, ss.awaiting_seq, ss.incarnation, ss.branch_rev, ss.key_revs,
        _duplicate_seq.label("duplicate_seq"), s.user_states.c.state.label("user_state"),
        s.user_states.c.revision.label("user_revision"),
        s.user_states.c.key_revs.label("user_key_revs"),
    )
    .select_from(s.sessions.join(s.user_states, and_(
        s.user_states.c.app_name == ss.app_name, s.user_states.c.user_id == ss.user_id)))
    .where(session_where(s.sessions, "id"))
    .with_for_update(of=[s.sessions, s.user_states]),
)

SESSION_FOR_READ = Prepared(
    "session_for_read",
    select(ss.state, ss.update_time, ss.revision, ss.last_seq, ss.incarnation).where(
        session_where(s.sessions, "id")
    ),
)

SESSION_EXISTS = Prepared(
    "session_exists", select(ss.revision).where(session_where(s.sessions, "id"))
)

def session_after_append() -> dict[str, Any]:
    """The session row's new values after an append, as binds (and the event count)."""
    return dict(
        state=bindparam("state"),
        update_time=bindparam("update_time"),
        revision=bindparam("revision"),
        last_seq=bindparam("last_seq"),
        event_count=ss.event_count + 1,
        last_agent=bindparam("last_agent"),
        awaiting_seq=bindparam("awaiting_seq"),
        head_run_id=bindparam("head_run_id"),
        agent_paths=bindparam("agent_paths"),
        key_revs=bindparam("key_revs"),
    )


SESSION_UPDATE_AFTER_APPEND = Prepared(
    "session_update_after_append",
    update(s.sessions).where(session_where(s.sessions, "id")).values(**session_after_append()),
)

SESSION_INSERT = Prepared(
    "session_insert",
    s.sessions.insert().values(
        app_name=bindparam("app_name"), user_id=bindparam("user_id"), id=bindparam("session_id"),
        state=bindparam("state"), initial_state=bindparam("state"),
        create_time=bindparam("now"), update_time=bindparam("now"), revision=0, last_seq=0,
        event_count=0, agent_paths="{}", incarnation=bindparam("incarnation"),
        branch_rev=0, key_revs=bindparam("key_revs"),
    ),
)

SESSION_DELETE = Prepared(
    "session_delete", delete(s.sessions).where(session_where(s.sessions, "id"))
)

# -- events -----------------------------------------------------------------------------------

EVENT_COLUMNS = [c.name for c in s.events.c]

EVENT_INSERT = Prepared(
    "event_insert", s.events.insert().values({name: bindparam(name) for name in EVENT_COLUMNS})
)

# PostgreSQL: the event INSERT rides along with the session UPDATE as a data-modifying CTE, one
# round trip instead of two (SQLite has no such CTEs and no round trips to save).
EVENT_INSERT_WITH_SESSION_UPDATE = Prepared(
    "event_insert_with_session_update",
    SESSION_UPDATE_AFTER_APPEND.stmt.add_cte(
        s.events.insert()
        .values({name: bindparam(name) for name in EVENT_COLUMNS})
        .cte("inserted_event")
    ),
)

EVENT_BY_ID = Prepared(
    "event_by_id", select(ev.seq).where(session_where(s.events), ev.id == bindparam("event_id"))
)

# Only on the duplicate-id path: what is needed to tell a retry from a different event.
EVENT_IDENTITY = Prepared(
    "event_identity",
    select(ev.seq, ev.digest, ev.event_data).where(
        session_where(s.events), ev.id == bindparam("event_id")
    ),
)

EVENT_NEWEST_ON_PATH = Prepared(
    "event_newest_on_path",
    select(ev.id)
    .where(session_where(s.events), ev.on_path.is_(True))
    .order_by(ev.seq.desc())
    .limit(1),
)

_events_on_path = select(ev.event_data).where(session_where(s.events), ev.on_path.is_(True))

EVENTS_ALL = Prepared("events_all", _events_on_path.order_by(ev.seq))
EVENTS_AFTER = Prepared(
    "events_after",
    _events_on_path.where(ev.timestamp >= bindparam("after")).order_by(ev.seq),
)
EVENTS_RECENT = Prepared(
    "events_recent", _events_on_path.order_by(ev.seq.desc()).limit(bindparam("limit"))
)
EVENTS_RECENT_AFTER = Prepared(
    "events_recent_after",
    _events_on_path.where(ev.timestamp >= bindparam("after"))
    .order_by(ev.seq.desc())
    .limit(bindparam("limit")),
)
EVENTS_BETWEEN = Prepared(
    "events_between",
    _events_on_path.where(ev.seq > bindparam("after_seq"), ev.seq < bindparam("before_seq"))
    .order_by(ev.seq),
)

HUMAN_TARGET_BACKFILL = Prepared(
    "human_target_backfill",
    update(s.events)
    .where(
        session_where(s.events), ev.seq >= bindparam("since_seq"),
        ev.message_type == "human", ev.target.is_(None),
    )
    .values(target=bindparam("target")),
)

EVENTS_DELETE = Prepared("events_delete", delete(s.events).where(session_where(s.events)))

# -- runs -------------------------------------------------------------------------------------

def run_row_values() -> dict[str, Any]:
    """A run row's columns as binds of the same names, for its INSERT (``status`` and
    ``error`` are set only by an explicit outcome, later)."""
    return {c.name: bindparam(c.name) for c in s.runs.c if c.name not in ("status", "error")}


RUN_INSERT = Prepared("run_insert", s.runs.insert().values(run_row_values()))

RUNS_DELETE = Prepared("runs_delete", delete(s.runs).where(session_where(s.runs)))

# -- app / user state -------------------------------------------------------------------------

_app, _usr = s.app_states.c, s.user_states.c
APP_WHERE = _app.app_name == bindparam("app_name")
USER_WHERE = and_(_usr.app_name == bindparam("app_name"), _usr.user_id == bindparam("user_id"))


def scope_values(prefix: str = "") -> dict[str, Any]:
    """A state row's new values as binds (``{prefix}_state``... inside the append's
    statement, where the session row's update uses the plain names)."""
    p = f"{prefix}_" if prefix else ""
    return dict(state=bindparam(f"{p}state"), update_time=bindparam(f"{p}now"),
                revision=bindparam(f"{p}revision"), key_revs=bindparam(f"{p}key_revs"))


APP_STATE = Prepared("app_state", select(_app.state, _app.revision).where(APP_WHERE))
APP_STATE_FOR_UPDATE = Prepared(
    "app_state_for_update",
    select(_app.state, _app.revision, _app.key_revs).where(APP_WHERE).with_for_update(),
)
APP_STATE_UPDATE = Prepared(
    "app_state_update", update(s.app_states).where(APP_WHERE).values(**scope_values())
)

USER_STATE = Prepared("user_state", select(_usr.state, _usr.revision).where(USER_WHERE))
USER_STATE_FOR_UPDATE = Prepared(
    "user_state_for_update",
    select(_usr.state, _usr.revision, _usr.key_revs).where(USER_WHERE).with_for_update(),
)
USER_STATE_UPDATE = Prepared(
    "user_state_update", update(s.user_states).where(USER_WHERE).values(**scope_values())
)


# PostgreSQL: the append's event INSERT + session UPDATE with the user's and/or the app's state
# row UPDATE riding along as CTEs too (the rows were locked and merged earlier in the
# transaction; ``scopes.ScopeUpdate``).
EVENT_INSERT_WITH_UPDATES = {
    scopes: Prepared(
        "event_insert_with_session_update+" + "+".join(scopes),
        EVENT_INSERT_WITH_SESSION_UPDATE.stmt.add_cte(*[
            (update(s.user_states).where(USER_WHERE) if scope == "user"
             else update(s.app_states).where(APP_WHERE))
            .values(**scope_values(scope)).cte(f"updated_{scope}")
            for scope in scopes
        ]),
    )
    for scopes in (("user",), ("app",), ("user", "app"))
}
