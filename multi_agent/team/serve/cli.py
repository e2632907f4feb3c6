"""``multi-agent serve``: the team over HTTP; ``multi-agent serve token add|list|revoke``."""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import socket
import sys
from typing import Any

from ...cli import add_common, fail, normalise_db

__all__ = ["register"]

DESCRIPTION = """\
Serves the agent team over HTTP on the same database as multi-agent chat: threads (the chat's
sessions), runs as a tree with branching, AG-UI event streams, replay after a refresh, and
per-user access with bearer tokens. The API is under /api (docs/http-api.md; OpenAPI schema at
/api/openapi.json), the web page at /. It binds 127.0.0.1 unless --host says otherwise.

Make a token for each person first (multi-agent serve token add USER); it is printed once."""

EXAMPLES = """\
To start it (Ctrl-C stops it; runs going then may finish for 10 s):
  multi-agent serve --port 8000
  multi-agent serve --db postgresql+asyncpg://user:pw@host/db --host 0.0.0.0
  curl -H "Authorization: Bearer $TOKEN" http://127.0.0.1:8000/api/threads

Examples:
  multi-agent serve token add ann
  multi-agent serve token list"""


def register(sub: argparse._SubParsersAction) -> None:
    """Adds ``serve`` and its ``token`` commands."""
    p = sub.add_parser("serve", help="serve the team over HTTP (AG-UI, per-user tokens)",
                       description=DESCRIPTION, epilog=EXAMPLES)
    add_common(p, user=False)
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000,
                   help="port (default 8000; 0 picks a free one and prints it)")
    p.add_argument("--model", help="model for every agent (as for chat; env MULTI_AGENT_MODEL)")
    p.add_argument("--tokens", help="token file (default: $MULTI_AGENT_TOKENS_FILE, else "
                   "multi_agent_tokens.json beside the SQLite file, or here for PostgreSQL)")
    p.add_argument("--user-header", metavar="NAME",
                   help="trust this request header for the user id instead of tokens (only "
                   "behind a proxy that authenticates people and sets it; never expose the "
                   "server directly in this mode)")
    p.add_argument("--max-body", type=int, default=1 << 20, metavar="BYTES",
                   help="largest request body (default 1 MiB; larger: 413)")
    p.add_argument("--body-timeout", type=float, default=30.0, metavar="SECONDS",
                   help="time a client has to send a request's body (default 30; slower: 408)")
    p.add_argument("--max-message", type=int, default=16_000, metavar="CHARS",
                   help="longest user message (default 16000 characters; longer: 413)")
    p.add_argument("--run-timeout", type=float, default=300.0, metavar="SECONDS",
                   help="a run longer than this is stopped (default 300)")
    p.add_argument("--max-runs-per-user", type=int, default=4, metavar="N",
                   help="runs one user may have going at once (default 4; more: 429)")
    p.add_argument("--memory-search", choices=["fulltext", "semantic", "hybrid"],
                   help="how long memory is searched (as for chat)")
    p.set_defaults(func=cmd_serve)

    tokens = p.add_subparsers(dest="serve_command", metavar="COMMAND")
    t = tokens.add_parser("token", help="manage API tokens (add, list, revoke)",
                          description="API tokens: each belongs to one user id. The file "
                          "keeps only a salted hash of each (mode 0600); a token is printed "
                          "once, when it is made.",
                          epilog="Examples:\n  multi-agent serve token add ann\n"
                          "  multi-agent serve token list\n"
                          "  multi-agent serve token revoke ann")
    t.set_defaults(func=lambda args: (t.print_help(sys.stderr), 2)[1])
    actions = t.add_subparsers(dest="token_command", metavar="ACTION")
    add = actions.add_parser("add", help="make a token for USER (printed once)",
                             description="Makes a token for USER and prints it (only now).",
                             epilog="Example:\n  multi-agent serve token add ann")
    add.add_argument("user", metavar="USER", help="the user id the token acts as")
    add.set_defaults(func=cmd_token_add)
    listed = actions.add_parser("list", help="the tokens (id, user, created)",
                                description="Lists the tokens: id, user, when made.",
                                epilog="Example:\n  multi-agent serve token list")
    listed.set_defaults(func=cmd_token_list)
    revoke = actions.add_parser("revoke", help="revoke a user's tokens, or one by id prefix",
                                description="Revokes every token of USER, or the tokens whose "
                                "id starts with PREFIX. Takes effect on the next request.",
                                epilog="Example:\n  multi-agent serve token revoke ann")
    revoke.add_argument("what", metavar="USER|PREFIX")
    revoke.set_defaults(func=cmd_token_revoke)
    for child in (add, listed, revoke):
        # SUPPRESS: "serve --db X token add ann" keeps X (a child's default would replace it)
        child.add_argument("--db", default=argparse.SUPPRESS,
                           help="the database the server uses (where the token file lives by "
                           "default)")
        child.add_argument("--tokens", default=argparse.SUPPRESS, help="the token file")


def _token_file(args: argparse.Namespace) -> Any:
    from ...cli import default_db
    from ...store.api_tokens import TokenFile, default_tokens_path

    path = getattr(args, "tokens", None)
    if not path:
        path = default_tokens_path(normalise_db(getattr(args, "db", None) or default_db()))
    return TokenFile(path)


def cmd_token_add(args: argparse.Namespace) -> int:
    from ...store.api_tokens import TokenError
    from ...store.ids import check_id

    try:
        check_id("user id", args.user)
    except ValueError as exc:
        return fail(str(exc))
    tokens = _token_file(args)
    try:
        token, record = tokens.add(args.user)
    except TokenError as exc:
        return fail(str(exc))
    print(token)
    print(f"Token {record.id} for user {record.user} saved in {tokens.path}. It is shown only "
          "now: keep it like a password.", file=sys.stderr)
    return 0


def cmd_token_list(args: argparse.Namespace) -> int:
    from ...store.api_tokens import TokenError

    tokens = _token_file(args)
    try:
        records = tokens.records()
    except TokenError as exc:
        return fail(str(exc))
    if not records:
        print(f"No tokens in {tokens.path} (multi-agent serve token add USER makes one).",
              file=sys.stderr)
        return 0
    width = max(4, *(len(r.user) for r in records))
    print(f"{'id':8}  {'user':{width}}  created")
    for r in records:
        print(f"{r.id:8}  {r.user:{width}}  {r.created}")
    return 0


def cmd_token_revoke(args: argparse.Namespace) -> int:
    from ...store.api_tokens import TokenError

    tokens = _token_file(args)
    try:
        gone = tokens.revoke(args.what)
    except TokenError as exc:
        return fail(str(exc))
    for r in gone:
        print(f"Revoked token {r.id} of user {r.user}.")
    return 0


def _listen(host: str, port: int) -> socket.socket:
    """A listening socket on host:port (port 0: a free one)."""
    try:
        family = socket.AF_INET6 if ipaddress.ip_address(host).version == 6 else socket.AF_INET
    except ValueError:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def cmd_serve(args: argparse.Namespace) -> int:
    from ...store.api_tokens import TokenError
    from ..chat_session import quiet_library_logs

    if args.port < 0 or args.port > 65535:
        return fail(f"--port must be 0 to 65535, got {args.port}")
    for name in ("max_body", "max_message", "max_runs_per_user"):
        if getattr(args, name) < 1:
            return fail(f"--{name.replace('_', '-')} must be at least 1")
    for name in ("run_timeout", "body_timeout"):
        if not getattr(args, name) > 0:  # (NaN too)
            return fail(f"--{name.replace('_', '-')} must be a positive number of seconds")
    tokens = None
    if not args.user_header:
        tokens = _token_file(args)
        try:
            count = len(tokens.records())
        except TokenError as exc:
            return fail(str(exc))
    try:
        sock = _listen(args.host, args.port)
    except (OSError, socket.gaierror) as exc:
        return fail(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}")
    quiet_library_logs()
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    if tokens is not None:
        access = (f"tokens: {tokens.path} ({count} token{'s' if count != 1 else ''}"
                  + ("; make one with: multi-agent serve token add USER)" if not count else ")"))
    else:
        access = f"user from the {args.user_header} header (trusted proxy mode)"
    try:
        return asyncio.run(_serve(args, sock, tokens, f"http://{shown}:{port}", access))
    finally:
        sock.close()


async def _serve(args: argparse.Namespace, sock: socket.socket, tokens: Any, url: str,
                 access: str) -> int:
    import uvicorn

    from ...store import DatabaseSessionService
    from ...store.gcpause import settle_heap
    from ..app import build_runner
    from .app import ServeConfig, create_app

    config = ServeConfig(max_body_bytes=args.max_body, body_timeout=args.body_timeout,
                         max_message_chars=args.max_message,
                         run_timeout=args.run_timeout, max_runs_per_user=args.max_runs_per_user,
                         user_header=args.user_header)
    # merge: a title written while a run appends does not make the run's copy stale
    store = DatabaseSessionService(args.db, on_stale="merge")
    runner = None
    try:
        await store.prepare()
        runner = build_runner(session_service=store, model=args.model,
                              memory_search=args.memory_search)
        app = create_app(runner, tokens=tokens, config=config)
        server = uvicorn.Server(uvicorn.Config(
            app, log_level="warning", access_log=False, lifespan="off",
            timeout_graceful_shutdown=int(config.shutdown_grace) + 5,
        ))
        settle_heap()  # start-up's objects out of the collector's way (see settle_heap)
        print(f"Serving the team on {url} (API {url}/api, page {url}/); {access}. "
              "Ctrl-C stops.", flush=True)
        manager = app.state.manager

        async def stop_runs_on_exit() -> None:
            # uvicorn's graceful shutdown waits for open responses, and a run's stream stays
            # open until the run ends: so the runs are wound down (manager.shutdown) as soon
            # as uvicorn starts to exit (Ctrl-C, SIGTERM), not after it has.
            while not server.should_exit:  # noqa: ASYNC110 - uvicorn sets a plain attribute
                await asyncio.sleep(0.1)
            await manager.shutdown(config.shutdown_grace)

        winding_down = asyncio.create_task(stop_runs_on_exit(), name="stop runs on exit")
        try:
            await server.serve(sockets=[sock])
            server.should_exit = True  # (serve may also end by itself)
            await winding_down
        finally:
            winding_down.cancel()
    finally:
        try:
            if runner is not None:
                await runner.close()
        finally:
            await store.close()
    print("Stopped. Everything is saved.", flush=True)
    return 0

