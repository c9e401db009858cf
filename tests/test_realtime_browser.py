"""The page glue in a real browser: base.html's stream, htmx 4's SSE extension and app.js.

Events are recorded in-process (the `app` fixture) into the database a gunicorn server reads, so
these tests drive a Chromium of their own, in a thread of their own: Playwright's sync API allows
one instance per thread, and the browser suite (tests/e2e) holds the main thread's.
"""
import shutil
import threading

import pytest
from playwright.sync_api import expect, sync_playwright

from rentpe import realtime
from rentpe.extensions import db
from tests.factories import PASSWORD

pytestmark = [pytest.mark.e2e, pytest.mark.parametrize("broker", ["redis"], indirect=True)]

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
# A function, not an expression: Playwright polls a bare expression with eval, which our CSP blocks.
CONNECTED = "() => document.querySelector('#sse')?.dataset.state === 'live'"


@pytest.fixture
def app_overrides(realtime_overrides):
    return realtime_overrides


@pytest.fixture
def in_browser(app, live, live_server, buyer):
    """`in_browser(scenario)` runs `scenario(page, user_id)` in a logged-in buyer's tab on a gunicorn
    server (replay limit 2, to see a resync), in a thread with its own app context."""
    realtime.register_renderer(
        "test.note",
        lambda e: f'<hx-partial hx-target="main" hx-swap="beforeend"><p id="note-{e.data["n"]}">{e.data["n"]}</p></hx-partial>',
    )
    base_url, email, user_id = live_server(STREAM_REPLAY_LIMIT="2"), buyer.email, buyer.id

    def run(scenario):
        failures = []

        def browse():
            try:
                with app.app_context(), sync_playwright() as playwright:
                    browser = playwright.chromium.launch(executable_path=shutil.which("chromium"), args=CHROMIUM_ARGS)
                    try:
                        page = browser.new_context(base_url=base_url).new_page()
                        page.goto("/login")
                        page.get_by_label("E-mail").fill(email)
                        page.get_by_label("Password").fill(PASSWORD)
                        page.get_by_role("button", name="Log in").click()
                        expect(page.get_by_role("button", name="Log out")).to_be_visible()
                        scenario(page, user_id)
                    finally:
                        browser.close()
            except BaseException as exc:  # re-raised in the test's thread
                failures.append(exc)

        thread = threading.Thread(target=browse)
        thread.start()
        thread.join(timeout=120)
        assert not thread.is_alive(), "the browser scenario did not finish"
        if failures:
            raise failures[0]

    return run


def note(user_id, n, publish=True):
    realtime.record([user_id], "test.note", {"n": n})
    db.session.commit()
    if publish:
        realtime.publish_committed()


def test_a_live_event_updates_the_page_and_a_resync_reloads_it(in_browser):
    def scenario(page, user_id):
        page.wait_for_function(CONNECTED)
        note(user_id, "hello")
        expect(page.locator("main #note-hello")).to_have_text("hello")

        page.evaluate("window.beforeResync = true")
        for n in ("a", "b", "c"):
            note(user_id, n, publish=False)  # three events the stream never saw: over the limit of 2
        with page.expect_event("load"):
            realtime.end_streams(user_id)  # the client reconnects with Last-Event-ID: 1
        assert page.evaluate("window.beforeResync") is None
        page.wait_for_function(CONNECTED)
        assert page.locator("#sse").inner_html() == ""

    in_browser(scenario)


def test_a_failed_first_connect_is_retried(in_browser):
    def scenario(page, user_id):
        attempts = []

        def fail_first(route):
            attempts.append(route.request.url)
            if len(attempts) == 1:
                route.fulfill(status=503, body="<h1>Restarting</h1>")
            else:
                route.continue_()

        page.route("**/events?*", fail_first)
        page.goto("/")
        page.wait_for_function(CONNECTED, timeout=5000)
        assert len(attempts) == 2
        assert page.locator("#sse").inner_html() == ""  # the 503 page was not swapped in

    in_browser(scenario)


def test_a_tab_pushed_out_by_newer_streams_stops_instead_of_pushing_back(in_browser):
    """Past STREAM_MAX_PER_USER (10) streams of one person on one worker, the oldest ends with
    `event: replaced`: stream.js stops that page's stream rather than reconnect (which would push
    out another tab's, and so on in a loop), and says so."""
    import httpx

    def scenario(page, user_id):
        page.wait_for_function(CONNECTED)
        cookies = {c["name"]: c["value"] for c in page.context.cookies()}
        base = "/".join(page.url.split("/", 3)[:3])
        stop = threading.Event()

        def hold():  # another tab of the same person, newer than the page's
            try:
                with httpx.Client(base_url=base, cookies=cookies, timeout=httpx.Timeout(10, read=30)) as http:
                    with http.stream("GET", "/events?after=0") as response:
                        for _ in response.iter_bytes():
                            if stop.is_set():
                                return
            except httpx.HTTPError:
                pass  # the server stops at the end of the test

        threads = [threading.Thread(target=hold, daemon=True) for _ in range(10)]
        for thread in threads:
            thread.start()
        try:
            page.wait_for_function("() => document.querySelector('#sse').dataset.state === 'replaced'", timeout=10_000)
            page.wait_for_timeout(1500)
            assert page.evaluate("() => document.querySelector('#sse').dataset.state") == "replaced"  # not back
            assert "Reload to resume" in page.inner_text("#connection")
        finally:
            stop.set()

    in_browser(scenario)
