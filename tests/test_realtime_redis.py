"""The Redis broker: one pub/sub connection per process, several workers, Redis failures."""
import logging
import os
import re
import time

import pytest
import redis

from rentpe import create_app, realtime
from rentpe.extensions import db
from tests.conftest import REDIS_TEST_URL, Client, EventStream
from tests.factories import UserFactory

pytestmark = pytest.mark.parametrize("broker", ["redis"], indirect=True)

NOTE = re.compile(r'id="note-([^"]+)"')
UNREACHABLE = "redis://127.0.0.1:1/0"


@pytest.fixture
def app_overrides(realtime_overrides):
    return realtime_overrides


@pytest.fixture(autouse=True)
def notes(live):
    realtime.register_renderer("test.note", lambda e: f'<div id="note-{e.data["n"]}">…</div>')


@pytest.fixture
def redis_client():
    client = redis.Redis.from_url(REDIS_TEST_URL)
    yield client
    client.close()


@pytest.fixture
def worker(app):
    """`worker(**settings)`: another process's app on the same database and Redis."""
    made = []

    def make(**settings):
        other = create_app({**app.config, **settings})
        made.append(other)
        return other

    yield make
    for other in made:
        realtime.shutdown(other)
        with other.app_context():
            db.engine.dispose()


def note(users, n):
    realtime.record([u.id for u in users], "test.note", {"n": n})
    db.session.commit()
    realtime.publish_committed()


def shown(messages):
    return [n for m in messages if m.get("data") for n in NOTE.findall(m["data"])]


def hub_connections(app, redis_client):
    name = f"{app.config['REALTIME_CHANNEL_PREFIX']}hub:{os.getpid()}"
    return [c for c in redis_client.client_list() if c.get("name") == name]


def subscribed_channels(app, redis_client):
    prefix = app.config["REALTIME_CHANNEL_PREFIX"]
    return sorted(c.decode()[len(prefix):] for c in redis_client.pubsub_channels(f"{prefix}*"))


def eventually(check, timeout=2.0):
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.02)


def test_one_connection_per_process_and_one_subscription_per_user(app, buyer, seller, client, make_client,
                                                                   open_stream, redis_client):
    client.login(buyer)
    seller_client = make_client()
    seller_client.login(seller)
    tabs = [open_stream(client), open_stream(client), open_stream(seller_client)]
    assert len(hub_connections(app, redis_client)) == 1
    # Plus the fan-out channel, which every process holds for as long as it is connected.
    assert subscribed_channels(app, redis_client) == sorted(["fanout", f"u:{buyer.id}", f"u:{seller.id}"])
    tabs[0].close()
    tabs[1].close()
    eventually(lambda: subscribed_channels(app, redis_client) == ["fanout", f"u:{seller.id}"])
    tabs[2].close()
    eventually(lambda: subscribed_channels(app, redis_client) == ["fanout"])
    assert len(hub_connections(app, redis_client)) == 1


def test_a_dropped_hub_connection_keeps_streams_open_and_loses_nothing(app, buyer, client, open_stream,
                                                                      redis_client):
    app.config["STREAM_CHECK_SECONDS"] = 60  # not the watch's rounds: the check after resubscribing
    client.login(buyer)
    stream = open_stream(client, after=0)
    note([buyer], "before")
    assert [m["id"] for m in stream.messages(1)] == ["1"]
    redis_client.client_kill_filter(_type="pubsub")  # every hub connection, as a Redis restart does
    note([buyer], "during")  # published while the hub reconnects: gone from pub/sub
    assert shown(stream.messages(1, timeout=2)) == ["during"]  # read from SQL once resubscribed
    note([buyer], "after")
    assert shown(stream.messages(1)) == ["after"]
    assert not stream.ended


def test_only_a_connection_after_a_gap_sweeps_the_streams(app, buyer, client, open_stream, redis_client):
    # The process's first connection: every stream waited for its confirmation, nothing was
    # missed, and a sweep then would race the streams' own replays. After a lost one: a sweep.
    machinery = app.extensions["realtime"]
    sweeps = []
    machinery.hub.on_resubscribed = lambda: sweeps.append(time.monotonic())
    client.login(buyer)
    stream = open_stream(client, after=0)
    note([buyer], "before")
    assert shown(stream.messages(1)) == ["before"]
    time.sleep(0.3)  # well past the first connection's PONG
    assert sweeps == []
    redis_client.client_kill_filter(_type="pubsub")
    eventually(lambda: len(sweeps) == 1)


def test_a_poke_just_after_a_round_timed_out_is_not_dropped(app, buyer, client, open_stream):
    # The watch waits for its next round or a poke; a poke landing between a wait that timed out
    # and the next round must still make that round a check without grace.
    app.config["STREAM_CHECK_SECONDS"] = 60
    client.login(buyer)
    stream = open_stream(client, after=0)
    watch = app.extensions["realtime"].watch
    waits = []
    real_wait = watch._poked.wait

    def wait(timeout=None):
        woken = real_wait(timeout)
        if not woken and len(waits) == 3:
            with app.app_context():
                realtime.record([buyer.id], "test.note", {"n": "swallowed"})
                db.session.commit()  # never published, as in a reconnect's gap
            watch.poke()  # the resubscribe's PONG, just after this wait gave up
        waits.append(woken)
        return woken

    watch._poked.wait = wait
    assert shown(stream.messages(1, timeout=2)) == ["swallowed"]


@pytest.mark.parametrize("attempt", range(5))
def test_a_stream_opened_while_the_hub_reconnects_misses_nothing(app, buyer, client, open_stream, redis_client,
                                                                 attempt):
    # The window that once lost the last message: a stream registering while the channel's old
    # confirmation still stood went live before its SUBSCRIBE was in force again.
    app.config["STREAM_CHECK_SECONDS"] = 60
    client.login(buyer)
    first = open_stream(client, after=0)
    note([buyer], "before")
    assert shown(first.messages(1)) == ["before"]
    redis_client.client_kill_filter(_type="pubsub")
    time.sleep(attempt * 0.01)
    second = open_stream(client, after=1)  # another tab, opened during the reconnect
    note([buyer], "last")  # nothing comes after it to reveal a gap
    started = time.monotonic()
    assert shown(first.messages(1, timeout=2)) == ["last"]
    assert shown(second.messages(1, timeout=2)) == ["last"]
    assert time.monotonic() - started < 2


def test_events_and_end_streams_reach_streams_on_other_workers(buyer, client, open_stream, worker):
    client.login(buyer)
    stream = open_stream(client, after=0)
    other = worker()
    with other.app_context():
        note([buyer], "from-another-worker")
        assert realtime.presence.online([buyer.id]) == {buyer.id}
    assert shown(stream.messages(1)) == ["from-another-worker"]
    with other.app_context():
        realtime.end_streams(buyer.id)
    stream.read_to_end()
    assert stream.ended


def publishes(redis_client):
    return redis_client.info("commandstats").get("cmdstat_publish", {}).get("calls", 0)


def test_an_event_for_many_users_is_one_publish_that_each_worker_splits(app, buyer, seller, client, make_client,
                                                                        open_stream, worker, redis_client):
    """A `record` for many users (a board message) crosses Redis once; each worker hands its own
    users' events to their streams, with their own seq, and nobody else's."""
    third, absent = UserFactory(), UserFactory()  # (absent: no stream anywhere)
    streams = {}
    for user in (buyer, seller, third):
        user_client = make_client()
        user_client.login(user)
        streams[user.id] = open_stream(user_client, after=0)
    other = worker()
    with other.app_context():
        note([seller], "warm-up")  # the seller's seq is one ahead of the others'
        before = publishes(redis_client)
        note([buyer, seller, third, absent], "all")
        assert publishes(redis_client) - before == 1
    for user in (buyer, third):
        [message] = streams[user.id].messages(1)
        assert (message["id"], shown([message])) == ("1", ["all"])
    assert [(m["id"], shown([m])) for m in streams[seller.id].messages(2)] == [("1", ["warm-up"]), ("2", ["all"])]


def test_a_fanout_lost_in_a_reconnect_is_read_from_sql(app, buyer, seller, client, make_client, open_stream,
                                                       redis_client):
    app.config["STREAM_CHECK_SECONDS"] = 60  # not the watch's rounds: the check after resubscribing
    client.login(buyer)
    seller_client = make_client()
    seller_client.login(seller)
    streams = [open_stream(client, after=0), open_stream(seller_client, after=0)]
    redis_client.client_kill_filter(_type="pubsub")
    note([buyer, seller, UserFactory()], "during")  # the last message, and lost
    for stream in streams:
        assert shown(stream.messages(1, timeout=2)) == ["during"]


def test_a_publish_while_redis_is_down_is_logged_and_replayed_later(buyer, client, open_stream, worker, caplog):
    cut_off = worker(REDIS_URL=UNREACHABLE)
    with cut_off.app_context(), caplog.at_level(logging.WARNING, logger="rentpe.realtime"):
        note([buyer], "while-down")
    assert "could not publish 1 stream event(s)" in caplog.text
    client.login(buyer)
    assert shown(open_stream(client, after=0).messages(1)) == ["while-down"]


def test_with_redis_unreachable_a_stream_opens_and_gets_its_events_from_sql(buyer, worker):
    cut_off = worker(REDIS_URL=UNREACHABLE, REALTIME_SUBSCRIBE_TIMEOUT_SECONDS=0.3, STREAM_CHECK_SECONDS=0.2)
    client = Client(cut_off)
    client.login(buyer)
    stream = EventStream(client.get("/events", query_string={"after": 0}))
    try:
        assert stream.next()["comment"] == "open"  # not a 503: the watch stands in for Redis
        with cut_off.app_context():
            note([buyer], "no-redis")  # its publish fails (logged)
        committed = time.monotonic()
        arrived = stream.read_until(lambda m: NOTE.search(m.get("data") or ""), timeout=2)
        assert shown(arrived) == ["no-redis"]  # (after the worker's own badge snapshot)
        assert time.monotonic() - committed < 2 * 0.2 + 0.5
    finally:
        stream.close()
