"""At phone size (390×844) no page scrolls sideways."""
import pytest
from playwright.sync_api import expect

from tests.e2e.browser import DEMO_SELLER, assert_fits_width, listing_cards, login, screenshot

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
    screenshot(page, "dashboard-phone")

    page.goto("/sell")
    expect(page.get_by_role("heading", level=1)).to_have_text("Your shop")
    assert_fits_width(page)
