"""The API tokens of ``multi-agent serve``: the store's ``multi_agent.store.api_tokens``.

Kept so that ``from multi_agent.team.serve.tokens import TokenFile`` goes on working; the code
(the token file, where it lives beside the database) is the store's.
"""

from __future__ import annotations

from multi_agent.store.api_tokens import (
    FILE_NAME,
    FORMAT,
    PREFIX,
    TOKENS_ENV,
    TokenError,
    TokenFile,
    TokenRecord,
    default_tokens_path,
)

__all__ = ["FILE_NAME", "FORMAT", "PREFIX", "TOKENS_ENV", "TokenError", "TokenFile",
           "TokenRecord", "default_tokens_path"]
