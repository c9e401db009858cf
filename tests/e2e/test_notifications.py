"""Reaching the person in another tab: the title's unread count, live, and a browser notification
(asked for from a button; Chromium grants it here) when a message arrives while the tab is hidden,
one per conversation, closed once read.

Headless Chromium shows every page as visible and draws no notification: an init script lets the
test hide the page (`document.visibilityState`, with its `visibilitychange`) and records the
notifications the page makes with the real `Notification`."""
import re
import time

import pytest
from playwright.sync_api import expect

from tests.e2e.test_chat import new_buyer_asks_the_seller, send, seller_page, wait_for_stream  # noqa: F401

pytestmark = pytest.mark.e2e

OBSERVE = """
(() => {
  let hidden = false;
  Object.defineProperty(Document.prototype, "visibilityState", {configurable: true, get: () => hidden ? "hidden" : "visible"});
  Object.defineProperty(Document.prototype, "hidden", {configurable: true, get: () => hidden});
  window.__setHidden = (value) => { hidden = value; document.dispatchEvent(new Event("visibilitychange")); };
  window.__notifications = [];
  const Real = window.Notification;
  if (!Real) return;
  class Recorded extends Real {
    constructor(title, options) {
      super(title, options);
      this.__entry = {title, body: options && options.body, tag: options && options.tag, open: true};
      window.__notifications.push(this.__entry);
    }
    close() { this.__entry.open = false; super.close(); }
  }
  window.Notification = Recorded;
})();
"""


def open_notifications(page):
    return page.evaluate("window.__notifications.filter(n => n.open)")


def test_the_title_counts_unread_messages_live(new_context, seller_page):
    buyer, cid = new_buyer_asks_the_seller(new_context, "Tara Menon", "Do you have chairs for 80?")
    buyer.goto("/account")
    wait_for_stream(buyer)
    expect(buyer).to_have_title("Your account · RentPe")
    seller_page.goto(f"/conversations/{cid}")
    send(seller_page, cid, "Yes, 80 chairs are free that day.")
    expect(buyer).to_have_title("(1) Your account · RentPe")
    send(seller_page, cid, "Shall I hold them?")
    expect(buyer).to_have_title("(2) Your account · RentPe")
    buyer.goto(f"/conversations/{cid}")  # read
    expect(buyer).to_have_title(re.compile(r"^[^(].* · RentPe$"))


def test_a_notification_per_conversation_while_hidden_asked_from_a_button_and_closed_when_read(
        new_context, seller_page, server):
    context = new_context()
    context.add_init_script(OBSERVE)
    buyer, cid = new_buyer_asks_the_seller(lambda: context, "Kavya Pillai", "Are the fairy lights available?")
    buyer.goto("/account")
    button = buyer.get_by_role("button", name="Turn on browser notifications")
    expect(button).to_be_visible()  # asked only from here, never on load
    context.grant_permissions(["notifications"], origin=server.url)
    button.click()
    expect(buyer.locator("#notify-permission-state")).to_have_text("Browser notifications are on for this browser.")
    expect(button).to_be_hidden()

    buyer.goto(f"/conversations/{cid}")
    wait_for_stream(buyer)
    seller_page.goto(f"/conversations/{cid}")
    send(seller_page, cid, "Visible tab: no notification")
    expect(buyer.locator(f"#conv-{cid}-messages")).to_contain_text("Visible tab: no notification")
    assert buyer.evaluate("window.__notifications.length") == 0

    buyer.evaluate("window.__setHidden(true)")
    send(seller_page, cid, "Yes, 40 strings of them.")
    expect(buyer.locator(f"#conv-{cid}-messages")).to_contain_text("40 strings")
    [shown] = open_notifications(buyer)
    assert shown["tag"] == f"rentpe-conversation-{cid}" and shown["body"] == "Yes, 40 strings of them."
    assert "Kumar" in shown["title"] or "RentPe" in shown["title"]
    send(seller_page, cid, "And 10 lanterns.")
    expect(buyer.locator(f"#conv-{cid}-messages")).to_contain_text("10 lanterns")
    [shown] = open_notifications(buyer)  # one per conversation: the newer replaced the older
    assert shown["body"] == "And 10 lanterns."
    expect(buyer).to_have_title(re.compile(r"^\(2\) "))  # hidden: nothing was read

    # Read in another tab of the same browser: the hidden tab's notification closes.
    other_tab = context.new_page()
    other_tab.goto(f"/conversations/{cid}")
    expect(buyer).to_have_title(re.compile(r"^[^(]"))
    deadline = time.monotonic() + 5
    while open_notifications(buyer):
        assert time.monotonic() < deadline, "the notification stayed open after the conversation was read"
        buyer.wait_for_timeout(100)

    other_tab.close()
    send(seller_page, cid, "One more thing.")
    expect(buyer.locator(f"#conv-{cid}-messages")).to_contain_text("One more thing.")
    assert len(open_notifications(buyer)) == 1
    buyer.evaluate("window.__setHidden(false)")  # back to this tab: the conversation is read here
    assert open_notifications(buyer) == []


def test_the_missed_message_email_as_the_recipient_sees_it(new_context, seller_page, server):
    """The worker (its own process, as in production) writes the e-mail as an .eml file; the
    development mail page lists it and shows its HTML part."""
    import subprocess
    import sys
    from pathlib import Path

    from tests.e2e.browser import screenshot

    buyer, cid = new_buyer_asks_the_seller(new_context, "Rohan Desai", "Can you do a stage and lights for 200?")
    email = buyer.evaluate("fetch('/account').then(r => r.text())")
    address = re.search(r'name="email"[^>]*value="([^"]+)"|value="([^"]+)"[^>]*name="email"', email)
    address = next(a for a in address.groups() if a)
    buyer.goto("/")  # away: what comes next stays unread (an open conversation in view reads it)
    seller_page.goto(f"/conversations/{cid}")
    send(seller_page, cid, "Yes: a 24 x 16 ft stage, LED wash lights and a follow spot.")
    send(seller_page, cid, "<b>Tags</b> & symbols stay as they were written.")
    worker = subprocess.run([str(Path(sys.executable).parent / "flask"), "--app", "app", "notifications", "run",
                             "--once"], env=server.env, cwd=Path(__file__).parents[2],
                            capture_output=True, text=True, timeout=60)
    assert worker.returncode == 0, worker.stdout + worker.stderr

    viewer = new_context().new_page()
    viewer.goto("/dev/mail")
    row = viewer.locator("tr", has_text=address)
    expect(row, worker.stdout).to_have_count(1)
    row.get_by_role("link").click()
    html = viewer.frame_locator("iframe.dev-mail-frame")
    expect(html.get_by_text("a 24 x 16 ft stage")).to_be_visible()
    expect(html.get_by_text("<b>Tags</b> & symbols")).to_be_visible()  # escaped, shown as written
    expect(html.get_by_role("link", name="Open the conversation")).to_have_attribute(
        "href", re.compile(f"/conversations/{cid}$"))
    expect(html.get_by_role("link", name="Unsubscribe")).to_be_visible()
    expect(viewer.locator(".dev-mail-text")).to_contain_text("a 24 x 16 ft stage")
    viewer.set_viewport_size({"width": 640, "height": 900})
    screenshot(viewer, "email-missed-messages")
