"""Every page the browser suite visits is checked with axe-core, in the browser, as it is shown.

axe-core is a test-only tool (package.json, installed by `bin/services` with `npm ci` into
node_modules/); it is never served to users. It reaches each page as a Playwright init script,
which the page's Content-Security-Policy does not govern (the page itself runs no inline script),
and runs:

- when a page has loaded;
- after the page changes (a live message, a swapped composer), once it has been still for a
  moment, so what the stream and htmx add is checked too;
- one last time on every page still open when the test ends (`Accessibility.finish`), waiting for it.

A page the test leaves before its check at load finished is loaded again at the end (a GET in
the same browser context) and checked then: no page is skipped because the test was quick.

A violation of impact `serious` or `critical` (colour contrast, a missing name, a wrong role…)
is a problem of the test, like a console error: the guard (conftest.py) fails the test with the
rule, the page and the elements. So are the `moderate` rules named in `ALSO_FAILING` (landmarks
and headings, which a screen reader navigates by).
"""
import json
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from playwright.sync_api import Error as PlaywrightError

ROOT = Path(__file__).resolve().parents[2]
AXE_JS = ROOT / "node_modules" / "axe-core" / "axe.min.js"

FAILING_IMPACTS = ("serious", "critical")
ALSO_FAILING = ("heading-order", "landmark-unique", "landmark-no-duplicate-banner",
                "landmark-no-duplicate-contentinfo", "landmark-no-duplicate-main", "page-has-heading-one")
# How long a page must be still after a change before it is checked again.
SETTLE_MS = 400

_RUNNER = """
(() => {
  if (window.top !== window || !window.axe || !window.__rentpeAxeReport) return;
  const failing = new Set(%(impacts)s), alsoFailing = new Set(%(rules)s);
  let running = null, again = false, timer = null;
  const check = () => {
    if (running) { again = true; return running; }
    const url = location.href;
    running = window.axe.run(document, {resultTypes: ["violations"]}).then((result) => {
      const violations = result.violations
        .filter((v) => failing.has(v.impact) || alsoFailing.has(v.id))
        .map((v) => ({id: v.id, impact: v.impact, help: v.help,
                      nodes: v.nodes.slice(0, 5).map((n) => n.target.join(" ") + (n.any[0] ? " (" + n.any[0].message + ")" : ""))}));
      return window.__rentpeAxeReport(url, violations);
    }).finally(() => {
      running = null;
      if (again) { again = false; return check(); }
    });
    return running;
  };
  window.__rentpeAxeCheck = () => { clearTimeout(timer); return check(); };
  const later = () => { clearTimeout(timer); timer = setTimeout(check, %(settle)d); };
  addEventListener("load", () => {
    check();
    new MutationObserver(later).observe(document.body, {subtree: true, childList: true, attributes: true,
                                                        characterData: true});
  });
})();
"""


@dataclass
class Violation:
    url: str
    rule: str
    impact: str
    help: str
    nodes: list = field(default_factory=list)

    def __str__(self):
        return f"{self.rule} ({self.impact}): {self.help} on {self.url}: " + "; ".join(self.nodes)


class Accessibility:
    """axe-core on every page of the contexts it is given; `finish()` returns the violations found."""

    def __init__(self):
        if not AXE_JS.exists():
            raise FileNotFoundError(f"{AXE_JS} is missing: run bin/services (npm ci installs axe-core)")
        self.script = AXE_JS.read_text() + _RUNNER % {
            "impacts": json.dumps(FAILING_IMPACTS), "rules": json.dumps(ALSO_FAILING), "settle": SETTLE_MS}
        self.violations = {}  # (url, rule) -> Violation, the first time it was seen
        self.pages = []
        self.without_javascript = {}  # context -> True when its pages run no script
        self.loads = []  # [page, url, method, checked] per page load of a main frame

    def watch_context(self, context, javascript=True):
        """Check the pages of `context`. Without JavaScript axe can't run in them: their pages are
        loaded again at the end in a copy of the context with JavaScript (same cookies) and checked
        there; the markup is the same, the server renders it."""
        self.without_javascript[context] = not javascript
        if javascript:
            context.expose_binding("__rentpeAxeReport", self._report)
            context.add_init_script(self.script)
        context.on("page", self._watch_page)

    def _watch_page(self, page):
        self.pages.append(page)
        methods = {}

        def on_request(request):
            if request.is_navigation_request() and request.frame == page.main_frame:
                methods[request.url] = request.method

        page.on("request", on_request)
        page.on("load", lambda: self.loads.append([page, page.url, methods.get(page.url, "GET"), False]))

    def _report(self, source, url, violations):
        for load in reversed(self.loads):
            if load[0] is source["page"] and load[1] == url:
                load[3] = True
                break
        for v in violations:
            self.violations.setdefault((_path(url), v["id"]),
                                       Violation(_path(url), v["id"], v["impact"], v["help"], v["nodes"]))

    def finish(self):
        """Check every open page once more, and every page that was left before its check; return
        the violations of the whole test."""
        for page in self.pages:
            if not page.is_closed() and not self.without_javascript.get(page.context):
                try:
                    page.evaluate("() => window.__rentpeAxeCheck && window.__rentpeAxeCheck()")
                except PlaywrightError:  # the page is navigating or crashed: its next load is checked
                    pass
        missed = {}
        for page, url, method, checked in self.loads:
            if not checked and method == "GET" and urlsplit(url).scheme in ("http", "https"):
                missed.setdefault(page.context, []).append(url)
        for context, urls in missed.items():
            try:
                self._check_again(context, list(dict.fromkeys(urls)))
            except PlaywrightError:  # the context is gone (closed by the test): nothing to check there
                pass
        return list(self.violations.values())

    def _check_again(self, context, urls):
        copy = None
        if self.without_javascript.get(context):
            copy = context.browser.new_context(storage_state=context.storage_state(), base_url=urls[0],
                                               viewport=context.pages[0].viewport_size if context.pages else None)
            self.watch_context(copy)
        try:
            page = (copy or context).new_page()
            for url in urls:
                page.goto(url)
                page.evaluate("() => window.__rentpeAxeCheck && window.__rentpeAxeCheck()")
            page.close()
        finally:
            if copy is not None:
                copy.close()


def _path(url):
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")
