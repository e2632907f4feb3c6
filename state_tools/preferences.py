"""Tools for who the user is and what they like: name, preferences, profile."""

from __future__ import annotations

from typing import Any

from google.adk.tools.tool_context import ToolContext

from ._common import (
    AGENT_STATS,
    CONVERSATION_LOG,
    PREFERENCES,
    SESSION_METADATA,
    USER_NAME,
    change_preference_list,
    error,
    normalize_agent,
    normalize_ticker,
    normalize_topic,
    ok,
    preference_updates,
    read_list,
    read_mapping,
    read_preferences,
    updates,
)

__all__ = [
    "add_joke_preference",
    "get_user_profile",
    "remove_joke_preference",
    "set_user_name",
    "update_user_preferences",
]

_NAME_MAX = 80
_LIST_PREFERENCES = {
    "joke_preferences": normalize_topic,
    "nerd_topics": normalize_topic,
    "stock_watchlist": normalize_ticker,
}


def update_user_preferences(
    preference: str, value: str, tool_context: ToolContext, action: str = "add"
) -> dict[str, Any]:
    """Updates one of the user's preferences, remembered across all their sessions.

    Args:
        preference: which preference: "joke_preferences" (joke topics they like),
            "nerd_topics" (subjects they are into), "stock_watchlist" (ticker symbols) or
            "favorite_agent" (a sub-agent's name, e.g. historian).
        value: the topic, ticker or agent name.
        action: "add" (default) or "remove" for the list preferences; "set" or "clear" for
            favorite_agent.

    Returns:
        status "ok" with the new value of the preference, or status "error" saying which
        argument was wrong.
    """
    key = (preference or "").strip().lower() if isinstance(preference, str) else ""
    verb = (action or "add").strip().lower() if isinstance(action, str) else ""
    if key == "favorite_agent":
        if verb == "clear":
            name = None
        elif verb in ("set", "add"):
            name, problem = normalize_agent(value)
            if problem:
                return error(problem)
        else:
            return error(f"Unknown action {action!r} for favorite_agent; use 'set' or 'clear'.")
        preference_updates(tool_context).set(PREFERENCES, ("favorite_agent",), name)
        return ok(favorite_agent=name)
    normalize = _LIST_PREFERENCES.get(key)
    if normalize is None:
        return error(
            f"Unknown preference {preference!r}; use joke_preferences, nerd_topics, "
            "stock_watchlist or favorite_agent."
        )
    if verb not in ("add", "remove"):
        return error(f"Unknown action {action!r} for {key}; use 'add' or 'remove'.")
    item, problem = normalize(value)
    if problem or item is None:
        return error(problem or "invalid value")
    return change_preference_list(tool_context, key, item, add=verb == "add")


def add_joke_preference(topic: str, tool_context: ToolContext) -> dict[str, Any]:
    """Remembers that the user likes jokes about a topic (across all their sessions).

    Call after telling a joke on a topic the user asked for, or when they say they like
    jokes about something.

    Args:
        topic: the joke topic, e.g. "python", "math", "chemistry".

    Returns:
        status "ok" with the updated joke_preferences list, or status "error" for an empty or
        unusable topic.
    """
    item, problem = normalize_topic(topic)
    if problem or item is None:
        return error(problem or "invalid topic")
    return change_preference_list(tool_context, "joke_preferences", item, add=True)


def remove_joke_preference(topic: str, tool_context: ToolContext) -> dict[str, Any]:
    """Forgets that the user likes jokes about a topic ("no more math jokes").

    Args:
        topic: the joke topic to forget.

    Returns:
        status "ok" with the updated joke_preferences list, or status "error" when the topic
        is invalid or was not among the user's preferences.
    """
    item, problem = normalize_topic(topic)
    if problem or item is None:
        return error(problem or "invalid topic")
    return change_preference_list(tool_context, "joke_preferences", item, add=False)


def set_user_name(name: str, tool_context: ToolContext) -> dict[str, Any]:
    """Remembers the user's name (across all their sessions).

    Use when the user says "my name is ..." or "call me ...".

    Args:
        name: the name the user wants to be called.

    Returns:
        status "ok" with the stored name, or status "error" for an empty or too long name.
    """
    if not isinstance(name, str) or not name.strip():
        return error("A name is required.")
    clean = " ".join(name.split()).strip(" .,!?")
    if not clean:
        return error("A name is required.")
    if len(clean) > _NAME_MAX:
        return error(f"That name is too long ({len(clean)} characters; at most {_NAME_MAX}).")
    if not clean.isprintable():
        return error("A name cannot contain control characters.")
    previous = tool_context.state.get(USER_NAME)
    updates(tool_context).set(USER_NAME, (), clean)
    return ok(user_name=clean, previous=previous)


def get_user_profile(tool_context: ToolContext) -> dict[str, Any]:
    """Returns everything remembered about the user: name, preferences and usage.

    Use for "what do you know about me?", "show my profile", "what's my name?".

    Returns:
        status "ok" with ``user_name`` (or null), ``preferences`` (favorite_agent,
        joke_preferences, stock_watchlist, nerd_topics), ``agent_stats``, the number of
        turns remembered across sessions and this session's metadata.
    """
    state = tool_context.state
    name = state.get(USER_NAME)
    return ok(
        user_id=tool_context.user_id,
        user_name=name if isinstance(name, str) and name else None,
        preferences=read_preferences(state),
        agent_stats=read_mapping(state, AGENT_STATS),
        remembered_turns=len(read_list(state, CONVERSATION_LOG)),
        session=read_mapping(state, SESSION_METADATA),
    )
