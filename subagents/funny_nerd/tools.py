"""funny_nerd's own tools: tell a joke the user has not heard, list the topics."""

from __future__ import annotations

from typing import Any

from google.adk.tools.tool_context import ToolContext
from multi_agent.team.state_tools._common import (
    error,
    normalize_topic,
    ok,
    read_mapping,
    read_preferences,
)

from multi_agent.store.updates import StateUpdates

from .jokes import load_jokes

__all__ = ["JOKES_TOLD", "list_joke_topics", "tell_joke"]

JOKES_TOLD = "user:jokes_told"
DEFAULT_TOPIC = "programming"


def _choose_topic(liked: list[str], told: dict[str, Any]) -> tuple[str, str]:
    book = load_jokes()
    known = [t for t in (book.resolve(x) for x in reversed(liked)) if t]
    if not known:
        return DEFAULT_TOPIC, "default"

    def unheard(topic: str) -> int:
        heard = told.get(topic) or []
        return sum(1 for j in book.topics[topic] if j.id not in heard)

    # The liked topic with the most jokes left; among equals the most recently liked.
    best = max(known, key=lambda t: (unheard(t), -known.index(t)))
    return best, "liked"


def tell_joke(tool_context: ToolContext, topic: str = "") -> dict[str, Any]:
    """Picks a nerdy joke from the collection that this user has not heard yet.

    Never repeats a joke to the same user until every joke on the topic has been told; then
    it says so (``exhausted`` is true) and starts the topic over. Tell the user the joke
    text exactly as returned.

    Args:
        topic: the joke topic, e.g. "python", "programming", "math", "science", "physics",
            "chemistry", "databases". Leave empty to pick one of the topics the user likes.

    Returns:
        status "ok" with ``joke``, ``topic``, ``joke_id``, ``remaining`` (unheard jokes left
        on the topic), ``exhausted`` and ``chosen_because`` ("asked", "liked" or "default");
        or status "error" with the available ``topics`` when there are no jokes on the topic.
    """
    book = load_jokes()
    state = tool_context.state
    told = read_mapping(state, JOKES_TOLD)
    if isinstance(topic, str) and topic.strip():
        wanted, problem = normalize_topic(topic)
        if problem or wanted is None:
            return error(problem or "invalid topic", topics=sorted(book.topics))
        name = book.resolve(wanted)
        if name is None:
            return error(
                f"I don't have any jokes about {wanted!r}.",
                topic=wanted,
                topics=sorted(book.topics),
            )
        why = "asked"
    elif topic is None or isinstance(topic, str):
        name, why = _choose_topic(read_preferences(state)["joke_preferences"], told)
    else:
        return error("topic must be text.", topics=sorted(book.topics))
    heard = [x for x in (told.get(name) or []) if isinstance(x, str)]
    joke, exhausted = book.pick(name, heard)
    heard = [] if exhausted else heard
    # Atomic updates: two chats of the user telling jokes at once both keep their record.
    updates = StateUpdates(tool_context)
    if exhausted:
        told = updates.set(JOKES_TOLD, (name,), [joke.id])
    else:
        told = updates.add_unique(JOKES_TOLD, (name,), joke.id)
    total = len(book.topics[name])
    return ok(
        topic=name,
        joke=joke.text,
        joke_id=joke.id,
        remaining=total - len(told[name]),
        total=total,
        exhausted=exhausted,
        chosen_because=why,
    )


def list_joke_topics(tool_context: ToolContext) -> dict[str, Any]:
    """Lists the joke topics in the collection and how many jokes this user has not heard.

    Returns:
        status "ok" with ``topics`` ({topic: {total, unheard}}) and the user's liked
        ``joke_preferences``.
    """
    book = load_jokes()
    told = read_mapping(tool_context.state, JOKES_TOLD)
    topics = {}
    for name, jokes in sorted(book.topics.items()):
        heard = told.get(name) or []
        topics[name] = {"total": len(jokes), "unheard": sum(1 for j in jokes if j.id not in heard)}
    return ok(
        topics=topics,
        joke_preferences=read_preferences(tool_context.state)["joke_preferences"],
    )
