"""Tools about the agents themselves: delegations, usage statistics, the favourite agent."""

from __future__ import annotations

import uuid
from typing import Any

from google.adk.tools.tool_context import ToolContext

from ._common import (
    AGENT_DELEGATIONS,
    AGENT_STATS,
    DELEGATION_LIMIT,
    PREFERENCES,
    error,
    normalize_agent,
    now_iso,
    ok,
    preference_updates,
    read_list,
    read_mapping,
    read_preferences,
    touch_session,
    updates,
)

__all__ = ["get_agent_performance_stats", "set_favorite_agent", "track_agent_delegation"]

_TASK_MAX = 120


def track_agent_delegation(agent_name: str, task: str, tool_context: ToolContext) -> dict[str, Any]:
    """Records that you are handing the user's request to a sub-agent.

    Call this right before transfer_to_agent, every time you delegate. It appends the
    delegation to this session's history and counts it in the user's agent statistics.

    Args:
        agent_name: the sub-agent that will handle the request, by the name you then pass to
            transfer_to_agent (e.g. funny_nerd).
        task: a short description of what the sub-agent should do, usually the user's request.

    Returns:
        status "ok" with the delegation and the agent's total delegation count, or status
        "error" with a message when the agent name or task is invalid.
    """
    name, problem = normalize_agent(agent_name)
    if problem or name is None:
        return error(problem or "invalid agent name")
    if not isinstance(task, str) or not task.strip():
        return error("A task description is required (what should the agent do?).")
    text = " ".join(task.split())
    if len(text) > _TASK_MAX:
        text = text[: _TASK_MAX - 1] + "…"
    stamp = now_iso()
    entry = {"id": uuid.uuid4().hex[:8], "timestamp": stamp, "agent_name": name, "task": text,
             "status": "delegated"}
    # Atomic updates (see _common): a concurrent chat of the user counts its delegations too.
    change = updates(tool_context)
    change.append(AGENT_DELEGATIONS, (), entry, keep_last=DELEGATION_LIMIT)
    count = change.increment(AGENT_STATS, (name, "delegations"))[name]["delegations"]
    change.set(AGENT_STATS, (name, "last_used"), stamp)
    touch_session(tool_context)
    shown = {k: v for k, v in entry.items() if k != "id"}
    return ok(delegation=shown, total_delegations_to_agent=count)


def set_favorite_agent(agent_name: str, tool_context: ToolContext) -> dict[str, Any]:
    """Sets the user's favourite agent, remembered across all their sessions.

    Use when the user says which agent they prefer ("my favourite agent is the historian").

    Args:
        agent_name: one of the team's sub-agents, by name (e.g. historian).

    Returns:
        status "ok" with the favourite agent, or status "error" for an unknown agent.
    """
    name, problem = normalize_agent(agent_name)
    if problem or name is None:
        return error(problem or "invalid agent name")
    previous = read_preferences(tool_context.state)["favorite_agent"]
    preference_updates(tool_context).set(PREFERENCES, ("favorite_agent",), name)
    return ok(favorite_agent=name, previous=previous)


def get_agent_performance_stats(tool_context: ToolContext) -> dict[str, Any]:
    """Reports how often each sub-agent has been used by this user, across all sessions.

    Use for "which agent do I use most?", "show my stats" or "agent statistics".

    Returns:
        status "ok" with ``agents`` ({agent_name: {delegations, last_used}}), the
        ``most_used`` agent (or null), ``total_delegations`` over all sessions and
        ``session_delegations`` in the current session (the session keeps its latest 20).
    """
    state = tool_context.state
    stats = read_mapping(state, AGENT_STATS)
    counts: dict[str, int] = {
        name: int(v.get("delegations") or 0) for name, v in stats.items() if isinstance(v, dict)
    }
    agents = {
        name: {"delegations": counts[name], "last_used": stats[name].get("last_used")}
        for name in sorted(counts)
    }
    total = sum(counts.values())
    most_used = max(counts, key=lambda n: (counts[n], n)) if counts else None
    return ok(
        agents=agents,
        most_used=most_used if total else None,
        total_delegations=total,
        session_delegations=len(read_list(state, AGENT_DELEGATIONS)),
        favorite_agent=read_preferences(state)["favorite_agent"],
    )
