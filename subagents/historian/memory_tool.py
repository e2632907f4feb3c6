"""ADK's ``load_memory`` tool for the historian, reporting failures instead of raising them.

ADK's ``LoadMemoryTool`` searches the Runner's memory service and returns
``LoadMemoryResponse(memories=[MemoryEntry...])``; ADK hands the model that as the function
response ``{"result": {"memories": [{"content": {"parts": [{"text": ...}]}, "author": ...,
"timestamp": ..., "custom_metadata": {"session_id", "event_id", "score"}}]}}``. Without a memory
service (or when the search fails) ADK's tool raises into the run; this one returns
``{"status": "error", "error": "...", "memories": []}`` so the agent can say that memory is not
available and still answer from the stored history.
"""

from __future__ import annotations

import logging
from typing import Any

from google.adk.tools.load_memory_tool import LoadMemoryTool
from google.adk.tools.tool_context import ToolContext
from typing_extensions import override

__all__ = ["MEMORY_TOOL", "SafeLoadMemoryTool"]

MEMORY_TOOL = "load_memory"

logger = logging.getLogger(__name__)


class SafeLoadMemoryTool(LoadMemoryTool):
    """``load_memory`` (same name, declaration and result) that never raises into the model."""

    @override
    async def run_async(self, *, args: dict[str, Any], tool_context: ToolContext) -> Any:
        try:
            return await super().run_async(args=args, tool_context=tool_context)
        except Exception as exc:  # no memory service, or the search failed
            logger.warning("load_memory failed", exc_info=True)
            return {"status": "error", "error": f"Long memory is not available: {exc}",
                    "memories": []}
