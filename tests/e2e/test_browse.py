"""A visitor browses: the home page, search from the top bar, a listing page."""
import re

import pytest
from playwright.sync_api import expect

from tests.e2e.browser import listing_cards, open_first_listing, screenshot

pytestmark = pytest.mark.e2e


def test_an_anonymous_visitor_sees_categories_and_the_newest_listings(new_context):
    page = new_context().new_page()
    page.goto("/")

    expect(page.get_by_role("heading", level=1)).to_have_text("Rent everything for your event")
    expect(page.locator(".categories a")).to_contain_text(["Venues", "Furniture", "Decoration", "Lighting"])
    expect(listing_cards(page).first, "the demo listings are on the home page").to_be_visible()
    expect(page.get_by_role("link", name="Log in")).to_be_visible()
    expect(page.get_by_role("link", name="Sign up")).to_be_visible()
    screenshot(page, "home-desktop")


def test_searching_from_the_top_bar_finds_a_listing_seen_on_the_home_page(new_context):
    page = new_context().new_page()
    page.goto("/")
    title = listing_cards(page).first.get_by_role("heading").inner_text().strip()
    word = max(re.findall(r"\w+", title), key=len)

    search = page.get_by_role("searchbox", name="Search listings")
    search.fill(word)
    search.press("Enter")

    expect(page).to_have_url(re.compile(r"/search\?q=" + re.escape(word)))
    expect(search).to_have_value(word)
    expect(listing_cards(page).filter(has_text=title).first).to_be_visible()
    screenshot(page, "search-desktop")


def test_a_listing_page_shows_what_its_card_promised(new_context):
    page = new_context().new_page()
    page.goto("/")
    card_price = listing_cards(page).first.locator(".price").inner_text().strip()

    open_first_listing(page)

    expect(page.locator(".listing .price")).to_have_text(card_price)
    screenshot(page, "listing-desktop")


def test_a_listing_that_does_not_exist_is_a_404_page(new_context, guard):
    guard.expect_status(404, "/listings/999999999")
    page = new_context().new_page()

    response = page.goto("/listings/999999999")

    assert response.status == 404
    expect(page.get_by_text("We couldn't find that page.")).to_be_visible()
