"""How the offline model reads ADK's ``load_memory`` result and words what it recalls.

ADK's ``load_memory`` tool returns ``LoadMemoryResponse(memories=[MemoryEntry, ...])``, which
reaches the model as the function response ``{"result": ...}``: the pydantic object itself
during the run, its JSON form once the event has been stored and loaded again. Each memory has
``content.parts[i].text``, ``author`` (``user`` for the person), ``timestamp`` (ISO 8601) and
``custom_metadata`` (``session_id``, ``event_id``, ``score``), best match first.

Only what the memories say is repeated, with their dates; when none is relevant the reply says
so plainly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from .intents import classify
from .replies import IDENTITY, NOT_UNDERSTOOD_PREFIX, describe_search

__all__ = ["Memory", "Recalled", "describe_recall", "read_memories"]

MAX_QUOTED = 5
QUOTE_CHARS = 200


@dataclass(frozen=True, slots=True)
class Memory:
    """One remembered message."""

    text: str
    author: str
    timestamp: str | None
    session_id: str | None
    score: float | None = None
    similar_only: bool = False
    """Found by meaning (semantic search) without containing the words asked about."""
    alias: str | None = None
    """Found only under another name or ticker of the company asked about (``NVDA`` for
    "Nvidia"): ``custom_metadata["matched_alias"]`` of the historian's ``load_memory``."""

    @property
    def by_person(self) -> bool:
        """Whether the person (not an agent) said it."""
        return self.author == "user"


@dataclass(slots=True)
class Recalled:
    """The usable memories of one ``load_memory`` result, best match first."""

    memories: list[Memory] = field(default_factory=list)
    error: str | None = None
    left_out: int = 0


def _plain(value: Any) -> Any:
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json", exclude_none=True)
    return value


def _text(content: Any) -> str:
    content = _plain(content)
    if not isinstance(content, dict):
        return ""
    parts = content.get("parts") or []
    texts = [
        str(p.get("text")) for p in map(_plain, parts) if isinstance(p, dict) and p.get("text")
    ]
    return " ".join(" ".join(texts).split())


def _when(stamp: str | None) -> datetime | None:
    if not stamp:
        return None
    try:
        when = datetime.fromisoformat(stamp)
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _is_history_question(text: str) -> bool:
    found = classify(text)
    return found is not None and found.intent.owner == "historian"


def _is_boilerplate(text: str) -> bool:
    """The offline model's own help / not-understood text: it lists example requests about
    every area, so it would match any area word without saying anything about the user."""
    return text.startswith(NOT_UNDERSTOOD_PREFIX) or IDENTITY in text


def _words(query: str) -> set[str]:
    return {w for w in (x.strip(".,!?;:'\"()").lower() for x in query.split()) if len(w) >= 2}


def relevant_history(history: dict[str, Any], query: str) -> dict[str, Any]:
    """``history`` without matches that only matched the offline model's boilerplate reply
    (unless the person's own message has a word of the query, or the other name of the
    company an ``alias_matches`` entry was found under)."""
    out = dict(history)
    for key, total_key in (("matches", "total_matches"),
                           ("alias_matches", "total_alias_matches")):
        matches = history.get(key) or []
        kept = [
            m for m in matches
            if not _is_boilerplate(str(m.get("agent_response") or ""))
            or any(w in str(m.get("user_input") or "").lower()
                   for w in _words(str(m.get("alias") or query)))
        ]
        if len(kept) != len(matches):
            total = int(history.get(total_key) or len(matches)) - (len(matches) - len(kept))
            out.update({key: kept, total_key: total})
    return out


def read_memories(result: dict[str, Any], *, days: int = 0) -> Recalled:
    """The memories in a ``load_memory`` function response worth repeating.

    Left out: the historian's own earlier answers (recaps quote everything), the person's
    earlier history questions ("what did I say about X?" matches X but says nothing about
    it), agent replies that only echo a message already kept, and, with ``days``, anything
    older.
    """
    payload = _plain(result.get("result", result)) if isinstance(result, dict) else {}
    if not isinstance(payload, dict):
        return Recalled(error="The memory search returned something unreadable.")
    error = payload.get("error") if payload.get("status") == "error" else None
    since = datetime.now(UTC) - timedelta(days=days) if days else None
    found: list[Memory] = []
    raw = payload.get("memories") or []
    for item in map(_plain, raw):
        if not isinstance(item, dict):
            continue
        text = _text(item.get("content"))
        if not text:
            continue
        meta = item.get("custom_metadata") or {}
        content = _plain(item.get("content")) or {}
        author = str(item.get("author") or ("user" if content.get("role") == "user" else "agent"))
        memory = Memory(
            text=text, author=author, timestamp=item.get("timestamp"),
            session_id=meta.get("session_id") if isinstance(meta, dict) else None,
            score=meta.get("score") if isinstance(meta, dict) else None,
            similar_only=isinstance(meta, dict) and "similarity" in meta
            and "fulltext_rank" not in meta,
            alias=str(meta["matched_alias"]) if isinstance(meta, dict)
            and meta.get("matched_alias") else None,
        )
        when = _when(memory.timestamp)
        if since is not None and (when is None or when < since):
            continue
        if author == "historian" or (memory.by_person and _is_history_question(text)):
            continue
        if not memory.by_person and _is_boilerplate(text):
            continue
        found.append(memory)
    said = [m.text for m in found if m.by_person]
    kept = [m for m in found if m.by_person or not any(s in m.text for s in said)]
    return Recalled(memories=kept, error=str(error) if error else None,
                    left_out=len(raw) - len(kept))


def _day(stamp: str | None) -> str:
    when = _when(stamp)
    return when.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if when else "an unknown date"


def _quote(text: str) -> str:
    return text if len(text) <= QUOTE_CHARS else text[: QUOTE_CHARS - 1].rstrip() + "…"


def _where(memory: Memory, session_id: str | None) -> str:
    if session_id is None or memory.session_id is None:
        return "in one of our conversations"
    return "earlier in this session" if memory.session_id == session_id else "in another session"


def _line(memory: Memory, query: str, session_id: str | None) -> str:
    said = f'on {_day(memory.timestamp)} {_where(memory, session_id)}: "{_quote(memory.text)}"'
    if memory.by_person:
        subject = f"'{query}'" if " " in query else query
        if memory.alias:  # honest: it says the company's other name, not the one asked about
            return f"You mentioned {memory.alias} ({subject}) {said}"
        if memory.similar_only:  # honest: the words asked about are not in it
            return f"You said something close to {subject} {said}"
        return f"You mentioned {subject} {said}"
    if memory.alias:
        return f"{memory.author} told you about {memory.alias} ({query}) {said}"
    return f"{memory.author} told you {said}"


def describe_recall(
    query: str,
    *,
    days: int,
    recalled: Recalled | None,
    history: dict[str, Any],
    session_id: str | None,
) -> str:
    """The answer to "what did I say about X?" from memory and/or the stored history.

    Args:
        query: the subject asked about.
        days: the time window asked for (0: none).
        recalled: what ``load_memory`` found (None when the agent has no memory tool).
        history: the ``search_conversation_history`` result ({} when not searched).
        session_id: the current session, to say "this session" or "another session".
    """
    window = f" in the last {days} day{'s' if days != 1 else ''}" if days else ""
    memories = recalled.memories if recalled else []
    # What a company's other name or ticker found ("NVDA" for "Nvidia") is the answer only
    # when the query itself found nothing in memory.
    memories = [m for m in memories if not m.alias] or memories
    history = relevant_history(history, query) if history else history
    if history.get("matches") or history.get("alias_matches"):
        # The stored history already lists these exchanges: add only what the person said
        # elsewhere (older than the history scan, or matched by meaning of the words).
        asked = [
            str(m.get("user_input") or "").rstrip("…")
            for m in [*(history.get("matches") or []), *(history.get("alias_matches") or [])]
        ]
        memories = [
            m for m in memories
            if m.by_person and not any(a and m.text.startswith(a) for a in asked)
        ]
    lines: list[str] = []
    if memories:
        best = memories[:MAX_QUOTED]
        best.sort(key=lambda m: _when(m.timestamp) or datetime.min.replace(tzinfo=UTC))
        if len(best) > 1:
            lines.append(f"From my memory of our conversations, about {query!r}{window}:")
            lines.extend(f"  - {_line(m, query, session_id)}" for m in best)
        else:
            suffix = f" ({window.strip()})" if days else ""
            lines.append(_line(best[0], query, session_id) + suffix)
        if len(memories) > len(best):
            more = len(memories) - len(best)
            lines.append(f"(and {more} more mention{'s' if more != 1 else ''} in memory)")
    if history.get("matches") or history.get("alias_matches"):
        lines.append(describe_search(history))
    if lines:
        return "\n".join(lines)
    if recalled is not None and recalled.error:
        return (
            f"My long memory isn't available right now ({recalled.error}), and I don't find "
            f"anything about {query!r}{window} in our stored conversation history either."
        )
    where = "in my memory of our conversations" if recalled is not None else (
        "in our conversations"
    )
    return f"I don't find anything about {query!r}{window} {where}."
