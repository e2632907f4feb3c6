"""The export format covers every column of the tables it exports.

Each column of ``ma_sessions``, ``ma_runs`` and ``ma_events`` is a field of the export document
(``transfer/format.py``: ``_SESSION_SPEC``, ``_RUN_SPEC``, ``_EVENT_SPEC``) or is declared not
exported, with its reason (``SESSION_NOT_EXPORTED``, ...). Adding a column to ``schema.py``
without either makes ``test_every_column_is_exported_or_declared_not`` fail, e.g.::

    AssertionError: ma_events: columns without export support {'mood'}

instead of export/import silently dropping it (the round-trip tests would still pass, since the
new column is absent on both sides). ``test_a_new_column_is_caught`` shows that on a copy of
the events table with one more column.
"""

from __future__ import annotations

import pytest
from sqlalchemy import Column, MetaData, String

from multi_agent.store import schema
from multi_agent.store.messages import MESSAGE_COLUMNS, Message
from multi_agent.store.sql import EVENT_COLUMNS
from multi_agent.store.transfer import format as fmt


@pytest.mark.parametrize(
    ("table", "spec", "not_exported"), fmt.EXPORTED_TABLES, ids=lambda v: getattr(v, "name", "")
)
def test_every_column_is_exported_or_declared_not(table, spec, not_exported) -> None:
    missing, unknown = fmt.spec_gaps(table, spec, not_exported)
    assert not missing, f"{table.name}: columns without export support {missing}"
    assert not unknown, f"{table.name}: export fields that name no column {unknown}"


def test_a_new_column_is_caught() -> None:
    copy = schema.events.to_metadata(MetaData())
    copy.append_column(Column("mood", String(16)))
    missing, unknown = fmt.spec_gaps(copy, fmt._EVENT_SPEC, fmt.EVENT_NOT_EXPORTED)
    assert missing == {"mood"} and not unknown


def test_column_lists_follow_the_schema() -> None:
    """Export's, the append's and the message queries' column lists come from ``table.c``."""
    assert set(fmt._EVENT_COLUMNS) | {"event_data"} | set(fmt.EVENT_NOT_EXPORTED) == {
        c.name for c in schema.events.c}
    assert EVENT_COLUMNS == [c.name for c in schema.events.c]
    assert len(MESSAGE_COLUMNS) == len(Message.__dataclass_fields__)
    assert all(c.table is schema.events for c in MESSAGE_COLUMNS)
