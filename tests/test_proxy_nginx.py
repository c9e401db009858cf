"""deploy/nginx.conf for real: Debian's nginx, HTTP/2 with a certificate made at test time, in front
of two gunicorn hosts that share PostgreSQL and the Redis Cluster (tests/nginx_proxy.py adapts the
shipped configuration to this machine's ports and paths)."""
import re
import shutil
import signal
import threading
import time

import httpx
import pytest
from playwright.sync_api import expect, sync_playwright

from tests.chat_helpers import contact, conversation_id_from
from tests.factories import PASSWORD
from tests.nginx_proxy import Nginx

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.parametrize("broker", ["cluster"], indirect=True),
    pytest.mark.parametrize("backend", ["postgresql"], indirect=True),  # hosts share one database
]

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
CONNECTED = "() => document.querySelector('#sse')?.dataset.state === 'live'"
CSRF = re.compile(r'<meta name="csrf-token" content="([^"]+)"')
TABS = 10


@pytest.fixture
def app_overrides(realtime_overrides):
    return realtime_overrides


@pytest.fixture
def proxy(app, live_server, tmp_path):
    """nginx (deploy/nginx.conf) on a free port in front of two gunicorn hosts of this test's app."""
    hosts = [live_server(), live_server()]
    nginx = Nginx([h.split("//")[1] for h in hosts], tmp_path).start()
    yield Proxy(nginx.url, hosts, live_server.processes, nginx.error_log)
    nginx.stop()


class Proxy:
    def __init__(self, url, hosts, processes, log):
        self.url, self.hosts, self.processes, self.log = url, hosts, processes, log


def http_login(base, user):
    # Over HTTPS the CSRF check wants a same-origin Referer, as a browser sends.
    client = httpx.Client(base_url=base, verify=False, timeout=10, headers={"Referer": base + "/"})
    page = client.get("/login").text
    response = client.post("/login", data={"email": user.email, "password": PASSWORD,
                                           "csrf_token": CSRF.search(page).group(1)})
    assert response.status_code == 302, re.findall(r"<main.*?</main>", response.text, re.S)
    return client


def csrf_of(client, path="/"):
    return CSRF.search(client.get(path).text).group(1)


def post_message(client, conversation_id, body):
    response = client.post(f"/conversations/{conversation_id}/messages",
                           data={"body": body, "csrf_token": csrf_of(client, f"/conversations/{conversation_id}")})
    assert response.status_code == 303, response.text[:300]


@pytest.fixture
def conversation(buyer_client, listing):
    return conversation_id_from(contact(buyer_client, listing, "Is it free on 12 December?"))


def test_events_through_nginx_start_at_once_and_a_message_sent_on_one_host_reaches_the_other(
        proxy, buyer, seller, conversation):
    seller_on_a = http_login(proxy.hosts[0], seller)
    buyer_on_b = http_login(proxy.hosts[1], buyer)
    seller_via_proxy = http_login(proxy.url, seller)
    try:
        # Unbuffered: the stream's first bytes leave nginx as soon as gunicorn writes them.
        with seller_via_proxy.stream("GET", "/events") as warm_up:  # (the first request of a process)
            next(warm_up.iter_raw())
        timings = []
        for _ in range(3):
            started = time.monotonic()
            with seller_via_proxy.stream("GET", "/events") as stream:
                first = next(stream.iter_raw())
                timings.append(time.monotonic() - started)
                assert stream.headers["content-type"].startswith("text/event-stream")
                assert first.startswith(b": open")
        assert min(timings) < 0.1, timings

        with seller_on_a.stream("GET", "/events") as stream:  # held by host A
            chunks = stream.iter_raw()
            assert next(chunks).startswith(b": open")
            post_message(buyer_on_b, conversation, "Sent through host B")  # committed and published by B
            seen, deadline = b"", time.monotonic() + 5
            while b"Sent through host B" not in seen:
                assert time.monotonic() < deadline, seen[-500:]
                seen += next(chunks)
    finally:
        for client in (seller_on_a, buyer_on_b, seller_via_proxy):
            client.close()


def test_ten_tabs_over_http2_stay_live_and_a_host_deploy_loses_nothing(app, proxy, buyer, seller, conversation,
                                                                       tmp_path):
    seller_on_b = http_login(proxy.hosts[1], seller)
    email, failures = buyer.email, []

    def browse():
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=shutil.which("chromium"), args=CHROMIUM_ARGS)
                try:
                    context = browser.new_context(base_url=proxy.url, ignore_https_errors=True)
                    login = context.new_page()
                    login.goto("/login")
                    login.get_by_label("E-mail").fill(email)
                    login.get_by_label("Password").fill(PASSWORD)
                    login.get_by_role("button", name="Log in").click()
                    expect(login.get_by_role("button", name="Log out")).to_be_visible()
                    login.close()
                    tabs = []
                    for _ in range(TABS):
                        tab = context.new_page()
                        tab.goto(f"/conversations/{conversation}")
                        tabs.append(tab)
                    for tab in tabs:
                        tab.wait_for_function(CONNECTED, timeout=10_000)
                        assert tab.evaluate("performance.getEntriesByType('navigation')[0].nextHopProtocol") == "h2"
                    post_message(seller_on_b, conversation, "Before the deploy")
                    for tab in tabs:
                        expect(tab.locator(".msg", has_text="Before the deploy")).to_have_count(1)
                    # A deploy of host A: gunicorn's graceful reload. Its streams are cut and reopen
                    # (on either host) with Last-Event-ID while messages keep coming.
                    proxy.processes[0].send_signal(signal.SIGHUP)
                    for n in range(3):
                        post_message(seller_on_b, conversation, f"During the deploy {n}")
                        time.sleep(0.3)
                    host_log = tmp_path / "gunicorn-0.log"  # (live_server's log of host A)
                    deadline = time.monotonic() + 10
                    while host_log.read_text().count("Booting worker") < 2:  # the deploy happened
                        assert time.monotonic() < deadline, host_log.read_text()[-2000:]
                        time.sleep(0.1)
                    for tab in tabs:
                        for n in range(3):
                            expect(tab.locator(".msg", has_text=f"During the deploy {n}")).to_have_count(
                                1, timeout=15_000)
                        tab.wait_for_function(CONNECTED, timeout=10_000)
                    post_message(seller_on_b, conversation, "After the deploy")
                    for tab in tabs:
                        expect(tab.locator(".msg", has_text="After the deploy")).to_have_count(1)
                        expect(tab.locator(".msg")).to_have_count(6)  # the first message and these five
                finally:
                    browser.close()
        except BaseException as exc:  # re-raised in the test's thread
            failures.append(exc)

    try:
        thread = threading.Thread(target=browse)
        thread.start()
        thread.join(timeout=180)
        assert not thread.is_alive(), "the browser scenario did not finish"
        if failures:
            raise failures[0]
    finally:
        seller_on_b.close()
