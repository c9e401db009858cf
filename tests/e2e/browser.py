"""What the browser tests do over and over: log in, find a listing, take a screenshot, check the width."""
import io
import os
import re
from pathlib import Path

from PIL import Image
from playwright.sync_api import expect

ROOT = Path(__file__).resolve().parents[2]
ARTIFACT_SHOTS = ROOT / "test-artifacts" / "screenshots"
DOC_SHOTS = ROOT / "docs" / "screenshots"

DEMO_PASSWORD = "rentpe-demo"
DEMO_BUYER = "buyer@demo.rentpe.test"
DEMO_SELLER = "seller@demo.rentpe.test"
DEMO_SHOP = "Kumar Events & Venues"


def login(page, email, password=DEMO_PASSWORD):
    """Log in through the form, as a person would; works with JavaScript off too."""
    page.goto("/login")
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("button", name="Log out")).to_be_visible()


def listing_cards(page):
    return page.locator(".listing-card")


def open_first_listing(page):
    """From a page with listing cards, follow the first card; returns the title it showed."""
    card = listing_cards(page).first
    expect(card, "the demo data shows listings on this page").to_be_visible()
    title = card.get_by_role("heading").inner_text().strip()
    card.get_by_role("link").first.click()
    expect(page).to_have_url(re.compile(r"/listings/\d+$"))
    expect(page.get_by_role("heading", level=1)).to_have_text(title)
    return title


def assert_fits_width(page):
    """Nothing sticks out sideways: the page never scrolls horizontally at this viewport width."""
    width = page.viewport_size["width"]
    scroll_width = page.evaluate("document.scrollingElement.scrollWidth")
    assert scroll_width <= width, f"{page.url} is {scroll_width}px wide in a {width}px viewport"


def screenshot(page, name):
    """Save `name`.png under test-artifacts/screenshots (the whole page) and, with
    RENTPE_UPDATE_SCREENSHOTS=1, a small viewport-sized copy under docs/screenshots."""
    ARTIFACT_SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=ARTIFACT_SHOTS / f"{name}.png", full_page=True, animations="disabled")
    if os.environ.get("RENTPE_UPDATE_SCREENSHOTS") == "1":
        DOC_SHOTS.mkdir(parents=True, exist_ok=True)
        png = page.screenshot(animations="disabled")
        # A 256-colour palette keeps the committed images small; flat UI colours survive it.
        image = Image.open(io.BytesIO(png)).convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT)
        image.save(DOC_SHOTS / f"{name}.png", optimize=True)
