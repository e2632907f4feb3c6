"""Records every turn in the conversation history: an ``after_agent_callback`` for each agent.

ADK runs a transferred-to agent *inside* the agent that transferred, so after one user turn the
``after_agent_callback`` of every agent on the path fires, innermost first. The agent that wrote
the turn's final text records the turn; the others see that it was recorded (a ``temp:`` key,
which lives for the invocation and is never stored) and do nothing.

Per turn it writes, with atomic updates (see ``state_tools._common``: another chat of the user,
or another writer of the session, may have added entries since this copy was loaded; they are
kept, and the turn never fails over them):

* ``conversation_history`` (session): appends ``{timestamp, user_input, agent_response,
  agent}``, the newest ``HISTORY_LIMIT`` kept, texts cut to ``HISTORY_TEXT_LIMIT`` characters;
* ``user:conversation_log`` (user, across sessions): appends the same plus ``session_id``, the
  newest ``USER_LOG_LIMIT`` kept, texts cut to ``LOG_TEXT_LIMIT`` characters;

(ADK stores every state change as the key's whole new value in the event, so these bounds
also bound what each turn adds to the database.)
* ``session_metadata``: ``last_activity`` set, ``total_interactions`` + 1;
* the newest ``agent_delegations`` entry of the answering agent, if still ``delegated``:
  replaced by the same entry with status ``completed`` (removed by value, the unique ``id``
  making the value unique, and appended; there is no atomic update of a list element, so the
  completed entry moves to the end of the list).
"""

from __future__ import annotations

from google.adk.agents.callback_context import CallbackContext
from google.adk.events.event import Event
from google.genai import types

from multi_agent.store.facts import content_texts

from ._common import (
    AGENT_DELEGATIONS,
    CONVERSATION_HISTORY,
    CONVERSATION_LOG,
    DELEGATION_LIMIT,
    HISTORY_LIMIT,
    USER_LOG_LIMIT,
    now_iso,
    read_list,
    touch_session,
    updates,
)

__all__ = ["HISTORY_TEXT_LIMIT", "LOG_TEXT_LIMIT", "record_turn"]

HISTORY_TEXT_LIMIT = 300
LOG_TEXT_LIMIT = 120
_RECORDED = "temp:turn_recorded"


def _text(content: types.Content | None) -> str:
    return "".join(content_texts(content)).strip()


def _final_reply(events: list[Event], invocation_id: str) -> Event | None:
    """The last event of this invocation that is an agent's plain text answer."""
    for event in reversed(events):
        if event.invocation_id != invocation_id:
            break
        if event.author == "user" or event.partial:
            continue
        if event.get_function_calls() or event.get_function_responses():
            continue
        if _text(event.content):
            return event
    return None


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _complete_delegation(context: CallbackContext, agent: str) -> None:
    """Marks the newest delegation to ``agent`` completed, if it is still ``delegated``."""
    delegations = read_list(context.state, AGENT_DELEGATIONS)
    for entry in reversed(delegations):
        if isinstance(entry, dict) and entry.get("agent_name") == agent:
            if entry.get("status") == "delegated":
                change = updates(context)
                # ``remove`` drops every equal entry: an entry stored without an ``id`` (by an
                # older version) may have an equal twin, which is put back unchanged.
                twins = sum(1 for e in delegations if e == entry) - 1
                change.remove(AGENT_DELEGATIONS, (), entry)
                for _ in range(twins):
                    change.append(AGENT_DELEGATIONS, (), entry, keep_last=DELEGATION_LIMIT)
                change.append(AGENT_DELEGATIONS, (), {**entry, "status": "completed"},
                              keep_last=DELEGATION_LIMIT)
            return


def record_turn(callback_context: CallbackContext) -> types.Content | None:
    """``after_agent_callback``: stores the finished turn in the conversation history.

    Args:
        callback_context: ADK's context of the agent that just finished.

    Returns:
        None: the agent's reply is left unchanged.
    """
    state = callback_context.state
    invocation_id = callback_context.invocation_id
    if state.get(_RECORDED) == invocation_id:
        return None
    reply = _final_reply(callback_context.session.events, invocation_id)
    if reply is None or reply.author != callback_context.agent_name:
        return None
    stamp = now_iso()
    entry = {
        "timestamp": stamp,
        "user_input": _cut(_text(callback_context.user_content), HISTORY_TEXT_LIMIT),
        "agent_response": _cut(_text(reply.content), HISTORY_TEXT_LIMIT),
        "agent": reply.author,
    }
    change = updates(callback_context)
    change.append(CONVERSATION_HISTORY, (), entry, keep_last=HISTORY_LIMIT)
    logged = {
        **entry,
        "agent_response": _cut(entry["agent_response"], LOG_TEXT_LIMIT),
        "user_input": _cut(entry["user_input"], LOG_TEXT_LIMIT),
        "session_id": callback_context.session.id,
    }
    change.append(CONVERSATION_LOG, (), logged, keep_last=USER_LOG_LIMIT)
    touch_session(callback_context, interaction=True)
    _complete_delegation(callback_context, reply.author)
    state[_RECORDED] = invocation_id
    return None
