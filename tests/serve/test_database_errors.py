"""A database failure over HTTP: ``503 database_unavailable`` naming the cause, never the
server's database path or host (it went to the client in the message before; the server's
log has it)."""

from __future__ import annotations

from pathlib import Path

from multi_agent.store.api_tokens import TokenFile
from tests.serve._server import serve


def test_a_deleted_database_file_is_503_without_its_path(tmp_path: Path) -> None:
    db = tmp_path / "secret-place" / "serve.db"
    db.parent.mkdir()
    tokens = tmp_path / "tokens.json"
    token, _ = TokenFile(tokens).add("ann")
    with serve(str(db), tmp=tmp_path, tokens=tokens, slow=False) as server:
        with server.client(token) as client:
            assert client.post("/api/threads", json={"title": "before"}).status_code == 201
            for path in db.parent.glob("serve.db*"):
                path.unlink()
            response = client.post("/api/threads", json={"title": "after"})
            assert response.status_code == 503, response.text
            error = response.json()["error"]
            assert error["code"] == "database_unavailable"
            assert "(deleted)" in error["message"] and "secret-place" not in response.text
        log = server.stderr()
        assert "secret-place" in log and "Traceback" not in log
