"""``multi-agent chat``: talk to the team; it remembers you across sessions and restarts.

On a terminal it uses prompt_toolkit (line editing, history); when stdin is not a terminal it
reads one message per line and answers each, so it can be scripted::

    printf 'tell me a joke about python\\n/prefs\\n' | multi-agent chat --user ann

By default each answer shows who answered (``[funny_nerd] ...``) after the delegation that
led there (``  ↪ manager → funny_nerd``); ``--verbose`` adds the tool calls and state changes.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import sys

from ..cli import add_common, is_terminal


def register(sub: argparse._SubParsersAction) -> None:
    """Adds ``chat``."""
    p = sub.add_parser(
        "chat",
        help="talk to the assistant (resumes your most recent session)",
        description="Talk to the multi-agent assistant. By default it resumes your most recent "
        "session and greets you with what it remembers. Each answer shows which agent the "
        "manager handed the message to, then the answer; --verbose (or /verbose) also shows "
        "the tool calls and state changes, /details shows them for the last answer. Type "
        "/help inside for the commands.\n\n"
        "When stdin is not a terminal it reads one message per line, echoes it and answers "
        "it, so it can be scripted.",
        epilog="Examples:\n"
        "  multi-agent chat --user ann\n"
        "  multi-agent chat --user ann --new --verbose\n"
        "  printf 'tell me a joke about python\\n/prefs\\n' | multi-agent chat --user ann",
    )
    add_common(p)
    group = p.add_mutually_exclusive_group()
    group.add_argument("--session", help="continue this session id")
    group.add_argument("--new", action="store_true", help="start a new session")
    p.add_argument(
        "--model",
        help="model: 'offline' (default; built-in rules, not an LLM), a Gemini name (needs "
        "GOOGLE_API_KEY) or a LiteLLM string like ollama_chat/qwen2.5 (env MULTI_AGENT_MODEL)",
    )
    shown = p.add_mutually_exclusive_group()
    shown.add_argument("-v", "--verbose", action="store_true",
                       help="also show each tool call, its result and the state it changed")
    shown.add_argument("-q", "--quiet", action="store_true",
                       help="show only the answers (not which agent the manager handed to)")
    p.add_argument(
        "--memory-search",
        choices=["fulltext", "semantic", "hybrid"],
        help="how long memory is searched: full-text (default), or with sentence embeddings "
        "(semantic, hybrid; needs the [semantic] extra; the model loads in the background) "
        "(env MULTI_AGENT_MEMORY_SEARCH)",
    )
    p.set_defaults(func=cmd_chat)


def cmd_chat(args: argparse.Namespace) -> int:
    from .chat_session import ChatSession

    interactive = is_terminal(sys.stdin) and is_terminal(sys.stdout)
    if sys.stdin is None:  # started with stdin closed (<&-): no messages, as from /dev/null
        sys.stdin = io.StringIO()
    chat = ChatSession(
        db_url=args.db, user_id=args.user, model=args.model, quiet=args.quiet,
        verbose=args.verbose, memory_search=args.memory_search, interactive=interactive,
    )
    return asyncio.run(chat.main(session_id=args.session, new=args.new))
