"""Tools that read the conversation history: this session's and the user's across sessions.

Every message is stored as an event, so the history is read from the session store: one query
over the user's latest human and agent messages across all their sessions (``recent_messages``,
the newest ``STORE_SCAN_MESSAGES``), grouped into exchanges by run. That covers far more than
the small ``conversation_history`` lists in session state (the latest ``HISTORY_LIMIT`` per
session), which are the source only when the session service is not this project's store; the
user's ``user:conversation_log`` then adds exchanges of sessions that no longer exist (with this
project's store a deleted session is not recalled: README's ``multi-agent delete``). Anything
older than the scan is found by long-memory search (ADK's ``load_memory``, given to the
historian when the Runner has a memory service).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from google.adk.tools.tool_context import ToolContext

from multi_agent.models import rules
from multi_agent.models.companies import Alias, alias_in, search_aliases

from ._common import (
    CONVERSATION_HISTORY,
    CONVERSATION_LOG,
    SESSION_METADATA,
    as_int,
    error,
    ok,
    read_list,
)

__all__ = ["get_conversation_summary", "list_my_sessions", "search_conversation_history"]

logger = logging.getLogger(__name__)

_EXCERPT = 200
_MAX_MATCHES = 20
_MAX_DAYS = 3650

def _excerpt(text: Any) -> str:
    value = " ".join(str(text or "").split())
    return value if len(value) <= _EXCERPT else value[: _EXCERPT - 1] + "…"


def _public(entry: dict[str, Any]) -> dict[str, Any]:
    return {
        "timestamp": entry.get("timestamp"),
        "session_id": entry.get("session_id"),
        "agent": entry.get("agent"),
        "user_input": _excerpt(entry.get("user_input")),
        "agent_response": _excerpt(entry.get("agent_response")),
    }


STORE_SCAN_MESSAGES = 1000
"""How many of the user's latest messages (human and agent) the history tools read."""


def _history(session_id: str, value: Any) -> list[dict[str, Any]]:
    items = value if isinstance(value, list) else []
    return [{**e, "session_id": session_id} for e in items if isinstance(e, dict)]


def _stamp(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds")


async def _store_entries(tool_context: ToolContext) -> list[dict[str, Any]] | None:
    """The user's exchanges read from the store, oldest first; None without the store.

    An exchange is a run (invocation) with the person's message and the last agent reply of
    that run. The current run (the question being answered) is left out.
    """
    from multi_agent.store import DatabaseSessionService

    try:
        service = tool_context.get_invocation_context().session_service
    except Exception:  # e.g. a context without a session service
        return None
    if not isinstance(service, DatabaseSessionService):
        return None
    rows = await service.recent_messages(
        app_name=tool_context.session.app_name, user_id=tool_context.user_id,
        limit=STORE_SCAN_MESSAGES, message_types=("human", "agent"),
    )
    current_run = getattr(tool_context, "invocation_id", None)
    runs: dict[tuple[str, str], dict[str, Any]] = {}
    for row in reversed(rows):  # oldest first
        if row.run_id == current_run:
            continue
        key = (row.session_id, row.run_id)
        if row.message_type == "human":
            runs.setdefault(key, {
                "timestamp": _stamp(row.timestamp), "session_id": row.session_id,
                "user_input": row.text or "", "agent_response": None, "agent": None,
            })
        elif key in runs:  # the last agent text of the run is its answer
            runs[key]["agent_response"] = row.text or ""
            runs[key]["agent"] = row.source
    return [e for e in runs.values() if e["agent"] is not None]


async def _all_entries(tool_context: ToolContext) -> tuple[list[dict[str, Any]], int | None]:
    """Every remembered exchange of the user, oldest first, and how many sessions they have.

    From the store when the session service is this project's (see the module docstring),
    else from each session's ``conversation_history``. The session count is None when the
    sessions could not be listed (the log is then used alone).
    """
    state = tool_context.state
    current_id = tool_context.session.id
    log = [e for e in read_list(state, CONVERSATION_LOG) if isinstance(e, dict)]
    try:
        service = tool_context.get_invocation_context().session_service
        listed = await service.list_sessions(
            app_name=tool_context.session.app_name, user_id=tool_context.user_id
        )
    except Exception:  # answer from the log rather than not at all
        logger.debug("list_sessions failed; using user:conversation_log", exc_info=True)
        return log, None
    known = {current_id} | {s.id for s in listed.sessions}
    count = len(known)
    try:
        stored = await _store_entries(tool_context)
    except Exception:  # the state lists still answer
        logger.warning("Reading the history from the store failed; using session state.",
                       exc_info=True)
        stored = None
    if stored is not None:
        # The store is the whole record: a session it no longer has was deleted (by the
        # person, or by retention), and nothing of it is recalled; the log's copies of its
        # exchanges are not brought back.
        return stored, count
    entries: list[dict[str, Any]] = []
    for session in listed.sessions:
        if session.id != current_id:
            entries.extend(_history(session.id, session.state.get(CONVERSATION_HISTORY)))
    entries.extend(e for e in log if e.get("session_id") not in known)  # deleted sessions
    entries.extend(_history(current_id, state.get(CONVERSATION_HISTORY)))
    entries.sort(key=lambda e: str(e.get("timestamp") or ""))  # stable: keeps turn order
    return entries, count


async def get_conversation_summary(
    tool_context: ToolContext, scope: str = "all", max_entries: int = 10
) -> dict[str, Any]:
    """Summarises what the user and the agents talked about.

    Use for "what did we talk about?", "summarise our conversation", "recap".

    Args:
        scope: "all" (default) for every session of this user, or "session" for the current
            session only.
        max_entries: how many of the most recent exchanges to include (1-50, default 10).

    Returns:
        status "ok" with ``total_turns``, ``by_agent`` (turns per agent), ``first_at`` and
        ``last_at`` timestamps, ``sessions`` (how many sessions the user has), and ``recent``
        (the latest exchanges, oldest first, each with timestamp, agent, user_input and
        agent_response excerpts). The current question is not included yet.
    """
    where = (scope or "all").strip().lower() if isinstance(scope, str) else ""
    if where not in ("all", "session"):
        return error(f"Unknown scope {scope!r}; use 'all' or 'session'.")
    count = as_int(max_entries, low=1, high=50)
    if count is None:
        return error("max_entries must be a number from 1 to 50.")
    entries, sessions = await _all_entries(tool_context)
    if where == "session":
        current = tool_context.session.id
        entries = [e for e in entries if e.get("session_id") == current]
        sessions = 1
    by_agent: dict[str, int] = {}
    for entry in entries:
        agent = str(entry.get("agent") or "unknown")
        by_agent[agent] = by_agent.get(agent, 0) + 1
    meta = tool_context.state.get(SESSION_METADATA)
    return ok(
        scope=where,
        total_turns=len(entries),
        by_agent=by_agent,
        first_at=entries[0].get("timestamp") if entries else None,
        last_at=entries[-1].get("timestamp") if entries else None,
        sessions=sessions,
        current_session=dict(meta) if isinstance(meta, dict) else None,
        recent=[_public(e) for e in entries[-count:]],
    )


def _matches(entry: dict[str, Any], words: set[str], agents: set[str]) -> bool:
    if entry.get("agent") in agents:
        return True
    text = f"{entry.get('user_input') or ''} {entry.get('agent_response') or ''}".lower()
    return any(word in text for word in words)


async def search_conversation_history(
    query: str, tool_context: ToolContext, days: int = 0
) -> dict[str, Any]:
    """Finds earlier exchanges about a subject, across all of the user's sessions.

    Use for "what did I ask about stocks?", "did we talk about python?", "what jokes did you
    tell me last week?". Area words match the whole area: "stocks"/"prices"/"watchlist" find
    every stock_analyst exchange, "jokes" every funny_nerd one. The historian's own earlier
    answers are left out unless the query is about the history itself. A company and its
    ticker find each other ("Nvidia" also finds "NVDA", "GOOGL" also finds "Google").

    Args:
        query: the subject to look for, e.g. "stocks", "AAPL", "python".
        days: only look at the last N days (0, the default, means no time limit);
            "last week" is 7, "yesterday" 2, "today" 1.

    Returns:
        status "ok" with ``matches`` (up to 20, oldest first, each with timestamp,
        session_id, agent, user_input and agent_response excerpts) and ``total_matches``,
        or status "error" for an empty query or an invalid number of days. When the query
        names a company or its ticker, also ``also_searched`` (its other names and tickers)
        and ``alias_matches`` / ``total_alias_matches``: the exchanges found only under one of
        those, each with ``alias`` (the name or ticker it contains).
    """
    if not isinstance(query, str) or not query.strip():
        return error("A search query is required, for example 'stocks' or 'python'.")
    window = as_int(days, low=0, high=_MAX_DAYS)
    if window is None:
        return error(f"days must be a number from 0 (no limit) to {_MAX_DAYS}.")
    words = {w.strip(".,!?;:'\"()") for w in query.lower().split()}
    words = {w for w in words if len(w) >= 2}
    if not words:
        return error("The search query has no usable words.")
    agents = {agent for agent, area in rules.area_words().items() if words & area}
    aliases = search_aliases(query)
    since = datetime.now(UTC) - timedelta(days=window) if window else None
    found = []
    by_alias: list[dict[str, Any]] = []
    entries, _ = await _all_entries(tool_context)
    for entry in entries:
        if since is not None and not _after(entry.get("timestamp"), since):
            continue
        if entry.get("agent") == "historian" and "historian" not in agents:
            continue  # earlier recaps quote everything; they are not what the user asked
        if _matches(entry, words, agents):
            found.append(entry)
        elif aliases:
            alias = _alias_match(entry, aliases)
            if alias is not None:
                by_alias.append({**_public(entry), "alias": alias})
    extra: dict[str, Any] = {}
    if aliases:
        extra = {
            "also_searched": [a.text for a in aliases],
            "total_alias_matches": len(by_alias),
            "alias_matches": by_alias[-_MAX_MATCHES:],
        }
    return ok(
        query=query.strip(),
        days=window,
        total_matches=len(found),
        matches=[_public(e) for e in found[-_MAX_MATCHES:]],
        **extra,
    )


def _alias_match(entry: dict[str, Any], aliases: list[Alias]) -> str | None:
    """The other name or ticker of the searched-for company that the exchange contains."""
    text = f"{entry.get('user_input') or ''}\n{entry.get('agent_response') or ''}"
    alias = alias_in(text, aliases)
    return alias.text if alias is not None else None


def _after(stamp: Any, since: datetime) -> bool:
    try:
        when = datetime.fromisoformat(str(stamp))
    except ValueError:
        return False
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when >= since


async def list_my_sessions(tool_context: ToolContext) -> dict[str, Any]:
    """Lists the user's conversation sessions, oldest first.

    Use for "how many times have we talked?" or "list my sessions".

    Returns:
        status "ok" with ``sessions`` (each with session_id, created_at, last_activity,
        total_interactions and whether it is the current one), or status "error" when the
        session store cannot be read.
    """
    try:
        service = tool_context.get_invocation_context().session_service
        listed = await service.list_sessions(
            app_name=tool_context.session.app_name, user_id=tool_context.user_id
        )
    except Exception as exc:  # report, never raise into the model
        return error(f"Could not list sessions: {exc}")
    sessions = []
    for s in listed.sessions:
        meta = s.state.get(SESSION_METADATA)
        meta = meta if isinstance(meta, dict) else {}
        sessions.append(
            {
                "session_id": s.id,
                "created_at": meta.get("created_at"),
                "last_activity": meta.get("last_activity")
                or datetime.fromtimestamp(s.last_update_time, UTC).isoformat(timespec="seconds"),
                "total_interactions": meta.get("total_interactions", 0),
                "current": s.id == tool_context.session.id,
            }
        )
    return ok(sessions=sessions, count=len(sessions))
