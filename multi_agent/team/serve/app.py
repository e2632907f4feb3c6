"""The HTTP API of ``multi-agent serve`` (docs/http-api.md is the contract).

``create_app(runner, ...)`` returns the FastAPI application; ``cli.py`` serves it with uvicorn.
Every ``/api`` route except ``/api/info`` (and the OpenAPI schema) needs
``Authorization: Bearer <token>``, or, in ``--user-header`` mode, the header a trusted proxy
sets. A user reaches only their own threads: everything is looked up under the caller's user
id, so another user's thread or run id is simply not found (``404``).
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ag_ui.core import (
    MessagesSnapshotEvent,
    RunFinishedEvent,
    RunStartedEvent,
    StateSnapshotEvent,
)
from fastapi import Depends, FastAPI, Query, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from google.adk.sessions.base_session_service import GetSessionConfig

from ... import __version__
from ...errors import RunConflict
from ...store.api_tokens import TokenError, TokenFile
from ...store.facts import content_texts
from ...store.ids import is_printable_id
from .errors import ApiError, install_handlers
from .limits import BodyLimit
from .runs import ENCODER, RunManager
from .translate import visible_state
from .views import (
    APP_NAME,
    TITLE_KEY,
    decode_cursor,
    encode_cursor,
    lineage,
    run_events,
    run_view,
    set_title,
    thread_events,
    thread_page,
    thread_view,
    top_level,
)

__all__ = ["ServeConfig", "create_app"]

log = logging.getLogger("multi_agent.serve")

WEB_DIR = Path(__file__).resolve().parent / "web"
# No "@": the store names a delegation sub-run "<agent>@<seq>", so such a client run id could
# be one of them (the run then failed half-way on the duplicate run row).
RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}")
MAX_TITLE = 200
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


@dataclass(slots=True)
class ServeConfig:
    """What the server is allowed to do per request."""

    max_body_bytes: int = 1 << 20
    body_timeout: float = 30.0
    max_message_chars: int = 16_000
    run_timeout: float = 300.0
    max_runs_per_user: int = 4
    user_header: str | None = None
    shutdown_grace: float = 10.0


def create_app(runner: Any, *, tokens: TokenFile | None, config: ServeConfig | None = None,
               web_dir: Path | None = WEB_DIR) -> FastAPI:
    """The API on ``runner`` (the team's Runner from ``build_runner``).

    Args:
        runner: the Runner; its session service must be this project's store.
        tokens: the token file (None only with ``config.user_header``).
        config: limits and the authentication mode.
        web_dir: the page's static files, served at ``/`` when the folder exists.
    """
    config = config or ServeConfig()
    if tokens is None and not config.user_header:
        raise ValueError("tokens are required unless user_header is set")
    manager = RunManager(runner, run_timeout=config.run_timeout,
                         max_runs_per_user=config.max_runs_per_user)
    app = FastAPI(title="multi-agent serve", version=__version__,
                  description="The agent team over HTTP: threads, runs as a tree, AG-UI events.",
                  openapi_url="/api/openapi.json", docs_url="/api/docs", redoc_url=None)
    app.state.runner = runner
    app.state.manager = manager
    app.state.config = config
    install_handlers(app)
    store = runner.session_service

    def authenticate(request: Request) -> str:
        if config.user_header:
            return _header_user(request, config.user_header)
        challenge = {"WWW-Authenticate": "Bearer"}
        given = request.headers.getlist("authorization")
        if len(given) > 1:  # which one is meant? (a proxy may have added one)
            raise ApiError(400, "invalid_request",
                           "the request has more than one Authorization header; send one",
                           challenge)
        header = given[0] if given else ""
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise ApiError(401, "unauthorized",
                           "missing bearer token (Authorization: Bearer <token>; make one with "
                           "multi-agent serve token add USER)", challenge)
        assert tokens is not None
        try:
            user = tokens.verify(token.strip())
        except TokenError as exc:  # the message names the server's file: the log only
            log.error("token file unusable: %s", exc)
            raise ApiError(503, "tokens_unavailable",
                           "the server cannot read its token file; try again later (the "
                           "server's log says what is wrong with it)") from None
        if user is None:
            raise ApiError(401, "unauthorized", "unknown or revoked token", challenge)
        return user

    auth = Depends(authenticate)

    async def session_of(user: str, thread_id: str) -> Any:
        if not is_printable_id(thread_id):
            raise ApiError(404, "thread_not_found", "no such thread")
        session = await store.get_session(app_name=APP_NAME, user_id=user, session_id=thread_id,
                                          config=GetSessionConfig(num_recent_events=0))
        if session is None:
            raise ApiError(404, "thread_not_found", f"no thread {thread_id!r}")
        return session

    async def runs_of(user: str, thread_id: str) -> list[Any]:
        return list(await store.list_runs(app_name=APP_NAME, user_id=user,
                                          session_id=thread_id))

    def find_run(runs: list[Any], run_id: str) -> Any:
        found = next((r for r in runs if r.run_id == run_id), None)
        if found is None:
            raise ApiError(404, "run_not_found", f"no run {run_id!r} in this thread")
        return found

    # -- about ------------------------------------------------------------------------------

    @app.get("/api/info")
    async def info() -> dict[str, Any]:
        """What this server runs (no token needed)."""
        from ...models import OfflineRulesModel

        model = getattr(runner.agent, "model", None)
        name = getattr(model, "model", None) or str(model)
        label = getattr(model, "display_label", None) or name
        if isinstance(model, OfflineRulesModel) and label.startswith(f"{name} ("):
            label = label[len(name) + 2:-1]
        return {"app": APP_NAME, "model": name, "offline": isinstance(model, OfflineRulesModel),
                "modelLabel": label, "version": __version__}

    @app.get("/api/me")
    async def me(user: str = auth) -> dict[str, Any]:
        return {"userId": user}

    @app.get("/api/me/memory")
    async def memory(user: str = auth) -> dict[str, Any]:
        """What the assistant remembers about the caller (from ``user:`` state)."""
        state = await store.get_user_state(app_name=APP_NAME, user_id=user)
        prefs = state.get("preferences") if isinstance(state.get("preferences"), dict) else {}
        stats = state.get("agent_stats") if isinstance(state.get("agent_stats"), dict) else {}
        watch = prefs.get("stock_watchlist") if isinstance(prefs.get("stock_watchlist"),
                                                           list) else []
        return {"name": state.get("user_name"), "preferences": prefs, "watchlist": watch,
                "favoriteAgent": prefs.get("favorite_agent"), "agentStats": stats}

    @app.get("/api/me/memory/search")
    async def memory_search(q: str = Query(min_length=1, max_length=1000),
                            limit: int = Query(10, ge=1, le=50),
                            user: str = auth) -> dict[str, Any]:
        """Searches the caller's long memory (earlier turns of every thread)."""
        service = runner.memory_service
        if service is None:
            return {"memories": []}
        found = await service.search_memory(app_name=APP_NAME, user_id=user, query=q)
        items = []
        for entry in list(found.memories)[:limit]:
            items.append({"text": "\n".join(content_texts(entry.content)),
                          "author": entry.author, "timestamp": entry.timestamp})
        return {"memories": items}

    # -- threads ----------------------------------------------------------------------------

    @app.post("/api/threads", status_code=201)
    async def create_thread(request: Request, user: str = auth) -> dict[str, Any]:
        from ..app import new_session_state

        body = await read_json(request, required=False)
        body = {} if body is None else _object(body)  # no body: a thread with defaults
        title = _title(body.get("title"), required=False)
        thread_id = body.get("threadId")
        if thread_id is not None and (
                not isinstance(thread_id, str) or not is_printable_id(thread_id)
                or "/" in thread_id or not thread_id.strip(".")):
            # ("/" and "."/".." would make a thread no /api/threads/{threadId} URL can reach)
            raise ApiError(422, "invalid_request",
                           "threadId must be a string of 1 to 256 printable characters, "
                           "without / and not only dots")
        state = new_session_state()
        if title:
            state[TITLE_KEY] = title
        session = await store.create_session(app_name=APP_NAME, user_id=user, state=state,
                                             session_id=thread_id)
        return thread_view(session, [])

    @app.get("/api/threads")
    async def list_threads(limit: int = Query(20, ge=1, le=100),
                           cursor: str | None = Query(None, max_length=1000),
                           user: str = auth) -> dict[str, Any]:
        page = await thread_page(store, user, limit=limit, cursor=cursor)
        items = [thread_view(s, await runs_of(user, s.id)) for s in page.sessions]
        return {"items": items, "nextCursor": page.next_page_token}

    @app.get("/api/threads/{thread_id}")
    async def get_thread(thread_id: str, user: str = auth) -> dict[str, Any]:
        session = await session_of(user, thread_id)
        return thread_view(session, await runs_of(user, thread_id))

    @app.patch("/api/threads/{thread_id}")
    async def rename_thread(thread_id: str, request: Request, user: str = auth
                            ) -> dict[str, Any]:
        await session_of(user, thread_id)
        body = _object(await read_json(request))
        title = _title(body.get("title"), required=True)
        assert title is not None
        await set_title(store, user, thread_id, title)
        return thread_view(await session_of(user, thread_id), await runs_of(user, thread_id))

    @app.delete("/api/threads/{thread_id}", status_code=204)
    async def delete_thread(thread_id: str, user: str = auth) -> Response:
        await session_of(user, thread_id)
        if manager.busy(user, thread_id):
            raise ApiError(409, "run_in_progress",
                           "a run of this thread is still running; stop it first")
        await store.delete_session(app_name=APP_NAME, user_id=user, session_id=thread_id)
        return Response(status_code=204)

    @app.get("/api/threads/{thread_id}/messages")
    async def messages(thread_id: str, run_id: str | None = Query(None, alias="runId"),
                       user: str = auth) -> dict[str, Any]:
        _path, found = await history(user, thread_id, run_id)
        return {"messages": found}

    async def history(user: str, thread_id: str, run_id: str | None
                      ) -> tuple[list[str], list[dict[str, Any]]]:
        await session_of(user, thread_id)
        runs = await runs_of(user, thread_id)
        if run_id is not None:
            find_run(runs, run_id)
        path = lineage(runs, run_id)
        if not path:
            return path, []
        rows = await thread_events(store, user, thread_id)
        return path, run_events(rows, runs, path)

    @app.get("/api/threads/{thread_id}/connect")
    async def connect(thread_id: str, run_id: str | None = Query(None, alias="runId"),
                      user: str = auth) -> StreamingResponse:
        """Replays the thread: RUN_STARTED, MESSAGES_SNAPSHOT, STATE_SNAPSHOT, RUN_FINISHED."""
        path, found = await history(user, thread_id, run_id)
        session = await session_of(user, thread_id)
        replay = f"replay-{uuid.uuid4()}"
        frames = [
            RunStartedEvent(thread_id=thread_id, run_id=replay,
                            parent_run_id=path[-1] if path else None),
            MessagesSnapshotEvent(messages=found),
            StateSnapshotEvent(snapshot=visible_state(dict(session.state))),
            RunFinishedEvent(thread_id=thread_id, run_id=replay),
        ]

        async def stream() -> Any:
            for frame in frames:
                yield ENCODER.encode(frame)

        return StreamingResponse(stream(), media_type="text/event-stream", headers=SSE_HEADERS)

    # -- runs -------------------------------------------------------------------------------

    @app.post("/api/threads/{thread_id}/runs")
    async def start_run(thread_id: str, request: Request, user: str = auth
                        ) -> StreamingResponse:
        body = _object(await read_json(request))
        await session_of(user, thread_id)
        text, run_id, parent = _run_input(body, thread_id, config.max_message_chars)
        run = manager.claim(user, thread_id, run_id)
        try:
            runs = await runs_of(user, thread_id)
            if any(r.run_id == run_id for r in runs):
                raise ApiError(409, "run_exists",
                               f"this thread already has a run {run_id!r}; use a new runId")
            head = next((r for r in runs if r.is_head), None)
            if head is not None and head.status == "running" and (
                run.started - head.started_at < config.run_timeout
            ):
                raise ApiError(409, "run_in_progress", _busy_elsewhere(
                    head.run_id, head.started_at + config.run_timeout - run.started))
            if parent is not None:
                target = find_run(runs, parent)
                if target.kind in ("delegation", "agent_tool"):
                    raise ApiError(422, "invalid_request",
                                   f"parentRunId {parent!r} is a sub-run of "
                                   f"{target.parent_run_id!r}; continue from that run")
            else:
                parent = head.run_id if head is not None else None
            # Claimed in the store, against the head seen above: of two servers (or a chat)
            # that saw the same head, one starts and the other answers 409.
            try:
                await store.start_run(app_name=APP_NAME, user_id=user, session_id=thread_id,
                                      run_id=run_id, from_run_id=parent,
                                      expected_head=head.run_id if head is not None else None)
            except RunConflict as exc:
                if exc.exists:
                    raise ApiError(409, "run_exists", f"this thread already has a run "
                                   f"{run_id!r}; use a new runId") from None
                raise ApiError(409, "run_in_progress", _busy_elsewhere(
                    exc.head_run_id, config.run_timeout)) from None
            manager.start(run, text=text, parent_run_id=parent)
        except BaseException:
            manager.release(run)
            raise
        return StreamingResponse(run.stream(), media_type="text/event-stream",
                                 headers=SSE_HEADERS)

    @app.get("/api/threads/{thread_id}/runs")
    async def list_thread_runs(thread_id: str, limit: int = Query(50, ge=1, le=200),
                               cursor: str | None = Query(None, max_length=200),
                               user: str = auth) -> dict[str, Any]:
        await session_of(user, thread_id)
        runs = await runs_of(user, thread_id)
        tops = top_level(runs)
        if cursor:
            after = decode_cursor(cursor)
            if not isinstance(after, int) or isinstance(after, bool):
                raise ApiError(400, "invalid_cursor", "cursor is not one this API handed out")
            tops = [r for r in tops if r.first_seq > after]
        page = tops[:limit]
        live = manager.live_ids(user, thread_id)
        return {"items": [run_view(r, runs, live=live) for r in page],
                "nextCursor": encode_cursor(page[-1].first_seq) if len(tops) > limit else None}

    @app.get("/api/threads/{thread_id}/runs/{run_id}")
    async def get_run(thread_id: str, run_id: str, user: str = auth) -> dict[str, Any]:
        await session_of(user, thread_id)
        runs = await runs_of(user, thread_id)
        run = find_run(runs, run_id)
        view = run_view(run, runs, live=manager.live_ids(user, thread_id))
        rows = await thread_events(store, user, thread_id)
        if run.kind == "delegation":
            view["messages"] = run_events(rows, runs, sub_run=run)
        elif run.kind == "agent_tool":
            view["messages"] = []
        else:
            view["messages"] = run_events(rows, runs, [run.run_id])
        return view

    @app.post("/api/threads/{thread_id}/runs/{run_id}/stop", status_code=202)
    async def stop_run(thread_id: str, run_id: str, user: str = auth) -> JSONResponse:
        await session_of(user, thread_id)
        if manager.stop(user, thread_id, run_id):
            return JSONResponse({"runId": run_id, "status": "stopping"}, status_code=202)
        runs = await runs_of(user, thread_id)
        run = find_run(runs, run_id)
        if run.kind in ("delegation", "agent_tool"):
            raise ApiError(409, "run_not_running",
                           f"run {run_id!r} is a sub-run of run {run.parent_run_id!r}; stop "
                           "that run (POST .../runs/{runId}/stop with its id)")
        if run.status != "running":
            raise ApiError(409, "run_not_running",
                           f"run {run_id!r} is not running (it is {run_view(run, runs)['status']})")
        if time.time() - run.started_at < config.run_timeout:
            # Running according to the store, not here: another server process's run (it
            # polls for this and stops within a second or so, then records it), or one whose
            # process died (then the thread is free at the run time limit).
            await store.request_stop(app_name=APP_NAME, user_id=user, session_id=thread_id,
                                     run_id=run_id)
            return JSONResponse({"runId": run_id, "status": "stopping"}, status_code=202)
        # Older than any run may be: its process died. It is recorded as stopped.
        await store.set_run_status(app_name=APP_NAME, user_id=user, session_id=thread_id,
                                   run_id=run_id, status="cancelled",
                                   error="stopped over HTTP (it was not running in the server)")
        return JSONResponse({"runId": run_id, "status": "stopped"}, status_code=202)

    # -- the page ---------------------------------------------------------------------------

    @app.api_route("/api/{rest:path}",
                   methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS",
                            "TRACE"],
                   include_in_schema=False)
    async def unknown(request: Request, rest: str) -> None:
        path = request.url.path
        allowed = sorted({method for route in app.routes
                          if getattr(route, "endpoint", None) is not unknown
                          and getattr(route, "path_regex", None) is not None
                          and route.path_regex.match(path)  # type: ignore[attr-defined]
                          for method in (getattr(route, "methods", None) or ())})
        if allowed:  # the route is there, not for this method
            raise ApiError(405, "method_not_allowed",
                           f"{request.method} is not a method of /api/{rest} (it takes "
                           f"{', '.join(allowed)})", {"Allow": ", ".join(allowed)})
        raise ApiError(404, "not_found", f"no API route /api/{rest}")

    if web_dir is not None and web_dir.is_dir():
        from starlette.staticfiles import StaticFiles

        app.mount("/", StaticFiles(directory=web_dir, html=True), name="web")
    else:
        @app.get("/", include_in_schema=False)
        async def index() -> JSONResponse:
            return JSONResponse({"app": APP_NAME, "api": "/api", "docs": "/api/docs",
                                 "page": "not installed"})

    app.add_middleware(BodyLimit, max_bytes=config.max_body_bytes,
                       timeout=config.body_timeout)
    return app


# -- request bodies -------------------------------------------------------------------------


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


async def read_json(request: Request, *, required: bool = True) -> Any:
    """The request's JSON body (strict: no NaN or Infinity).

    Raises:
        ApiError: 400 for an empty (when required) or malformed body (whatever its declared
            Content-Type, the body is read as JSON: tokens travel in a header, so a browser
            form cannot forge a request).
    """
    body = await request.body()
    if not body.strip():
        if required:
            raise ApiError(400, "invalid_json", "the request needs a JSON body")
        return None
    try:
        return json.loads(body.decode("utf-8"), parse_constant=_reject_constant)
    except UnicodeDecodeError:
        raise ApiError(400, "invalid_json", "the body is not UTF-8 text") from None
    except RecursionError:
        raise ApiError(400, "invalid_json", "the JSON body is nested too deeply") from None
    except ValueError as exc:
        raise ApiError(400, "invalid_json", f"the body is not valid JSON: {exc}") from None


def _object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise ApiError(422, "invalid_request", "the body must be a JSON object")
    return body


def _header_user(request: Request, name: str) -> str:
    """The user id in the trusted proxy's header, read as UTF-8 (Starlette decodes headers
    as Latin-1: ``X-User: é`` would be the user "Ã©", not the ``chat --user é`` one)."""
    wanted = name.lower().encode("latin-1")
    raw = next((value for key, value in request.headers.raw if key.lower() == wanted), None)
    if not raw:
        raise ApiError(401, "unauthorized", f"no {name} header")
    try:
        user = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ApiError(401, "unauthorized", f"the {name} header is not UTF-8 text") from None
    if not is_printable_id(user):
        raise ApiError(401, "unauthorized",
                       f"the {name} header is not a user id (1 to 256 printable characters)")
    return user


def _text_ok(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return "\x00" not in value


def _title(value: Any, *, required: bool) -> str | None:
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ApiError(422, "invalid_request", "title must be a non-empty string")
    if len(value) > MAX_TITLE:
        raise ApiError(422, "invalid_request", f"title is longer than {MAX_TITLE} characters")
    if not _text_ok(value):
        raise ApiError(422, "invalid_request", "title is not valid text")
    return value.strip()


def _busy_elsewhere(run_id: str | None, free_in: float) -> str:
    """The 409 for a thread whose run another process (a server, the chat) is answering."""
    return (f"run {run_id!r} of this thread is still running in another process; wait for it "
            f"to finish or stop it (POST .../runs/{run_id}/stop). If that process died, the "
            f"thread is free {max(1, round(free_in))} s from now (the run time limit).")


def _run_input(body: dict[str, Any], thread_id: str, max_chars: int
               ) -> tuple[str, str, str | None]:
    """The new user message, the run id and the parent run id of a ``RunAgentInput``."""
    body_thread = body.get("threadId")
    if body_thread is not None and body_thread != thread_id:
        raise ApiError(422, "invalid_request", "threadId in the body is not the thread in the URL")
    run_id = body.get("runId")
    if run_id is None:
        run_id = str(uuid.uuid4())
    if not isinstance(run_id, str) or not RUN_ID.fullmatch(run_id):
        raise ApiError(422, "invalid_request",
                       "runId must be a string of 1 to 128 letters, digits or _.:- (first a "
                       "letter or digit; @ is kept for delegation sub-runs)")
    parent = body.get("parentRunId")
    if parent is None and isinstance(body.get("forwardedProps"), dict):
        parent = body["forwardedProps"].get("parentRunId")
    if parent is not None and (not isinstance(parent, str) or not is_printable_id(parent)):
        raise ApiError(422, "invalid_request", "parentRunId must be a run id (a string)")
    messages = body.get("messages")
    if not isinstance(messages, list):
        raise ApiError(422, "invalid_request", "messages must be a list of AG-UI messages")
    last = next((m for m in reversed(messages) if isinstance(m, dict)
                 and m.get("role") == "user"), None)
    if last is None:
        raise ApiError(422, "invalid_request", "messages has no user message to answer")
    content = last.get("content")
    if isinstance(content, list):
        texts = [p.get("text") for p in content if isinstance(p, dict) and p.get("type") == "text"]
        if not all(isinstance(t, str) for t in texts):
            raise ApiError(422, "invalid_request", "a text part's text must be a string")
        content = "\n".join(texts)
    if not isinstance(content, str) or not content.strip():
        raise ApiError(422, "invalid_request", "the last user message has no text")
    if len(content) > max_chars:
        raise ApiError(413, "message_too_large",
                       f"the message is {len(content)} characters long; at most {max_chars}")
    if not _text_ok(content):
        raise ApiError(422, "invalid_request", "the message is not valid text")
    return content, run_id, parent
