"""Bookings in real browsers, two people in two Chromium contexts: a request from the listing,
the seller's quote on the card, the buyer's acceptance; each change reaches the other's open
conversation live, in place. Screenshots of the card and the seller's calendar."""
import random
import re
from datetime import date, timedelta

import pytest
from playwright.sync_api import expect

from tests.e2e.browser import DEMO_SELLER, login, screenshot
from tests.e2e.test_chat import sign_up, wait_for_stream

pytestmark = pytest.mark.e2e


def open_a_bookable_listing_of_the_demo_seller(page, seller_page):
    """A listing of the demo seller priced per day or per event (its page offers the request)."""
    href = seller_page.get_by_role("link", name="Your public shop page").get_attribute("href")
    page.goto(href)
    links = [a.get_attribute("href") for a in page.locator(".listing-card a").all()]
    for link in dict.fromkeys(links):
        page.goto(link)
        if page.get_by_role("link", name="Check dates and request to book").count():
            return int(re.search(r"/listings/(\d+)", page.url).group(1))
    raise AssertionError("the demo seller has no listing priced per day or per event")


def test_request_quote_accept_in_two_browsers(new_context, guard):
    guard.allow_stream_cuts()
    seller = new_context().new_page()
    login(seller, DEMO_SELLER)
    seller.goto("/dashboard")
    buyer = new_context().new_page()
    sign_up(buyer, "Kavya Iyer")
    listing_id = open_a_bookable_listing_of_the_demo_seller(buyer, seller)

    # The buyer asks for two days, far enough ahead that no demo booking is there.
    start = date.today() + timedelta(days=random.randint(120, 400))
    buyer.get_by_role("link", name="Check dates and request to book").click()
    expect(buyer.get_by_role("heading", name="Request to book")).to_be_visible()
    buyer.get_by_label("From").fill(start.isoformat())
    buyer.get_by_label("To (the same day for one day)").fill((start + timedelta(days=1)).isoformat())
    buyer.get_by_label("Event").fill("Engagement")
    buyer.get_by_label("Guests").fill("80")
    buyer.get_by_label("Note for the seller").fill("Can we start setting up at 3 pm?")
    buyer.get_by_role("button", name="Send the request").click()
    expect(buyer).to_have_url(re.compile(r"/conversations/\d+#booking-\d+$"))
    booking_id = int(buyer.url.rsplit("-", 1)[1])
    card = buyer.locator(f"#booking-{booking_id}")
    expect(card).to_have_attribute("data-status", "requested")
    # The buyer's side: withdraw, no seller buttons.
    expect(card.get_by_role("button", name="Withdraw")).to_be_visible()
    expect(card.get_by_role("button", name="Accept")).to_be_hidden()
    wait_for_stream(buyer)

    # The seller opens the conversation from the Requests tab.
    seller.goto("/dashboard/requests")
    seller.locator(f'a[href$="#booking-{booking_id}"]').first.click()
    seller_card = seller.locator(f"#booking-{booking_id}")
    expect(seller_card).to_have_attribute("data-status", "requested")
    wait_for_stream(seller)
    seller_card.get_by_text("Send a quote").click()
    price = seller_card.get_by_label("Price (₹, the rent)")
    price.fill(str(int(price.input_value()) - 1000))
    seller_card.get_by_label("Note").fill("₹1,000 off for two days.")
    seller_card.get_by_role("button", name="Send the quote").click()
    expect(seller.locator(f"#booking-{booking_id}")).to_have_attribute("data-status", "quoted")

    # Live, in place, in the buyer's open conversation; and the line in the thread.
    expect(card).to_have_attribute("data-status", "quoted")
    expect(buyer.locator(".booking-line").last).to_contain_text("sent a quote")
    screenshot(buyer, "booking-card-quoted")
    card.get_by_role("button", name="Accept the quote").click()
    expect(buyer.locator(f"#booking-{booking_id}")).to_have_attribute("data-status", "confirmed")
    expect(seller.locator(f"#booking-{booking_id}")).to_have_attribute("data-status", "confirmed")
    expect(seller.locator(".booking-line").last).to_contain_text("accepted")
    expect(seller.locator(f"#booking-{booking_id}").get_by_role("button", name="Mark as paid")).to_be_visible()
    screenshot(seller, "booking-card-confirmed")

    # The seller's calendar shows the booked unit on both days.
    seller.goto(f"/dashboard/listings/{listing_id}/calendar?month={start:%Y-%m}")
    expect(seller.locator(f'td[data-day="{start.isoformat()}"]')).to_contain_text("1/")
    screenshot(seller, "booking-calendar")


def test_without_javascript_request_and_decline_are_forms_and_redirects(new_context, guard):
    seller = new_context(java_script_enabled=False).new_page()
    login(seller, DEMO_SELLER)
    seller.goto("/dashboard")
    buyer = new_context(java_script_enabled=False).new_page()
    sign_up(buyer, "Farah Khan")
    open_a_bookable_listing_of_the_demo_seller(buyer, seller)
    start = date.today() + timedelta(days=random.randint(420, 700))
    buyer.get_by_role("link", name="Check dates and request to book").click()
    buyer.get_by_label("From").fill(start.isoformat())
    buyer.get_by_role("button", name="Send the request").click()
    expect(buyer).to_have_url(re.compile(r"/conversations/\d+#booking-\d+$"))
    booking_id = int(buyer.url.rsplit("-", 1)[1])
    expect(buyer.locator(f"#booking-{booking_id}")).to_have_attribute("data-status", "requested")

    seller.goto(buyer.url.split("#")[0])
    card = seller.locator(f"#booking-{booking_id}")
    card.get_by_text("Decline", exact=True).click()
    card.get_by_label("Reason").fill("Out on another event that day.")
    card.get_by_role("button", name="Decline the request").click()
    expect(seller.locator(f"#booking-{booking_id}")).to_have_attribute("data-status", "declined")
    expect(seller.locator(f"#booking-{booking_id}")).to_contain_text("Out on another event that day.")
    buyer.reload()
    expect(buyer.locator(f"#booking-{booking_id}")).to_have_attribute("data-status", "declined")
    expect(buyer.locator(".booking-line").last).to_contain_text("declined")
