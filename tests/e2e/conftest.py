"""The browser suite's harness: a real server, a real Chromium, and a guard on every page.

- `server` (session): a PostgreSQL database of its own, migrated and seeded with the demo data by
  the same CLI commands an operator runs (plus the listings of `seed.py`), served on a free port by
  `gunicorn -k gevent` with `deploy/gunicorn.conf.py`, with Redis. `restart_server` restarts it
  (open streams are cut). Its log is in test-artifacts/.
- `browser` (session): the system Chromium driven by Playwright. If it can't start the suite
  fails: a browser suite that skips proves nothing.
- `new_context(device)`: a fresh browser context (`"desktop"` 1280×800 or `"phone"` 390×844) whose
  pages are watched by `guard`.
- `guard` (every test): collects console errors, uncaught page errors, failed requests, responses
  of 400 and above, errors in the server's log and accessibility violations (axe-core on every
  page, a11y.py), and fails the test if any were not declared (`guard.expect_status(…)`,
  `guard.allow_stream_cuts()`).

These tests talk HTTP to the server: they never take the `app`/`backend` fixtures of tests/conftest.py.
"""
import hashlib
import itertools
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa
from playwright.sync_api import expect, sync_playwright

from tests.e2e.a11y import Accessibility

ROOT = Path(__file__).resolve().parents[2]
E2E_DIR = Path(__file__).resolve().parent
ARTIFACTS = ROOT / "test-artifacts"
BIN = Path(sys.executable).parent
PG_ADMIN_URL = os.environ.get("TEST_PG_ADMIN_URL", "postgresql://127.0.0.1:5432/test")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
WORKER = os.environ.get("PYTEST_XDIST_WORKER", "main")

CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
DEVICES = {
    "desktop": {"viewport": {"width": 1280, "height": 800}},
    "phone": {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True},
}
# Short waits: the server is local, so anything slower than this is a bug worth seeing.
ACTION_TIMEOUT_MS = 10_000
expect.set_options(timeout=5_000)


def pytest_collection_modifyitems(config, items):
    """Every browser test is marked `e2e` and stays away from the in-process app fixtures."""
    for item in items:
        if E2E_DIR not in item.path.parents:
            continue
        if item.get_closest_marker("e2e") is None:
            raise pytest.UsageError(f"{item.nodeid}: browser tests are marked @pytest.mark.e2e")
        if {"app", "backend"} & set(item.fixturenames):
            raise pytest.UsageError(f"{item.nodeid}: browser tests talk HTTP to the server, not to `app`")


# The server ------------------------------------------------------------------------------------


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _fresh_pg_database():
    # One database per checkout (and xdist worker), dropped and recreated for every session.
    checkout = hashlib.sha1(str(ROOT).encode()).hexdigest()[:8]
    name = f"rentpe_e2e_{checkout}_{WORKER}"
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return name, PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name


def _drop_pg_database(name):
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _run(env, *command):
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        pytest.fail(f"`{' '.join(map(str, command))}` failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return done.stdout


def _flask(env, *args):
    return _run(env, BIN / "flask", "--app", "app", *args)


def _python(env, *args):
    return _run(env, sys.executable, *args)


class Server:
    """gunicorn with gevent workers, as in production, on a free local port."""

    STOP_WAIT = 15  # above graceful_timeout (8 s): a request still being answered may take that long

    def __init__(self, env, log_path):
        self.env = env
        self.log_path = log_path
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = None

    def start(self):
        command = [
            BIN / "gunicorn", "-c", "deploy/gunicorn.conf.py", "-k", "gevent", "-w", "2",
            "-b", f"127.0.0.1:{self.port}", "app:app",
        ]
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                command, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        self._wait_until_up()

    def _wait_until_up(self, seconds=30):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"gunicorn exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(self.url + "/", timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.1)
        self.stop()
        pytest.fail(f"gunicorn did not answer on {self.url} within {seconds} s:\n{self.log_tail()}")

    def stop(self):
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(self.STOP_WAIT)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self):
        """Stop at once, as a crash would: no graceful shutdown, every connection dropped."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)  # its own session: the master and its workers
            self.process.wait(5)

    def restart(self, crash=False):
        """Stop (cutting every open stream; `crash=True`: kill) and start again on the same port."""
        self.kill() if crash else self.stop()
        self.start()

    def log_size(self):
        return self.log_path.stat().st_size if self.log_path.exists() else 0

    def log_since(self, offset):
        with open(self.log_path, "rb") as log:
            log.seek(offset)
            return log.read().decode(errors="replace")

    def log_tail(self, chars=4000):
        return self.log_since(max(0, self.log_size() - chars))


@pytest.fixture(scope="session")
def server():
    ARTIFACTS.mkdir(exist_ok=True)
    log_path = ARTIFACTS / f"e2e-server-{WORKER}.log"
    log_path.write_bytes(b"")
    db_name, database_url = _fresh_pg_database()
    with tempfile.TemporaryDirectory(prefix="rentpe-e2e-") as tmp:
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("FLASK_", "GUNICORN_", "WEB_CONCURRENCY"))},
            "DATABASE_URL": database_url,
            "REDIS_URL": REDIS_URL,
            # Redis is shared with other test runs: the prefix keeps this run's channels and keys apart.
            "REALTIME_CHANNEL_PREFIX": f"rentpe-e2e-{secrets.token_hex(4)}:",
            "RATELIMIT_KEY_PREFIX": f"rentpe-e2e-limits-{secrets.token_hex(4)}",
            # The browser contexts stand behind one proxy hop (X-Forwarded-For, see new_context).
            "PROXY_FIX_HOPS": "1",
            "SECRET_KEY": secrets.token_hex(32),
            "UPLOAD_FOLDER": str(Path(tmp) / "uploads"),
            # No MAIL_URL: e-mails are .eml files here, listed on /dev/mail (tests/e2e/test_notifications.py).
            "MAIL_FILE_PATH": str(Path(tmp) / "mail"),
            # Unread messages are due for e-mail at once (no worker runs unless a test starts one).
            "NOTIFY_DELAY_S": "0",
            "PYTHONUNBUFFERED": "1",
        }
        _flask(env, "db", "upgrade")
        _flask(env, "demo", "seed")
        _python(env, "-m", "tests.e2e.seed")
        server = Server(env, log_path)
        server.start()
        try:
            yield server
        finally:
            server.stop()
            _drop_pg_database(db_name)


@pytest.fixture
def restart_server(server):
    """`restart_server()` mid-test (or `restart_server(crash=True)`); the base URL stays the same."""
    return server.restart


# The guard -------------------------------------------------------------------------------------


@dataclass
class Problem:
    kind: str  # console, pageerror, requestfailed, response, server, a11y
    url: str
    detail: str
    status: int | None = None

    def __str__(self):
        status = f" {self.status}" if self.status else ""
        return f"[{self.kind}{status}] {self.url} {self.detail}".strip()


@dataclass
class Allowance:
    kinds: tuple
    url_contains: str = ""
    status: int | None = None
    text_contains: str = ""

    def covers(self, problem):
        return (
            problem.kind in self.kinds
            and self.url_contains in problem.url
            and (self.status is None or problem.status == self.status)
            and self.text_contains in problem.detail
        )


class Guard:
    """What went wrong in the browser and on the server during one test."""

    def __init__(self, server):
        self.server = server
        self.log_offset = server.log_size()
        self.problems = []
        self.allowances = []
        self.closers = []
        self.closing = False
        # Aborted requests no navigation has explained yet, per page: [(url, detail)].
        self.unexplained = []
        self.a11y = Accessibility()

    # declaring what a test expects

    def expect_status(self, status, url_contains):
        """A response with this status is part of the test (e.g. a 422 for a wrong password)."""
        self.allowances.append(Allowance(("response",), url_contains, status))
        # Chromium also logs "Failed to load resource: … status of 422" for it.
        self.allowances.append(Allowance(("console",), url_contains, text_contains=f"status of {status}"))

    def allow_stream_cuts(self, url_contains="/events"):
        """The test cuts the stream (server restart, hidden tab): its failures and retries are expected."""
        self.allowances.append(Allowance(("requestfailed", "console"), url_contains))
        for status in (502, 503, 504):
            self.allowances.append(Allowance(("response",), url_contains, status))

    def allow(self, kind, url_contains="", text_contains=""):
        self.allowances.append(Allowance((kind,), url_contains, text_contains=text_contains))

    # watching pages

    def watch(self, page):
        navigations = [0]
        started = {}
        aborted = []  # (url, detail) of this page's aborts reported before a navigation explains them
        self.unexplained.append(aborted)

        def on_request(request):
            if request.is_navigation_request() and request.frame == page.main_frame:
                navigations[0] += 1
                aborted.clear()  # the page being left cancelled them
            started[request] = navigations[0]

        def on_request_failed(request):
            error = request.failure or ""
            # Leaving a page cancels its unfinished requests (ERR_ABORTED): that is not a failure.
            if "ERR_ABORTED" in error and started.get(request) != navigations[0]:
                return
            # The browser fetches the icon on its own schedule and drops it when a form posts
            # away from the page; the abort can be reported before the next navigation starts.
            if "ERR_ABORTED" in error and request.url.endswith("/favicon.svg"):
                return
            # An image the page stopped needing (a live swap replaced the element showing it, e.g.
            # an inbox row moving up) is cancelled by the browser. A broken image is a 4xx/5xx
            # response, which on_response reports.
            if "ERR_ABORTED" in error and request.resource_type == "image":
                return
            # The page's own stream is cancelled by the page (leaving it, or htmx pausing a hidden
            # tab), and that abort too may be reported before the next navigation has started. A
            # stream the server breaks fails otherwise (reset, incomplete body, 5xx).
            if "ERR_ABORTED" in error and urlsplit(request.url).path == "/events":
                return
            # Any other abort (a script of a page being left) may also be reported before the
            # navigation that caused it: it counts only if no navigation follows by the end.
            if "ERR_ABORTED" in error:
                aborted.append((request.url, f"{request.method} {error}"))
                return
            self._add("requestfailed", request.url, f"{request.method} {error}")

        def on_response(response):
            if response.status >= 400:
                self._add("response", response.url, response.status_text, response.status)

        def on_console(message):
            if message.type == "error":
                self._add("console", message.location.get("url", ""), message.text)

        page.on("request", on_request)
        page.on("requestfailed", on_request_failed)
        page.on("response", on_response)
        page.on("console", on_console)
        page.on("pageerror", lambda error: self._add("pageerror", page.url, str(error)))

    def _add(self, kind, url, detail, status=None):
        if not self.closing:
            self.problems.append(Problem(kind, url, detail, status))

    # the verdict

    def finish(self):
        """Close the browser contexts (delivering their last events), read the server log, and
        return the problems nobody declared. Safe to call twice."""
        if not self.closing:
            for violation in self.a11y.finish():
                self._add("a11y", violation.url, str(violation))
            for aborted in self.unexplained:  # (what closing the contexts cancels is not counted)
                for url, detail in list(aborted):
                    self._add("requestfailed", url, detail)
            while self.closers:
                self.closers.pop()()  # closing delivers pending events, then cancels what's in flight
            self.closing = True
            for line in self.server.log_since(self.log_offset).splitlines():
                if "Traceback" in line or "[ERROR]" in line or "[CRITICAL]" in line:
                    self.problems.append(Problem("server", "", line.strip()))
        return [p for p in self.problems if not any(a.covers(p) for a in self.allowances)]


def _report(problems):
    return "Unexpected errors in the browser or on the server:\n" + "\n".join(f"  {p}" for p in problems)


@pytest.fixture(autouse=True)
def guard(server):
    guard = Guard(server)
    yield guard
    guard.finish()  # when the test body raised, pytest_runtest_call did not get to it


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    """Judge the guard as part of the test, so its problems make the test fail (not error)."""
    guard = item.funcargs.get("guard") if E2E_DIR in item.path.parents else None
    try:
        result = yield
    except BaseException:
        if guard is not None and (problems := guard.finish()):
            item.add_report_section("call", "guard", _report(problems))
        raise
    if guard is not None and (problems := guard.finish()):
        pytest.fail(_report(problems), pytrace=False)
    return result


# The browser -----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def browser():
    executable = shutil.which("chromium")
    if executable is None:
        pytest.fail("Chromium is not installed (Debian package `chromium`; bin/services installs it)", pytrace=False)
    with sync_playwright() as playwright:
        try:
            browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        except Exception as exc:
            pytest.fail(f"Chromium ({executable}) did not start: {exc}", pytrace=False)
        yield browser
        browser.close()


# A private address of its own for each browser context.
VISITOR_ADDRESSES = (f"10.0.{n // 250}.{n % 250 + 1}" for n in itertools.count())


@pytest.fixture
def new_context(browser, server, guard):
    """`new_context("desktop" | "phone", **playwright_options)` -> a BrowserContext on the server."""

    def make(device="desktop", **options):
        # Each context is a visitor from an address of its own, as it would be behind the proxy
        # (the server trusts one hop): the per-address limits on sign-up and log-in stay on, and
        # count each visitor apart instead of the whole suite as one network.
        headers = {"X-Forwarded-For": next(VISITOR_ADDRESSES), **options.pop("extra_http_headers", {})}
        context = browser.new_context(base_url=server.url, extra_http_headers=headers, **DEVICES[device], **options)
        context.set_default_timeout(ACTION_TIMEOUT_MS)
        context.on("page", guard.watch)
        guard.a11y.watch_context(context, javascript=options.get("java_script_enabled", True))
        guard.closers.append(context.close)  # the guard closes it when it judges the test
        return context

    return make
