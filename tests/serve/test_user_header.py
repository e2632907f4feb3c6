"""``multi-agent serve --user-header X-User`` (a trusted proxy names the user), real HTTP.

The header is read as UTF-8: Starlette decodes headers as Latin-1, so ``X-User: é`` was the
user "Ã©", another user than ``multi-agent chat --user é``; a value that is not a user id
was reported as a missing header.
"""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.serve._server import cli, serve


def test_the_proxys_header_names_the_user_in_utf8(tmp_path: Path) -> None:
    db = str(tmp_path / "hdr.db")
    with serve(db, tmp=tmp_path, tokens=tmp_path / "unused.json",
               extra=("--user-header", "X-User")) as server:
        with httpx.Client(base_url=server.url, timeout=60) as client:
            made = client.post("/api/threads", json={"threadId": "t-e", "title": "mine"},
                               headers={"X-User": "é".encode()})
            assert made.status_code == 201, made.text
            me = client.get("/api/me", headers={"X-User": "é".encode()})
            assert me.status_code == 200 and me.json()["userId"] == "é", me.text
            listed = client.get("/api/threads", headers={"X-User": "é".encode()}).json()
            assert [t["threadId"] for t in listed["items"]] == ["t-e"]
            for headers, says in (({}, "no X-User header"),
                                  ({"X-User": b"\xff\xfe"}, "not UTF-8"),
                                  ({"X-User": "x" * 300}, "not a user id")):
                response = client.get("/api/threads", headers=headers)
                assert response.status_code == 401, response.text
                assert says in response.json()["error"]["message"]
        assert "Traceback" not in server.stderr()
    # The same user as the CLI's --user é.
    sessions = cli("sessions", "--user", "é", "--db", db, cwd=tmp_path)
    assert sessions.returncode == 0 and "t-e" in sessions.stdout, sessions.stderr
