"""Presence: online while a stream is open, offline when the last one closes or stops refreshing."""
import time
from datetime import timedelta

import pytest
from flask import has_app_context, request

from rentpe import realtime
from rentpe.models_base import utcnow
from tests.conftest import ON_EVERY_BROKER


@pytest.fixture
def app_overrides(realtime_overrides):
    return realtime_overrides


@pytest.fixture
def transitions(live):
    calls = []
    realtime.register_presence_hook(lambda user_id, online: calls.append((user_id, online, has_app_context() and request.path)))
    return calls


@ON_EVERY_BROKER
def test_online_from_the_first_open_to_the_last_close(buyer, seller, buyer_client, open_stream, transitions):
    assert realtime.presence.online([buyer.id, seller.id]) == set()
    assert realtime.presence.last_seen(buyer.id) is None
    tab1 = open_stream(buyer_client)
    tab2 = open_stream(buyer_client)
    assert realtime.presence.online([buyer.id, seller.id]) == {buyer.id}
    tab1.close()
    assert realtime.presence.online([buyer.id]) == {buyer.id}
    assert transitions == [(buyer.id, True, "/events")]
    tab2.close()
    assert realtime.presence.online([buyer.id]) == set()
    assert transitions == [(buyer.id, True, "/events"), (buyer.id, False, "/events")]
    assert utcnow() - realtime.presence.last_seen(buyer.id) < timedelta(seconds=5)


def test_a_stream_that_stops_refreshing_expires(app, buyer, buyer_client, open_stream):
    """A crashed worker never closes its streams, nor refreshes them: their entries expire on
    their own."""
    app.config["PRESENCE_TTL_SECONDS"] = 1
    open_stream(buyer_client)
    assert realtime.presence.online([buyer.id]) == {buyer.id}
    app.extensions["realtime"].watch.stop()  # what refreshes every stream of this process
    time.sleep(1.3)
    assert realtime.presence.online([buyer.id]) == set()


@ON_EVERY_BROKER
def test_a_stream_that_stops_refreshing_was_last_seen_at_its_last_refresh(app, buyer, buyer_client, open_stream):
    """A worker that dies closes nothing: its user's "last seen" is the streams' last refresh, not
    the moment they opened."""
    app.config["PRESENCE_TTL_SECONDS"] = 1
    stream = open_stream(buyer_client)
    opened = utcnow()
    stream.quiet_for(1.5)  # refreshed on every heartbeat meanwhile
    app.extensions["realtime"].watch.stop()
    stopped = utcnow()
    time.sleep(1.3)
    assert realtime.presence.online([buyer.id]) == set()
    seen = realtime.presence.last_seen(buyer.id)
    assert opened + timedelta(seconds=1) < seen <= stopped + timedelta(seconds=0.2)


def test_a_refresh_does_not_bring_back_a_closed_stream(app, buyer, buyer_client, open_stream):
    presence = app.extensions["realtime"].presence
    stream = open_stream(buyer_client)
    stream_id = next(s.stream_id for s in app.extensions["realtime"].hub.subscriptions())
    stream.close()
    presence.refresh_many([(buyer.id, stream_id)])  # a watch round that raced with the close
    assert realtime.presence.online([buyer.id]) == set()


@ON_EVERY_BROKER
def test_the_watch_refreshes_every_due_stream_in_one_round_trip(app, buyer, seller, buyer_client, make_client,
                                                                 open_stream, monkeypatch):
    presence = app.extensions["realtime"].presence
    batches = []
    refresh_many = presence.refresh_many
    monkeypatch.setattr(presence, "refresh_many", lambda entries: batches.append(len(entries)) or refresh_many(entries))
    seller_client = make_client()
    seller_client.login(seller)
    streams = [open_stream(buyer_client), open_stream(buyer_client), open_stream(seller_client)]
    for stream in streams:
        stream.next()  # open
    time.sleep(0.5)
    assert batches and max(batches) == 3  # all three streams' entries, together
    assert realtime.presence.online([buyer.id, seller.id]) == {buyer.id, seller.id}


def test_streams_opened_apart_are_refreshed_in_one_round_trip_from_then_on(app, buyer, seller, buyer_client,
                                                                          make_client, open_stream, monkeypatch):
    """An idle worker's streams opened over several seconds do not each cost a round trip to
    Redis a round: an entry refreshed a while ago goes along with the one that is due."""
    app.config.update(STREAM_HEARTBEAT_SECONDS=1.0, STREAM_CHECK_SECONDS=0.1, PRESENCE_TTL_SECONDS=3)
    presence = app.extensions["realtime"].presence
    batches = []
    refresh_many = presence.refresh_many
    monkeypatch.setattr(presence, "refresh_many",
                        lambda entries: batches.append((time.monotonic(), len(entries))) or refresh_many(entries))
    seller_client = make_client()
    seller_client.login(seller)
    for client in (buyer_client, buyer_client, seller_client):  # 0.35 s apart: more than a round
        open_stream(client).next()
        time.sleep(0.35)
    time.sleep(3.0)
    later = [size for at, size in batches if at > time.monotonic() - 2.0]
    assert later and set(later) == {3}  # every round trip of the last two heartbeats carries all three
    assert realtime.presence.online([buyer.id, seller.id]) == {buyer.id, seller.id}


def test_a_live_stream_refreshes_its_presence_on_every_heartbeat(app, buyer, buyer_client, open_stream):
    # Outlives the expiry two and a half times over on heartbeats every 0.05 s (a generous margin:
    # a loaded machine may pause the reading loop for a few hundred milliseconds).
    app.config["PRESENCE_TTL_SECONDS"] = 1
    stream = open_stream(buyer_client)
    stream.quiet_for(2.5)
    assert realtime.presence.online([buyer.id]) == {buyer.id}


@ON_EVERY_BROKER
def test_a_stream_ended_by_the_server_does_not_flap_presence(app, buyer, buyer_client, open_stream, transitions):
    app.config["STREAM_LIFETIME_SECONDS"] = 0.2
    open_stream(buyer_client).read_to_end()
    assert realtime.presence.online([buyer.id]) == {buyer.id}  # its client is about to reconnect
    app.config["STREAM_LIFETIME_SECONDS"] = 5
    reconnected = open_stream(buyer_client)
    assert transitions == [(buyer.id, True, "/events")]
    reconnected.close()
    assert transitions == [(buyer.id, True, "/events"), (buyer.id, False, "/events")]
    assert realtime.presence.online([buyer.id]) == set()


def test_a_client_that_does_not_come_back_goes_offline_after_the_grace(app, buyer, buyer_client, open_stream):
    app.config["STREAM_LIFETIME_SECONDS"] = 0.2
    app.config["PRESENCE_GRACE_SECONDS"] = 0.2
    open_stream(buyer_client).read_to_end()
    time.sleep(0.3)
    assert realtime.presence.online([buyer.id]) == set()
