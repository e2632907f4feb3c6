"""An events summariser for ADK compaction that needs no model: extractive and bounded.

ADK's ``LlmEventSummarizer`` asks a model to summarise old events. With the offline model (or
no model budget) that is not possible, so :class:`ExtractiveSummarizer` writes the summary
itself: for each human and agent message in the range, who said it and its first sentence
(cut to a bounded length), plus the tools that were used and the agents work was handed to.
When the lines do not fit ``max_chars``, the newest are kept and the rest are counted.

The result is the same kind of event ``LlmEventSummarizer`` returns: author ``user``, no
content, ``actions.compaction`` with the range's first and last timestamps and the summary as
``compacted_content`` (role ``model``), so ADK's prompt assembly uses it unchanged.
"""

from __future__ import annotations

import re

from google.adk.apps.base_events_summarizer import BaseEventsSummarizer
from google.adk.events.event import Event
from google.adk.events.event_actions import EventActions, EventCompaction
from google.genai import types
from typing_extensions import override

from ..store.facts import TRANSFER_TOOL, content_texts
from .window import is_compaction

__all__ = ["ExtractiveSummarizer", "first_sentence"]

_SENTENCE_END = re.compile(r"(?<=[.!?。！？])\s+|\n+")

HEADER = "Summary of the earlier conversation (first sentence of each message):"


def first_sentence(text: str, max_chars: int) -> str:
    """The first sentence of ``text`` (or its first line), at most ``max_chars`` long.

    A longer sentence is cut at a word boundary and ends with an ellipsis.
    """
    sentence = " ".join(_SENTENCE_END.split(text.strip(), maxsplit=1)[0].split())
    if len(sentence) <= max_chars:
        return sentence
    cut = sentence[: max_chars - 1]
    if sentence[max_chars - 1] != " ":  # mid-word: back to the last whole word
        cut = cut.rsplit(" ", 1)[0] or cut
    return cut.rstrip(" ,;:") + "…"


class ExtractiveSummarizer(BaseEventsSummarizer):
    """Summarises events by quoting the first sentence of each message; no LLM call.

    Args:
        max_chars: the longest summary, in characters (header included).
        max_sentence_chars: the longest quote of one message.
    """

    def __init__(self, *, max_chars: int = 2000, max_sentence_chars: int = 160) -> None:
        if max_sentence_chars < 20 or max_chars < max_sentence_chars + len(HEADER) + 40:
            raise ValueError("max_chars must leave room for the header and one quote.")
        self.max_chars = max_chars
        self.max_sentence_chars = max_sentence_chars

    def summary_text(self, events: list[Event]) -> str | None:
        """The summary of ``events`` as text, or ``None`` when they hold no message."""
        lines: list[str] = []
        tools: dict[str, None] = {}
        handoffs: dict[str, None] = {}
        for event in events:
            if is_compaction(event) or event.content is None or not event.content.parts:
                continue
            for call in event.get_function_calls():
                if call.name == TRANSFER_TOOL:
                    target = (call.args or {}).get("agent_name")
                    handoffs[f"{event.author} -> {target}"] = None
                elif call.name:
                    tools[call.name] = None
            texts = content_texts(event.content)
            if not texts or event.get_function_responses():
                continue
            quote = first_sentence(" ".join(texts), self.max_sentence_chars)
            if quote:
                lines.append(f"- {event.author}: {quote}")
        if not lines:
            return None
        extras = []
        if handoffs:
            extras.append("Handoffs: " + ", ".join(handoffs) + ".")
        if tools:
            extras.append("Tools used: " + ", ".join(tools) + ".")
        budget = self.max_chars - len(HEADER) - sum(len(x) + 1 for x in extras) - 40
        kept: list[str] = []
        used = 0
        for line in reversed(lines):  # the newest messages matter most
            if used + len(line) + 1 > budget:
                break
            kept.append(line)
            used += len(line) + 1
        kept.reverse()
        omitted = len(lines) - len(kept)
        body = ([f"- ({omitted} earlier messages omitted)"] if omitted else []) + kept
        return "\n".join([HEADER, *body, *extras])[: self.max_chars]

    @override
    async def maybe_summarize_events(self, *, events: list[Event]) -> Event | None:
        """The compaction event for ``events``, or ``None`` when there is nothing to say."""
        if not events:
            return None
        text = self.summary_text(events)
        if text is None:
            return None
        return Event(
            author="user",
            invocation_id=Event.new_id(),
            actions=EventActions(
                compaction=EventCompaction(
                    start_timestamp=events[0].timestamp,
                    end_timestamp=events[-1].timestamp,
                    compacted_content=types.Content(
                        role="model", parts=[types.Part(text=text)]
                    ),
                )
            ),
        )
