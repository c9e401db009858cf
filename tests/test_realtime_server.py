"""The stream under production conditions: gunicorn gevent workers on two "hosts" sharing one
database and one Redis, read by a real HTTP client."""
import re
import socket
import threading
import time

import httpx
import pytest

from rentpe import realtime
from rentpe.extensions import db
from tests.factories import PASSWORD

pytestmark = [pytest.mark.slow, pytest.mark.parametrize("broker", ["redis"], indirect=True)]

CSRF = re.compile(r'name="csrf-token" content="([^"]+)"')


@pytest.fixture
def app_overrides(realtime_overrides):
    return realtime_overrides


@pytest.fixture
def hosts(live_server):
    return [live_server(STREAM_HEARTBEAT_SECONDS="0.2") for _ in range(2)]


class Reader:
    """Reads one stream in a thread, keeping the raw text."""

    def __init__(self, http, url, headers=None):
        self.text = ""
        self.status = None
        self.ended = threading.Event()
        self.first_bytes_after = None
        self._started = time.monotonic()
        self._thread = threading.Thread(target=self._read, args=(http, url, headers or {}), daemon=True)
        self._thread.start()

    def _read(self, http, url, headers):
        try:
            with http.stream("GET", url, headers=headers, timeout=httpx.Timeout(5, read=5)) as response:
                self.status = response.status_code
                for chunk in response.iter_text():
                    if self.first_bytes_after is None:
                        self.first_bytes_after = time.monotonic() - self._started
                    self.text += chunk
        except httpx.HTTPError:
            pass
        finally:
            self.ended.set()

    def wait_for(self, needle, timeout=5):
        deadline = time.monotonic() + timeout
        while needle not in self.text:
            assert time.monotonic() < deadline, f"{needle!r} not in {self.text[-300:]!r}"
            time.sleep(0.02)


def logged_in(base, user):
    http = httpx.Client(base_url=base)
    token = CSRF.search(http.get("/login").text).group(1)
    response = http.post("/login", data={"email": user.email, "password": PASSWORD, "csrf_token": token})
    assert response.status_code == 302
    return http


def test_streams_on_two_hosts_get_live_events_and_end_together(live, hosts, buyer):
    realtime.register_renderer("test.note", lambda e: f'<div id="note-{e.data["n"]}">…</div>')
    assert httpx.get(f"{hosts[0]}/events").status_code == 401
    http = logged_in(hosts[0], buyer)
    streams = [Reader(http, f"{base}/events?after=0") for base in hosts]
    for stream in streams:
        stream.wait_for(": open")
        assert stream.status == 200 and stream.first_bytes_after < 2

    realtime.record([buyer.id], "test.note", {"n": "hello"})
    db.session.commit()
    realtime.publish_committed()
    for stream in streams:
        stream.wait_for('data: <div id="note-hello">…</div>\nid: 1\n\n')

    resumed = Reader(http, f"{hosts[1]}/events?after=0", headers={"Last-Event-ID": "0"})
    resumed.wait_for("id: 1\n\n")  # replayed from SQL (that host has no renderer for the test kind)
    realtime.end_streams(buyer.id)
    for stream in [*streams, resumed]:
        assert stream.ended.wait(5)
    http.close()


def test_a_message_posted_through_one_host_reaches_streams_held_by_the_other(live, hosts, buyer, listing):
    seller = listing.seller
    buyer_http, seller_http = logged_in(hosts[0], buyer), logged_in(hosts[1], seller)
    token = CSRF.search(buyer_http.get(f"/listings/{listing.id}").text).group(1)
    first = buyer_http.post(f"/listings/{listing.id}/contact",
                            data={"body": "Is the hall free on the 12th?", "client_key": "firstkey01", "csrf_token": token})
    assert first.status_code == 303
    conversation_path = first.headers["location"]
    page = seller_http.get(conversation_path)  # the seller's page on host 1 fixes its cursor
    cursor = re.search(r"/events\?after=(\d+)", page.text).group(1)
    seller_stream = Reader(seller_http, f"{hosts[1]}/events?after={cursor}")
    seller_stream.wait_for(": open")

    sent = buyer_http.post(f"{conversation_path}/messages", headers={"HX-Request": "true", "X-CSRFToken": token},
                           data={"body": "We are 120 guests.", "client_key": "secondkey02"})
    assert sent.status_code == 200 and "We are 120 guests." in sent.text
    message_id = re.search(r'id="msg-(\d+)"', sent.text).group(1)
    seller_stream.wait_for("We are 120 guests.")
    seller_stream.wait_for(f'<li id="msg-{message_id}"')
    frames = seller_stream.text.split("\n\n")
    carrying = [f for f in frames if "We are 120 guests." in f and f'id="msg-{message_id}"' in f]
    assert len(carrying) == 1 and "\nid: " in carrying[0]  # once, in the frame that moves the cursor
    realtime.end_streams(seller.id)
    assert seller_stream.ended.wait(5)
    buyer_http.close()
    seller_http.close()


def test_a_host_told_to_stop_ends_its_streams_at_once_and_exits(live, live_server, buyer):
    """TERM (a stop, a deploy): gunicorn waits up to its graceful timeout (8 s as deployed) for
    open requests, and a stream never ends by itself. The worker ends its streams at once instead:
    the client's stream ends cleanly (it reconnects with its cursor, to a host that stays), and a
    stream whose client left without a word holds nothing up either."""
    base = live_server(graceful_timeout=8)
    process = live_server.processes[-1]
    http = logged_in(base, buyer)
    stream = Reader(http, f"{base}/events?after=0")
    stream.wait_for(": open")
    silent = socket.create_connection(("127.0.0.1", int(base.rsplit(":", 1)[1])))
    cookie = "; ".join(f"{name}={value}" for name, value in http.cookies.items())
    silent.sendall(f"GET /events?after=0 HTTP/1.1\r\nHost: localhost\r\nCookie: {cookie}\r\n\r\n".encode())
    received, deadline = b"", time.monotonic() + 5
    while b": open" not in received and time.monotonic() < deadline:
        received += silent.recv(4096)
    assert b": open" in received
    silent.close()  # gone, and the server only finds out when it next writes (a heartbeat: 25 s)

    told = time.monotonic()
    process.terminate()
    assert stream.ended.wait(3), "the stream was not ended"
    assert stream.status == 200 and stream.text.startswith(": open")
    process.wait(timeout=10)
    assert time.monotonic() - told < 4, "the host waited out its graceful timeout"
    http.close()
