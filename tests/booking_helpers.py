"""Small helpers for booking tests."""
import re
from datetime import timedelta

import sqlalchemy as sa

from rentpe.bookings.models import Booking
from rentpe.extensions import db
from rentpe.models_base import utcnow

CONV_URL = re.compile(r"/conversations/(\d+)#booking-(\d+)$")


def day(offset):
    """A day `offset` days from today (UTC), as the app counts days."""
    return utcnow().date() + timedelta(days=offset)


def request_form(start, end=None, quantity=1, **extra):
    return {"start": start.isoformat(), "end": (end or start).isoformat(), "quantity": str(quantity), **extra}


def ask(client, listing, start, end=None, quantity=1, **extra):
    """POST a booking request; returns the response."""
    return client.post(f"/listings/{listing.id}/bookings", request_form(start, end, quantity, **extra))


def booking_from(response):
    assert response.status_code == 303, (response.status_code, response.get_data(as_text=True)[:400])
    match = CONV_URL.search(response.headers["Location"])
    assert match, response.headers["Location"]
    return db.session.get(Booking, int(match.group(2)))


def reload(booking):
    """The booking as stored now, even when a worker round has removed the session it came from."""
    (booking_id,) = sa.inspect(booking).identity
    db.session.expire_all()
    return db.session.get(Booking, booking_id)
