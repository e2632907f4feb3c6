"""Registers the offline model with ADK's ``LLMRegistry`` without loading it.

``import multi_agent`` calls :func:`register`, so ``LlmAgent(model="offline-rules")`` resolves
in any program that imported the package, and only the first resolution of an ``offline-...``
name imports :mod:`multi_agent.models.offline` (the rules tables). ADK's lazy registration
(``LLMRegistry._register_lazy``, the one ADK uses for its own providers) is used when it exists;
otherwise the model module is imported and registered at once.
"""

from __future__ import annotations

__all__ = ["OFFLINE_MODEL_NAME", "OFFLINE_MODEL_PATTERN", "register", "registered_lazily"]

OFFLINE_MODEL_NAME = "offline-rules"
OFFLINE_MODEL_PATTERN = r"offline-.*"
_MODULE = "multi_agent.models.offline"
_CLASS = "OfflineRulesModel"
_lazy = False


def registered_lazily() -> bool:
    """Whether :func:`register` left the class to be imported on first use."""
    return _lazy


def register() -> None:
    """Makes ``offline-.*`` model names resolve to ``OfflineRulesModel`` (idempotent)."""
    global _lazy
    from google.adk.models.registry import LLMRegistry

    lazy = getattr(LLMRegistry, "_register_lazy", None)
    if callable(lazy):
        try:
            lazy([OFFLINE_MODEL_PATTERN], _MODULE, _CLASS)
        except Exception:  # an ADK whose private API changed shape: register eagerly
            pass
        else:
            _lazy = True
            return
    from . import offline  # noqa: F401  (registers itself when it is not registered lazily)
