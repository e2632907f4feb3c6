"""OpenTelemetry spans and DEBUG log lines for every store and memory operation.

Each public operation of ``DatabaseSessionService`` and ``DatabaseMemoryService`` is one span,
``multi_agent.<operation>`` (``multi_agent.append_event``, ``multi_agent.memory.search_memory``),
started under the current span: inside an ADK ``Runner`` turn that is ADK's own
(``invocation`` > ``invoke_agent`` > ...), so the store's work shows in the same trace as the
agents, model and tool calls. On SQLite the transaction runs in a worker thread, which gets a
copy of the caller's ``contextvars`` context (``Backend.run``), so anything traced there
(SQLAlchemy or sqlite3 instrumentation, log correlation) stays inside the operation's span.

Attributes are identifiers and counts only, never state values or message text:
``db.system.name`` (``sqlite`` / ``postgresql``), ``multi_agent.app_name``, ``multi_agent.user_id``,
``multi_agent.session_id`` (and ``run_id``, ``event_id``, ``author``, ``invocation_id`` where the
operation has one), and counts of what it read or wrote (``multi_agent.event_count``,
``multi_agent.rows``, ...). A failure sets the span's status to ERROR with the exception's class
name (``error.type``), not its message (which may quote a value); ``StaleSession`` adds its
``reason``, ``DatabaseUnavailableError`` its ``cause``.

The only dependency is the OpenTelemetry API (which ADK brings). Without a configured SDK, the
API's no-op tracer is in place and an operation costs one check of the global tracer provider
(no span object, no context switch). Spans are recorded once an SDK ``TracerProvider`` is set,
e.g. by ``adk web`` / ``adk api_server`` with ``OTEL_EXPORTER_OTLP_ENDPOINT``, or by the
application (``trace.set_tracer_provider(...)``).

Logging: with the logger ``multi_agent.store`` at DEBUG, each operation logs one line with its
identifiers, counts, dialect and duration (``append_event app=a user=u session=s ... 0.61 ms``).
"""

from __future__ import annotations

import functools
import logging
import os
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Status, StatusCode

from .. import __version__ as _VERSION

__all__ = ["TRACER_NAME", "logger", "traced"]

TRACER_NAME = "multi_agent"

logger = logging.getLogger("multi_agent.store")

F = TypeVar("F", bound=Callable[..., Awaitable[Any]])
Attributes = dict[str, Any]

_ID_ATTRIBUTES = (
    ("app_name", "multi_agent.app_name"),
    ("user_id", "multi_agent.user_id"),
    ("session_id", "multi_agent.session_id"),
    ("run_id", "multi_agent.run_id"),
    ("from_run_id", "multi_agent.run_id"),
    ("parent_run_id", "multi_agent.parent_run_id"),
)

_LOG_NAMES = {
    "multi_agent.app_name": "app",
    "multi_agent.user_id": "user",
    "multi_agent.session_id": "session",
    "db.system.name": "dialect",
}


_ENV_PROVIDER = "OTEL_PYTHON_TRACER_PROVIDER" in os.environ
_UNSET = object()
_cache: tuple[object, trace.Tracer | None] = (_UNSET, None)


def current_tracer() -> trace.Tracer | None:
    """The tracer of the global tracer provider, or ``None`` while it is the API's no-op.

    ``trace.get_tracer_provider()`` reads ``os.environ`` on every call (~2 µs); the global it
    returns is read directly instead, and the tracer is cached per provider.
    """
    global _cache
    provider = getattr(trace, "_TRACER_PROVIDER", _UNSET)
    if provider is None:  # nothing set: the API's no-op, unless the environment names one
        if not _ENV_PROVIDER:
            return None
        provider = trace.get_tracer_provider()
    elif provider is _UNSET:  # an API version without that global: ask the public way
        provider = trace.get_tracer_provider()
    cached_provider, tracer = _cache
    if provider is cached_provider:
        return tracer
    if isinstance(provider, trace.ProxyTracerProvider | trace.NoOpTracerProvider):
        tracer = None
    else:
        tracer = provider.get_tracer(TRACER_NAME, _VERSION)  # type: ignore[union-attr]
        if isinstance(tracer, trace.NoOpTracer):  # e.g. the SDK with OTEL_SDK_DISABLED
            tracer = None
    _cache = (provider, tracer)
    return tracer


def _call_attributes(
    service: Any, args: tuple[Any, ...], kwargs: dict[str, Any],
    extra: Callable[..., Attributes] | None,
) -> Attributes:
    backend = getattr(service, "_backend", None)
    attrs: Attributes = {"db.system.name": getattr(backend, "dialect", "unknown")}
    for key, name in _ID_ATTRIBUTES:
        value = kwargs.get(key)
        if isinstance(value, str):
            attrs[name] = value
    if extra is not None:
        try:
            attrs.update(extra(service, *args, **kwargs))
        except Exception:  # a malformed call: the operation itself will say what is wrong
            pass
    return attrs


def _error_attributes(exc: BaseException) -> Attributes:
    attrs: Attributes = {"error.type": type(exc).__name__}
    reason = getattr(exc, "reason", None)  # StaleSession
    if isinstance(reason, str):
        attrs["multi_agent.stale_reason"] = reason
    cause = getattr(exc, "cause", None)  # DatabaseUnavailableError
    if isinstance(cause, str):
        attrs["multi_agent.error_cause"] = cause
    return attrs


def _log_line(op: str, attrs: Attributes, seconds: float, error: str | None) -> str:
    parts = [op]
    for name, value in attrs.items():
        if name == "error.type":
            continue
        short = _LOG_NAMES.get(name) or name.rsplit(".", 1)[-1]
        parts.append(f"{short}={value}")
    parts.append(f"{seconds * 1000:.2f} ms")
    if error is not None:
        parts.append(f"failed: {error}")
    return " ".join(parts)


def traced(
    op: str,
    *,
    call: Callable[..., Attributes] | None = None,
    result: Callable[[Any], Attributes] | None = None,
    unless: Callable[[Any], bool] | None = None,
) -> Callable[[F], F]:
    """Makes an async service method a span ``multi_agent.<op>`` and a DEBUG log line.

    Args:
        op: the operation's name (``append_event``, ``memory.search_memory``).
        call: more attributes from the call: ``call(self, *args, **kwargs)``, e.g. counts.
        result: more attributes from its return value.
        unless: ``unless(self)`` true: no span and no line (``prepare`` once it is done).
    """
    name = f"multi_agent.{op}"

    def decorate(fn: F) -> F:
        @functools.wraps(fn)
        async def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
            tracer = current_tracer()
            log = logger.isEnabledFor(logging.DEBUG)
            if (tracer is None and not log) or (unless is not None and unless(self)):
                return await fn(self, *args, **kwargs)
            attrs = _call_attributes(self, args, kwargs, call)
            span = tracer.start_span(name, attributes=attrs) if tracer is not None else None
            token = (
                otel_context.attach(trace.set_span_in_context(span)) if span is not None
                else None
            )
            started = time.perf_counter()
            try:
                value = await fn(self, *args, **kwargs)
            except BaseException as exc:
                failed = _error_attributes(exc)
                if span is not None:
                    span.set_attributes(failed)
                    span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
                if log:
                    attrs.update(failed)
                    logger.debug(_log_line(op, attrs, time.perf_counter() - started,
                                           type(exc).__name__))
                raise
            else:
                if result is not None:
                    try:
                        produced = result(value)
                    except Exception:
                        produced = {}
                    if span is not None:
                        span.set_attributes(produced)
                    attrs.update(produced)
                if log:
                    logger.debug(_log_line(op, attrs, time.perf_counter() - started, None))
                return value
            finally:
                if token is not None:
                    otel_context.detach(token)
                if span is not None:
                    span.end()

        return wrapper  # type: ignore[return-value]

    return decorate


# -- attribute helpers for the services' decorators --------------------------------------------


def session_attributes(_service: Any, session: Any, *_: Any, **__: Any) -> Attributes:
    """The ids of a ``Session`` given as the first argument, and how many events it holds."""
    return {
        "multi_agent.app_name": session.app_name,
        "multi_agent.user_id": session.user_id,
        "multi_agent.session_id": session.id,
        "multi_agent.event_count": len(session.events),
    }


def append_attributes(_service: Any, session: Any, event: Any, *_: Any, **__: Any) -> Attributes:
    """``append_event(session, event)``: the ids, the event's and how many state keys it writes."""
    attrs = session_attributes(_service, session)
    actions = getattr(event, "actions", None)
    delta = getattr(actions, "state_delta", None) or {}
    attrs.update({
        "multi_agent.event_id": event.id or "",
        "multi_agent.author": event.author or "",
        "multi_agent.invocation_id": event.invocation_id or "",
        "multi_agent.event_count": 0 if event.partial else 1,
        "multi_agent.state_delta_keys": len(delta),
    })
    return attrs


def count(name: str, of: Callable[[Any], Any] = lambda value: value) -> Callable[[Any], Attributes]:
    """A ``result`` helper: ``{"multi_agent.<name>": len(of(value))}`` (an int as it is)."""
    key = f"multi_agent.{name}"

    def attributes(value: Any) -> Attributes:
        if value is None:
            return {"multi_agent.found": False}
        got = of(value)
        return {key: got if isinstance(got, int) else len(got)}

    return attributes


def import_attributes(result: Any) -> Attributes:
    """``import_session``'s ``ImportResult``: where the session landed and what it held."""
    return {
        "multi_agent.app_name": result.app_name,
        "multi_agent.user_id": result.user_id,
        "multi_agent.session_id": result.session_id,
        "multi_agent.run_count": result.runs,
        "multi_agent.event_count": result.events,
    }
