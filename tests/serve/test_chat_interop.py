"""``multi-agent chat`` and ``multi-agent serve`` on one database see each other's work: a
thread is the chat's session, in both directions (the real CLI, piped, on SQLite)."""

from __future__ import annotations

from pathlib import Path

import pytest

from multi_agent.store.api_tokens import TokenFile
from tests.serve._server import cli, run, serve

pytestmark = pytest.mark.timeout(300)


def test_the_chat_and_the_server_share_threads(tmp_path: Path) -> None:
    db = tmp_path / "shared.db"
    tokens = tmp_path / "tokens.json"
    token = TokenFile(tokens).add("ann")[0]
    chat = cli("chat", "--db", str(db), "--user", "ann", cwd=tmp_path,
               stdin="add NVDA to my watchlist\n")
    assert chat.returncode == 0, chat.stderr
    assert "Added NVDA to your watch list" in chat.stdout
    with serve(str(db), tmp=tmp_path, tokens=tokens, slow=False) as server, \
            server.client(token) as client:
        threads = client.get("/api/threads").json()["items"]
        assert len(threads) == 1 and threads[0]["runCount"] == 1
        thread = threads[0]["threadId"]
        assert thread in chat.stdout  # the chat's session id
        messages = client.get(f"/api/threads/{thread}/messages").json()["messages"]
        assert messages[0] == {**messages[0], "role": "user",
                               "content": "add NVDA to my watchlist"}
        assert any(m["role"] == "assistant" and m["name"] == "stock_analyst"
                   and "Added NVDA" in (m.get("content") or "") for m in messages)
        assert any(m["role"] == "tool" for m in messages)
        # the server continues the chat's thread...
        events = run(client, thread, "add AAPL to my watchlist")
        assert events[0]["parentRunId"] == threads[0]["headRunId"]
        # ...and the chat, resuming its most recent session, sees the server's turn
        chat = cli("chat", "--db", str(db), "--user", "ann", cwd=tmp_path,
                   stdin="/history\nshow my watchlist\n")
        assert chat.returncode == 0, chat.stderr
        assert f"Resuming session {thread} (2 interactions so far)" in chat.stdout
        assert "add AAPL to my watchlist" in chat.stdout  # /history lists the server's turn
        assert "NVDA, AAPL" in chat.stdout  # the watch list both wrote
        # ...whose new turn the server reads back
        runs = client.get(f"/api/threads/{thread}/runs").json()["items"]
        assert [r["userText"] for r in runs] == ["add NVDA to my watchlist",
                                                 "add AAPL to my watchlist", "show my watchlist"]
        assert all(r["status"] == "finished" for r in runs)
        replay = client.get(f"/api/threads/{thread}/messages").json()["messages"]
        assert [m["content"] for m in replay if m["role"] == "user"] == [
            "add NVDA to my watchlist", "add AAPL to my watchlist", "show my watchlist"]
        assert client.get("/api/me/memory").json()["watchlist"] == ["NVDA", "AAPL"]
