"""One function builds the Runner the chat, the demo and the tests all use.

Example:
    >>> runner = build_runner()                       # ./multi_agent_data.db, offline model
    >>> session = await get_or_create_session(runner.session_service, user_id="ann")
    >>> async for event in runner.run_async(user_id="ann", session_id=session.id,
    ...                                     new_message=user_message("Tell me a joke")):
    ...     ...
    >>> await runner.close()                          # also closes the store it opened

Or, closing everything it opened: ``async with open_runner() as runner: ...``.

By default the Runner has long memory and a bounded context (issue 7):

* **memory**: a :class:`~multi_agent.memory.DatabaseMemoryService` on the session store's own
  database; :class:`~multi_agent.memory.RememberTurnsPlugin` adds each turn to it after the run,
  and the historian recalls earlier sessions with ADK's ``load_memory`` tool.
* **bounded context**: every ``run_async`` loads only the last ``window`` events (ADK's
  ``RunConfig.get_session_config``, filled in by :meth:`TeamRunner.run_async` when the caller
  sets none), ADK's events compaction summarises older turns with an extractive summariser that
  needs no LLM, and :class:`~multi_agent.memory.BoundedContextPlugin` keeps the window from
  separating a tool call from its result or starting inside a delegation.

``build_runner(memory=False)`` and ``build_runner(window=None)`` turn either off (``window=None``
is ADK's default: every turn loads the whole session).
"""

from __future__ import annotations

import os
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from contextlib import aclosing, asynccontextmanager
from typing import TYPE_CHECKING, Any

from google.adk.agents.context_cache_config import ContextCacheConfig
from google.adk.agents.run_config import RunConfig
from google.adk.apps.app import App, EventsCompactionConfig
from google.adk.events.event import Event
from google.adk.memory.base_memory_service import BaseMemoryService
from google.adk.memory.in_memory_memory_service import InMemoryMemoryService
from google.adk.models.base_llm import BaseLlm
from google.adk.plugins.base_plugin import BasePlugin
from google.adk.runners import Runner
from google.adk.sessions.base_session_service import BaseSessionService
from google.adk.sessions.session import Session
from google.genai import types

from ..defaults import APP_NAME, DEFAULT_DB_URL
from ..memory.context import DEFAULT_WINDOW_EVENTS

if TYPE_CHECKING:
    from ..memory import BoundedContext

__all__ = [
    "APP_NAME",
    "DB_ENV",
    "DEFAULT_DB_URL",
    "DEFAULT_WINDOW_EVENTS",
    "TeamRunner",
    "build_app",
    "build_runner",
    "close_runner",
    "get_or_create_session",
    "initial_state",
    "new_session_state",
    "open_runner",
    "user_message",
]

DB_ENV = "MULTI_AGENT_DB"


class TeamRunner(Runner):
    """ADK's Runner with the team's defaults.

    * ``run_async`` (and so ``run``) loads only the bounded window of recent events when the
      caller's ``RunConfig`` says nothing about it (``bounded_context`` is set);
    * ``close`` also closes the memory and session services :func:`build_runner` opened.
    """

    owns_session_service: bool = False
    owns_memory_service: bool = False
    bounded_context: BoundedContext | None = None

    def effective_run_config(self, run_config: RunConfig | None) -> RunConfig | None:
        """``run_config`` with the bounded window filled in when it sets no session config."""
        ctx = self.bounded_context
        if ctx is None or (run_config is not None and run_config.get_session_config):
            return run_config
        return ctx.run_config(base=run_config)

    async def run_async(
        self, *, run_config: RunConfig | None = None, **kwargs: Any
    ) -> AsyncGenerator[Event, None]:
        """ADK's ``Runner.run_async`` with :meth:`effective_run_config` (same arguments)."""
        async with aclosing(
            super().run_async(run_config=self.effective_run_config(run_config), **kwargs)
        ) as events:
            async for event in events:
                yield event

    async def close(self) -> None:
        """Closes the runner, then the memory and session services this runner opened."""
        try:
            await super().close()
        finally:
            try:
                await self._close_owned("memory_service")
            finally:
                await self._close_owned("session_service")

    async def _close_owned(self, name: str) -> None:
        """Closes ``self.<name>`` once, if this runner opened it."""
        owns = f"owns_{name}"
        if getattr(self, owns):
            setattr(self, owns, False)
            close = getattr(getattr(self, name), "close", None)
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
    memory: bool = True,
    memory_search: str | None = None,
    window: int | None = DEFAULT_WINDOW_EVENTS,
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
        memory_service: the memory service to use (the caller keeps ownership). By default a
            ``DatabaseMemoryService`` on the session store is opened (ADK's
            ``InMemoryMemoryService`` when the session service is not this project's store).
        memory: False for no long memory at all (also what an encrypted store gets, whose
            memory the store refuses): no memory service, no ``load_memory`` tool
            for the historian, nothing added to memory after a turn.
        memory_search: how the default memory service searches: ``fulltext``, ``semantic``
            or ``hybrid`` (the last two need the ``[semantic]`` extra); default
            ``$MULTI_AGENT_MEMORY_SEARCH``, else ``fulltext``.
        window: how many recent events a turn loads (and the bounded-context plugin trims);
            ``None`` for ADK's default of loading the whole session on every turn, without
            compaction or the plugin.
        plugins: more ADK plugins for the App (after the team's own).
        events_compaction_config: ADK event compaction for the App; default the bounded
            context's (extractive summariser) when ``window`` is set, else none.

    Returns:
        A new :class:`TeamRunner` (an ADK ``Runner``) with a new agent tree. ``await
        runner.close()`` also closes the services this function opened.

    Raises:
        ModelConfigError: the model cannot be used as configured.
        ValueError: ``memory=False`` with a ``memory_service``, ``window`` below 2, or an
            unknown ``memory_search``.
    """
    from ..memory import BoundedContext, DatabaseMemoryService
    from ..models import resolve_model
    from ..store import DatabaseSessionService

    if not memory and memory_service is not None:
        raise ValueError("memory=False contradicts the memory_service given.")
    ctx = BoundedContext(window_events=window) if window is not None else None
    if ctx is not None:
        ctx.run_config()  # validates the window now (ValueError below 2)
    chosen = model if isinstance(model, BaseLlm) else resolve_model(model)
    owned = session_service is None
    if session_service is None:
        session_service = DatabaseSessionService(db_url or default_db_url())
    owns_memory = False
    if memory and memory_service is None and getattr(session_service, "encrypted", False):
        # The memory's index would be a clear-text copy of a sealed conversation, so the
        # store refuses it (docs/encryption.md): no long memory on an encrypted store.
        memory = False
    if memory and memory_service is None:
        memory_service = (
            DatabaseMemoryService(session_service, search=memory_search)  # type: ignore[arg-type]
            if isinstance(session_service, DatabaseSessionService)
            else InMemoryMemoryService()
        )
        owns_memory = True
    app = build_app(
        chosen, memory=memory, context=ctx, session_service=session_service,
        plugins=plugins, events_compaction_config=events_compaction_config,
    )
    runner = TeamRunner(app=app, session_service=session_service, memory_service=memory_service)
    runner.owns_session_service = owned
    runner.owns_memory_service = owns_memory
    runner.bounded_context = ctx
    return runner


def build_app(
    model: str | BaseLlm | None = None,
    *,
    memory: bool = True,
    context: Any = "default",
    session_service: BaseSessionService | None = None,
    plugins: Sequence[BasePlugin] = (),
    events_compaction_config: EventsCompactionConfig | None = None,
) -> App:
    """The team as an ADK ``App`` (agents, plugins, compaction), without a Runner.

    ``build_runner`` uses it; so does ``multi_agent/agent.py`` for ``adk web``/``api_server``,
    where ADK makes the Runner and the services from its command line.

    Args:
        model: a model name or ``BaseLlm`` (default as in :func:`build_runner`).
        memory: give the historian ``load_memory`` and add each session to memory after a run.
        context: a ``BoundedContext``, ``None`` for none, or ``"default"`` for the default one.
        session_service: the store, for the bounded-context plugin's summary look-ups (it
            falls back to the invocation's session service when ``None``).
        plugins: more ADK plugins (after the team's own).
        events_compaction_config: ADK event compaction; default the bounded context's.
    """
    from multi_agent.team.manager.team import build_agent_tree

    from ..memory import BoundedContext, RememberTurnsPlugin
    from ..models import OfflineRulesModel, resolve_model

    chosen = model if isinstance(model, BaseLlm) else resolve_model(model)
    ctx = BoundedContext() if context == "default" else context
    from ..store import RunTreePlugin

    team_plugins: list[BasePlugin] = [RunTreePlugin()]  # AgentTool calls as sub-runs
    if ctx is not None:
        team_plugins.append(ctx.plugin(session_service))
    if memory:
        team_plugins.append(RememberTurnsPlugin())
    if events_compaction_config is None and ctx is not None:
        events_compaction_config = ctx.compaction_config()
    return App(
        name=APP_NAME,
        root_agent=build_agent_tree(chosen, memory=memory),
        plugins=[*team_plugins, *plugins],
        events_compaction_config=events_compaction_config,
        # ADK warns when a multi-agent app has no context cache. The offline model ignores
        # caching (the config is a no-op for it), so declaring one just keeps that advice out
        # of the way; for real models it is left to ADK's defaults.
        context_cache_config=ContextCacheConfig() if isinstance(chosen, OfflineRulesModel)
        else None,
    )


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
    from multi_agent.team.state_tools.tools import default_session_metadata

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
    """:func:`new_session_state`: the state ``get_or_create_session`` creates a session with.

    No ``user:`` defaults: writing them at creation would be a blind overwrite of whatever
    another session of the user stored between reading the user's state and creating this
    session (a lost update). Tools treat missing ``user:`` keys as empty.

    Args:
        user_name: stored as ``user:user_name`` when given (the caller says so).
        stored_user_state: the user's stored state (keys without the ``user:`` prefix); kept
            for callers of the old signature, no longer needed.
    """
    del stored_user_state
    return new_session_state(user_name=user_name)


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
    return await service.create_session(
        app_name=app_name,
        user_id=user_id,
        session_id=session_id,
        state=new_session_state(user_name=user_name),
    )


def user_message(text: str) -> types.Content:
    """A user message for ``Runner.run_async(new_message=...)``."""
    return types.Content(role="user", parts=[types.Part(text=text)])
