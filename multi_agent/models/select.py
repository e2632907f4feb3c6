"""Which model the agents run on: ``--model`` / ``MULTI_AGENT_MODEL``, else the offline model.

* nothing configured, or ``offline-...``: the built-in :class:`OfflineRulesModel`;
* a Gemini name (``gemini-2.5-flash``...): passed to ADK by name; needs ``GOOGLE_API_KEY``
  (or Vertex AI: ``GOOGLE_GENAI_USE_VERTEXAI=1`` with ``GOOGLE_CLOUD_PROJECT``);
* ``provider/model`` (``ollama_chat/qwen2.5``, ``openai/gpt-4o``...): ADK's ``LiteLlm``, which
  needs the ``litellm`` extra;
* any other name ADK's ``LLMRegistry`` knows (``claude-...``) is passed to ADK by name.

Every misconfiguration raises :class:`ModelConfigError` with what to do about it.
"""

from __future__ import annotations

import os
import re
from typing import Any

from google.adk.models.base_llm import BaseLlm

from ..errors import MultiAgentError
from .offline import OFFLINE_MODEL_NAME, OfflineRulesModel

__all__ = ["MODEL_ENV", "ModelConfigError", "describe_model", "lazy_root_agent", "resolve_model"]

MODEL_ENV = "MULTI_AGENT_MODEL"
LITELLM_HINT = "pip install 'multi-agent-team[litellm]'"
_GEMINI = re.compile(r"^(?:gemini-|gemma-4|projects/.+/models/gemini)", re.IGNORECASE)
_OFFLINE = re.compile(r"^offline-[\w.-]+$")


class ModelConfigError(MultiAgentError, ValueError):
    """The chosen model cannot be used as configured (missing key, extra or unknown name)."""


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes")


def _check_gemini(name: str) -> str:
    if os.environ.get("GOOGLE_API_KEY") or os.environ.get("GEMINI_API_KEY"):
        return name
    if _truthy(os.environ.get("GOOGLE_GENAI_USE_VERTEXAI")) and os.environ.get(
        "GOOGLE_CLOUD_PROJECT"
    ):
        return name
    raise ModelConfigError(
        f"Model {name!r} is a Gemini model and needs an API key: set GOOGLE_API_KEY "
        "(or GOOGLE_GENAI_USE_VERTEXAI=1 and GOOGLE_CLOUD_PROJECT for Vertex AI). "
        f"Without one, leave --model/{MODEL_ENV} unset to use the offline model."
    )


def _litellm(name: str) -> BaseLlm:
    try:
        from google.adk.models.lite_llm import LiteLlm
    except ImportError as exc:
        raise ModelConfigError(
            f"Model {name!r} runs through LiteLLM, which is not installed: {LITELLM_HINT}"
        ) from exc
    return LiteLlm(model=name)


def resolve_model(name: str | None = None) -> str | BaseLlm:
    """The model to give every agent, from ``name``, else ``$MULTI_AGENT_MODEL``.

    Args:
        name: a model name as described in the module docstring; None or "" reads the
            environment, and an empty environment means the offline model.

    Returns:
        A ``BaseLlm`` instance (offline, LiteLLM) or a model name ADK resolves itself.

    Raises:
        ModelConfigError: the model needs a key or an extra that is missing, or the name is
            unknown to ADK.
    """
    chosen = (name or os.environ.get(MODEL_ENV) or "").strip()
    if not chosen or chosen == OFFLINE_MODEL_NAME:
        return OfflineRulesModel()
    if _OFFLINE.match(chosen):
        return OfflineRulesModel(model=chosen)
    if _GEMINI.match(chosen):
        return _check_gemini(chosen)
    if "/" in chosen:
        return _litellm(chosen)
    from google.adk.models.registry import LLMRegistry

    try:
        LLMRegistry.resolve(chosen)
    except (ValueError, ImportError) as exc:
        raise ModelConfigError(
            f"Unknown model {chosen!r}. Use a Gemini name (e.g. gemini-2.5-flash, needs "
            "GOOGLE_API_KEY), a LiteLLM 'provider/model' string (e.g. ollama_chat/qwen2.5, "
            f"needs {LITELLM_HINT}), or leave it unset for the offline model."
        ) from exc
    return chosen


def describe_model(model: str | BaseLlm) -> str:
    """A one-line description of ``model`` for banners and logs."""
    if isinstance(model, OfflineRulesModel):
        return model.display_label
    if isinstance(model, BaseLlm):
        return f"{model.model} ({type(model).__name__})"
    return model


def lazy_root_agent(build: Any, module_globals: dict[str, Any]) -> Any:
    """A module-level ``__getattr__`` that builds ``root_agent`` on first access.

    Agent folders expose ``root_agent`` for ``adk web``; building it at import would resolve the
    model (and may fail without an API key) even for code that only wants ``build_agent``.
    Usage in an agent module: ``__getattr__ = lazy_root_agent(build_agent, globals())``.
    """

    def __getattr__(name: str) -> Any:
        if name == "root_agent":
            agent = build(resolve_model())
            module_globals["root_agent"] = agent
            return agent
        raise AttributeError(f"module {module_globals['__name__']!r} has no attribute {name!r}")

    return __getattr__
