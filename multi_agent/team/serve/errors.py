"""Every error answer of the API: ``{"error": {"code": "...", "message": "..."}}``, never a
traceback (the server logs unexpected ones on stderr in one line)."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from ...errors import (
    DatabaseUnavailableError,
    InvalidValueError,
    MultiAgentError,
    RunNotFound,
    SessionAlreadyExists,
    SessionNotFound,
    StaleSession,
)

__all__ = ["ApiError", "error_body", "install_handlers"]

log = logging.getLogger("multi_agent.serve")

HTTP_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
              405: "method_not_allowed", 409: "conflict", 413: "too_large",
              415: "unsupported_media_type", 422: "invalid_request", 429: "too_many_requests",
              500: "internal", 503: "unavailable"}


class ApiError(Exception):
    """An answer with an HTTP status and an error code."""

    def __init__(self, status: int, code: str, message: str,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers


def error_body(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


def error_response(status: int, code: str, message: str,
                   headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(error_body(code, message), status_code=status, headers=headers)


def public_database_error(exc: Exception) -> str:
    """What a client is told of a ``DatabaseUnavailableError``: its cause, not the database's
    path or host (the server's log has the whole message)."""
    cause = getattr(exc, "cause", None)
    return (f"the database is unavailable ({cause or 'error'}); try again later (the server's "
            "log has the details)")


def store_error(exc: MultiAgentError) -> ApiError:
    """A store error as an API error (ids and values the store refuses: 422)."""
    if isinstance(exc, SessionNotFound):
        return ApiError(404, "thread_not_found", "no such thread")
    if isinstance(exc, RunNotFound):
        return ApiError(404, "run_not_found", "no such run")
    if isinstance(exc, SessionAlreadyExists):
        return ApiError(409, "thread_exists", "a thread with this id exists")
    if isinstance(exc, StaleSession):
        return ApiError(409, "conflict", "the thread changed meanwhile; try again")
    if isinstance(exc, InvalidValueError):
        return ApiError(422, "invalid_value", str(exc))
    if isinstance(exc, DatabaseUnavailableError):
        # The whole message names the server's database (its path or host): the log only.
        log.error("database unavailable: %s", exc)
        return ApiError(503, "database_unavailable", public_database_error(exc))
    return ApiError(500, "store_error", str(exc))


def install_handlers(app: Any) -> None:
    """Error handlers for ApiError, the store's errors, FastAPI's and everything else."""

    async def on_api(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ApiError)
        return error_response(exc.status, exc.code, exc.message, exc.headers)

    async def on_store(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, MultiAgentError)
        api = store_error(exc)
        if api.status >= 500:
            log.error("store error: %s", exc)
        return error_response(api.status, api.code, api.message)

    async def on_http(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, HTTPException)
        code = HTTP_CODES.get(exc.status_code, "error")
        message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
        return error_response(exc.status_code, code, message, getattr(exc, "headers", None))

    async def on_validation(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        problems = []
        for err in exc.errors()[:5]:
            where = ".".join(str(p) for p in err.get("loc", ()) if p != "body")
            problems.append(f"{where}: {err.get('msg', 'invalid')}" if where
                            else str(err.get("msg", "invalid")))
        return error_response(422, "invalid_request", "; ".join(problems) or "invalid request")

    async def on_any(_request: Request, exc: Exception) -> JSONResponse:
        log.error("unexpected error: %s: %s", type(exc).__name__, exc, exc_info=exc)
        return error_response(500, "internal", "internal error (logged by the server)")

    app.add_exception_handler(ApiError, on_api)
    app.add_exception_handler(MultiAgentError, on_store)
    app.add_exception_handler(HTTPException, on_http)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(Exception, on_any)
