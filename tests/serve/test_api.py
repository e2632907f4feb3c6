"""The real ``multi-agent serve`` over real HTTP, on SQLite and PostgreSQL: every endpoint,
access rules, the run tree (branching, paging), stop, 409, a client that leaves mid-run, replay.
"""

from __future__ import annotations

import json
import threading
import uuid
from typing import Any

import httpx
import pytest

from multi_agent.store.api_tokens import TokenFile
from tests.serve._server import run, run_input, sse, wait_for

pytestmark = pytest.mark.timeout(240)


def types_of(events: list[dict[str, Any]]) -> list[str]:
    return [e["type"] for e in events]


def new_thread(client: httpx.Client, title: str | None = None) -> str:
    response = client.post("/api/threads", json={"title": title} if title else {})
    assert response.status_code == 201, response.text
    return str(response.json()["threadId"])


def error_code(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, (response.status_code, response.text)
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}, body
    assert "Traceback" not in response.text
    return str(body["error"]["code"])


def test_info_and_tokens(deployment) -> None:
    server = deployment.server
    with server.client() as anon:
        info = anon.get("/api/info").json()
        assert info == {"app": "multi_agent", "model": "offline-rules", "offline": True,
                        "modelLabel": "built-in offline rules model, not an LLM",
                        "version": info["version"]}
        assert error_code(anon.get("/api/me"), 401) == "unauthorized"
        assert anon.get("/api/me").headers["www-authenticate"] == "Bearer"
        for header in ("Bearer", "Basic abc", f"Bearer {deployment.ann}x", "Bearer mat_x_y",
                       f"Bearer {deployment.carol}"):  # carol's token was revoked
            assert error_code(anon.get("/api/threads", headers={"Authorization": header}),
                              401) == "unauthorized", header
        assert anon.get("/api/openapi.json").json()["info"]["title"] == "multi-agent serve"
    with server.client(deployment.ann) as ann:
        assert ann.get("/api/me").json() == {"userId": "ann"}
    # A token made and revoked while the server runs: accepted, then refused (the CLI's
    # token commands are driven in test_readme_serve.py).
    tokens = TokenFile(deployment.tokens)
    dave, record = tokens.add("dave")
    with server.client(dave) as client:
        assert client.get("/api/me").json() == {"userId": "dave"}
        stored = deployment.tokens.read_text()
        assert dave.split("_", 2)[2] not in stored and record.hash in stored
        assert (deployment.tokens.stat().st_mode & 0o777) == 0o600
        tokens.revoke(record.id[:5])
        assert error_code(client.get("/api/me"), 401) == "unauthorized"


def test_threads_crud_and_paging(deployment) -> None:
    user = f"pager{uuid.uuid4().hex[:6]}"
    token = TokenFile(deployment.tokens).add(user)[0]
    with deployment.server.client(token) as client:
        assert client.get("/api/threads").json() == {"items": [], "nextCursor": None}
        made = [new_thread(client, f"t{i}") for i in range(5)]
        one = client.get(f"/api/threads/{made[0]}").json()
        assert one["threadId"] == made[0] and one["title"] == "t0"
        assert one["headRunId"] is None and one["runCount"] == 0
        assert one["createdAt"].endswith("Z") and one["updatedAt"].endswith("Z")
        seen, cursor, pages = [], None, 0
        while True:
            params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
            page = client.get("/api/threads", params=params).json()
            seen += [t["threadId"] for t in page["items"]]
            pages += 1
            cursor = page["nextCursor"]
            if cursor is None:
                break
        assert pages == 3 and seen == made[::-1]  # newest activity first
        renamed = client.patch(f"/api/threads/{made[0]}", json={"title": "  Renamed  "})
        assert renamed.status_code == 200 and renamed.json()["title"] == "Renamed"
        assert client.get(f"/api/threads/{made[0]}").json()["title"] == "Renamed"
        # renaming is activity: the thread comes first now
        assert client.get("/api/threads", params={"limit": 1}).json()["items"][0][
            "threadId"] == made[0]
        assert error_code(client.patch(f"/api/threads/{made[0]}", json={"title": ""}),
                          422) == "invalid_request"
        assert client.delete(f"/api/threads/{made[1]}").status_code == 204
        assert error_code(client.get(f"/api/threads/{made[1]}"), 404) == "thread_not_found"
        assert error_code(client.delete(f"/api/threads/{made[1]}"), 404) == "thread_not_found"
        mine = client.post("/api/threads", json={"threadId": "my-own-id", "title": "x"})
        assert mine.status_code == 201 and mine.json()["threadId"] == "my-own-id"
        assert error_code(client.post("/api/threads", json={"threadId": "my-own-id"}),
                          409) == "thread_exists"
        assert len(client.get("/api/threads", params={"limit": 100}).json()["items"]) == 5


def test_a_run_streams_ag_ui_events(deployment) -> None:
    with deployment.server.client(deployment.ann) as client:
        thread = new_thread(client)
        events = run(client, thread, "add NVDA to my watchlist", run_id="first-run")
        kinds = types_of(events)
        assert kinds[:2] == ["RUN_STARTED", "STATE_SNAPSHOT"] and kinds[-1] == "RUN_FINISHED"
        started = events[0]
        assert started["threadId"] == thread and started["runId"] == "first-run"
        assert "parentRunId" not in started
        delegation = next(e for e in events if e["type"] == "CUSTOM"
                          and e["name"] == "delegation")
        assert delegation["value"] == {"from": "manager", "to": "stock_analyst"}
        steps = [(e["type"], e["stepName"]) for e in events if e["type"].startswith("STEP_")]
        assert steps == [("STEP_STARTED", "stock_analyst"), ("STEP_FINISHED", "stock_analyst")]
        call = next(e for e in events if e["type"] == "TOOL_CALL_START"
                    and e["toolCallName"] == "add_to_stock_watchlist")
        args = next(e for e in events if e["type"] == "TOOL_CALL_ARGS"
                    and e["toolCallId"] == call["toolCallId"])
        assert json.loads(args["delta"]) == {"ticker": "NVDA"}
        result = next(e for e in events if e["type"] == "TOOL_CALL_RESULT"
                      and e["toolCallId"] == call["toolCallId"])
        assert json.loads(result["content"])["stock_watchlist"] == ["NVDA"]
        start = next(e for e in events if e["type"] == "TEXT_MESSAGE_START")
        assert start["role"] == "assistant" and start["name"] == "stock_analyst"
        agent = [e for e in events if e["type"] == "CUSTOM" and e["name"] == "agent"
                 and e["value"]["messageId"] == start["messageId"]]
        assert agent and agent[0]["value"]["agent"] == "stock_analyst"
        assert kinds.index("CUSTOM") < kinds.index("TEXT_MESSAGE_START")
        text = "".join(e["delta"] for e in events if e["type"] == "TEXT_MESSAGE_CONTENT")
        assert "Added NVDA to your watch list" in text
        patches = [op for e in events if e["type"] == "STATE_DELTA" for op in e["delta"]]
        assert any(op["path"] == "/user:preferences"
                   and op["value"]["stock_watchlist"] == ["NVDA"] for op in patches)
        assert not any(op["path"].startswith(("/app:", "/temp:")) for op in patches)
        usage = events[-1]["usage"][0]
        assert usage["inputTokens"] > 0 and usage["outputTokens"] > 0

        second = run(client, thread, "tell me a joke about python")
        assert second[0]["parentRunId"] == "first-run"
        runs = client.get(f"/api/threads/{thread}/runs").json()
        assert runs["nextCursor"] is None and len(runs["items"]) == 2
        first, later = runs["items"]
        assert first["runId"] == "first-run" and first["status"] == "finished"
        assert first["agent"] == "stock_analyst" and first["parentRunId"] is None
        assert first["userText"] == "add NVDA to my watchlist"
        assert first["usage"]["promptTokens"] > 0 and first["finishedAt"] >= first["startedAt"]
        assert [s["agent"] for s in first["subRuns"]] == ["stock_analyst"]
        assert later["parentRunId"] == "first-run" and later["agent"] == "funny_nerd"
        assert later["isHead"] and not first["isHead"]

        one = client.get(f"/api/threads/{thread}/runs/first-run").json()
        assert one["status"] == "finished" and one["subRuns"][0]["kind"] == "delegation"
        roles = [(m["role"], m.get("name")) for m in one["messages"]]
        assert roles[0] == ("user", None) and ("assistant", "stock_analyst") in roles
        assert ("tool", None) in roles and all(m["metadata"]["runId"] == "first-run"
                                                for m in one["messages"])
        sub = one["subRuns"][0]["runId"]
        sub_view = client.get(f"/api/threads/{thread}/runs/{sub}").json()
        assert {m.get("name") for m in sub_view["messages"] if m["role"] == "assistant"} == {
            "stock_analyst"}
        memory = client.get("/api/me/memory").json()
        assert "NVDA" in memory["watchlist"] and "python" in memory["preferences"][
            "joke_preferences"]
        assert memory["agentStats"]["stock_analyst"]["delegations"] >= 1
        found = client.get("/api/me/memory/search", params={"q": "NVDA"}).json()["memories"]
        assert any("NVDA" in m["text"] for m in found)
        thread_view = client.get(f"/api/threads/{thread}").json()
        assert thread_view["runCount"] == 2 and thread_view["headRunId"] == later["runId"]
        assert thread_view["title"] == "add NVDA to my watchlist"  # no title: the first message


def test_branch_from_the_first_run_keeps_the_original(deployment) -> None:
    with deployment.server.client(deployment.ann) as client:
        thread = new_thread(client, "branching")
        run(client, thread, "add AAPL to my watchlist", run_id="r1")
        run(client, thread, "tell me a joke about python", run_id="r2")
        events = run(client, thread, "show my watchlist", run_id="r3", parent="r1")
        assert events[0]["parentRunId"] == "r1"
        tree = {r["runId"]: r for r in client.get(f"/api/threads/{thread}/runs").json()["items"]}
        assert tree["r2"]["parentRunId"] == "r1" and tree["r3"]["parentRunId"] == "r1"  # a fork
        assert tree["r2"]["status"] == "finished" and not tree["r2"]["onPath"]  # kept, off path
        assert tree["r3"]["isHead"] and tree["r1"]["onPath"]
        head = client.get(f"/api/threads/{thread}/messages").json()["messages"]
        assert {m["metadata"]["runId"] for m in head} == {"r1", "r3"}
        assert [m["content"] for m in head if m["role"] == "user"] == [
            "add AAPL to my watchlist", "show my watchlist"]
        old = client.get(f"/api/threads/{thread}/messages", params={"runId": "r2"}).json()
        assert {m["metadata"]["runId"] for m in old["messages"]} == {"r1", "r2"}
        # switching back to the original branch, then continuing it
        events = run(client, thread, "what joke topics are there?", run_id="r4", parent="r2")
        assert events[0]["parentRunId"] == "r2"
        head = client.get(f"/api/threads/{thread}/messages").json()["messages"]
        assert {m["metadata"]["runId"] for m in head} == {"r1", "r2", "r4"}
        # a run without parentRunId continues the head
        assert run(client, thread, "show my watchlist")[0]["parentRunId"] == "r4"
        bad = client.post(f"/api/threads/{thread}/runs",
                          json=run_input(thread, "hi", parent="no-such-run"))
        assert error_code(bad, 404) == "run_not_found"
        sub = tree["r1"]["subRuns"][0]["runId"]
        bad = client.post(f"/api/threads/{thread}/runs", json=run_input(thread, "hi", parent=sub))
        assert error_code(bad, 422) == "invalid_request"
        again = client.post(f"/api/threads/{thread}/runs",
                            json=run_input(thread, "hi", run_id="r1"))
        assert error_code(again, 409) == "run_exists"
        paged, cursor = [], None
        while True:
            page = client.get(f"/api/threads/{thread}/runs",
                              params={"limit": 2, **({"cursor": cursor} if cursor else {})}).json()
            paged += [r["runId"] for r in page["items"]]
            cursor = page["nextCursor"]
            if not cursor:
                break
        assert paged[:4] == ["r1", "r2", "r3", "r4"] and len(paged) == 5


def test_replay_returns_the_whole_conversation(deployment) -> None:
    with deployment.server.client(deployment.ann) as client:
        thread = new_thread(client)
        live = run(client, thread, "add MSFT to my watchlist")
        live += run(client, thread, "tell me a joke about python")
        replay = client.get(f"/api/threads/{thread}/connect")
        events = sse(replay)
        assert types_of(events) == ["RUN_STARTED", "MESSAGES_SNAPSHOT", "STATE_SNAPSHOT",
                                    "RUN_FINISHED"]
        messages = events[1]["messages"]
        assert messages == client.get(f"/api/threads/{thread}/messages").json()["messages"]
        roles = {m["role"] for m in messages}
        assert roles == {"user", "assistant", "tool"}
        assert all(m.get("name") for m in messages if m["role"] == "assistant")
        # every message the live stream built is in the replay, with the same id and text
        by_id = {m["id"]: m for m in messages}
        for e in live:
            if e["type"] == "TEXT_MESSAGE_CONTENT":
                assert by_id[e["messageId"]]["content"] == e["delta"]
            if e["type"] == "TOOL_CALL_RESULT":
                assert by_id[e["messageId"]]["content"] == e["content"]
        assert "MSFT" in json.dumps(events[2]["snapshot"]["user:preferences"])
        assert events[0]["parentRunId"] == live[-1]["runId"]


def test_stop_and_409_while_a_run_is_running(deployment) -> None:
    with deployment.server.client(deployment.ann) as client, \
            deployment.server.client(deployment.ann) as other:
        thread = new_thread(client)
        marker = f"stall30-{uuid.uuid4().hex[:6]}"
        body = run_input(thread, f"tell me a joke about python {marker}", run_id="slow-run")
        seen: list[dict[str, Any]] = []
        with client.stream("POST", f"/api/threads/{thread}/runs", json=body) as response:
            assert response.status_code == 200
            lines = response.iter_lines()
            for line in lines:
                if line.startswith("data: "):
                    seen.append(json.loads(line[6:]))
                    if seen[-1]["type"] == "STEP_STARTED":  # handed to funny_nerd, who stalls
                        break
            busy = other.post(f"/api/threads/{thread}/runs", json=run_input(thread, "hi"))
            assert error_code(busy, 409) == "run_in_progress"
            assert error_code(other.delete(f"/api/threads/{thread}"), 409) == "run_in_progress"
            assert other.get(f"/api/threads/{thread}/runs/slow-run").json()["status"] == "running"
            assert error_code(other.post(f"/api/threads/{thread}/runs/nope/stop"),
                              404) == "run_not_found"
            stop = other.post(f"/api/threads/{thread}/runs/slow-run/stop")
            assert stop.status_code == 202 and stop.json()["status"] == "stopping"
            for line in lines:
                if line.startswith("data: "):
                    seen.append(json.loads(line[6:]))
        assert seen[-1]["type"] == "RUN_FINISHED" and seen[-1]["outcome"] == {"type": "cancelled"}
        view = other.get(f"/api/threads/{thread}/runs/slow-run").json()
        assert view["status"] == "stopped" and view["finishedAt"] is not None
        assert error_code(other.post(f"/api/threads/{thread}/runs/slow-run/stop"),
                          409) == "run_not_running"
        after = run(other, thread, "add TSLA to my watchlist")
        assert after[0]["parentRunId"] == "slow-run"
        assert "Added TSLA" in "".join(e.get("delta", "") for e in after
                                       if e["type"] == "TEXT_MESSAGE_CONTENT")


def test_a_client_that_leaves_mid_run_gets_its_answer_stored(deployment) -> None:
    with deployment.server.client(deployment.ann) as client:
        thread = new_thread(client)
        marker = f"stall2-{uuid.uuid4().hex[:6]}"
        body = run_input(thread, f"tell me a joke about python {marker}", run_id="left")
        with client.stream("POST", f"/api/threads/{thread}/runs", json=body) as response:
            for line in response.iter_lines():
                if line.startswith("data: ") and "STEP_STARTED" in line:
                    break  # leave: the connection is closed here
        def finished() -> bool:
            view = client.get(f"/api/threads/{thread}/runs/left").json()
            return view["status"] == "finished"
        assert wait_for(finished, timeout=30)
        messages = client.get(f"/api/threads/{thread}/messages").json()["messages"]
        assert any(m["role"] == "assistant" and m["name"] == "funny_nerd" and m.get("content")
                   for m in messages)


def test_another_users_ids_do_not_exist(deployment) -> None:
    with deployment.server.client(deployment.ann) as ann, \
            deployment.server.client(deployment.bob) as bob:
        thread = new_thread(ann, "ann's")
        run(ann, thread, "add AMZN to my watchlist", run_id="ann-run")
        before = ann.get(f"/api/threads/{thread}").json()
        base = f"/api/threads/{thread}"
        attempts = [
            bob.get(base), bob.patch(base, json={"title": "mine now"}), bob.delete(base),
            bob.get(f"{base}/messages"), bob.get(f"{base}/messages", params={"runId": "ann-run"}),
            bob.get(f"{base}/connect"), bob.get(f"{base}/runs"), bob.get(f"{base}/runs/ann-run"),
            bob.post(f"{base}/runs/ann-run/stop"),
            bob.post(f"{base}/runs", json=run_input(thread, "add BOB to my watchlist")),
            bob.post(f"{base}/runs", json=run_input(thread, "hi", parent="ann-run")),
        ]
        for response in attempts:
            assert error_code(response, 404) == "thread_not_found", response.request.url
        assert thread not in json.dumps(bob.get("/api/threads", params={"limit": 100}).json())
        assert "AMZN" not in json.dumps(bob.get("/api/me/memory").json())
        assert bob.get("/api/me/memory/search", params={"q": "AMZN"}).json() == {"memories": []}
        # bob's own thread under the same id is his, and ann's is untouched
        assert bob.post("/api/threads", json={"threadId": thread}).status_code == 201
        assert bob.get(base).json()["runCount"] == 0
        assert ann.get(base).json() == before
        mismatch = ann.post(f"{base}/runs", json=run_input("another-thread", "hi"))
        assert error_code(mismatch, 422) == "invalid_request"


def test_hostile_requests_get_clear_errors(deployment) -> None:
    server = deployment.server
    with server.client(deployment.ann) as client:
        thread = new_thread(client, "keep me")
        run(client, thread, "add IBM to my watchlist", run_id="kept")
        before = client.get(f"/api/threads/{thread}/messages").json()
        url = f"/api/threads/{thread}/runs"
        raw = {"headers": {"Content-Type": "application/json"}}
        cases: list[tuple[httpx.Response, int]] = [
            (client.post(url, content=b"{not json", **raw), 400),
            (client.post(url, content=b"", **raw), 400),
            (client.post(url, content=b"[1, 2]", **raw), 422),
            (client.post(url, content=b'{"messages": NaN}', **raw), 400),
            (client.post(url, content=b'{"runId": Infinity, "messages": []}', **raw), 400),
            (client.post(url, content=b"\xff\xfe", **raw), 400),
            (client.post(url, content=b"[" * 100_000 + b"]" * 100_000, **raw), 400),
            (client.post(url, content=b'{"runId": ' + b"9" * 10_000 + b"}", **raw), 400),
            (client.post(url, content=b"x" * (2 << 20), **raw), 413),
            (client.post(url, json=run_input(thread, "y" * 20_000)), 413),
            (client.post(url, json={**run_input(thread, "hi"), "messages": "hi"}), 422),
            (client.post(url, json={**run_input(thread, "hi"), "runId": 5}), 422),
            (client.post(url, json={**run_input(thread, "hi"), "runId": "has space"}), 422),
            (client.post(url, json={**run_input(thread, "hi"), "runId": "../../etc"}), 422),
            # "<agent>@<seq>" is how the store names delegation sub-runs (the run died half-way
            # on the duplicate run row, reported as "database_unavailable")
            (client.post(url, json={**run_input(thread, "add AAPL to my watchlist"),
                                    "runId": "stock_analyst@5"}), 422),
            (client.post(url, json=run_input(thread, "hi", parent=["x"])), 422),  # type: ignore[arg-type]
            (client.post(url, json={**run_input(thread, "hi"), "messages": [
                {"role": "assistant", "content": "no user"}]}), 422),
            (client.post(url, json={**run_input(thread, "hi"), "messages": [
                {"role": "user", "content": 42}]}), 422),
            (client.post(url, content=b'{"threadId": "%s", "runId": "s1", "messages": '
                         b'[{"role": "user", "content": "\\ud800"}]}' % thread.encode(), **raw),
             422),
            (client.post("/api/threads", content=b'{"title": 5}', **raw), 422),
            (client.post("/api/threads", content=b'{"title": "\\udc00"}', **raw), 422),
            (client.post("/api/threads", json={"threadId": "a\x00b"}), 422),
            # a thread no /api/threads/{threadId} URL could reach afterwards
            (client.post("/api/threads", json={"threadId": "a/b"}), 422),
            (client.post("/api/threads", json={"threadId": "."}), 422),
            (client.post("/api/threads", json={"threadId": ".."}), 422),
            (client.patch(f"/api/threads/{thread}", json={"title": "t" * 500}), 422),
            (client.patch(f"/api/threads/{thread}", json={}), 422),
            (client.get("/api/threads/no-such-thread"), 404),
            (client.get("/api/threads/..%2F..%2Fetc%2Fpasswd"), 404),
            (client.get("/api/threads/%2e%2e/runs"), 404),
            (client.get(f"/api/threads/{'x' * 300}"), 404),
            (client.get(f"/api/threads/{thread}/runs/no-such-run"), 404),
            (client.get(f"/api/threads/{thread}/messages", params={"runId": "nope"}), 404),
            (client.get("/api/threads", params={"limit": "abc"}), 422),
            (client.get("/api/threads", params={"limit": 0}), 422),
            (client.get("/api/threads", params={"limit": "1e400"}), 422),
            (client.get("/api/threads", params={"cursor": "garbage!!"}), 400),
            (client.get("/api/threads", params={"cursor": "WzFd"}), 400),
            (client.get(f"/api/threads/{thread}/runs", params={"cursor": "bm9wZQ"}), 400),
            (client.get("/api/no/such/route"), 404),
            (client.put(f"/api/threads/{thread}", json={}), 405),
            (client.delete("/api/info"), 405),
            (client.get("/api/me/memory/search"), 422),
        ]
        for response, status in cases:
            error_code(response, status)
        head = client.head("/api/info")  # (no body)
        assert head.status_code == 405 and head.headers["allow"] == "GET"
        assert client.put(f"/api/threads/{thread}", json={}).headers["allow"] == (
            "DELETE, GET, PATCH")
        with httpx.Client(base_url=server.url) as anon:
            for path in ("/../../etc/passwd", "/%2e%2e/%2e%2e/etc/passwd", "/..%2f..%2fetc"):
                response = anon.get(path)
                assert response.status_code == 404 and "root:" not in response.text
        # nothing lost, nothing added: the thread is as it was
        assert client.get(f"/api/threads/{thread}/messages").json() == before
        assert client.get(f"/api/threads/{thread}").json()["title"] == "keep me"
    assert "Traceback" not in server.stderr()


def test_many_renames_at_once_all_land(deployment) -> None:
    """A rename is a blind write: 30 PATCHes of one title at once, each acknowledged (before,
    most got 409 "the thread changed meanwhile"); the title is the last one stored."""
    with deployment.server.client(deployment.ann) as client:
        thread = new_thread(client, "first")
        statuses: list[int] = []

        def patch(i: int) -> None:
            with deployment.server.client(deployment.ann) as c:
                response = c.patch(f"/api/threads/{thread}", json={"title": f"name {i}"})
                statuses.append(response.status_code)

        workers = [threading.Thread(target=patch, args=(i,)) for i in range(30)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        assert statuses == [200] * 30, statuses
        title = client.get(f"/api/threads/{thread}").json()["title"]
        assert title in {f"name {i}" for i in range(30)}
        run(client, thread, "add IBM to my watchlist")
        assert client.get(f"/api/threads/{thread}").json()["title"] == title


def test_two_runs_at_once_on_one_thread_one_wins(deployment) -> None:
    """Many simultaneous POSTs on one thread: one runs, the others get 409, never a 500."""
    with deployment.server.client(deployment.ann) as client:
        thread = new_thread(client)
        statuses: list[int] = []

        def post(i: int) -> None:
            with deployment.server.client(deployment.ann) as c:
                body = run_input(thread, f"tell me a joke about python stall1-{i}x{thread[:4]}")
                statuses.append(c.post(f"/api/threads/{thread}/runs", json=body).status_code)

        workers = [threading.Thread(target=post, args=(i,)) for i in range(6)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        assert statuses.count(200) >= 1 and set(statuses) <= {200, 409}, statuses
        runs = client.get(f"/api/threads/{thread}/runs").json()["items"]
        assert len(runs) == statuses.count(200) and all(r["status"] == "finished" for r in runs)
