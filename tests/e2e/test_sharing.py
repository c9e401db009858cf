"""A buyer shares a listing: the device's share sheet, copying the link, WhatsApp, and the same
links with JavaScript off; and Lighthouse's SEO audits on a listing page."""
import json
import os
import re
import subprocess
import time
import urllib.parse
import urllib.request

import pytest
from playwright.sync_api import expect

from tests.e2e.browser import open_first_listing

pytestmark = pytest.mark.e2e

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LIGHTHOUSE = os.path.join(ROOT, "node_modules", ".bin", "lighthouse")


def share_box(page):
    return page.get_by_role("region", name="Share this listing")


def open_a_listing(context):
    page = context.new_page()
    page.goto("/search")
    open_first_listing(page)
    page.wait_for_load_state("load")  # share.js (deferred) has run: a click now is its to handle
    return page


def test_copy_link_copies_the_listings_address(new_context):
    context = new_context()
    context.grant_permissions(["clipboard-read", "clipboard-write"])
    page = open_a_listing(context)
    box = share_box(page)

    # Chromium on Linux has no Web Share API: the share-sheet button stays hidden.
    assert page.evaluate("typeof navigator.share") == "undefined"
    expect(box.get_by_role("button", name="Share…")).to_be_hidden()
    box.get_by_role("link", name="Copy link").click()
    expect(box.get_by_role("status")).to_have_text("Link copied.")
    assert page.evaluate("navigator.clipboard.readText()") == page.url
    expect(page, "the link copies instead of navigating").to_have_url(re.compile(r"/listings/\d+$"))

    whatsapp = box.get_by_role("link", name="WhatsApp").get_attribute("href")
    text = urllib.parse.parse_qs(urllib.parse.urlsplit(whatsapp).query)["text"][0]
    assert whatsapp.startswith("https://wa.me/?text=") and text.endswith(" " + page.url)


def test_the_share_button_opens_the_devices_share_sheet(new_context):
    context = new_context("phone")
    # A browser with the Web Share API, as phones have: the page's call is recorded.
    context.add_init_script(
        "navigator.share = (data) => { window.sharedData = data; return Promise.resolve(); };"
        "navigator.canShare = () => true;"
    )
    page = open_a_listing(context)
    title = page.get_by_role("heading", level=1).inner_text().strip()

    share_box(page).get_by_role("button", name="Share…").click()
    shared = page.evaluate("window.sharedData")
    assert shared["url"] == page.url and shared["title"] == title
    assert shared["text"].startswith(title + " · ₹")


def test_without_javascript_sharing_is_two_plain_links(new_context):
    page = open_a_listing(new_context(java_script_enabled=False))
    box = share_box(page)
    expect(box.get_by_role("button", name="Share…")).to_be_hidden()
    expect(box.get_by_role("link", name="Copy link")).to_have_attribute("href", page.url)
    expect(box.get_by_role("link", name="WhatsApp")).to_have_attribute("href", re.compile(r"^https://wa\.me/\?text="))


def test_lighthouse_finds_nothing_to_fix_for_search_engines_on_a_listing(server, tmp_path):
    """Lighthouse's SEO category (crawlable, described, canonical, robots.txt, structured data…) on
    one listing, desktop preset; bench/lighthouse.py scores every public page in every category."""
    if not os.path.exists(LIGHTHOUSE):
        pytest.fail("Lighthouse is not installed: run `npm ci` (bin/services does)", pytrace=False)
    with urllib.request.urlopen(server.url + "/sitemaps/listings-1.xml", timeout=10) as response:
        listing = re.search(r"<loc>([^<]+)</loc>", response.read().decode()).group(1)
    out = tmp_path / "lighthouse.json"
    started = time.monotonic()
    run = subprocess.run(
        [LIGHTHOUSE, listing, "--quiet", "--output=json", f"--output-path={out}", "--only-categories=seo",
         "--preset=desktop", "--throttling-method=provided", "--disable-full-page-screenshot",
         "--chrome-flags=--headless=new --no-sandbox --disable-gpu --no-first-run"],
        env={**os.environ, "CHROME_PATH": os.environ.get("CHROME_PATH", "/usr/bin/chromium")},
        capture_output=True, text=True, timeout=60,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    report = json.loads(out.read_text())
    failing = [ref["id"] for ref in report["categories"]["seo"]["auditRefs"]
               if ref["weight"] and report["audits"][ref["id"]]["score"] not in (None, 1)]
    assert report["categories"]["seo"]["score"] == 1, failing
    print(f"lighthouse SEO on {listing}: {time.monotonic() - started:.1f} s")
