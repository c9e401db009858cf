"""The limit on booking requests (ratelimits.BOOKING_REQUESTS_PER_USER): only requests that went
through count, and over it the request page says so with a 429 and nothing is stored."""
import pytest
from limits import parse_many

from rentpe import ratelimits
from rentpe.bookings.models import Booking
from rentpe.extensions import db
from tests.booking_helpers import ask, day


@pytest.fixture
def app_overrides():
    return {"RATELIMIT_ENABLED": True}


def test_booking_requests_are_limited_per_user(buyer_client, make_listing, seller):
    from rentpe.extensions import limiter

    limiter._storage_dead = False
    allowance = min(item.amount for item in parse_many(ratelimits.BOOKING_REQUESTS_PER_USER.value))
    listings = [make_listing(seller=seller) for _ in range(allowance + 1)]
    # A refused request (a past date) does not use up the allowance.
    assert ask(buyer_client, listings[0], day(-3)).status_code == 400
    codes = [ask(buyer_client, item, day(10)).status_code for item in listings]
    assert codes == [303] * allowance + [429]
    assert "Too many booking requests" in ask(buyer_client, listings[-1], day(11)).get_data(as_text=True)
    assert db.session.scalar(db.select(db.func.count()).select_from(Booking)) == allowance
