"""People log in, sign up, open a shop and reach the seller dashboard."""
import re
import secrets

import pytest
from playwright.sync_api import expect

from tests.e2e.browser import DEMO_BUYER, DEMO_SELLER, DEMO_SHOP, login, screenshot

pytestmark = pytest.mark.e2e


def test_the_demo_buyer_logs_in_and_sees_a_buyers_menu(new_context):
    page = new_context().new_page()
    page.goto("/")
    page.get_by_role("link", name="Log in").click()

    login(page, DEMO_BUYER)

    nav = page.locator(".topnav")
    expect(nav.get_by_role("link", name="Saved")).to_be_visible()
    expect(nav.get_by_role("link", name="Become a seller")).to_be_visible()
    expect(nav.get_by_role("link", name="Dashboard")).to_have_count(0)
    expect(nav.get_by_role("link", name="Log in")).to_have_count(0)


def test_a_wrong_password_is_refused_with_a_form_error(new_context, guard):
    guard.expect_status(422, "/login")
    page = new_context().new_page()
    page.goto("/login")
    page.get_by_label("E-mail").fill(DEMO_BUYER)
    page.get_by_label("Password").fill("not-the-password")
    page.get_by_role("button", name="Log in").click()

    expect(page.get_by_role("alert")).to_have_text("Wrong e-mail or password.")
    expect(page.get_by_role("button", name="Log out")).to_have_count(0)


def test_a_new_member_signs_up_and_opens_a_shop(new_context):
    page = new_context().new_page()
    page.goto("/")
    page.get_by_role("link", name="Sign up").click()
    page.get_by_label("Your name").fill("Priya Shah")
    page.get_by_label("E-mail").fill(f"priya-{secrets.token_hex(4)}@example.test")
    page.get_by_label("Password", exact=True).fill("a-long-password")
    page.get_by_label("Repeat password").fill("a-long-password")
    page.get_by_role("button", name="Sign up").click()
    expect(page.get_by_role("status")).to_have_text("Welcome to RentPe, Priya!")

    page.get_by_role("link", name="Become a seller").click()
    page.get_by_label("Shop name").fill("Shah Party Lights")
    page.get_by_label("City").fill("Pune")
    page.get_by_role("button", name="Open my shop").click()

    expect(page).to_have_url(re.compile(r"/dashboard$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Shah Party Lights")
    expect(page.get_by_role("status")).to_have_text("You are now a seller. Add your first listing!")
    nav = page.locator(".topnav")
    expect(nav.get_by_role("link", name="Dashboard")).to_be_visible()
    expect(nav.get_by_role("link", name="Become a seller")).to_have_count(0)


def test_the_demo_seller_reaches_the_dashboard_from_the_menu(new_context):
    page = new_context().new_page()
    login(page, DEMO_SELLER)

    page.locator(".topnav").get_by_role("link", name="Dashboard").click()

    expect(page).to_have_url(re.compile(r"/dashboard$"))
    expect(page.get_by_role("heading", level=1)).to_have_text(DEMO_SHOP)
    screenshot(page, "dashboard-desktop")


def test_logging_out_ends_the_session(new_context):
    page = new_context().new_page()
    login(page, DEMO_BUYER)

    page.get_by_role("button", name="Log out").click()

    expect(page.get_by_role("status")).to_have_text("You are logged out.")
    page.goto("/dashboard")
    expect(page).to_have_url(re.compile(r"/login\?next=%2Fdashboard$"))


def test_logging_out_in_one_tab_stops_the_live_stream_of_every_tab(new_context):
    """The server ends a person's streams at log-out; the browser's tabs stop theirs first, so none
    reconnects into a 401 (the guard fails the test on any 4xx or console error)."""
    context = new_context()
    first = context.new_page()
    login(first, DEMO_BUYER)
    first.goto("/inbox")
    second = context.new_page()
    second.goto("/saved")
    for page in (first, second):
        expect(page.locator("#sse")).to_have_attribute("data-state", "live")

    second.get_by_role("button", name="Log out").click()

    expect(second.get_by_role("status")).to_have_text("You are logged out.")
    expect(first.locator("#sse")).to_have_attribute("data-state", "closed")
    expect(first.locator("#connection")).to_be_hidden()
    first.wait_for_timeout(1500)  # longer than a reconnect takes: nothing is tried meanwhile
    expect(first.locator("#sse")).to_have_attribute("data-state", "closed")
