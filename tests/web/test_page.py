"""The web page in a real headless Chromium against the real ``multi-agent serve``.

No mocks: the server is the README's command in a subprocess on a fresh SQLite file (the
default ``./multi_agent_data.db`` of a fresh directory) or a fresh PostgreSQL database, the
tokens come from the README's ``serve token add``, and the page is driven with the keyboard
where a person would type. Screenshots go to ``$MULTI_AGENT_SCREENSHOTS`` when it is set (the
README's ``docs/screenshots``), else to the test's temporary directory.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import fresh_pg_database, require_pg
from tests.web._served import (
    README_PORT,
    Server,
    add_token,
    api,
    free_port,
    readme_commands,
    serve_command,
)

pytestmark = pytest.mark.timeout(300)

MESSAGES = [
    ("tell me a joke about python", "funny_nerd"),
    ("add AAPL to my watch list", "stock_analyst"),
    ("what did we talk about?", "historian"),
]
BRANCH_MESSAGE = ("tell me a joke about math", "funny_nerd")
WAIT = 60_000  # ms for a run to finish (well under a second on the offline model)
DESKTOP = {"width": 1360, "height": 860}
PHONE = {"width": 375, "height": 812}


@dataclass
class Served:
    backend: str
    server: Server
    tokens: dict[str, str]
    shots: Path | None


def screenshot_dir(tmp: Path) -> Path:
    target = os.environ.get("MULTI_AGENT_SCREENSHOTS")
    path = Path(target) if target else tmp / "screenshots"
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def served(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[Served]:
    """The README's commands in a fresh directory: two tokens, then the server."""
    backend = request.param
    extra: list[str] = []
    if backend == "postgres":
        require_pg()
        # Playwright's sync API runs an event loop in this thread: make the database in another.
        with ThreadPoolExecutor(1) as pool:
            extra = ["--db", pool.submit(asyncio.run, fresh_pg_database()).result()]
    cwd = tmp_path_factory.mktemp(f"web-{backend}")
    commands = readme_commands()
    token_command = next(c for c in commands if c[:3] == ["serve", "token", "add"])
    tokens = {user: add_token(token_command, user, cwd, extra) for user in ("ann", "bob")}
    command = [README_PORT if a == README_PORT else a for a in serve_command(commands)]
    command[command.index(README_PORT)] = str(port := free_port())
    server = Server([*command, *extra], cwd, port).start()
    if backend == "sqlite":
        assert (cwd / "multi_agent_data.db").exists()  # the README's default file
        assert (cwd / "multi_agent_tokens.json").exists()
    try:
        yield Served(backend, server, tokens,
                     screenshot_dir(cwd) if backend == "sqlite" else None)
    finally:
        out = server.stop()
        assert "Traceback" not in out, out


# ------------------------------------------------------------------ helpers


def open_page(browser: Any, served: Served, user: str, viewport: dict[str, int] = DESKTOP,
              scale: float = 1) -> Any:
    """A fresh browser profile (its own localStorage), signed in as ``user`` with the keyboard."""
    context = browser.new_context(viewport=viewport, device_scale_factor=scale)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.errors = errors
    # Nothing is fetched from anywhere but the server itself.
    foreign: list[str] = []
    page.on("request", lambda r: None if r.url.startswith((served.server.url + "/", "data:"))
            else foreign.append(r.url))
    page.foreign = foreign
    page.goto(served.server.url + "/")
    from playwright.sync_api import expect

    expect(page.locator("#token-input")).to_be_focused()
    page.keyboard.type(served.tokens[user])
    page.keyboard.press("Enter")
    expect(page.locator("#who")).to_have_text(user)
    wait_ready(page)
    return page


def wait_ready(page: Any) -> None:
    page.wait_for_function("document.body.dataset.ready === '1'")


def send(page: Any, text: str, agent: str | None) -> None:
    """Types a message and Enter; waits for the run to end; checks who answered."""
    from playwright.sync_api import expect

    turns = page.locator("#messages .turn")
    before = turns.count()
    page.locator("#composer-input").focus()
    page.keyboard.type(text)
    page.keyboard.press("Enter")
    expect(turns).to_have_count(before + 1)
    last = turns.nth(before)
    expect(last).to_have_attribute("data-status", "finished", timeout=WAIT)
    expect(page.locator("#composer")).to_have_attribute("aria-busy", "false")
    page.wait_for_function("document.body.dataset.idle === '1'")  # tree, list, memory refreshed
    expect(last.locator(".bubble.user")).to_have_text(f"You{text}")
    if agent:
        expect(last.locator(".bubble.assistant .agent-name").last).to_have_text(agent)
        expect(last.locator(f'.step[data-from="manager"][data-to="{agent}"]')).to_have_count(1)


def conversation(page: Any) -> list[tuple[str, list[str]]]:
    """Each turn: (your text, the agents that answered)."""
    return page.evaluate("""() => [...document.querySelectorAll('#messages .turn')].map(t => [
        t.querySelector('.bubble.user .text')?.textContent ?? '',
        [...t.querySelectorAll('.bubble.assistant .agent-name')].map(e => e.textContent)])""")


def tree(page: Any) -> dict[str, Any]:
    return page.evaluate("""() => ({
        runs: Number(document.querySelector('#tree').dataset.runs),
        branches: Number(document.querySelector('#tree').dataset.branches),
        lanes: Number(document.querySelector('#tree svg')?.dataset.lanes || 0),
        edges: document.querySelectorAll('#tree svg path.edge').length,
        rows: [...document.querySelectorAll('#tree .tree-row')].map(r => ({
            id: r.dataset.runId, lane: Number(r.dataset.lane),
            text: r.querySelector('.run-text').textContent,
            current: r.classList.contains('current')})),
    })""")


def shot(page: Any, served: Served, name: str, *, full_page: bool = False) -> None:
    """A screenshot of the page as a person sees it (no focus ring, the newest answer shown)."""
    if served.shots is None:
        return
    page.evaluate("""() => { document.activeElement?.blur();
        const m = document.querySelector('#messages'); m.scrollTop = m.scrollHeight; }""")
    page.screenshot(path=str(served.shots / name), full_page=full_page)


def unnamed_controls(page: Any) -> list[str]:
    """Buttons, inputs and links without an accessible name (text, aria-label or label)."""
    return page.evaluate("""() => [
        ...document.querySelectorAll('button, input, textarea, a, summary')]
        .filter(e => e.offsetParent !== null)
        .filter(e => !(e.getAttribute('aria-label') || e.textContent.trim()
                       || (e.id && document.querySelector(`label[for="${e.id}"]`))))
        .map(e => e.outerHTML.slice(0, 80))""")


# ------------------------------------------------------------------ the tests


def test_conversation_refresh_branch_and_switch_back(browser: Any, served: Served) -> None:
    from playwright.sync_api import expect

    page = open_page(browser, served, "ann")
    # The offline model is said plainly, from GET /api/info's modelLabel.
    expect(page.locator("#model-notice")).to_contain_text("offline rules model, not an LLM")
    expect(page.locator("#model-badge")).to_have_text("Model: offline-rules")

    for text, agent in MESSAGES:
        send(page, text, agent)
    expect(page.locator("#memory")).to_contain_text("AAPL")  # the watch list, after the run
    expect(page.locator('#memory .stats tr[data-agent="stock_analyst"]')).to_have_count(1)
    # Long memory: what was said, searched across the person's conversations.
    page.locator("#memory-q").fill("AAPL")
    page.keyboard.press("Enter")
    expect(page.locator("#memory-results li").first).to_contain_text("AAPL", timeout=WAIT)
    said = conversation(page)
    assert [(t, a[-1:]) for t, a in said] == [(t, [a]) for t, a in MESSAGES]
    shot(page, served, "web-desktop.png")

    # Tool calls are folded but can be opened.
    first_tool = page.locator("#messages .turn").first.locator("details.tool").first
    assert first_tool.get_attribute("open") is None
    expect(first_tool.locator(".args")).to_be_hidden()
    first_tool.locator("summary").focus()
    page.keyboard.press("Enter")
    expect(first_tool.locator(".args")).to_be_visible()
    expect(first_tool.locator(".args")).to_contain_text("{")

    t = tree(page)
    assert (t["runs"], t["branches"], t["lanes"], t["edges"]) == (3, 1, 1, 2)
    assert [r["text"].split(" ", 1)[1] for r in t["rows"]] == [m for m, _ in MESSAGES]
    assert unnamed_controls(page) == []
    # Keyboard: Tab from the message box reaches Send, and the focus is drawn.
    page.locator("#composer-input").focus()
    page.keyboard.press("Tab")
    expect(page.locator("#send")).to_be_focused()
    assert page.evaluate("getComputedStyle(document.activeElement).outlineStyle") == "solid"

    # A refresh restores the same conversation from the server.
    page.reload()
    wait_ready(page)
    assert conversation(page) == said
    assert tree(page)["runs"] == 3
    # The first Tab reaches the skip link, which goes to the message box (the address, which
    # names the thread, stays).
    address = page.evaluate("location.hash")
    assert address.startswith("#/t/")
    page.keyboard.press("Tab")
    expect(page.locator("#skip")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("#composer-input")).to_be_focused()
    assert page.evaluate("location.hash") == address

    # Continue from the first run: a sibling branch; the tree forks.
    first_run = t["rows"][0]["id"]
    page.locator(f'#tree .tree-row[data-run-id="{first_run}"] .continue-run').click()
    expect(page.locator("#messages .turn")).to_have_count(1)
    expect(page.locator("#composer-input")).to_be_focused()
    expect(page.locator("#branch-note")).to_contain_text("new branch")
    send(page, *BRANCH_MESSAGE)
    forked = tree(page)
    assert (forked["runs"], forked["branches"], forked["lanes"]) == (4, 2, 2)
    new_run = forked["rows"][-1]
    assert new_run["lane"] == 1 and new_run["current"]
    assert [t for t, _ in conversation(page)] == [MESSAGES[0][0], BRANCH_MESSAGE[0]]
    shot(page, served, "web-branch.png")

    # Switch back to the first branch: its whole history again.
    old_leaf = t["rows"][2]["id"]
    page.locator(f'#tree .tree-row[data-run-id="{old_leaf}"] .show-run').click()
    expect(page.locator("#messages .turn")).to_have_count(3)
    assert conversation(page) == said
    assert page.evaluate("location.hash").endswith(f"/r/{old_leaf}")
    expect(page.locator("#branch-note")).to_contain_text("another branch")
    # ... and after a refresh the page is on the same branch.
    page.reload()
    wait_ready(page)
    assert conversation(page) == said
    assert tree(page)["branches"] == 2
    # The newer branch is one click away.
    page.locator(f'#tree .tree-row[data-run-id="{new_run["id"]}"] .show-run').click()
    expect(page.locator("#messages .turn")).to_have_count(2)

    # Rename the conversation with the keyboard; it stays renamed after a refresh.
    page.locator("#thread-list .thread.current .rename").focus()
    page.keyboard.press("Enter")
    expect(page.locator("#thread-list .rename-form input")).to_be_focused()
    page.keyboard.press("Control+A")
    page.keyboard.type("Jokes and stocks")
    page.keyboard.press("Enter")
    current = page.locator("#thread-list .thread.current .thread-name")
    expect(current).to_have_text("Jokes and stocks")
    expect(page.locator("#thread-title")).to_have_text("Jokes and stocks")
    page.reload()
    wait_ready(page)
    expect(page.locator("#thread-title")).to_have_text("Jokes and stocks")
    assert page.errors == [] and page.foreign == []
    page.context.close()


def test_second_user_sees_nothing_of_the_first(browser: Any, served: Served) -> None:
    from playwright.sync_api import expect

    bob = open_page(browser, served, "bob")
    expect(bob.locator("#threads-empty")).to_be_visible()  # ann's conversations are not listed
    expect(bob.locator("#memory")).not_to_contain_text("AAPL")
    send(bob, "hello, my name is Bob", None)
    expect(bob.locator("#thread-list .thread")).to_have_count(1)
    bob_thread = bob.evaluate("location.hash").split("/")[2]
    # Paging: 21 more threads (made over the API) are shown 20 at a time, newest first.
    with api(served.server, served.tokens["bob"]) as client:
        for i in range(21):
            assert client.post("/api/threads", json={"title": f"bob {i:02d}"}).status_code == 201
    bob.reload()
    wait_ready(bob)
    expect(bob.locator("#thread-list .thread")).to_have_count(20)
    expect(bob.locator("#thread-list .thread-name").first).to_have_text("bob 20")
    bob.locator("#more-threads").click()
    expect(bob.locator("#thread-list .thread")).to_have_count(22)
    expect(bob.locator("#more-threads")).to_be_hidden()

    ann = open_page(browser, served, "ann")
    names = ann.locator("#thread-list .thread-name").all_text_contents()
    assert names and not any("bob" in n.lower() for n in names), names
    expect(ann.locator("#memory")).not_to_contain_text("Bob")
    # Even with bob's thread id in the address, ann sees nothing of it.
    ann.goto(f"{served.server.url}/#/t/{bob_thread}")
    wait_ready(ann)
    expect(ann.locator("#run-error")).to_contain_text("does not exist (or is not yours)")
    expect(ann.locator("#messages")).not_to_contain_text("Bob")
    # Deleting: bob deletes his first conversation (with a confirmation).
    row = bob.locator(f'#thread-list .thread[data-thread-id="{bob_thread}"]')
    row.locator(".delete").click()
    expect(row.locator(".confirm-delete")).to_be_focused()
    bob.keyboard.press("Enter")
    expect(bob.locator(f'#thread-list .thread[data-thread-id="{bob_thread}"]')).to_have_count(0)
    assert bob.errors == [] and ann.errors == [] and bob.foreign == ann.foreign == []
    bob.context.close()
    ann.context.close()


def test_phone_width(browser: Any, served: Served) -> None:
    from playwright.sync_api import expect

    page = open_page(browser, served, "ann", PHONE, scale=2)
    expect(page.locator("#messages .turn").first).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    expect(page.locator("#threads")).to_be_hidden()  # the sidebar is folded away
    expect(page.locator("#toggle-threads")).to_be_visible()
    page.evaluate("window.scrollTo(0, 0)")
    shot(page, served, "web-phone.png", full_page=True)
    page.locator("#toggle-threads").click()
    expect(page.locator("#threads")).to_be_visible()
    expect(page.locator("#toggle-threads")).to_have_attribute("aria-expanded", "true")
    page.keyboard.press("Escape")
    expect(page.locator("#threads")).to_be_hidden()
    expect(page.locator("#toggle-threads")).to_be_focused()
    assert page.errors == [] and page.foreign == []
    page.context.close()


def test_errors_are_said_plainly(browser: Any, tmp_path: Path) -> None:
    """A rejected token, a run that fails (RUN_ERROR), an HTTP error, an unreachable server."""
    from playwright.sync_api import expect

    commands = readme_commands()
    token_command = next(c for c in commands if c[:3] == ["serve", "token", "add"])
    token = add_token(token_command, "eve", tmp_path)
    port = free_port()
    # A run time limit no run can meet: every run ends in RUN_ERROR (code timeout).
    args = ["serve", "--port", str(port), "--run-timeout", "0.001"]
    server = Server(args, tmp_path, port).start()
    try:
        context = browser.new_context(viewport=DESKTOP)
        page = context.new_page()
        page.goto(server.url + "/")
        page.locator("#token-input").fill("mat_not_a_token")
        page.keyboard.press("Enter")
        expect(page.locator("#signin-error")).to_contain_text("not accepted")
        page.locator("#token-input").fill(token)
        page.keyboard.press("Enter")
        wait_ready(page)
        page.locator("#composer-input").fill("tell me a joke")
        page.keyboard.press("Enter")
        turn = page.locator("#messages .turn").last
        expect(turn.locator(".bubble.failed")).to_contain_text("The run failed", timeout=WAIT)
        expect(page.locator("#run-error")).to_contain_text("timeout")
        # The thread is deleted behind the page's back: the next message is an HTTP 404.
        thread = page.evaluate("location.hash").split("/")[2]
        with api(server, token) as client:
            assert client.delete(f"/api/threads/{thread}").status_code == 204
        page.locator("#composer-input").fill("still there?")
        page.keyboard.press("Enter")
        expect(page.locator("#run-error")).to_contain_text("404")
        expect(page.locator("#messages")).not_to_contain_text("still there?")  # not taken
        expect(page.locator("#composer-input")).to_have_value("still there?")  # not lost
        # The server goes away: the page says so, and recovers when it is back.
        server.stop()
        page.locator("#new-thread").click()
        page.keyboard.press("Enter")  # sends "still there?" (kept in the box)
        expect(page.locator("#offline-server")).to_be_visible()
        expect(page.locator("#offline-server")).to_contain_text("cannot be reached")
        expect(page.locator("#run-error")).to_contain_text("Not sent")
        expect(page.locator("#composer-input")).to_have_value("still there?")
        server.start()
        expect(page.locator("#offline-server")).to_be_hidden(timeout=20_000)
        # Signing out forgets the token: a refresh asks for it again.
        page.locator("#signout").click()
        expect(page.locator("#signin-error")).to_have_text("You are signed out.")
        assert page.evaluate("localStorage.length") == 0
        page.reload()
        expect(page.locator("#token-input")).to_be_focused()
        expect(page.locator("#app")).to_be_hidden()
        context.close()
    finally:
        server.stop()


def test_event_stream_parser_in_the_browser(browser: Any, served: Served) -> None:
    """The page's text/event-stream reader: events split anywhere across chunks, CRLF and CR
    line ends, comments, multi-line data, an event left open at the end of the stream."""
    page = browser.new_context().new_page()
    page.goto(served.server.url + "/")
    got = page.evaluate("""async () => {
        const { readEvents } = await import('./sse.js');
        const text = ': keep-alive\\r\\ndata: {"type":"A",\\r\\ndata: "n":1}\\r\\n\\r\\n'
          + 'event: x\\rdata: {"type":"B"}\\r\\rdata: {"type":"C","s":"é"}\\n\\ndata: {"type":"D"}';
        const bytes = new TextEncoder().encode(text);
        const results = [];
        for (const size of [1, 2, 3, 7, bytes.length]) {
          const stream = new ReadableStream({ start(c) {
            for (let i = 0; i < bytes.length; i += size) c.enqueue(bytes.slice(i, i + size));
            c.close(); } });
          const out = [];
          for await (const e of readEvents(new Response(stream))) out.push(e);
          results.push(out);
        }
        return results;
    }""")
    expected = [{"type": "A", "n": 1}, {"type": "B"}, {"type": "C", "s": "é"}, {"type": "D"}]
    assert got == [expected] * 5
    page.context.close()


def test_stop_and_a_run_going_elsewhere(browser: Any, tmp_path: Path) -> None:
    """Stop, and a second tab of the same person while a run is going: 409 said plainly, the
    run shown as running, then its answer once it has finished. The server is the real
    ``multi-agent serve`` whose offline model stalls on ``stallN-word`` (tests/serve's helper)."""
    from playwright.sync_api import expect

    token_command = next(c for c in readme_commands() if c[:3] == ["serve", "token", "add"])
    token = add_token(token_command, "ann", tmp_path)
    port = free_port()
    slow = [sys.executable, str(Path(__file__).parents[1] / "serve" / "_slow_serve.py")]
    server = Server(["serve", "--port", str(port)], tmp_path, port, program=slow).start()
    served = Served("sqlite", server, {"ann": token}, None)
    try:
        first = open_page(browser, served, "ann")
        first.locator("#composer-input").fill("tell me a joke about python stall30-s1")
        first.keyboard.press("Enter")
        turn = first.locator("#messages .turn").last
        # The manager's hand-over arrives, then funny_nerd's model stalls: stop it.
        expect(turn.locator('.step[data-to="funny_nerd"]')).to_have_count(1, timeout=WAIT)
        expect(first.locator("#stop")).to_be_visible()
        first.locator("#stop").click()
        expect(turn).to_have_attribute("data-status", "stopped", timeout=WAIT)
        expect(turn).to_contain_text("Stopped")
        first.wait_for_function("document.body.dataset.idle === '1'")
        expect(first.locator("#tree .run-status")).to_have_text(" stopped")

        # A run of some seconds in the first tab; the second tab sees it going.
        first.locator("#composer-input").fill("tell me a joke about python stall8-s2")
        first.keyboard.press("Enter")
        expect(first.locator("#messages .turn").last.locator(".step")).to_have_count(1,
                                                                                    timeout=WAIT)
        second = open_page(browser, served, "ann")
        expect(second.locator("#tree .run-status.running")).to_have_count(1)
        second.locator("#composer-input").fill("are you there?")
        second.keyboard.press("Enter")
        expect(second.locator("#run-error")).to_contain_text("still going")
        # Once it has finished, the second tab shows its answer without a reload.
        expect(second.locator("#tree .run-status.running")).to_have_count(0, timeout=WAIT)
        expect(second.locator("#messages .turn").last.locator(".agent-name")).to_have_text(
            "funny_nerd", timeout=WAIT)
        expect(first.locator("#messages .turn").last).to_have_attribute(
            "data-status", "finished", timeout=WAIT)
        assert first.errors == second.errors == [] and first.foreign == second.foreign == []
        first.context.close()
        second.context.close()
    finally:
        server.stop()
