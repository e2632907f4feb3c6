"""ADK's ``load_memory`` tool for the historian, reporting failures instead of raising them, and
finding a company under its ticker and a ticker under its company's name.

ADK's ``LoadMemoryTool`` searches the Runner's memory service and returns
``LoadMemoryResponse(memories=[MemoryEntry...])``; ADK hands the model that as the function
response ``{"result": {"memories": [{"content": {"parts": [{"text": ...}]}, "author": ...,
"timestamp": ..., "custom_metadata": {"session_id", "event_id", "score"}}]}}``. Without a memory
service (or when the search fails) ADK's tool raises into the run; this one returns
``{"status": "error", "error": "...", "memories": []}`` so the agent can say that memory is not
available and still answer from the stored history.

When the query names a company of :mod:`multi_agent.models.companies` ("Nvidia") or uses its
ticker ("NVDA"), the other names and tickers are searched for as well. The memories the query
itself found come first, in the memory service's order; after them come the ones found only
under another name, each with ``custom_metadata["matched_alias"]`` (the name or ticker its text
contains, e.g. ``"NVDA"``) and ``custom_metadata["company"]`` (e.g. ``"Nvidia (NVDA)"``),
so that an answer can say why it matched.
"""

from __future__ import annotations

import logging
from typing import Any

from google.adk.tools.load_memory_tool import LoadMemoryResponse, LoadMemoryTool
from google.adk.tools.tool_context import ToolContext
from typing_extensions import override

from multi_agent.models.companies import alias_in, search_aliases
from multi_agent.store.facts import content_texts

__all__ = ["MAX_ALIAS_MEMORIES", "MEMORY_TOOL", "SafeLoadMemoryTool"]

MEMORY_TOOL = "load_memory"
MAX_ALIAS_MEMORIES = 10
"""The most memories added because they contain another name or ticker of the company."""

logger = logging.getLogger(__name__)


def _text(memory: Any) -> str:
    return " ".join(content_texts(getattr(memory, "content", None)))


def _identity(memory: Any) -> tuple[Any, ...]:
    meta = getattr(memory, "custom_metadata", None) or {}
    if meta.get("event_id"):
        return ("event", meta.get("session_id"), meta["event_id"])
    return ("text", getattr(memory, "timestamp", None), _text(memory))


class SafeLoadMemoryTool(LoadMemoryTool):
    """``load_memory`` (same name, declaration and result) that never raises into the model
    and also finds a company under its other names and tickers."""

    @override
    async def run_async(self, *, args: dict[str, Any], tool_context: ToolContext) -> Any:
        try:
            found = await super().run_async(args=args, tool_context=tool_context)
        except Exception as exc:  # no memory service, or the search failed
            logger.warning("load_memory failed", exc_info=True)
            return {"status": "error", "error": f"Long memory is not available: {exc}",
                    "memories": []}
        query = args.get("query")
        aliases = search_aliases(query) if isinstance(query, str) else []
        if not aliases or not isinstance(found, LoadMemoryResponse):
            return found
        try:
            more = await super().run_async(
                args={**args, "query": " ".join(a.text for a in aliases)},
                tool_context=tool_context,
            )
        except Exception:  # the query's own memories still answer
            logger.warning("load_memory for a company's other names failed", exc_info=True)
            return found
        seen = {_identity(m) for m in found.memories}
        added = []
        for memory in getattr(more, "memories", None) or []:
            alias = alias_in(_text(memory), aliases)
            if alias is None or _identity(memory) in seen:
                continue  # found by another word of the alias ("bank"), or already there
            seen.add(_identity(memory))
            meta = {**(memory.custom_metadata or {}), "matched_alias": alias.text,
                    "company": alias.company.label()}
            added.append(memory.model_copy(update={"custom_metadata": meta}))
            if len(added) >= MAX_ALIAS_MEMORIES:
                break
        return LoadMemoryResponse(memories=[*found.memories, *added])
