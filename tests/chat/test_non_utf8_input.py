"""A piped line that is not UTF-8 (``multi-agent chat < latin1.txt``).

Python reads such bytes as lone surrogates; the store then refused the message with its own
JSON error ("Event ... cannot be stored as JSON (... surrogates not allowed)"). The chat now
says what is wrong in the user's words, sends nothing, goes on with the next line, and exits 1.
"""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

import pytest

from tests.chat._util import APP, MULTI_AGENT, TIMEOUT, clean_env, sqlite_url

pytestmark = pytest.mark.timeout(300)


def test_a_line_that_is_not_utf8(tmp_path: Path) -> None:
    db = tmp_path / "x.db"
    lines = "Café au lait\n".encode("latin-1") + "my name is Ada\n/quit\n".encode()
    done = subprocess.run(
        [MULTI_AGENT, "chat", "--db", sqlite_url(db), "--user", "lat", "--new"],
        input=lines, capture_output=True, timeout=TIMEOUT * 3, cwd=tmp_path, env=clean_env())
    out = done.stdout.decode("utf-8", "replace") + done.stderr.decode("utf-8", "replace")
    assert done.returncode == 1, out
    assert "That line is not UTF-8 text (0xe9), so it was not sent." in out
    assert "Traceback" not in out and "JSON" not in out and "surrogate" not in out
    assert "Ada" in out  # the next line was answered

    from multi_agent import DatabaseSessionService

    async def stored() -> list[str]:
        async with DatabaseSessionService(sqlite_url(db)) as store:
            listed = await store.list_sessions(app_name=APP, user_id="lat")
            session = await store.get_session(app_name=APP, user_id="lat",
                                              session_id=listed.sessions[0].id)
            return [e.content.parts[0].text for e in session.events
                    if e.author == "user" and e.content and e.content.parts]

    assert asyncio.run(stored()) == ["my name is Ada"]
