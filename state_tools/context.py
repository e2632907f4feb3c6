"""What an agent's instruction tells the model about the user (for LLM-backed runs).

Instructions are built by ``InstructionProvider`` functions so that state values are
rendered as readable text (ADK's ``{key}`` templating would print Python reprs and fail on
missing keys).
"""

from __future__ import annotations

from collections.abc import Callable

from google.adk.agents.readonly_context import ReadonlyContext

from ._common import USER_NAME, read_preferences

__all__ = ["instruction_with_user_context", "user_context"]


def user_context(context: ReadonlyContext) -> str:
    """A few lines on the user, from state: name, favourite agent, liked topics, watch list."""
    state = context.state
    prefs = read_preferences(state)
    name = state.get(USER_NAME)

    def listed(key: str) -> str:
        return ", ".join(str(x) for x in prefs.get(key) or []) or "none yet"

    return "\n".join([
        "What you know about the user (from their stored profile):",
        f"- name: {name if isinstance(name, str) and name else 'unknown'}",
        f"- favourite agent: {prefs.get('favorite_agent') or 'none'}",
        f"- joke topics they like: {listed('joke_preferences')}",
        f"- nerd topics: {listed('nerd_topics')}",
        f"- stock watch list: {listed('stock_watchlist')}",
    ])


def instruction_with_user_context(text: str) -> Callable[[ReadonlyContext], str]:
    """An InstructionProvider: ``text`` followed by :func:`user_context`."""

    def provide(context: ReadonlyContext) -> str:
        return f"{text.strip()}\n\n{user_context(context)}"

    return provide
