"""What the store records about an event beyond ADK's own columns.

Who said it (``source``), to whom (``target``), from where in the agent tree (``branch``, dot
notation such as ``manager.stock_analyst``), what kind of message it is, its plain text (for
queries and full-text search) and the tokens the model reported.

Message types:
    human        the person's message (author ``user`` with text)
    agent        an agent's text reply
    tool_call    an agent asking for one or more tools (incl. ``transfer_to_agent``)
    tool_result  a tool's answer (ADK authors it as the calling agent)
    system       anything else: state-only events, rewinds, compactions, errors
"""

from __future__ import annotations

from dataclasses import dataclass

from google.adk.events.event import Event
from google.genai import types

from ..defaults import TRANSFER_TOOL

__all__ = ["EventFacts", "MESSAGE_TYPES", "TRANSFER_TOOL", "content_texts", "event_facts"]

MESSAGE_TYPES = ("human", "agent", "tool_call", "tool_result", "system")


@dataclass(slots=True)
class EventFacts:
    """Columns derived from an event at append time."""

    source: str
    target: str | None
    message_type: str
    text: str | None
    transfer_to: str | None
    prompt_tokens: int | None
    completion_tokens: int | None
    total_tokens: int | None


def content_texts(content: types.Content | None) -> list[str]:
    """The text parts of a message, in order, without the model's thoughts: what an event
    says (every reader of event text goes through this)."""
    if content is None or not content.parts:
        return []
    return [p.text for p in content.parts if p.text and not p.thought]


def _text_of(event: Event) -> str | None:
    texts = content_texts(event.content)
    if not texts:
        return None
    # PostgreSQL TEXT cannot hold NUL; this column is derived (event_data keeps the original).
    return "\n".join(texts).replace("\x00", "")


def event_facts(event: Event, *, last_agent: str | None) -> EventFacts:
    """Derives the extra columns of one event.

    Args:
        event: the event being appended.
        last_agent: the agent that spoke last in the session; ADK routes a human message to
            it, so it is the target of a human message (``None`` before any agent spoke).
    """
    author = event.author or "unknown"
    calls = event.get_function_calls()
    responses = event.get_function_responses()
    transfer_to = event.actions.transfer_to_agent if event.actions else None
    text = _text_of(event)
    target: str | None
    if calls:
        message_type = "tool_call"
        transfer_calls = [c for c in calls if c.name == TRANSFER_TOOL]
        if transfer_calls and transfer_calls[0].args:
            target = str(transfer_calls[0].args.get("agent_name") or TRANSFER_TOOL)
        else:
            target = ",".join(sorted({c.name or "?" for c in calls}))
    elif responses:
        message_type = "tool_result"
        target = transfer_to or author
    elif author == "user":
        message_type = "human" if text is not None else "system"
        target = last_agent  # the store replaces it with the agent that answers
    elif text is not None:
        message_type = "agent"
        target = transfer_to or "user"
    else:
        message_type = "system"
        target = transfer_to
    usage = event.usage_metadata
    return EventFacts(
        source=author,
        target=target,
        message_type=message_type,
        text=text,
        transfer_to=transfer_to,
        prompt_tokens=usage.prompt_token_count if usage else None,
        completion_tokens=usage.candidates_token_count if usage else None,
        total_tokens=usage.total_token_count if usage else None,
    )
