"""Tools about the agents themselves: delegations, usage statistics, the favourite agent."""

from __future__ import annotations

from typing import Any

from google.adk.tools.tool_context import ToolContext

from ._common import (
    AGENT_DELEGATIONS,
    AGENT_STATS,
    DELEGATION_LIMIT,
    PREFERENCES,
    append_bounded,
    error,
    normalize_agent,
    now_iso,
    ok,
    read_list,
    read_mapping,
    read_preferences,
    touch_session,
)

__all__ = ["get_agent_performance_stats", "set_favorite_agent", "track_agent_delegation"]

_TASK_MAX = 120


def track_agent_delegation(agent_name: str, task: str, tool_context: ToolContext) -> dict[str, Any]:
    """Records that you are handing the user's request to a sub-agent.

    Call this right before transfer_to_agent, every time you delegate. It appends the
    delegation to this session's history and counts it in the user's agent statistics.

    Args:
        agent_name: the sub-agent that will handle the request: funny_nerd, stock_analyst or
            historian.
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
    entry = {"timestamp": stamp, "agent_name": name, "task": text, "status": "delegated"}
    state = tool_context.state
    state[AGENT_DELEGATIONS] = append_bounded(
        read_list(state, AGENT_DELEGATIONS), entry, DELEGATION_LIMIT
    )
    stats = read_mapping(state, AGENT_STATS)
    agent_stats = dict(stats.get(name) or {})
    count = agent_stats.get("delegations")
    agent_stats["delegations"] = (count if isinstance(count, int) else 0) + 1
    agent_stats["last_used"] = stamp
    stats[name] = agent_stats
    state[AGENT_STATS] = stats
    touch_session(state)
    return ok(delegation=entry, total_delegations_to_agent=agent_stats["delegations"])


def set_favorite_agent(agent_name: str, tool_context: ToolContext) -> dict[str, Any]:
    """Sets the user's favourite agent, remembered across all their sessions.

    Use when the user says which agent they prefer ("my favourite agent is the historian").

    Args:
        agent_name: funny_nerd, stock_analyst or historian.

    Returns:
        status "ok" with the favourite agent, or status "error" for an unknown agent.
    """
    name, problem = normalize_agent(agent_name)
    if problem or name is None:
        return error(problem or "invalid agent name")
    prefs = read_preferences(tool_context.state)
    previous = prefs["favorite_agent"]
    prefs["favorite_agent"] = name
    tool_context.state[PREFERENCES] = prefs
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
