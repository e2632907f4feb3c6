"""Models the agents can run on: the built-in offline rules model and model selection.

Importing this package registers :class:`OfflineRulesModel` in ADK's ``LLMRegistry`` for
``offline-.*`` names.
"""

from __future__ import annotations

from .offline import OFFLINE_MODEL_NAME, OfflineRulesModel
from .select import MODEL_ENV, ModelConfigError, describe_model, resolve_model

__all__ = [
    "MODEL_ENV",
    "OFFLINE_MODEL_NAME",
    "ModelConfigError",
    "OfflineRulesModel",
    "describe_model",
    "resolve_model",
]
