"""``RunTreePlugin``: AgentTool calls as sub-runs of the run that made them.

A transfer to a sub-agent shows up in the session's events, so the store records it by itself.
An ``AgentTool`` runs its agent in a session of its own (ADK gives it an in-memory one); only the
call and its result come back. This ADK plugin records each such call as a sub-run (kind
``agent_tool``) with its agent and outcome. Add it to your ``App``/``Runner`` plugins; it does
nothing when the session service is not this project's store.
"""

from __future__ import annotations

import logging
from typing import Any

from google.adk.plugins.base_plugin import BasePlugin
from google.adk.tools.agent_tool import AgentTool
from google.adk.tools.base_tool import BaseTool
from google.adk.tools.tool_context import ToolContext

from .service import DatabaseSessionService

__all__ = ["RunTreePlugin"]

logger = logging.getLogger(__name__)


def _target(tool_context: ToolContext) -> tuple[DatabaseSessionService, dict[str, str]] | None:
    invocation = tool_context._invocation_context
    service = invocation.session_service
    if not isinstance(service, DatabaseSessionService):
        return None
    session = invocation.session
    key = {"app_name": session.app_name, "user_id": session.user_id, "session_id": session.id}
    return service, key


def _run_id(tool: BaseTool, tool_context: ToolContext) -> str:
    return f"{tool.name[:120]}@{tool_context.function_call_id or 'call'}"[:256]


class RunTreePlugin(BasePlugin):
    """Records AgentTool calls as ``agent_tool`` sub-runs (running → completed/failed)."""

    def __init__(self, *, name: str = "run_tree") -> None:
        super().__init__(name=name)

    async def before_tool_callback(
        self, *, tool: BaseTool, tool_args: dict[str, Any], tool_context: ToolContext
    ) -> dict[str, Any] | None:
        found = _target(tool_context) if isinstance(tool, AgentTool) else None
        if found is not None:
            service, key = found
            try:
                await service.add_sub_run(
                    **key, run_id=_run_id(tool, tool_context),
                    parent_run_id=tool_context.invocation_id, kind="agent_tool",
                    agent=tool.agent.name,
                )
            except Exception:  # the run tree is bookkeeping: never fail the tool for it
                logger.warning("could not record the AgentTool sub-run", exc_info=True)
        return None

    async def after_tool_callback(
        self, *, tool: BaseTool, tool_args: dict[str, Any], tool_context: ToolContext,
        result: dict[str, Any],
    ) -> dict[str, Any] | None:
        await self._finish(tool, tool_context, "completed", None)
        return None

    async def on_tool_error_callback(
        self, *, tool: BaseTool, tool_args: dict[str, Any], tool_context: ToolContext,
        error: Exception,
    ) -> dict[str, Any] | None:
        await self._finish(tool, tool_context, "failed", f"{type(error).__name__}: {error}")
        return None

    async def _finish(
        self, tool: BaseTool, tool_context: ToolContext, status: str, error: str | None
    ) -> None:
        found = _target(tool_context) if isinstance(tool, AgentTool) else None
        if found is None:
            return
        service, key = found
        try:
            await service.set_run_status(
                **key, run_id=_run_id(tool, tool_context), status=status, error=error
            )
        except Exception:
            logger.warning("could not record the AgentTool sub-run's outcome", exc_info=True)
