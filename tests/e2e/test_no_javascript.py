"""With JavaScript off, every page and form still works through full page loads."""
import re

import pytest
from playwright.sync_api import expect

from tests.e2e.browser import DEMO_BUYER, DEMO_SELLER, DEMO_SHOP, listing_cards, login, open_first_listing

pytestmark = pytest.mark.e2e


def test_without_javascript_a_buyer_logs_in_browses_and_searches(new_context):
    page = new_context(java_script_enabled=False).new_page()

    login(page, DEMO_BUYER)
    page.get_by_role("link", name="RentPe").click()
    title = open_first_listing(page)

    search = page.get_by_role("searchbox", name="Search listings")
    search.fill(title)
    search.press("Enter")
    expect(page).to_have_url(re.compile(r"/search\?q="))
    expect(listing_cards(page).filter(has_text=title).first).to_be_visible()


def test_without_javascript_a_seller_logs_in_and_logs_out(new_context):
    page = new_context(java_script_enabled=False).new_page()

    login(page, DEMO_SELLER)
    page.get_by_role("link", name="Dashboard").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(DEMO_SHOP)

    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_role("status")).to_have_text("You are logged out.")


def test_without_javascript_the_phone_filters_open_and_filter(new_context):
    page = new_context("phone", java_script_enabled=False).new_page()
    page.goto("/search")
    filters = page.get_by_role("search", name="Filter listings")
    expect(filters).to_be_hidden()
    page.locator(".search-fold > summary").click()  # a <details>: the browser opens it
    filters.get_by_label("Category").select_option(label="Lighting")
    filters.get_by_role("button", name="Search").click()
    expect(page).to_have_url(re.compile(r"/search\?.*category=lighting"))
    expect(page.locator(".active-filters")).to_contain_text("Lighting")
    expect(listing_cards(page).first).to_be_in_viewport()
