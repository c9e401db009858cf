"""In a real browser the Content-Security-Policy holds: our pages break none of it, htmx runs under
it without a stylesheet of its own, and markup injected into a page can't run script."""
import pytest
from playwright.sync_api import expect

from tests.e2e.browser import DEMO_SELLER, listing_cards, login, open_first_listing

pytestmark = pytest.mark.e2e

# Added before any page script runs (Playwright's init scripts are not subject to the page's CSP).
RECORD_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener('securitypolicyviolation', (e) => {
  window.__cspViolations.push(e.violatedDirective + ' ' + (e.blockedURI || 'inline'));
});
"""


def violations(page):
    return page.evaluate("window.__cspViolations")


def watched_page(new_context, **options):
    context = new_context(**options)
    context.add_init_script(RECORD_VIOLATIONS)
    return context.new_page()


def test_our_pages_run_htmx_without_breaking_the_policy(new_context):
    page = watched_page(new_context)
    page.goto("/")
    expect(listing_cards(page).first).to_be_visible()
    assert page.evaluate("typeof window.htmx") == "object"
    open_first_listing(page)
    for path in ("/login", "/signup", "/search"):
        page.goto(path)
        assert page.evaluate("typeof window.htmx") == "object"
        # htmx's own indicator stylesheet stays off (the rules are in app.css).
        assert page.evaluate("document.adoptedStyleSheets.length") == 0
        assert violations(page) == [], path
    login(page, DEMO_SELLER)
    for path in ("/", "/dashboard", "/sell"):
        page.goto(path)
        assert violations(page) == [], path


def test_markup_injected_into_a_page_cannot_run_script(new_context, guard):
    guard.allow("console", text_contains="Content Security Policy")
    page = watched_page(new_context)
    page.goto("/")
    expect(listing_cards(page).first).to_be_visible()

    page.evaluate("""() => {
      const box = document.createElement('div');
      box.innerHTML = '<img id="bait" alt="" src="/static/img/favicon.svg" onload="window.__pwned = 1">';
      document.body.append(box);
      const script = document.createElement('script');
      script.textContent = 'window.__pwned = 2';
      document.body.append(script);
    }""")
    page.wait_for_function("() => window.__cspViolations.length >= 2")  # a function: the CSP blocks eval

    assert page.evaluate("window.__pwned") is None
    assert all(v.startswith("script-src") for v in violations(page)), violations(page)
