"""Model selection: --model / MULTI_AGENT_MODEL, the offline default, and clear errors."""

from __future__ import annotations

import sys

import pytest

from multi_agent import MultiAgentError
from multi_agent.models import ModelConfigError, OfflineRulesModel, describe_model, resolve_model
from multi_agent.team.app import build_runner

KEYS = ["GOOGLE_API_KEY", "GEMINI_API_KEY", "GOOGLE_GENAI_USE_VERTEXAI", "GOOGLE_CLOUD_PROJECT"]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in [*KEYS, "MULTI_AGENT_MODEL"]:
        monkeypatch.delenv(key, raising=False)


def test_nothing_configured_means_offline() -> None:
    model = resolve_model(None)
    assert isinstance(model, OfflineRulesModel) and model.model == "offline-rules"
    assert "not an LLM" in describe_model(model)


def test_environment_and_argument(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MULTI_AGENT_MODEL", "offline-strict")
    assert resolve_model().model == "offline-strict"
    assert resolve_model("offline-rules").model == "offline-rules"  # the argument wins


def test_gemini_needs_a_key(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ModelConfigError, match="GOOGLE_API_KEY") as info:
        resolve_model("gemini-2.5-flash")
    assert isinstance(info.value, MultiAgentError)
    monkeypatch.setenv("GOOGLE_API_KEY", "test-key")
    assert resolve_model("gemini-2.5-flash") == "gemini-2.5-flash"


def test_litellm_without_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "litellm", None)
    monkeypatch.delitem(sys.modules, "google.adk.models.lite_llm", raising=False)
    with pytest.raises(ModelConfigError, match=r"pip install 'multi-agent-team\[litellm\]'"):
        resolve_model("ollama_chat/qwen2.5")


def test_unknown_model() -> None:
    with pytest.raises(ModelConfigError, match="Unknown model 'nonsense'"):
        resolve_model("nonsense")


async def test_build_runner_applies_the_model_to_every_agent(tmp_path) -> None:
    runner = build_runner(db_url=f"sqlite+aiosqlite:///{tmp_path / 'x.db'}",
                          model="offline-custom")
    try:
        root = runner.agent
        assert runner.app_name == "multi_agent" and root.name == "manager"
        assert [a.name for a in root.sub_agents] == ["funny_nerd", "stock_analyst", "historian"]
        assert {a.model.model for a in [root, *root.sub_agents]} == {"offline-custom"}
        other = build_runner(db_url=f"sqlite+aiosqlite:///{tmp_path / 'x.db'}")
        assert other.agent is not root and other.agent.sub_agents[0] is not root.sub_agents[0]
        await other.close()
    finally:
        await runner.close()


def test_build_runner_reports_model_errors(tmp_path) -> None:
    with pytest.raises(ModelConfigError):
        build_runner(db_url=f"sqlite+aiosqlite:///{tmp_path / 'x.db'}", model="gemini-2.5-pro")
