"""``multi-agent serve``: the agent team over HTTP (the contract: ``docs/http-api.md``).

* ``app.py``: the FastAPI application (``create_app``): threads, runs, messages, replay, memory;
* ``runs.py``: runs in flight (one per thread, executed in the background, stop, limits);
* ``translate.py``: ADK events as AG-UI events and messages (types from ``ag-ui-protocol``);
* ``views.py``: threads and runs as JSON, read through the store's public methods;
* ``tokens.py``: the per-user API tokens (salted hashes in a 0600 JSON file);
* ``limits.py``: the request body limit; ``errors.py``: every error answer;
* ``cli.py``: the ``serve`` and ``serve token add|list|revoke`` commands.

The page (``web/``, static files) is served at ``/`` when present.
"""

from __future__ import annotations

from typing import Any

__all__ = ["ServeConfig", "TokenFile", "create_app"]


def __getattr__(name: str) -> Any:
    """The public names, imported on first use (``multi-agent --help`` loads no FastAPI)."""
    if name in ("ServeConfig", "create_app"):
        from . import app

        return getattr(app, name)
    if name == "TokenFile":
        from ...store.api_tokens import TokenFile

        return TokenFile
    raise AttributeError(name)
