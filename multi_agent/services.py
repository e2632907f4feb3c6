"""Plugs the store into ADK's CLI: ``adk web`` / ``adk api_server`` / ``adk run``.

ADK loads ``services.py`` from the agents directory (``adk web``/``api_server``) or from the
agent's own folder (``adk run``); this repository has one in both places that imports this
module. Importing it registers three URI schemes with ADK's service registry:

==========================================  ==================================================
``--session_service_uri``                   store
==========================================  ==================================================
``multi-agent://``                          SQLite file ``multi_agent_data.db`` in the agents dir
``multi-agent+sqlite:////abs/path.db``      SQLite file (3 slashes: relative to the cwd)
``multi-agent+postgresql://u:pw@host/db``   PostgreSQL through asyncpg
==========================================  ==================================================

The same schemes work for ``--memory_service_uri`` (our ``DatabaseMemoryService``, on the
same database file): full-text search, or with ``?search=hybrid`` / ``?search=semantic``
semantic search with the bundled sentence-embedding model (the ``[semantic]`` extra; the
environment variable ``MULTI_AGENT_MEMORY_SEARCH`` does the same).

``?window=N`` (session service, opt-in): a ``get_session`` call without a config, which is how
``adk web``/``api_server`` load a session on every turn, returns the last N events plus the
newest older compaction summary, never separating a tool call from its result
(:class:`~multi_agent.memory.bounded_service.BoundedSessionService`): a deliberate deviation
from ADK's contract that keeps a served turn's cost from growing with the history.

Options: the constructors' options go in the URI's query, e.g.
``multi-agent+postgresql://u:pw@host/db?on_stale=merge&pool_size=20`` or
``multi-agent://?sqlite_synchronous=NORMAL``; :data:`OPTIONS` lists them (session service:
``on_stale``, ``window``; SQLite: ``sqlite_synchronous``, ``sqlite_busy_timeout``,
``sqlite_wal_limit_bytes``; PostgreSQL: ``pool_size``, ``max_overflow``, ``pool_timeout``,
``pool_recycle``, ``pool_pre_ping``; memory service: ``search``, ``max_results``,
``max_entry_chars``, ``min_similarity``, ``backfill_per_search``). The driver's own
parameters pass through (PostgreSQL: ``ssl``, ``timeout``, ``command_timeout``, ...; SQLite:
``mode``, ``uri``, ...). An unknown option, one that does not apply to the service or the
database, a bad value or an option given twice raises ``ValueError`` naming what is accepted,
so ``adk web`` stops at start-up instead of running with a default.

Example::

    adk web --session_service_uri multi-agent:// --memory_service_uri multi-agent:// .
    adk web --session_service_uri 'multi-agent://?on_stale=merge' \
        --memory_service_uri 'multi-agent://?search=hybrid' .
"""

from __future__ import annotations

import difflib
import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode

from multi_agent.store import DatabaseSessionService

__all__ = [
    "OPTIONS",
    "SCHEMES",
    "UriOption",
    "memory_service_from_uri",
    "register",
    "session_service_from_uri",
]

SCHEMES = ("multi-agent", "multi-agent+sqlite", "multi-agent+postgresql")

SQLITE, POSTGRESQL = "sqlite", "postgresql"
SESSION, MEMORY = "session", "memory"
_DIALECT_NAMES = {SQLITE: "SQLite", POSTGRESQL: "PostgreSQL"}


# -- value parsers: a query string value -> the constructor's value, or ValueError ------------


def _choice(*values: str, upper: bool = False) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        value = raw.strip().upper() if upper else raw.strip().lower()
        if value not in values:
            raise ValueError
        return value

    return parse


def _integer(low: int, high: int | None = None) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        value = int(raw.strip().replace("_", ""))
        if value < low or (high is not None and value > high):
            raise ValueError
        return value

    return parse


def _number(low: float, *, inclusive: bool = True, high: float | None = None
            ) -> Callable[[str], float]:
    def parse(raw: str) -> float:
        value = float(raw)
        if not math.isfinite(value) or value < low or (value == low and not inclusive) or (
            high is not None and value > high
        ):
            raise ValueError
        return value

    return parse


def _boolean(raw: str) -> bool:
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ValueError


def _text(raw: str) -> str:
    if not raw:
        raise ValueError
    return raw


@dataclass(frozen=True)
class UriOption:
    """One query parameter of our URIs.

    Attributes:
        name: the parameter (the constructor's argument of that name, or the driver's).
        services: which services take it (``session``, ``memory``).
        dialects: on which databases it applies (``sqlite``, ``postgresql``).
        parse: turns the query string value into the constructor's value (ValueError: bad).
        expects: what a good value looks like, for the error message.
        target: ``service`` (a constructor argument), ``engine`` (SQLAlchemy's engine
            argument), ``connect`` (the driver's connect argument, typed) or ``url`` (left in
            the database URL for the driver).
    """

    name: str
    services: frozenset[str]
    dialects: frozenset[str]
    parse: Callable[[str], Any]
    expects: str
    target: str = "service"


_BOTH = frozenset({SESSION, MEMORY})
_ANY_DB = frozenset({SQLITE, POSTGRESQL})
_SQLITE_ONLY = frozenset({SQLITE})
_PG_ONLY = frozenset({POSTGRESQL})


def _option(name: str, services: frozenset[str], dialects: frozenset[str],
            parse: Callable[[str], Any], expects: str, target: str = "service") -> UriOption:
    return UriOption(name, services, dialects, parse, expects, target)


OPTIONS: tuple[UriOption, ...] = (
    # the session service
    _option("on_stale", frozenset({SESSION}), _ANY_DB, _choice("raise", "merge"),
            "expected raise or merge"),
    # opt-in, a deviation from ADK's contract: get_session without a config is bounded
    _option("window", frozenset({SESSION}), _ANY_DB, _integer(1),
            "expected a whole number of events, 1 or more"),
    # the memory service
    _option("search", frozenset({MEMORY}), _ANY_DB, _choice("fulltext", "semantic", "hybrid"),
            "not a memory search mode; expected fulltext, semantic or hybrid"),
    _option("max_results", frozenset({MEMORY}), _ANY_DB, _integer(1, 10_000),
            "expected a whole number of memories, 1 to 10000"),
    _option("max_entry_chars", frozenset({MEMORY}), _ANY_DB, _integer(1, 20_000),
            "expected a whole number of characters, 1 to 20000"),
    _option("min_similarity", frozenset({MEMORY}), _ANY_DB,
            _number(-1.0, high=1.0), "expected a cosine similarity from -1 to 1"),
    _option("backfill_per_search", frozenset({MEMORY}), _ANY_DB, _integer(0),
            "expected a whole number of memories, 0 or more"),
    # SQLite (both services: each opens its own engine from a URI)
    _option("sqlite_synchronous", _BOTH, _SQLITE_ONLY,
            _choice("OFF", "NORMAL", "FULL", "EXTRA", upper=True),
            "expected OFF, NORMAL, FULL or EXTRA"),
    _option("sqlite_busy_timeout", _BOTH, _SQLITE_ONLY, _number(0.0),
            "expected seconds, 0 or more"),
    _option("sqlite_wal_limit_bytes", _BOTH, _SQLITE_ONLY, _integer(-1),
            "expected a whole number of bytes, 0 or more, or -1 for no limit"),
    # PostgreSQL: SQLAlchemy's pool
    _option("pool_size", _BOTH, _PG_ONLY, _integer(0),
            "expected a whole number of connections, 0 or more (0: no limit)", "engine"),
    _option("max_overflow", _BOTH, _PG_ONLY, _integer(-1),
            "expected a whole number of connections, 0 or more, or -1 for no limit", "engine"),
    _option("pool_timeout", _BOTH, _PG_ONLY, _number(0.0, inclusive=False),
            "expected seconds, more than 0", "engine"),
    _option("pool_recycle", _BOTH, _PG_ONLY, _integer(-1),
            "expected whole seconds, 0 or more, or -1 for never", "engine"),
    _option("pool_pre_ping", _BOTH, _PG_ONLY, _boolean, "expected true or false", "engine"),
    # PostgreSQL: asyncpg's connect arguments (numbers and flags typed, the rest as text)
    _option("timeout", _BOTH, _PG_ONLY, _number(0.0, inclusive=False),
            "expected the connect timeout in seconds, more than 0", "connect"),
    _option("command_timeout", _BOTH, _PG_ONLY, _number(0.0, inclusive=False),
            "expected seconds, more than 0", "connect"),
    _option("statement_cache_size", _BOTH, _PG_ONLY, _integer(0),
            "expected a whole number, 0 or more", "connect"),
    _option("prepared_statement_cache_size", _BOTH, _PG_ONLY, _integer(0),
            "expected a whole number, 0 or more", "connect"),
    _option("direct_tls", _BOTH, _PG_ONLY, _boolean, "expected true or false", "connect"),
    # encryption at rest (the encryption extra): the file holding the key(s)
    _option("encryption_key_file", frozenset({SESSION}), _ANY_DB, _text,
            "expected the path of a key file"),
    *(
        _option(name, _BOTH, _PG_ONLY, _text, "expected a value", "url")
        for name in ("ssl", "target_session_attrs", "host", "port", "passfile", "service",
                     "servicefile", "krbsrvname", "gsslib")
    ),
    # SQLite: URI parameters of the sqlite3 driver (with uri=true)
    *(
        _option(name, _BOTH, _SQLITE_ONLY, _text, "expected a value", "url")
        for name in ("uri", "mode", "cache", "vfs", "immutable", "nolock")
    ),
)
"""Every query parameter our URIs accept, with where it applies."""

_BY_NAME = {option.name: option for option in OPTIONS}


def _takes(service: str, dialect: str) -> list[UriOption]:
    return [o for o in OPTIONS if service in o.services and dialect in o.dialects]


def _accepted(service: str, dialect: str) -> str:
    ours = [o.name for o in _takes(service, dialect) if o.target in ("service", "engine")]
    driver = [o.name for o in _takes(service, dialect) if o.target in ("connect", "url")]
    return (
        f"The {service} service on {_DIALECT_NAMES[dialect]} takes {', '.join(ours)}; "
        f"and the driver's {', '.join(driver)}."
    )


def _read_query(
    pairs: list[tuple[str, str]], service: str, dialect: str, where: str, *, strict: bool,
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any], list[tuple[str, str]]]:
    """A URI query's options checked and parsed (see :data:`OPTIONS`), by where they go: the
    constructor's, the engine's, the driver's connect arguments, and the URL's own query.
    ``strict``: a name that is not an option is refused (else it stays in the URL's query).

    Raises:
        ValueError: an unknown option (``strict``), one for another service or database, a
            bad value, or an option given twice.
    """
    constructor: dict[str, Any] = {}
    engine: dict[str, Any] = {}
    connect: dict[str, Any] = {}
    url_query: list[tuple[str, str]] = []
    seen: set[str] = set()
    for name, raw in pairs:
        option = _BY_NAME.get(name)
        if option is None:
            if not strict:
                url_query.append((name, raw))
                continue
            close = difflib.get_close_matches(
                name, [o.name for o in _takes(service, dialect)], n=1)
            hint = f" Did you mean {close[0]}?" if close else ""
            raise ValueError(
                f"Unknown option {name!r} in {where}.{hint} {_accepted(service, dialect)}"
            )
        if service not in option.services:
            other = next(iter(option.services))
            raise ValueError(
                f"{name} is an option of the {other} service, not of the {service} service "
                f"(in {where}). {_accepted(service, dialect)}"
            )
        if dialect not in option.dialects:
            if not strict and option.target in ("connect", "url"):
                # another driver's parameter (e.g. timeout, SQLite's too): the driver's
                url_query.append((name, raw))
                continue
            only = " and ".join(_DIALECT_NAMES[d] for d in sorted(option.dialects))
            raise ValueError(
                f"{name} applies to {only} only, and {where} is "
                f"{_DIALECT_NAMES[dialect]}. {_accepted(service, dialect)}"
            )
        if name in seen:
            raise ValueError(f"{name} is given twice in {where}; give it once.")
        seen.add(name)
        try:
            value = option.parse(raw)
        except ValueError:
            raise ValueError(
                f"Invalid value {name}={raw!r} in {where}: {option.expects}."
            ) from None
        if option.target == "service":
            constructor[name] = value
        elif option.target == "engine":
            engine[name] = value
        elif option.target == "connect":
            connect[name] = value
        else:
            url_query.append((name, value))
    return constructor, engine, connect, url_query


def url_options(db_url: str, service: str = SESSION) -> tuple[str, dict[str, Any]]:
    """A plain SQLAlchemy URL given to a service (``sqlite+aiosqlite:///...``,
    ``postgresql+asyncpg://...``): the options of :data:`OPTIONS` in its query checked, parsed
    and taken out, as keyword arguments for the service's constructor (engine options and the
    driver's connect arguments included), so that ``?encryption_key_file=PATH`` or
    ``?command_timeout=2`` mean the same there as in our URIs. On PostgreSQL a name that is
    not an option is refused (asyncpg's ``connect`` takes no other); on SQLite it stays in
    the URL for the driver, as before.

    Raises:
        ValueError: an option that does not apply, a bad value, or (PostgreSQL) an unknown
            name.
    """
    base, sep, query = db_url.partition("?")
    if not sep:
        return db_url, {}
    scheme = base.partition("://")[0].lower()
    if scheme.startswith("postgres"):
        dialect = POSTGRESQL
    elif scheme.startswith("sqlite"):
        dialect = SQLITE
    else:
        return db_url, {}
    where = f"the database URL {scheme}://..."
    constructor, engine, connect, url_query = _read_query(
        parse_qsl(query, keep_blank_values=True), service, dialect, where,
        strict=dialect == POSTGRESQL)
    if "window" in constructor:
        raise ValueError(
            f"window is an option of our URIs (multi-agent://, multi-agent+sqlite://, "
            f"multi-agent+postgresql://), which make a BoundedSessionService; {where} makes a "
            "DatabaseSessionService. Use such a URI, or multi_agent.memory.bounded_service."
            "BoundedSessionService(url, window=N).")
    if connect:
        engine["connect_args"] = connect
    constructor.update(engine)
    return base + ("?" + urlencode(url_query) if url_query else ""), constructor


def parse_uri(uri: str, service: str, **kwargs: Any) -> tuple[str, dict[str, Any]]:
    """The SQLAlchemy URL behind one of our :data:`SCHEMES` and the constructor's keyword
    arguments from its query (see :data:`OPTIONS`).

    Args:
        uri: the ``--session_service_uri`` / ``--memory_service_uri``.
        service: ``session`` or ``memory``.
        **kwargs: ADK's (``agents_dir``: where ``multi-agent://`` puts its database).

    Raises:
        ValueError: not one of our schemes; an unknown option, one for another service or
            database, a bad value, or an option given twice.
    """
    scheme, sep, rest = uri.partition("://")
    if not sep or scheme not in SCHEMES:
        raise ValueError(f"{uri!r} does not use one of the schemes {', '.join(SCHEMES)}.")
    rest, _, query = rest.partition("?")
    dialect = POSTGRESQL if scheme == "multi-agent+postgresql" else SQLITE
    where = f"the {service} service URI {scheme}://..."
    constructor, engine, connect, url_query = _read_query(
        parse_qsl(query, keep_blank_values=True), service, dialect, where, strict=True)
    if connect:
        engine["connect_args"] = connect
    if engine:
        if service == SESSION:
            constructor.update(engine)  # DatabaseSessionService(**engine_kwargs)
        else:
            constructor["engine_kwargs"] = engine
    if scheme == "multi-agent":
        base = kwargs.get("agents_dir") or os.getcwd()
        path = rest or os.path.join(os.path.abspath(base), "multi_agent_data.db")
        url = f"sqlite+aiosqlite:///{path}"
    elif scheme == "multi-agent+sqlite":
        url = f"sqlite+aiosqlite://{rest}"
    else:
        url = f"postgresql+asyncpg://{rest}"
    if url_query:
        url += "?" + urlencode(url_query)
    return url, constructor


def database_url(uri: str, **kwargs: Any) -> str:
    """The SQLAlchemy URL behind one of our :data:`SCHEMES` (its options checked, left out).

    Raises:
        ValueError: the URI does not use one of our schemes, or has a bad option.
    """
    return parse_uri(uri, SESSION, **kwargs)[0]


def session_service_from_uri(uri: str, **kwargs: Any) -> DatabaseSessionService:
    """Builds our session service from one of :data:`SCHEMES` and its query's options.

    Raises:
        ValueError: not one of our schemes, or a bad option (see :func:`parse_uri`).
    """
    url, options = parse_uri(uri, SESSION, **kwargs)
    if "window" in options:
        from multi_agent.memory.bounded_service import BoundedSessionService

        return BoundedSessionService(url, **options)
    return DatabaseSessionService(url, **options)


def memory_service_from_uri(uri: str, **kwargs: Any) -> Any:
    """Builds our memory service from one of :data:`SCHEMES`; a ``search`` query parameter
    (``fulltext``, ``semantic``, ``hybrid``) picks the search mode, the others are in
    :data:`OPTIONS`.

    Raises:
        ValueError: not one of our schemes, or a bad option (see :func:`parse_uri`).
    """
    from multi_agent.memory import DatabaseMemoryService

    url, options = parse_uri(uri, MEMORY, **kwargs)
    return DatabaseMemoryService(url, **options)


def register(registry: Any | None = None) -> None:
    """Registers :data:`SCHEMES` with ADK's service registry (idempotent)."""
    if registry is None:
        from google.adk.cli.service_registry import get_service_registry

        registry = get_service_registry()
    for scheme in SCHEMES:
        registry.register_session_service(scheme, _for_adk_cli(session_service_from_uri))
        registry.register_memory_service(scheme, _for_adk_cli(memory_service_from_uri))


def _for_adk_cli(factory: Callable[..., Any]) -> Callable[..., Any]:
    """``factory`` as ADK's command line calls it: a bad URI or database stops ``adk web`` /
    ``api_server`` / ``run`` with our one-line message on stderr and exit code 2 (a usage
    error), where click printed ~40 lines of traceback with the message last. Outside ADK's
    command line (a program calling the registry itself) the error is raised as usual."""

    def build(uri: str, **kwargs: Any) -> Any:
        from multi_agent.errors import MultiAgentError

        try:
            return factory(uri, **kwargs)
        except (MultiAgentError, ValueError) as exc:
            if not _under_adk_cli():
                raise
            import sys

            print(f"adk: {exc}", file=sys.stderr, flush=True)
            raise SystemExit(2) from None

    build.__name__, build.__doc__ = factory.__name__, factory.__doc__
    return build


def _under_adk_cli() -> bool:
    """Whether a command of ADK's click command line is running (``adk ...``)."""
    try:
        import click
    except ImportError:  # pragma: no cover  (ADK depends on click)
        return False
    ctx = click.get_current_context(silent=True)
    if ctx is None:
        return False
    root = ctx.find_root().command
    module = getattr(getattr(root, "callback", None), "__module__", "") or ""
    return module.startswith("google.adk.cli")


register()
