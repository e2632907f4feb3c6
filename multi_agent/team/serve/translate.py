"""ADK events as AG-UI: the events of a live run, and stored events as AG-UI messages.

One ADK event becomes, in this order:

* its text (an agent's answer): ``CUSTOM agent`` (``{"messageId", "agent"}``), then
  ``TEXT_MESSAGE_START`` (``role: "assistant"``, ``name`` = the agent) / ``CONTENT`` / ``END``;
* each function call: ``TOOL_CALL_START`` (``parentMessageId`` = the event's id) / ``ARGS`` (the
  arguments as JSON) / ``END`` (after a ``CUSTOM agent`` when the event had no text);
* each function response: ``TOOL_CALL_RESULT`` (``messageId`` = ``<event id>:<call id>``); a
  ``transfer_to_agent`` response is a delegation: ``STEP_FINISHED`` of the previous step, a
  ``CUSTOM delegation`` (``{"from", "to"}``) and ``STEP_STARTED`` (``stepName`` = the agent);
* its state change: ``STATE_DELTA``, a JSON Patch (``add`` per key) of the state the client
  sees: session keys and ``user:`` keys; ``app:`` (every user's) and ``temp:`` never.

Message ids are the ADK event ids, so the messages a client builds from a run's events are the
ones ``GET .../messages`` and the replay return for it (same ids, same content).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from typing import Any

from ag_ui.core import (
    AssistantMessage,
    BaseEvent,
    CustomEvent,
    FunctionCall,
    StateDeltaEvent,
    StepFinishedEvent,
    StepStartedEvent,
    TextMessageContentEvent,
    TextMessageEndEvent,
    TextMessageStartEvent,
    ToolCall,
    ToolCallArgsEvent,
    ToolCallEndEvent,
    ToolCallResultEvent,
    ToolCallStartEvent,
    ToolMessage,
    UserMessage,
)
from google.adk.events.event import Event

from ...store.facts import content_texts

__all__ = ["RunTranslator", "event_texts", "to_messages", "visible_state"]

HIDDEN_PREFIXES = ("app:", "temp:")


def visible_state(state: dict[str, Any]) -> dict[str, Any]:
    """The state a client sees: session and ``user:`` keys (not ``app:`` or ``temp:``)."""
    return {k: v for k, v in state.items() if not k.startswith(HIDDEN_PREFIXES)}


def _pointer(key: str) -> str:
    return "/" + key.replace("~", "~0").replace("/", "~1")


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


def event_texts(event: Event) -> str | None:
    """The visible text of an event (thoughts left out), or None."""
    texts = content_texts(event.content)
    return "\n".join(texts) if texts else None


def _now_ms() -> int:
    return int(time.time() * 1000)


def _result_id(event: Event, call_id: str | None, index: int) -> str:
    return f"{event.id}:{call_id or index}"


class RunTranslator:
    """Turns the ADK events of one run into AG-UI events, keeping the open delegation step."""

    def __init__(self) -> None:
        self.step: str | None = None
        self.prompt_tokens = 0
        self.completion_tokens = 0
        self.models: set[str] = set()

    def translate(self, event: Event) -> list[BaseEvent]:
        """The AG-UI events for one ADK event (none for partial or user events)."""
        if event.partial:
            return []
        usage = event.usage_metadata
        if usage is not None and event.author != "user":
            self.prompt_tokens += usage.prompt_token_count or 0
            self.completion_tokens += usage.candidates_token_count or 0
        if event.model_version:
            self.models.add(event.model_version)
        out: list[BaseEvent] = []
        if event.author != "user":
            text = event_texts(event)
            calls = event.get_function_calls()
            if text or calls:
                out.append(CustomEvent(name="agent",
                                       value={"messageId": event.id, "agent": event.author}))
            if text:
                out += [
                    TextMessageStartEvent(message_id=event.id, role="assistant",
                                          name=event.author),
                    TextMessageContentEvent(message_id=event.id, delta=text),
                    TextMessageEndEvent(message_id=event.id),
                ]
            for call in calls:
                call_id = call.id or f"{event.id}-call"
                out += [
                    ToolCallStartEvent(tool_call_id=call_id, tool_call_name=call.name or "?",
                                       parent_message_id=event.id),
                    ToolCallArgsEvent(tool_call_id=call_id, delta=_json(call.args or {})),
                    ToolCallEndEvent(tool_call_id=call_id),
                ]
        for index, response in enumerate(event.get_function_responses()):
            out.append(ToolCallResultEvent(
                message_id=_result_id(event, response.id, index),
                tool_call_id=response.id or f"{event.id}-call", role="tool",
                content=_json(response.response),
            ))
        target = event.actions.transfer_to_agent if event.actions else None
        if target:
            out += self.delegate(event.author, target)
        delta = visible_state(event.actions.state_delta) if event.actions else {}
        if delta:
            out.append(StateDeltaEvent(delta=[
                {"op": "add", "path": _pointer(k), "value": v} for k, v in delta.items()
            ]))
        for item in out:
            item.timestamp = _now_ms()
        return out

    def delegate(self, source: str, target: str) -> list[BaseEvent]:
        """A hand-over from ``source`` to ``target``: the step events and the custom event."""
        out: list[BaseEvent] = []
        if self.step is not None:
            out.append(StepFinishedEvent(step_name=self.step))
        out.append(CustomEvent(name="delegation", value={"from": source, "to": target}))
        out.append(StepStartedEvent(step_name=target))
        self.step = target
        return out

    def close(self) -> list[BaseEvent]:
        """What ends the run's open step (before RUN_FINISHED / RUN_ERROR)."""
        if self.step is None:
            return []
        step, self.step = self.step, None
        return [StepFinishedEvent(step_name=step, timestamp=_now_ms())]

    def usage(self) -> list[dict[str, Any]]:
        """The run's token usage as AG-UI ``TokenUsage`` entries (none when nothing counted)."""
        if not (self.prompt_tokens or self.completion_tokens):
            return []
        entry: dict[str, Any] = {
            "inputTokens": self.prompt_tokens, "outputTokens": self.completion_tokens,
            "totalTokens": self.prompt_tokens + self.completion_tokens,
        }
        if len(self.models) == 1:
            entry["model"] = next(iter(self.models))
        return [entry]


def to_messages(events: Iterable[tuple[str, Event]]) -> list[dict[str, Any]]:
    """Stored events (with their run ids) as AG-UI messages (JSON-ready, camelCase).

    A person's text is a ``user`` message; an agent's text and function calls one
    ``assistant`` message (``name`` = the agent) with ``toolCalls``; each function response a
    ``tool`` message. Every message carries ``metadata.runId``. Events without content
    (state changes, compaction summaries, an aborted run's seal without dangling calls) make no
    message.
    """
    out: list[dict[str, Any]] = []
    for run_id, event in events:
        if event.partial or (event.actions and event.actions.compaction is not None):
            continue
        meta = {"runId": run_id}
        text = event_texts(event)
        if event.author == "user":
            if text:
                out.append(UserMessage(id=event.id, content=text, metadata=meta)
                           .model_dump(by_alias=True, mode="json"))
        else:
            calls = event.get_function_calls()
            if text or calls:
                tool_calls = [
                    ToolCall(id=c.id or f"{event.id}-call", function=FunctionCall(
                        name=c.name or "?", arguments=_json(c.args or {})))
                    for c in calls
                ] or None
                out.append(AssistantMessage(id=event.id, name=event.author, content=text,
                                            tool_calls=tool_calls, metadata=meta)
                           .model_dump(by_alias=True, mode="json"))
        for index, response in enumerate(event.get_function_responses()):
            out.append(ToolMessage(
                id=_result_id(event, response.id, index),
                tool_call_id=response.id or f"{event.id}-call",
                content=_json(response.response), metadata=meta,
            ).model_dump(by_alias=True, mode="json"))
    return out
