"""``GET /api/threads`` pages on the store's keyset pages (issue 17), through the real
``multi-agent serve`` over HTTP on SQLite and PostgreSQL: changes between pages, cursors bound
to their user, bad cursors and limits."""

from __future__ import annotations

import uuid

import httpx
import pytest

from multi_agent.store.api_tokens import TokenFile

pytestmark = pytest.mark.timeout(240)


def new_thread(client: httpx.Client, title: str) -> str:
    response = client.post("/api/threads", json={"title": title})
    assert response.status_code == 201, response.text
    return str(response.json()["threadId"])


def page(client: httpx.Client, limit: int, cursor: str | None) -> dict:
    params = {"limit": limit, **({"cursor": cursor} if cursor else {})}
    response = client.get("/api/threads", params=params)
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"items", "nextCursor"}
    return body


def bad_cursor(response: httpx.Response) -> None:
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "invalid_cursor"


def test_pages_survive_changes_between_them(deployment) -> None:
    user = f"pages{uuid.uuid4().hex[:6]}"
    token = TokenFile(deployment.tokens).add(user)[0]
    with deployment.server.client(token) as client:
        made = [new_thread(client, f"t{i}") for i in range(8)]  # t7 newest
        first = page(client, 3, None)
        seen = [t["threadId"] for t in first["items"]]
        assert seen == made[:4:-1]
        # Between pages: rename one not shown yet (activity: it moves to the front), delete
        # one not shown yet, create a new one, rename one already shown.
        assert client.patch(f"/api/threads/{made[3]}", json={"title": "moved"}).status_code \
            == 200
        assert client.delete(f"/api/threads/{made[2]}").status_code == 204
        newest = new_thread(client, "new")
        assert client.patch(f"/api/threads/{made[6]}", json={"title": "again"}).status_code \
            == 200
        cursor = first["nextCursor"]
        while cursor:
            body = page(client, 3, cursor)
            seen += [t["threadId"] for t in body["items"]]
            cursor = body["nextCursor"]
        assert seen == [made[7], made[6], made[5], made[4], made[1], made[0]]
        top = [t["threadId"] for t in page(client, 3, None)["items"]]
        assert top == [made[6], newest, made[3]]


def test_cursors_are_bound_to_their_user_and_checked(deployment) -> None:
    users = [f"cur{uuid.uuid4().hex[:6]}" for _ in range(2)]
    tokens = [TokenFile(deployment.tokens).add(u)[0] for u in users]
    with deployment.server.client(tokens[0]) as first, \
            deployment.server.client(tokens[1]) as second:
        for i in range(3):
            new_thread(first, f"a{i}")
            new_thread(second, f"b{i}")
        cursor = page(first, 1, None)["nextCursor"]
        assert cursor
        bad_cursor(second.get("/api/threads", params={"cursor": cursor}))
        bad_cursor(first.get("/api/threads", params={"cursor": cursor[:-3] + "AAA"}))
        bad_cursor(first.get("/api/threads", params={"cursor": "garbage!!"}))
        for limit in (0, 101, "x"):
            response = first.get("/api/threads", params={"limit": limit})
            assert response.status_code == 422, response.text
        assert len(page(first, 1, cursor)["items"]) == 1
