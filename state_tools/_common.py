"""What every state tool shares: the state layout, validation and result shapes.

State layout (tests and tools depend on these names)::

    session scope   conversation_history  [{timestamp, user_input, agent_response, agent}]
                    agent_delegations     [{timestamp, agent_name, task, status}]
                    session_metadata      {created_at, last_activity, total_interactions}
    user scope      user:user_name        str | None
                    user:preferences      {favorite_agent, joke_preferences, stock_watchlist,
                                           nerd_topics}
                    user:agent_stats      {agent_name: {delegations, last_used}}
                    user:conversation_log [{timestamp, session_id, user_input, agent_response,
                                           agent}]  (the latest 20, as excerpts: what the
                                           historian falls back on without the store)

The lists are short on purpose: ADK stores a state change as the key's whole new value in the
event, so a list rewritten on every turn costs its full size in the database on every turn.
Every message is stored as an event anyway; the historian reads older history from the store
(``state_tools.history``) and from long memory (ADK's ``load_memory``).

Tools never mutate a stored value in place: they copy it, change the copy and assign it back,
so the change is always a visible state delta. They never raise into the model either: bad
arguments come back as ``{"status": "error", "error": "..."}``.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, TypeAlias

from google.adk.sessions.state import State

__all__ = [
    "AGENT_DELEGATIONS",
    "AGENT_STATS",
    "CONVERSATION_HISTORY",
    "CONVERSATION_LOG",
    "DELEGATION_LIMIT",
    "HISTORY_LIMIT",
    "KNOWN_AGENTS",
    "PREFERENCES",
    "SESSION_METADATA",
    "SUB_AGENTS",
    "StateLike",
    "USER_LOG_LIMIT",
    "USER_NAME",
    "WATCHLIST_LIMIT",
    "append_bounded",
    "as_int",
    "change_preference_list",
    "default_preferences",
    "default_session_metadata",
    "error",
    "normalize_agent",
    "normalize_ticker",
    "normalize_topic",
    "now_iso",
    "ok",
    "read_list",
    "read_mapping",
    "read_preferences",
    "touch_session",
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
USER_LOG_LIMIT = 20
WATCHLIST_LIMIT = 50
TOPIC_LIMIT = 30

SUB_AGENTS = ("funny_nerd", "stock_analyst", "historian")
KNOWN_AGENTS = ("manager", *SUB_AGENTS)

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


def append_bounded(items: list[Any], item: Any, limit: int) -> list[Any]:
    """A new list: ``items`` plus ``item``, keeping only the newest ``limit`` entries."""
    out = [*items, item]
    return out[-limit:] if len(out) > limit else out


def touch_session(state: Any, *, interaction: bool = False) -> None:
    """Updates ``session_metadata.last_activity`` (and the turn count when ``interaction``)."""
    meta = read_mapping(state, SESSION_METADATA) or default_session_metadata()
    meta.setdefault("created_at", now_iso())
    meta["last_activity"] = now_iso()
    count = meta.get("total_interactions")
    meta["total_interactions"] = (count if isinstance(count, int) else 0) + (
        1 if interaction else 0
    )
    state[SESSION_METADATA] = meta


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


def normalize_agent(value: Any, *, allowed: tuple[str, ...] = SUB_AGENTS) -> tuple[
    str | None, str | None
]:
    """Validates an agent name against ``allowed``.

    Returns:
        ``(name, None)`` or ``(None, message)`` naming the valid agents.
    """
    names = ", ".join(allowed)
    if not isinstance(value, str) or not value.strip():
        return None, f"An agent name is required; one of: {names}."
    name = value.strip().lower().replace(" ", "_").replace("-", "_")
    if name not in allowed:
        return None, f"Unknown agent {value.strip()!r}; the agents are: {names}."
    return name, None


def change_preference_list(state: Any, key: str, item: str, *, add: bool) -> dict[str, Any]:
    """Adds ``item`` to (or removes it from) the list preference ``key`` by reassignment.

    Adding an item already present moves it to the end (most recent last).

    Returns:
        A tool result: status "ok" with ``changed`` and the new list, or status "error".
    """
    prefs = read_preferences(state)
    current = list(prefs[key])
    present = item in current
    rest = [x for x in current if x != item]
    if add:
        limit = WATCHLIST_LIMIT if key == "stock_watchlist" else TOPIC_LIMIT
        if not present and len(current) >= limit:
            message = f"{key} already holds {limit} entries; remove one first."
            return error(message, **{key: current})
        items = [*rest, item]
    elif not present:
        return error(f"{item!r} is not in {key}.", **{key: current})
    else:
        items = rest
    prefs[key] = items
    state[PREFERENCES] = prefs
    return ok(changed=add != present, **{key: items})


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
