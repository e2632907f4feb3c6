# ADK's own Runner-level unit tests, run with multi_agent.DatabaseSessionService as the
# Runner's session service (instead of ADK's InMemorySessionService).
#
# Copied from google/adk-python (Apache-2.0), as stored in the public code index:
#   tests/unittests/runners/test_runner_rewind.py
#       @ 64a8f5a4c04dd66d22fbaeb370ac34edc6cb42ad
#   tests/unittests/runners/test_runner_state_delta.py
#       @ 67ddd5a51b626d23fef64ae63d3c80c76165ed78
#   tests/unittests/runners/test_persisted_event_counts.py
#       @ ec619511118af515d60c088fe87086971a66286c
#   tests/unittests/runners/test_runner_edit_message.py
#       @ 811201351bfbe959d7b6ac2c9a9f14e854254f61
#   tests/unittests/runners/test_issue_5282.py
#       @ 073da993dfe0afcd5fd427095e2bd305813d14b2
#   tests/unittests/runners/test_resume_invocation.py
#       @ 81355cc2d50bb40de2676efe18d68df35ca278e3
#   tests/unittests/runners/test_pause_invocation.py
#       @ 81355cc2d50bb40de2676efe18d68df35ca278e3
#   helpers from tests/unittests/testing_utils.py (MockModel, InMemoryRunner,
#       simplify_*; the index's 2.x version, file id 55874875355; not in the wheel)
#
# Adaptations: every `InMemorySessionService()` is replaced by the `session_service` fixture
# below: ours over tests/conftest.py's `db_url` backends (sqlite_file, sqlite_memory,
# postgres). MULTI_AGENT_ADK_SUITE_REFERENCE=1 runs the same tests on ADK's
# InMemorySessionService instead (then the deviation xfails are off), to show the copies pass
# on ADK's own. testing_utils.InMemoryRunner creates its session with
# `create_session_sync`/`get_session_sync` (InMemorySessionService only): here `_TestRunner`
# creates it with the async `create_session` instead. ADK's assertions are verbatim except where a comment says otherwise; class
# `setup_method`s became fixtures. Deviations README.md documents are xfail(strict=True).

from __future__ import annotations

import asyncio
import copy
from dataclasses import dataclass
import os
from typing import Any
from typing import AsyncGenerator
from typing import Optional
from typing import Union

from google.adk import Workflow
from google.adk.agents.base_agent import BaseAgent
from google.adk.agents.invocation_context import InvocationContext
from google.adk.apps.app import App
from google.adk.apps.app import ResumabilityConfig
from google.adk.memory.in_memory_memory_service import InMemoryMemoryService
from google.adk.models.base_llm import BaseLlm
from google.adk.models.llm_request import LlmRequest
from google.adk.models.llm_response import LlmResponse
from google.adk.plugins.base_plugin import BasePlugin
from google.adk.tools.long_running_tool import LongRunningFunctionTool
from google.genai.types import FunctionResponse
from google.genai.types import Part
from google.adk.agents.callback_context import CallbackContext
from google.adk.agents.context import Context
from google.adk.agents.llm_agent import LlmAgent
from google.adk.agents.loop_agent import LoopAgent
from google.adk.agents.loop_agent import LoopAgentState
from google.adk.agents.parallel_agent import ParallelAgent
from google.adk.agents.sequential_agent import SequentialAgent
from google.adk.agents.sequential_agent import SequentialAgentState
from google.adk.tools.exit_loop_tool import exit_loop
from google.adk.tools.function_tool import FunctionTool
from google.adk.artifacts.base_artifact_service import ensure_part
from google.adk.artifacts.in_memory_artifact_service import InMemoryArtifactService
from google.adk.events.event import Event
from google.adk.events.event import EventActions
from google.adk.runners import Runner
from google.adk.sessions.in_memory_session_service import InMemorySessionService
from google.adk.workflow._base_node import BaseNode
from google.genai import types
import pytest

from multi_agent import DatabaseSessionService

REFERENCE = os.environ.get('MULTI_AGENT_ADK_SUITE_REFERENCE') == '1'


# The stored copy of test_resume_invocation.py asserts a newer ADK's event sequence: its
# first assertion fails on ADK 2.13's own InMemorySessionService exactly as on ours (same
# line, same diff): it tests nothing of a store on 2.13, so it is not run (kept for the ADK
# that matches it; the scenario runs on both stores in test_scenario_matches_in_memory).
_NEWER_THAN_213 = pytest.mark.skip(
    reason="stored test is newer than ADK 2.13: fails identically on InMemorySessionService",
)


# The stored test_runner_rewind.py has ADK's later fix of google/adk-python #4839/#4933 (a
# rewind keeps the state given to create_session); ADK 2.13 itself lacks it, so on 2.13's
# InMemorySessionService these fail. README's ADK table ("Runner.rewind_async") documents
# that our store computes the rewind's delta from storage and so keeps that state: they pass
# on ours.
_REWIND_FIX_NOT_IN_213 = pytest.mark.xfail(
    REFERENCE,
    strict=True,
    raises=AssertionError,
    reason="README (Runner.rewind_async): ADK 2.13 wipes create_session state on rewind"
    " (#4839, #4933); the stored test has ADK's later fix; our store keeps that state",
)


def deviation(reason: str):
  """A behaviour README.md documents as deliberately different from ADK."""
  return pytest.mark.xfail(not REFERENCE, strict=True, reason=reason)


@pytest.fixture
async def session_service(db_url):
  if REFERENCE:
    yield InMemorySessionService()
    return
  service = DatabaseSessionService(db_url)
  yield service
  await service.close()


# ---------------------------------------------------------------------------
# tests/unittests/testing_utils.py (the parts used below)
# ---------------------------------------------------------------------------


class _Utils:
  """Namespace standing in for ADK's `testing_utils` module."""

  END_OF_AGENT = 'end_of_agent'

  class UserContent(types.Content):

    def __init__(self, text_or_part):
      parts = [
          types.Part.from_text(text=text_or_part)
          if isinstance(text_or_part, str)
          else text_or_part
      ]
      super().__init__(role='user', parts=parts)

  class ModelContent(types.Content):

    def __init__(self, parts: list[types.Part]):
      super().__init__(role='model', parts=parts)

  @staticmethod
  def simplify_content(content):
    content = copy.deepcopy(content)
    for part in content.parts:
      if part.function_call and part.function_call.id:
        part.function_call.id = None
      if part.function_response and part.function_response.id:
        part.function_response.id = None
    if len(content.parts) == 1:
      if content.parts[0].text:
        return content.parts[0].text.strip()
      else:
        return content.parts[0]
    return content.parts

  @classmethod
  def simplify_events(cls, events):
    return [
        (event.author, cls.simplify_content(event.content))
        for event in events
        if event.content
    ]

  @classmethod
  def simplify_resumable_app_events(cls, events):
    results = []
    for event in events:
      if event.content:
        results.append((event.author, cls.simplify_content(event.content)))
      elif event.actions.end_of_agent:
        results.append((event.author, cls.END_OF_AGENT))
      elif event.actions.agent_state is not None:
        agent_state = event.actions.agent_state
        if isinstance(agent_state, dict):
          nodes = agent_state.get('nodes', {})
          agent_state = {
              'node_states': {
                  node_name: node_state.get('status')
                  for node_name, node_state in nodes.items()
              }
          }
        results.append((event.author, agent_state))
    return results


def _get_user_content(message):
  return (
      message
      if isinstance(message, types.Content)
      else _Utils.UserContent(message)
  )


class _MockModel(BaseLlm):
  model: str = 'mock'

  requests: list[LlmRequest] = []
  responses: list[LlmResponse]
  error: Exception | None = None
  response_index: int = -1

  @classmethod
  def create(cls, responses, error: Exception | None = None):
    if error and not responses:
      return cls(responses=[], error=error)
    if not responses:
      return cls(responses=[])
    elif isinstance(responses[0], LlmResponse):
      return cls(responses=responses)
    else:
      responses = [
          LlmResponse(content=_Utils.ModelContent(item))
          if isinstance(item, list) and isinstance(item[0], types.Part)
          else LlmResponse(
              content=_Utils.ModelContent(
                  [Part(text=item) if isinstance(item, str) else item]
              )
          )
          for item in responses
          if item
      ]
      return cls(responses=responses)

  @classmethod
  def supported_models(cls) -> list[str]:
    return ['mock']

  async def generate_content_async(
      self, llm_request: LlmRequest, stream: bool = False
  ) -> AsyncGenerator[LlmResponse, None]:
    if self.error is not None:
      raise self.error
    self.response_index += 1
    self.requests.append(llm_request)
    yield self.responses[self.response_index]


class _TestRunner:
  """testing_utils.InMemoryRunner, with a given session service.

  Adaptation: the session is created with the async `create_session` (ADK's helper uses
  InMemorySessionService's `create_session_sync`/`get_session_sync`).
  """

  def __init__(self, session_service, root_agent=None, plugins=(), app=None):
    self._app = app
    if not app:
      self.app_name = 'test_app'
      self.root_agent = root_agent
      self.runner = Runner(
          app_name='test_app',
          agent=root_agent,
          artifact_service=InMemoryArtifactService(),
          session_service=session_service,
          memory_service=InMemoryMemoryService(),
          plugins=list(plugins),
      )
    else:
      self.app_name = app.name
      self.root_agent = app.root_agent
      self.runner = Runner(
          app=app,
          artifact_service=InMemoryArtifactService(),
          session_service=session_service,
          memory_service=InMemoryMemoryService(),
      )
    self.session_id = None

  async def _session_id(self) -> str:
    if not self.session_id:
      session = await self.runner.session_service.create_session(
          app_name=self.app_name, user_id='test_user'
      )
      self.session_id = session.id
    return self.session_id

  def run(self, new_message) -> list[Event]:
    """ADK's sync `Runner.run` (its own thread and event loop), as testing_utils does.

    Adaptation: the session is created with `asyncio.run(create_session(...))` first, on a
    loop of its own, so the service is used from three event loops (fixture, this, Runner's).
    """
    if not self.session_id:
      session = asyncio.run(
          self.runner.session_service.create_session(
              app_name=self.app_name, user_id='test_user'
          )
      )
      self.session_id = session.id
    return list(
        self.runner.run(
            user_id='test_user',
            session_id=self.session_id,
            new_message=_get_user_content(new_message),
        )
    )

  @property
  def is_resumable(self) -> bool:
    if self._app:
      cfg = getattr(self._app, 'resumability_config', None)
      return cfg is not None and cfg.is_resumable
    return False

  async def run_async(self, new_message=None, invocation_id=None):
    if invocation_id and not self.is_resumable:
      invocation_id = None
    session_id = await self._session_id()
    events = []
    async for event in self.runner.run_async(
        user_id='test_user',
        session_id=session_id,
        invocation_id=invocation_id,
        new_message=_get_user_content(new_message) if new_message else None,
    ):
      events.append(event)
    return events


testing_utils = _Utils
testing_utils.MockModel = _MockModel


@pytest.fixture
def in_memory_runner(session_service):
  """`testing_utils.InMemoryRunner(...)` over the session service under test."""

  def make(root_agent=None, plugins=(), app=None):
    return _TestRunner(session_service, root_agent=root_agent, plugins=plugins, app=app)

  return make


# ---------------------------------------------------------------------------
# tests/unittests/runners/test_runner_rewind.py
# ---------------------------------------------------------------------------


class _NoFileDataArtifactService(InMemoryArtifactService):
  """Artifact service that rejects file_data parts, like GCS/File services."""

  async def save_artifact(
      self,
      *,
      app_name: str,
      user_id: str,
      filename: str,
      artifact: Union[types.Part, dict[str, Any]],
      session_id: Optional[str] = None,
      custom_metadata: Optional[dict[str, Any]] = None,
  ) -> int:
    artifact = ensure_part(artifact)
    if artifact.file_data:
      raise NotImplementedError(
          "Saving artifact with file_data is not supported."
      )
    return await super().save_artifact(
        app_name=app_name,
        user_id=user_id,
        filename=filename,
        artifact=artifact,
        session_id=session_id,
        custom_metadata=custom_metadata,
    )


class TestRunnerRewind:
  """Tests for runner.rewind_async."""

  runner: Runner

  @pytest.fixture(autouse=True)
  def _setup(self, session_service):
    """Set up test fixtures (ADK: setup_method)."""
    root_agent = BaseAgent(name="test_agent")
    artifact_service = InMemoryArtifactService()
    self.runner = Runner(
        app_name="test_app",
        agent=root_agent,
        session_service=session_service,
        artifact_service=artifact_service,
    )

  @pytest.mark.asyncio
  async def test_rewind_async_with_state_and_artifacts(self):
    """Tests rewind_async rewinds state and artifacts."""
    runner = self.runner
    user_id = "test_user"
    session_id = "test_session"

    # 1. Setup session and initial artifacts
    session = await runner.session_service.create_session(
        app_name=runner.app_name, user_id=user_id, session_id=session_id
    )

    # invocation1
    await runner.artifact_service.save_artifact(
        app_name=runner.app_name,
        user_id=user_id,
        session_id=session_id,
        filename="f1",
        artifact=types.Part.from_text(text="f1v0"),
    )
    event1 = Event(
        invocation_id="invocation1",
        author="agent",
        content=types.Content(parts=[types.Part.from_text(text="event1")]),
        actions=EventActions(
            state_delta={"k1": "v1"}, artifact_delta={"f1": 0}
        ),
    )
    await runner.session_service.append_event(session=session, event=event1)

    # invocation2
    await runner.artifact_service.save_artifact(
        app_name=runner.app_name,
        user_id=user_id,
        session_id=session_id,
        filename="f1",
        artifact=types.Part.from_text(text="f1v1"),
    )
    await runner.artifact_service.save_artifact(
        app_name=runner.app_name,
        user_id=user_id,
        session_id=session_id,
        filename="f2",
        artifact=types.Part.from_text(text="f2v0"),
    )
    event2 = Event(
        invocation_id="invocation2",
        author="agent",
        content=types.Content(parts=[types.Part.from_text(text="event2")]),
        actions=EventActions(
            state_delta={"k1": "v2", "k2": "v2"},
            artifact_delta={"f1": 1, "f2": 0},
        ),
    )
    await runner.session_service.append_event(session=session, event=event2)

    # invocation3
    event3 = Event(
        invocation_id="invocation3",
        author="agent",
        content=types.Content(parts=[types.Part.from_text(text="event3")]),
        actions=EventActions(state_delta={"k2": "v3"}),
    )
    await runner.session_service.append_event(session=session, event=event3)

    session = await runner.session_service.get_session(
        app_name=runner.app_name, user_id=user_id, session_id=session_id
    )
    assert session.state == {"k1": "v2", "k2": "v3"}
    assert await runner.artifact_service.load_artifact(
        app_name=runner.app_name,
        user_id=user_id,
        session_id=session_id,
        filename="f1",
    ) == types.Part.from_text(text="f1v1")
    assert await runner.artifact_service.load_artifact(
        app_name=runner.app_name,
        user_id=user_id,
        session_id=session_id,
        filename="f2",
    ) == types.Part.from_text(text="f2v0")

    # 2. Rewind before invocation2
    await runner.rewind_async(
        user_id=user_id,
        session_id=session_id,
        rewind_before_invocation_id="invocation2",
    )

    # 3. Verify state and artifacts are rewound
    session = await runner.session_service.get_session(
        app_name=runner.app_name, user_id=user_id, session_id=session_id
    )
    # After rewind before invocation2, only event1 state delta should apply.
    assert session.state["k1"] == "v1"
    assert not session.state["k2"]
    # f1 should be rewound to v0
    assert await runner.artifact_service.load_artifact(
        app_name=runner.app_name,
        user_id=user_id,
        session_id=session_id,
        filename="f1",
    ) == types.Part.from_text(text="f1v0")
    # f2 should not exist
    assert (
        await runner.artifact_service.load_artifact(
            app_name=runner.app_name,
            user_id=user_id,
            session_id=session_id,
            filename="f2",
        )
        is None
    )

  @pytest.mark.asyncio
  async def test_rewind_async_not_first_invocation(self):
    """Tests rewind_async rewinds state and artifacts to invocation2."""
    runner = self.runner
    user_id = "test_user"
    session_id = "test_session"

    # 1. Setup session and initial artifacts
    session = await runner.session_service.create_session(
        app_name=runner.app_name, user_id=user_id, session_id=session_id
    )
    # invocation1
    await runner.artifact_service.save_artifact(
        app_name=runner.app_name,
        user_id=user_id,
        session_id=session_id,
        filename="f1",
        artifact=types.Part.from_text(text="f1v0"),
    )
    event1 = Event(
        invocation_id="invocation1",
        author="agent",
        content=types.Content(parts=[types.Part.from_text(text="event1")]),
        actions=EventActions(
            state_delta={"k1": "v1"}, artifact_delta={"f1": 0}
        ),
    )
    await runner.session_service.append_event(session=session, event=event1)

    # invocation2
    await runner.artifact_service.save_artifact(
        app_name=runner.app_name,
        user_id=user_id,
        session_id=session_id,
        filename="f1",
        artifact=types.Part.from_text(text="f1v1"),
    )
    await runner.artifact_service.save_artifact(
        app_name=runner.app_name,
        user_id=user_id,
        session_id=session_id,
        filename="f2",
        artifact=types.Part.from_text(text="f2v0"),
    )
    event2 = Event(
        invocation_id="invocation2",
        author="agent",
        content=types.Content(parts=[types.Part.from_text(text="event2")]),
        actions=EventActions(
            state_delta={"k1": "v2", "k2": "v2"},
            artifact_delta={"f1": 1, "f2": 0},
        ),
    )
    await runner.session_service.append_event(session=session, event=event2)

    # invocation3
    event3 = Event(
        invocation_id="invocation3",
        author="agent",
        content=types.Content(parts=[types.Part.from_text(text="event3")]),
        actions=EventActions(state_delta={"k2": "v3"}),
    )
    await runner.session_service.append_event(session=session, event=event3)

    # 2. Rewind before invocation3
    await runner.rewind_async(
        user_id=user_id,
        session_id=session_id,
        rewind_before_invocation_id="invocation3",
    )

    # 3. Verify state and artifacts are rewound
    session = await runner.session_service.get_session(
        app_name=runner.app_name, user_id=user_id, session_id=session_id
    )
    # After rewind before invocation3, event1 and event2 state deltas should apply.
    assert session.state == {"k1": "v2", "k2": "v2"}
    # f1 should be v1
    assert await runner.artifact_service.load_artifact(
        app_name=runner.app_name,
        user_id=user_id,
        session_id=session_id,
        filename="f1",
    ) == types.Part.from_text(text="f1v1")
    # f2 should be v0
    assert await runner.artifact_service.load_artifact(
        app_name=runner.app_name,
        user_id=user_id,
        session_id=session_id,
        filename="f2",
    ) == types.Part.from_text(text="f2v0")

  @_REWIND_FIX_NOT_IN_213
  @pytest.mark.asyncio
  async def test_rewind_preserves_initial_session_state(self):
    """Tests that rewind preserves state keys set via create_session."""
    runner = self.runner
    user_id = "test_user"
    session_id = "test_session"

    # Create session with initial state (not from events).
    session = await runner.session_service.create_session(
        app_name=runner.app_name,
        user_id=user_id,
        session_id=session_id,
        state={"tenant_id": "t1", "user_pref": "dark"},
    )

    # invocation1: sets k1 via event
    event1 = Event(
        invocation_id="invocation1",
        author="agent",
        content=types.Content(parts=[types.Part.from_text(text="event1")]),
        actions=EventActions(state_delta={"k1": "v1"}),
    )
    await runner.session_service.append_event(session=session, event=event1)

    # invocation2: sets k2 via event
    event2 = Event(
        invocation_id="invocation2",
        author="agent",
        content=types.Content(parts=[types.Part.from_text(text="event2")]),
        actions=EventActions(state_delta={"k2": "v2"}),
    )
    await runner.session_service.append_event(session=session, event=event2)

    session = await runner.session_service.get_session(
        app_name=runner.app_name, user_id=user_id, session_id=session_id
    )
    assert session.state == {
        "tenant_id": "t1",
        "user_pref": "dark",
        "k1": "v1",
        "k2": "v2",
    }

    # Rewind before invocation2
    await runner.rewind_async(
        user_id=user_id,
        session_id=session_id,
        rewind_before_invocation_id="invocation2",
    )

    session = await runner.session_service.get_session(
        app_name=runner.app_name, user_id=user_id, session_id=session_id
    )
    # Initial state keys must be preserved (not nullified).
    assert session.state["tenant_id"] == "t1"
    assert session.state["user_pref"] == "dark"
    # k1 was set in invocation1 (before rewind point), should be preserved.
    assert session.state["k1"] == "v1"
    # k2 was set in invocation2 (after rewind point), should be nullified.
    assert not session.state["k2"]

  @_REWIND_FIX_NOT_IN_213
  @pytest.mark.asyncio
  async def test_rewind_before_first_invocation_preserves_initial_state(self):
    """Tests rewind to before first invocation preserves initial state."""
    runner = self.runner
    user_id = "test_user"
    session_id = "test_session"

    session = await runner.session_service.create_session(
        app_name=runner.app_name,
        user_id=user_id,
        session_id=session_id,
        state={"config_key": "config_val"},
    )

    # Single invocation that adds event state
    event1 = Event(
        invocation_id="invocation1",
        author="agent",
        content=types.Content(parts=[types.Part.from_text(text="event1")]),
        actions=EventActions(state_delta={"k1": "v1"}),
    )
    await runner.session_service.append_event(session=session, event=event1)

    # Rewind before the only invocation
    await runner.rewind_async(
        user_id=user_id,
        session_id=session_id,
        rewind_before_invocation_id="invocation1",
    )

    session = await runner.session_service.get_session(
        app_name=runner.app_name, user_id=user_id, session_id=session_id
    )
    # Initial state must survive.
    assert session.state["config_key"] == "config_val"
    # Event-sourced key must be nullified.
    assert not session.state["k1"]

  @_REWIND_FIX_NOT_IN_213
  @pytest.mark.asyncio
  async def test_rewind_restores_initial_value_when_event_overwrote_it(self):
    """Tests rewind restores initial value for keys overwritten by events."""
    runner = self.runner
    user_id = "test_user"
    session_id = "test_session"

    # Create session with an initial state value for tenant_id.
    session = await runner.session_service.create_session(
        app_name=runner.app_name,
        user_id=user_id,
        session_id=session_id,
        state={"tenant_id": "t_initial"},
    )

    # invocation1: overwrites tenant_id and introduces a brand-new key.
    event1 = Event(
        invocation_id="invocation1",
        author="agent",
        content=types.Content(parts=[types.Part.from_text(text="event1")]),
        actions=EventActions(
            state_delta={"tenant_id": "t_event", "k_new": "v_new"}
        ),
    )
    await runner.session_service.append_event(session=session, event=event1)

    session = await runner.session_service.get_session(
        app_name=runner.app_name, user_id=user_id, session_id=session_id
    )
    assert session.state == {"tenant_id": "t_event", "k_new": "v_new"}

    # Rewind before invocation1.
    await runner.rewind_async(
        user_id=user_id,
        session_id=session_id,
        rewind_before_invocation_id="invocation1",
    )

    session = await runner.session_service.get_session(
        app_name=runner.app_name, user_id=user_id, session_id=session_id
    )
    # tenant_id must be restored to its initial value, not nullified.
    assert session.state["tenant_id"] == "t_initial"
    # k_new was introduced by the rewound event and must be nullified.
    assert not session.state.get("k_new")

  @pytest.mark.asyncio
  async def test_rewind_with_no_initial_session_state(self):
    """Rewind works correctly for sessions created without initial state."""
    runner = self.runner
    user_id = "test_user"
    session_id = "test_session"

    # Create session with no initial state.
    session = await runner.session_service.create_session(
        app_name=runner.app_name,
        user_id=user_id,
        session_id=session_id,
    )

    event1 = Event(
        invocation_id="invocation1",
        author="agent",
        content=types.Content(parts=[types.Part.from_text(text="event1")]),
        actions=EventActions(state_delta={"k1": "v1"}),
    )
    await runner.session_service.append_event(session=session, event=event1)

    event2 = Event(
        invocation_id="invocation2",
        author="agent",
        content=types.Content(parts=[types.Part.from_text(text="event2")]),
        actions=EventActions(state_delta={"k2": "v2"}),
    )
    await runner.session_service.append_event(session=session, event=event2)

    session = await runner.session_service.get_session(
        app_name=runner.app_name, user_id=user_id, session_id=session_id
    )
    assert session.state == {"k1": "v1", "k2": "v2"}

    await runner.rewind_async(
        user_id=user_id,
        session_id=session_id,
        rewind_before_invocation_id="invocation2",
    )

    session = await runner.session_service.get_session(
        app_name=runner.app_name, user_id=user_id, session_id=session_id
    )
    # k1 set before the rewind point survives; k2 from the rewound event is
    # nullified.
    assert session.state["k1"] == "v1"
    assert not session.state.get("k2")


class TestRunnerRewindNoFileData:
  """Tests that rewind works with artifact services that reject file_data."""

  @pytest.mark.asyncio
  async def test_rewind_uses_load_artifact_not_file_data(self, session_service):
    """Rewind must not construct file_data parts for artifact restoration."""
    root_agent = BaseAgent(name="test_agent")
    artifact_service = _NoFileDataArtifactService()
    runner = Runner(
        app_name="test_app",
        agent=root_agent,
        session_service=session_service,
        artifact_service=artifact_service,
    )
    user_id = "test_user"
    session_id = "test_session"

    session = await runner.session_service.create_session(
        app_name=runner.app_name, user_id=user_id, session_id=session_id
    )

    # invocation1: create artifact f1 v0
    await runner.artifact_service.save_artifact(
        app_name=runner.app_name,
        user_id=user_id,
        session_id=session_id,
        filename="f1",
        artifact=types.Part.from_text(text="f1v0"),
    )
    event1 = Event(
        invocation_id="invocation1",
        author="agent",
        content=types.Content(parts=[types.Part.from_text(text="e1")]),
        actions=EventActions(
            state_delta={"k1": "v1"}, artifact_delta={"f1": 0}
        ),
    )
    await runner.session_service.append_event(session=session, event=event1)

    # invocation2: update artifact f1 to v1
    await runner.artifact_service.save_artifact(
        app_name=runner.app_name,
        user_id=user_id,
        session_id=session_id,
        filename="f1",
        artifact=types.Part.from_text(text="f1v1"),
    )
    event2 = Event(
        invocation_id="invocation2",
        author="agent",
        content=types.Content(parts=[types.Part.from_text(text="e2")]),
        actions=EventActions(artifact_delta={"f1": 1}),
    )
    await runner.session_service.append_event(session=session, event=event2)

    session = await runner.session_service.get_session(
        app_name=runner.app_name, user_id=user_id, session_id=session_id
    )

    await runner.rewind_async(
        user_id=user_id,
        session_id=session_id,
        rewind_before_invocation_id="invocation2",
    )

    # f1 should be restored to v0 content
    restored = await runner.artifact_service.load_artifact(
        app_name=runner.app_name,
        user_id=user_id,
        session_id=session_id,
        filename="f1",
    )
    assert restored == types.Part.from_text(text="f1v0")


# ---------------------------------------------------------------------------
# tests/unittests/runners/test_runner_state_delta.py
# ---------------------------------------------------------------------------


def _user_message(text: str = "hello") -> types.Content:
  return types.Content(parts=[types.Part(text=text)], role="user")


@pytest.mark.asyncio
async def test_node_runner_applies_state_delta_before_base_node_runs(
    session_service,
):
  """A BaseNode sees run_async state_delta as session state."""

  class _StateReaderNode(BaseNode):

    async def _run_impl(
        self, *, ctx: Context, node_input: Any
    ) -> AsyncGenerator[Any, None]:
      yield f"state:{ctx.state['test_state']}"

  runner = Runner(
      app_name="test",
      node=_StateReaderNode(name="reader"),
      session_service=session_service,
  )
  session = await session_service.create_session(app_name="test", user_id="u")

  events: list[Event] = []
  async for event in runner.run_async(
      user_id="u",
      session_id=session.id,
      new_message=_user_message(),
      state_delta={"test_state": "must_change"},
  ):
    events.append(event)

  updated = await session_service.get_session(
      app_name="test", user_id="u", session_id=session.id
  )
  user_events = [event for event in updated.events if event.author == "user"]

  assert [event.output for event in events if event.output is not None] == [
      "state:must_change"
  ]
  assert updated.state["test_state"] == "must_change"
  assert user_events[0].actions.state_delta == {"test_state": "must_change"}


@pytest.mark.asyncio
async def test_node_runner_yields_user_event_with_state_delta(session_service):
  """yield_user_message=True yields the user event with state_delta."""

  class _NoopNode(BaseNode):

    async def _run_impl(
        self, *, ctx: Context, node_input: Any
    ) -> AsyncGenerator[Any, None]:
      yield "done"

  runner = Runner(
      app_name="test",
      node=_NoopNode(name="noop"),
      session_service=session_service,
  )
  session = await session_service.create_session(app_name="test", user_id="u")

  events: list[Event] = []
  async for event in runner.run_async(
      user_id="u",
      session_id=session.id,
      new_message=_user_message(),
      state_delta={"test_state": "must_change"},
      yield_user_message=True,
  ):
    events.append(event)

  assert events[0].author == "user"
  assert events[0].actions.state_delta == {"test_state": "must_change"}


@pytest.mark.asyncio
async def test_node_runner_applies_state_delta_before_llm_agent_runs(
    session_service,
):
  """An LlmAgent callback sees run_async state_delta before model execution."""

  captured_state_value = None

  def _before_agent_callback(
      callback_context: CallbackContext,
  ) -> types.Content:
    nonlocal captured_state_value
    captured_state_value = callback_context.state["test_state"]
    return types.Content(
        role="model",
        parts=[types.Part(text=f"state:{captured_state_value}")],
    )

  agent = LlmAgent(
      name="state_agent",
      before_agent_callback=_before_agent_callback,
  )
  runner = Runner(app_name="test", agent=agent, session_service=session_service)
  session = await session_service.create_session(app_name="test", user_id="u")

  events: list[Event] = []
  async for event in runner.run_async(
      user_id="u",
      session_id=session.id,
      new_message=_user_message(),
      state_delta={"test_state": "must_change"},
  ):
    events.append(event)

  updated = await session_service.get_session(
      app_name="test", user_id="u", session_id=session.id
  )
  user_events = [event for event in updated.events if event.author == "user"]
  response_texts = [
      part.text
      for event in events
      if event.content
      for part in event.content.parts
      if part.text
  ]

  assert captured_state_value == "must_change"
  assert "state:must_change" in response_texts
  assert user_events[0].actions.state_delta == {"test_state": "must_change"}


# ---------------------------------------------------------------------------
# Not copied (features ADK 2.13 lacks, checked in the installed wheel):
#   test_runner_edit_message.py (Runner.edit_message_async), test_runner_termination.py
#   (google.adk.termination), test_cancel_async.py (runners.StopSignal).
# ---------------------------------------------------------------------------


# ---------------------------------------------------------------------------
# tests/unittests/runners/test_persisted_event_counts.py
# ---------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_run_async_event_counts_require_fresh_session_fetch(
    in_memory_runner,
) -> None:
  """Persisted event counts must be asserted against a freshly fetched session."""
  agent = LlmAgent(
      name="root_agent",
      model=testing_utils.MockModel.create(responses=["first", "second"]),
  )
  runner = in_memory_runner(root_agent=agent)

  first_invocation_events = await runner.run_async("hello")
  stale_session = await runner.runner.session_service.get_session(
      app_name=runner.app_name,
      user_id="test_user",
      session_id=runner.session_id,
  )
  assert stale_session is not None

  second_invocation_events = await runner.run_async("hello again")

  stale_count = len(stale_session.events)
  fresh_session = await runner.runner.session_service.get_session(
      app_name=runner.app_name,
      user_id="test_user",
      session_id=runner.session_id,
  )
  assert fresh_session is not None
  fresh_count = len(fresh_session.events)

  assert stale_count < fresh_count
  # Sanity check: the persisted delta covers at least all emitted events.
  assert fresh_count - stale_count >= len(second_invocation_events)
  assert len(first_invocation_events) > 0


# ---------------------------------------------------------------------------
# tests/unittests/runners/test_issue_5282.py
# ---------------------------------------------------------------------------


@dataclass
class CallbackCounts:
  on_user_message_callback: int = 0
  before_run_callback: int = 0
  on_event_callback: int = 0
  after_run_callback: int = 0


class TracerPlugin(BasePlugin):
  """Counts every Plugin lifecycle callback the Runner actually dispatches."""

  def __init__(self) -> None:
    super().__init__(name='tracer')
    self.counts = CallbackCounts()

  async def on_user_message_callback(
      self,
      *,
      invocation_context: InvocationContext,
      user_message: types.Content,
  ) -> Optional[types.Content]:
    del invocation_context, user_message
    self.counts.on_user_message_callback += 1
    return None

  async def before_run_callback(
      self, *, invocation_context: InvocationContext
  ) -> Optional[types.Content]:
    del invocation_context
    self.counts.before_run_callback += 1
    return None

  async def on_event_callback(
      self, *, invocation_context: InvocationContext, event: Event
  ) -> Optional[Event]:
    del invocation_context, event
    self.counts.on_event_callback += 1
    return None

  async def after_run_callback(
      self, *, invocation_context: InvocationContext
  ) -> None:
    del invocation_context
    self.counts.after_run_callback += 1
    return None


async def _terminal_node(ctx) -> Event:
  del ctx
  return Event(
      content=types.Content(
          parts=[types.Part(text='done')],
          role='model',
      )
  )


def _build_runner(plugin: TracerPlugin, session_service) -> Runner:
  workflow = Workflow(
      name='Issue5282Repro',
      edges=[('START', _terminal_node)],
  )
  app = App(name='issue_5282_repro', root_agent=workflow, plugins=[plugin])
  return Runner(
      app_name='issue_5282_repro',
      app=app,
      session_service=session_service,
      memory_service=InMemoryMemoryService(),
  )


async def _drive_one_invocation(runner: Runner) -> None:
  session = await runner.session_service.create_session(
      app_name='issue_5282_repro', user_id='u1'
  )
  async for _ in runner.run_async(
      user_id='u1',
      session_id=session.id,
      new_message=types.Content(parts=[types.Part(text='hi')], role='user'),
  ):
    pass


@pytest.mark.asyncio
async def test_workflow_root_dispatches_pre_run_and_event_hooks(session_service):
  """Baseline: pre-run and per-event hooks fire on a Workflow root."""
  plugin = TracerPlugin()
  runner = _build_runner(plugin, session_service)

  await _drive_one_invocation(runner)

  assert plugin.counts.on_user_message_callback == 1
  assert plugin.counts.before_run_callback == 1
  assert plugin.counts.on_event_callback >= 1, (
      'on_event_callback should fire at least once via _consume_event_queue '
      'for the content-bearing terminal event'
  )


@pytest.mark.asyncio
async def test_workflow_root_dispatches_after_run_callback(session_service):
  """Regression anchor for #5282: after_run_callback fires on Workflow roots."""
  plugin = TracerPlugin()
  runner = _build_runner(plugin, session_service)

  await _drive_one_invocation(runner)

  assert plugin.counts.after_run_callback == 1


# ---------------------------------------------------------------------------
# tests/unittests/runners/test_resume_invocation.py
# ---------------------------------------------------------------------------


def transfer_call_part(agent_name: str) -> Part:
  return Part.from_function_call(
      name="transfer_to_agent", args={"agent_name": agent_name}
  )


TRANSFER_RESPONSE_PART = Part.from_function_response(
    name="transfer_to_agent", response={"result": None}
)


def _resume_test_tool() -> dict[str, str]:
  return {"result": "test tool result"}


_resume_test_tool.__name__ = "test_tool"


@_NEWER_THAN_213
@pytest.mark.asyncio
async def test_resume_invocation_from_sub_agent(in_memory_runner):
  """An invocation-to-resume starts from a sub-agent."""
  sub_agent = LlmAgent(
      name="sub_agent",
      model=testing_utils.MockModel.create(
          responses=[
              "first response from sub_agent",
              "second response from sub_agent",
              "third response from sub_agent",
          ]
      ),
  )
  root_agent = LlmAgent(
      name="root_agent",
      model=testing_utils.MockModel.create(
          responses=[transfer_call_part(sub_agent.name)]
      ),
      sub_agents=[sub_agent],
  )
  runner = in_memory_runner(
      app=App(
          name="test_app",
          root_agent=root_agent,
          resumability_config=ResumabilityConfig(is_resumable=True),
      )
  )

  invocation_1_events = await runner.run_async("test user query")
  assert testing_utils.simplify_resumable_app_events(
      copy.deepcopy(invocation_1_events)
  ) == [
      (root_agent.name, transfer_call_part(sub_agent.name)),
      (root_agent.name, TRANSFER_RESPONSE_PART),
      (sub_agent.name, "first response from sub_agent"),
      (sub_agent.name, testing_utils.END_OF_AGENT),
      (root_agent.name, testing_utils.END_OF_AGENT),
  ]

  invocation_2_events = await runner.run_async("test user query 2")
  assert testing_utils.simplify_resumable_app_events(
      copy.deepcopy(invocation_2_events)
  ) == [
      (sub_agent.name, "second response from sub_agent"),
      (sub_agent.name, testing_utils.END_OF_AGENT),
  ]
  assert not await runner.run_async(
      invocation_id=invocation_2_events[0].invocation_id
  )

  # Step 4: Copy all session.events[:-1] to a new session
  session_id = runner.session_id
  session = await runner.runner.session_service.get_session(
      app_name="test_app", user_id="test_user", session_id=session_id
  )
  new_session = await runner.runner.session_service.create_session(
      app_name=session.app_name, user_id=session.user_id
  )
  for event in session.events[:-1]:
    await runner.runner.session_service.append_event(new_session, event)
  runner.session_id = new_session.id

  resumed_invocation_2_events = await runner.run_async(
      invocation_id=invocation_2_events[0].invocation_id
  )
  assert testing_utils.simplify_resumable_app_events(
      copy.deepcopy(resumed_invocation_2_events)
  ) == [
      (sub_agent.name, "third response from sub_agent"),
      (sub_agent.name, testing_utils.END_OF_AGENT),
  ]


@_NEWER_THAN_213
@pytest.mark.asyncio
async def test_resume_any_invocation(in_memory_runner):
  """Resuming a previous invocation instead of the last one."""
  long_running_test_tool = LongRunningFunctionTool(func=_resume_test_tool)
  root_agent = LlmAgent(
      name="root_agent",
      model=testing_utils.MockModel.create(
          responses=[
              Part.from_function_call(name="test_tool", args={}),
              "llm response in invocation 2",
              Part.from_function_call(name="test_tool", args={}),
              "llm response after resuming invocation 1",
          ]
      ),
      tools=[long_running_test_tool],
  )
  runner = in_memory_runner(
      app=App(
          name="test_app",
          root_agent=root_agent,
          resumability_config=ResumabilityConfig(is_resumable=True),
      )
  )

  invocation_1_events = await runner.run_async("test user query")
  assert testing_utils.simplify_resumable_app_events(
      copy.deepcopy(invocation_1_events)
  ) == [
      (root_agent.name, Part.from_function_call(name="test_tool", args={})),
      (
          root_agent.name,
          Part.from_function_response(
              name="test_tool", response={"result": "test tool result"}
          ),
      ),
  ]

  invocation_2_events = await runner.run_async("test user query 2")
  assert testing_utils.simplify_resumable_app_events(
      copy.deepcopy(invocation_2_events)
  ) == [
      (root_agent.name, "llm response in invocation 2"),
      (root_agent.name, testing_utils.END_OF_AGENT),
  ]

  invocation_3_events = await runner.run_async("test user query 3")
  assert testing_utils.simplify_resumable_app_events(
      copy.deepcopy(invocation_3_events)
  ) == [
      (root_agent.name, Part.from_function_call(name="test_tool", args={})),
      (
          root_agent.name,
          Part.from_function_response(
              name="test_tool", response={"result": "test tool result"}
          ),
      ),
  ]

  resumed_invocation_1_events = await runner.run_async(
      invocation_id=invocation_1_events[0].invocation_id,
      new_message=testing_utils.UserContent(
          Part(
              function_response=FunctionResponse(
                  id=invocation_1_events[0].content.parts[0].function_call.id,
                  name="test_tool",
                  response={"result": "test tool update"},
              )
          ),
      ),
  )
  assert testing_utils.simplify_resumable_app_events(
      copy.deepcopy(resumed_invocation_1_events)
  ) == [
      (root_agent.name, "llm response after resuming invocation 1"),
      (root_agent.name, testing_utils.END_OF_AGENT),
  ]


# ---------------------------------------------------------------------------
# tests/unittests/runners/test_pause_invocation.py
# (ADK's tests are sync `def`s calling the sync `runner.run`; kept so.)
# ---------------------------------------------------------------------------


def _transfer_call_part(agent_name: str) -> Part:
  return Part.from_function_call(
      name="transfer_to_agent", args={"agent_name": agent_name}
  )


def _pause_test_tool() -> str:
  return "result"


_pause_test_tool.__name__ = "test_tool"


class _TestingAgent(BaseAgent):
  """A testing agent that generates an event after a delay."""

  delay: float = 0

  def event(self, ctx: InvocationContext):
    return Event(
        author=self.name,
        branch=ctx.branch,
        invocation_id=ctx.invocation_id,
        content=testing_utils.ModelContent(
            parts=[Part.from_text(text="Delayed message")]
        ),
    )

  async def _run_async_impl(
      self, ctx: InvocationContext
  ) -> AsyncGenerator[Event, None]:
    await asyncio.sleep(self.delay)
    yield self.event(ctx)


_TRANSFER_RESPONSE_PART = Part.from_function_response(
    name="transfer_to_agent", response={"result": None}
)
END_OF_AGENT = testing_utils.END_OF_AGENT


# The stored test_pause_invocation.py predates ADK 2.13's node-based runner: on 2.13's own
# InMemorySessionService every one of them fails the same way as on ours (the long-running
# call does not pause the run, the MockModel runs out of responses: DynamicNodeFailError);
# not run, as _NEWER_THAN_213.
_PAUSE_NOT_213 = pytest.mark.skip(
    reason="stored test predates ADK 2.13: fails identically on InMemorySessionService",
)


class BasePauseInvocationTest:
  """Base class for pausing invocation tests with common fixtures."""

  @pytest.fixture
  def agent(self) -> BaseAgent:
    return BaseAgent(name="test_agent")

  @pytest.fixture
  def app(self, agent: BaseAgent) -> App:
    return App(
        name="test_app",
        root_agent=agent,
        resumability_config=ResumabilityConfig(is_resumable=True),
    )

  @pytest.fixture
  def runner(self, app: App, in_memory_runner):
    return in_memory_runner(app=app)

  @staticmethod
  def mock_model(responses):
    return testing_utils.MockModel.create(responses=responses)


@_PAUSE_NOT_213
class TestPauseInvocationWithSingleLlmAgent(BasePauseInvocationTest):

  @pytest.fixture
  def agent(self) -> BaseAgent:
    return LlmAgent(
        name="root_agent",
        model=self.mock_model(
            responses=[Part.from_function_call(name="test_tool", args={})]
        ),
        tools=[LongRunningFunctionTool(func=_pause_test_tool)],
    )

  def test_pause_on_long_running_function_call(self, runner):
    assert testing_utils.simplify_resumable_app_events(runner.run("test")) == [
        ("root_agent", Part.from_function_call(name="test_tool", args={})),
        (
            "root_agent",
            Part.from_function_response(
                name="test_tool", response={"result": "result"}
            ),
        ),
    ]


@_PAUSE_NOT_213
class TestPauseInvocationWithSequentialAgent(BasePauseInvocationTest):

  @pytest.fixture
  def agent(self) -> BaseAgent:
    sub_agent1 = LlmAgent(
        name="sub_agent_1",
        model=self.mock_model(
            responses=[Part.from_function_call(name="test_tool", args={})]
        ),
        tools=[LongRunningFunctionTool(func=_pause_test_tool)],
    )
    sub_agent2 = LlmAgent(
        name="sub_agent_2",
        model=self.mock_model(
            responses=[Part.from_function_call(name="test_tool", args={})]
        ),
        tools=[LongRunningFunctionTool(func=_pause_test_tool)],
    )
    return SequentialAgent(
        name="root_agent",
        sub_agents=[sub_agent1, sub_agent2],
    )

  def test_pause_first_agent_on_long_running_function_call(self, runner):
    assert testing_utils.simplify_resumable_app_events(runner.run("test")) == [
        (
            "root_agent",
            SequentialAgentState(current_sub_agent="sub_agent_1").model_dump(
                mode="json"
            ),
        ),
        ("sub_agent_1", Part.from_function_call(name="test_tool", args={})),
        (
            "sub_agent_1",
            Part.from_function_response(
                name="test_tool", response={"result": "result"}
            ),
        ),
    ]

  def test_pause_second_agent_on_long_running_function_call(self, runner):
    runner.root_agent.sub_agents[0].tools = [FunctionTool(func=_pause_test_tool)]
    runner.root_agent.sub_agents[0].model = self.mock_model(
        responses=[
            Part.from_function_call(name="test_tool", args={}),
            Part.from_text(text="model response after tool call"),
        ]
    )
    assert testing_utils.simplify_resumable_app_events(runner.run("test")) == [
        (
            "root_agent",
            SequentialAgentState(current_sub_agent="sub_agent_1").model_dump(
                mode="json"
            ),
        ),
        ("sub_agent_1", Part.from_function_call(name="test_tool", args={})),
        (
            "sub_agent_1",
            Part.from_function_response(
                name="test_tool", response={"result": "result"}
            ),
        ),
        ("sub_agent_1", "model response after tool call"),
        ("sub_agent_1", END_OF_AGENT),
        (
            "root_agent",
            SequentialAgentState(current_sub_agent="sub_agent_2").model_dump(
                mode="json"
            ),
        ),
        ("sub_agent_2", Part.from_function_call(name="test_tool", args={})),
        (
            "sub_agent_2",
            Part.from_function_response(
                name="test_tool", response={"result": "result"}
            ),
        ),
    ]


@_PAUSE_NOT_213
class TestPauseInvocationWithParallelAgent(BasePauseInvocationTest):

  @pytest.fixture
  def agent(self) -> BaseAgent:
    sub_agent1 = LlmAgent(
        name="sub_agent_1",
        model=self.mock_model(
            responses=[Part.from_function_call(name="test_tool", args={})]
        ),
        tools=[LongRunningFunctionTool(func=_pause_test_tool)],
    )
    sub_agent2 = _TestingAgent(name="sub_agent_2", delay=0.5)
    return ParallelAgent(
        name="root_agent",
        sub_agents=[sub_agent1, sub_agent2],
    )

  def test_pause_on_long_running_function_call(self, runner):
    simplified_event_parts = testing_utils.simplify_resumable_app_events(
        runner.run("test")
    )
    assert (
        "sub_agent_1",
        Part.from_function_call(name="test_tool", args={}),
    ) in simplified_event_parts
    assert ("sub_agent_2", "Delayed message") in simplified_event_parts


@_PAUSE_NOT_213
class TestPauseInvocationWithNestedParallelAgent(BasePauseInvocationTest):

  @pytest.fixture
  def agent(self) -> BaseAgent:
    nested_sub_agent_1 = LlmAgent(
        name="nested_sub_agent_1",
        model=self.mock_model(
            responses=[Part.from_function_call(name="test_tool", args={})]
        ),
        tools=[LongRunningFunctionTool(func=_pause_test_tool)],
    )
    nested_sub_agent_2 = _TestingAgent(name="nested_sub_agent_2", delay=0.5)
    nested_parallel_agent = ParallelAgent(
        name="nested_parallel_agent",
        sub_agents=[nested_sub_agent_1, nested_sub_agent_2],
    )
    sub_agent_1 = _TestingAgent(name="sub_agent_1", delay=0.5)
    return ParallelAgent(
        name="root_agent",
        sub_agents=[sub_agent_1, nested_parallel_agent],
    )

  def test_pause_on_long_running_function_call(self, runner):
    simplified_event_parts = testing_utils.simplify_resumable_app_events(
        runner.run("test")
    )
    assert (
        "nested_sub_agent_1",
        Part.from_function_call(name="test_tool", args={}),
    ) in simplified_event_parts
    assert ("sub_agent_1", "Delayed message") in simplified_event_parts
    assert ("nested_sub_agent_2", "Delayed message") in simplified_event_parts

  def test_pause_on_multiple_long_running_function_calls(self, runner):
    runner.root_agent.sub_agents[0] = LlmAgent(
        name="sub_agent_1",
        model=self.mock_model(
            responses=[Part.from_function_call(name="test_tool", args={})]
        ),
        tools=[LongRunningFunctionTool(func=_pause_test_tool)],
    )
    simplified_events = testing_utils.simplify_resumable_app_events(
        runner.run("test")
    )
    assert (
        "sub_agent_1",
        Part.from_function_call(name="test_tool", args={}),
    ) in simplified_events
    assert ("sub_agent_1", END_OF_AGENT) not in simplified_events
    assert (
        "nested_sub_agent_1",
        Part.from_function_call(name="test_tool", args={}),
    ) in simplified_events
    assert ("nested_sub_agent_1", END_OF_AGENT) not in simplified_events


@_PAUSE_NOT_213
class TestPauseInvocationWithLoopAgent(BasePauseInvocationTest):

  @pytest.fixture
  def agent(self) -> BaseAgent:
    sub_agent_1 = LlmAgent(
        name="sub_agent_1",
        model=self.mock_model(
            responses=[Part.from_text(text="sub agent 1 response")]
        ),
    )
    sub_agent_2 = LlmAgent(
        name="sub_agent_2",
        model=self.mock_model(
            responses=[Part.from_function_call(name="test_tool", args={})]
        ),
        tools=[LongRunningFunctionTool(func=_pause_test_tool)],
    )
    sub_agent_3 = LlmAgent(
        name="sub_agent_3",
        model=self.mock_model(
            responses=[Part.from_function_call(name="exit_loop", args={})]
        ),
        tools=[exit_loop],
    )
    return LoopAgent(
        name="root_agent",
        sub_agents=[sub_agent_1, sub_agent_2, sub_agent_3],
        max_iterations=2,
    )

  def test_pause_on_long_running_function_call(self, runner):
    assert testing_utils.simplify_resumable_app_events(runner.run("test")) == [
        (
            "root_agent",
            LoopAgentState(current_sub_agent="sub_agent_1").model_dump(
                mode="json"
            ),
        ),
        ("sub_agent_1", "sub agent 1 response"),
        ("sub_agent_1", END_OF_AGENT),
        (
            "root_agent",
            LoopAgentState(current_sub_agent="sub_agent_2").model_dump(
                mode="json"
            ),
        ),
        ("sub_agent_2", Part.from_function_call(name="test_tool", args={})),
        (
            "sub_agent_2",
            Part.from_function_response(
                name="test_tool", response={"result": "result"}
            ),
        ),
    ]


@_PAUSE_NOT_213
class TestPauseInvocationWithLlmAgentTree(BasePauseInvocationTest):

  @pytest.fixture
  def agent(self) -> LlmAgent:
    sub_llm_agent_1 = LlmAgent(
        name="sub_llm_agent_1",
        model=self.mock_model(
            responses=[
                _transfer_call_part("sub_llm_agent_2"),
                "llm response not used",
            ]
        ),
    )
    sub_llm_agent_2 = LlmAgent(
        name="sub_llm_agent_2",
        model=self.mock_model(
            responses=[
                Part.from_function_call(name="test_tool", args={}),
                "llm response not used",
            ]
        ),
        tools=[LongRunningFunctionTool(func=_pause_test_tool)],
    )
    return LlmAgent(
        name="root_agent",
        model=self.mock_model(
            responses=[
                _transfer_call_part("sub_llm_agent_1"),
                "llm response not used",
            ]
        ),
        sub_agents=[sub_llm_agent_1, sub_llm_agent_2],
    )

  def test_pause_on_long_running_function_call(self, runner):
    assert testing_utils.simplify_resumable_app_events(runner.run("test")) == [
        ("root_agent", _transfer_call_part("sub_llm_agent_1")),
        ("root_agent", _TRANSFER_RESPONSE_PART),
        ("sub_llm_agent_1", _transfer_call_part("sub_llm_agent_2")),
        ("sub_llm_agent_1", _TRANSFER_RESPONSE_PART),
        ("sub_llm_agent_2", Part.from_function_call(name="test_tool", args={})),
        (
            "sub_llm_agent_2",
            Part.from_function_response(
                name="test_tool", response={"result": "result"}
            ),
        ),
    ]


# ---------------------------------------------------------------------------
# Differential: the resume/pause scenarios above, whose verbatim assertions are newer or
# older than ADK 2.13, run once on ADK's InMemorySessionService and once on the service
# under test; what the Runner yields, what is stored and the final state must be equal.
# (Not ADK's code: ADK's scenarios, with "same as InMemorySessionService" as the assertion.)
# ---------------------------------------------------------------------------


def _digest(events):
  out = []
  for e in testing_utils.simplify_resumable_app_events(copy.deepcopy(events)):
    out.append(e)
  return out


async def _stored(runner: _TestRunner):
  session = await runner.runner.session_service.get_session(
      app_name=runner.app_name, user_id='test_user', session_id=runner.session_id
  )
  return (
      _digest(session.events),
      [dict(e.actions.state_delta) for e in session.events],
      [e.invocation_id == session.events[0].invocation_id for e in session.events],
      dict(session.state),
  )


async def _scenario_resume_any(service):
  root_agent = LlmAgent(
      name="root_agent",
      model=testing_utils.MockModel.create(
          responses=[
              Part.from_function_call(name="test_tool", args={}),
              "llm response in invocation 2",
              Part.from_function_call(name="test_tool", args={}),
              "llm response after resuming invocation 1",
              "spare 1",
              "spare 2",
          ]
      ),
      tools=[LongRunningFunctionTool(func=_resume_test_tool)],
  )
  runner = _TestRunner(
      service,
      app=App(
          name="test_app",
          root_agent=root_agent,
          resumability_config=ResumabilityConfig(is_resumable=True),
      ),
  )
  out = []
  inv1 = await runner.run_async("test user query")
  out.append(_digest(inv1))
  out.append(_digest(await runner.run_async("test user query 2")))
  out.append(_digest(await runner.run_async("test user query 3")))
  out.append(
      _digest(
          await runner.run_async(
              invocation_id=inv1[0].invocation_id,
              new_message=testing_utils.UserContent(
                  Part(
                      function_response=FunctionResponse(
                          id=inv1[0].content.parts[0].function_call.id,
                          name="test_tool",
                          response={"result": "test tool update"},
                      )
                  )
              ),
          )
      )
  )
  out.append(await _stored(runner))
  return out


async def _scenario_resume_from_sub_agent(service):
  sub_agent = LlmAgent(
      name="sub_agent",
      model=testing_utils.MockModel.create(
          responses=[f"response {i} from sub_agent" for i in range(6)]
      ),
  )
  root_agent = LlmAgent(
      name="root_agent",
      model=testing_utils.MockModel.create(
          responses=[transfer_call_part(sub_agent.name), "root spare"]
      ),
      sub_agents=[sub_agent],
  )
  runner = _TestRunner(
      service,
      app=App(
          name="test_app",
          root_agent=root_agent,
          resumability_config=ResumabilityConfig(is_resumable=True),
      ),
  )
  out = []
  out.append(_digest(await runner.run_async("test user query")))
  inv2 = await runner.run_async("test user query 2")
  out.append(_digest(inv2))
  out.append(_digest(await runner.run_async(invocation_id=inv2[0].invocation_id)))
  out.append(await _stored(runner))
  session = await service.get_session(
      app_name="test_app", user_id="test_user", session_id=runner.session_id
  )
  new_session = await service.create_session(
      app_name=session.app_name, user_id=session.user_id
  )
  for event in session.events[:-1]:
    await service.append_event(new_session, event)
  runner.session_id = new_session.id
  out.append(_digest(await runner.run_async(invocation_id=inv2[0].invocation_id)))
  out.append(await _stored(runner))
  return out


async def _scenario_sequential_pause(service):
  sub_agent1 = LlmAgent(
      name="sub_agent_1",
      model=testing_utils.MockModel.create(
          responses=[
              Part.from_function_call(name="test_tool", args={}),
              Part.from_text(text="model response after tool call"),
              "spare",
          ]
      ),
      tools=[FunctionTool(func=_pause_test_tool)],
  )
  sub_agent2 = LlmAgent(
      name="sub_agent_2",
      model=testing_utils.MockModel.create(
          responses=[
              Part.from_function_call(name="test_tool", args={}),
              "sub 2 after tool",
              "spare",
          ]
      ),
      tools=[LongRunningFunctionTool(func=_pause_test_tool)],
  )
  runner = _TestRunner(
      service,
      app=App(
          name="test_app",
          root_agent=SequentialAgent(
              name="root_agent", sub_agents=[sub_agent1, sub_agent2]
          ),
          resumability_config=ResumabilityConfig(is_resumable=True),
      ),
  )
  out = []
  inv1 = await runner.run_async("test")
  out.append(_digest(inv1))
  out.append(_digest(await runner.run_async("again")))
  out.append(await _stored(runner))
  return out


async def _outcome(scenario, service):
  try:
    return await scenario(service)
  except Exception as e:  # the same failure on both is the same behaviour
    return ('raised', type(e).__name__)


@pytest.mark.parametrize(
    'scenario',
    [_scenario_resume_any, _scenario_resume_from_sub_agent, _scenario_sequential_pause],
    ids=['resume_any', 'resume_from_sub_agent', 'sequential_pause'],
)
@pytest.mark.asyncio
async def test_scenario_matches_in_memory(scenario, session_service):
  expected = await _outcome(scenario, InMemorySessionService())
  assert expected and expected[0] != 'raised', expected
  actual = await _outcome(scenario, session_service)
  assert actual == expected


def _sync_scenario(service):
  agent = LlmAgent(
      name="root_agent",
      model=testing_utils.MockModel.create(responses=["first", "second"]),
  )
  runner = _TestRunner(service, root_agent=agent)
  out = [_digest(runner.run("hello")), _digest(runner.run("hello again"))]
  out.append(asyncio.run(_stored(runner)))
  return out


def test_sync_runner_run_matches_in_memory(session_service):
  """ADK's sync Runner.run (a thread with its own loop), as testing_utils.InMemoryRunner.run."""
  assert _sync_scenario(session_service) == _sync_scenario(InMemorySessionService())
