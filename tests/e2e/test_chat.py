"""Buyer–seller chat in real browsers: live delivery, receipts, tabs, reconnects, typing, phones."""
import re
import secrets
import time

import pytest
from playwright.sync_api import expect

from tests.e2e.browser import DEMO_SELLER, DEMO_SHOP, assert_fits_width, login, screenshot

pytestmark = pytest.mark.e2e

STREAM_UP = "document.querySelector('#sse')?.dataset.state === 'live'"


def sign_up(page, name):
    """A fresh buyer per test, so the shared demo database never leaks state between tests."""
    page.goto("/signup")
    page.get_by_label("Your name").fill(name)
    page.get_by_label("E-mail").fill(f"{name.split()[0].lower()}-{secrets.token_hex(4)}@example.test")
    page.get_by_label("Password", exact=True).fill("long-enough-pw")
    page.get_by_label("Repeat password").fill("long-enough-pw")
    page.get_by_role("button", name="Sign up").click()
    expect(page.get_by_role("button", name="Log out")).to_be_visible()


def wait_for_stream(page, timeout=10.0):
    """Until the page's stream is open. Polled from here: `wait_for_function` evaluates a string
    inside the page, which the Content-Security-Policy (no 'unsafe-eval') rightly refuses."""
    deadline = time.monotonic() + timeout
    while not page.evaluate(STREAM_UP):
        assert time.monotonic() < deadline, f"the stream of {page.url} did not open"
        page.wait_for_timeout(100)


def mine(page, cid):
    """My messages in the conversation: the same fragments reach everyone, the page's viewer rule
    (`<body data-viewer>`) is what makes them mine."""
    viewer = page.locator("body").get_attribute("data-viewer")
    return page.locator(f'#conv-{cid}-messages .msg[data-author="{viewer}"]')


def theirs(page, cid):
    viewer = page.locator("body").get_attribute("data-viewer")
    return page.locator(f'#conv-{cid}-messages .msg:not([data-author="{viewer}"])')


def open_demo_sellers_listing(page):
    """A listing of the demo seller, reached through search as a buyer would."""
    page.goto("/search?q=banquet")
    page.locator(".listing-card a").first.click()
    expect(page).to_have_url(re.compile(r"/listings/\d+$"))
    if DEMO_SELLER_SHOP not in page.locator("body").inner_text():
        page.goto("/sellers/" + SELLER_ID[0])
        page.locator(".listing-card a").first.click()


DEMO_SELLER_SHOP = "Kumar Events"
SELLER_ID = []


def contact_seller(page, body):
    page.get_by_label("Message").fill(body)
    page.get_by_role("button", name="Send message").click()
    expect(page).to_have_url(re.compile(r"/conversations/\d+$"))
    return int(re.search(r"/conversations/(\d+)$", page.url).group(1))


def new_buyer_asks_the_seller(new_context, name, body):
    """A new buyer (own browser context) who contacts the demo seller from a listing: (page, conversation id)."""
    buyer = new_context().new_page()
    sign_up(buyer, name)
    open_demo_sellers_listing(buyer)
    return buyer, contact_seller(buyer, body)


def send(page, cid, body):
    wait_for_stream(page)  # the page's scripts have run: Enter sends
    composer = page.locator(f"#conv-{cid}-composer textarea")
    composer.fill(body)
    composer.press("Enter")
    expect(mine(page, cid).last).to_contain_text(body)
    # The answer also brings a fresh composer (new client key); type the next one into that.
    expect(page.locator(f"#conv-{cid}-composer textarea")).to_have_value("")


@pytest.fixture
def seller_page(new_context, guard):
    # Moving from page to page cancels the old page's stream (net::ERR_ABORTED): expected here.
    guard.allow_stream_cuts()
    page = new_context().new_page()
    login(page, DEMO_SELLER)
    page.goto("/dashboard")
    if not SELLER_ID:
        href = page.get_by_role("link", name="Your public shop page").get_attribute("href")
        SELLER_ID.append(href.rstrip("/").rsplit("/", 1)[1])
    wait_for_stream(page)
    return page


def test_buyer_meets_seller_live(new_context, seller_page):
    buyer = new_context().new_page()
    sign_up(buyer, "Nisha Rao")
    open_demo_sellers_listing(buyer)
    screenshot(buyer, "listing-contact")
    cid = contact_seller(buyer, "Hello! Is this free on 14 December for 150 guests?")
    expect(buyer.locator(f"#conv-{cid}-receipt")).to_have_attribute("data-status", re.compile("sent|delivered"))

    # The seller, already on the dashboard, sees the conversation and the badge without reloading.
    row = seller_page.locator(f"#seller-inbox-list #inbox-row-{cid}")
    expect(row).to_contain_text("Nisha Rao")
    expect(row).to_contain_text("Is this free on 14 December")
    expect(seller_page.locator("#unread-badge")).not_to_have_text("")
    screenshot(seller_page, "dashboard-inbox")
    # The seller's stream received it: the buyer's receipt says delivered.
    expect(buyer.locator(f"#conv-{cid}-receipt")).to_have_attribute("data-status", "delivered")

    row.get_by_role("link").click()
    expect(seller_page).to_have_url(re.compile(f"/conversations/{cid}$"))
    expect(buyer.locator(f"#conv-{cid}-receipt")).to_contain_text("Seen")
    wait_for_stream(seller_page)
    send(seller_page, cid, "Yes, it is! Shall I hold the date for you?")
    expect(theirs(buyer, cid)).to_contain_text("Shall I hold the date")
    expect(seller_page.locator(f"#conv-{cid}-receipt")).to_contain_text("Seen")
    screenshot(buyer, "conversation")


def test_a_late_send_answer_does_not_take_a_receipt_back(new_context, seller_page):
    """The answer to a send carries the receipt as of the send ("Sent"). When the reader's
    "Delivered" and "Seen" reach the sender's stream before that answer, it must not undo them."""
    buyer, cid = new_buyer_asks_the_seller(new_context, "Meera Iyer", "Is the hall free on a Sunday?")
    seller_page.goto(f"/conversations/{cid}")
    wait_for_stream(seller_page)
    wait_for_stream(buyer)
    held = []
    seller_page.route(f"**/conversations/{cid}/messages", lambda route: held.append((route, route.fetch())))
    composer = seller_page.locator(f"#conv-{cid}-composer textarea")
    composer.fill("Yes, Sundays are free.")
    composer.press("Enter")
    # The send is stored and streamed while its answer is held: the buyer reads the reply.
    expect(theirs(buyer, cid)).to_contain_text("Sundays are free")
    receipt = seller_page.locator(f"#conv-{cid}-receipt")
    expect(receipt).to_have_attribute("data-status", "seen")
    route, answer = held[0]
    assert 'data-status="sent"' in answer.text()
    expect(composer).to_have_value("Yes, Sundays are free.")  # the answer has not been swapped in yet
    route.fulfill(response=answer)
    expect(seller_page.locator(f"#conv-{cid}-composer textarea")).to_have_value("")  # now it has
    expect(mine(seller_page, cid)).to_have_count(1)
    expect(receipt).to_have_attribute("data-status", "seen")
    expect(receipt).to_contain_text("Seen")


def test_two_tabs_of_one_person_agree(new_context, seller_page):
    context = new_context()
    first = context.new_page()
    sign_up(first, "Kabir Shah")
    open_demo_sellers_listing(first)
    cid = contact_seller(first, "Hi, two tabs here")
    second = context.new_page()
    second.goto(f"/conversations/{cid}")
    wait_for_stream(first)
    wait_for_stream(second)
    send(first, cid, "sent from the first tab")
    expect(mine(second, cid)).to_have_count(2)
    expect(second.locator(f"#conv-{cid}-messages")).to_contain_text("sent from the first tab")
    # The seller replies; both tabs show it, and being open and visible, both read it.
    seller_page.goto(f"/conversations/{cid}")
    wait_for_stream(seller_page)
    send(seller_page, cid, "reply for both tabs")
    for page in (first, second):
        expect(theirs(page, cid)).to_contain_text("reply for both tabs")
        expect(page.locator("#unread-badge")).to_have_text("")


def test_messages_sent_while_a_tab_was_hidden_arrive_once_in_order(new_context, seller_page):
    """A hidden tab keeps the browser's one stream (other tabs may depend on it): what arrives
    meanwhile is in the thread, once and in order, and is read when the tab comes back."""
    buyer, cid = new_buyer_asks_the_seller(new_context, "Farah Ali", "Reconnect test")
    wait_for_stream(buyer)
    seller_page.goto(f"/conversations/{cid}")
    wait_for_stream(seller_page)
    buyer.evaluate("Object.defineProperty(document, 'hidden', {value: true, configurable: true});"
                   "Object.defineProperty(document, 'visibilityState', {value: 'hidden', configurable: true});"
                   "document.dispatchEvent(new Event('visibilitychange'))")
    for i in range(1, 4):
        send(seller_page, cid, f"while hidden {i}")
    bodies = theirs(buyer, cid).locator(".msg-body")
    expect(bodies).to_have_text(["while hidden 1", "while hidden 2", "while hidden 3"])
    receipt = seller_page.locator(f"#conv-{cid}-receipt")
    expect(receipt).not_to_contain_text("Seen")  # nobody looked yet
    buyer.evaluate("Object.defineProperty(document, 'hidden', {value: false, configurable: true});"
                   "Object.defineProperty(document, 'visibilityState', {value: 'visible', configurable: true});"
                   "document.dispatchEvent(new Event('visibilitychange'))")
    expect(receipt).to_contain_text("Seen")
    expect(bodies).to_have_text(["while hidden 1", "while hidden 2", "while hidden 3"])


def test_messages_sent_while_the_server_restarts_arrive_once_in_order(new_context, seller_page, restart_server, guard):
    guard.allow_stream_cuts()
    guard.allow("console", text_contains="htmx:sse:error")  # the cut the restart makes
    # The browser fetches the icon on its own schedule; one in flight when the server dies is reset.
    guard.allow("requestfailed", url_contains="/favicon.svg")
    guard.allow("console", url_contains="/favicon.svg")
    buyer, cid = new_buyer_asks_the_seller(new_context, "Dev Malhotra", "Restart test")
    wait_for_stream(buyer)
    restart_server(crash=True)
    seller_page.goto(f"/conversations/{cid}")
    wait_for_stream(seller_page)
    for i in range(1, 4):
        send(seller_page, cid, f"after the restart {i}")
    bodies = theirs(buyer, cid).locator(".msg-body")
    expect(bodies).to_have_text(["after the restart 1", "after the restart 2", "after the restart 3"], timeout=30000)


MINE = {"background-color": "rgb(204, 251, 241)", "align-self": "flex-end"}
THEIRS = {"background-color": "rgb(241, 245, 249)", "align-self": "flex-start"}


def look(message):
    return message.evaluate("m => ({'background-color': getComputedStyle(m).backgroundColor,"
                            " 'align-self': getComputedStyle(m).alignSelf})")


def test_the_same_fragments_show_each_viewer_their_own(new_context, seller_page):
    """Messages and inbox rows reach every member as the same HTML; the page's viewer rule (CSS,
    no script) shows each person what is theirs: my messages' look, the sender's name, the safety
    notice and the report link for the others, the Remove link for the board's owner, and in a
    private row the other person's name only."""
    owner, cid = new_buyer_asks_the_seller(new_context, "Rhea Kapoor", "About a board")
    seller_id = seller_page.locator("body").get_attribute("data-viewer")
    row = seller_page.locator(f"#seller-inbox-list #inbox-row-{cid}")
    expect(row.locator("[data-person]", has_text="Rhea Kapoor")).to_be_visible()
    expect(row.locator(f'[data-person="{seller_id}"]')).to_be_hidden()

    owner.goto("/boards/new")
    owner.get_by_label("Board name").fill("Rhea's sangeet")
    owner.get_by_label("Event date").fill("2031-12-14")
    owner.get_by_label("City").fill("Mumbai")
    owner.get_by_role("button", name="Create board").click()
    expect(owner).to_have_url(re.compile(r"/boards/\d+$"))
    board_id = int(re.search(r"/boards/(\d+)$", owner.url).group(1))
    owner.goto(f"/boards/{board_id}/manage")
    owner.get_by_role("checkbox", name=re.compile(re.escape(DEMO_SHOP))).check()  # the seller she talked to
    with owner.expect_navigation():  # the form posts, then shows the manage page again
        owner.get_by_role("button", name="Add or invite").click()
    expect(owner.locator(".manage-members li", has_text="Seller")).to_have_count(1)
    seller_page.goto(f"/boards/{board_id}")
    owner.goto(f"/boards/{board_id}")
    wait_for_stream(seller_page)
    wait_for_stream(owner)

    send(owner, board_id, "Call me on 98765 43210 about the mandap")
    own, seen = mine(owner, board_id).last, theirs(seller_page, board_id).last
    expect(seen).to_contain_text("about the mandap")  # live, in the seller's open board
    assert look(own) == MINE and look(seen) == THEIRS
    for part in (".msg-sender", ".msg-safety", ".report-link"):
        expect(seen.locator(part)).to_be_visible()
        expect(own.locator(part)).to_be_hidden()
    expect(seen.get_by_role("link", name="Remove")).to_be_hidden()
    expect(own.get_by_role("link", name="Remove")).to_be_visible()

    send(seller_page, board_id, "Booked for you")
    reply = theirs(owner, board_id).last
    expect(reply).to_contain_text("Booked for you")
    assert look(reply) == THEIRS and look(mine(seller_page, board_id).last) == MINE
    expect(reply.get_by_role("link", name="Remove")).to_be_visible()
    expect(reply.get_by_role("link", name="Report")).to_be_visible()
    expect(mine(seller_page, board_id).last.get_by_role("link", name="Remove")).to_be_hidden()


def test_typing_shows_and_goes_away_on_its_own(new_context, seller_page):
    buyer, cid = new_buyer_asks_the_seller(new_context, "Ira Sen", "Typing test")
    seller_page.goto(f"/conversations/{cid}")
    wait_for_stream(seller_page)
    wait_for_stream(buyer)
    buyer.locator(f"#conv-{cid}-composer textarea").press_sequentially("Let me think", delay=30)
    typing = seller_page.locator(f"#conv-{cid}-typing")
    expect(typing).to_have_text("Ira is typing…")
    expect(typing).to_be_visible()
    expect(typing).to_be_hidden(timeout=9000)


def test_shift_enter_makes_a_newline_and_enter_sends(new_context, seller_page):
    buyer, cid = new_buyer_asks_the_seller(new_context, "Om Prakash", "Keyboard test")
    box = buyer.locator(f"#conv-{cid}-composer textarea")
    box.press_sequentially("line one")
    box.press("Shift+Enter")
    box.press_sequentially("line two")
    expect(buyer.locator(f"#conv-{cid}-messages .msg")).to_have_count(1)
    box.press("Enter")
    expect(mine(buyer, cid).locator(".msg-body").last).to_have_text("line one\nline two")
    expect(buyer.locator(f"#conv-{cid}-composer textarea")).to_have_value("")


def test_chat_works_without_javascript(new_context):
    page = new_context(java_script_enabled=False).new_page()
    sign_up(page, "Tara Joshi")
    page.goto("/search?q=banquet")
    page.locator(".listing-card a").first.click()
    cid = contact_seller(page, "No JavaScript here")
    expect(page.locator(f"#conv-{cid}-messages")).to_contain_text("No JavaScript here")
    page.locator(f"#conv-{cid}-composer textarea").fill("A second message, full page load")
    page.get_by_role("button", name="Send", exact=True).click()
    expect(page).to_have_url(re.compile(f"/conversations/{cid}$"))
    expect(page.locator(f"#conv-{cid}-messages .msg")).to_have_count(2)
    page.goto("/inbox")
    expect(page.locator(f"#inbox-row-{cid}")).to_contain_text("A second message")


def test_inbox_and_conversation_fit_a_phone(new_context, seller_page):
    page = new_context("phone").new_page()
    sign_up(page, "Maya Iyer")
    open_demo_sellers_listing(page)
    cid = contact_seller(page, "From my phone")
    for i in range(12):
        send(page, cid, f"phone message {i}")
    assert_fits_width(page)
    box = page.locator(f"#conv-{cid}-composer textarea")
    expect(box).to_be_in_viewport()
    expect(page.get_by_role("button", name="Send", exact=True)).to_be_in_viewport()
    expect(page.locator(f"#conv-{cid}-messages .msg").last).to_be_in_viewport()
    screenshot(page, "conversation-phone")
    page.goto("/inbox")
    assert_fits_width(page)
    expect(page.locator(f"#inbox-row-{cid}")).to_be_in_viewport()
    screenshot(page, "inbox-phone")


def test_the_thread_is_a_live_region_that_adds_each_new_message(new_context, seller_page):
    """A screen reader hears each new message, not the whole list again: the thread is a
    `role="log"` announcing additions, and a live message is added as a node of its own while the
    list and the messages already there stay the same nodes."""
    buyer, cid = new_buyer_asks_the_seller(new_context, "Tara Singh", "Do you deliver to Thane?")
    wait_for_stream(buyer)
    log = buyer.get_by_role("log", name="Messages")
    expect(log).to_have_attribute("aria-relevant", "additions")
    expect(log.locator(f"#conv-{cid}-messages .msg")).to_have_count(1)
    buyer.evaluate(f"""() => {{
        window.thread = document.getElementById('conv-{cid}-messages');
        window.firstMessage = window.thread.firstElementChild;
    }}""")
    seller_page.goto(f"/conversations/{cid}")
    wait_for_stream(seller_page)
    # What the sender's screen reader hears: every node added to the thread.
    seller_page.evaluate(f"""() => {{
        window.added = [];
        new MutationObserver((records) => records.forEach((r) => r.addedNodes.forEach((n) => n.id && window.added.push(n.id))))
          .observe(document.getElementById('conv-{cid}-messages'), {{childList: true}});
    }}""")
    send(seller_page, cid, "Yes, Thane is in our area.")
    expect(theirs(buyer, cid)).to_contain_text("Thane is in our area")
    assert buyer.evaluate(f"""() => window.thread === document.getElementById('conv-{cid}-messages')
        && window.firstMessage === window.thread.firstElementChild && window.thread.children.length === 2""")
    # The sender's own message comes twice, from the send's answer and from the stream ("Seen"
    # comes after both); it is added once, so it is announced once.
    expect(seller_page.locator(f"#conv-{cid}-receipt")).to_contain_text("Seen")
    reply_id = mine(seller_page, cid).last.get_attribute("id")
    assert seller_page.evaluate("() => window.added") == [reply_id]
