"""A booking's card over the live stream, on both brokers and both databases: every change
updates the card in place in both people's streams (by its stable id, with the event's id), the
line lands in the thread, a reconnect replays the card as it stands now, and a stranger gets
nothing."""
import pytest

from rentpe import realtime
from rentpe.bookings import services
from rentpe.extensions import db
from tests.booking_helpers import ask, booking_from, day
from tests.stream_helpers import Stream, broker, broker_overrides, people  # noqa: F401 (fixtures)


@pytest.fixture
def app_overrides(broker):
    return broker_overrides(broker)


def _card_events(stream, booking_id, status):
    return [e for e in stream.events()
            if f'<article id="booking-{booking_id}"' in e["data"] and f'data-status="{status}"' in e["data"]]


def test_the_card_updates_live_in_both_streams(people, listing, buyer, seller):
    booking = booking_from(ask(people["buyer"], listing, day(14), day(15)))
    streams = {name: Stream(people[name], f"/events?after={realtime.last_seq(user.id)}")
               for name, user in (("buyer", buyer), ("seller", seller))}
    stranger = Stream(people["stranger"])
    response = people["seller"].post(f"/bookings/{booking.id}/quote", {
        "price": "45000", "quantity": "1", "start": day(14).isoformat(), "end": day(15).isoformat()}, htmx=True)
    assert response.status_code == 200
    response = people["buyer"].post(f"/bookings/{booking.id}/accept", htmx=True)
    assert response.status_code == 200
    for name, stream in streams.items():
        assert stream.read_until(lambda s: _card_events(s, booking.id, "confirmed")), name
        [quoted] = _card_events(stream, booking.id, "quoted")
        [confirmed] = _card_events(stream, booking.id, "confirmed")
        # Replaced in place by id, carrying the event's id; the same text for both people.
        assert 'hx-swap-oob="true"' in confirmed["data"] and confirmed["id"] and quoted["id"]
        assert "csrf_token" not in confirmed["data"]
        assert stream.contains("Asha accepted · ") and stream.contains("Ravi sent a quote · ₹45,000 · ")
    strip = lambda e: e["data"].split('<span id="booking-requests-count"')[0]  # noqa: E731 (the seller's count)
    assert strip(_card_events(streams["buyer"], booking.id, "confirmed")[0]) == strip(
        _card_events(streams["seller"], booking.id, "confirmed")[0])
    assert 'id="booking-requests-count"' in _card_events(streams["seller"], booking.id, "confirmed")[0]["data"]
    stranger.read_for(0.3)
    assert f"booking-{booking.id}" not in stranger.text
    # A reconnect from before the quote replays the card as it stands now.
    first_id = min(int(e["id"]) for e in _card_events(streams["buyer"], booking.id, "quoted"))
    for stream in (*streams.values(), stranger):
        stream.close()
    replay = Stream(people["buyer"], headers={"Last-Event-ID": str(first_id - 1)})
    assert replay.read_until(lambda s: len(_card_events(s, booking.id, "confirmed")) >= 2)
    assert not _card_events(replay, booking.id, "quoted")
    replay.close()


def test_a_new_request_reaches_the_seller_with_its_card_and_count(people, listing, seller):
    stream = Stream(people["seller"], f"/events?after={realtime.last_seq(seller.id)}")
    booking = booking_from(ask(people["buyer"], listing, day(20)))
    assert stream.read_until(lambda s: _card_events(s, booking.id, "requested"))
    assert stream.contains('id="booking-requests-count"') and stream.contains(">1<span")
    stream.close()


def test_expiry_updates_the_open_cards(people, listing, buyer):
    from datetime import timedelta

    from rentpe.models_base import utcnow

    booking = booking_from(ask(people["buyer"], listing, day(20)))
    stream = Stream(people["buyer"], f"/events?after={realtime.last_seq(buyer.id)}")
    assert services.expire_due(utcnow() + timedelta(hours=49)) == 1
    assert stream.read_until(lambda s: _card_events(s, booking.id, "expired"))
    assert stream.contains("the request expired")
    stream.close()
    db.session.remove()
