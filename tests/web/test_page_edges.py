"""Probing the web page at ``/`` as a demanding (or hostile) person would.

The real ``multi-agent serve`` (tests/serve/_slow_serve.py: the offline model, which stalls on
``stallN-word`` so that a run can be caught while it is going) on a fresh SQLite file, tokens
from the README's ``serve token add``, and Debian's Chromium driven with Playwright, as in
tests/web/test_page.py. Screenshots go to $MULTI_AGENT_EDGE_SHOTS when that directory exists.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.chat._util import MULTI_AGENT, clean_env
from tests.web._served import (
    Server,
    add_token,
    api,
    free_port,
    readme_commands,
)

pytestmark = pytest.mark.timeout(300)

WAIT = 60_000
DESKTOP = {"width": 1360, "height": 860}
PHONE = {"width": 375, "height": 812}
SLOW = [sys.executable, str(Path(__file__).parents[1] / "serve" / "_slow_serve.py")]
SHOTS = Path(os.environ.get("MULTI_AGENT_EDGE_SHOTS", "/nonexistent"))
XSS = ('<img src=x onerror="alert(1)"><script>alert(2)</script>'
       '<a href="javascript:alert(3)">x</a> [link](javascript:alert(4)) **bold** &amp;')


@dataclass
class Site:
    server: Server
    cwd: Path

    def token(self, user: str) -> str:
        command = next(c for c in readme_commands() if c[:3] == ["serve", "token", "add"])
        return add_token(command, user, self.cwd)

    def revoke(self, user: str) -> None:
        proc = subprocess.run([MULTI_AGENT, "serve", "token", "revoke", user], cwd=self.cwd,
                              env=clean_env(), capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    cwd = tmp_path_factory.mktemp("probe-web")
    s = Site(Server(["serve", "--port", str(port := free_port())], cwd, port, program=SLOW), cwd)
    # a token before the server starts, so that the token file exists
    first = s.token("first")
    s.server.start()
    s.first = first  # type: ignore[attr-defined]
    try:
        yield s
    finally:
        out = s.server.stop()
        assert "Traceback" not in out, out


# ------------------------------------------------------------------ helpers


def new_page(browser: Any, site: Site, viewport: dict[str, int] = DESKTOP) -> Any:
    context = browser.new_context(viewport=viewport)
    page = context.new_page()
    page.errors = []
    page.dialogs = []
    page.on("pageerror", lambda e: page.errors.append(str(e)))

    def dialog(d: Any) -> None:
        page.dialogs.append(d.message)
        d.dismiss()

    page.on("dialog", dialog)
    page.goto(site.server.url + "/")
    return page


def sign_in(page: Any, token: str) -> None:
    from playwright.sync_api import expect

    expect(page.locator("#token-input")).to_be_focused()
    page.keyboard.type(token)
    page.keyboard.press("Enter")
    expect(page.locator("#app")).to_be_visible()
    wait_ready(page)


def open_page(browser: Any, site: Site, token: str,
              viewport: dict[str, int] = DESKTOP) -> Any:
    page = new_page(browser, site, viewport)
    sign_in(page, token)
    return page


def wait_ready(page: Any) -> None:
    page.wait_for_function("document.body.dataset.ready === '1'", timeout=WAIT)


def send(page: Any, text: str, *, wait: bool = True) -> None:
    from playwright.sync_api import expect

    turns = page.locator("#messages .turn")
    before = turns.count()
    page.locator("#composer-input").fill(text)
    page.locator("#composer-input").focus()
    page.keyboard.press("Enter")
    if wait:
        expect(turns).to_have_count(before + 1)
        expect(turns.nth(before)).to_have_attribute("data-status", "finished", timeout=WAIT)
        page.wait_for_function("document.body.dataset.idle === '1'", timeout=WAIT)


def shot(page: Any, name: str, *, full_page: bool = False) -> None:
    if SHOTS.is_dir():
        page.screenshot(path=str(SHOTS / name), full_page=full_page)


def run_over_http(client: httpx.Client, thread: str, text: str, run_id: str | None = None
                  ) -> None:
    body = {"threadId": thread, "runId": run_id or f"r-{uuid.uuid4().hex[:12]}",
            "messages": [{"id": str(uuid.uuid4()), "role": "user", "content": text}]}
    with client.stream("POST", f"/api/threads/{thread}/runs", json=body) as r:
        assert r.status_code == 200, r.read()
        for _ in r.iter_lines():
            pass


def injected(page: Any) -> int:
    """Elements that hostile text could have made: images, scripts, links to javascript:."""
    return page.evaluate("""() => document.querySelectorAll(
        'img, iframe, object, embed, script:not([type=module]), a[href^="javascript"], [onerror]'
    ).length""")


# ------------------------------------------------------------------ defects


def test_a_token_with_an_invisible_character_is_not_called_an_unreachable_server(
        browser: Any, site: Site) -> None:
    """A token pasted with a zero-width space (U+200B, what chat apps and documents add
    invisibly) or any character outside Latin-1: ``fetch`` refuses the header, and the page
    says "The server cannot be reached." and shows the red "cannot be reached" banner, though
    the server is up; a few seconds later the retry finds the server and the message vanishes
    (blank sign-in form, no word about the token). Expected: the token is said not to be
    accepted (or to contain a character a token cannot have), and no banner."""
    from playwright.sync_api import expect

    page = new_page(browser, site)
    page.locator("#token-input").fill(site.first + "\u200b")  # type: ignore[attr-defined]
    page.keyboard.press("Enter")
    error = page.locator("#signin-error")
    expect(error).not_to_have_text("Signing in…")
    text = error.text_content()
    banner = page.locator("#offline-server").is_visible()
    time.sleep(4)  # the page's retry (every 3 s)
    later = error.text_content()
    shot(page, "s17-token-zwsp.png")
    page.context.close()
    assert not banner, "the 'server cannot be reached' banner is shown for a bad token"
    assert "cannot be reached" not in text, text
    assert "token" in text.lower(), text
    assert later == text, f"the message changed by itself to {later!r}"


def test_a_first_message_with_an_emoji_at_the_60th_character_is_sent(
        browser: Any, site: Site) -> None:
    """The page makes a new conversation's title from the first 60 UTF-16 units of the first
    message (``text.slice(0, 60)`` in app.js ``send``): an emoji straddling that cut leaves a
    lone surrogate, the server refuses the title (422 "title is not valid text") and the
    message cannot be sent at all in a new conversation: "Not sent (the conversation could not
    be made): title is not valid text (422 invalid_request)". Expected: it is sent (the title
    cut on a character boundary)."""
    from playwright.sync_api import expect

    page = open_page(browser, site, site.first)  # type: ignore[attr-defined]
    page.locator("#new-thread").click()
    text = "a" * 59 + "😀 tell me a joke about python"
    send(page, text, wait=False)
    page.wait_for_function("document.body.dataset.idle === '1'", timeout=WAIT)
    expect(page.locator("#run-error")).to_be_hidden()
    expect(page.locator("#messages .turn")).to_have_count(1)
    expect(page.locator("#messages .turn .bubble.user .text")).to_have_text(text)
    page.context.close()


def test_a_message_sent_after_the_token_was_revoked_is_kept_in_the_box(
        browser: Any, site: Site) -> None:
    """The token is revoked while the page is open; the person types a message and presses
    Enter. The sign-in form comes ("Your token is no longer accepted; sign in again.": good),
    but the message is gone: the box was emptied before the request and, on a 401, the text is
    not put back (app.js ``send``: ``handleAuth`` instead of the "back in the box" branch).
    After signing in again with a new token the box is empty. Expected: the unsent message is
    still in the box (as for a 404, a 409 or an unreachable server)."""
    from playwright.sync_api import expect

    token = site.token("rev1")
    page = open_page(browser, site, token)
    send(page, "tell me a joke about python")
    site.revoke("rev1")
    page.locator("#composer-input").fill("a long message I typed with care")
    page.keyboard.press("Enter")
    expect(page.locator("#signin-error")).to_contain_text("no longer accepted")
    sign_in(page, site.token("rev1"))
    value = page.locator("#composer-input").input_value()
    page.context.close()
    assert value == "a long message I typed with care", value


def test_the_next_person_to_sign_in_sees_nothing_of_the_one_whose_token_was_revoked(
        browser: Any, site: Site) -> None:
    """rev2 searches their memory ("zebra42": what they said comes up), then their token is
    revoked; the page asks for a token and bea signs in on the same page. bea sees rev2's
    search results (what rev2 said, word for word) and rev2's search words in the box, and a
    red "That conversation does not exist (or is not yours)." about rev2's conversation still
    in the address. Only "Sign out" clears them (app.js ``signOut``; state.js ``handleAuth``
    does not). Expected: nothing of rev2 on bea's screen."""
    from playwright.sync_api import expect

    page = open_page(browser, site, site.token("rev2"))
    send(page, "my secret plan is zebra42, tell me a joke")
    page.locator("#memory-q").fill("zebra42")
    page.keyboard.press("Enter")
    expect(page.locator("#memory-results")).to_contain_text("secret plan", timeout=WAIT)
    site.revoke("rev2")
    page.locator("#composer-input").fill("hello?")
    page.keyboard.press("Enter")
    expect(page.locator("#signin-error")).to_contain_text("no longer accepted")
    sign_in(page, site.token("bea"))
    expect(page.locator("#who")).to_have_text("bea")
    page.wait_for_timeout(1000)
    shot(page, "s17-revoked-next-user.png")
    results = page.locator("#memory-results").text_content()
    box = page.locator("#memory-q").input_value()
    notice = page.locator("#run-error").text_content() if page.locator(
        "#run-error").is_visible() else ""
    page.context.close()
    assert "zebra42" not in results and "secret" not in results, results
    assert box == "", box
    assert notice == "", notice


def test_after_a_refresh_in_the_middle_of_a_run_it_is_shown_running_and_can_be_stopped(
        browser: Any, site: Site) -> None:
    """A refresh while a run is going (the README: the run goes on and the page shows it):
    the conversation shows the part stored so far with no sign that the team is still working
    (no "… is working" line, the turn looks finished), the Send button is enabled (a message
    gets a 409), and there is no Stop button: a run of up to 300 s can no longer be stopped
    from the page. Only the tree's small "running" says it. Expected: the running turn is
    shown as running, and Stop is offered."""
    from playwright.sync_api import expect

    page = open_page(browser, site, site.first)  # type: ignore[attr-defined]
    page.locator("#new-thread").click()
    send(page, "hello there")
    send(page, "tell me a joke about python stall20-refresh1", wait=False)
    expect(page.locator("#messages .turn").last.locator(".step")).to_have_count(1,
                                                                               timeout=WAIT)
    page.reload()
    wait_ready(page)
    expect(page.locator("#tree .run-status.running")).to_have_count(1)
    shot(page, "s17-refresh-mid-run.png")
    last = page.locator("#messages .turn").last
    working = last.locator(".working").count()
    status = last.get_attribute("data-status")
    stop_visible = page.locator("#stop").is_visible()
    send_enabled = page.locator("#send").is_enabled()
    # let the run end before the next test
    expect(page.locator("#tree .run-status.running")).to_have_count(0, timeout=WAIT)
    page.context.close()
    assert stop_visible, "no Stop button for the run that is going"
    assert working == 1 or status == "running", (working, status)
    assert not send_enabled, "Send is enabled while the conversation's run is going"


def test_a_found_message_says_when_at_a_phone_width(browser: Any, site: Site) -> None:
    """At 375 px the memory search's "who · when" line of each hit is cut to 30vw (112 px) by
    the topbar's ``.who`` rule it shares (style.css ``.who { max-width: 30vw; ... }``):
    "funny_nerd · 0…" - the time is not shown. Expected: the whole line is shown."""
    from playwright.sync_api import expect

    page = open_page(browser, site, site.token("phoneuser"), PHONE)
    send(page, "tell me a joke about physics")
    page.locator("#memory-q").fill("physics")
    page.keyboard.press("Enter")
    hits = page.locator("#memory-results li .who")
    expect(hits.first).to_be_visible(timeout=WAIT)
    cut = page.evaluate("""() => [...document.querySelectorAll('#memory-results li .who')]
        .filter(e => e.scrollWidth > e.clientWidth + 1).map(e => e.textContent)""")
    page.locator("#memory-results").scroll_into_view_if_needed()
    shot(page, "s17-phone-search.png")
    page.context.close()
    assert cut == [], f"cut off at a phone's width: {cut}"


def test_a_mangled_deep_link_says_so_and_the_page_still_works(
        browser: Any, site: Site) -> None:
    """An address cut off when it was copied (``#/t/%E0%A4%A``, half a percent-escape): the
    page's router throws "URI malformed" (app.js ``route``: ``decodeURIComponent`` unguarded),
    the load stops half-way (``data-ready`` stays 0) and the page shows an empty "New
    conversation" with no word about the link. Expected: no uncaught error; a message that the
    conversation in the address was not found (as for an unknown id)."""

    page = open_page(browser, site, site.first)  # type: ignore[attr-defined]
    page.goto(site.server.url + "/#/t/%E0%A4%A")
    page.reload()
    page.wait_for_timeout(2500)
    ready = page.evaluate("document.body.dataset.ready")
    errors = list(page.errors)
    notice = page.locator("#run-error")
    visible = notice.is_visible()
    page.context.close()
    assert errors == [], errors
    assert ready == "1"
    assert visible


# ------------------------------------------------------------------ what behaves well


def test_hostile_text_everywhere_is_shown_literally(browser: Any, site: Site) -> None:
    """Markup and markdown-like text in a title (over HTTP), messages, tool arguments and
    results, the memory panel (user: state written by the store library) and the search: shown
    as text, nothing runs, no element made from it."""
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    from playwright.sync_api import expect

    token = site.token("xss")
    with api(site.server, token) as client:
        r = client.post("/api/threads", json={"title": XSS})
        assert r.status_code == 201
        thread = r.json()["threadId"]

    async def plant() -> None:
        from multi_agent import DatabaseSessionService

        service = DatabaseSessionService(f"sqlite+aiosqlite:///{site.cwd / 'multi_agent_data.db'}")
        try:
            await service.create_session(app_name="multi_agent", user_id="xss", state={
                "user:user_name": XSS,
                "user:preferences": {"stock_watchlist": [XSS], XSS: XSS, "joke_preferences": [XSS]},
                "user:agent_stats": {XSS: {"delegations": 1, "last_used": XSS}},
            })
        finally:
            await service.close()

    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, plant()).result()

    page = open_page(browser, site, token)
    page.goto(f"{site.server.url}/#/t/{thread}")
    page.reload()
    wait_ready(page)
    send(page, f"tell me a joke about {XSS}")
    send(page, f"add {XSS} to my watch list")
    expect(page.locator("#thread-title")).to_have_text(XSS)
    expect(page.locator("#memory")).to_contain_text(XSS)
    page.locator("#memory-q").fill("<img onerror")
    page.keyboard.press("Enter")
    expect(page.locator("#memory-results")).to_contain_text(XSS, timeout=WAIT)
    for details in page.locator("#messages details.tool").all():
        details.locator("summary").click()
    page.wait_for_timeout(500)
    users = page.locator("#messages .bubble.user .text").all_text_contents()
    shot(page, "s17-xss.png")
    assert users == [f"tell me a joke about {XSS}", f"add {XSS} to my watch list"]
    assert page.locator("#messages").inner_text().count("<script>") >= 2
    assert injected(page) == 0
    assert page.dialogs == [] and page.errors == []
    page.context.close()


def test_rtl_emoji_and_zero_width_titles_and_a_10000_character_title(
        browser: Any, site: Site) -> None:
    """RTL, emoji and zero-width characters round-trip into the sidebar and the heading; a
    10,000-character title over HTTP is a 422 naming the limit; long titles are cut with an
    ellipsis in the sidebar without widening the page."""
    from playwright.sync_api import expect

    token = site.token("rtl")
    title = "שלום עולם 👩‍👩‍👧 zero\u200bwidth \u202eevil\u202c"
    with api(site.server, token) as client:
        r = client.post("/api/threads", json={"title": "x" * 10_000})
        assert r.status_code == 422, r.text
        assert "200" in r.json()["error"]["message"]
        assert client.post("/api/threads", json={"title": title}).status_code == 201
        assert client.post("/api/threads", json={"title": "W" * 200}).status_code == 201
    page = open_page(browser, site, token, PHONE)
    page.locator("#toggle-threads").click()
    names = page.locator("#thread-list .thread-name").all_text_contents()
    assert names == ["W" * 200, title]
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    page.locator("#thread-list .thread-open").nth(1).click()
    expect(page.locator("#thread-title")).to_have_text(title)
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    page.context.close()


def test_long_unbroken_words_do_not_widen_the_phone_page(browser: Any, site: Site) -> None:
    from playwright.sync_api import expect

    page = open_page(browser, site, site.token("longword"), PHONE)
    word = "y" * 400
    send(page, f"tell me a joke about {word}")
    send(page, f"add {'ABCDEFGHIJKLMNOPQRSTUVWXYZ' * 6} to my watch list")
    page.locator("#memory-q").fill(word)
    page.keyboard.press("Enter")
    expect(page.locator("#memory-results li").first).to_contain_text("y" * 40, timeout=WAIT)
    wide = page.evaluate("""() => [...document.querySelectorAll('body *')]
        .filter(e => e.getBoundingClientRect().right > innerWidth + 1
                     && getComputedStyle(e).position !== 'absolute')
        .map(e => e.tagName + '.' + e.className)""")
    shot(page, "s17-phone-long-words.png", full_page=True)
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    assert wide == []
    page.context.close()


def test_three_hundred_runs_load_and_branch(browser: Any, site: Site) -> None:
    """A conversation of 300 runs (made over HTTP) loads whole, with its tree, and
    "continue from here" on the first run works with the keyboard alone."""
    from playwright.sync_api import expect

    token = site.token("many")
    with api(site.server, token) as client:
        assert client.post("/api/threads", json={"threadId": "long", "title": "Long"}
                           ).status_code == 201
        for i in range(300):
            run_over_http(client, "long", f"tell me a joke about python {i}", f"r{i:04d}")
    page = open_page(browser, site, token)
    expect(page.locator("#messages .turn")).to_have_count(300)
    assert page.locator("#tree").get_attribute("data-runs") == "300"
    button = page.locator('#tree .tree-row[data-run-id="r0000"] .continue-run')
    button.focus()
    page.keyboard.press("Enter")
    expect(page.locator("#messages .turn")).to_have_count(1)
    expect(page.locator("#composer-input")).to_be_focused()
    page.keyboard.type("tell me a joke about math")
    page.keyboard.press("Enter")
    expect(page.locator("#messages .turn")).to_have_count(2)
    expect(page.locator("#messages .turn").last).to_have_attribute("data-status", "finished",
                                                                    timeout=WAIT)
    page.wait_for_function("document.body.dataset.idle === '1'", timeout=WAIT)
    assert page.locator("#tree").get_attribute("data-branches") == "2"
    assert page.errors == []
    page.context.close()


def test_a_chat_cli_session_shows_on_the_page(browser: Any, site: Site) -> None:
    token = site.token("cliuser")
    proc = subprocess.run(
        [MULTI_AGENT, "chat", "--user", "cliuser", "--new"], cwd=site.cwd, env=clean_env(),
        input="tell me a joke about python\nadd MSFT to my watchlist\nmy name is Cleo\n",
        capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    page = open_page(browser, site, token)
    from playwright.sync_api import expect

    expect(page.locator("#thread-list .thread")).to_have_count(1)
    expect(page.locator("#messages .turn")).to_have_count(3)
    agents = page.evaluate("""() => [...document.querySelectorAll('#messages .turn')].map(
        t => [...t.querySelectorAll('.agent-name')].map(e => e.textContent).pop())""")
    assert agents == ["funny_nerd", "stock_analyst", "manager"]
    expect(page.locator("#memory")).to_contain_text("MSFT")
    expect(page.locator("#memory")).to_contain_text("Cleo")
    assert page.locator("#tree").get_attribute("data-runs") == "3"
    page.context.close()


def test_memory_search_with_cjk_rtl_and_special_characters(browser: Any, site: Site) -> None:
    from playwright.sync_api import expect

    page = open_page(browser, site, site.token("cjk"))
    send(page, "我喜欢吃苹果和香蕉")
    send(page, "שלום עולם")
    for q, found in [("苹果", "我喜欢吃苹果和香蕉"), ("שלום", "שלום עולם"), ("%", None),
                     ("_", None), ('"', None), ("*", None), ("(", None), ("\\", None),
                     ("' OR 1=1 --", None)]:
        page.locator("#memory-q").fill(q)
        page.keyboard.press("Enter")
        results = page.locator("#memory-results")
        expect(results).not_to_contain_text("Searching", timeout=WAIT)
        if found:
            expect(results.locator("li .found").first).to_have_text(found)
        else:
            expect(results).not_to_contain_text("Could not search")
    assert page.errors == []
    page.context.close()


def test_blank_and_wrong_tokens_are_said_plainly(browser: Any, site: Site) -> None:
    from playwright.sync_api import expect

    page = new_page(browser, site)
    page.locator("#token-input").fill("   ")
    page.keyboard.press("Enter")
    expect(page.locator("#signin-error")).to_have_text("Paste your token first.")
    page.locator("#token-input").fill("mat_" + "x" * 5000)
    page.keyboard.press("Enter")
    expect(page.locator("#signin-error")).to_contain_text("not accepted")
    expect(page.locator("#offline-server")).to_be_hidden()
    page.context.close()



def slow_server(tmp_path: Path) -> tuple[Server, str]:
    command = next(c for c in readme_commands() if c[:3] == ["serve", "token", "add"])
    token = add_token(command, "ann", tmp_path)
    port = free_port()
    return Server(["serve", "--port", str(port)], tmp_path, port, program=SLOW).start(), token


def start_stalled_run(page: Any, marker: str) -> Any:
    from playwright.sync_api import expect

    send(page, "hello")
    send(page, f"tell me a joke about python stall120-{marker}", wait=False)
    turn = page.locator("#messages .turn").last
    expect(turn.locator(".step")).to_have_count(1, timeout=WAIT)  # stored: the hand-over
    return turn


def test_ctrl_c_while_the_page_streams_a_run_stops_the_server_and_records_the_run(
        browser: Any, tmp_path: Path) -> None:
    """Ctrl-C (SIGINT) on ``multi-agent serve`` while the page is streaming a run (a slow
    model call): uvicorn first waits 15 s for the open stream, cancels it with "ERROR: Exception
    in ASGI application" and a Traceback, then re-raises SIGINT (uvicorn 0.55's
    ``capture_signals``), which cancels ``RunManager.shutdown`` half-way; ``asyncio.run`` then
    waits forever for the run task, whose ``finally`` awaits ``set_run_status`` on a store
    being closed. The process is still there 45 s later (a kill is needed; observed: never
    exits), "Stopped. Everything is saved." is never printed, and the run stays "running" in
    the store. Expected: the server stops within its grace (10 s + 5 s), without a traceback,
    the run recorded as stopped, so that after a restart the page shows it stopped."""
    from playwright.sync_api import expect

    server, token = slow_server(tmp_path)
    site = Site(server, tmp_path)
    try:
        page = open_page(browser, site, token)
        start_stalled_run(page, "sigint1")
        assert server.proc is not None
        server.proc.send_signal(signal.SIGINT)
        t0 = time.monotonic()
        try:
            server.proc.wait(45)
            exited = True
        except subprocess.TimeoutExpired:
            exited = False
            server.proc.kill()
            server.proc.wait(10)
        took = time.monotonic() - t0
        out = server.output()
        server.start()
        expect(page.locator("#offline-server")).to_be_hidden(timeout=20_000)
        page.reload()
        wait_ready(page)
        statuses = page.locator("#tree .run-status").all_text_contents()
        shot(page, "s17-after-ctrl-c.png")
        page.context.close()
        assert exited, f"multi-agent serve did not exit within 45 s of Ctrl-C: {out[-1500:]}"
        assert took < 30, took
        assert "Traceback" not in out, out[-3000:]
        assert "Stopped. Everything is saved." in out
        assert [s.strip() for s in statuses] == ["stopped"], statuses
    finally:
        server.stop()


def test_a_run_left_running_by_a_crashed_server_can_be_stopped_from_the_page(
        browser: Any, tmp_path: Path) -> None:
    """The server dies mid-run (SIGKILL: a crash, the OOM killer) and is started again. The
    run stays "running" in the store; on the page the tree says "running" and a new message is
    refused: "Not sent: Another run of this conversation is still going. Wait for it to
    finish, or stop it." - but nothing will finish it (only the 300 s run limit lifts the
    409), and the page has no Stop button, though the server can stop it
    (``POST .../stop`` records such a run as stopped, app.py ``stop_run``). The page also
    reloads the whole conversation every 2.5 s meanwhile (app.js ``watchRunning``, for as long as
    the store says running: forever). Expected: the page offers Stop for it (or says the run
    was interrupted) so that the conversation can go on."""
    from playwright.sync_api import expect

    server, token = slow_server(tmp_path)
    site = Site(server, tmp_path)
    try:
        page = open_page(browser, site, token)
        start_stalled_run(page, "crash1")
        assert server.proc is not None
        server.proc.kill()
        server.proc.wait(10)
        server.start()
        expect(page.locator("#offline-server")).to_be_hidden(timeout=20_000)
        page.reload()
        wait_ready(page)
        expect(page.locator("#tree .run-status.running")).to_have_count(1)
        page.locator("#composer-input").fill("tell me a joke about math")
        page.keyboard.press("Enter")
        expect(page.locator("#run-error")).to_contain_text("or stop it")
        shot(page, "s17-after-crash.png")
        stop = page.locator("#stop").is_visible()
        page.context.close()
        assert stop, "the page says 'stop it' but offers no Stop for the stuck run"
    finally:
        server.stop()


def test_keyboard_only_continue_from_an_answer_and_back_to_the_latest(
        browser: Any, site: Site) -> None:
    """Tab to a turn's "↳ Continue from here", Enter: the branch note and the message box get
    the focus; "Back to the latest" by keyboard returns to the whole conversation."""
    from playwright.sync_api import expect

    page = open_page(browser, site, site.token("keys"))
    for text in ("tell me a joke about python", "add AAPL to my watch list",
                 "what did we talk about?"):
        send(page, text)
    first = page.locator("#messages .turn").first.locator(".continue-turn")
    page.locator("#messages").focus()
    for _ in range(40):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement?.classList.contains('continue-turn')"):
            break
    assert page.evaluate("document.activeElement?.classList.contains('continue-turn')")
    first.focus()
    page.keyboard.press("Enter")
    expect(page.locator("#messages .turn")).to_have_count(1)
    expect(page.locator("#composer-input")).to_be_focused()
    expect(page.locator("#branch-note")).to_contain_text("new branch")
    page.keyboard.press("Shift+Tab")
    expect(page.locator("#branch-cancel")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("#messages .turn")).to_have_count(3)
    expect(page.locator("#branch-note")).to_be_hidden()
    assert page.errors == []
    page.context.close()


def test_back_after_switching_conversations_returns_to_the_previous_one(
        browser: Any, site: Site) -> None:
    """The page names the conversation in the address (``#/t/<id>``), but every switch
    replaces the history entry (app.js ``setRoute``: ``history.replaceState``): after opening
    conversation A, then B from the sidebar, the browser's Back button leaves the page
    altogether instead of going back to A (and Forward cannot return to B). Expected: Back
    shows A again (each switch is a history entry), as the address suggests."""
    from playwright.sync_api import expect

    token = site.token("backfwd")
    with api(site.server, token) as client:
        a = client.post("/api/threads", json={"title": "Conversation A"}).json()["threadId"]
        run_over_http(client, a, "tell me a joke about python")
        b = client.post("/api/threads", json={"title": "Conversation B"}).json()["threadId"]
        run_over_http(client, b, "add AAPL to my watch list")
    page = open_page(browser, site, token)
    page.locator(f'#thread-list .thread[data-thread-id="{a}"] .thread-open').click()
    expect(page.locator("#thread-title")).to_have_text("Conversation A")
    page.locator(f'#thread-list .thread[data-thread-id="{b}"] .thread-open').click()
    expect(page.locator("#thread-title")).to_have_text("Conversation B")
    page.go_back()
    page.wait_for_timeout(1500)
    url = page.url
    title = page.locator("#thread-title").text_content() if url.startswith(
        site.server.url) else None
    page.context.close()
    assert url.startswith(site.server.url), f"Back left the page: {url}"
    assert title == "Conversation A", title


def test_a_refused_first_message_leaves_no_empty_conversation_behind(
        browser: Any, site: Site) -> None:
    """A first message over the 16,000-character limit in a new conversation: the page first
    makes the conversation (POST /api/threads, titled with the message's start), then the run
    is refused (413, said plainly, the text back in the box: good) - but the conversation
    stays, empty ("0 runs"), in the sidebar and on the server; each new conversation tried this
    way leaves one more. Expected: a message that is not taken makes no conversation (or the
    empty one is removed)."""
    from playwright.sync_api import expect

    token = site.token("toolong")
    page = open_page(browser, site, token)
    expect(page.locator("#threads-empty")).to_be_visible()
    text = "tell me a joke " + "z" * 16_100
    page.locator("#composer-input").fill(text)
    page.locator("#composer-input").focus()
    page.keyboard.press("Enter")
    expect(page.locator("#run-error")).to_contain_text("at most 16000")
    expect(page.locator("#composer-input")).to_have_value(text)
    page.reload()
    wait_ready(page)
    rows = page.locator("#thread-list .thread").all_inner_texts()
    page.context.close()
    with api(site.server, token) as client:
        items = client.get("/api/threads").json()["items"]
    assert rows == [] and items == [], (rows, items)
