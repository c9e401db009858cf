"""A busy inbox in a real browser: search my conversations (highlighted snippets, the link into the
thread), archive and unarchive a conversation, and a new message bringing an archived one back
live; screenshots of the search results and of the archived view."""
import re
import secrets

import pytest
from playwright.sync_api import expect

from tests.e2e.browser import screenshot
from tests.e2e.test_chat import new_buyer_asks_the_seller, seller_page, send, wait_for_stream  # noqa: F401

pytestmark = pytest.mark.e2e


def test_search_my_conversations_and_open_the_thread_at_the_message(new_context, guard):
    guard.allow_stream_cuts()
    word = "lavender" + secrets.token_hex(3)
    body = f"Do you have the {word} chair sashes for 40 chairs at a sangeet?"
    buyer, cid = new_buyer_asks_the_seller(new_context, "Lakshmi Iyer", body)
    send(buyer, cid, "Also: could the sashes be delivered before noon?")

    buyer.goto("/inbox")
    buyer.get_by_label("Search my conversations").fill(f"{word} sashes")
    buyer.get_by_role("button", name="Search").click()
    expect(buyer).to_have_url(re.compile(r"/inbox\?q="))
    hit = buyer.locator(".inbox-hit").filter(has_text=word)
    expect(hit).to_have_count(1)
    expect(hit.locator("mark").first).to_have_text(word)
    screenshot(buyer, "inbox-search")

    hit.get_by_role("link").click()
    expect(buyer).to_have_url(re.compile(rf"/conversations/{cid}\?around=\d+#msg-\d+$"))
    message_id = re.search(r"#msg-(\d+)$", buyer.url).group(1)
    expect(buyer.locator(f"#msg-{message_id}")).to_contain_text(word)
    expect(buyer.get_by_role("link", name="Newer messages")).to_be_visible()


def test_archive_a_conversation_and_a_new_message_brings_it_back(new_context, seller_page, guard):
    guard.allow_stream_cuts()
    buyer, cid = new_buyer_asks_the_seller(new_context, "Meena Shah", "Are the brass lanterns free next Friday?")

    seller_page.goto("/inbox")
    wait_for_stream(seller_page)
    row = seller_page.locator(f"#inbox-list #inbox-row-{cid}")
    expect(row).to_be_visible()
    row.get_by_role("button", name="Archive this conversation", exact=True).click()
    expect(seller_page.locator(f"#inbox-row-{cid}")).to_have_count(0)

    seller_page.get_by_role("link", name="Archived", exact=True).click()
    archived = seller_page.locator(f"#inbox-list-archived #inbox-row-{cid}")
    expect(archived).to_be_visible()
    expect(archived.get_by_role("button", name="Unarchive this conversation")).to_be_visible()
    expect(archived.get_by_role("button", name="Archive this conversation", exact=True)).to_be_hidden()
    screenshot(seller_page, "inbox-archived")

    # The buyer writes again: the conversation leaves the archived view live, and is back in the inbox.
    wait_for_stream(seller_page)
    send(buyer, cid, "And the candle stands too?")
    expect(seller_page.locator(f"#inbox-row-{cid}")).to_have_count(0)
    seller_page.get_by_role("link", name="All", exact=True).click()
    expect(seller_page.locator("#inbox-list .inbox-row").first).to_have_id(f"inbox-row-{cid}")
