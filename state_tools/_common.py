"""What every state tool shares: the state layout, validation, result shapes and atomic updates.

State layout (tests and tools depend on these names)::

    session scope   conversation_history  [{timestamp, user_input, agent_response, agent}]
                    agent_delegations     [{id, timestamp, agent_name, task, status}]
                                          (status "delegated", then "completed" once the
                                          agent answered; a completed entry moves to the end)
                    session_metadata      {created_at, last_activity, total_interactions}
    user scope      user:user_name        str | None
                    user:preferences      {favorite_agent, joke_preferences, stock_watchlist,
                                           nerd_topics}  (favorite_agent may be absent: none)
                    user:agent_stats      {agent_name: {delegations, last_used}}
                    user:conversation_log [{timestamp, session_id, user_input, agent_response,
                                           agent}]  (the latest 50, as excerpts: what the
                                           historian falls back on without the store)

The lists are short on purpose: ADK stores a state change as the key's whole new value in the
event, so a list rewritten on every turn costs its full size in the database on every turn.
Every message is stored as an event anyway; the historian reads older history from the store
(``state_tools.history``) and from long memory (ADK's ``load_memory``).

Tools write state only through atomic updates (:class:`~multi_agent.store.updates.StateUpdates`:
``set``, ``increment``, ``add_unique``, ``remove``, ``append`` at a path inside a key's value),
never by copying a value, changing the copy and assigning it back. A session's copy of the
``user:`` keys is the one loaded when its turn started; another session of the same user (a
second chat) may have changed them since. A value computed from the copy would undo that change
(a lost ticker), and this project's store refuses such a write (``StaleSession``: the turn
fails). An atomic update says what the change is, and the store applies it to the value stored
when the event is appended, under the write lock: concurrent chats of one user lose nothing and
fail nothing. The same holds for the session keys when several writers share one session
(``on_stale="merge"``). Each update also writes the new value through ``tool_context.state`` as
an ordinary assignment would, so later reads in the turn see it, it is a visible state delta,
and other session services (e.g. ADK's in-memory one) store it as a plain value. Stored values
are never mutated in place. Tools never raise into the model either: bad arguments come back as
``{"status": "error", "error": "..."}``.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, TypeAlias

from google.adk.sessions.state import State

from multi_agent.store.updates import StateUpdates

__all__ = [
    "AGENT_DELEGATIONS",
    "AGENT_STATS",
    "CONVERSATION_HISTORY",
    "CONVERSATION_LOG",
    "DELEGATION_LIMIT",
    "HISTORY_LIMIT",
    "PREFERENCES",
    "SESSION_METADATA",
    "StateLike",
    "USER_LOG_LIMIT",
    "USER_NAME",
    "WATCHLIST_LIMIT",
    "as_int",
    "change_preference_list",
    "default_preferences",
    "default_session_metadata",
    "error",
    "normalize_agent",
    "normalize_ticker",
    "normalize_topic",
    "now_iso",
    "sub_agent_names",
    "ok",
    "preference_updates",
    "read_list",
    "read_mapping",
    "read_preferences",
    "touch_session",
    "updates",
]

# State keys.
CONVERSATION_HISTORY = "conversation_history"
AGENT_DELEGATIONS = "agent_delegations"
SESSION_METADATA = "session_metadata"
USER_NAME = "user:user_name"
PREFERENCES = "user:preferences"
AGENT_STATS = "user:agent_stats"
CONVERSATION_LOG = "user:conversation_log"

# Bounds that keep every state value small enough to rewrite on each turn.
HISTORY_LIMIT = 20
DELEGATION_LIMIT = 20
USER_LOG_LIMIT = 50
"""Entries kept in ``user:conversation_log``. The whole log is rewritten into each turn's event:
two ~120-character excerpts (``LOG_TEXT_LIMIT``) plus timestamp, session id and agent make an
entry ~300-350 bytes of JSON, so a full log puts ~15-17 KB into every turn's event (50 x ~300
bytes; measured with the offline team: ~43 KB stored per turn with a full log of 50, ~32 KB
with 20). 50 holds the latest turns of a few concurrent chats of one user."""
WATCHLIST_LIMIT = 50
TOPIC_LIMIT = 30


_TICKER = re.compile(r"^[A-Z]{1,5}(\.[A-Z]{1,2})?$")
_TOPIC = re.compile(r"^[a-z0-9][a-z0-9 +#.\-]*$")
_TOPIC_MAX = 40


# What the helpers read state through: ADK's ``State`` or a plain mapping.
StateLike: TypeAlias = State | Mapping[str, Any]


def now_iso() -> str:
    """The current time as an ISO-8601 string in UTC (seconds precision)."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def ok(**fields: Any) -> dict[str, Any]:
    """A successful tool result."""
    return {"status": "ok", **fields}


def error(message: str, **fields: Any) -> dict[str, Any]:
    """A failed tool result; the model reads ``error`` and tells the user."""
    return {"status": "error", "error": message, **fields}


def default_preferences() -> dict[str, Any]:
    """A fresh ``user:preferences`` value."""
    return {
        "favorite_agent": None,
        "joke_preferences": [],
        "stock_watchlist": [],
        "nerd_topics": [],
    }


def default_session_metadata(timestamp: str | None = None) -> dict[str, Any]:
    """A fresh ``session_metadata`` value."""
    stamp = timestamp or now_iso()
    return {"created_at": stamp, "last_activity": stamp, "total_interactions": 0}


def read_mapping(state: StateLike, key: str) -> dict[str, Any]:
    """A deep copy of a dict-valued state key ({} when missing or malformed)."""
    value = state.get(key)
    return copy.deepcopy(value) if isinstance(value, dict) else {}


def read_list(state: StateLike, key: str) -> list[Any]:
    """A deep copy of a list-valued state key ([] when missing or malformed)."""
    value = state.get(key)
    return copy.deepcopy(value) if isinstance(value, list) else []


def read_preferences(state: StateLike) -> dict[str, Any]:
    """A copy of ``user:preferences`` with every field present and of the right type."""
    prefs = default_preferences()
    stored = read_mapping(state, PREFERENCES)
    for key, default in prefs.items():
        value = stored.get(key, default)
        if isinstance(default, list) and not isinstance(value, list):
            value = []
        prefs[key] = value
    if prefs["favorite_agent"] is not None and not isinstance(prefs["favorite_agent"], str):
        prefs["favorite_agent"] = None
    # Keep any extra keys a newer version (or another tool) stored.
    for key, value in stored.items():
        prefs.setdefault(key, value)
    return prefs


def updates(context: Any) -> StateUpdates:
    """Atomic updates through ``context`` (a ``ToolContext`` or ``CallbackContext``)."""
    return StateUpdates(context)


def touch_session(context: Any, *, interaction: bool = False) -> None:
    """Updates ``session_metadata.last_activity`` (and the turn count when ``interaction``).

    Args:
        context: a ``ToolContext`` or ``CallbackContext`` (see :func:`updates`).
    """
    change = updates(context)
    stamp = now_iso()
    meta = context.state.get(SESSION_METADATA)
    if not isinstance(meta, dict) or "created_at" not in meta:
        change.set(SESSION_METADATA, ("created_at",), stamp)
    change.set(SESSION_METADATA, ("last_activity",), stamp)
    # A missing (or malformed) count becomes 0 even when this is not an interaction.
    change.increment(SESSION_METADATA, ("total_interactions",), 1 if interaction else 0)


def normalize_ticker(value: Any) -> tuple[str | None, str | None]:
    """Validates a stock ticker symbol.

    Returns:
        ``(ticker, None)`` with the symbol upper-cased (a leading ``$`` is dropped), or
        ``(None, message)`` when it is not a ticker such as ``AAPL`` or ``BRK.B``.
    """
    if not isinstance(value, str) or not value.strip():
        return None, "A ticker symbol is required, for example AAPL."
    ticker = value.strip().lstrip("$").upper()
    if not _TICKER.match(ticker):
        return None, (
            f"{value.strip()!r} is not a valid ticker symbol: use 1-5 letters with an optional "
            "class suffix, for example AAPL, MSFT or BRK.B."
        )
    return ticker, None


def normalize_topic(value: Any) -> tuple[str | None, str | None]:
    """Validates a topic name (joke or nerd topic).

    Returns:
        ``(topic, None)`` lower-cased with single spaces, or ``(None, message)``.
    """
    if not isinstance(value, str) or not value.strip():
        return None, "A topic is required, for example 'python' or 'math'."
    topic = " ".join(value.strip().lower().split())
    if len(topic) > _TOPIC_MAX:
        return None, f"That topic is too long ({len(topic)} characters; at most {_TOPIC_MAX})."
    if not _TOPIC.match(topic):
        return None, (
            f"{value.strip()!r} is not a usable topic: use letters, digits, spaces and + # . -"
        )
    return topic, None


def sub_agent_names() -> tuple[str, ...]:
    """The team's sub-agents (``subagents/registry.py``), read when a tool runs: a sub-agent
    registered after this module was imported is accepted too."""
    from multi_agent.team.subagents.registry import names

    return names()


def normalize_agent(value: Any, *, allowed: tuple[str, ...] | None = None) -> tuple[
    str | None, str | None
]:
    """Validates an agent name against ``allowed`` (default: :func:`sub_agent_names`).

    Returns:
        ``(name, None)`` or ``(None, message)`` naming the valid agents.
    """
    if allowed is None:
        allowed = sub_agent_names()
    names = ", ".join(allowed)
    if not isinstance(value, str) or not value.strip():
        return None, f"An agent name is required; one of: {names}."
    name = value.strip().lower().replace(" ", "_").replace("-", "_")
    if name not in allowed:
        return None, f"Unknown agent {value.strip()!r}; the agents are: {names}."
    return name, None


def change_preference_list(context: Any, key: str, item: str, *, add: bool) -> dict[str, Any]:
    """Adds ``item`` to (or removes it from) the list preference ``key``, atomically.

    Adding an item already present moves it to the end (most recent last). The change is an
    ``add_unique``/``remove`` at ``(key,)`` inside ``user:preferences`` (see the module
    docstring), so what another session of the user changed meanwhile is kept.

    Args:
        context: a ``ToolContext`` (see :func:`updates`).

    Returns:
        A tool result: status "ok" with ``changed`` and the new list, or status "error".
    """
    current = list(read_preferences(context.state)[key])
    present = item in current
    if add:
        limit = WATCHLIST_LIMIT if key == "stock_watchlist" else TOPIC_LIMIT
        if not present and len(current) >= limit:
            message = f"{key} already holds {limit} entries; remove one first."
            return error(message, **{key: current})
        prefs = preference_updates(context).add_unique(PREFERENCES, (key,), item)
    elif not present:
        return error(f"{item!r} is not in {key}.", **{key: current})
    else:
        prefs = preference_updates(context).remove(PREFERENCES, (key,), item)
    return ok(changed=add != present, **{key: list(prefs[key])})


def preference_updates(context: Any) -> StateUpdates:
    """:func:`updates` for changing ``user:preferences``, its list fields made present first.

    A list field the copy lacks (the user had no preferences stored) is created empty by a
    ``remove`` of ``None`` (which no preference list holds): a list operation on a missing value
    starts from ``[]``, and one on a list another session filled meanwhile leaves it as it is.
    ``favorite_agent`` has no such operation (a ``set`` to None would undo another session's
    choice), so it is absent until set; readers use :func:`read_preferences`.
    """
    change = updates(context)
    stored = context.state.get(PREFERENCES)
    stored = stored if isinstance(stored, dict) else {}
    for field, default in default_preferences().items():
        if isinstance(default, list) and not isinstance(stored.get(field), list):
            change.remove(PREFERENCES, (field,), None)
    return change


def as_int(value: Any, *, low: int, high: int) -> int | None:
    """``value`` as an int in ``[low, high]`` (numeric strings accepted), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            return None
    if not isinstance(value, int | float) or value != value:  # NaN
        return None
    number = int(value)
    return number if low <= number <= high else None
