"""At phone size (390×844) no page scrolls sideways, and each page's main task is on the first screen."""
import re
from datetime import date, timedelta

import pytest
from playwright.sync_api import expect

from tests.e2e.browser import DEMO_SELLER, assert_fits_width, listing_cards, login, screenshot
from tests.e2e.test_chat import contact_seller, open_demo_sellers_listing, send, sign_up

pytestmark = pytest.mark.e2e


def test_public_pages_fit_a_phone_screen(new_context):
    page = new_context("phone").new_page()

    page.goto("/")
    expect(listing_cards(page).first).to_be_visible()
    assert_fits_width(page)
    screenshot(page, "home-phone")

    page.goto("/search")
    assert_fits_width(page)

    listing_cards(page).first.get_by_role("link").first.click()
    expect(page.locator(".listing")).to_be_visible()
    assert_fits_width(page)
    screenshot(page, "listing-phone")

    for path in ("/login", "/signup"):
        page.goto(path)
        assert_fits_width(page)


def test_seller_pages_fit_a_phone_screen(new_context):
    page = new_context("phone").new_page()
    login(page, DEMO_SELLER)
    assert_fits_width(page)  # the logged-in menu is the longest top bar

    page.goto("/dashboard")
    assert_fits_width(page)

    page.goto("/sell")
    expect(page.get_by_role("heading", level=1)).to_have_text("Your shop")
    assert_fits_width(page)


# First screen on a phone (390×844): what a person came for is on it, without scrolling.

def fully_in_view(page, locator):
    """The element is wholly inside the viewport (not just a sliver of it)."""
    box = locator.bounding_box()
    size = page.viewport_size
    assert box is not None, f"{locator} is not shown"
    assert box["y"] >= 0 and box["y"] + box["height"] <= size["height"] + 0.5, \
        f"{locator} spans {box['y']:.0f}–{box['y'] + box['height']:.0f}px of a {size['height']}px screen"


def test_the_seller_dashboard_puts_the_inbox_first_unread_on_top(new_context, guard):
    guard.allow_stream_cuts()
    buyer = new_context().new_page()
    sign_up(buyer, "Farah Khan")
    open_demo_sellers_listing(buyer)
    contact_seller(buyer, "Is the terrace free for a sangeet on the 20th?")

    page = new_context("phone").new_page()
    login(page, DEMO_SELLER)
    page.goto("/dashboard")
    inbox = page.locator("#seller-inbox-list")
    expect(page.get_by_role("heading", name="Inbox")).to_be_in_viewport()
    first_row = inbox.locator(".inbox-row").first
    expect(first_row).to_have_class(re.compile(r"\bunread\b"))
    expect(first_row).to_contain_text("Farah Khan")
    fully_in_view(page, first_row)
    listings = page.get_by_role("heading", name="My listings")
    assert listings.bounding_box()["y"] > inbox.bounding_box()["y"], "the listing table comes after the inbox"
    assert_fits_width(page)
    screenshot(page, "dashboard-phone")


def test_search_filters_fold_behind_a_button_with_the_results_in_view(new_context):
    page = new_context("phone").new_page()
    page.goto("/search")
    filters = page.get_by_role("search", name="Filter listings")
    expect(filters).to_be_hidden()
    expect(listing_cards(page).first).to_be_in_viewport()
    screenshot(page, "search-phone")

    page.locator(".search-fold > summary").click()
    expect(filters).to_be_visible()
    filters.get_by_label("Category").select_option(label="Lighting")
    expect(page.locator(".active-filters")).to_contain_text("Lighting")
    screenshot(page, "search-phone-filters")
    page.locator(".search-fold > summary").click()
    expect(filters).to_be_hidden()
    expect(listing_cards(page).first).to_be_in_viewport()
    assert_fits_width(page)


def test_search_filters_stay_open_beside_the_results_on_a_wide_screen(new_context):
    page = new_context().new_page()
    page.goto("/search")
    expect(page.get_by_role("search", name="Filter listings")).to_be_visible()
    expect(page.locator(".search-fold > summary")).to_be_hidden()


def test_a_listing_keeps_a_message_the_seller_button_in_reach(new_context, guard):
    guard.allow_stream_cuts()
    page = new_context("phone").new_page()
    sign_up(page, "Kabir Rao")
    open_demo_sellers_listing(page)
    button = page.get_by_role("link", name="Message the seller")
    fully_in_view(page, button)
    screenshot(page, "listing-phone-buyer")
    page.mouse.wheel(0, 600)
    page.wait_for_timeout(200)
    fully_in_view(page, button)
    button.click()
    expect(page.get_by_label("Message")).to_be_in_viewport()
    expect(button).to_be_hidden()  # at the form it steps aside
    page.get_by_label("Message").fill("Hello from the button")
    page.get_by_role("button", name="Send message").click()
    expect(page).to_have_url(re.compile(r"/conversations/\d+$"))


def test_the_composer_stays_on_screen_with_the_keyboard_open(new_context, guard):
    guard.allow_stream_cuts()
    page = new_context("phone").new_page()
    sign_up(page, "Ishaan Mehta")
    open_demo_sellers_listing(page)
    cid = contact_seller(page, "From my phone, keyboard up")
    for i in range(8):
        send(page, cid, f"a longer thread {i}")
    viewport = page.locator('meta[name="viewport"]').get_attribute("content")
    assert "interactive-widget=resizes-content" in viewport  # the keyboard shrinks the layout
    composer = page.locator(f"#conv-{cid}-composer")
    fully_in_view(page, composer)
    page.locator(f"#conv-{cid}-composer textarea").focus()
    page.set_viewport_size({"width": 390, "height": 844 - 336})  # a phone keyboard is ~336 px tall
    page.wait_for_timeout(100)
    fully_in_view(page, composer)
    expect(page.locator(f"#conv-{cid}-messages .msg").last).to_be_in_viewport()
    screenshot(page, "conversation-phone-keyboard")


def test_a_new_board_guides_its_owner_to_add_sellers_first(new_context, guard):
    guard.allow_stream_cuts()
    page = new_context("phone").new_page()
    sign_up(page, "Zoya Ali")
    page.goto("/boards/new")
    page.get_by_label("Board name").fill("Zoya's mehendi")
    page.get_by_label("Event date").fill((date.today() + timedelta(days=40)).isoformat())
    page.get_by_label("City").fill("Pune")
    page.get_by_role("button", name=re.compile("Create")).click()
    expect(page).to_have_url(re.compile(r"/boards/\d+$"))
    guide = page.get_by_role("region", name="First, add the sellers you're planning with")
    expect(guide).to_be_in_viewport()
    assert_fits_width(page)
    screenshot(page, "board-new-phone")
    guide.get_by_role("link", name="Add sellers").click()
    expect(page).to_have_url(re.compile(r"/boards/\d+/manage#invite$"))
    expect(page.get_by_role("heading", name="Add members")).to_be_visible()
