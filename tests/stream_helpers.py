"""Reading a live `/events` stream from the Flask test client, event by event."""
import time
import uuid

import pytest

REDIS_URL = "redis://127.0.0.1:6379/0"
FAST_STREAM = {
    "STREAM_HEARTBEAT_SECONDS": 0.05,
    "STREAM_LIFETIME_SECONDS": 30,
}


def broker_overrides(broker):
    """App config for the in-process broker or for real Redis (with a channel prefix of its own)."""
    if broker == "redis":
        return {**FAST_STREAM, "REDIS_URL": REDIS_URL, "REALTIME_CHANNEL_PREFIX": f"test-{uuid.uuid4().hex[:10]}:"}
    return {**FAST_STREAM, "REDIS_URL": None}


@pytest.fixture(params=["memory", "redis"])
def broker(request):
    return request.param


@pytest.fixture
def people(make_client, buyer, seller, make_user):
    """Logged-in clients: the buyer, the seller and a stranger to their conversations."""
    clients = {}
    for name, user in (("buyer", buyer), ("seller", seller), ("stranger", make_user(display_name="Stranger"))):
        clients[name] = make_client()
        clients[name].login(user)
    return clients


class Stream:
    """An open SSE response. `events()` parses what arrived into dicts {id, event, data}."""

    def __init__(self, client, url="/events", headers=None):
        self.client = client
        with client.app.app_context():
            self.response = client.raw.get(url, headers=headers or {}, buffered=False)
        self.chunks = self.response.iter_encoded() if self.response.status_code == 200 else iter(())
        self.text = ""

    @property
    def status_code(self):
        return self.response.status_code

    def read_until(self, predicate, timeout=5.0):
        """Read chunks until predicate(self) holds (True) or the timeout passes (False)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate(self):
                return True
            try:
                self.text += next(self.chunks).decode()
            except StopIteration:
                return predicate(self)
        return predicate(self)

    def read_for(self, seconds):
        self.read_until(lambda s: False, timeout=seconds)
        return self

    def contains(self, needle, timeout=5.0):
        return self.read_until(lambda s: needle in s.text, timeout)

    def events(self):
        parsed = []
        for block in self.text.split("\n\n"):
            event = {"id": None, "event": None, "data": []}
            for line in block.split("\n"):
                if line.startswith("id:"):
                    event["id"] = line[3:].strip()
                elif line.startswith("event:"):
                    event["event"] = line[6:].strip()
                elif line.startswith("data:"):
                    event["data"].append(line[5:].removeprefix(" "))
            if event["id"] or event["event"] or event["data"]:
                event["data"] = "\n".join(event["data"])
                parsed.append(event)
        return parsed

    def ids(self):
        return [int(e["id"]) for e in self.events() if e["id"] and e["id"].isdigit()]

    def close(self):
        self.response.close()
