"""A hostile or demanding API client against the real ``multi-agent serve``, and two servers
on one database.

Real server processes over real HTTP, on SQLite and PostgreSQL (the ``deployment`` fixture of
``tests/serve/conftest.py``), plus a few servers of their own where a test needs special
options or has to break something (the token file, a killed process).

Each ``test_<what should happen>`` whose docstring starts with "Observed:" was a defect found
by probing (it failed on the code of 8a6109d and passes since the fix); the others are edge
cases checked that already behaved well.
"""

from __future__ import annotations

import json
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
import pytest

from multi_agent.store.api_tokens import TokenFile
from tests.serve._server import Server, run, run_input, serve, sse

pytestmark = pytest.mark.timeout(300)


# -- helpers --------------------------------------------------------------------------------


def error_of(response: httpx.Response, status: int) -> dict[str, str]:
    """The ``{"code", "message"}`` of an error answer, after checking its shape."""
    assert response.status_code == status, (response.status_code, response.text[:500])
    assert response.headers["content-type"].startswith("application/json"), response.headers
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}, body
    assert "Traceback" not in response.text
    assert body["error"]["message"], body
    return body["error"]


def new_thread(client: httpx.Client, **body: Any) -> str:
    response = client.post("/api/threads", json=body)
    assert response.status_code == 201, response.text
    return str(response.json()["threadId"])


def fresh_user(deployment: Any, name: str = "s17") -> str:
    """A token of a new user (nothing of other tests in their lists)."""
    return TokenFile(deployment.tokens).add(f"{name}-{uuid.uuid4().hex[:6]}")[0]


def stall_body(thread: str, seconds: int, run_id: str | None = None) -> dict[str, Any]:
    """A run the slow model keeps going for ``seconds`` (see ``_slow_serve.py``)."""
    marker = f"stall{seconds}-{uuid.uuid4().hex[:8]}"
    return run_input(thread, f"tell me a joke about python {marker}", run_id=run_id)


def read_until_step(lines: Iterator[str]) -> list[dict[str, Any]]:
    """The events up to the hand-over to funny_nerd (who then stalls)."""
    seen = []
    for line in lines:
        if line.startswith("data: "):
            seen.append(json.loads(line[6:]))
            if seen[-1]["type"] == "STEP_STARTED":
                return seen
    raise AssertionError(f"the run ended before its hand-over: {seen}")


def raw_http(server: Server, request: bytes, timeout: float = 10.0) -> tuple[int, dict[str, str],
                                                                          bytes]:
    """Sends ``request`` as is on a new connection: (status, headers, body)."""
    parts = urlsplit(server.url)
    with socket.create_connection((parts.hostname, parts.port), timeout=timeout) as sock:
        sock.sendall(request)
        data = b""
        while True:
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                break
            if not chunk:
                break
            data += chunk
            head, sep, rest = data.partition(b"\r\n\r\n")
            if sep:
                headers = _headers(head)
                length = headers.get("content-length")
                if length is not None and len(rest) >= int(length):
                    break
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, _headers(head), body


def _headers(head: bytes) -> dict[str, str]:
    out = {}
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        out[name.decode("latin-1").strip().lower()] = value.decode("latin-1").strip()
    return out


# -- defects --------------------------------------------------------------------------------


@pytest.mark.parametrize("payload", [b"[]", b"0", b"false", b'""'])
def test_create_thread_refuses_a_body_that_is_not_a_json_object(deployment, payload) -> None:
    """Observed: ``POST /api/threads`` with the body ``[]``, ``0``, ``false`` or ``""`` makes a
    thread (``201``): ``read_json(...) or {}`` treats every falsy JSON value as "no body".
    ``[1]`` is refused (``422`` "the body must be a JSON object") and so must these be."""
    token = fresh_user(deployment)
    with deployment.server.client(token) as client:
        response = client.post("/api/threads", content=payload,
                               headers={"Content-Type": "application/json"})
        assert error_of(response, 422)["code"] == "invalid_request"
        assert client.get("/api/threads").json()["items"] == []  # nothing was made


def test_a_run_racing_the_delete_of_its_thread_is_refused_not_failed(deployment) -> None:
    """Observed: a ``POST .../runs`` and a ``DELETE`` of the same thread sent together: the
    DELETE answers ``204`` *and* the POST answers ``200`` with a stream that ends in
    ``RUN_ERROR`` "SessionNotFoundError: Session not found: <id>" (code ``run_failed``; on
    SQLite 3 of 30 tries). ``start_run`` looks the thread up, then claims it, while
    ``delete_thread`` checks ``manager.busy`` and deletes in between. One of the two should
    lose cleanly: the run ``404 thread_not_found`` (or the delete ``409 run_in_progress``)."""
    with deployment.server.client(fresh_user(deployment)) as client:
        token = client.headers["authorization"]
        bad: list[tuple[int, int, str]] = []
        for attempt in range(40):
            thread = new_thread(client)
            got: dict[str, Any] = {}

            def post(thread: str = thread) -> None:
                with httpx.Client(base_url=deployment.server.url, timeout=60,
                                  headers={"Authorization": token}) as c:
                    r = c.post(f"/api/threads/{thread}/runs",
                               json=run_input(thread, "add NVDA to my watchlist"))
                    got["post"] = (r.status_code, r.text)

            def delete(thread: str = thread, attempt: int = attempt) -> None:
                time.sleep(0.001 * (attempt % 8))
                with httpx.Client(base_url=deployment.server.url, timeout=60,
                                  headers={"Authorization": token}) as c:
                    got["delete"] = c.delete(f"/api/threads/{thread}").status_code

            workers = [threading.Thread(target=post), threading.Thread(target=delete)]
            for w in workers:
                w.start()
            for w in workers:
                w.join()
            status, text = got["post"]
            if status == 200 and "RUN_ERROR" in text:
                bad.append((status, got["delete"], text.strip().splitlines()[-1][:300]))
        assert not bad, f"{len(bad)} of 40 runs were accepted on a thread being deleted: {bad[0]}"


def test_stopping_a_sub_run_says_which_run_to_stop(deployment) -> None:
    """Observed: ``POST .../runs/funny_nerd@5/stop`` while its run is going answers ``409``
    "run 'funny_nerd@5' is not running (it is running)": a contradiction that does not say
    the id is a delegation sub-run, nor that the run to stop is its parent."""
    with deployment.server.client(fresh_user(deployment)) as client, \
            deployment.server.client(client.headers["authorization"].split()[1]) as other:
        thread = new_thread(client)
        body = stall_body(thread, 6, run_id="parent-run")
        with client.stream("POST", f"/api/threads/{thread}/runs", json=body) as response:
            lines = response.iter_lines()
            read_until_step(lines)
            runs = other.get(f"/api/threads/{thread}/runs").json()["items"]
            sub = runs[0]["subRuns"][0]["runId"]
            answer = other.post(f"/api/threads/{thread}/runs/{sub}/stop")
            other.post(f"/api/threads/{thread}/runs/parent-run/stop")
            for _ in lines:
                pass
        error = error_of(answer, 409)
        assert error["code"] == "run_not_running"
        assert "(it is running)" not in error["message"], error
        assert "parent-run" in error["message"], error  # the run to stop instead


def test_trace_on_an_api_route_answers_like_every_other_wrong_method(deployment) -> None:
    """Observed: ``TRACE /api/threads`` (and ``CONNECT``-like methods the catch-all route does
    not list) falls through to the static page mount: ``405`` "Method Not Allowed" with
    ``Allow: GET, HEAD``, methods /api/threads does not even take (it takes GET, POST; the
    ``OPTIONS``/``PUT`` answers say so). Expected the API's own 405 with the route's Allow."""
    token = fresh_user(deployment)
    with deployment.server.client(token) as client:
        response = client.request("TRACE", "/api/threads")
        error = error_of(response, 405)
        assert response.headers["allow"] == "GET, POST", response.headers
        assert "/api/threads" in error["message"], error


def test_two_authorization_headers_are_refused(deployment) -> None:
    """Observed: a request with two ``Authorization`` headers (bob's token, then ann's) is
    served as bob, silently ignoring the second: which identity wins depends on header order
    (a proxy that appends its own header would act as the client's choice). RFC 9110 allows
    one Authorization field; an ambiguous request should be ``400``/``401``."""
    status, _headers, body = raw_http(
        deployment.server,
        b"GET /api/me HTTP/1.1\r\nHost: x\r\n"
        b"Authorization: Bearer " + deployment.bob.encode() + b"\r\n"
        b"Authorization: Bearer " + deployment.ann.encode() + b"\r\n"
        b"Connection: close\r\n\r\n")
    assert status in (400, 401), (status, body)
    assert set(json.loads(body)) == {"error"}


def test_a_broken_token_file_does_not_tell_clients_the_servers_paths(tmp_path: Path) -> None:
    """Observed: when the token file is damaged while the server runs, any client that sends
    a ``mat_``-looking token, even a made-up one, gets ``503 tokens_unavailable`` "the token
    file /srv/.../tokens.json is not valid JSON; remove it and make new tokens with:
    multi-agent serve token add USER": the server's file path and an operator's instruction,
    to an unauthenticated client (database failures are careful to hide the path: README
    "a database failure is 503 ... never the server's database path")."""
    tokens = tmp_path / "tokens.json"
    ann = TokenFile(tokens).add("ann")[0]
    with serve(str(tmp_path / "t.db"), tmp=tmp_path, tokens=tokens, slow=False) as server:
        with server.client(ann) as client:
            assert client.get("/api/me").json() == {"userId": "ann"}
        tokens.write_text("{broken")
        with server.client("mat_deadbeef_madeup") as stranger:
            response = stranger.get("/api/me")
        assert response.status_code == 503, response.text
        error = error_of(response, 503)
        assert str(tmp_path) not in error["message"], error
        assert "tokens.json" not in error["message"], error


def test_after_a_crash_the_409_says_how_to_free_the_thread(tmp_path: Path) -> None:
    """Before: after the server process died mid-run and was restarted, ``POST .../runs``
    on the thread was ``409 run_in_progress`` "run 'dead' of this thread is still running (in
    another process)" for up to ``--run-timeout``, and the message said neither how to stop it
    nor when the thread is free. A run another process may still be executing cannot be
    told from a dead one, so a stop of it is asked for (``stopping``: that process stops it)
    and the thread is free at the run time limit, which the 409 says."""
    tokens = tmp_path / "tokens.json"
    ann = TokenFile(tokens).add("ann")[0]
    db = str(tmp_path / "crash.db")
    with serve(db, tmp=tmp_path, tokens=tokens) as server, server.client(ann) as client:
        thread = new_thread(client)
        run(client, thread, "add NVDA to my watchlist", run_id="r1")
        body = stall_body(thread, 60, run_id="dead")
        with client.stream("POST", f"/api/threads/{thread}/runs", json=body) as response:
            read_until_step(response.iter_lines())
            server.proc.kill()
            server.proc.wait()
    started = time.time()
    with serve(db, tmp=tmp_path, tokens=tokens, extra=("--run-timeout", "6")) as server, \
            server.client(ann) as client:
        assert client.get(f"/api/threads/{thread}/runs/dead").json()["status"] == "running"
        busy = client.post(f"/api/threads/{thread}/runs", json=run_input(thread, "hi"))
        error = error_of(busy, 409)
        assert error["code"] == "run_in_progress"
        assert "runs/dead/stop" in error["message"], error
        assert "If that process died, the thread is free" in error["message"], error
        stop = client.post(f"/api/threads/{thread}/runs/dead/stop")
        assert stop.status_code == 202 and stop.json()["status"] == "stopping", stop.text
        time.sleep(max(0.0, started + 6.5 - time.time()))  # past the run time limit
        assert run(client, thread, "add IBM to my watchlist")[0]["parentRunId"] == "dead"


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_two_servers_on_one_database_run_one_turn_of_a_thread_at_a_time(
        backend: str, tmp_path: Path) -> None:
    """Observed: two ``multi-agent serve`` processes on one database (README: "several users
    from several processes on two servers"), the same user POSTs a run of one thread to each
    at the same moment: both answer ``200`` (7 of 8 tries on SQLite), both RUN_STARTED say
    ``parentRunId`` r0, and the two turns run at once on one conversation. The joke request is
    then answered by funny_nerd with "that is a job for stock_analyst, which I can't reach
    from here" (it saw the other turn's message), the run tree records run-b as a child of
    run-a (not of r0, as its stream said), and ``GET .../messages`` leaves run-b's answer out
    although its run is ``onPath``. Expected (README "one at a time per thread", docs "Also
    409 when the store says the head run is still running"): exactly one 200 and one 409.
    Cause: ``start_run`` checks the head's status in the store, then starts, with nothing
    claiming the thread in the store in between."""
    from tests.serve.conftest import pg_db

    db = str(tmp_path / "two.db") if backend == "sqlite" else pg_db()
    tokens = tmp_path / "tokens.json"
    ann = TokenFile(tokens).add("ann")[0]
    with serve(db, tmp=tmp_path, tokens=tokens) as one, \
            serve(db, tmp=tmp_path, tokens=tokens) as two, \
            one.client(ann) as c1, two.client(ann) as c2:
        outcomes = []
        for attempt in range(8):
            thread = new_thread(c1)
            run(c1, thread, "add NVDA to my watchlist", run_id="r0")
            got: dict[str, int] = {}

            def post(client: httpx.Client, key: str, text: str, thread: str = thread) -> None:
                r = client.post(f"/api/threads/{thread}/runs",
                                json=run_input(thread, text, run_id=f"run-{key}"))
                got[key] = r.status_code

            workers = [
                threading.Thread(target=post, args=(
                    c1, "a", f"tell me a joke about python stall2-a{attempt}{uuid.uuid4().hex[:4]}")),
                threading.Thread(target=post, args=(c2, "b", "add AAPL to my watchlist")),
            ]
            for w in workers:
                w.start()
            for w in workers:
                w.join()
            outcomes.append(tuple(sorted(got.values())))
        assert outcomes == [(200, 409)] * 8, outcomes


def test_a_stop_sent_to_the_other_server_does_not_claim_a_run_still_going(tmp_path: Path
                                                                           ) -> None:
    """Observed: a run going on server 1; ``POST .../runs/long/stop`` sent to server 2 (same
    database) answers ``202 {"status": "stopped"}`` and records it stopped, but the run goes
    on in server 1 and its stream ends with a plain ``RUN_FINISHED`` (no ``cancelled``
    outcome); meanwhile server 2 accepts a new run on the thread (``200``), so two turns run
    at once again, and the tree ends with ``long`` "stopped" yet head and ``next`` finished
    but not head. Expected: a 202 "stopped" only for a run that stopped (or no claim of it:
    e.g. 409 "running in another server"), and no second run while the first is going.
    Now the stop is recorded as asked for (``request_stop``) and server 1 stops the run."""
    tokens = tmp_path / "tokens.json"
    ann = TokenFile(tokens).add("ann")[0]
    db = str(tmp_path / "two.db")
    with serve(db, tmp=tmp_path, tokens=tokens) as one, \
            serve(db, tmp=tmp_path, tokens=tokens) as two, \
            one.client(ann) as c1, two.client(ann) as c2:
        thread = new_thread(c1)
        run(c1, thread, "add NVDA to my watchlist", run_id="r0")
        with c1.stream("POST", f"/api/threads/{thread}/runs",
                       json=stall_body(thread, 5, run_id="long")) as response:
            lines = response.iter_lines()
            seen = read_until_step(lines)
            stop = c2.post(f"/api/threads/{thread}/runs/long/stop")
            second = c2.post(f"/api/threads/{thread}/runs",
                             json=run_input(thread, "add AAPL to my watchlist", run_id="next"))
            second.read()
            seen += [json.loads(line[6:]) for line in lines if line.startswith("data: ")]
        # Asked for (server 2 cannot stop server 1's run itself), and done by server 1, which
        # looks for such requests every second: its stream ends as a stopped run's does.
        assert stop.status_code == 202 and stop.json()["status"] == "stopping", stop.text
        assert seen[-1]["type"] == "RUN_FINISHED", seen[-1]
        assert seen[-1].get("outcome") == {"type": "cancelled"}, seen[-1]
        assert second.status_code == 409, second.text[:300]
        runs = {r["runId"]: r for r in c2.get(f"/api/threads/{thread}/runs").json()["items"]}
        assert runs["long"]["status"] == "stopped" and "next" not in runs, runs
        after = run(c2, thread, "add AAPL to my watchlist", run_id="next")
        assert after[0]["parentRunId"] == "long" and after[-1]["type"] == "RUN_FINISHED"


# -- edge cases that behave well ------------------------------------------------------------


def test_odd_but_legal_thread_ids_round_trip(deployment) -> None:
    """Ids with spaces, ?, #, %, unicode direction marks and 256 characters are stored
    exactly and reachable through their percent-encoded URL; others are 422/404 in JSON."""
    with deployment.server.client(fresh_user(deployment)) as client:
        for thread_id in (" ", "a?b#c%2F", "\u202e\u200b", "x" * 256, "ünï cödé 🧪", "q'\";--"):
            made = client.post("/api/threads", json={"threadId": thread_id})
            assert made.status_code == 201 and made.json()["threadId"] == thread_id, made.text
            url = "/api/threads/" + quote(thread_id, safe="")
            got = client.get(url)
            assert got.status_code == 200 and got.json()["threadId"] == thread_id, (url, got.text)
            response = client.post(url + "/runs", json=run_input(thread_id, "show my watchlist"))
            assert response.status_code == 200, response.text
            events = sse(response)
            assert events[0]["threadId"] == thread_id and events[-1]["type"] == "RUN_FINISHED"
        for bad in ("x" * 257, 5, "", "a\x01b", "a\x7fb"):
            error_of(client.post("/api/threads", json={"threadId": bad}), 422)
        for path in ("/api/threads/%00", "/api/threads/%FF", "/api/threads/a%0Ab/runs",
                     "/api/threads/" + "y" * 300 + "/messages"):
            assert error_of(client.get(path), 404)["code"] == "thread_not_found"


def test_run_input_fields_of_the_wrong_type(deployment) -> None:
    """Wrong types where the server reads the field: 422 with a message naming it; the
    fields it documents as unused (state, tools, context) do not break a run."""
    with deployment.server.client(fresh_user(deployment)) as client:
        thread = new_thread(client)
        run(client, thread, "add NVDA to my watchlist", run_id="base")
        url = f"/api/threads/{thread}/runs"

        def body(**fields: Any) -> dict[str, Any]:
            return {**run_input(thread, "show my watchlist"), **fields}

        refused = [
            (body(messages=[{"role": "wizard", "content": "x"}]), "user message"),
            (body(messages=[{"role": "user", "content": [{"type": "text"}]}]), "text"),
            (body(messages=[{"role": "user", "content": []}]), "no text"),
            (body(messages=[{"role": "user"}]), "no text"),
            (body(forwardedProps={"parentRunId": 5}), "parentRunId"),
            (body(parentRunId=""), "parentRunId"),
            (body(runId=""), "runId"),
            (body(runId="é"), "runId"),
            (body(threadId=5), "threadId"),
        ]
        for payload, word in refused:
            error = error_of(client.post(url, json=payload), 422)
            assert word in error["message"], (payload, error)
        assert error_of(client.post(url, json=body(runId="base")), 409)["code"] == "run_exists"
        assert error_of(client.post(url, json=body(parentRunId=None, forwardedProps={
            "parentRunId": "nope"})), 404)["code"] == "run_not_found"
        for fields in ({"state": [1]}, {"tools": "x"}, {"context": 5}, {"forwardedProps": [1]},
                       {"messages": [None, 5, {"role": "tool", "content": "x"},
                                     {"role": "user", "content": "show my watchlist"}]}):
            response = client.post(url, json=body(**fields))
            assert response.status_code == 200, (fields, response.text)
            assert sse(response)[-1]["type"] == "RUN_FINISHED"
        # duplicate keys: the last one counts (as json.loads), and the thread is untouched
        raw = json.dumps(body(runId="dup-b"))[:-1] + ', "runId": "dup-c"}'
        response = client.post(url, content=raw.encode(),
                               headers={"Content-Type": "application/json"})
        assert sse(response)[0]["runId"] == "dup-c"


def test_run_ids_are_per_thread_and_per_user(deployment) -> None:
    """One runId on two threads of a user and on another user's thread: three separate
    runs, each with its own messages; a parentRunId of another thread is 404."""
    with deployment.server.client(fresh_user(deployment)) as ann, \
            deployment.server.client(fresh_user(deployment)) as bob:
        t1, t2, tb = new_thread(ann), new_thread(ann), new_thread(bob)
        for client, thread, ticker in ((ann, t1, "NVDA"), (ann, t2, "AAPL"), (bob, tb, "TSLA")):
            run(client, thread, f"add {ticker} to my watchlist", run_id="same-id")
        for client, thread, ticker in ((ann, t1, "NVDA"), (ann, t2, "AAPL"), (bob, tb, "TSLA")):
            texts = [m["content"] for m in client.get(f"/api/threads/{thread}/messages").json()[
                "messages"] if m["role"] == "user"]
            assert texts == [f"add {ticker} to my watchlist"]
        other = ann.post(f"/api/threads/{t2}/runs",
                         json=run_input(t2, "hi", parent=ann.get(f"/api/threads/{t1}").json()[
                             "headRunId"] + "-x"))
        assert error_of(other, 404)["code"] == "run_not_found"
        assert "TSLA" not in json.dumps(ann.get("/api/me/memory").json())


def test_thread_cursors_are_bound_and_survive_deletes(deployment) -> None:
    """130 threads paged through: another user's cursor and every edited one are 400; a
    cursor whose thread was deleted still gives the rest, none twice, none lost."""
    with deployment.server.client(fresh_user(deployment)) as client, \
            deployment.server.client(fresh_user(deployment)) as other:
        made = [new_thread(client, title=f"n{i}") for i in range(130)]
        first = client.get("/api/threads", params={"limit": 3}).json()
        cursor = first["nextCursor"]
        assert error_of(other.get("/api/threads", params={"cursor": cursor}),
                        400)["code"] == "invalid_cursor"
        for i in range(0, len(cursor), 5):
            edited = cursor[:i] + ("A" if cursor[i] != "A" else "B") + cursor[i + 1:]
            assert client.get("/api/threads", params={"cursor": edited}).status_code == 400, i
        gone = first["items"][-1]["threadId"]
        assert client.delete(f"/api/threads/{gone}").status_code == 204
        seen = [t["threadId"] for t in first["items"][:2]]
        while cursor:
            page = client.get("/api/threads", params={"cursor": cursor, "limit": 100}).json()
            seen += [t["threadId"] for t in page["items"]]
            cursor = page["nextCursor"]
        assert len(seen) == len(set(seen)) == 129 and set(seen) == set(made) - {gone}


def test_http_level_oddities_get_json_errors(deployment) -> None:
    """A chunked body over the limit: 413 JSON; gzip and form bodies: 400 JSON (read as
    JSON whatever the Content-Type); 'bearer' in lower case and extra spaces are accepted;
    a token with non-ASCII bytes is 401; a non-UTF-8 cursor is 400."""
    server = deployment.server
    auth = b"Authorization: Bearer " + deployment.ann.encode() + b"\r\n"
    big = b"x" * (1 << 20)
    chunks = b"".join(b"%x\r\n" % len(big[i:i + 65536]) + big[i:i + 65536] + b"\r\n"
                      for i in range(0, len(big), 65536))
    status, headers, body = raw_http(server, b"POST /api/threads HTTP/1.1\r\nHost: x\r\n" + auth
                                     + b"Transfer-Encoding: chunked\r\n\r\n" + chunks
                                     + b"10\r\n" + b"y" * 16 + b"\r\n0\r\n\r\n")
    assert status == 413 and json.loads(body)["error"]["code"] == "body_too_large"
    import gzip
    zipped = gzip.compress(b'{"title": "zipped"}')
    for content_type, payload in (("application/json\r\nContent-Encoding: gzip", zipped),
                                  ("application/x-www-form-urlencoded", b"title=hello")):
        status, _h, body = raw_http(server, b"POST /api/threads HTTP/1.1\r\nHost: x\r\n" + auth
                                    + f"Content-Type: {content_type}\r\n".encode()
                                    + b"Content-Length: %d\r\nConnection: close\r\n\r\n"
                                    % len(payload) + payload)
        assert status == 400 and json.loads(body)["error"]["code"] == "invalid_json"
    for header in (b"bearer " + deployment.ann.encode(),
                   b"Bearer   " + deployment.ann.encode() + b"  "):
        status, _h, body = raw_http(server, b"GET /api/me HTTP/1.1\r\nHost: x\r\n"
                                    b"Authorization: " + header + b"\r\nConnection: close\r\n\r\n")
        assert status == 200 and json.loads(body) == {"userId": "ann"}
    status, headers, body = raw_http(server, b"GET /api/me HTTP/1.1\r\nHost: x\r\n"
                                     b"Authorization: Bearer mat_\xc3\xa9_\xff\xfe\r\n"
                                     b"X-Other: \xff\x80\r\nConnection: close\r\n\r\n")
    assert status == 401 and headers["www-authenticate"] == "Bearer"
    status, _h, body = raw_http(server, b"GET /api/threads?cursor=%ff%fe HTTP/1.1\r\nHost: x\r\n"
                                + auth + b"Connection: close\r\n\r\n")
    assert status == 400 and json.loads(body)["error"]["code"] == "invalid_cursor"


def test_a_stalled_run_times_out_and_the_thread_goes_on_from_it(tmp_path: Path) -> None:
    """--run-timeout 3: the run ends with RUN_ERROR code timeout, is recorded as error, stop
    on it is 409; a new run may branch from it; --max-runs-per-user 2: the third is 429."""
    tokens = tmp_path / "tokens.json"
    ann = TokenFile(tokens).add("ann")[0]
    with serve(str(tmp_path / "limits.db"), tmp=tmp_path, tokens=tokens,
               extra=("--run-timeout", "3", "--max-runs-per-user", "2")) as server, \
            server.client(ann) as client:
        thread = new_thread(client)
        run(client, thread, "add NVDA to my watchlist", run_id="ok")
        response = client.post(f"/api/threads/{thread}/runs",
                               json=stall_body(thread, 20, run_id="slow"))
        last = sse(response)[-1]
        assert last["type"] == "RUN_ERROR" and last["code"] == "timeout", last
        assert client.get(f"/api/threads/{thread}/runs/slow").json()["status"] == "error"
        assert error_of(client.post(f"/api/threads/{thread}/runs/slow/stop"),
                        409)["code"] == "run_not_running"
        events = run(client, thread, "add AAPL to my watchlist", parent="slow")
        assert events[0]["parentRunId"] == "slow"
        threads = [new_thread(client) for _ in range(3)]
        clients = [server.client(ann) for _ in threads]
        try:
            streams = [c.stream("POST", f"/api/threads/{t}/runs", json=stall_body(t, 3))
                       for c, t in zip(clients, threads)]
            opened = [s.__enter__() for s in streams[:2]]
            for response in opened:
                assert response.status_code == 200
                read_until_step(response.iter_lines())
            third = streams[2].__enter__()
            third.read()
            assert error_of(third, 429)["code"] == "too_many_runs"
            for s in streams:
                s.__exit__(None, None, None)
        finally:
            for c in clients:
                c.close()


def test_a_body_that_does_not_arrive_gets_408_in_time(tmp_path: Path) -> None:
    """Was (uvicorn-level, helper's note 10): a ``Content-Length`` larger than the body sent
    held the connection until the client gave up. Now the body must arrive within
    ``--body-timeout`` seconds: else ``408 request_timeout`` in JSON, and the server goes on."""
    tokens = tmp_path / "tokens.json"
    ann = TokenFile(tokens).add("ann")[0]
    with serve(str(tmp_path / "t.db"), tmp=tmp_path, tokens=tokens, slow=False,
               extra=("--body-timeout", "2")) as server:
        started = time.monotonic()
        status, headers, body = raw_http(
            server, b"POST /api/threads HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
            b"\r\nContent-Length: 100\r\n\r\n{\"title\": ", timeout=15)
        waited = time.monotonic() - started
        assert status == 408, (status, body)
        assert json.loads(body)["error"]["code"] == "request_timeout"
        assert 1.5 < waited < 10, waited
        with server.client(ann) as client:
            assert client.post("/api/threads", json={"title": "fine"}).status_code == 201
