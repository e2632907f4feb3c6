"""One function builds the Runner the chat, the demo and the tests all use.

Example:
    >>> runner = build_runner()                       # ./multi_agent_data.db, offline model
    >>> session = await get_or_create_session(runner.session_service, user_id="ann")
    >>> async for event in runner.run_async(user_id="ann", session_id=session.id,
    ...                                     new_message=user_message("Tell me a joke")):
    ...     ...
    >>> await runner.close()                          # also closes the store it opened

Or, closing everything it opened: ``async with open_runner() as runner: ...``.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from google.adk.agents.context_cache_config import ContextCacheConfig
from google.adk.apps.app import App, EventsCompactionConfig
from google.adk.memory.base_memory_service import BaseMemoryService
from google.adk.models.base_llm import BaseLlm
from google.adk.plugins.base_plugin import BasePlugin
from google.adk.runners import Runner
from google.adk.sessions.base_session_service import BaseSessionService
from google.adk.sessions.session import Session
from google.genai import types

__all__ = [
    "APP_NAME",
    "DB_ENV",
    "DEFAULT_DB_URL",
    "TeamRunner",
    "build_runner",
    "close_runner",
    "get_or_create_session",
    "initial_state",
    "new_session_state",
    "open_runner",
    "user_message",
]

APP_NAME = "multi_agent"
DB_ENV = "MULTI_AGENT_DB"
DEFAULT_DB_URL = "sqlite+aiosqlite:///./multi_agent_data.db"



class TeamRunner(Runner):
    """ADK's Runner that also closes the session service :func:`build_runner` opened for it."""

    owns_session_service: bool = False

    async def close(self) -> None:
        """Closes the runner, then the session service if this runner opened it."""
        try:
            await super().close()
        finally:
            if self.owns_session_service:
                self.owns_session_service = False
                close = getattr(self.session_service, "close", None)
                if close is not None:
                    await close()


def default_db_url() -> str:
    """``$MULTI_AGENT_DB`` if set, else ``./multi_agent_data.db``."""
    return os.environ.get(DB_ENV) or DEFAULT_DB_URL


def build_runner(
    *,
    db_url: str | None = None,
    model: str | BaseLlm | None = None,
    session_service: BaseSessionService | None = None,
    memory_service: BaseMemoryService | None = None,
    plugins: Sequence[BasePlugin] = (),
    events_compaction_config: EventsCompactionConfig | None = None,
) -> TeamRunner:
    """Builds ADK's Runner for the agent team (app name ``multi_agent``).

    Args:
        db_url: SQLAlchemy URL of the session store (``sqlite+aiosqlite:///path.db`` or
            ``postgresql+asyncpg://...``); default ``$MULTI_AGENT_DB`` or
            ``./multi_agent_data.db``. Ignored when ``session_service`` is given.
        model: the model every agent runs on: a name (``offline-rules``, ``gemini-2.5-flash``,
            ``ollama_chat/qwen2.5``...) or a ``BaseLlm``; default ``$MULTI_AGENT_MODEL``, else
            the built-in offline model.
        session_service: use this session service instead of opening ``db_url`` (the caller
            keeps ownership and closes it).
        memory_service: an optional ADK memory service, passed to the Runner.
        plugins: ADK plugins for the App (e.g. the memory package's context plugins).
        events_compaction_config: ADK event compaction for the App, if wanted.

    Returns:
        A new :class:`TeamRunner` (an ADK ``Runner``) with a new agent tree. ``await
        runner.close()`` also closes the session service this function opened.

    Raises:
        ModelConfigError: the model cannot be used as configured.
    """
    from manager.agent import build_agent_tree

    from .models import OfflineRulesModel, resolve_model

    chosen = model if isinstance(model, BaseLlm) else resolve_model(model)
    owned = session_service is None
    if session_service is None:
        from .store import DatabaseSessionService

        session_service = DatabaseSessionService(db_url or default_db_url())
    app = App(
        name=APP_NAME,
        root_agent=build_agent_tree(chosen),
        plugins=list(plugins),
        events_compaction_config=events_compaction_config,
        # ADK warns when a multi-agent app has no context cache. The offline model ignores
        # caching (the config is a no-op for it), so declaring one just keeps that advice out
        # of the way; for real models it is left to ADK's defaults.
        context_cache_config=ContextCacheConfig() if isinstance(chosen, OfflineRulesModel)
        else None,
    )
    runner = TeamRunner(app=app, session_service=session_service, memory_service=memory_service)
    runner.owns_session_service = owned
    return runner


async def close_runner(runner: Runner) -> None:
    """Closes ``runner`` (a :class:`TeamRunner` also closes the store it opened)."""
    await runner.close()


@asynccontextmanager
async def open_runner(**kwargs: Any) -> AsyncIterator[Runner]:
    """``async with open_runner(db_url=..., model=...) as runner``; closes on exit."""
    runner = build_runner(**kwargs)
    try:
        yield runner
    finally:
        await close_runner(runner)


def new_session_state(*, user_name: str | None = None) -> dict[str, Any]:
    """The session-scoped state a new session starts with (the seed's layout).

    Only session keys: passing ``user:`` defaults to ``create_session`` would overwrite what
    the user already has stored. Tools treat missing ``user:`` keys as empty. ``user_name``,
    when given, is added as ``user:user_name``.
    """
    from state_tools import default_session_metadata

    state: dict[str, Any] = {
        "conversation_history": [],
        "agent_delegations": [],
        "session_metadata": default_session_metadata(),
    }
    if user_name:
        state["user:user_name"] = user_name
    return state


def initial_state(*, user_name: str | None = None, stored_user_state: dict[str, Any]) -> dict[
    str, Any
]:
    """:func:`new_session_state` plus the ``user:`` keys the user has nothing stored for yet.

    Args:
        user_name: stored as ``user:user_name`` when given.
        stored_user_state: the user's stored state (keys without the ``user:`` prefix).
    """
    from state_tools import default_preferences

    state = new_session_state(user_name=user_name)
    defaults: dict[str, Any] = {
        "user_name": None,
        "preferences": default_preferences(),
        "agent_stats": {},
    }
    for key, value in defaults.items():
        if key not in stored_user_state and f"user:{key}" not in state:
            state[f"user:{key}"] = value
    return state


async def _stored_user_state(
    service: BaseSessionService, *, app_name: str, user_id: str
) -> dict[str, Any]:
    try:
        return dict(await service.get_user_state(app_name=app_name, user_id=user_id))
    except NotImplementedError:
        listed = await service.list_sessions(app_name=app_name, user_id=user_id)
        for session in listed.sessions:
            return {k[5:]: v for k, v in session.state.items() if k.startswith("user:")}
        return {}


async def get_or_create_session(
    service: BaseSessionService,
    *,
    user_id: str,
    session_id: str | None = None,
    user_name: str | None = None,
    app_name: str = APP_NAME,
) -> Session:
    """Returns the session ``session_id`` of ``user_id``, or a new one with the initial state.

    Args:
        service: the session service (``runner.session_service``).
        user_id: the user.
        session_id: an existing session to resume; when it does not exist (or is None) a
            new session is created (with this id, if given).
        user_name: stored as ``user:user_name`` when a session is created.
        app_name: the ADK app name (default ``multi_agent``).
    """
    if session_id:
        found = await service.get_session(
            app_name=app_name, user_id=user_id, session_id=session_id
        )
        if found is not None:
            return found
    stored = await _stored_user_state(service, app_name=app_name, user_id=user_id)
    return await service.create_session(
        app_name=app_name,
        user_id=user_id,
        session_id=session_id,
        state=initial_state(user_name=user_name, stored_user_state=stored),
    )


def user_message(text: str) -> types.Content:
    """A user message for ``Runner.run_async(new_message=...)``."""
    return types.Content(role="user", parts=[types.Part(text=text)])
