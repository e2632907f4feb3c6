"""``multi-agent chat``: talk to the team; it remembers you across sessions and restarts.

On a terminal it uses prompt_toolkit (line editing, history); when stdin is not a terminal it
reads one message per line and answers each, so it can be scripted::

    printf 'tell me a joke about python\\n/prefs\\n' | multi-agent chat --user ann
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

from . import add_common

APP_NAME = "multi_agent"

HELP = """\
Commands:
  /help            this help
  /sessions        your sessions (most recent last)
  /new             start a new session (your preferences carry over)
  /switch ID       continue another of your sessions
  /state           the state this session sees (app:, user: and session keys)
  /history         what we talked about in this session
  /prefs           your preferences (favourite agent, joke topics, watch list)
  /stats           how often each agent helped you
  /runs            this session's runs as a tree
  /branch RUN_ID   continue from the end of an earlier run (the later runs stay stored)
  /quit            leave (Ctrl-D and Ctrl-C at the prompt work too; everything is saved)
Anything else is a message to the assistant. Ctrl-C while it answers stops that answer
(what was said so far is kept; the run shows as cancelled in /runs)."""


def register(sub: argparse._SubParsersAction) -> None:
    """Adds ``chat``."""
    p = sub.add_parser(
        "chat",
        help="talk to the assistant (resumes your most recent session)",
        description="Talk to the multi-agent assistant. By default it resumes your most recent "
        "session and greets you with what it remembers. Type /help inside for commands.",
        epilog="Examples: multi-agent chat | multi-agent chat --user ann --new | "
        "echo 'tell me a joke' | multi-agent chat --quiet",
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
    p.add_argument("--quiet", action="store_true", help="hide tool calls and state changes")
    p.add_argument(
        "--memory-search",
        choices=["fulltext", "semantic", "hybrid"],
        help="how long memory is searched: full-text (default), or with sentence embeddings "
        "(semantic, hybrid; needs the [semantic] extra) (env MULTI_AGENT_MEMORY_SEARCH)",
    )
    p.set_defaults(func=cmd_chat)


def cmd_chat(args: argparse.Namespace) -> int:
    from .chat_session import ChatSession

    chat = ChatSession(
        db_url=args.db, user_id=args.user, model=args.model, quiet=args.quiet,
        memory_search=args.memory_search, interactive=sys.stdin.isatty() and sys.stdout.isatty(),
    )
    return asyncio.run(chat.main(session_id=args.session, new=args.new))


def to_json(value: Any) -> str:
    """Pretty JSON for the slash commands."""
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True, default=str)
