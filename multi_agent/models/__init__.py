"""Models the agents can run on: the built-in offline rules model and model selection.

Importing this package (``import multi_agent`` does) registers :class:`OfflineRulesModel` in
ADK's ``LLMRegistry`` for ``offline-.*`` names, lazily: the model's rule tables are loaded the
first time such a name is resolved, or when one of the names below is used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import _registry
from ._registry import OFFLINE_MODEL_NAME

if TYPE_CHECKING:
    from .offline import OfflineRulesModel
    from .select import MODEL_ENV, ModelConfigError, describe_model, resolve_model

__all__ = [
    "MODEL_ENV",
    "OFFLINE_MODEL_NAME",
    "ModelConfigError",
    "OfflineRulesModel",
    "describe_model",
    "resolve_model",
]

_LAZY = {
    "OfflineRulesModel": "offline",
    "MODEL_ENV": "select",
    "ModelConfigError": "select",
    "describe_model": "select",
    "resolve_model": "select",
}

_registry.register()


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value
