"""The live chat under real conditions: many tabs over HTTP/1.1, a network that drops, a send cut
in the middle. The server is gunicorn without HTTP/2, so a browser has six connections to it."""
import io
import re
import select
import socket
import struct
import threading
import time

import pytest
from playwright.sync_api import expect
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from tests.e2e.browser import screenshot
from tests.e2e.conftest import ACTION_TIMEOUT_MS, DEVICES, VISITOR_ADDRESSES
from tests.e2e.test_security import RECORD_VIOLATIONS
from tests.e2e.test_chat import (  # noqa: F401 (seller_page is a fixture)
    contact_seller, mine, open_demo_sellers_listing, seller_page, send, sign_up, theirs, wait_for_stream,
)

pytestmark = pytest.mark.e2e


class CuttableNetwork:
    """A TCP proxy between a browser and the server. `cut()` resets every open connection (the
    browser sees ERR_CONNECTION_RESET, as when a network drops under a live stream) and resets
    every new one until `restore()`. Playwright's set_offline leaves an open stream alone."""

    def __init__(self, target_port):
        self.target_port = target_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.down = False
        self.closed = False
        self.lock = threading.Lock()
        self.sockets = set()
        threading.Thread(target=self._accept, daemon=True).start()

    @staticmethod
    def _reset(sock):
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.close()
        except OSError:
            pass  # already closed by its other end: nothing left to reset

    def _accept(self):
        while not self.closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if self.down:
                self._reset(client)
                continue
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            with self.lock:
                self.sockets |= {client, upstream}
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()

    def _pump(self, a, b):
        peers = {a: b, b: a}
        try:
            while not self.closed:
                readable, _, _ = select.select([a, b], [], [], 0.2)
                for sock in readable:
                    data = sock.recv(65536)
                    if not data:
                        raise OSError("closed")
                    peers[sock].sendall(data)
        except (OSError, ValueError):
            pass  # one side closed or was reset (select on a closed socket: ValueError): end both
        finally:
            with self.lock:
                self.sockets -= {a, b}
            for sock in (a, b):
                self._reset(sock)

    def cut(self):
        self.down = True
        with self.lock:
            sockets, self.sockets = list(self.sockets), set()
        for sock in sockets:
            self._reset(sock)

    def restore(self):
        self.down = False

    def close(self):
        self.closed = True
        self.cut()
        self.listener.close()


@pytest.fixture
def network(server):
    proxy = CuttableNetwork(server.port)
    yield proxy
    proxy.close()


@pytest.fixture
def context_through(browser, guard):
    """A desktop browser context whose every connection goes through `network`."""
    def make(network):
        context = browser.new_context(base_url=network.url, **DEVICES["desktop"],
                                      extra_http_headers={"X-Forwarded-For": next(VISITOR_ADDRESSES)})
        context.set_default_timeout(ACTION_TIMEOUT_MS)
        context.on("page", guard.watch)
        guard.closers.append(context.close)
        return context
    return make


class StreamRequests(list):
    """The /events requests every page of a context makes, as the server receives them."""

    def __init__(self, context):
        super().__init__()
        self.done = set()
        context.on("request", lambda r: self.append(r) if re.search(r"/events(\?|$)", r.url) else None)
        context.on("requestfinished", lambda r: self.done.add(r))
        context.on("requestfailed", lambda r: self.done.add(r))

    def open(self):
        # A closed tab's connections close with it (Playwright reports nothing more about them).
        return [r for r in self if r not in self.done and not r.frame.page.is_closed()]


def leader_of(pages):
    leaders = [p for p in pages if p.locator("#sse").get_attribute("data-role") == "leader"]
    assert len(leaders) == 1, f"{len(leaders)} tabs hold the stream"
    return leaders[0]


def form_fields(request):
    """The text fields of a form POST as the browser sent it (multipart: the composer takes
    photos), read by the same parser as the server's."""
    body = request.post_data_buffer or b""
    environ = EnvironBuilder(method="POST", input_stream=io.BytesIO(body), content_length=len(body),
                             content_type=request.headers.get("content-type", "")).get_environ()
    parsed = Request(environ)
    try:
        return parsed.form.to_dict()
    finally:
        parsed.close()  # the photo parts it spooled


def wait_until(page, check, seconds, what):
    """Poll `check` while `page` lets Playwright deliver its events (requests, routes)."""
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, what
        page.wait_for_timeout(25)


def converse(page, name, first_message, seller_page):
    """A new buyer `name` on `page` writes to the demo seller, and both of them have the
    conversation open and live: the conversation's id."""
    sign_up(page, name)
    open_demo_sellers_listing(page)
    cid = contact_seller(page, first_message)
    wait_for_stream(page)
    seller_page.goto(f"/conversations/{cid}")
    wait_for_stream(seller_page)
    return cid


# 1. One stream per browser ------------------------------------------------------------------


def test_ten_tabs_share_one_stream_and_survive_losing_its_tab(new_context, seller_page, guard):
    context = new_context()
    streams = StreamRequests(context)
    first = context.new_page()
    sign_up(first, "Anika Bose")
    open_demo_sellers_listing(first)
    cid = contact_seller(first, "Ten tabs of mine")
    wait_for_stream(first)
    # Ten tabs on three kinds of page; six would be the most a browser allows with a stream each.
    pages = [first]
    paths = [f"/conversations/{cid}", "/inbox", "/search?q=banquet"]
    for n in range(9):
        page = context.new_page()
        page.goto(paths[n % 3])
        pages.append(page)
    for page in pages:
        wait_for_stream(page)
    # All ten are live on one stream: the server has one open. (A tab that joins behind the
    # stream has it reopened from its cursor: the old one is closed first.)
    for page in pages:
        page.wait_for_timeout(10)
    assert len(streams.open()) == 1, [r.url for r in streams.open()]

    conversations = [p for p in pages if p.url.endswith(f"/conversations/{cid}")]
    assert len(conversations) == 4
    # A send from any tab goes through, and every tab of the conversation shows it once.
    send(conversations[2], cid, "sent from the third conversation tab")
    send(conversations[3], cid, "and from the fourth")
    seller_page.goto(f"/conversations/{cid}")
    wait_for_stream(seller_page)
    send(seller_page, cid, "the seller answers all tabs")
    for page in conversations:
        expect(mine(page, cid)).to_have_count(3)
        expect(theirs(page, cid)).to_have_count(1)
    inbox = pages[2]
    expect(inbox.locator(f"#inbox-row-{cid}")).to_contain_text("the seller answers all tabs")
    before = len(streams)

    # The tab holding the stream closes; another takes over within 2 s, from the shared cursor.
    leader = leader_of(pages)
    pages.remove(leader)
    leader.close()
    started = time.monotonic()
    seller_box = seller_page.locator(f"#conv-{cid}-composer textarea")
    seller_box.fill("while the stream changed tabs")
    seller_box.press("Enter")
    wait_until(pages[0], lambda: len(streams) > before, 2.0, "no tab took the stream over within 2 s")
    took_over = time.monotonic() - started
    expect(seller_page.locator(f"#conv-{cid}-composer textarea")).to_have_value("")  # sent
    leader = leader_of(pages)
    send(seller_page, cid, "after the takeover")
    for page in [p for p in pages if p.url.endswith(f"/conversations/{cid}")]:
        bodies = theirs(page, cid).locator(".msg-body")
        expect(bodies).to_have_text(["the seller answers all tabs", "while the stream changed tabs",
                                     "after the takeover"])
    expect(inbox.locator(f"#inbox-row-{cid}")).to_contain_text("after the takeover")
    assert len(streams.open()) == 1
    assert took_over < 2.0

    # Once more: the new holder goes too.
    pages.remove(leader)
    leader.close()
    send(seller_page, cid, "after a second takeover")
    for page in [p for p in pages if p.url.endswith(f"/conversations/{cid}")]:
        expect(theirs(page, cid).locator(".msg-body").last).to_have_text("after a second takeover")
        expect(theirs(page, cid)).to_have_count(4)
    assert len(streams.open()) == 1


def test_a_tab_opened_between_events_misses_none(new_context, seller_page):
    """A tab's page is rendered at one event id; the shared stream may be past it when the tab
    joins. The leader then reopens the stream from the tab's cursor: nothing in between is lost."""
    context = new_context()
    first = context.new_page()
    cid = converse(first, "Zoya Khan", "Joining late", seller_page)
    second = context.new_page()
    # Hold the new tab's scripts back, so an event lands between its render and its joining.
    held = []
    second.route("**/static/js/stream.js*", lambda route: held.append(route), times=1)
    second.goto(f"/conversations/{cid}", wait_until="commit")
    wait_until(second, lambda: held, 10, "the page never asked for stream.js")
    send(seller_page, cid, "between the render and the join")
    expect(theirs(first, cid)).to_have_count(1)  # the shared stream has passed it on already
    held[0].continue_()
    wait_for_stream(second)
    expect(theirs(second, cid).locator(".msg-body")).to_have_text(["between the render and the join"])
    expect(theirs(first, cid)).to_have_count(1)  # the replay it caused changed nothing elsewhere


# 2. A message is never silently lost ----------------------------------------------------------


def test_a_send_cut_midway_shows_not_sent_and_its_retry_stores_it_once(new_context, seller_page, guard):
    # The cut send, and what the page tries while offline (the send, the typing notice).
    for path in ("/messages", "/typing"):
        guard.allow("requestfailed", url_contains=path)
        guard.allow("console", url_contains=path)
    guard.allow("console", text_contains="htmx:error")
    context = new_context()
    buyer = context.new_page()
    cid = converse(buyer, "Neel Arora", "First, before the cut", seller_page)

    # The send reaches the server and is stored; its answer is lost to a reset connection.
    def cut_after_arrival(route):
        route.fetch()
        route.abort("connectionreset")

    buyer.route(f"**/conversations/{cid}/messages", cut_after_arrival, times=1)
    posts = []
    buyer.on("request", lambda r: posts.append(form_fields(r)) if r.url.endswith(f"/{cid}/messages") else None)
    box = buyer.locator(f"#conv-{cid}-composer textarea")
    box.fill("Did this one arrive?")
    box.press("Enter")
    unsent = buyer.locator(f"#conv-{cid}-messages .msg.unsent")
    # It did arrive: the stream brings it, and the unsent copy's retry (same key) is answered with
    # the stored message and clears it.
    expect(theirs(seller_page, cid).locator(".msg-body").last).to_have_text("Did this one arrive?")
    wait_until(buyer, lambda: len(posts) >= 2, 5, "the failed send was not retried")
    assert posts[0]["client_key"] == posts[1]["client_key"] and posts[1]["body"] == "Did this one arrive?"
    expect(unsent).to_have_count(0)
    expect(box).to_have_value("")  # the composer is free for the next message
    expect(mine(buyer, cid).locator(".msg-body")).to_have_text(["First, before the cut", "Did this one arrive?"])
    # Stored once: a reload shows it once, and the seller has it once.
    buyer.reload()
    expect(mine(buyer, cid).locator(".msg-body")).to_have_text(["First, before the cut", "Did this one arrive?"])
    expect(theirs(seller_page, cid)).to_have_count(2)

    # Offline: the send never leaves; it waits in the thread and goes by
    # itself when the network is back.
    wait_for_stream(buyer)
    context.set_offline(True)
    box = buyer.locator(f"#conv-{cid}-composer textarea")
    box.fill("Written on the train")
    box.press("Enter")
    expect(unsent).to_contain_text("Not sent")
    box.fill("and a second one")
    box.press("Enter")
    expect(unsent).to_have_count(2)
    screenshot(buyer, "not-sent")
    context.set_offline(False)
    expect(unsent).to_have_count(0)
    expect(mine(buyer, cid).locator(".msg-body")).to_have_text(
        ["First, before the cut", "Did this one arrive?", "Written on the train", "and a second one"])
    expect(theirs(seller_page, cid)).to_have_count(4)


def test_a_send_with_no_answer_times_out_into_not_sent(new_context, guard):
    guard.allow("console", text_contains="htmx:error")
    guard.allow("requestfailed", url_contains="/messages")  # the held one, given up at the end
    context = new_context()
    buyer = context.new_page()
    sign_up(buyer, "Ira Menon")
    open_demo_sellers_listing(buyer)
    cid = contact_seller(buyer, "Hello")
    wait_for_stream(buyer)
    held = []
    buyer.route(f"**/conversations/{cid}/messages", lambda route: held.append(route), times=1)
    box = buyer.locator(f"#conv-{cid}-composer textarea")
    box.fill("Nobody answers this one")
    box.press("Enter")
    unsent = buyer.locator(f"#conv-{cid}-messages .msg.unsent")
    expect(unsent).to_contain_text("Not sent", timeout=20_000)
    expect(buyer.locator(f"#conv-{cid}-messages .msg:not(.unsent)")).to_have_count(1)
    # Reloaded before anyone retried: the message is still there, and goes once the page is live.
    buyer.reload()
    expect(mine(buyer, cid).locator(".msg-body")).to_have_text(["Hello", "Nobody answers this one"])
    expect(unsent).to_have_count(0)
    held[0].abort()


def test_an_unsent_message_survives_a_reload_and_goes_on_retry(new_context, guard):
    guard.allow_stream_cuts()
    guard.allow("requestfailed", url_contains="/messages")
    guard.allow("console", url_contains="/messages")
    guard.allow("console", text_contains="htmx:error")
    buyer = new_context().new_page()
    sign_up(buyer, "Dia Sen")
    open_demo_sellers_listing(buyer)
    cid = contact_seller(buyer, "Hello")
    wait_for_stream(buyer)
    buyer.route(f"**/conversations/{cid}/messages", lambda route: route.abort("internetdisconnected"), times=1)
    box = buyer.locator(f"#conv-{cid}-composer textarea")
    box.fill("Kept through a reload")
    box.press("Enter")
    unsent = buyer.locator(f"#conv-{cid}-messages .msg.unsent")
    expect(unsent).to_contain_text("Not sent")
    # The stream stays down after the reload (a busy server), so nothing resends it by itself.
    buyer.route("**/events?*", lambda route: route.fulfill(status=503, headers={"Retry-After": "30"}, body="busy"))
    buyer.reload()
    expect(unsent.locator(".msg-body")).to_have_text("Kept through a reload")
    expect(unsent).to_contain_text("Not sent")
    unsent.get_by_role("button", name="Retry").click()
    expect(unsent).to_have_count(0)
    expect(mine(buyer, cid).locator(".msg-body")).to_have_text(["Hello", "Kept through a reload"])
    buyer.unroute("**/events?*")
    buyer.reload()
    expect(mine(buyer, cid).locator(".msg-body")).to_have_text(["Hello", "Kept through a reload"])
    expect(unsent).to_have_count(0)


# 3. The connection is visible and comes back fast --------------------------------------------


@pytest.mark.parametrize("outage", [10, 40])
def test_after_an_outage_missed_messages_show_within_two_seconds(outage, network, context_through, seller_page, guard):
    guard.allow_stream_cuts()
    guard.allow("requestfailed")  # whatever the page had in flight when the network went
    guard.allow("console", text_contains="ERR_CONNECTION_RESET")
    buyer = context_through(network).new_page()
    cid = converse(buyer, "Rohan Das", f"Outage of {outage} s", seller_page)
    indicator = buyer.locator("#connection")
    expect(indicator).to_be_hidden()

    network.cut()
    cut_at = time.monotonic()
    expect(indicator).to_have_text("Reconnecting…", timeout=4000)
    screenshot(buyer, "connection-reconnecting")
    for i in (1, 2):
        send(seller_page, cid, f"during the outage {i}")
    if outage > 20:
        expect(indicator).to_have_text("Offline", timeout=25_000)
        screenshot(buyer, "connection-offline")
    buyer.wait_for_timeout(max(0, (outage - (time.monotonic() - cut_at)) * 1000))
    assert theirs(buyer, cid).count() == 0

    network.restore()
    restored = time.monotonic()
    expect(theirs(buyer, cid).locator(".msg-body")).to_have_text(
        ["during the outage 1", "during the outage 2"], timeout=2000)
    assert time.monotonic() - restored < 2.0
    expect(indicator).to_be_hidden()
    send(buyer, cid, "back online")
    expect(theirs(seller_page, cid).locator(".msg-body").last).to_have_text("back online")


def test_a_tab_coming_back_to_the_front_reconnects_at_once(new_context, guard):
    """A server that asked to wait (503, Retry-After: 30) is tried again as soon as the person
    looks at the tab, and on the browser's `online` event."""
    guard.allow_stream_cuts()
    buyer = new_context().new_page()
    sign_up(buyer, "Tanvi Shah")
    wait_for_stream(buyer)
    busy = []

    def busy_server(route):
        busy.append(route.request.url)
        route.fulfill(status=503, headers={"Retry-After": "30"}, body="busy")

    buyer.route("**/events?*", busy_server)
    buyer.evaluate("window.dispatchEvent(new Event('online'))")  # a fresh connection, answered 503
    wait_until(buyer, lambda: busy, 5, "no reconnect on `online`")
    expect(buyer.locator("#connection")).to_have_text("Reconnecting…")
    buyer.unroute("**/events?*")
    buyer.wait_for_timeout(500)
    assert buyer.locator("#sse").get_attribute("data-state") != "live"  # waiting its 30 s
    buyer.evaluate("document.dispatchEvent(new Event('visibilitychange'))")
    wait_for_stream(buyer, timeout=2.0)
    expect(buyer.locator("#connection")).to_be_hidden()


# 7. No console errors ---------------------------------------------------------------------------


def test_a_resized_composer_sends_without_breaking_the_policy(new_context):
    """Dragging the composer's corner gives the textarea an inline `style`; htmx's settle step
    would copy it onto the fresh composer with setAttribute, which the CSP refuses (a console
    error on every send). The guard fails this test on any console error."""
    context = new_context()
    context.add_init_script(RECORD_VIOLATIONS)
    buyer = context.new_page()
    sign_up(buyer, "Kiran Rao")
    open_demo_sellers_listing(buyer)
    cid = contact_seller(buyer, "Resizing the box")
    wait_for_stream(buyer)
    box = buyer.locator(f"#conv-{cid}-composer textarea")
    corner = box.bounding_box()
    x, y = corner["x"] + corner["width"] - 3, corner["y"] + corner["height"] - 3
    buyer.mouse.move(x, y)
    buyer.mouse.down()
    buyer.mouse.move(x, y + 40, steps=5)
    buyer.mouse.up()
    assert "height" in (box.get_attribute("style") or "")
    box.click()
    box.press_sequentially("after a click and a resize")
    buyer.get_by_role("button", name="Send", exact=True).click()
    expect(mine(buyer, cid).locator(".msg-body").last).to_have_text("after a click and a resize")
    send(buyer, cid, "and once more with Enter")
    assert buyer.evaluate("window.__cspViolations") == []
