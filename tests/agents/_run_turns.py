"""Runs a few user messages through build_runner in its own process; prints JSON on stdout.

    python -m tests.agents._run_turns DB_URL USER_ID [--new-session] MESSAGE...

Output: {"session_id": ..., "replies": [[agent, text], ...], "state": {...}} where state is
the session's state as stored after the last message.
"""

from __future__ import annotations

import asyncio
import json
import sys

from multi_agent.team.app import APP_NAME, build_runner, get_or_create_session, user_message


async def main(db_url: str, user_id: str, messages: list[str]) -> dict:
    runner = build_runner(db_url=db_url, model="offline-rules")
    try:
        session = await get_or_create_session(runner.session_service, user_id=user_id)
        replies = []
        for text in messages:
            last = ("", "")
            async for event in runner.run_async(
                user_id=user_id, session_id=session.id, new_message=user_message(text)
            ):
                if event.content and any(p.text for p in event.content.parts or []):
                    last = (event.author, "".join(p.text or "" for p in event.content.parts))
            replies.append(last)
        final = await runner.session_service.get_session(
            app_name=APP_NAME, user_id=user_id, session_id=session.id
        )
        return {"session_id": session.id, "replies": replies, "state": final.state}
    finally:
        await runner.close()


if __name__ == "__main__":
    db, user, *texts = sys.argv[1:]
    print(json.dumps(asyncio.run(main(db, user, texts))))
