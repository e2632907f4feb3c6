"""Store and memory operations are OpenTelemetry spans inside ADK's trace, and DEBUG log lines.

A real ADK Runner turn (the agent team on the offline model, and a plain LlmAgent pair) runs
with an SDK tracer provider and an in-memory exporter; every span of ours must sit in ADK's
invocation trace (same trace id, parents up to ADK's root span: ``invoke_workflow <agent>``
in ADK's default telemetry schema, ``invocation`` in the legacy one), including the part of the
operation that runs in a SQLite worker thread. Attributes carry ids and counts only.

The tracer provider is global and can be set once per process, so the module installs one whose
sampler records only while a test asks for spans (``spans`` fixture); the other tests of the
session see non-recording spans.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from google.adk.events.event import Event
from google.adk.events.event_actions import EventActions
from google.adk.runners import Runner
from google.genai import types
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import Decision, Sampler, SamplingResult
from opentelemetry.trace import StatusCode

from multi_agent import DatabaseSessionService, StaleSession
from multi_agent.memory import DatabaseMemoryService
from multi_agent.store import ops, rowcache
from tests.store.scripted_llm import build_agents

ROOT = Path(__file__).resolve().parents[2]


class _Switch(Sampler):
    """Records while ``on`` (a test collecting spans), drops otherwise."""

    on = False

    def should_sample(self, parent_context: Any, trace_id: int, name: str, kind: Any = None,
                      attributes: Any = None, links: Any = None,
                      trace_state: Any = None) -> SamplingResult:
        decision = Decision.RECORD_AND_SAMPLE if self.on else Decision.DROP
        return SamplingResult(decision, attributes if self.on else None)

    def get_description(self) -> str:
        return "test switch"


_SWITCH = _Switch()
_EXPORTER = InMemorySpanExporter()


def _install() -> None:
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider(sampler=_SWITCH)
        trace.set_tracer_provider(provider)
    if not getattr(provider, "_multi_agent_test_exporter", False):
        provider.add_span_processor(SimpleSpanProcessor(_EXPORTER))
        provider._multi_agent_test_exporter = True  # type: ignore[attr-defined]


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    _install()
    _EXPORTER.clear()
    _SWITCH.on = True
    try:
        yield _EXPORTER
    finally:
        _SWITCH.on = False
        _EXPORTER.clear()


ALLOWED = {
    "db.system.name", "error.type", "multi_agent.app_name", "multi_agent.user_id",
    "multi_agent.session_id", "multi_agent.run_id", "multi_agent.parent_run_id",
    "multi_agent.event_id", "multi_agent.author", "multi_agent.invocation_id",
    "multi_agent.event_count", "multi_agent.state_delta_keys", "multi_agent.session_count",
    "multi_agent.state_keys", "multi_agent.run_count", "multi_agent.rows", "multi_agent.found",
    "multi_agent.search_mode", "multi_agent.run_status", "multi_agent.run_kind",
    "multi_agent.stale_reason", "multi_agent.error_cause",
}
"""Every attribute a span of ours may carry: ids, names and counts, never a value or a text."""


def ours(found: Sequence[ReadableSpan]) -> list[ReadableSpan]:
    return [s for s in found if s.name.startswith("multi_agent.")]


def chain(span: ReadableSpan, by_id: dict[int, ReadableSpan]) -> list[ReadableSpan]:
    """The span's ancestors, nearest first (as far as the exporter saw them)."""
    out = []
    while span.parent is not None and span.parent.span_id in by_id:
        span = by_id[span.parent.span_id]
        out.append(span)
    return out


def is_adk_root(span: ReadableSpan) -> bool:
    return span.name == "invocation" or span.name.startswith("invoke_workflow")


def check_attributes(span: ReadableSpan, *secrets: str) -> None:
    attrs = dict(span.attributes or {})
    assert set(attrs) <= ALLOWED, (span.name, set(attrs) - ALLOWED)
    for value in attrs.values():
        assert isinstance(value, str | int | bool)
        for secret in secrets:
            assert secret not in str(value), (span.name, value)
    assert not span.events  # no exception event: its message may quote a value


def assert_inside_adk_trace(found: Sequence[ReadableSpan], dialect: str) -> list[ReadableSpan]:
    """Every store/memory span of the turn hangs under ADK's root span of that trace."""
    by_id = {s.context.span_id: s for s in found}
    roots = [s for s in found if is_adk_root(s) and s.parent is None]
    assert len(roots) == 1, [s.name for s in found if s.parent is None]
    root = roots[0]
    inside = [s for s in ours(found) if s.context.trace_id == root.context.trace_id]
    appends = [s for s in inside if s.name == "multi_agent.append_event"]
    assert len(appends) >= 3
    for span in inside:
        ancestors = chain(span, by_id)
        assert ancestors and ancestors[-1] is root, (span.name, [a.name for a in ancestors])
        assert span.attributes["db.system.name"] == dialect
    return inside


@pytest.fixture(params=["default", "legacy"])
def adk_schema(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """ADK's telemetry schema: ``invoke_workflow`` root (default) or ``invocation`` (legacy)."""
    if request.param == "legacy":
        monkeypatch.setenv("ADK_TELEMETRY_SCHEMA_VERSION_OPT_IN", "1")
    else:
        monkeypatch.delenv("ADK_TELEMETRY_SCHEMA_VERSION_OPT_IN", raising=False)
    return str(request.param)


def record_worker_spans(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, str]]:
    """(current span id, thread name) seen by ``ops.append_event`` where it runs: in the SQLite
    worker thread, or on the event loop's thread for PostgreSQL."""
    seen: list[tuple[int, str]] = []
    original, original_plan = ops.append_event, rowcache.send_plan

    def spy(conn: Any, backend: Any, req: Any) -> Any:
        seen.append((trace.get_current_span().get_span_context().span_id,
                     threading.current_thread().name))
        return original(conn, backend, req)

    async def spy_plan(conn: Any, driver: Any, plan: Any, cache: Any) -> Any:
        # PostgreSQL's one-statement append, sent on the driver's connection
        seen.append((trace.get_current_span().get_span_context().span_id,
                     threading.current_thread().name))
        return await original_plan(conn, driver, plan, cache)

    monkeypatch.setattr(ops, "append_event", spy)
    monkeypatch.setattr(rowcache, "send_plan", spy_plan)
    return seen


async def test_team_turn_spans_sit_in_adk_trace(
    spans: InMemorySpanExporter, db_url: str, backend: str, adk_schema: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from multi_agent.team.app import APP_NAME, build_runner
    from tests.agents._team import say

    runner = build_runner(db_url=db_url, model="offline-rules")
    try:
        user = "u-" + uuid.uuid4().hex[:6]
        session = await runner.session_service.create_session(app_name=APP_NAME, user_id=user)
        spans.clear()
        seen = record_worker_spans(monkeypatch)
        turn = await say(runner, user, session.id, "Tell me a joke about Python")
        assert turn.replier == "funny_nerd"
        stored = await runner.session_service.get_session(
            app_name=APP_NAME, user_id=user, session_id=session.id
        )
    finally:
        await runner.close()
    dialect = "postgresql" if backend == "postgres" else "sqlite"
    found = spans.get_finished_spans()
    inside = assert_inside_adk_trace(found, dialect)
    names = {s.name for s in inside}
    assert "multi_agent.memory.add_session_to_memory" in names  # the team's memory plugin
    appends = [s for s in inside if s.name == "multi_agent.append_event"]
    assert len(appends) == len(stored.events)  # the user's message and every agent event
    for span in appends:
        assert span.attributes["multi_agent.session_id"] == session.id
        assert span.attributes["multi_agent.user_id"] == user
        assert span.attributes["multi_agent.app_name"] == APP_NAME
        assert span.attributes["multi_agent.event_count"] == 1
    assert {s.attributes["multi_agent.event_id"] for s in appends} == {
        e.id for e in stored.events
    }
    # The transaction ran under the append's own span, in the worker thread on SQLite.
    assert sorted(span_id for span_id, _ in seen) == sorted(s.context.span_id for s in appends)
    threads = {name for _, name in seen}
    if dialect == "sqlite":
        assert all(name.startswith("multi_agent_sqlite") for name in threads), threads
    secrets = ["joke", "Python", turn.reply[:20], "py-05"]  # py-05: the joke's id in state
    secrets += [v for v in _strings(stored.state) if " " in v]  # the texts kept in state
    for span in ours(found):
        check_attributes(span, *secrets)


async def test_llm_agent_turn_spans_sit_in_adk_trace(
    spans: InMemorySpanExporter, store: DatabaseSessionService, backend: str, app_name: str,
    adk_schema: str,
) -> None:
    runner = Runner(app_name=app_name, agent=build_agents(), session_service=store)
    session = await store.create_session(app_name=app_name, user_id="u")
    spans.clear()
    async for _ in runner.run_async(
        user_id="u", session_id=session.id,
        new_message=types.Content(role="user", parts=[types.Part(text="please note this")]),
    ):
        pass
    found = spans.get_finished_spans()
    inside = assert_inside_adk_trace(found, store.dialect)
    authors = [s.attributes["multi_agent.author"] for s in inside
               if s.name == "multi_agent.append_event"]
    assert authors[0] == "user" and {"coordinator", "worker"} <= set(authors)
    for span in ours(found):
        check_attributes(span, "please note this", "never stored")


async def test_worker_thread_sees_the_callers_span(
    spans: InMemorySpanExporter, store: DatabaseSessionService
) -> None:
    """``Backend.run`` hands the caller's context to the SQLite worker thread (PostgreSQL runs
    on the caller's thread anyway)."""
    tracer = trace.get_tracer("test")
    with tracer.start_as_current_span("outer") as outer:
        inner = await store.backend.run(
            lambda conn: (trace.get_current_span().get_span_context(),
                          threading.current_thread().name),
            write=False,
        )
    assert inner[0] == outer.get_span_context()
    if store.dialect == "sqlite":
        assert inner[1].startswith("multi_agent_sqlite")


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def text_event(text: str, *, author: str = "user", delta: dict | None = None) -> Event:
    return Event(
        author=author, invocation_id="inv-1",
        content=types.Content(role="user" if author == "user" else "model",
                              parts=[types.Part(text=text)]),
        actions=EventActions(state_delta=delta or {}),
    )


async def test_every_operation_is_a_span_without_values(
    spans: InMemorySpanExporter, store: DatabaseSessionService, app_name: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="multi_agent.store")
    memory = DatabaseMemoryService(store)
    session = await store.create_session(
        app_name=app_name, user_id="ann", state={"secret_a": "value-one", "user:secret_b": "two2"}
    )
    event = text_event("my secret message text", delta={"secret_c": "value-three"})
    await store.append_event(session, event)
    got = await store.get_session(app_name=app_name, user_id="ann", session_id=session.id)
    await store.list_sessions(app_name=app_name, user_id="ann")
    await store.get_user_state(app_name=app_name, user_id="ann")
    runs = await store.list_runs(app_name=app_name, user_id="ann", session_id=session.id)
    await store.query_messages(app_name=app_name, user_id="ann", session_id=session.id,
                               text="secret")
    doc = await store.export_session(app_name=app_name, user_id="ann", session_id=session.id)
    imported = await store.import_session(doc, session_id="copy")
    await memory.add_session_to_memory(got)
    found = await memory.search_memory(app_name=app_name, user_id="ann", query="secret message")
    await memory.forget_session(app_name=app_name, user_id="ann", session_id=session.id)
    await store.delete_session(app_name=app_name, user_id="ann", session_id="copy")
    assert found.memories and runs and imported.events == 1

    by_name: dict[str, list[ReadableSpan]] = {}
    for span in spans.get_finished_spans():
        by_name.setdefault(span.name, []).append(span)
    for name in ("prepare", "create_session", "append_event", "get_session", "list_sessions",
                 "get_user_state", "list_runs", "query_messages", "export_session",
                 "import_session", "delete_session", "memory.prepare",
                 "memory.add_session_to_memory", "memory.search_memory",
                 "memory.forget_session"):
        assert f"multi_agent.{name}" in by_name, name
    assert len(by_name["multi_agent.prepare"]) == 1  # schema set-up only, not every call
    [append] = by_name["multi_agent.append_event"]
    assert append.attributes["multi_agent.state_delta_keys"] == 1
    assert append.attributes["multi_agent.event_id"] == event.id
    [get] = by_name["multi_agent.get_session"]
    assert get.attributes["multi_agent.event_count"] == 1
    [search] = by_name["multi_agent.memory.search_memory"]
    assert search.attributes["multi_agent.rows"] == len(found.memories)
    assert search.attributes["multi_agent.search_mode"] == "fulltext"
    [imp] = by_name["multi_agent.import_session"]
    assert imp.attributes["multi_agent.session_id"] == "copy"
    assert imp.attributes["multi_agent.event_count"] == 1
    secrets = ("value-one", "two2", "value-three", "secret message", "secret_")
    for span in ours(spans.get_finished_spans()):
        check_attributes(span, *secrets)
        assert span.status.status_code != StatusCode.ERROR

    # One DEBUG line per operation, with its duration; no values, no text.
    lines = [r.getMessage() for r in caplog.records if r.name == "multi_agent.store"]
    assert any(line.startswith("append_event ") and line.endswith(" ms") for line in lines)
    append_lines = [line for line in lines if line.startswith("append_event ")]
    assert len(append_lines) == 1
    assert f"session={session.id}" in append_lines[0] and "app=" in append_lines[0]
    assert f"dialect={store.dialect}" in append_lines[0]
    assert len([line for line in lines if line.startswith("memory.search_memory ")]) == 1
    for line in lines:
        for secret in secrets:
            assert secret not in line, line


async def test_a_failed_operation_is_an_error_span_without_its_message(
    spans: InMemorySpanExporter, store: DatabaseSessionService, app_name: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="multi_agent.store")
    session = await store.create_session(app_name=app_name, user_id="ann")
    stale = await store.get_session(app_name=app_name, user_id="ann", session_id=session.id)
    await store.append_event(session, text_event("first", delta={"k": "v1"}))
    with pytest.raises(StaleSession):
        await store.append_event(stale, text_event("second", delta={"k": "v2"}))
    failed = [s for s in spans.get_finished_spans()
              if s.name == "multi_agent.append_event" and s.status.status_code == StatusCode.ERROR]
    assert len(failed) == 1
    span = failed[0]
    assert span.attributes["error.type"] == "StaleSession"
    assert span.attributes["multi_agent.stale_reason"] == "behind"
    assert span.status.description == "StaleSession"
    check_attributes(span, "v2", "second")
    lines = [r.getMessage() for r in caplog.records if "failed" in r.getMessage()]
    assert len(lines) == 1 and "StaleSession" in lines[0] and "v2" not in lines[0]


def test_without_an_sdk_the_store_makes_no_span(tmp_path: Path) -> None:
    """No tracer provider set (the API's no-op): no tracer is looked up per call, nothing is
    recorded, and a span set by the caller is still what the worker thread sees."""
    script = f"""
import asyncio, json
from opentelemetry import trace
from multi_agent import DatabaseSessionService
from multi_agent.store import tracing

async def main():
    store = DatabaseSessionService("sqlite+aiosqlite:///{tmp_path / 'noop.db'}")
    s = await store.create_session(app_name="a", user_id="u")
    got = await store.get_session(app_name="a", user_id="u", session_id=s.id)
    await store.close()
    return {{"tracer": tracing.current_tracer() is None, "ok": got is not None,
             "provider": type(trace.get_tracer_provider()).__name__}}

print(json.dumps(asyncio.run(main())))
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         cwd=ROOT, timeout=120, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == {
        "tracer": True, "ok": True, "provider": "ProxyTracerProvider"
    }
