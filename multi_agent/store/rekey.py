"""Key rotation: every sealed value re-sealed with the current key, in bounded batches.

``multi-agent rekey`` (``cli/keys.py``) calls :func:`rekey`. The store is opened with the new
key first and the old key(s) after it (``MULTI_AGENT_ENCRYPTION_KEY=NEW,OLD``): every key
opens, the first seals. Each batch is one short write transaction over at most
``batch_size`` rows of one table, in primary-key order (the rows are locked, so a concurrent
append cannot be overwritten with an older value): writers keep going between batches. A
run that is interrupted is resumed by running it again: a row already sealed with the
current key is skipped. Rows in clear (written before encryption was turned on) are sealed
too. When every row is done the marker in ``ma_meta`` lists only the current key: the old
ones are retired and the store no longer asks for them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Table, and_, bindparam, func, or_, select, tuple_, update
from sqlalchemy.engine import Connection

from ..errors import EncryptionKeyError
from . import schema as s
from . import sealing

__all__ = ["DEFAULT_BATCH", "SEALED_COLUMNS", "RekeyReport", "rekey"]

DEFAULT_BATCH = 500
"""Rows re-sealed per transaction."""

SEALED_COLUMNS: tuple[tuple[Table, tuple[str, ...]], ...] = tuple(
    (table, tuple(c.name for c in table.c if isinstance(c.type, sealing.Sealed)))
    for table in (s.app_states, s.user_states, s.sessions, s.events)
)
"""Every table with sealed columns, and those columns (derived from the schema's types)."""


@dataclass
class RekeyReport:
    """What :func:`rekey` did (or, with ``dry_run``, would do).

    Attributes:
        key: fingerprint of the key everything is sealed with now.
        retired: fingerprints of the keys no longer needed (the old keys, once done).
        rows: per table, the rows re-sealed (dry run: the rows to re-seal).
        batches: the write transactions it took.
        done: every row is sealed with ``key`` (False only for a dry run with work left).
    """

    key: str
    retired: list[str] = field(default_factory=list)
    rows: dict[str, int] = field(default_factory=dict)
    batches: int = 0
    done: bool = True

    @property
    def total(self) -> int:
        """Rows re-sealed (or to re-seal) in all tables."""
        return sum(self.rows.values())


def _needs_work(table: Table, columns: tuple[str, ...], prefix: str) -> Any:
    return or_(*(
        and_(table.c[c].is_not(None), ~table.c[c].startswith(prefix, autoescape=True))
        for c in columns
    ))


def _count(conn: Connection, table: Table, columns: tuple[str, ...], prefix: str) -> int:
    stmt = select(func.count()).select_from(table).where(_needs_work(table, columns, prefix))
    return int(conn.execute(stmt).scalar() or 0)


def _batch(
    conn: Connection, table: Table, columns: tuple[str, ...], prefix: str, after: tuple | None,
    limit: int,
) -> tuple[int, tuple | None]:
    """Re-seals up to ``limit`` rows past ``after`` (primary-key order); returns how many and
    the last key seen (None: the table is done)."""
    pk = list(table.primary_key.columns)
    where = [_needs_work(table, columns, prefix)]
    if after is not None:
        where.append(tuple_(*pk) > tuple_(*after))
    rows = conn.execute(
        select(*pk, *(table.c[c] for c in columns))  # opened by the Sealed columns' type
        .where(*where).order_by(*pk).limit(limit).with_for_update()
    ).all()
    if not rows:
        return 0, None
    stmt = (
        update(table)
        .where(*(c == bindparam(f"k_{c.name}") for c in pk))
        .values({c: bindparam(f"v_{c}", type_=table.c[c].type) for c in columns})
    )
    params = []
    for row in rows:
        item = {f"k_{c.name}": row[i] for i, c in enumerate(pk)}
        item.update({f"v_{c}": row[len(pk) + j] for j, c in enumerate(columns)})
        params.append(item)
    conn.execute(stmt, params)
    last = tuple(rows[-1][: len(pk)])
    return len(rows), (last if len(rows) == limit else None)


async def rekey(
    store: Any, *, batch_size: int = DEFAULT_BATCH, dry_run: bool = False,
    progress: Callable[[str, int], None] | None = None, keyring: sealing.Keyring | None = None,
) -> RekeyReport:
    """Re-seals every sealed value of ``store`` with its current (first) key.

    Args:
        store: a ``DatabaseSessionService`` opened with the new key first and every key still
            in use after it.
        batch_size: rows per transaction.
        dry_run: only count the rows that would be re-sealed.
        progress: called after each batch with the table's name and the rows done in it.
        keyring: for a dry run, the keys to count against, when ``store`` was opened without
            them (a clear database opened with a key is marked as encrypted).

    Raises:
        EncryptionKeyError: the store was opened without a key.
    """
    if keyring is None or not dry_run:
        keyring = getattr(store, "_keyring", None)
    if keyring is None:
        raise EncryptionKeyError(
            f"rekey needs the new key: set {sealing.ENV_KEY}=NEW_KEY,OLD_KEY (new first; "
            "`multi-agent keygen` makes one), or give the key file. Nothing was changed."
        )
    await store.prepare()
    backend = store.backend
    prefix = keyring.current_prefix
    marker = await backend.run(sealing.read_marker, write=False)
    report = RekeyReport(key=keyring.current)
    for table, columns in SEALED_COLUMNS:
        if dry_run:
            report.rows[table.name] = await backend.run(
                lambda conn, t=table, c=columns: _count(conn, t, c, prefix), write=False)
            continue
        done, after = 0, None
        while True:
            n, after = await backend.run(
                lambda conn, t=table, c=columns, a=after: _batch(
                    conn, t, c, prefix, a, batch_size),
                write=True,
            )
            if n:
                report.batches += 1
                done += n
                if progress is not None:
                    progress(table.name, done)
            if after is None:
                break
        report.rows[table.name] = done
    old = [k for k in (marker or {}).get("keys", []) if k != keyring.current]
    if dry_run:
        report.done = report.total == 0
        report.retired = old if report.done else []
        return report

    def retire(conn: Connection) -> None:
        current = sealing.read_marker(conn)
        sealing.record_marker(conn, keyring, current, keys=[keyring.current], clear_rows=False)

    await backend.run(retire, write=True)
    report.retired = old
    return report
