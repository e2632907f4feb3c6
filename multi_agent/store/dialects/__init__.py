"""Every difference between the databases the store runs on, one class per database.

The rest of the store is written once, against :class:`~.base.Dialect`; nothing outside this
package asks which database it is on. Each class holds, for its database:

* engine set-up: the URL it accepts, the SQLAlchemy engine and its per-connection settings
  (``open`` for a URL, ``adopt`` for an injected ``AsyncEngine``);
* ``insert_ignore``: ``INSERT ... ON CONFLICT DO NOTHING``;
* ``write_append``: the locked append write (the event row and the session row's update);
* ``advisory_lock_sql``: what serialises schema set-up across processes;
* ``translate``: a driver failure as a :class:`~multi_agent.errors.StoreError` that names the
  cause and the fix, told apart by the driver's error codes (SQLite's extended result codes,
  PostgreSQL's SQLSTATE);
* the memory's full-text search: its tables' DDL, the search statement and its parameters.

Row locks are stated once, in the statements themselves (``select(...).with_for_update()``,
``sql.py``), and each SQLAlchemy dialect renders them: PostgreSQL ``FOR UPDATE`` /
``FOR KEY SHARE``; SQLite nothing, since its write transactions begin with ``BEGIN
IMMEDIATE`` and so hold the database's write lock from their first statement.

Adding a database (say MySQL):

1. one new file here, ``mysql.py``, with a ``Dialect`` subclass that implements what
   :class:`~.base.Dialect` leaves abstract (``open``, ``insert_ignore``, ``write_append``,
   ``translate`` for its driver's codes, the memory DDL and search, or
   ``supports_memory = False``);
2. its entry in :data:`DIALECTS` below (the SQLAlchemy backend name, e.g. ``"mysql"``);
3. its entry in the conformance suite's parameters (``BACKENDS`` and the ``db_url`` fixture in
   ``tests/conftest.py``), so that every store, reliability and memory test runs on it; a
   known divergence is recorded there as a strict ``xfail`` with its reason.
"""

from __future__ import annotations

from ...errors import StoreError
from .base import Dialect
from .postgresql import PostgresDialect
from .sqlite import SqliteDialect

__all__ = ["DIALECTS", "Dialect", "PostgresDialect", "SqliteDialect", "dialect_for", "known"]

DIALECTS: dict[str, type[Dialect]] = {
    "sqlite": SqliteDialect,
    "postgresql": PostgresDialect,
}
"""The supported databases, by SQLAlchemy backend name (``URL.get_backend_name()``)."""

_INSTANCES: dict[str, Dialect] = {}


def known(name: str) -> bool:
    """Whether the store supports the database SQLAlchemy calls ``name``."""
    return name in DIALECTS


def dialect_for(name: str) -> Dialect:
    """The (shared, stateless) dialect object for a SQLAlchemy backend name.

    Raises:
        StoreError: a database the store does not support.
    """
    found = _INSTANCES.get(name)
    if found is None:
        cls = DIALECTS.get(name)
        if cls is None:
            raise StoreError(f"Unsupported database dialect {name!r}")
        found = _INSTANCES[name] = cls()
    return found
